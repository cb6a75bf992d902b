//! Carbon's storage rules: `storage-schemas.conf` (retentions) and `storage-aggregation.conf`
//! (xFilesFactor and aggregation method), in Carbon's INI format, first match wins (spec
//! section 12.1). The caller reads the files; this module only parses text.

use std::path::{Path, PathBuf};

use regex::Regex;

use crate::aggregation::AggregationMethod;
use crate::error::{RetentionError, RulesError};
use crate::retention::{Retention, validate_archive_list};

/// What a new whisper file gets.
#[derive(Debug, Clone, PartialEq)]
pub struct NewFileSettings {
    /// Archives, finest first.
    pub retentions: Vec<Retention>,
    /// xFilesFactor (0..=1).
    pub x_files_factor: f64,
    /// Aggregation method.
    pub aggregation: AggregationMethod,
}

#[derive(Debug, Clone)]
struct SchemaRule {
    name: String,
    pattern: Regex,
    retentions: Vec<Retention>,
}

#[derive(Debug, Clone)]
struct AggregationRule {
    name: String,
    pattern: Regex,
    x_files_factor: Option<f64>,
    aggregation: Option<AggregationMethod>,
}

/// A section Carbon would skip (and log) rather than refuse to start over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedSection {
    /// The file.
    pub source: PathBuf,
    /// The section name.
    pub section: String,
    /// Why it was skipped.
    pub reason: String,
}

/// The retention and aggregation rules for new files.
#[derive(Debug, Clone)]
pub struct StorageRules {
    schemas: Vec<SchemaRule>,
    /// Retentions when no schema matches: Carbon's built-in `60:10080` after a schemas file,
    /// or the configured default when there is no file.
    fallback: Vec<Retention>,
    aggregations: Vec<AggregationRule>,
}

/// The retention Carbon appends after the sections of a storage-schemas.conf.
const CARBON_DEFAULT_SCHEMA: Retention = Retention::new(60, 10_080);
/// Retention used when no storage-schemas.conf is configured (cli.md).
pub const DEFAULT_RETENTION: Retention = Retention::new(60, 1_440);

impl Default for StorageRules {
    fn default() -> Self {
        StorageRules::with_default_retention(vec![DEFAULT_RETENTION])
    }
}

impl StorageRules {
    /// No rule files: every new file gets `retentions`, average, xFilesFactor 0.5.
    pub fn with_default_retention(retentions: Vec<Retention>) -> Self {
        StorageRules {
            schemas: Vec::new(),
            fallback: retentions,
            aggregations: Vec::new(),
        }
    }

    /// Parses a storage-schemas.conf. A section whose retentions fail to parse, or whose pattern
    /// is not a valid regular expression, is an error (Carbon refuses to start); a section
    /// missing a key or with an invalid archive list is skipped and reported, as Carbon does.
    pub fn parse_schemas(
        &mut self,
        text: &str,
        source: &Path,
    ) -> Result<Vec<SkippedSection>, RulesError> {
        let mut skipped = Vec::new();
        let mut schemas = Vec::new();
        for section in parse_ini(text, source)? {
            let skip = |reason: String| SkippedSection {
                source: source.to_owned(),
                section: section.name.clone(),
                reason,
            };
            let Some(retentions) = section.get("retentions") else {
                skipped.push(skip("missing 'retentions'".into()));
                continue;
            };
            let mut list = Vec::new();
            let mut invalid = None;
            for piece in retentions.split(',') {
                match piece.trim().parse::<Retention>() {
                    Ok(r) => list.push(r),
                    Err(e @ (RetentionError::ZeroPoints(_) | RetentionError::ZeroStep(_))) => {
                        invalid = Some(e);
                    }
                    Err(e) => return Err(section_error(source, &section.name, e.to_string())),
                }
            }
            let Some(pattern) = section.get("pattern") else {
                skipped.push(skip("missing 'pattern'".into()));
                continue;
            };
            let pattern = compile(source, &section.name, pattern)?;
            if let Some(e) = invalid {
                skipped.push(skip(format!(
                    "Invalid schemas found in {}: {e}",
                    section.name
                )));
                continue;
            }
            if let Err(e) = validate_archive_list(&mut list) {
                skipped.push(skip(format!(
                    "Invalid schemas found in {}: {e}",
                    section.name
                )));
                continue;
            }
            schemas.push(SchemaRule {
                name: section.name.clone(),
                pattern,
                retentions: list,
            });
        }
        self.schemas = schemas;
        self.fallback = vec![CARBON_DEFAULT_SCHEMA];
        Ok(skipped)
    }

    /// Parses a storage-aggregation.conf. An xFilesFactor that is not a number skips the
    /// section; one outside 0..1 or an unknown method is an error (Carbon fails to start).
    pub fn parse_aggregation(
        &mut self,
        text: &str,
        source: &Path,
    ) -> Result<Vec<SkippedSection>, RulesError> {
        let mut skipped = Vec::new();
        let mut rules = Vec::new();
        for section in parse_ini(text, source)? {
            let skip = |reason: String| SkippedSection {
                source: source.to_owned(),
                section: section.name.clone(),
                reason,
            };
            let x_files_factor = match section.get("xfilesfactor") {
                None => None,
                Some(text) => match parse_python_float(text) {
                    Some(x) if (0.0..=1.0).contains(&x) => Some(x),
                    Some(x) => {
                        return Err(section_error(
                            source,
                            &section.name,
                            format!("xFilesFactor {x} is not between 0 and 1"),
                        ));
                    }
                    None => {
                        skipped.push(skip(format!("Invalid schemas found in {}.", section.name)));
                        continue;
                    }
                },
            };
            let aggregation = match section.get("aggregationmethod") {
                None => None,
                Some(name) => Some(
                    name.parse::<AggregationMethod>()
                        .map_err(|e| section_error(source, &section.name, e.to_string()))?,
                ),
            };
            let Some(pattern) = section.get("pattern") else {
                skipped.push(skip("missing 'pattern'".into()));
                continue;
            };
            rules.push(AggregationRule {
                name: section.name.clone(),
                pattern: compile(source, &section.name, pattern)?,
                x_files_factor,
                aggregation,
            });
        }
        self.aggregations = rules;
        Ok(skipped)
    }

    /// Settings for a new file of `metric`: the first matching schema and the first matching
    /// aggregation rule (whose missing keys take whisper's defaults, 0.5 and average).
    pub fn settings_for(&self, metric: &str) -> NewFileSettings {
        let retentions = self
            .schemas
            .iter()
            .find(|s| s.pattern.is_match(metric))
            .map_or_else(|| self.fallback.clone(), |s| s.retentions.clone());
        let rule = self
            .aggregations
            .iter()
            .find(|a| a.pattern.is_match(metric));
        NewFileSettings {
            retentions,
            x_files_factor: rule.and_then(|r| r.x_files_factor).unwrap_or(0.5),
            aggregation: rule.and_then(|r| r.aggregation).unwrap_or_default(),
        }
    }

    /// Names of the schema and aggregation sections that match `metric` (for diagnostics).
    pub fn matching_sections(&self, metric: &str) -> (Option<&str>, Option<&str>) {
        (
            self.schemas
                .iter()
                .find(|s| s.pattern.is_match(metric))
                .map(|s| s.name.as_str()),
            self.aggregations
                .iter()
                .find(|a| a.pattern.is_match(metric))
                .map(|a| a.name.as_str()),
        )
    }
}

fn section_error(source: &Path, section: &str, problem: String) -> RulesError {
    RulesError::Section {
        path: source.to_owned(),
        section: section.to_owned(),
        problem,
    }
}

fn compile(source: &Path, section: &str, pattern: &str) -> Result<Regex, RulesError> {
    Regex::new(pattern).map_err(|e| {
        section_error(
            source,
            section,
            format!("pattern '{pattern}' is not a supported regular expression: {e}"),
        )
    })
}

/// Python's `float()` on a config value: decimal, exponent, inf/nan, underscores between digits.
fn parse_python_float(text: &str) -> Option<f64> {
    let t = text.trim();
    if t.contains("__") || t.starts_with('_') || t.ends_with('_') {
        return None;
    }
    let cleaned: String = t.chars().filter(|&c| c != '_').collect();
    let lower = cleaned.to_ascii_lowercase();
    let unsigned = lower.trim_start_matches(['+', '-']);
    if matches!(unsigned, "inf" | "infinity" | "nan") {
        return lower.parse::<f64>().ok().or(Some(f64::NAN));
    }
    if !cleaned
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return None;
    }
    cleaned.parse().ok()
}

struct Section {
    name: String,
    options: Vec<(String, String)>,
}

impl Section {
    fn get(&self, key: &str) -> Option<&str> {
        self.options
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// The subset of Python's ConfigParser that Carbon's files use: `[section]`, `key = value` or
/// `key: value` (keys case-insensitive), full-line `#`/`;` comments, indented continuation
/// lines, and errors for duplicates and stray text.
fn parse_ini(text: &str, source: &Path) -> Result<Vec<Section>, RulesError> {
    let syntax = |line: usize, problem: String| RulesError::Syntax {
        path: source.to_owned(),
        line,
        problem,
    };
    let mut sections: Vec<Section> = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line_no = index + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        if raw.starts_with([' ', '\t'])
            && let Some(last) = sections.last_mut().and_then(|s| s.options.last_mut())
        {
            last.1.push('\n');
            last.1.push_str(trimmed);
            continue;
        }
        if let Some(rest) = trimmed.strip_prefix('[') {
            let Some(name) = rest.rfind(']').map(|end| &rest[..end]) else {
                return Err(syntax(
                    line_no,
                    format!("unterminated section header {trimmed}"),
                ));
            };
            if name.is_empty() {
                return Err(syntax(line_no, "empty section name".into()));
            }
            if sections.iter().any(|s| s.name == name) {
                return Err(syntax(line_no, format!("section [{name}] appears twice")));
            }
            sections.push(Section {
                name: name.to_owned(),
                options: Vec::new(),
            });
            continue;
        }
        let Some(split) = trimmed.find(['=', ':']) else {
            return Err(syntax(
                line_no,
                format!("expected 'key = value', found {trimmed:?}"),
            ));
        };
        let key = trimmed[..split].trim().to_ascii_lowercase();
        let value = trimmed[split + 1..].trim().replace("%%", "%");
        if key.is_empty() {
            return Err(syntax(line_no, "option with an empty name".into()));
        }
        let Some(section) = sections.last_mut() else {
            return Err(syntax(line_no, "option before the first [section]".into()));
        };
        if section.options.iter().any(|(k, _)| *k == key) {
            return Err(syntax(
                line_no,
                format!("option '{key}' appears twice in [{}]", section.name),
            ));
        }
        section.options.push((key, value));
    }
    Ok(sections)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example files shipped with Carbon 1.1.10.
    const SCHEMAS: &str = "\
# Schema definitions for Whisper files. Entries are scanned in order,
# and first match wins. This file is scanned for changes every 60 seconds.

# Carbon's internal metrics. This entry should match what is specified in
# CARBON_METRIC_PREFIX and CARBON_METRIC_INTERVAL settings
[carbon]
pattern = ^carbon\\.
retentions = 60:90d

[default_1min_for_1day]
pattern = .*
retentions = 60s:1d
";

    const AGGREGATION: &str = "\
[min]
pattern = \\.min$
xFilesFactor = 0.1
aggregationMethod = min

[max]
pattern = \\.max$
xFilesFactor = 0.1
aggregationMethod = max

[sum]
pattern = \\.count$
xFilesFactor = 0
aggregationMethod = max

[default_average]
pattern = .*
xFilesFactor = 0.5
aggregationMethod = average
";

    fn rules() -> StorageRules {
        let mut rules = StorageRules::default();
        assert!(
            rules
                .parse_schemas(SCHEMAS, Path::new("s.conf"))
                .unwrap()
                .is_empty()
        );
        assert!(
            rules
                .parse_aggregation(AGGREGATION, Path::new("a.conf"))
                .unwrap()
                .is_empty()
        );
        rules
    }

    #[test]
    fn first_match_wins() {
        let rules = rules();
        let carbon = rules.settings_for("carbon.agents.host-a.cpuUsage");
        assert_eq!(carbon.retentions, vec![Retention::new(60, 129_600)]);
        assert_eq!(carbon.aggregation, AggregationMethod::Average);
        let min = rules.settings_for("stats.timers.api.min");
        assert_eq!(min.retentions, vec![Retention::new(60, 1440)]);
        assert_eq!(
            (min.aggregation, min.x_files_factor),
            (AggregationMethod::Min, 0.1)
        );
        let count = rules.settings_for("stats.timers.api.count");
        assert_eq!(
            (count.aggregation, count.x_files_factor),
            (AggregationMethod::Max, 0.0)
        );
        assert_eq!(
            rules.matching_sections("x.max"),
            (Some("default_1min_for_1day"), Some("max"))
        );
    }

    #[test]
    fn patterns_search_anywhere_in_the_name() {
        let mut rules = StorageRules::default();
        rules
            .parse_schemas("[a]\npattern = foo\nretentions = 10:10\n", Path::new("s"))
            .unwrap();
        assert_eq!(
            rules.settings_for("a.foo.b").retentions,
            vec![Retention::new(10, 10)]
        );
        // Carbon's built-in catch-all after the file's sections.
        assert_eq!(
            rules.settings_for("bar").retentions,
            vec![Retention::new(60, 10_080)]
        );
    }

    #[test]
    fn without_files_the_configured_default_applies() {
        let rules = StorageRules::default();
        let s = rules.settings_for("anything");
        assert_eq!(s.retentions, vec![DEFAULT_RETENTION]);
        assert_eq!(
            (s.aggregation, s.x_files_factor),
            (AggregationMethod::Average, 0.5)
        );
    }

    #[test]
    fn matched_aggregation_rule_without_keys_uses_whisper_defaults() {
        let mut rules = StorageRules::default();
        rules
            .parse_aggregation(
                "[a]\npattern = ^a\n[b]\npattern = .*\naggregationMethod = sum\n",
                Path::new("a"),
            )
            .unwrap();
        let s = rules.settings_for("a.b");
        assert_eq!(
            (s.aggregation, s.x_files_factor),
            (AggregationMethod::Average, 0.5)
        );
        assert_eq!(rules.settings_for("b").aggregation, AggregationMethod::Sum);
    }

    #[test]
    fn invalid_sections_are_skipped_like_carbon() {
        let mut rules = StorageRules::default();
        let text = "[noret]\npattern = x\n[nopat]\nretentions = 60:10\n[bad]\npattern = y\n\
                    retentions = 60:10,90:100\n[zero]\npattern = z\nretentions = 1m:30s\n\
                    [good]\npattern = .*\nretentions = 10s:1h\n";
        let skipped = rules.parse_schemas(text, Path::new("s")).unwrap();
        let names: Vec<&str> = skipped.iter().map(|s| s.section.as_str()).collect();
        assert_eq!(names, ["noret", "nopat", "bad", "zero"]);
        assert!(
            skipped[2].reason.contains("evenly divide"),
            "{}",
            skipped[2].reason
        );
        assert_eq!(
            rules.settings_for("y").retentions,
            vec![Retention::new(10, 360)]
        );
    }

    #[test]
    fn fatal_errors_name_file_section_and_problem() {
        let mut rules = StorageRules::default();
        // whisper's unit words are accepted, a superset of Carbon's single letters.
        let skipped = rules
            .parse_schemas(
                "[a]\npattern = .*\nretentions = 15min:1d\n",
                Path::new("/etc/s.conf"),
            )
            .unwrap();
        assert!(skipped.is_empty());
        assert_eq!(
            rules.settings_for("m").retentions,
            vec![Retention::new(900, 96)]
        );
        let err = rules
            .parse_schemas(
                "[a]\npattern = .*\nretentions = 10x:1d\n",
                Path::new("/etc/s.conf"),
            )
            .unwrap_err()
            .to_string();
        assert_eq!(err, "/etc/s.conf: section [a]: Invalid unit 'x'");
        let err = rules
            .parse_schemas("[a]\npattern = (\nretentions = 10:1\n", Path::new("s"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("section [a]: pattern '('"), "{err}");
        let err = rules
            .parse_aggregation("[a]\npattern = .*\nxFilesFactor = 1.5\n", Path::new("a"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "a: section [a]: xFilesFactor 1.5 is not between 0 and 1"
        );
        let err = rules
            .parse_aggregation(
                "[a]\npattern = .*\naggregationMethod = median\n",
                Path::new("a"),
            )
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "a: section [a]: Unrecognized aggregation method: median"
        );
        let skipped = rules
            .parse_aggregation("[a]\npattern = .*\nxFilesFactor = half\n", Path::new("a"))
            .unwrap();
        assert_eq!(skipped[0].reason, "Invalid schemas found in a.");
    }

    #[test]
    fn ini_syntax() {
        let err = |text: &str| {
            parse_ini(text, Path::new("f"))
                .map(|_| ())
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err("pattern = x\n"),
            "f:1: option before the first [section]"
        );
        assert_eq!(err("[a]\n[a]\n"), "f:2: section [a] appears twice");
        assert_eq!(
            err("[a]\nx = 1\nX = 2\n"),
            "f:3: option 'x' appears twice in [a]"
        );
        assert!(err("[a]\njunk\n").starts_with("f:2: expected"));
        let sections = parse_ini(
            "; comment\n[A b]\nPattern: ^x\n  # indented comment\nretentions = 1:2,\n  3:4\n",
            Path::new("f"),
        )
        .unwrap();
        assert_eq!(sections[0].name, "A b");
        assert_eq!(sections[0].get("pattern"), Some("^x"));
        assert_eq!(sections[0].get("retentions"), Some("1:2,\n3:4"));
    }

    #[test]
    fn python_floats() {
        assert_eq!(parse_python_float("0.5"), Some(0.5));
        assert_eq!(parse_python_float("1_0e-1"), Some(1.0));
        assert_eq!(parse_python_float(" 0 "), Some(0.0));
        assert_eq!(parse_python_float("0x1"), None);
        assert_eq!(parse_python_float(""), None);
        assert!(parse_python_float("NaN").unwrap().is_nan());
    }
}
