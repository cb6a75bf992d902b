//! The agent's configuration: one serde struct, a doc comment per key, defaults from
//! `shared/spec/cli.md` (`charcoal agent`) and `shared/spec/munin.md` (munin-node's defaults).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

/// Configuration of the node agent (`[agent]` in Charcoal's TOML file).
///
/// Durations are written like `"500ms"`, `"10s"`, `"5m"`, `"1h"`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Time between two collection rounds; every round sends all values once. Default `10s`.
    #[serde(with = "duration")]
    pub interval: Duration,
    /// Node name: used in the munin greeting (`# munin node at <name>`), for `list`, and for
    /// `{host}` in `prefix`. Default: the system host name.
    pub host_name: Option<String>,
    /// Prefix of every metric sent. `{host}` is replaced by the node name with dots turned into
    /// underscores. Default `servers.{host}`.
    pub prefix: String,
    /// Send values as StatsD gauges over UDP to this `HOST:PORT`. At most one of `statsd` and
    /// `carbon` may be set; with neither the agent only serves the munin protocol.
    pub statsd: Option<String>,
    /// Send values as Carbon plaintext (`name value timestamp`) over TCP to this `HOST:PORT`.
    pub carbon: Option<String>,
    /// Largest StatsD datagram payload in bytes; lines are packed up to this size. Default 1432
    /// (fits an Ethernet MTU with IPv6 headers).
    pub statsd_max_packet: usize,
    /// Carbon lines kept while the Carbon server is unreachable; older lines are dropped first.
    /// Default 100000.
    pub carbon_buffer_lines: usize,
    /// Address of the munin-node protocol server, `HOST:PORT`; empty disables it. The binary
    /// binds it and hands the listener to [`crate::run`]. Default `127.0.0.1:4949`.
    pub munin_listen: String,
    /// Peers allowed to talk to the munin server: IP addresses or CIDR blocks. Others are
    /// accepted and closed without a byte, like munin-node. Default `["127.0.0.1/32", "::1/128"]`.
    pub munin_allow: Vec<String>,
    /// Longest munin session, counted from the greeting (munin-node's `global_timeout`).
    /// Default `900s`.
    #[serde(with = "duration")]
    pub munin_session_timeout: Duration,
    /// Most munin sessions served at once (munin-node's Net::Server `max_servers`); further
    /// connections wait to be accepted until a session ends. Default 256.
    pub munin_max_sessions: usize,
    /// Directory of Munin script plugins (entries are run through their own path, so wildcard
    /// symlinks such as `if_eth0 -> /usr/share/munin/plugins/if_` work). Default: none.
    pub plugin_dir: Option<PathBuf>,
    /// Directory of plugin-conf.d files (`[plugin]` sections with user, group, env.*, timeout,
    /// command, host_name). Default: none.
    pub plugin_conf_dir: Option<PathBuf>,
    /// State directory for plugins: each user gets `<dir>/<user>` as `MUNIN_PLUGSTATE`.
    /// Default `/var/lib/charcoal/plugin-state`.
    pub plugin_state_dir: PathBuf,
    /// Per-plugin run timeout (munin-node's `timeout`); plugin-conf.d `timeout` overrides it per
    /// plugin. On expiry the plugin's process group is killed. Default `60s`.
    #[serde(with = "duration")]
    pub plugin_timeout: Duration,
    /// User plugins run as when the agent runs as root and plugin-conf.d names none.
    /// Default `nobody` (Debian's munin-node default).
    pub plugin_user: String,
    /// Group plugins run as when the agent runs as root and plugin-conf.d names none. When it
    /// does not exist the user's primary group is used. Default `munin` (Debian's default).
    pub plugin_group: String,
    /// Extra environment for every plugin, applied over the `MUNIN_*` defaults and under
    /// plugin-conf.d `env.*` (e.g. `MUNIN_LIBDIR`). Default: empty.
    pub plugin_env: BTreeMap<String, String>,
    /// How many plugins are probed with `config` at the same time at start-up. Default 4.
    pub plugin_probe_concurrency: usize,
    /// Also send the values of script plugins every interval, under `<prefix>.munin.<graph>.<field>`.
    /// Default true.
    pub send_plugins: bool,
    /// How often the sender re-reads each script plugin's `config` (field types, min, max).
    /// Default `5m`.
    #[serde(with = "duration")]
    pub plugin_config_refresh: Duration,
    /// Built-in collectors whose values are sent every interval. Default: all of
    /// `cpu load memory vmstat network disk filesystem kernel processes uptime`.
    pub collectors: Vec<String>,
    /// Built-in Munin plugins not to serve (a script plugin of the same name then takes its
    /// place). Names: `cpu memory load if_ if_err_ df df_inode diskstats forks interrupts
    /// processes threads swap uptime vmstat entropy open_files`. Default: none.
    pub disabled_builtin_plugins: Vec<String>,
    /// Network interfaces left out (exact names, or a prefix followed by `*`). Applies to
    /// the `network` collector and the `if_*`/`if_err_*` built-in plugins. Default `["lo"]`.
    pub interfaces_exclude: Vec<String>,
    /// Block devices left out of the `disk` collector (exact, or prefix `*`).
    /// Default `["loop*", "ram*", "fd*", "zram*"]`; partitions of a listed disk are always skipped.
    pub disks_exclude: Vec<String>,
    /// File system types left out of the `filesystem` collector (pseudo and network file systems,
    /// whose `statvfs` can hang). Default: proc, sysfs, cgroup, nfs, cifs, fuse and friends.
    pub fs_types_exclude: Vec<String>,
    /// Mount points left out of the `filesystem` collector, with everything below them.
    /// Default `["/proc", "/sys", "/dev", "/run/user", "/run/credentials", "/var/lib/docker", "/var/lib/containers"]`.
    pub fs_mounts_exclude: Vec<String>,
    /// Longest wait for one `statvfs` call; a mount that does not answer is skipped (and not
    /// asked again until its call returns). Default `1s`.
    #[serde(with = "duration")]
    pub fs_timeout: Duration,
    /// Where procfs is mounted (containers mount the host's elsewhere). Default `/proc`.
    pub proc_root: PathBuf,
    /// Where sysfs is mounted. Default `/sys`.
    pub sys_root: PathBuf,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            interval: Duration::from_secs(10),
            host_name: None,
            prefix: "servers.{host}".to_owned(),
            statsd: None,
            carbon: None,
            statsd_max_packet: 1432,
            carbon_buffer_lines: 100_000,
            munin_listen: "127.0.0.1:4949".to_owned(),
            munin_allow: vec!["127.0.0.1/32".to_owned(), "::1/128".to_owned()],
            munin_session_timeout: Duration::from_secs(900),
            munin_max_sessions: 256,
            plugin_dir: None,
            plugin_conf_dir: None,
            plugin_state_dir: PathBuf::from("/var/lib/charcoal/plugin-state"),
            plugin_timeout: Duration::from_secs(60),
            plugin_user: "nobody".to_owned(),
            plugin_group: "munin".to_owned(),
            plugin_env: BTreeMap::new(),
            plugin_probe_concurrency: 4,
            send_plugins: true,
            plugin_config_refresh: Duration::from_secs(300),
            collectors: crate::collect::COLLECTORS
                .iter()
                .map(|c| c.name.to_owned())
                .collect(),
            disabled_builtin_plugins: Vec::new(),
            interfaces_exclude: vec!["lo".to_owned()],
            disks_exclude: ["loop*", "ram*", "fd*", "zram*"]
                .into_iter()
                .map(str::to_owned)
                .collect(),
            fs_types_exclude: DEFAULT_FS_TYPES_EXCLUDE
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            fs_mounts_exclude: [
                "/proc",
                "/sys",
                "/dev",
                "/run/user",
                "/run/credentials",
                "/var/lib/docker",
                "/var/lib/containers",
            ]
            .into_iter()
            .map(str::to_owned)
            .collect(),
            fs_timeout: Duration::from_secs(1),
            proc_root: PathBuf::from("/proc"),
            sys_root: PathBuf::from("/sys"),
        }
    }
}

/// Pseudo file systems (no disk space to report) and network file systems (statvfs may hang).
const DEFAULT_FS_TYPES_EXCLUDE: &[&str] = &[
    "autofs",
    "binfmt_misc",
    "bpf",
    "cgroup",
    "cgroup2",
    "configfs",
    "debugfs",
    "devpts",
    "devtmpfs",
    "efivarfs",
    "fusectl",
    "hugetlbfs",
    "iso9660",
    "mqueue",
    "nsfs",
    "overlay",
    "proc",
    "pstore",
    "rpc_pipefs",
    "securityfs",
    "selinuxfs",
    "squashfs",
    "sysfs",
    "tracefs",
    "ramfs",
    "nfs",
    "nfs4",
    "cifs",
    "smb3",
    "smbfs",
    "ceph",
    "glusterfs",
    "fuse.sshfs",
    "fuse.glusterfs",
    "9p",
    "afs",
];

impl Config {
    /// Checks every key; the error names the key at fault.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let (Some(statsd), Some(carbon)) = (&self.statsd, &self.carbon) {
            return Err(ConfigError::TwoTargets {
                statsd: statsd.clone(),
                carbon: carbon.clone(),
            });
        }
        if let Some(v) = &self.statsd {
            check_host_port("statsd", v)?;
        }
        if let Some(v) = &self.carbon {
            check_host_port("carbon", v)?;
        }
        if !self.munin_listen.is_empty() {
            check_host_port("munin_listen", &self.munin_listen)?;
        }
        if self.munin_max_sessions == 0 {
            return Err(ConfigError::ZeroCount {
                key: "munin_max_sessions",
            });
        }
        for entry in &self.munin_allow {
            parse_cidr(entry).ok_or_else(|| ConfigError::BadAllow {
                value: entry.clone(),
            })?;
        }
        for (key, d) in [
            ("interval", self.interval),
            ("plugin_timeout", self.plugin_timeout),
            ("munin_session_timeout", self.munin_session_timeout),
            ("plugin_config_refresh", self.plugin_config_refresh),
            ("fs_timeout", self.fs_timeout),
        ] {
            if d.is_zero() {
                return Err(ConfigError::ZeroDuration { key });
            }
        }
        if self.prefix.is_empty()
            || self.prefix.split('.').any(str::is_empty)
            || self.prefix.chars().any(char::is_whitespace)
        {
            return Err(ConfigError::BadPrefix {
                value: self.prefix.clone(),
            });
        }
        if let Some(h) = &self.host_name
            && !valid_node_name(h)
        {
            return Err(ConfigError::BadHostName { value: h.clone() });
        }
        if self.statsd_max_packet < 64 {
            return Err(ConfigError::TooSmall {
                key: "statsd_max_packet",
                min: 64,
                value: self.statsd_max_packet,
            });
        }
        if self.plugin_probe_concurrency == 0 {
            return Err(ConfigError::TooSmall {
                key: "plugin_probe_concurrency",
                min: 1,
                value: 0,
            });
        }
        for name in &self.collectors {
            if crate::collect::find_collector(name).is_none() {
                return Err(ConfigError::UnknownCollector {
                    name: name.clone(),
                    known: crate::collect::COLLECTORS
                        .iter()
                        .map(|c| c.name)
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
        }
        for name in &self.disabled_builtin_plugins {
            if !crate::collect::PLUGINS.iter().any(|p| p.name == name) {
                return Err(ConfigError::UnknownBuiltin {
                    name: name.clone(),
                    known: crate::collect::PLUGINS
                        .iter()
                        .map(|p| p.name)
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
        }
        Ok(())
    }

    /// The parsed allow-list. Call after [`Config::validate`]; invalid entries are skipped.
    pub(crate) fn allow_list(&self) -> Vec<Cidr> {
        self.munin_allow
            .iter()
            .filter_map(|e| parse_cidr(e))
            .collect()
    }
}

/// A node name usable in the greeting: non-empty, printable, no whitespace.
pub(crate) fn valid_node_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_graphic())
}

fn check_host_port(key: &'static str, value: &str) -> Result<(), ConfigError> {
    let bad = || ConfigError::BadAddress {
        key,
        value: value.to_owned(),
    };
    let (host, port) = value.rsplit_once(':').ok_or_else(bad)?;
    if host.is_empty() || port.parse::<u16>().is_err() {
        return Err(bad());
    }
    Ok(())
}

/// An IP network: address and prefix length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Cidr {
    addr: IpAddr,
    len: u8,
}

impl Cidr {
    /// Whether `ip` is inside this block. IPv4-mapped IPv6 peers match IPv4 blocks.
    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = if self.len == 0 {
                    0
                } else {
                    u32::MAX << (32 - u32::from(self.len))
                };
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = if self.len == 0 {
                    0
                } else {
                    u128::MAX << (128 - u32::from(self.len))
                };
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// Parses `a.b.c.d`, `a.b.c.d/len`, `::1` or `::1/128`.
pub(crate) fn parse_cidr(s: &str) -> Option<Cidr> {
    let s = s.trim();
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l.parse::<u8>().ok()?)),
        None => (s, None),
    };
    let addr: IpAddr = addr.parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let len = len.unwrap_or(max);
    if len > max {
        return None;
    }
    Some(Cidr { addr, len })
}

/// Whether `name` matches one of `patterns`: exact, or prefix when the pattern ends in `*`.
pub(crate) fn name_matches(patterns: &[String], name: &str) -> bool {
    patterns.iter().any(|p| match p.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => p == name,
    })
}

/// Serde helper for durations written as `500ms`, `10s`, `5m`, `1h`, `1d` (and sums like `1m30s`).
pub(crate) mod duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(*d))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        parse(&s).ok_or_else(|| {
            D::Error::custom(format_args!(
                "invalid duration {s:?} (expected e.g. \"500ms\", \"10s\", \"5m\", \"1h\")"
            ))
        })
    }

    /// Formats with the largest unit that divides the duration exactly.
    pub(crate) fn format(d: Duration) -> String {
        let ms = d.as_millis();
        if !ms.is_multiple_of(1000) {
            return format!("{ms}ms");
        }
        let s = ms / 1000;
        for (unit, secs) in [("d", 86_400), ("h", 3600), ("m", 60)] {
            if s != 0 && s.is_multiple_of(secs) {
                return format!("{}{unit}", s / secs);
            }
        }
        format!("{s}s")
    }

    /// Parses one or more `<number><unit>` groups; units ms, s, m, h, d.
    pub(crate) fn parse(s: &str) -> Option<Duration> {
        let mut rest = s.trim();
        if rest.is_empty() {
            return None;
        }
        let mut total = Duration::ZERO;
        while !rest.is_empty() {
            let digits = rest.find(|c: char| !c.is_ascii_digit())?;
            if digits == 0 {
                return None;
            }
            let n: u64 = rest[..digits].parse().ok()?;
            rest = &rest[digits..];
            let unit_len = rest
                .find(|c: char| c.is_ascii_digit())
                .unwrap_or(rest.len());
            let part = match &rest[..unit_len] {
                "ms" => Duration::from_millis(n),
                "s" => Duration::from_secs(n),
                "m" => Duration::from_secs(n.checked_mul(60)?),
                "h" => Duration::from_secs(n.checked_mul(3600)?),
                "d" => Duration::from_secs(n.checked_mul(86_400)?),
                _ => return None,
            };
            total = total.checked_add(part)?;
            rest = &rest[unit_len..];
        }
        Some(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_cli_contract() {
        let c = Config::default();
        assert_eq!(c.interval, Duration::from_secs(10));
        assert_eq!(c.munin_listen, "127.0.0.1:4949");
        assert_eq!(c.prefix, "servers.{host}");
        assert_eq!(c.plugin_timeout, Duration::from_secs(60));
        assert_eq!(c.munin_session_timeout, Duration::from_secs(900));
        c.validate().unwrap();
    }

    #[test]
    fn toml_round_trip_and_unknown_keys() {
        let c: Config = toml::from_str(
            "interval = \"5s\"\ncarbon = \"127.0.0.1:2003\"\nplugin_timeout = \"1m30s\"\n",
        )
        .unwrap();
        assert_eq!(c.interval, Duration::from_secs(5));
        assert_eq!(c.plugin_timeout, Duration::from_secs(90));
        assert_eq!(c.carbon.as_deref(), Some("127.0.0.1:2003"));
        c.validate().unwrap();
        let text = toml::to_string(&c).unwrap();
        let back: Config = toml::from_str(&text).unwrap();
        assert_eq!(back, c);
        assert!(toml::from_str::<Config>("intervall = \"5s\"").is_err());
        assert!(toml::from_str::<Config>("interval = \"5 parsecs\"").is_err());
    }

    #[test]
    fn validation_names_the_key() {
        let c = Config {
            statsd: Some("a:1".into()),
            carbon: Some("b:2".into()),
            ..Config::default()
        };
        assert!(matches!(c.validate(), Err(ConfigError::TwoTargets { .. })));
        let c = Config {
            carbon: Some("nohost".into()),
            ..Config::default()
        };
        assert!(matches!(
            c.validate(),
            Err(ConfigError::BadAddress { key: "carbon", .. })
        ));
        let c = Config {
            munin_allow: vec!["10.0.0.0/33".into()],
            ..Config::default()
        };
        assert!(matches!(c.validate(), Err(ConfigError::BadAllow { .. })));
        let c = Config {
            collectors: vec!["gpu".into()],
            ..Config::default()
        };
        assert!(matches!(
            c.validate(),
            Err(ConfigError::UnknownCollector { .. })
        ));
        let c = Config {
            interval: Duration::ZERO,
            ..Config::default()
        };
        assert!(matches!(
            c.validate(),
            Err(ConfigError::ZeroDuration { key: "interval" })
        ));
        let c = Config {
            prefix: "servers..x".into(),
            ..Config::default()
        };
        assert!(matches!(c.validate(), Err(ConfigError::BadPrefix { .. })));
        let c = Config {
            munin_max_sessions: 0,
            ..Config::default()
        };
        let err = c.validate().unwrap_err();
        assert!(err.to_string().contains("munin_max_sessions"), "{err}");
    }

    #[test]
    fn durations() {
        assert_eq!(duration::parse("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(duration::parse("10s"), Some(Duration::from_secs(10)));
        assert_eq!(duration::parse("5m"), Some(Duration::from_secs(300)));
        assert_eq!(duration::parse("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(duration::parse("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(duration::parse("10"), None);
        assert_eq!(duration::parse("s"), None);
        assert_eq!(duration::parse(""), None);
        assert_eq!(duration::format(Duration::from_secs(300)), "5m");
        assert_eq!(duration::format(Duration::from_millis(1500)), "1500ms");
        assert_eq!(duration::format(Duration::from_secs(90)), "90s");
    }

    #[test]
    fn cidr_matching() {
        let lo = parse_cidr("127.0.0.1/32").unwrap();
        assert!(lo.contains("127.0.0.1".parse().unwrap()));
        assert!(!lo.contains("127.0.0.2".parse().unwrap()));
        assert!(lo.contains("::ffff:127.0.0.1".parse().unwrap()));
        let net = parse_cidr("10.1.0.0/16").unwrap();
        assert!(net.contains("10.1.200.3".parse().unwrap()));
        assert!(!net.contains("10.2.0.1".parse().unwrap()));
        let v6 = parse_cidr("::1").unwrap();
        assert!(v6.contains("::1".parse().unwrap()));
        assert!(!v6.contains("127.0.0.1".parse().unwrap()));
        assert!(
            parse_cidr("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        assert!(parse_cidr("1.2.3").is_none());
    }

    #[test]
    fn name_patterns() {
        let p = vec!["lo".to_owned(), "veth*".to_owned()];
        assert!(name_matches(&p, "lo"));
        assert!(!name_matches(&p, "lo0"));
        assert!(name_matches(&p, "veth12ab"));
        assert!(!name_matches(&p, "eth0"));
    }
}
