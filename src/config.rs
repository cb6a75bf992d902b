//! Charcoal's configuration: one TOML file (`--config`), every key overridable from the
//! environment as `CHARCOAL_<SECTION>__<KEY>`, then command-line flags. Precedence: flag >
//! environment > file > default. Each section is owned by the crate it configures.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use charcoal_store::{CarbonConfig, Retention, StorageRules, StoreConfig};
use serde::{Deserialize, Serialize};

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `[log]`: logging.
    pub log: LogConfig,
    /// `[store]`: the data directory and write cache.
    pub store: StoreConfig,
    /// `[carbon]`: the Carbon plaintext receiver.
    pub carbon: CarbonConfig,
    /// `[statsd]`: the StatsD server (Etsy's options under snake_case names).
    pub statsd: charcoal_statsd::Config,
    /// `[web]`: the render API and UI.
    pub web: charcoal_web::Config,
    /// `[agent]`: the node agent.
    pub agent: charcoal_node_agent::Config,
    /// `[ops]`: self-monitoring.
    pub ops: crate::ops::OpsConfig,
}

/// `[log]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// Level filter (`error`, `warn`, `info`, `debug`, `trace`, or a `tracing` directive list
    /// such as `info,charcoal_store=debug`).
    pub level: String,
    /// `auto` (human on a terminal, JSON lines otherwise), `json` or `human`.
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".to_owned(),
            format: LogFormat::Auto,
        }
    }
}

/// How log events are written to stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Auto,
    Json,
    Human,
}

/// A configuration problem: reported with the key and exit code 2.
#[derive(Debug)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

fn config_error(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(ConfigError(message.into()))
}

/// Reads the file (if any) and applies `CHARCOAL_SECTION__KEY` overrides from `env`.
pub fn load(
    path: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Config> {
    let mut table = match path {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| config_error(format!("{}: {e}", path.display())))?;
            toml::from_str::<toml::Table>(&text)
                .map_err(|e| config_error(format!("{}: {e}", path.display())))?
        }
        None => toml::Table::new(),
    };
    let mut from_env: Vec<(Vec<String>, String)> = Vec::new();
    for (key, value) in env {
        let Some(rest) = key.strip_prefix("CHARCOAL_") else {
            continue;
        };
        if !rest.contains("__") {
            continue;
        }
        let path: Vec<String> = rest.split("__").map(|p| p.to_ascii_lowercase()).collect();
        set(&mut table, &path, typed(&value)).map_err(|e| config_error(format!("{key}: {e}")))?;
        from_env.push((path, value));
    }
    // A value from the environment is guessed as TOML (number, bool, array) first; where the
    // key wants text, retry it as a string.
    loop {
        let value = toml::Value::Table(table.clone());
        match serde_path_to_error::deserialize::<_, Config>(value) {
            Ok(config) => return Ok(config),
            Err(e) => {
                let failing: Vec<String> = e.path().iter().map(|s| s.to_string()).collect();
                let retry = from_env.iter().position(|(p, _)| *p == failing);
                match retry.and_then(|i| {
                    let (path, raw) = from_env.remove(i);
                    as_string(&mut table, &path, raw)
                }) {
                    Some(()) => continue,
                    None => {
                        let source = if from_env.iter().any(|(p, _)| *p == failing) {
                            "environment"
                        } else {
                            "config"
                        };
                        return Err(config_error(format!(
                            "{source} key {}: {}",
                            e.path(),
                            e.inner()
                        )));
                    }
                }
            }
        }
    }
}

fn typed(text: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {text}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(text.to_owned()))
}

fn set(table: &mut toml::Table, path: &[String], value: toml::Value) -> Result<(), String> {
    let (last, parents) = path.split_last().ok_or("empty key")?;
    let mut current = table;
    for part in parents {
        let entry = current
            .entry(part.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        current = entry
            .as_table_mut()
            .ok_or_else(|| format!("{part} is not a section"))?;
    }
    current.insert(last.clone(), value);
    Ok(())
}

/// Puts an overridden value back as the text it came from. `None` if it already was text.
fn as_string(table: &mut toml::Table, path: &[String], raw: String) -> Option<()> {
    let (last, parents) = path.split_last()?;
    let mut current = table;
    for part in parents {
        current = current.get_mut(part)?.as_table_mut()?;
    }
    let value = current.get_mut(last)?;
    if value.is_str() {
        return None;
    }
    *value = toml::Value::String(raw);
    Some(())
}

/// Reads the storage rule files named in `[store]` (Carbon's format), or builds the default
/// rules from `default_retention`. Skipped sections are logged, as Carbon logs them.
pub fn storage_rules(store: &StoreConfig) -> Result<StorageRules> {
    let default = charcoal_store::parse_retentions(&store.default_retention)
        .map_err(|e| config_error(format!("store.default_retention: {e}")))?;
    let mut rules = StorageRules::with_default_retention(default);
    let read = |key: &str, path: &PathBuf| {
        std::fs::read_to_string(path)
            .map_err(|e| config_error(format!("store.{key}: {}: {e}", path.display())))
    };
    let mut skipped = Vec::new();
    if let Some(path) = &store.schemas {
        let text = read("schemas", path)?;
        skipped.extend(
            rules
                .parse_schemas(&text, path)
                .map_err(|e| config_error(format!("store.schemas: {e}")))?,
        );
    }
    if let Some(path) = &store.aggregation {
        let text = read("aggregation", path)?;
        skipped.extend(
            rules
                .parse_aggregation(&text, path)
                .map_err(|e| config_error(format!("store.aggregation: {e}")))?,
        );
    }
    for s in skipped {
        tracing::warn!(file = %s.source.display(), section = %s.section, reason = %s.reason, "storage rule section skipped");
    }
    Ok(rules)
}

/// Checks what deserialising cannot: values that must parse, files that must exist.
pub fn validate(config: &Config) -> Result<()> {
    crate::logging::check_level(&config.log.level)
        .map_err(|e| config_error(format!("log.level: {e}")))?;
    storage_rules(&config.store)?;
    let _: Vec<Retention> = charcoal_store::parse_retentions(&config.store.default_retention)
        .context("store.default_retention")?;
    if config.store.cache_max_points == 0 {
        return Err(config_error("store.cache_max_points: must be at least 1"));
    }
    if config.store.flush_interval.is_zero() {
        return Err(config_error("store.flush_interval: must be more than 0s"));
    }
    crate::listen::check_address(&config.carbon.listen)
        .map_err(|e| config_error(format!("carbon.listen: {e}")))?;
    config
        .statsd
        .validate()
        .map_err(|e| config_error(format!("statsd.{e}")))?;
    for (key, address) in [
        ("statsd.listen", &config.statsd.listen),
        ("statsd.tcp_listen", &config.statsd.tcp_listen),
    ] {
        crate::listen::check_address(address).map_err(|e| config_error(format!("{key}: {e}")))?;
    }
    if !config.statsd.admin_listen.is_empty() {
        crate::listen::check_address(&config.statsd.admin_listen)
            .map_err(|e| config_error(format!("statsd.admin_listen: {e}")))?;
    }
    config
        .web
        .validate()
        .map_err(|e| config_error(format!("web.{e}")))?;
    config
        .agent
        .validate()
        .map_err(|e| config_error(format!("agent.{e}")))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_without_a_file() {
        let config = load(None, env(&[])).unwrap();
        assert_eq!(config, Config::default());
        assert_eq!(config.carbon.listen, "127.0.0.1:2003");
    }

    #[test]
    fn environment_overrides_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "[store]\ndata_dir = \"/srv/a\"\nflush_interval = \"5s\"\n[carbon]\nlisten = \"0.0.0.0:2003\"\n",
        )
        .unwrap();
        let config = load(
            Some(&path),
            env(&[
                ("CHARCOAL_STORE__DATA_DIR", "/srv/b"),
                ("CHARCOAL_STORE__CACHE_MAX_POINTS", "1234"),
                ("CHARCOAL_CARBON__UDP", "false"),
                ("CHARCOAL_CARBON__METRIC_PREFIX", "12"),
                ("CHARCOAL_INTEROP", "1"),
                ("OTHER", "x"),
            ]),
        )
        .unwrap();
        assert_eq!(config.store.data_dir, PathBuf::from("/srv/b"));
        assert_eq!(
            config.store.flush_interval,
            std::time::Duration::from_secs(5)
        );
        assert_eq!(config.store.cache_max_points, 1234);
        assert!(!config.carbon.udp);
        // A number-looking value for a text key stays text.
        assert_eq!(config.carbon.metric_prefix, "12");
        assert_eq!(config.carbon.listen, "0.0.0.0:2003");
    }

    #[test]
    fn errors_name_the_key() {
        let err = load(None, env(&[("CHARCOAL_STORE__NO_SUCH_KEY", "1")])).unwrap_err();
        assert!(err.to_string().contains("no_such_key"), "{err}");
        let err = load(None, env(&[("CHARCOAL_STORE__FLUSH_INTERVAL", "soon")])).unwrap_err();
        assert!(err.to_string().contains("store.flush_interval"), "{err}");
        let err = load(None, env(&[("CHARCOAL_STORE__CACHE_MAX_POINTS", "many")])).unwrap_err();
        assert!(err.to_string().contains("store.cache_max_points"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "[store]\ndefault_retention = \"10x:1d\"\n").unwrap();
        let config = load(Some(&path), env(&[])).unwrap();
        let err = validate(&config).unwrap_err();
        assert_eq!(err.to_string(), "store.default_retention: Invalid unit 'x'");
        std::fs::write(&path, "[store\n").unwrap();
        assert!(load(Some(&path), env(&[])).is_err());
    }
}
