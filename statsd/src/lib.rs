//! charcoal-statsd: a drop-in replacement for Etsy StatsD (npm `statsd` 0.9.0), spec
//! `shared/spec/statsd.md`.
//!
//! - [`LineParser`]: the line grammar exactly as Etsy splits it (JavaScript number rules,
//!   sample-rate quirks, sanitising, `|#` tags), plus an optional DogStatsD dialect.
//! - [`Aggregator`]: per-worker shards (no contention on the hot path), a master table
//!   merged at flush time, Etsy's flush values and names ([`Flush`]: Carbon plaintext and
//!   `(name, value, timestamp)` triples in one buffer), `delete*` semantics, a bound on
//!   distinct names.
//! - [`spawn`]: UDP workers (`recvmmsg`, SO_REUSEPORT, large SO_RCVBUF; sockets from
//!   [`bind_udp`]), TCP line and admin servers, the aligned flush schedule, [`Sink`]s
//!   ([`CarbonSink`] here; the binary adds the embedded store), and a shutdown that drains
//!   the sockets and flushes the interval in progress.
//! - [`parse_etsy_config`]: `--etsy-config` for Etsy's JavaScript config files.
//!
//! The ingest path, per datagram: one share of a `recvmmsg` call of up to 256 datagrams
//! (the worker pauses briefly when the queue runs dry instead of being woken per
//! datagram), a one-pass scan per line for the everyday `name:value|type[|@rate]` shape
//! (anything else takes the full parser), and one hash lookup per sample in the worker's
//! own shard. `benches/statsd-vs-etsy.sh` measures it against Etsy and a bare `recvmmsg`
//! loop (`examples/recvmmsg_baseline.rs`).
//!
//! Memory per active name (release build, names of 25 bytes, between flushes, measured with
//! `examples/memory_per_name.rs`): counter ≈ 259 B, timer with one sample ≈ 447 B, gauge
//! ≈ 201 B, set with one member ≈ 599 B. Timer samples cost 8 B each until the flush. (Each
//! counter, timer and gauge carries an 8-byte insertion stamp so the admin dumps list keys
//! in the reference's order.)
//!
//! ```
//! use std::sync::Arc;
//! use charcoal_statsd::{Aggregator, Config, Encoding};
//!
//! let agg = Arc::new(Aggregator::new(Config::default(), 1, 1_700_000_000_000).unwrap());
//! let mut ingest = agg.ingester(0);
//! ingest.ingest_one(b"requests:1|c|@0.1\nlatency:320|ms", Encoding::Utf8);
//! let flush = agg.flush(1_700_000_010_000);
//! assert!(flush.text().contains("stats_counts.requests 10 1700000010\n"));
//! assert!(flush.points().any(|p| p.name == "stats.timers.latency.upper_90" && p.value == 320.0));
//! ```
#![forbid(unsafe_op_in_unsafe_fn)]

mod admin;
mod aggregate;
mod config;
mod error;
mod etsy_config;
mod flush;
mod inspect;
mod jsnum;
mod parser;
mod server;
mod sink;
mod stats;
mod tcp;
mod udp;

pub use aggregate::{Aggregator, Encoding, Ingester};
pub use config::{Bin, Config, HealthStatus, HistogramRule};
pub use error::{ConfigError, EtsyConfigError, ServerError, SinkError};
pub use etsy_config::{EtsyConfig, EtsyListen, ListenKind, parse_etsy_config};
pub use flush::{Flush, Point};
pub use jsnum::{js_number, write_js_number};
pub use parser::{DogKind, Kind, LineHandler, LineParser, ParseOptions, Sample};
pub use server::{Reloaded, ServerHandle, Sockets, spawn, spawn_unscheduled, system_now_ms};
pub use sink::{CarbonSink, CarbonSinkConfig, CarbonSinkHandle, Sink};
pub use stats::Stats;
pub use tcp::LineListener;
pub use udp::bind_udp;
