//! Metric names: validation, Graphite 1.1 tag normalisation, and the file each name lives in
//! (spec `whisper-carbon.md` sections 12.4 and 12.6).
//!
//! Carbon validates nothing and lets the filesystem fail; we refuse any name that could leave
//! the data directory or confuse the tree: empty nodes, `/` outside tag values, NUL and other
//! control characters, and overlong names or nodes.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Longest accepted metric name, in bytes.
pub const MAX_NAME_LEN: usize = 2048;
/// Longest accepted path node, in bytes: leaves room under the usual 255-byte file-name limit
/// for `.wsp` and the temporary suffix used while creating.
pub const MAX_NODE_LEN: usize = 200;

/// Why a metric name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    #[error("empty metric name")]
    Empty,
    #[error("metric name is {len} bytes, over the limit of {MAX_NAME_LEN}")]
    TooLong { len: usize },
    #[error("metric name has an empty node (leading, trailing or doubled '.')")]
    EmptyNode,
    #[error("metric name node is {len} bytes, over the limit of {MAX_NODE_LEN}")]
    NodeTooLong { len: usize },
    #[error("metric name contains a control character (byte {byte:#04x})")]
    ControlCharacter { byte: u8 },
    #[error("metric name contains '/'")]
    Slash,
    #[error("metric names may not start with the reserved node '_tagged'")]
    Reserved,
    #[error("tag '{tag}' is invalid: {reason}")]
    Tag { tag: String, reason: &'static str },
}

/// A validated metric name in canonical form.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MetricName<'a> {
    canonical: Cow<'a, str>,
    tagged: bool,
}

impl<'a> MetricName<'a> {
    /// Validates `name`. Tagged names (`name;tag=value;...`, or `name{tag="value",...}`) are
    /// brought into Carbon's canonical form: tags sorted by name after the metric name.
    pub fn parse(name: &'a str) -> Result<MetricName<'a>, NameError> {
        if name.is_empty() {
            return Err(NameError::Empty);
        }
        if name.len() > MAX_NAME_LEN {
            return Err(NameError::TooLong { len: name.len() });
        }
        if let Some(&byte) = name.as_bytes().iter().find(|b| b.is_ascii_control()) {
            return Err(NameError::ControlCharacter { byte });
        }
        if name.contains(';') || name.ends_with("\"}") {
            return Ok(MetricName {
                canonical: Cow::Owned(canonical_tagged(name)?),
                tagged: true,
            });
        }
        check_plain(name)?;
        Ok(MetricName {
            canonical: Cow::Borrowed(name),
            tagged: false,
        })
    }

    /// The canonical name.
    pub fn as_str(&self) -> &str {
        &self.canonical
    }

    /// Whether this is a Graphite 1.1 tagged series.
    pub fn is_tagged(&self) -> bool {
        self.tagged
    }

    /// The name with an owned buffer.
    pub fn into_owned(self) -> MetricName<'static> {
        MetricName {
            canonical: Cow::Owned(self.canonical.into_owned()),
            tagged: self.tagged,
        }
    }

    /// Where the whisper file lives under `root`: `a/b/c.wsp` for `a.b.c`; for a tagged series
    /// Carbon's `_tagged/<h[0:3]>/<h[3:6]>/<name with . as _DOT_>.wsp` (its readable form), or
    /// the hash-named `<h>.wsp` when the readable name cannot be a file name.
    pub fn path(&self, root: &Path) -> PathBuf {
        if !self.tagged {
            let mut path = root.to_path_buf();
            let (dirs, leaf) = self
                .canonical
                .rsplit_once('.')
                .unwrap_or(("", &self.canonical));
            path.extend(dirs.split('.').filter(|d| !d.is_empty()));
            path.push(format!("{leaf}.wsp"));
            return path;
        }
        let hash = tag_hash(&self.canonical);
        let dir = root.join(TAGGED_DIR).join(&hash[0..3]).join(&hash[3..6]);
        match readable_file_name(&self.canonical) {
            Some(file) => dir.join(file),
            None => dir.join(format!("{hash}.wsp")),
        }
    }

    /// The hash-named location of a tagged series (Carbon's TAG_HASH_FILENAMES default), to find
    /// files Carbon wrote.
    pub fn hashed_path(&self, root: &Path) -> Option<PathBuf> {
        self.tagged.then(|| {
            let hash = tag_hash(&self.canonical);
            root.join(TAGGED_DIR)
                .join(&hash[0..3])
                .join(&hash[3..6])
                .join(format!("{hash}.wsp"))
        })
    }

    /// `(tag, value)` pairs of a tagged name, `name` first; empty for plain names.
    pub fn tags(&self) -> Vec<(&str, &str)> {
        tags_of(&self.canonical)
    }
}

/// The top-level directory of tagged series; no plain name may start with it.
pub(crate) const TAGGED_DIR: &str = "_tagged";

fn check_plain(name: &str) -> Result<(), NameError> {
    if name.split('.').next() == Some(TAGGED_DIR) {
        return Err(NameError::Reserved);
    }
    if name.contains('/') {
        return Err(NameError::Slash);
    }
    for node in name.split('.') {
        if node.is_empty() {
            return Err(NameError::EmptyNode);
        }
        if node.len() > MAX_NODE_LEN {
            return Err(NameError::NodeTooLong { len: node.len() });
        }
    }
    Ok(())
}

fn tag_error(tag: &str, reason: &'static str) -> NameError {
    NameError::Tag {
        tag: tag.to_owned(),
        reason,
    }
}

/// Carbon's `TaggedSeries.parse` + `format`: validate, set `name`, sort the other tags.
fn canonical_tagged(raw: &str) -> Result<String, NameError> {
    let (metric, pairs) = split_tagged(raw)?;
    let metric = metric.trim_start_matches('~');
    if metric.is_empty() {
        return Err(tag_error("name", "the metric name is empty"));
    }
    check_tag_value(metric).map_err(|reason| tag_error("name", reason))?;
    let mut tags: Vec<(&str, &str)> = Vec::with_capacity(pairs.len());
    for (tag, value) in pairs {
        if tag.is_empty() {
            return Err(tag_error(tag, "empty tag name"));
        }
        if tag.contains([';', '!', '^', '=']) {
            return Err(tag_error(tag, "tag names may not contain ; ! ^ or ="));
        }
        if tag.contains('/') {
            return Err(tag_error(tag, "tag names may not contain '/'"));
        }
        if value.is_empty() {
            return Err(tag_error(tag, "empty value"));
        }
        if value.starts_with('~') {
            return Err(tag_error(tag, "values may not start with ~"));
        }
        check_tag_value(value).map_err(|reason| tag_error(tag, reason))?;
        if tag == "name" {
            continue;
        }
        // A repeated tag: the last one wins, as in Carbon's dict.
        tags.retain(|(t, _)| *t != tag);
        tags.push((tag, value));
    }
    tags.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let mut out = String::with_capacity(raw.len());
    out.push_str(metric);
    for (tag, value) in tags {
        out.push(';');
        out.push_str(tag);
        out.push('=');
        out.push_str(value);
    }
    Ok(out)
}

fn check_tag_value(value: &str) -> Result<(), &'static str> {
    if value.contains(';') {
        return Err("values may not contain ';'");
    }
    if value.len() > MAX_NAME_LEN {
        return Err("value too long");
    }
    Ok(())
}

/// Splits `name;a=b;c=d` or `name{a="b",c="d"}` into the metric and its pairs.
/// `(tag, value)` pairs as written, before validation.
type RawTags<'a> = Vec<(&'a str, &'a str)>;

fn split_tagged(raw: &str) -> Result<(&str, RawTags<'_>), NameError> {
    if let Some(body) = raw.strip_suffix('}')
        && let Some(open) = body.find('{')
        && !raw.contains(';')
    {
        let metric = &body[..open];
        let mut pairs = Vec::new();
        let mut rest = &body[open + 1..];
        while !rest.is_empty() {
            let eq = rest
                .find("=\"")
                .ok_or_else(|| tag_error(rest, "expected tag=\"value\""))?;
            let tag = rest[..eq].trim();
            let after = &rest[eq + 2..];
            let close = after
                .find('"')
                .ok_or_else(|| tag_error(tag, "unterminated value"))?;
            pairs.push((tag, &after[..close]));
            rest = after[close + 1..].trim_start_matches([',', ' ']);
        }
        return Ok((metric, pairs));
    }
    let mut parts = raw.split(';');
    let metric = parts.next().unwrap_or_default();
    let pairs = parts
        .map(|part| {
            part.split_once('=')
                .ok_or_else(|| tag_error(part, "expected tag=value"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((metric, pairs))
}

/// `(tag, value)` pairs of a canonical tagged name, with `("name", metric)` first.
pub(crate) fn tags_of(canonical: &str) -> Vec<(&str, &str)> {
    let mut parts = canonical.split(';');
    let Some(metric) = parts.next() else {
        return Vec::new();
    };
    if !canonical.contains(';') {
        return Vec::new();
    }
    std::iter::once(("name", metric))
        .chain(parts.filter_map(|p| p.split_once('=')))
        .collect()
}

/// Lowercase hex SHA-256 of the canonical name, as Carbon computes it.
fn tag_hash(canonical: &str) -> String {
    let digest = Sha256::digest(canonical.as_bytes());
    let mut hex = String::with_capacity(64);
    for byte in digest {
        use std::fmt::Write;
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

/// Carbon's readable file name for a tagged series, if it can be one: dots become `_DOT_`, and
/// the name must hold no `/`, no literal `_DOT_` (it would not decode back) and fit a file name.
fn readable_file_name(canonical: &str) -> Option<String> {
    if canonical.contains('/') || canonical.contains("_DOT_") {
        return None;
    }
    let file = format!("{}.wsp", canonical.replace('.', "_DOT_"));
    (file.len() <= MAX_NODE_LEN + 4).then_some(file)
}

/// The canonical name stored in a readable `_tagged` file name, if it is one.
pub(crate) fn decode_readable(file_stem: &str) -> Option<String> {
    let is_hash = file_stem.len() == 64 && file_stem.bytes().all(|b| b.is_ascii_hexdigit());
    if is_hash || !file_stem.contains(';') {
        return None;
    }
    let name = file_stem.replace("_DOT_", ".");
    MetricName::parse(&name).ok().map(|n| n.as_str().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Spec vector V27, for the names Charcoal accepts.
    #[test]
    fn paths_as_carbon_lays_them_out_v27() {
        let root = Path::new("/data");
        let path = |name: &str| MetricName::parse(name).unwrap().path(root);
        assert_eq!(path("a.b.c"), Path::new("/data/a/b/c.wsp"));
        assert_eq!(
            path("servers.web-01.cpu"),
            Path::new("/data/servers/web-01/cpu.wsp")
        );
        let tagged = MetricName::parse("cpu.load;host=a.b;dc=x").unwrap();
        assert_eq!(tagged.as_str(), "cpu.load;dc=x;host=a.b");
        assert_eq!(
            tagged.path(root),
            Path::new("/data/_tagged/659/3e2/cpu_DOT_load;dc=x;host=a_DOT_b.wsp")
        );
        assert_eq!(
            tagged.hashed_path(root).unwrap(),
            Path::new(
                "/data/_tagged/659/3e2/6593e25aef2c215d6171401e5020190465f08552a68376fd0d356a2bf4a22fa9.wsp"
            )
        );
        // Both orderings are one series.
        assert_eq!(
            MetricName::parse("cpu.load;dc=x;host=a.b")
                .unwrap()
                .as_str(),
            tagged.as_str()
        );
    }

    #[test]
    fn names_carbon_would_mangle_are_refused() {
        for (name, err) in [
            ("", NameError::Empty),
            ("..a..b", NameError::EmptyNode),
            ("a.b.", NameError::EmptyNode),
            (".a", NameError::EmptyNode),
            ("x/../../y", NameError::Slash),
            ("a/b", NameError::Slash),
            ("a\0b", NameError::ControlCharacter { byte: 0 }),
            ("a\nb", NameError::ControlCharacter { byte: b'\n' }),
            ("a\x7fb", NameError::ControlCharacter { byte: 0x7f }),
            ("_tagged.659.3e2.x", NameError::Reserved),
        ] {
            assert_eq!(MetricName::parse(name), Err(err), "{name:?}");
        }
        let long = "a".repeat(MAX_NAME_LEN + 1);
        assert!(matches!(
            MetricName::parse(&long),
            Err(NameError::TooLong { .. })
        ));
        let long_node = format!("a.{}", "b".repeat(MAX_NODE_LEN + 1));
        assert!(matches!(
            MetricName::parse(&long_node),
            Err(NameError::NodeTooLong { .. })
        ));
    }

    #[test]
    fn tag_rules() {
        let bad = [
            "a;=b", "a;t=", "a;t=~x", "a;t!x=1", "a;t^=1", "a;tag", ";t=v", "~;t=v", "a;t/x=1",
        ];
        for name in bad {
            assert!(MetricName::parse(name).is_err(), "{name}");
        }
        assert_eq!(MetricName::parse("~a;b=1").unwrap().as_str(), "a;b=1");
        assert_eq!(MetricName::parse("a;b=1;b=2").unwrap().as_str(), "a;b=2");
        assert_eq!(
            MetricName::parse("a;name=zz;b=1").unwrap().as_str(),
            "a;b=1"
        );
        assert_eq!(
            MetricName::parse("cpu{host=\"a\",dc=\"x y\"}")
                .unwrap()
                .as_str(),
            "cpu;dc=x y;host=a"
        );
        let n = MetricName::parse("disk.used;host=web1;dc=east").unwrap();
        assert_eq!(
            n.tags(),
            vec![("name", "disk.used"), ("dc", "east"), ("host", "web1")]
        );
    }

    #[test]
    fn tag_values_with_slashes_live_in_hash_named_files() {
        let n = MetricName::parse("fs.free;mount=/var/log").unwrap();
        let path = n.path(Path::new("/d"));
        assert_eq!(Some(path.clone()), n.hashed_path(Path::new("/d")));
        assert!(path.starts_with("/d/_tagged"));
        assert_eq!(path.components().count(), 6);
    }

    #[test]
    fn readable_names_decode_back() {
        let n = MetricName::parse("cpu.load;host=a.b;dc=x").unwrap();
        let path = n.path(Path::new("/d"));
        let stem = path.file_stem().unwrap().to_str().unwrap();
        assert_eq!(decode_readable(stem).as_deref(), Some(n.as_str()));
        assert_eq!(decode_readable(&"a".repeat(64)), None);
    }

    proptest::proptest! {
        /// No accepted name maps outside the data directory, whatever its bytes.
        #[test]
        fn accepted_names_stay_inside_the_root(name in "[a-z./;=~{}\"\\\\ _\\-]{1,40}") {
            if let Ok(n) = MetricName::parse(&name) {
                let root = Path::new("/data/root");
                let path = n.path(root);
                proptest::prop_assert!(path.starts_with(root));
                for c in path.strip_prefix(root).unwrap().components() {
                    proptest::prop_assert!(matches!(c, std::path::Component::Normal(_)), "{:?}", path);
                }
            }
        }
    }
}
