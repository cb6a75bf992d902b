//! The store's configuration: the `[store]` section of Charcoal's TOML file.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// `[store]`: where data lives and how the write cache behaves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// Directory of whisper files, laid out as Carbon lays them out (`a.b.c` → `a/b/c.wsp`).
    pub data_dir: PathBuf,
    /// Carbon-format storage-schemas.conf; without it every new file gets `default_retention`.
    pub schemas: Option<PathBuf>,
    /// Carbon-format storage-aggregation.conf; without it new files get average, xFilesFactor 0.5.
    pub aggregation: Option<PathBuf>,
    /// Archives for new files when no schemas file is configured.
    pub default_retention: String,
    /// Most points held in the write cache. When full, TCP senders are slowed down and UDP
    /// points are dropped and counted.
    pub cache_max_points: usize,
    /// Longest time a point waits in memory before its write begins. This is the loss window
    /// if the process is killed (SIGKILL); SIGTERM writes everything first.
    #[serde(with = "duration_text")]
    pub flush_interval: Duration,
    /// Writer threads; 0 means one per CPU core.
    pub writers: usize,
    /// New whisper files per minute; 0 means unlimited. Points of metrics waiting for their
    /// file stay in the cache (they are never dropped for this reason).
    pub max_creates_per_minute: u32,
    /// Create files sparse (a hole until written) instead of allocating them.
    pub sparse_create: bool,
    /// Whisper files the writers keep open between batches (each holds a descriptor); at
    /// most half the process's open-file limit is used. Files beyond it are reopened for each
    /// batch, which costs a few syscalls per write.
    pub open_files: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            data_dir: PathBuf::from("./data"),
            schemas: None,
            aggregation: None,
            default_retention: "60s:1d".to_owned(),
            cache_max_points: 10_000_000,
            flush_interval: Duration::from_secs(1),
            writers: 0,
            max_creates_per_minute: 0,
            sparse_create: false,
            open_files: 262_144,
        }
    }
}

/// Durations as text (`500ms`, `10s`, `5m`, `1h`) in config files.
pub mod duration_text {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Parses `500ms`, `10s`, `5m`, `1h`, `1h 30m`.
    pub fn parse(text: &str) -> Result<Duration, String> {
        humantime::parse_duration(text.trim())
            .map_err(|e| format!("invalid duration {text:?}: {e}"))
    }

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        parse(&text).map_err(serde::de::Error::custom)
    }
}
