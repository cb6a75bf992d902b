//! Plugin output: splitting it the way munin-node relays it (spec §2.6), and reading field
//! types and values out of it for the sender (spec §3.3–3.5).

use std::collections::HashMap;

use crate::rate::{Kind, Limits, Raw};

/// Splits plugin stdout on runs of CR/LF like munin-node (blank lines and CRs vanish, a
/// missing final newline does not matter) and drops lines that are exactly `.`, which would
/// end the reply early and desynchronise the session (the one deliberate deviation from
/// munin-node, spec §2.6). Returns the lines and how many `.` lines were dropped.
pub(crate) fn split_lines(stdout: &[u8]) -> (Vec<String>, usize) {
    let text = String::from_utf8_lossy(stdout);
    let mut dropped = 0;
    let lines = text
        .split(['\r', '\n'])
        .filter(|l| !l.is_empty())
        .filter(|l| {
            if *l == "." {
                dropped += 1;
                false
            } else {
                true
            }
        })
        .map(str::to_owned)
        .collect();
    (lines, dropped)
}

/// Type and limits of one field.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct FieldConf {
    pub(crate) kind: Option<Kind>,
    pub(crate) limits: Limits,
}

/// What the sender needs from a plugin's `config` output: per graph, per field, the type and
/// limits. The plugin's own name is the graph until a `multigraph` line names another.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct PluginConfig {
    pub(crate) fields: HashMap<(String, String), FieldConf>,
}

impl PluginConfig {
    pub(crate) fn parse(plugin: &str, lines: &[String]) -> Self {
        let mut cfg = PluginConfig::default();
        let mut graph = plugin.to_owned();
        for line in lines {
            if let Some(name) = line.strip_prefix("multigraph ") {
                graph = name.trim().to_owned();
                continue;
            }
            let Some((key, value)) = line.split_once(' ') else {
                continue;
            };
            let Some((field, attr)) = key.split_once('.') else {
                continue;
            };
            let value = value.trim();
            let entry = || (graph.clone(), field.to_owned());
            match attr {
                "type" => {
                    cfg.fields.entry(entry()).or_default().kind = Some(Kind::from_munin(value));
                }
                "min" => {
                    cfg.fields.entry(entry()).or_default().limits.min = value.parse().ok();
                }
                "max" => {
                    cfg.fields.entry(entry()).or_default().limits.max = value.parse().ok();
                }
                _ => {}
            }
        }
        cfg
    }

    pub(crate) fn field(&self, graph: &str, field: &str) -> FieldConf {
        // lookups by (&str, &str) would need a borrowed key type; plugins are small
        self.fields
            .get(&(graph.to_owned(), field.to_owned()))
            .copied()
            .unwrap_or_default()
    }
}

/// One value line of fetch output.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Value<'a> {
    pub(crate) graph: &'a str,
    pub(crate) field: &'a str,
    /// `None` for `U`.
    pub(crate) raw: Option<Raw>,
    /// The `epoch:` prefix, when given.
    pub(crate) at: Option<i64>,
}

/// The value lines of fetch (or dirty config) output, with their graph.
pub(crate) fn values<'a>(plugin: &'a str, lines: &'a [String]) -> Vec<Value<'a>> {
    let mut graph = plugin;
    let mut out = Vec::new();
    for line in lines {
        if let Some(name) = line.strip_prefix("multigraph ") {
            graph = name.trim();
            continue;
        }
        let Some((field, rest)) = line.split_once(".value ") else {
            continue;
        };
        if field.is_empty() || field.contains(' ') {
            continue;
        }
        let rest = rest.trim();
        let (at, v) = match rest.split_once(':') {
            Some((epoch, v)) => match epoch.parse::<i64>() {
                Ok(e) => (Some(e), v),
                Err(_) => continue,
            },
            None => (None, rest),
        };
        out.push(Value {
            graph,
            field,
            raw: Raw::parse_munin(v),
            at,
        });
    }
    out
}

/// A Munin graph or field name as a Graphite path: dots of multigraph names stay as the
/// hierarchy, other characters outside `[A-Za-z0-9_-]` become `_` (the master's rule for
/// file names, spec §2.5).
pub(crate) fn graphite_path(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for part in name.split('.').filter(|p| !p.is_empty()) {
        if !out.is_empty() {
            out.push('.');
        }
        out.extend(part.chars().map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        }));
    }
    if out.is_empty() {
        out.push('_');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitting_like_munin_node_with_lone_dot_dropped() {
        // the t_garbage plugin of the spec's transcripts (T34): CRLF, blank lines, junk,
        // U, an epoch-stamped value, a lone ".", no final newline
        let out = b"a.value 1\r\n\r\n\nb.value U\n.\njunk line\nc.value 1700000000:5";
        let (lines, dropped) = split_lines(out);
        assert_eq!(
            lines,
            [
                "a.value 1",
                "b.value U",
                "junk line",
                "c.value 1700000000:5"
            ]
        );
        assert_eq!(dropped, 1);
        let (lines, _) = split_lines(b"");
        assert!(lines.is_empty());
        // ".." and ". " are not lone dots
        let (lines, dropped) = split_lines(b"..\n. \n");
        assert_eq!((lines.len(), dropped), (2, 0));
    }

    #[test]
    fn config_types_and_limits_per_graph() {
        let lines: Vec<String> = [
            "graph_title x",
            "total.type DERIVE",
            "total.min 0",
            "multigraph t_multi.child1",
            "part.type COUNTER",
            "part.max 100",
            "this is not a munin line",
        ]
        .map(String::from)
        .to_vec();
        let c = PluginConfig::parse("t_multi", &lines);
        assert_eq!(c.field("t_multi", "total").kind, Some(Kind::Derive));
        assert_eq!(c.field("t_multi", "total").limits.min, Some(0.0));
        assert_eq!(c.field("t_multi.child1", "part").kind, Some(Kind::Counter));
        assert_eq!(c.field("t_multi.child1", "part").limits.max, Some(100.0));
        assert_eq!(c.field("t_multi", "nope"), FieldConf::default());
    }

    #[test]
    fn fetch_values() {
        let lines: Vec<String> = [
            "multigraph t_multi",
            "total.value 1795760347",
            "multigraph t_multi.child1",
            "part.value 3.5",
            "u.value U",
            "e.value 1700000000:5",
            "bad.value x:5",
            "extinfo.extinfo hello",
        ]
        .map(String::from)
        .to_vec();
        let v = values("t_multi", &lines);
        assert_eq!(v.len(), 4);
        assert_eq!(v[0].graph, "t_multi");
        assert_eq!(v[0].raw, Some(Raw::Int(1795760347)));
        assert_eq!(v[1].graph, "t_multi.child1");
        assert_eq!(v[1].raw, Some(Raw::Float(3.5)));
        assert_eq!(v[2].raw, None);
        assert_eq!(v[3].at, Some(1700000000));
    }

    #[test]
    fn graphite_paths() {
        assert_eq!(graphite_path("diskstats_iops.vda"), "diskstats_iops.vda");
        assert_eq!(graphite_path("if_eth0"), "if_eth0");
        assert_eq!(graphite_path("snmp_host@x:y"), "snmp_host_x_y");
        assert_eq!(graphite_path("a..b."), "a.b");
        assert_eq!(graphite_path(""), "_");
    }
}
