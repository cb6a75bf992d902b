//! The in-memory metric index: a tree of plain names for Graphite glob `find`, and a tag index
//! for tagged series (`seriesByTag` and the tag endpoints). Kept in step with the data
//! directory: filled by a scan on open and updated whenever a metric is first accepted.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use regex::Regex;

use crate::error::TagError;
use crate::glob::{Glob, NodePattern};

/// One result of [`Index::find`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct FindMatch {
    /// Full dotted path.
    pub path: String,
    /// A metric (leaf) rather than a branch. A path that is both yields two matches.
    pub is_leaf: bool,
}

#[derive(Debug, Default)]
struct Node {
    children: BTreeMap<Box<str>, Node>,
    leaf: bool,
}

/// The plain-name tree and the tag index.
#[derive(Debug, Default)]
pub(crate) struct Index {
    root: Node,
    leaves: usize,
    tags: TagIndex,
}

impl Index {
    /// Adds a metric; returns whether it was new.
    pub(crate) fn insert(&mut self, name: &str, tagged: bool) -> bool {
        if tagged {
            return self.tags.insert(name);
        }
        let mut node = &mut self.root;
        for part in name.split('.') {
            node = node.children.entry(part.into()).or_default();
        }
        let new = !node.leaf;
        node.leaf = true;
        self.leaves += usize::from(new);
        new
    }

    /// Number of plain and tagged metrics.
    pub(crate) fn len(&self) -> usize {
        self.leaves + self.tags.series.len()
    }

    /// Graphite `find`: the nodes at the pattern's depth whose names match, sorted by name,
    /// a branch before a leaf of the same name.
    pub(crate) fn find(&self, pattern: &str) -> Vec<FindMatch> {
        let glob = Glob::new(pattern);
        let mut out = Vec::new();
        let mut prefix = String::new();
        walk(&self.root, glob.nodes(), &mut prefix, &mut out);
        out
    }

    /// Every plain leaf, sorted, then every tagged series, sorted.
    pub(crate) fn all_metrics(&self) -> Vec<String> {
        let mut out = Vec::with_capacity(self.len());
        let mut prefix = String::new();
        collect_leaves(&self.root, &mut prefix, &mut out);
        out.extend(self.tags.series.iter().map(|s| s.to_string()));
        out
    }

    pub(crate) fn tags(&self) -> &TagIndex {
        &self.tags
    }
}

fn walk(node: &Node, parts: &[NodePattern], prefix: &mut String, out: &mut Vec<FindMatch>) {
    let Some((pattern, rest)) = parts.split_first() else {
        return;
    };
    let mut visit = |name: &str, child: &Node, out: &mut Vec<FindMatch>| {
        let len = prefix.len();
        if !prefix.is_empty() {
            prefix.push('.');
        }
        prefix.push_str(name);
        if rest.is_empty() {
            if !child.children.is_empty() {
                out.push(FindMatch {
                    path: prefix.clone(),
                    is_leaf: false,
                });
            }
            if child.leaf {
                out.push(FindMatch {
                    path: prefix.clone(),
                    is_leaf: true,
                });
            }
        } else {
            walk(child, rest, prefix, out);
        }
        prefix.truncate(len);
    };
    match pattern.literal() {
        Some(name) => {
            if let Some(child) = node.children.get(name) {
                visit(name, child, out);
            }
        }
        None => {
            for (name, child) in &node.children {
                if pattern.matches(name) {
                    visit(name, child, out);
                }
            }
        }
    }
}

fn collect_leaves(node: &Node, prefix: &mut String, out: &mut Vec<String>) {
    for (name, child) in &node.children {
        let len = prefix.len();
        if !prefix.is_empty() {
            prefix.push('.');
        }
        prefix.push_str(name);
        if child.leaf {
            out.push(prefix.clone());
        }
        collect_leaves(child, prefix, out);
        prefix.truncate(len);
    }
}

/// The series carrying each value of one tag.
type SeriesByValue = BTreeMap<Box<str>, BTreeSet<Arc<str>>>;

/// Tagged series by tag and value.
#[derive(Debug, Default)]
pub(crate) struct TagIndex {
    series: BTreeSet<Arc<str>>,
    values: HashMap<Box<str>, SeriesByValue>,
}

/// One `seriesByTag` expression: `tag=value`, `tag!=value`, `tag=~regex` or `tag!=~regex`
/// (regular expressions anchored at the start, as graphite-web does).
#[derive(Debug, Clone)]
pub enum TagExpression {
    Equal(String, String),
    NotEqual(String, String),
    Match(String, Regex),
    NotMatch(String, Regex),
}

impl TagExpression {
    /// Parses one expression.
    pub fn parse(text: &str) -> Result<TagExpression, TagError> {
        let bad = || TagError::Expression {
            expression: text.to_owned(),
        };
        // The tag runs to the first operator character, as graphite-web's tagspec
        // `^([^;!=]+)(!?=~?)([^;]*)$` reads it.
        let (tag, op, value) = if let Some((t, v)) = text.split_once("!=~") {
            (t, "!=~", v)
        } else if let Some((t, v)) = text.split_once("=~") {
            (t, "=~", v)
        } else if let Some((t, v)) = text.split_once("!=") {
            (t, "!=", v)
        } else if let Some((t, v)) = text.split_once('=') {
            (t, "=", v)
        } else {
            return Err(bad());
        };
        let tag = tag.trim().to_owned();
        if tag.is_empty() || tag.contains([';', '!', '=']) || value.contains(';') {
            return Err(bad());
        }
        let regex = |v: &str| {
            let anchored = if v.starts_with('^') {
                v.to_owned()
            } else {
                format!("^(?:{v})")
            };
            Regex::new(&anchored).map_err(|e| TagError::Regex {
                expression: text.to_owned(),
                reason: e.to_string(),
            })
        };
        Ok(match op {
            "=" => TagExpression::Equal(tag, value.to_owned()),
            "!=" => TagExpression::NotEqual(tag, value.to_owned()),
            "=~" => TagExpression::Match(tag, regex(value)?),
            _ => TagExpression::NotMatch(tag, regex(value)?),
        })
    }

    /// Parses a whole query: at least one expression, and at least one that can fail on an
    /// empty value (otherwise every series would match, which graphite-web refuses).
    pub fn parse_all<S: AsRef<str>>(texts: &[S]) -> Result<Vec<TagExpression>, TagError> {
        let exprs = texts
            .iter()
            .map(|t| TagExpression::parse(t.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        if exprs.is_empty() {
            return Err(TagError::NoExpressions);
        }
        if exprs.iter().all(|e| e.accepts("")) {
            return Err(TagError::MatchesEverything);
        }
        Ok(exprs)
    }

    /// The tag compared.
    pub fn tag(&self) -> &str {
        match self {
            TagExpression::Equal(t, _)
            | TagExpression::NotEqual(t, _)
            | TagExpression::Match(t, _)
            | TagExpression::NotMatch(t, _) => t,
        }
    }

    /// Whether a series whose tag has `value` (empty when absent) passes.
    pub fn accepts(&self, value: &str) -> bool {
        match self {
            TagExpression::Equal(_, v) => value == v,
            TagExpression::NotEqual(_, v) => value != v,
            TagExpression::Match(_, r) => r.is_match(value),
            TagExpression::NotMatch(_, r) => !r.is_match(value),
        }
    }
}

impl TagIndex {
    fn insert(&mut self, name: &str) -> bool {
        if self.series.contains(name) {
            return false;
        }
        let series: Arc<str> = name.into();
        for (tag, value) in crate::name::tags_of(name) {
            self.values
                .entry(tag.into())
                .or_default()
                .entry(value.into())
                .or_default()
                .insert(Arc::clone(&series));
        }
        self.series.insert(series);
        true
    }

    fn value_of<'a>(series: &'a str, tag: &str) -> &'a str {
        crate::name::tags_of(series)
            .into_iter()
            .find(|(t, _)| *t == tag)
            .map_or("", |(_, v)| v)
    }

    /// The series matching every expression, sorted (Graphite's `seriesByTag`).
    pub(crate) fn find_series(&self, expressions: &[&str]) -> Result<Vec<String>, TagError> {
        let exprs = TagExpression::parse_all(expressions)?;
        // Start from the smallest candidate set an expression that rejects the empty value
        // gives; without one, every series would match, which Graphite refuses.
        let mut candidates: Option<BTreeSet<&Arc<str>>> = None;
        for expr in &exprs {
            if expr.accepts("") {
                continue;
            }
            let Some(values) = self.values.get(expr.tag()) else {
                return Ok(Vec::new());
            };
            let set: BTreeSet<&Arc<str>> = values
                .iter()
                .filter(|(v, _)| expr.accepts(v))
                .flat_map(|(_, s)| s.iter())
                .collect();
            if candidates.as_ref().is_none_or(|c| set.len() < c.len()) {
                candidates = Some(set);
            }
        }
        let Some(candidates) = candidates else {
            // parse_all guarantees an expression that rejects the empty value.
            return Ok(Vec::new());
        };
        Ok(candidates
            .into_iter()
            .filter(|s| exprs.iter().all(|e| e.accepts(Self::value_of(s, e.tag()))))
            .map(|s| s.to_string())
            .collect())
    }

    /// Sorted tag names. With expressions: the tags of matching series, minus the tags the
    /// expressions use. Filtered by `prefix`, at most `limit`.
    pub(crate) fn tag_names(
        &self,
        expressions: &[&str],
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<String>, TagError> {
        let mut names: BTreeSet<&str> = BTreeSet::new();
        if expressions.is_empty() {
            names.extend(self.values.keys().map(|k| &**k));
        } else {
            let used: Vec<&str> = expressions
                .iter()
                .map(|e| TagExpression::parse(e).map(|x| x.tag().to_owned()))
                .collect::<Result<Vec<_>, _>>()?
                .iter()
                .map(|t| {
                    self.values
                        .get_key_value(t.as_str())
                        .map_or("", |(k, _)| &**k)
                })
                .collect();
            for series in self.find_series(expressions)? {
                for (tag, _) in crate::name::tags_of(&series) {
                    if let Some((key, _)) = self.values.get_key_value(tag)
                        && !used.contains(&&**key)
                    {
                        names.insert(key);
                    }
                }
            }
        }
        Ok(names
            .into_iter()
            .filter(|n| n.starts_with(prefix))
            .take(limit)
            .map(str::to_owned)
            .collect())
    }

    /// Sorted distinct values of `tag` (on series matching the expressions, if any), with the
    /// number of series carrying each, filtered by `prefix`, at most `limit`.
    pub(crate) fn tag_values(
        &self,
        tag: &str,
        expressions: &[&str],
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<(String, usize)>, TagError> {
        let Some(values) = self.values.get(tag) else {
            return Ok(Vec::new());
        };
        if expressions.is_empty() {
            return Ok(values
                .iter()
                .filter(|(v, _)| v.starts_with(prefix))
                .take(limit)
                .map(|(v, s)| (v.to_string(), s.len()))
                .collect());
        }
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for series in self.find_series(expressions)? {
            let value = Self::value_of(&series, tag);
            if !value.is_empty() && value.starts_with(prefix) {
                *counts.entry(value.to_owned()).or_default() += 1;
            }
        }
        Ok(counts.into_iter().take(limit).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(names: &[&str]) -> Index {
        let mut index = Index::default();
        for name in names {
            let n = crate::name::MetricName::parse(name).unwrap();
            index.insert(n.as_str(), n.is_tagged());
        }
        index
    }

    fn find(index: &Index, pattern: &str) -> Vec<(String, bool)> {
        index
            .find(pattern)
            .into_iter()
            .map(|m| (m.path, m.is_leaf))
            .collect()
    }

    #[test]
    fn globs_over_the_tree() {
        let index = index(&[
            "test.web1.cpu.user",
            "test.web1.cpu.idle",
            "test.web2.cpu.user",
            "test.db1.cpu.user",
            "test.web1",
        ]);
        assert_eq!(find(&index, "test"), [("test".into(), false)]);
        assert_eq!(
            find(&index, "test.*"),
            [
                ("test.db1".into(), false),
                ("test.web1".into(), false),
                ("test.web1".into(), true),
                ("test.web2".into(), false)
            ]
        );
        assert_eq!(
            find(&index, "test.web?.cpu.user"),
            [
                ("test.web1.cpu.user".into(), true),
                ("test.web2.cpu.user".into(), true)
            ]
        );
        assert_eq!(
            find(&index, "test.{db*,web2}.cpu.*").len(),
            2,
            "{:?}",
            find(&index, "test.{db*,web2}.cpu.*")
        );
        assert_eq!(
            find(&index, "test.[!w]*.cpu.user"),
            [("test.db1.cpu.user".into(), true)]
        );
        assert_eq!(
            find(&index, "test.web[1-1].cpu.i*"),
            [("test.web1.cpu.idle".into(), true)]
        );
        assert!(find(&index, "nothing.*").is_empty());
        assert!(find(&index, "test.web1.cpu.user.deeper").is_empty());
        assert_eq!(
            index.all_metrics(),
            [
                "test.db1.cpu.user",
                "test.web1",
                "test.web1.cpu.idle",
                "test.web1.cpu.user",
                "test.web2.cpu.user"
            ]
        );
    }

    /// The example of the render-api spec, section 16.
    fn tagged() -> Index {
        index(&[
            "disk.used;dc=east;host=db1",
            "disk.used;dc=east;host=web1",
            "disk.used;dc=west;host=web2",
        ])
    }

    #[test]
    fn series_by_tag() {
        let tags = tagged();
        let tags = tags.tags();
        assert_eq!(
            tags.find_series(&["dc=east"]).unwrap(),
            ["disk.used;dc=east;host=db1", "disk.used;dc=east;host=web1"]
        );
        assert_eq!(
            tags.find_series(&["dc=east", "host!=db1"]).unwrap(),
            ["disk.used;dc=east;host=web1"]
        );
        assert_eq!(
            tags.find_series(&["host=~web"]).unwrap(),
            ["disk.used;dc=east;host=web1", "disk.used;dc=west;host=web2"]
        );
        // Anchored at the start only.
        assert!(tags.find_series(&["host=~eb"]).unwrap().is_empty());
        assert_eq!(
            tags.find_series(&["name=disk.used", "host!=~web.*"])
                .unwrap(),
            ["disk.used;dc=east;host=db1"]
        );
        assert_eq!(
            tags.find_series(&["rack=r1"]).unwrap(),
            Vec::<String>::new()
        );
        // An absent tag compares as empty.
        assert_eq!(tags.find_series(&["dc=west", "rack="]).unwrap().len(), 1);
        assert_eq!(
            tags.find_series(&["host!=x"]),
            Err(TagError::MatchesEverything)
        );
        assert_eq!(tags.find_series(&[]), Err(TagError::NoExpressions));
        assert!(matches!(
            tags.find_series(&["host=~("]),
            Err(TagError::Regex { .. })
        ));
        assert!(matches!(
            tags.find_series(&["novalue"]),
            Err(TagError::Expression { .. })
        ));
    }

    #[test]
    fn tag_autocomplete() {
        let index = tagged();
        let tags = index.tags();
        assert_eq!(
            tags.tag_names(&[], "", 100).unwrap(),
            ["dc", "host", "name"]
        );
        assert_eq!(
            tags.tag_names(&["dc=east"], "", 100).unwrap(),
            ["host", "name"]
        );
        assert_eq!(tags.tag_names(&["dc=east"], "h", 100).unwrap(), ["host"]);
        let values = |expr: &[&str]| -> Vec<String> {
            tags.tag_values("host", expr, "", 100)
                .unwrap()
                .into_iter()
                .map(|(v, _)| v)
                .collect()
        };
        assert_eq!(values(&[]), ["db1", "web1", "web2"]);
        assert_eq!(values(&["dc=east"]), ["db1", "web1"]);
        assert_eq!(
            tags.tag_values("dc", &[], "", 100).unwrap(),
            [("east".into(), 2), ("west".into(), 1)]
        );
        assert_eq!(
            tags.tag_values("dc", &[], "w", 1).unwrap(),
            [("west".into(), 1)]
        );
    }
}
