//! Where series come from: the [`MetricSource`] trait evaluation reads through, the glob
//! matcher shared by sources, tag expressions (`seriesByTag`, spec §9), and [`MemorySource`],
//! an in-memory source with whisper's fetch semantics for tests and benchmarks.

use std::collections::BTreeMap;
use std::sync::RwLock;

use charcoal_store::{Glob, TagExpression};

use crate::error::SourceError;

/// One node matched by a glob: a branch (directory) or a leaf (metric).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct FindMatch {
    /// Full dotted path of the node.
    pub path: String,
    /// True for a metric, false for a branch.
    pub is_leaf: bool,
}

/// Values read for one metric over a window: `values[k]` is at `start + k*step`, `end` exclusive.
#[derive(Debug, Clone, PartialEq)]
pub struct FetchedSeries {
    pub start: i64,
    pub end: i64,
    pub step: i64,
    pub values: Vec<Option<f64>>,
}

/// What selected the leaves of a [`MetricSource::fetch_selection`] call: the request's own
/// words, which a cluster peer can evaluate in one round trip (graphite-web's bulk fetch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Selector<'a> {
    /// A path expression (glob or exact name, tagged names included), unescaped.
    Path(&'a str),
    /// The expressions of a `seriesByTag(...)` call.
    Tags(&'a [String]),
}

/// The series of a [`MetricSource::fetch_selection`] call, one item per requested name.
pub type FetchIter<'a> = Box<dyn Iterator<Item = Result<Option<FetchedSeries>, SourceError>> + 'a>;

/// Read access to stored metrics. Calls are blocking; the HTTP layer runs evaluation on the
/// blocking pool.
pub trait MetricSource: Send + Sync {
    /// Nodes matching a Graphite glob (`a.*.c`, `{x,y}`, `[a-z]`, `?`), one tree level per
    /// pattern node; an exact tagged name (`a;b=c`) matches that series. Order is irrelevant.
    fn find(&self, pattern: &str) -> Result<Vec<FindMatch>, SourceError>;

    /// Whisper-semantics fetch (spec §7) of one metric; `None` when nothing is stored for the
    /// window (e.g. `from` after `now`).
    fn fetch(
        &self,
        name: &str,
        from: i64,
        until: i64,
        now: i64,
    ) -> Result<Option<FetchedSeries>, SourceError>;

    /// Fetches `names`, the leaves `selector` matched, over one window: one item per name, in
    /// order, `None` where nothing is stored. The default reads them lazily one by one with
    /// [`MetricSource::fetch`], so the caller's limits stop a large read early; a source whose
    /// every call costs a round trip (a cluster) fetches the whole selection at once.
    fn fetch_selection<'a>(
        &'a self,
        selector: Selector<'_>,
        names: &'a [String],
        from: i64,
        until: i64,
        now: i64,
    ) -> Result<FetchIter<'a>, SourceError> {
        let _ = selector;
        Ok(Box::new(
            names.iter().map(move |n| self.fetch(n, from, until, now)),
        ))
    }

    /// The part of this source that holds this node's own data, when it is more than that
    /// (a cluster): requests carrying `local=1` read it, so peers never fan out in circles.
    fn local_source(&self) -> Option<std::sync::Arc<dyn MetricSource>> {
        None
    }

    /// Canonical names (`name;tag=value;...`, tags sorted) of every tagged series.
    fn tagged_series(&self) -> Result<Vec<String>, SourceError>;

    /// Canonical names of the tagged series matching every expression (`tag=value`,
    /// `tag!=value`, `tag=~regex`, `tag!=~regex`; the caller has validated them). The default
    /// filters [`MetricSource::tagged_series`]; a source with a tag index answers directly.
    fn find_tagged(&self, expressions: &[String]) -> Result<Vec<String>, SourceError> {
        let exprs = TagExpression::parse_all(expressions)
            .map_err(|e| SourceError::new(expressions.join(","), e))?;
        Ok(self
            .tagged_series()?
            .into_iter()
            .filter(|n| tags_match(&crate::series::tags_from_name(n), &exprs))
            .collect())
    }

    /// Every leaf metric name (for `/metrics/index.json`). The default walks the tree with
    /// [`MetricSource::find`].
    fn leaves(&self) -> Result<Vec<String>, SourceError> {
        let mut out = Vec::new();
        let mut todo = vec!["*".to_owned()];
        while let Some(pattern) = todo.pop() {
            for m in self.find(&pattern)? {
                if m.is_leaf {
                    out.push(m.path.clone());
                } else if !m.path.starts_with("_tagged") {
                    todo.push(format!("{}.*", m.path));
                }
            }
        }
        out.extend(self.tagged_series()?);
        out.sort();
        out.dedup();
        Ok(out)
    }
}

impl<T: MetricSource + ?Sized> MetricSource for std::sync::Arc<T> {
    fn find(&self, pattern: &str) -> Result<Vec<FindMatch>, SourceError> {
        (**self).find(pattern)
    }
    fn fetch(
        &self,
        name: &str,
        from: i64,
        until: i64,
        now: i64,
    ) -> Result<Option<FetchedSeries>, SourceError> {
        (**self).fetch(name, from, until, now)
    }
    fn fetch_selection<'a>(
        &'a self,
        selector: Selector<'_>,
        names: &'a [String],
        from: i64,
        until: i64,
        now: i64,
    ) -> Result<FetchIter<'a>, SourceError> {
        (**self).fetch_selection(selector, names, from, until, now)
    }
    fn local_source(&self) -> Option<std::sync::Arc<dyn MetricSource>> {
        (**self).local_source()
    }
    fn tagged_series(&self) -> Result<Vec<String>, SourceError> {
        (**self).tagged_series()
    }
    fn find_tagged(&self, expressions: &[String]) -> Result<Vec<String>, SourceError> {
        (**self).find_tagged(expressions)
    }
    fn leaves(&self) -> Result<Vec<String>, SourceError> {
        (**self).leaves()
    }
}

/// Whether a series with `tags` passes every expression (an absent tag compares as "").
pub(crate) fn tags_match(tags: &BTreeMap<String, String>, exprs: &[TagExpression]) -> bool {
    exprs
        .iter()
        .all(|e| e.accepts(tags.get(e.tag()).map_or("", String::as_str)))
}

/// Stored points of one in-memory metric: one slot per step from `first`, NaN = no point.
#[derive(Debug, Clone)]
struct Stored {
    step: i64,
    first: i64,
    slots: Vec<f64>,
}

/// An in-memory [`MetricSource`] with whisper's fetch semantics (spec §7): the first point is
/// the first step boundary after `from`, the last the boundary at or before `until`. Retention
/// limits are not modelled: every inserted point stays readable.
#[derive(Debug, Default)]
pub struct MemorySource {
    metrics: RwLock<BTreeMap<String, Stored>>,
}

impl MemorySource {
    /// An empty source.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a metric with a fixed step and `(timestamp, value)` points;
    /// timestamps are floored to the step like whisper does.
    pub fn insert(&self, name: &str, step: i64, points: impl IntoIterator<Item = (i64, f64)>) {
        let step = step.max(1);
        let points: Vec<(i64, f64)> = points
            .into_iter()
            .map(|(t, v)| (t - t.rem_euclid(step), v))
            .collect();
        let first = points.iter().map(|p| p.0).min().unwrap_or(0);
        let last = points.iter().map(|p| p.0).max().unwrap_or(0);
        let mut slots = vec![f64::NAN; ((last - first) / step + 1) as usize];
        if points.is_empty() {
            slots.clear();
        }
        for (t, v) in points {
            slots[((t - first) / step) as usize] = v;
        }
        if let Ok(mut m) = self.metrics.write() {
            m.insert(name.to_owned(), Stored { step, first, slots });
        }
    }
}

impl MetricSource for MemorySource {
    fn find(&self, pattern: &str) -> Result<Vec<FindMatch>, SourceError> {
        let metrics = self
            .metrics
            .read()
            .map_err(|_| SourceError::new(pattern, "memory source lock poisoned"))?;
        let mut out = std::collections::BTreeSet::new();
        if pattern.contains(';') {
            if metrics.contains_key(pattern) {
                out.insert(FindMatch {
                    path: pattern.to_owned(),
                    is_leaf: true,
                });
            }
            return Ok(out.into_iter().collect());
        }
        let depth = pattern.split('.').count();
        let glob = Glob::new(pattern);
        for name in metrics.keys().filter(|n| !n.contains(';')) {
            let nodes: Vec<&str> = name.split('.').collect();
            if nodes.len() < depth {
                continue;
            }
            let prefix = nodes[..depth].join(".");
            if nodes.iter().take(depth).any(|n| n.starts_with('.')) || !glob.matches(&prefix) {
                continue;
            }
            out.insert(FindMatch {
                path: prefix,
                is_leaf: nodes.len() == depth,
            });
        }
        Ok(out.into_iter().collect())
    }

    fn fetch(
        &self,
        name: &str,
        from: i64,
        until: i64,
        now: i64,
    ) -> Result<Option<FetchedSeries>, SourceError> {
        let metrics = self
            .metrics
            .read()
            .map_err(|_| SourceError::new(name, "memory source lock poisoned"))?;
        let Some(stored) = metrics.get(name) else {
            return Ok(None);
        };
        if from > now {
            return Ok(None);
        }
        let until = until.min(now);
        let step = stored.step;
        let from_i = from - from.rem_euclid(step) + step;
        let mut until_i = until - until.rem_euclid(step) + step;
        if from_i == until_i {
            until_i += step;
        }
        if until_i < from_i {
            return Ok(None);
        }
        let values = (0..(until_i - from_i) / step)
            .map(|k| {
                let slot = (from_i + k * step - stored.first) / step;
                usize::try_from(slot)
                    .ok()
                    .and_then(|i| stored.slots.get(i))
                    .copied()
                    .filter(|v| !v.is_nan())
            })
            .collect();
        Ok(Some(FetchedSeries {
            start: from_i,
            end: until_i,
            step,
            values,
        }))
    }

    fn tagged_series(&self) -> Result<Vec<String>, SourceError> {
        let metrics = self
            .metrics
            .read()
            .map_err(|_| SourceError::new("tags", "memory source lock poisoned"))?;
        Ok(metrics
            .keys()
            .filter(|n| n.contains(';'))
            .cloned()
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_fetch_has_whisper_boundaries() {
        let src = MemorySource::new();
        src.insert("a.b", 60, (0..100).map(|i| (6000 + i * 60, i as f64)));
        // from=E-3600, until=E at 60 s → 60 points from E-3540 to E (spec §7).
        let e = 9000;
        let f = src.fetch("a.b", e - 3600, e, e).unwrap().unwrap();
        assert_eq!((f.start, f.end, f.values.len()), (e - 3540, e + 60, 60));
        assert!(src.fetch("a.b", e + 10, e + 100, e).unwrap().is_none());
        let m = src.find("a.*").unwrap();
        assert_eq!(
            m,
            vec![FindMatch {
                path: "a.b".into(),
                is_leaf: true
            }]
        );
        assert_eq!(
            src.find("*").unwrap()[0],
            FindMatch {
                path: "a".into(),
                is_leaf: false
            }
        );
    }
}
