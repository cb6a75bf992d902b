//! Error types of the node agent. Every variant keeps the input or the path it is about.

use std::path::PathBuf;

/// A configuration value that cannot be used. Each variant names the key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `statsd` and `carbon` were both set; the agent sends to one target.
    #[error(
        "agent: set at most one of `statsd` and `carbon` (got statsd={statsd:?}, carbon={carbon:?})"
    )]
    TwoTargets {
        /// The `statsd` value.
        statsd: String,
        /// The `carbon` value.
        carbon: String,
    },
    /// An address key is not `HOST:PORT`.
    #[error("agent: key `{key}`: {value:?} is not HOST:PORT")]
    BadAddress {
        /// The key.
        key: &'static str,
        /// The value given.
        value: String,
    },
    /// An allow-list entry is not an IP address or CIDR block.
    #[error(
        "agent: key `munin_allow`: {value:?} is not an IP address or CIDR block (a.b.c.d/len, ::1/128)"
    )]
    BadAllow {
        /// The entry given.
        value: String,
    },
    /// A duration that must be positive is zero.
    #[error("agent: key `{key}` must be greater than zero")]
    ZeroDuration {
        /// The key.
        key: &'static str,
    },
    /// A count that must be positive is zero.
    #[error("agent: key `{key}` must be at least 1")]
    ZeroCount {
        /// The key.
        key: &'static str,
    },
    /// A collector name that no collector has.
    #[error("agent: key `collectors`: unknown collector {name:?} (known: {known})")]
    UnknownCollector {
        /// The name given.
        name: String,
        /// The names that exist, comma separated.
        known: String,
    },
    /// A built-in Munin plugin name that does not exist.
    #[error(
        "agent: key `disabled_builtin_plugins`: unknown built-in plugin {name:?} (known: {known})"
    )]
    UnknownBuiltin {
        /// The name given.
        name: String,
        /// The names that exist, comma separated.
        known: String,
    },
    /// The metric prefix is empty or has empty path components.
    #[error("agent: key `prefix`: {value:?} is not a dotted metric prefix")]
    BadPrefix {
        /// The value given.
        value: String,
    },
    /// The node name contains whitespace or is empty.
    #[error("agent: key `host_name`: {value:?} is not a usable node name")]
    BadHostName {
        /// The value given.
        value: String,
    },
    /// A size key is zero or too small.
    #[error("agent: key `{key}` must be at least {min} (got {value})")]
    TooSmall {
        /// The key.
        key: &'static str,
        /// The minimum.
        min: usize,
        /// The value given.
        value: usize,
    },
}

/// Why the agent could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// No `host_name` was configured and the system host name could not be read.
    #[error("agent: cannot read the system host name (set `host_name`)")]
    HostName(#[source] nix::Error),
    /// The plugin directory could not be listed.
    #[error("agent: cannot list plugin directory {path}")]
    PluginDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The munin listener has no local address.
    #[error("agent: munin listener has no local address")]
    Listener(#[source] std::io::Error),
}

/// A /proc or /sys file that could not be read or parsed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum SourceError {
    /// Reading the file failed.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}
