//! Error types of the StatsD crate.

use std::io;
use std::net::SocketAddr;

/// A configuration value that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A key of [`crate::Config`] has an unusable value.
    #[error("statsd config key `{key}`: {reason}")]
    Invalid {
        /// The snake_case key.
        key: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// An Etsy StatsD configuration file (JavaScript object literal) that cannot be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EtsyConfigError {
    /// The text is not an object literal this reader understands.
    #[error("etsy config line {line}, column {column}: {reason}")]
    Syntax {
        /// 1-based line.
        line: usize,
        /// 1-based column (in characters).
        column: usize,
        /// What was expected.
        reason: String,
    },
    /// A known key has a value of the wrong kind or range.
    #[error("etsy config key `{key}`: {reason}")]
    Value {
        /// The key path, e.g. `graphite.globalPrefix`.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// Starting or running a server failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// Creating or binding a socket failed.
    #[error("statsd: binding {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Another socket operation failed.
    #[error("statsd: {context}: {source}")]
    Io {
        /// What was being done.
        context: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A worker thread panicked (a bug; reported instead of propagated).
    #[error("statsd: {what} panicked")]
    Panicked {
        /// Which task.
        what: &'static str,
    },
}

/// A sink could not take a flush.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SinkError {
    /// The sink's buffer is full; the oldest data was dropped to make room.
    #[error("sink {sink}: buffer full, dropped {dropped_points} points")]
    Overflow {
        /// Sink name.
        sink: &'static str,
        /// Points dropped.
        dropped_points: usize,
    },
    /// The sink is shut down.
    #[error("sink {sink}: closed")]
    Closed {
        /// Sink name.
        sink: &'static str,
    },
    /// Any other failure of a sink implemented outside this crate (e.g. the embedded store).
    #[error("sink {sink}: {source}")]
    Other {
        /// Sink name.
        sink: &'static str,
        /// The underlying error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}
