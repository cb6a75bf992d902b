//! Charcoal's node agent: host metrics, Munin plugins, and the munin-node protocol.
//!
//! One agent runs on every host. It
//! - reads /proc and /sys directly every `interval` (CPU per state and per core, load,
//!   memory, swap and paging, network per interface, disk I/O, file system usage, processes,
//!   forks, context switches, interrupts, uptime) and sends the values to StatsD (gauges) or
//!   Carbon (plaintext), counters turned into per-second rates with Munin/RRD semantics;
//! - runs Munin script plugins from a plugin directory exactly as munin-node does
//!   (plugin-conf.d, MUNIN_* environment, wildcard symlinks, per-plugin timeout with a kill of
//!   the whole process group) and sends their values too;
//! - serves the munin-node protocol, presenting its built-in collectors as the stock Munin
//!   plugins (`cpu`, `memory`, `load`, `if_<iface>`, `df`, `diskstats`, ...) next to the script
//!   plugins, so an existing Munin master can poll it unchanged.
//!
//! It depends on no other Charcoal crate: it formats StatsD and Carbon lines itself.
//!
//! # Metric names
//!
//! Under `prefix` (default `servers.<host>`, host dots turned into `_`):
//! `cpu.total.<state>` and `cpu.<n>.<state>` (percent of one CPU), `load.load1|5|15`,
//! `memory.<quantity>` (bytes), `memory.swap_in|swap_out` (pages/s), `network.<if>.rx_bytes`
//! (per second), `disk.<dev>.read_bytes` (per second), `fs.<mount>.used_percent` (mount
//! escaped, `/` → `_`), `processes.forks`, `kernel.context_switches`, `system.uptime_seconds`,
//! and `munin.<graph>.<field>` for script plugins.
//!
//! # Example
//!
//! ```no_run
//! use charcoal_node_agent::{Config, run};
//! use tokio_util::sync::CancellationToken;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let config = Config {
//!     carbon: Some("127.0.0.1:2003".into()),
//!     ..Config::default()
//! };
//! config.validate()?;
//! let listener = tokio::net::TcpListener::bind(&config.munin_listen).await?;
//! let shutdown = CancellationToken::new();
//! let agent = run(config, Some(listener), shutdown.clone()).await?;
//! // ... on SIGTERM:
//! shutdown.cancel();
//! agent.join().await;
//! # Ok(()) }
//! ```
//!
//! One-shot sampling without any socket:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use charcoal_node_agent::{Config, Sampler};
//! let config = Config { host_name: Some("example".into()), ..Config::default() };
//! let mut sampler = Sampler::new(&config).unwrap();
//! let mut lines = String::new();
//! sampler.sample(&mut lines).await; // gauges now; counters from the second sample on
//! assert!(lines.lines().all(|l| l.starts_with("servers.example.")));
//! # }
//! ```
//!
//! # Known differences from munin-node
//!
//! - A plugin output line that is exactly `.` is dropped instead of ending the reply.
//! - `starttls` is answered as an unknown command (no TLS yet).

#![warn(missing_docs)]

mod agent;
mod collect;
mod config;
mod error;
mod events;
mod munin;
mod plugin;
mod procfs;
mod rate;
mod sender;
mod statfs;
mod stats;

pub use agent::{AgentHandle, Sampler, StatsReader, run};
pub use config::Config;
pub use error::{AgentError, ConfigError};
pub use stats::StatsSnapshot;

/// Name and one-line description of every built-in collector (values for the `collectors`
/// config key), for `--help` and generated docs.
pub fn describe_collectors() -> Vec<(&'static str, &'static str)> {
    collect::describe_collectors()
}

/// Name and one-line description of every built-in Munin plugin (values for the
/// `disabled_builtin_plugins` config key).
pub fn describe_builtin_plugins() -> Vec<(&'static str, &'static str)> {
    collect::describe_plugins()
}
