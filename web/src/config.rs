//! `[web]` configuration: listen address, limits (spec §21), time zone, CORS, the dashboards
//! directory and the events store.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Configuration of the HTTP API. Every key has a default; unknown keys are rejected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the API listens on (`charcoal web --listen`, `charcoal serve --web-listen`).
    pub listen: SocketAddr,
    /// IANA zone for absolute times in `from`/`until` and CSV labels when a request has no `tz`.
    pub timezone: String,
    /// Most series one request may fetch; past it the request fails with 400.
    pub max_series: usize,
    /// Most points one request may fetch, all series together; past it 400.
    pub max_points: usize,
    /// Longest a request may spend evaluating targets; past it 503 with `Retry-After`.
    #[serde(with = "duration")]
    pub max_eval_time: Duration,
    /// Longest accepted target expression, in bytes.
    pub max_target_len: usize,
    /// Deepest accepted nesting of function calls in a target.
    pub max_depth: usize,
    /// Most entries `/metrics/find` and `/metrics/expand` may return; past it 400.
    pub max_find_results: usize,
    /// Origins allowed by CORS; `"*"` allows any origin (without credentials).
    pub cors_origins: Vec<String>,
    /// Base URLs (`http://host:port`) of other Charcoal or graphite-web nodes whose metrics
    /// `/metrics/find`, `/render` and the tag API merge with this node's, like graphite-web's
    /// `CLUSTER_SERVERS`. Empty: this node alone. List peers only, not this node itself.
    pub cluster_servers: Vec<String>,
    /// Longest a cluster peer may take to answer a find or tag query (graphite-web's
    /// `FIND_TIMEOUT`); a slower peer is left out of that answer.
    #[serde(with = "duration")]
    pub cluster_find_timeout: Duration,
    /// Longest a cluster peer may take to send the series of one fetch (graphite-web's
    /// `FETCH_TIMEOUT`); a slower peer is left out of that answer.
    #[serde(with = "duration")]
    pub cluster_fetch_timeout: Duration,
    /// How long a peer that failed (refused, timed out, answered 5xx) is skipped before it is
    /// asked again (graphite-web's `REMOTE_RETRY_DELAY`); `0s` asks it every time.
    #[serde(with = "duration")]
    pub cluster_retry_delay: Duration,
    /// How long shutdown waits for in-flight requests before dropping them.
    #[serde(with = "duration")]
    pub shutdown_grace: Duration,
    /// Directory of the UI's dashboards, one `<name>.json` file each; created on the first
    /// save. Relative paths are relative to the working directory.
    pub dashboards_dir: PathBuf,
    /// JSON-lines file of the events store (`POST /events/`, `/events/get_data`, the
    /// `events()` function; spec §17), one event per line, appended to as events arrive and
    /// read back at start. Unset: events are disabled (posting answers 403, reading `[]`).
    /// `charcoal serve` and `charcoal web` default it to `events.jsonl` in the store's data
    /// directory; `"off"` there disables events.
    pub events_file: Option<PathBuf>,
    /// Most events kept (all are held in memory); past it posting answers 507.
    pub events_max: usize,
    /// Largest accepted `POST /events/` body, in bytes; past it 413.
    pub events_max_body: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            timezone: "UTC".to_owned(),
            max_series: 50_000,
            max_points: 10_000_000,
            max_eval_time: Duration::from_secs(30),
            max_target_len: 64 * 1024,
            max_depth: 64,
            max_find_results: 100_000,
            cors_origins: vec!["*".to_owned()],
            cluster_servers: Vec::new(),
            cluster_find_timeout: Duration::from_secs(3),
            cluster_fetch_timeout: Duration::from_secs(6),
            cluster_retry_delay: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(10),
            dashboards_dir: PathBuf::from("./dashboards"),
            events_file: None,
            events_max: 100_000,
            events_max_body: 16 * 1024,
        }
    }
}

/// A configuration value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("web.{key}: {reason}")]
#[non_exhaustive]
pub struct ConfigError {
    /// The offending key.
    pub key: &'static str,
    /// Why it was refused.
    pub reason: String,
}

impl Config {
    /// Checks values serde cannot: the zone exists, limits are positive.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if jiff::tz::TimeZone::get(&self.timezone).is_err() {
            return Err(ConfigError {
                key: "timezone",
                reason: format!("unknown time zone '{}'", self.timezone),
            });
        }
        let positive: [(&'static str, usize); 7] = [
            ("max_series", self.max_series),
            ("max_points", self.max_points),
            ("max_target_len", self.max_target_len),
            ("max_depth", self.max_depth),
            ("max_find_results", self.max_find_results),
            ("events_max", self.events_max),
            ("events_max_body", self.events_max_body),
        ];
        for (key, v) in positive {
            if v == 0 {
                return Err(ConfigError {
                    key,
                    reason: "must be greater than 0".to_owned(),
                });
            }
        }
        if self.max_eval_time.is_zero() {
            return Err(ConfigError {
                key: "max_eval_time",
                reason: "must be greater than 0".to_owned(),
            });
        }
        for url in &self.cluster_servers {
            // Plain HTTP only: this build has no TLS client (put TLS in a proxy in front).
            if let Err(reason) = crate::cluster::check_peer_url(url) {
                return Err(ConfigError {
                    key: "cluster_servers",
                    reason,
                });
            }
        }
        for (key, d) in [
            ("cluster_find_timeout", self.cluster_find_timeout),
            ("cluster_fetch_timeout", self.cluster_fetch_timeout),
        ] {
            if d.is_zero() {
                return Err(ConfigError {
                    key,
                    reason: "must be greater than 0".to_owned(),
                });
            }
        }
        if self.dashboards_dir.as_os_str().is_empty() {
            return Err(ConfigError {
                key: "dashboards_dir",
                reason: "must not be empty".to_owned(),
            });
        }
        if self
            .events_file
            .as_ref()
            .is_some_and(|p| p.as_os_str().is_empty())
        {
            return Err(ConfigError {
                key: "events_file",
                reason: "must not be empty (leave it unset to disable events)".to_owned(),
            });
        }
        Ok(())
    }
}

/// Durations written like `"10s"`, `"500ms"`, `"5m"`.
mod duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_cli_contract() {
        let c = Config::default();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.max_series, 50_000);
        assert_eq!(c.max_eval_time, Duration::from_secs(30));
        assert!(c.validate().is_ok());
    }

    #[test]
    fn durations_and_unknown_keys() {
        let c: Config =
            serde_json::from_str(r#"{"max_eval_time": "500ms", "timezone": "Europe/Berlin"}"#)
                .unwrap();
        assert_eq!(c.max_eval_time, Duration::from_millis(500));
        assert!(c.validate().is_ok());
        assert!(serde_json::from_str::<Config>(r#"{"nope": 1}"#).is_err());
        let bad = Config {
            timezone: "Mars/Olympus".into(),
            ..Config::default()
        };
        assert_eq!(bad.validate().unwrap_err().key, "timezone");
        let bad = Config {
            max_series: 0,
            ..Config::default()
        };
        assert_eq!(bad.validate().unwrap_err().key, "max_series");
        let bad = Config {
            events_file: Some(PathBuf::new()),
            ..Config::default()
        };
        assert_eq!(bad.validate().unwrap_err().key, "events_file");
        let c: Config = serde_json::from_str(r#"{"events_file": "/srv/e.jsonl"}"#).unwrap();
        assert_eq!(c.events_file, Some(PathBuf::from("/srv/e.jsonl")));
    }
}
