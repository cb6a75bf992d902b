//! The `[statsd]` configuration: Etsy StatsD's options under snake_case names, with Etsy's
//! defaults (spec §11), plus Charcoal's own knobs (workers, bounds, DogStatsD mode).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;
use crate::jsnum::js_number_string;

/// StatsD server configuration. Every key has Etsy StatsD's default; the Etsy name is given
/// in brackets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// How often aggregates are flushed to the sinks, e.g. `"10s"` [`flushInterval`, ms].
    #[serde(with = "duration_str")]
    pub flush_interval: Duration,
    /// Timer percentiles to compute, in order; decimals (`99.9`) and negatives ("top"
    /// percentiles, `-10`) allowed; `[]` computes none [`percentThreshold`, default 90].
    pub percent_threshold: Vec<f64>,
    /// Etsy's legacy Graphite namespace (`stats.K`, `stats_counts.K`, `stats.timers.K...`);
    /// when true the global prefix and the four type prefixes are ignored
    /// [`graphite.legacyNamespace`].
    pub legacy_namespace: bool,
    /// First name component in the non-legacy namespace; `""` leaves it out
    /// [`graphite.globalPrefix`].
    pub global_prefix: String,
    /// Counter namespace component (non-legacy) [`graphite.prefixCounter`].
    pub prefix_counter: String,
    /// Timer namespace component (non-legacy) [`graphite.prefixTimer`].
    pub prefix_timer: String,
    /// Gauge namespace component (non-legacy) [`graphite.prefixGauge`].
    pub prefix_gauge: String,
    /// Set namespace component (non-legacy) [`graphite.prefixSet`].
    pub prefix_set: String,
    /// Appended as `.<suffix>` to every name (before tags), in both namespaces; unset
    /// means none [`graphite.globalSuffix`].
    pub global_suffix: Option<String>,
    /// Name of the server's own metrics (`statsd.bad_lines_seen`, `statsd.numStats`...)
    /// [`prefixStats`].
    pub prefix_stats: String,
    /// Write counter counts (`stats_counts.K` / `...K.count`) besides rates [`flush_counts`].
    pub flush_counts: bool,
    /// Default for the four `delete_*` keys: stop sending idle metrics instead of zeros /
    /// last values [`deleteIdleStats`].
    pub delete_idle_stats: bool,
    /// Delete counters after each flush instead of zeroing them; unset follows
    /// `delete_idle_stats` [`deleteCounters`].
    pub delete_counters: Option<bool>,
    /// Delete timers after each flush instead of emptying them [`deleteTimers`].
    pub delete_timers: Option<bool>,
    /// Delete gauges not updated for `gauges_max_ttl` flushes [`deleteGauges`].
    pub delete_gauges: Option<bool>,
    /// Delete sets after each flush instead of emptying them [`deleteSets`].
    pub delete_sets: Option<bool>,
    /// Flushes a gauge survives without updates when gauges are deleted; values below 2
    /// mean 1 [`gaugesMaxTTL`].
    pub gauges_max_ttl: u32,
    /// Timer histograms: the first rule whose `metric` occurs anywhere in the key gives the
    /// bins [`histogram`].
    pub histogram: Vec<HistogramRule>,
    /// When non-empty, only these timer metrics are written (`count`, `mean`,
    /// `upper_percent`, `histogram`, ...) [`calculatedTimerMetrics`].
    pub calculated_timer_metrics: Vec<String>,
    /// Clean metric keys at ingest (whitespace → `_`, `/` → `-`, drop other characters
    /// outside `[A-Za-z0-9_.;=-]`) [`keyNameSanitize`].
    pub key_name_sanitize: bool,
    /// Initial answer of the admin `health` command: `up` or `down` [`healthStatus`].
    pub health_status: HealthStatus,
    /// Log every received line at debug level [`dumpMessages`].
    pub dump_messages: bool,
    /// DogStatsD extensions (not in Etsy, off by default): `h`/`d` are timers, value packing
    /// `name:1:2:3|ms`, canonical sorted tags, container/timestamp fields ignored, events
    /// and service checks counted instead of being bad lines.
    pub dogstatsd: bool,
    /// Upper bound on distinct metric keys held (all types together, internal ones
    /// included); samples for new keys beyond it are dropped and counted.
    pub max_names: usize,
    /// UDP receive workers, one socket each (SO_REUSEPORT); 0 = one per CPU core.
    pub workers: usize,
    /// Requested SO_RCVBUF of each UDP socket in bytes (the kernel may cap it).
    pub udp_recv_buffer: usize,
    /// Also accept newline-separated lines over TCP (Etsy's `./servers/tcp`); the binary
    /// binds the listener.
    pub tcp: bool,
    /// UDP address (`HOST:PORT`; IPv6 `[::1]:8125`) [`address`/`port`].
    pub listen: String,
    /// Address of the TCP line server when `tcp` is on.
    pub tcp_listen: String,
    /// Admin interface address [`mgmt_address`/`mgmt_port`]; empty disables it.
    pub admin_listen: String,
    /// Carbon plaintext `HOST:PORT` to flush to (carbon-cache, carbon-c-relay, go-carbon,
    /// VictoriaMetrics, another Charcoal) [`graphiteHost`/`graphitePort`]; empty means the
    /// embedded store when there is one.
    pub carbon: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            flush_interval: Duration::from_secs(10),
            percent_threshold: vec![90.0],
            legacy_namespace: true,
            global_prefix: "stats".into(),
            prefix_counter: "counters".into(),
            prefix_timer: "timers".into(),
            prefix_gauge: "gauges".into(),
            prefix_set: "sets".into(),
            global_suffix: None,
            prefix_stats: "statsd".into(),
            flush_counts: true,
            delete_idle_stats: false,
            delete_counters: None,
            delete_timers: None,
            delete_gauges: None,
            delete_sets: None,
            gauges_max_ttl: 1,
            histogram: Vec::new(),
            calculated_timer_metrics: Vec::new(),
            key_name_sanitize: true,
            health_status: HealthStatus::Up,
            dump_messages: false,
            dogstatsd: false,
            max_names: 1_000_000,
            workers: 0,
            udp_recv_buffer: 32 * 1024 * 1024,
            tcp: false,
            listen: "127.0.0.1:8125".into(),
            tcp_listen: "127.0.0.1:8125".into(),
            admin_listen: "127.0.0.1:8126".into(),
            carbon: String::new(),
        }
    }
}

/// Initial admin health status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// `health: up`.
    #[default]
    Up,
    /// `health: down`.
    Down,
}

/// One entry of the `histogram` list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistogramRule {
    /// Substring of the metric key that selects this rule (`""` matches every timer).
    pub metric: String,
    /// Ascending exclusive upper bounds; `"inf"` catches the rest; `[]` disables
    /// histograms for matching keys.
    pub bins: Vec<Bin>,
}

/// A histogram bin bound: a number or the string `"inf"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Bin {
    /// Samples below this bound (and not in an earlier bin).
    Bound(f64),
    /// A string bound: `"inf"` takes all remaining samples; another string is compared as
    /// JavaScript would (its numeric value) and named verbatim.
    Text(String),
}

impl Config {
    /// Checks values that serde cannot: errors name the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.flush_interval < Duration::from_millis(1) {
            return Err(ConfigError::Invalid {
                key: "flush_interval",
                reason: "must be at least 1ms".into(),
            });
        }
        if let Some(p) = self.percent_threshold.iter().find(|p| !p.is_finite()) {
            return Err(ConfigError::Invalid {
                key: "percent_threshold",
                reason: format!("{p} is not a finite number"),
            });
        }
        if self.max_names == 0 {
            return Err(ConfigError::Invalid {
                key: "max_names",
                reason: "must be at least 1".into(),
            });
        }
        for rule in &self.histogram {
            for bin in &rule.bins {
                if let Bin::Bound(b) = bin
                    && b.is_nan()
                {
                    return Err(ConfigError::Invalid {
                        key: "histogram",
                        reason: format!("bin {b} of rule {:?} is not a number", rule.metric),
                    });
                }
            }
        }
        Ok(())
    }

    /// Number of UDP workers to run: `workers`, or the CPU count when 0.
    pub fn effective_workers(&self) -> usize {
        if self.workers > 0 {
            self.workers
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        }
    }

    /// Takes `new`'s flush settings (the keys a running server applies at its next flush)
    /// and keeps this config's sockets, sink and ingest options (which need a restart).
    /// Returns the config to run and the changed keys of each kind: `(applied, restart)`.
    pub fn reload(&self, new: &Config) -> (Config, Vec<&'static str>, Vec<&'static str>) {
        let mut next = new.clone();
        let (mut applied, mut restart) = (Vec::new(), Vec::new());
        macro_rules! sort_keys {
            (live: $($live:ident),*; restart: $($fixed:ident),*) => {
                // Naming every field makes a new key a compile error until it is sorted here.
                let Config { $($live: _,)* $($fixed: _,)* } = new;
                $(if self.$live != new.$live {
                    applied.push(stringify!($live));
                })*
                $(if self.$fixed != new.$fixed {
                    restart.push(stringify!($fixed));
                    next.$fixed = self.$fixed.clone();
                })*
            };
        }
        sort_keys!(
            live: flush_interval, percent_threshold, legacy_namespace, global_prefix,
            prefix_counter, prefix_timer, prefix_gauge, prefix_set, global_suffix, prefix_stats,
            flush_counts, delete_idle_stats, delete_counters, delete_timers, delete_gauges,
            delete_sets, gauges_max_ttl, histogram, calculated_timer_metrics;
            restart: key_name_sanitize, health_status, dump_messages, dogstatsd, max_names,
            workers, udp_recv_buffer, tcp, listen, tcp_listen, admin_listen, carbon
        );
        (next, applied, restart)
    }

    pub(crate) fn deletes(&self) -> (bool, bool, bool, bool) {
        let d = self.delete_idle_stats;
        (
            self.delete_counters.unwrap_or(d),
            self.delete_timers.unwrap_or(d),
            self.delete_gauges.unwrap_or(d),
            self.delete_sets.unwrap_or(d),
        )
    }

    pub(crate) fn gauge_ttl(&self) -> u32 {
        if self.gauges_max_ttl > 1 {
            self.gauges_max_ttl
        } else {
            1
        }
    }
}

impl Bin {
    /// The bound as JavaScript's `<` would see it, or `None` for `"inf"`.
    pub(crate) fn bound(&self) -> Option<f64> {
        match self {
            Bin::Bound(b) => Some(*b),
            Bin::Text(t) if t == "inf" => None,
            Bin::Text(t) => Some(crate::jsnum::js_number(t)),
        }
    }

    /// `bin_` + the bound as a JavaScript string with its first `.` replaced by `_`.
    pub(crate) fn name(&self) -> String {
        let raw = match self {
            Bin::Bound(b) => js_number_string(*b),
            Bin::Text(t) => t.clone(),
        };
        format!("bin_{}", raw.replacen('.', "_", 1))
    }
}

/// Durations written like `"10s"`, `"500ms"`, `"1m"`.
pub(crate) mod duration_str {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn reload_takes_flush_settings_and_keeps_sockets() {
        let old = Config::default();
        let new = Config {
            flush_interval: Duration::from_secs(2),
            percent_threshold: vec![50.0],
            delete_gauges: Some(true),
            listen: "127.0.0.1:9999".into(),
            dogstatsd: true,
            ..Config::default()
        };
        let (next, applied, restart) = old.reload(&new);
        assert_eq!(
            applied,
            ["flush_interval", "percent_threshold", "delete_gauges"]
        );
        assert_eq!(restart, ["dogstatsd", "listen"]);
        assert_eq!(next.flush_interval, Duration::from_secs(2));
        assert_eq!(next.percent_threshold, [50.0]);
        assert_eq!(next.delete_gauges, Some(true));
        assert_eq!(next.listen, old.listen);
        assert!(!next.dogstatsd);
        let (same, applied, restart) = old.reload(&old);
        assert_eq!(same, old);
        assert!(applied.is_empty() && restart.is_empty());
    }

    use super::*;

    #[test]
    fn toml_with_every_key_round_trips() {
        let text = r#"
flush_interval = "5s"
percent_threshold = [90, 99.9, -10]
legacy_namespace = false
global_prefix = "pre"
prefix_counter = ""
prefix_timer = "tmr"
prefix_gauge = "gau"
prefix_set = ""
global_suffix = "host1"
prefix_stats = "mystatsd"
flush_counts = false
delete_idle_stats = true
delete_counters = false
gauges_max_ttl = 3
histogram = [{ metric = "render", bins = [0.01, 0.1, 1, 10, "inf"] }]
calculated_timer_metrics = ["count", "upper_percent"]
key_name_sanitize = false
health_status = "down"
dogstatsd = true
max_names = 10
workers = 2
udp_recv_buffer = 1048576
tcp = true
"#;
        let c: Config = toml::from_str(text).unwrap();
        assert_eq!(c.flush_interval, Duration::from_secs(5));
        assert_eq!(c.percent_threshold, vec![90.0, 99.9, -10.0]);
        assert_eq!(c.global_suffix.as_deref(), Some("host1"));
        assert_eq!(c.deletes(), (false, true, true, true));
        assert_eq!(c.histogram[0].bins[4], Bin::Text("inf".into()));
        assert_eq!(c.histogram[0].bins[0].name(), "bin_0_01");
        assert_eq!(c.health_status, HealthStatus::Down);
        c.validate().unwrap();
        let again: Config = toml::from_str(&toml::to_string(&c).unwrap()).unwrap();
        assert_eq!(again, c);
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = toml::from_str::<Config>("flushInterval = 10").unwrap_err();
        assert!(err.to_string().contains("flushInterval"), "{err}");
    }

    #[test]
    fn defaults_are_etsys() {
        let c = Config::default();
        assert_eq!(c.flush_interval, Duration::from_millis(10_000));
        assert_eq!(c.percent_threshold, vec![90.0]);
        assert!(c.legacy_namespace && c.flush_counts && c.key_name_sanitize);
        assert_eq!(c.deletes(), (false, false, false, false));
        assert_eq!(c.gauge_ttl(), 1);
        assert_eq!(c.prefix_stats, "statsd");
        let empty: Config = toml::from_str("").unwrap();
        assert_eq!(empty, c);
    }
}
