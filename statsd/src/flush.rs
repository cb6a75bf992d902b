//! The result of one flush: Graphite plaintext lines and the same points as
//! `(name, value, timestamp)` triples, sharing one buffer (no copies per sink).

use crate::jsnum::write_js_number;
use crate::parser::sanitize_into;

/// One flush of the aggregates: every point once, as Carbon plaintext and as triples.
#[derive(Debug, Clone, Default)]
pub struct Flush {
    text: String,
    points: Vec<PointRef>,
    timestamp: i64,
}

#[derive(Debug, Clone, Copy)]
struct PointRef {
    start: usize,
    name_end: usize,
    value: f64,
}

/// One point of a flush.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point<'a> {
    /// Graphite name (tags included as `;k=v`).
    pub name: &'a str,
    /// Value.
    pub value: f64,
    /// Unix seconds.
    pub timestamp: i64,
}

impl Flush {
    /// Unix seconds of this flush (every point carries it).
    pub fn timestamp(&self) -> i64 {
        self.timestamp
    }

    /// Carbon plaintext: `name value timestamp\n` per point, numbers written as
    /// JavaScript writes them (spec §12).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// Whether there are no points.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// The points, in output order.
    pub fn points(&self) -> impl ExactSizeIterator<Item = Point<'_>> + '_ {
        self.points.iter().map(move |p| Point {
            name: &self.text[p.start..p.name_end],
            value: p.value,
            timestamp: self.timestamp,
        })
    }

    /// The line of point `i` (without `\n`).
    pub fn line(&self, i: usize) -> Option<&str> {
        let p = self.points.get(i)?;
        let end = self.text[p.start..]
            .find('\n')
            .map_or(self.text.len(), |e| p.start + e);
        Some(&self.text[p.start..end])
    }
}

/// Namespaces of spec §10.2/§10.3, joined once.
#[derive(Debug, Clone)]
pub(crate) struct Names {
    pub(crate) legacy: bool,
    /// Counter rate namespace (legacy `stats.`, else `G.C.`), with trailing dot or empty.
    pub(crate) counter: String,
    /// Legacy counter count namespace `stats_counts.`.
    pub(crate) counts: String,
    pub(crate) timer: String,
    pub(crate) gauge: String,
    pub(crate) set: String,
    /// `stats.` (legacy) or `G.` for internal metrics.
    pub(crate) global: String,
    /// `.suffix` or empty.
    pub(crate) suffix: String,
    pub(crate) prefix_stats: String,
    /// Keys were not sanitised at ingest: sanitise the name part at output (spec §5).
    pub(crate) sanitize_at_output: bool,
}

fn join_ns(parts: &[&str]) -> String {
    let parts: Vec<&str> = parts.iter().copied().filter(|p| !p.is_empty()).collect();
    if parts.is_empty() {
        String::new()
    } else {
        let mut s = parts.join(".");
        s.push('.');
        s
    }
}

impl Names {
    pub(crate) fn new(c: &crate::Config) -> Names {
        let suffix = c
            .global_suffix
            .as_ref()
            .map_or(String::new(), |s| format!(".{s}"));
        let (counter, counts, timer, gauge, set, global) = if c.legacy_namespace {
            (
                "stats.".to_string(),
                "stats_counts.".to_string(),
                "stats.timers.".to_string(),
                "stats.gauges.".to_string(),
                "stats.sets.".to_string(),
                "stats.".to_string(),
            )
        } else {
            let g = c.global_prefix.as_str();
            (
                join_ns(&[g, &c.prefix_counter]),
                String::new(),
                join_ns(&[g, &c.prefix_timer]),
                join_ns(&[g, &c.prefix_gauge]),
                join_ns(&[g, &c.prefix_set]),
                join_ns(&[g]),
            )
        };
        Names {
            legacy: c.legacy_namespace,
            counter,
            counts,
            timer,
            gauge,
            set,
            global,
            suffix,
            prefix_stats: c.prefix_stats.clone(),
            sanitize_at_output: !c.key_name_sanitize,
        }
    }
}

/// Builds a [`Flush`].
pub(crate) struct FlushWriter<'n> {
    flush: Flush,
    names: &'n Names,
    ts_text: String,
}

impl<'n> FlushWriter<'n> {
    pub(crate) fn new(names: &'n Names, timestamp: i64, capacity: usize) -> Self {
        FlushWriter {
            flush: Flush {
                text: String::with_capacity(capacity * 48),
                points: Vec::with_capacity(capacity),
                timestamp,
            },
            names,
            ts_text: timestamp.to_string(),
        }
    }

    pub(crate) fn names(&self) -> &'n Names {
        self.names
    }

    /// `ns + name(key) + .extra... + suffix + tags(key)` then ` value ts\n` (spec §10.4).
    pub(crate) fn metric(&mut self, ns: &str, key: &str, extras: &[&str], value: f64) {
        let start = self.flush.text.len();
        let text = &mut self.flush.text;
        text.push_str(ns);
        let (name, tags) = match key.find(';') {
            Some(i) => (&key[..i], &key[i..]),
            None => (key, ""),
        };
        if self.names.sanitize_at_output {
            sanitize_into(text, name);
        } else {
            text.push_str(name);
        }
        for e in extras {
            text.push('.');
            text.push_str(e);
        }
        text.push_str(&self.names.suffix);
        text.push_str(tags);
        self.finish(start, value);
    }

    /// A name written verbatim plus the suffix (internal metrics).
    pub(crate) fn raw(&mut self, parts: &[&str], value: f64) {
        let start = self.flush.text.len();
        for p in parts {
            self.flush.text.push_str(p);
        }
        self.flush.text.push_str(&self.names.suffix);
        self.finish(start, value);
    }

    fn finish(&mut self, start: usize, value: f64) {
        let name_end = self.flush.text.len();
        let text = &mut self.flush.text;
        text.push(' ');
        write_js_number(text, value);
        text.push(' ');
        text.push_str(&self.ts_text);
        text.push('\n');
        self.flush.points.push(PointRef {
            start,
            name_end,
            value,
        });
    }

    pub(crate) fn text_len(&self) -> usize {
        self.flush.text.len()
    }

    pub(crate) fn finish_flush(self) -> Flush {
        self.flush
    }
}
