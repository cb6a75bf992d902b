//! Dashboards: named grids of graphs stored as JSON files, one per dashboard, in the
//! configured directory (`[web] dashboards_dir`). Names are plain words (letters, digits,
//! `-`, `_`), so a name can never reach outside the directory. Files are written to a
//! temporary name and renamed, so a reader never sees half a dashboard.
//!
//! The format (see `dashboards/*.json` in the repository):
//! ```json
//! {"title": "Host overview", "from": "-6h", "until": "now", "refresh": "1m", "columns": 2,
//!  "variables": [{"name": "host", "query": "servers.*", "default": "*"}],
//!  "graphs": [{"title": "Load", "targets": ["servers.$host.load.load1"],
//!              "params": {"vtitle": "load"}}]}
//! ```
//! `$name` in targets and titles is replaced by the variable's value (`*` for all).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

/// Largest accepted dashboard document.
pub(crate) const MAX_BYTES: usize = 1024 * 1024;
/// Most graphs on one dashboard.
const MAX_GRAPHS: usize = 200;
/// Most targets in one graph.
const MAX_TARGETS: usize = 100;
/// Longest dashboard name.
const MAX_NAME: usize = 100;

/// One dashboard document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Dashboard {
    /// Shown as the page heading.
    #[serde(default)]
    pub title: String,
    /// Optional text under the heading.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Default time range (Graphite time specifications).
    #[serde(default = "default_from")]
    pub from: String,
    #[serde(default = "default_until")]
    pub until: String,
    /// Auto-refresh interval (`30s`, `1m`, `off`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub refresh: String,
    /// Graphs per row.
    #[serde(default = "default_columns")]
    pub columns: u32,
    /// Template variables substituted into targets and titles as `$name`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variables: Vec<Variable>,
    pub graphs: Vec<GraphSpec>,
}

/// A template variable whose choices are the nodes `query` finds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Variable {
    pub name: String,
    /// A `/metrics/find` query; its last nodes are the choices.
    pub query: String,
    /// The value used when the URL gives none (`*`: all).
    #[serde(default = "default_all")]
    pub default: String,
}

/// One graph: targets plus `/render` image parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GraphSpec {
    #[serde(default)]
    pub title: String,
    pub targets: Vec<String>,
    /// Extra `/render` parameters (`areaMode`, `vtitle`, `yMin`, …) as strings.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, String>,
}

fn default_from() -> String {
    "-6h".to_owned()
}
fn default_until() -> String {
    "now".to_owned()
}
const fn default_columns() -> u32 {
    2
}
fn default_all() -> String {
    "*".to_owned()
}

/// An entry of the dashboard list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Summary {
    pub name: String,
    pub title: String,
    pub graphs: usize,
    /// Why the file could not be read, when it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Why a dashboard operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DashboardError {
    #[error("invalid dashboard name '{name}': use 1 to 100 letters, digits, '-' or '_'")]
    InvalidName { name: String },
    #[error("no dashboard named '{name}'")]
    NotFound { name: String },
    #[error("invalid dashboard '{name}': {reason}")]
    Invalid { name: String, reason: String },
    #[error("dashboard '{name}' is larger than {limit} bytes")]
    TooLarge { name: String, limit: usize },
    #[error("dashboard file {} is unreadable: {source}", path.display())]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("dashboard storage {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl DashboardError {
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            DashboardError::InvalidName { .. } | DashboardError::Invalid { .. } => {
                StatusCode::BAD_REQUEST
            }
            DashboardError::NotFound { .. } => StatusCode::NOT_FOUND,
            DashboardError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            DashboardError::Corrupt { .. } | DashboardError::Io { .. } => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }
}

/// Checks a dashboard name: letters, digits, `-`, `_`; nothing that could name a path.
pub(crate) fn check_name(name: &str) -> Result<(), DashboardError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(DashboardError::InvalidName {
            name: name.chars().take(MAX_NAME + 1).collect(),
        })
    }
}

/// Parses and checks a dashboard document sent by a client.
pub(crate) fn parse(name: &str, body: &[u8]) -> Result<Dashboard, DashboardError> {
    if body.len() > MAX_BYTES {
        return Err(DashboardError::TooLarge {
            name: name.to_owned(),
            limit: MAX_BYTES,
        });
    }
    let invalid = |reason: String| DashboardError::Invalid {
        name: name.to_owned(),
        reason,
    };
    let d: Dashboard = serde_json::from_slice(body).map_err(|e| invalid(e.to_string()))?;
    if d.graphs.len() > MAX_GRAPHS {
        return Err(invalid(format!("more than {MAX_GRAPHS} graphs")));
    }
    if let Some(i) = d.graphs.iter().position(|g| g.targets.len() > MAX_TARGETS) {
        return Err(invalid(format!(
            "graph {} has more than {MAX_TARGETS} targets",
            i + 1
        )));
    }
    if !(1..=12).contains(&d.columns) {
        return Err(invalid("columns must be from 1 to 12".to_owned()));
    }
    for v in &d.variables {
        let valid = !v.name.is_empty()
            && v.name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !valid {
            return Err(invalid(format!(
                "variable name '{}' must be letters, digits or '_'",
                v.name
            )));
        }
    }
    Ok(d)
}

/// The dashboard files of one directory.
#[derive(Debug, Clone)]
pub(crate) struct Store {
    dir: PathBuf,
}

/// Makes temporary file names unique within the process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl Store {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Store { dir: dir.into() }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.json"))
    }

    fn io(path: &Path, source: std::io::Error) -> DashboardError {
        DashboardError::Io {
            path: path.to_owned(),
            source,
        }
    }

    /// Every dashboard, sorted by name; a missing directory is an empty list.
    pub async fn list(&self) -> Result<Vec<Summary>, DashboardError> {
        let mut entries = match tokio::fs::read_dir(&self.dir).await {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Self::io(&self.dir, e)),
        };
        let mut out = Vec::new();
        while let Some(entry) = entries
            .next_entry()
            .await
            .map_err(|e| Self::io(&self.dir, e))?
        {
            let file = entry.file_name();
            let Some(name) = file.to_str().and_then(|f| f.strip_suffix(".json")) else {
                continue;
            };
            if check_name(name).is_err() {
                continue;
            }
            let summary = match self.load(name).await {
                Ok(d) => Summary {
                    name: name.to_owned(),
                    title: d.title,
                    graphs: d.graphs.len(),
                    error: None,
                },
                Err(e) => Summary {
                    name: name.to_owned(),
                    title: String::new(),
                    graphs: 0,
                    error: Some(e.to_string()),
                },
            };
            out.push(summary);
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    pub async fn load(&self, name: &str) -> Result<Dashboard, DashboardError> {
        check_name(name)?;
        let path = self.path(name);
        let bytes = match tokio::fs::read(&path).await {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(DashboardError::NotFound {
                    name: name.to_owned(),
                });
            }
            Err(e) => return Err(Self::io(&path, e)),
        };
        serde_json::from_slice(&bytes).map_err(|source| DashboardError::Corrupt { path, source })
    }

    /// Writes `dashboard` under `name`, creating the directory if needed.
    pub async fn save(&self, name: &str, dashboard: &Dashboard) -> Result<(), DashboardError> {
        check_name(name)?;
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(|e| Self::io(&self.dir, e))?;
        let mut text =
            serde_json::to_string_pretty(dashboard).map_err(|e| DashboardError::Invalid {
                name: name.to_owned(),
                reason: e.to_string(),
            })?;
        text.push('\n');
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let temp = self
            .dir
            .join(format!(".{name}.json.tmp-{}-{n}", std::process::id()));
        tokio::fs::write(&temp, text)
            .await
            .map_err(|e| Self::io(&temp, e))?;
        let path = self.path(name);
        if let Err(e) = tokio::fs::rename(&temp, &path).await {
            let _ = tokio::fs::remove_file(&temp).await;
            return Err(Self::io(&path, e));
        }
        Ok(())
    }

    pub async fn delete(&self, name: &str) -> Result<(), DashboardError> {
        check_name(name)?;
        let path = self.path(name);
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(DashboardError::NotFound {
                name: name.to_owned(),
            }),
            Err(e) => Err(Self::io(&path, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cannot_leave_the_directory() {
        for ok in ["host-overview", "a", "Board_2"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "..",
            "../etc/passwd",
            "a/b",
            "a\\b",
            ".hidden",
            "a.json",
            "name with space",
            "naïve",
            "a\0b",
            &"x".repeat(101),
        ] {
            assert!(
                matches!(check_name(bad), Err(DashboardError::InvalidName { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn documents_are_checked() {
        let d = parse("x", br#"{"graphs": [{"targets": ["a.b"]}]}"#).unwrap();
        assert_eq!(
            (d.from.as_str(), d.until.as_str(), d.columns),
            ("-6h", "now", 2)
        );
        for (body, why) in [
            (&br#"{"graphs": []"#[..], "EOF"),
            (br#"{"graphs": [], "colour": 1}"#, "unknown field"),
            (br#"{"graphs": [], "columns": 0}"#, "columns"),
            (
                br#"{"graphs": [], "variables": [{"name": "a b", "query": "x"}]}"#,
                "variable",
            ),
        ] {
            let e = parse("x", body).unwrap_err().to_string();
            assert!(e.contains(why), "{e}");
        }
        let big = vec![b' '; MAX_BYTES + 1];
        assert!(matches!(
            parse("x", &big),
            Err(DashboardError::TooLarge { .. })
        ));
    }

    #[tokio::test]
    async fn save_load_list_delete() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().join("boards"));
        assert!(
            store.list().await.unwrap().is_empty(),
            "missing dir is empty"
        );
        let d = parse(
            "web",
            br#"{"title": "Web", "graphs": [{"title": "Load", "targets": ["a.b"], "params": {"areaMode": "stacked"}}]}"#,
        )
        .unwrap();
        store.save("web", &d).await.unwrap();
        assert_eq!(store.load("web").await.unwrap(), d);
        std::fs::write(dir.path().join("boards/broken.json"), "{").unwrap();
        std::fs::write(dir.path().join("boards/notes.txt"), "x").unwrap();
        let list = store.list().await.unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(
            (
                list[1].name.as_str(),
                list[1].title.as_str(),
                list[1].graphs
            ),
            ("web", "Web", 1)
        );
        assert!(
            list[0].error.is_some(),
            "a broken file is listed with its error"
        );
        assert!(matches!(
            store.load("broken").await,
            Err(DashboardError::Corrupt { .. })
        ));
        store.delete("web").await.unwrap();
        assert!(matches!(
            store.load("web").await,
            Err(DashboardError::NotFound { .. })
        ));
        assert!(matches!(
            store.delete("web").await,
            Err(DashboardError::NotFound { .. })
        ));
        assert!(matches!(
            store.load("../x").await,
            Err(DashboardError::InvalidName { .. })
        ));
    }
}
