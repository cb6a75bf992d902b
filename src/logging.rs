//! Logs: `tracing` events to stdout, one per line; JSON lines unless stdout is a terminal (or
//! as configured). No files, no rotation: the environment collects the stream. The level can
//! change live (SIGHUP).

use std::io::IsTerminal;
use std::sync::OnceLock;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry, reload};

use crate::config::{LogConfig, LogFormat};

/// Swaps the level filter of the installed subscriber.
static LEVEL: OnceLock<reload::Handle<EnvFilter, Registry>> = OnceLock::new();

/// The filter for `level`; `RUST_LOG`, when set, wins over the configuration.
fn filter(level: &str) -> EnvFilter {
    std::env::var("RUST_LOG")
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .or_else(|| EnvFilter::try_new(level).ok())
        .unwrap_or_else(|| EnvFilter::new("info"))
}

/// Checks a level directive (`info`, `warn,charcoal_store=debug`, ...).
pub fn check_level(level: &str) -> Result<(), String> {
    EnvFilter::try_new(level)
        .map(|_| ())
        .map_err(|e| format!("invalid level {level:?}: {e}"))
}

/// Installs the global subscriber.
pub fn init(config: &LogConfig) {
    let (filter, handle) = reload::Layer::new(filter(&config.level));
    let json = match config.format {
        LogFormat::Json => true,
        LogFormat::Human => false,
        LogFormat::Auto => !std::io::stdout().is_terminal(),
    };
    let registry = tracing_subscriber::registry().with(filter);
    let installed = if json {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(false)
                    .with_span_list(false)
                    .with_writer(std::io::stdout),
            )
            .try_init()
    } else {
        registry
            .with(tracing_subscriber::fmt::layer().with_writer(std::io::stdout))
            .try_init()
    };
    // Already installed (tests): keep the first.
    if installed.is_ok() {
        let _ = LEVEL.set(handle);
    }
}

/// Applies a new level; returns whether it changed anything.
pub fn set_level(level: &str) -> bool {
    LEVEL
        .get()
        .is_some_and(|handle| handle.reload(filter(level)).is_ok())
}
