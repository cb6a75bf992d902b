//! Wiring: the collection rounds, the script plugin sampler, the sender and the munin server,
//! all in one `TaskTracker`, stopped by one `CancellationToken`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{Notify, mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::collect::{
    BuiltinPlugin, Collector, Emitter, Filters, Host, LineFormat, Needs, PLUGINS, PluginState,
    collector_mounts, find_collector,
};
use crate::config::{Config, name_matches, valid_node_name};
use crate::error::AgentError;
use crate::events;
use crate::munin::{self, Node};
use crate::plugin::output::{PluginConfig, graphite_path, values};
use crate::plugin::{Outcome, Plugins, Runner, RunnerSettings};
use crate::rate::{Kind, RateTracker};
use crate::sender::{self, Batch, Target};
use crate::statfs::FsProbe;
use crate::stats::{Stats, StatsSnapshot, bump};

/// Batches waiting for the sender; a round that finds the queue full is dropped and counted.
const SEND_QUEUE: usize = 64;

/// Runs the built-in collectors and formats their values as Carbon lines, without any
/// network part: what `charcoal agent` does every interval, usable on its own (one-shot
/// output, benchmarks).
pub struct Sampler {
    host: Host,
    rates: RateTracker,
    filters: Filters,
    collectors: Vec<&'static Collector>,
    needs: Needs,
    fs_probe: FsProbe,
    prefix: String,
    last_btime: Option<u64>,
    start: Instant,
    interval: Duration,
    stats: Arc<Stats>,
}

impl Sampler {
    /// Validates `config` and prepares the collectors it names.
    pub fn new(config: &Config) -> Result<Sampler, AgentError> {
        config.validate()?;
        let name = node_name(config)?;
        Ok(Sampler::with_parts(
            config,
            &name,
            Arc::new(Stats::default()),
        ))
    }

    fn with_parts(config: &Config, node: &str, stats: Arc<Stats>) -> Sampler {
        let collectors: Vec<&'static Collector> = config
            .collectors
            .iter()
            .filter_map(|n| find_collector(n))
            .collect();
        let needs = collectors
            .iter()
            .fold(Needs::NONE, |acc, c| acc | c.needs)
            // btime: reboot detection
            | Needs::STAT;
        Sampler {
            host: Host::new(config),
            rates: RateTracker::new(2.0 * config.interval.as_secs_f64()),
            filters: Filters::from_config(config),
            collectors,
            needs,
            fs_probe: FsProbe::new(config.fs_timeout),
            prefix: prefix_for(&config.prefix, node, node),
            last_btime: None,
            start: Instant::now(),
            interval: config.interval,
            stats,
        }
    }

    /// The metric prefix in use (`servers.<host>` by default).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Reads every source once and appends Carbon plaintext lines (`name value timestamp`)
    /// to `out`; returns the number of lines. Counters need two samples: the first call
    /// establishes them and emits only gauges.
    pub async fn sample(&mut self, out: &mut String) -> usize {
        let ts = unix_now();
        self.round(LineFormat::Carbon { timestamp: ts }, out).await
    }

    pub(crate) async fn round(&mut self, format: LineFormat, out: &mut String) -> usize {
        let t = self.start.elapsed().as_secs_f64();
        let stats = self.stats.clone();
        self.host.refresh(self.needs, &mut |e| {
            bump(&stats.source_errors);
            events::SOURCE_FAILED.log(|suppressed| {
                tracing::warn!(error = %e, suppressed, "cannot read a host metric source");
            });
        });
        if self.needs.has(Needs::MOUNTS) && self.host.has(Needs::MOUNTS) {
            let mounts = collector_mounts(&self.host.mounts, &self.filters);
            self.host.fs = self.fs_probe.stat(mounts).await;
        }
        if self.host.has(Needs::STAT) {
            let btime = self.host.stat.btime;
            if self.last_btime.is_some() && btime != self.last_btime {
                // Rebooted (or the clock was stepped): no delta may span it (spec §6.11).
                self.rates.reset_all();
            }
            self.last_btime = btime;
        }
        let mut e = Emitter::new(&mut self.rates, t, &self.prefix, format, out);
        for c in &self.collectors {
            (c.emit)(&self.host, &self.filters, &mut e);
        }
        let lines = e.lines();
        // Series not seen for a few intervals (interfaces gone) are forgotten.
        self.rates
            .prune_before(t - 5.0 * self.interval.as_secs_f64());
        bump(&self.stats.rounds);
        lines
    }
}

/// Reads the counters of a running agent.
#[derive(Debug, Clone)]
pub struct StatsReader(Arc<Stats>);

impl StatsReader {
    /// The counters now.
    pub fn snapshot(&self) -> StatsSnapshot {
        self.0.snapshot()
    }
}

/// A running agent. Dropping it does not stop the agent; cancel the token given to [`run`]
/// (or call [`AgentHandle::shutdown`]) and await [`AgentHandle::join`].
#[derive(Debug)]
pub struct AgentHandle {
    tracker: TaskTracker,
    shutdown: CancellationToken,
    stats: Arc<Stats>,
    munin_addr: Option<SocketAddr>,
    node_name: String,
    rescan: Arc<Notify>,
}

impl AgentHandle {
    /// The address the munin server listens on, if it runs.
    pub fn munin_addr(&self) -> Option<SocketAddr> {
        self.munin_addr
    }

    /// The node name used in the greeting and the metric prefix.
    pub fn node_name(&self) -> &str {
        &self.node_name
    }

    /// The agent's counters.
    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }

    /// A reader of the agent's counters that outlives the handle (for self-monitoring).
    pub fn stats_reader(&self) -> StatsReader {
        StatsReader(Arc::clone(&self.stats))
    }

    /// Probes the plugin directory and `plugin-conf.d` again, as munin-node does on SIGHUP:
    /// new plugins are served and sampled, removed ones dropped, changed `config` output
    /// re-read. Sessions and rounds keep the old list until the probe is done.
    pub fn rescan_plugins(&self) {
        self.rescan.notify_one();
    }

    /// Waits until the shutdown token is cancelled and every task has finished: the munin
    /// server stopped accepting, sessions ended after their current reply, running plugins
    /// were killed, and the sender delivered what it could.
    pub async fn join(self) {
        self.tracker.wait().await;
    }

    /// Cancels the shutdown token and waits as [`AgentHandle::join`] does.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        self.tracker.wait().await;
    }
}

/// Starts the agent: collection rounds and the sender (when `statsd` or `carbon` is set),
/// the script plugins (when `plugin_dir` is set), and the munin-node protocol server on
/// `munin` (already bound by the caller; `None` serves nothing). Must be called inside a
/// Tokio runtime. Everything stops when `shutdown` is cancelled.
pub async fn run(
    config: Config,
    munin: Option<TcpListener>,
    shutdown: CancellationToken,
) -> Result<AgentHandle, AgentError> {
    config.validate()?;
    let config = Arc::new(config);
    let name = node_name(&config)?;
    let stats = Arc::new(Stats::default());
    let tracker = TaskTracker::new();

    let builtins: Vec<&'static BuiltinPlugin> = PLUGINS
        .iter()
        .filter(|p| !config.disabled_builtin_plugins.iter().any(|d| d == p.name))
        .collect();

    let runner = Arc::new(Runner::new(
        RunnerSettings {
            dir: config.plugin_dir.clone().unwrap_or_default(),
            state_dir: config.plugin_state_dir.clone(),
            default_user: config.plugin_user.clone(),
            default_group: config.plugin_group.clone(),
            default_timeout: config.plugin_timeout,
            node_name: name.clone(),
            extra_env: config
                .plugin_env
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        },
        stats.clone(),
    ));
    let (plugins_tx, plugins_rx) = watch::channel(None);
    let rescan = Arc::new(Notify::new());
    {
        let (config, runner, name, shutdown, rescan) = (
            config.clone(),
            runner.clone(),
            name.clone(),
            shutdown.clone(),
            rescan.clone(),
        );
        let builtin_names: Vec<&'static str> = builtins.iter().map(|b| b.name).collect();
        tracker.spawn(async move {
            loop {
                let plugins = match &config.plugin_dir {
                    None => Plugins::empty(runner.clone()),
                    Some(_) => {
                        // A script plugin named like a built-in is shadowed by it; a wildcard
                        // instance only if the built-in would serve that interface.
                        let shadowed = |n: &str| {
                            builtin_names.iter().any(|b| {
                                n == *b
                                    || (b.ends_with('_')
                                        && is_builtin_instance(b, n)
                                        && !name_matches(&config.interfaces_exclude, &n[b.len()..]))
                            })
                        };
                        let own = name.to_lowercase();
                        let load = Plugins::load(
                            runner.clone(),
                            config.plugin_conf_dir.as_deref(),
                            config.plugin_probe_concurrency,
                            &own,
                            &shadowed,
                        );
                        let loaded = tokio::select! {
                            () = shutdown.cancelled() => return,
                            l = load => l,
                        };
                        loaded.unwrap_or_else(|e| {
                            tracing::error!(error = %e, "script plugins unavailable");
                            Plugins::empty(runner.clone())
                        })
                    }
                };
                tracing::info!(plugins = plugins.list.len(), "script plugins probed");
                // The sender stays alive so sessions never see "closed" while the agent runs.
                let _ = plugins_tx.send(Some(Arc::new(plugins)));
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = rescan.notified() => {}
                }
            }
        });
    }

    let mut munin_addr = None;
    if let Some(listener) = munin {
        munin_addr = Some(listener.local_addr().map_err(AgentError::Listener)?);
        let node = Arc::new(Node {
            name: name.clone(),
            builtins,
            plugins: plugins_rx.clone(),
            filters: Filters::from_config(&config),
            config: config.clone(),
            fs_probe: FsProbe::new(config.fs_timeout),
            plugin_state: PluginState::default(),
            allow: config.allow_list(),
            session_timeout: config.munin_session_timeout,
            max_sessions: config.munin_max_sessions,
            stats: stats.clone(),
        });
        tracing::info!(addr = ?munin_addr, node = %name, "munin-node protocol server listening");
        tracker.spawn(munin::serve(
            listener,
            node,
            shutdown.clone(),
            tracker.clone(),
        ));
    }

    let target = match (&config.statsd, &config.carbon) {
        (Some(a), _) => Some(Target::Statsd(a.clone())),
        (None, Some(a)) => Some(Target::Carbon(a.clone())),
        (None, None) => None,
    };
    if let Some(target) = target {
        let (tx, rx) = mpsc::channel(SEND_QUEUE);
        let format_statsd = matches!(target, Target::Statsd(_));
        tracker.spawn(sender::run(
            target,
            config.statsd_max_packet,
            config.carbon_buffer_lines,
            rx,
            stats.clone(),
        ));
        let sampler = Sampler::with_parts(&config, &name, stats.clone());
        tracker.spawn(rounds(
            sampler,
            config.interval,
            format_statsd,
            tx.clone(),
            shutdown.clone(),
            stats.clone(),
        ));
        if config.send_plugins && config.plugin_dir.is_some() {
            tracker.spawn(plugin_rounds(
                PluginSampling {
                    interval: config.interval,
                    refresh: config.plugin_config_refresh,
                    prefix_template: config.prefix.clone(),
                    own_node: name.to_lowercase(),
                    statsd: format_statsd,
                    stats: stats.clone(),
                },
                plugins_rx,
                tx,
                shutdown.clone(),
                tracker.clone(),
            ));
        }
    }
    tracker.close();
    Ok(AgentHandle {
        tracker,
        shutdown,
        stats,
        munin_addr,
        rescan,
        node_name: name,
    })
}

/// Whether `name` is a wildcard instance of the built-in `prefix` that the built-in serves
/// itself (`if_eth0` for `if_`, but not `if_err_eth0`, which belongs to `if_err_`).
fn is_builtin_instance(prefix: &str, name: &str) -> bool {
    let Some(rest) = name.strip_prefix(prefix) else {
        return false;
    };
    !rest.is_empty()
        && !PLUGINS
            .iter()
            .any(|p| p.name.len() > prefix.len() && name.starts_with(p.name))
}

async fn rounds(
    mut sampler: Sampler,
    interval: Duration,
    statsd: bool,
    tx: mpsc::Sender<Batch>,
    shutdown: CancellationToken,
    stats: Arc<Stats>,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        let format = if statsd {
            LineFormat::Statsd
        } else {
            LineFormat::Carbon {
                timestamp: unix_now(),
            }
        };
        let mut text = String::with_capacity(8192);
        let lines = sampler.round(format, &mut text).await;
        if lines > 0 {
            queue(&tx, Batch { text, lines }, &stats);
        }
    }
}

fn queue(tx: &mpsc::Sender<Batch>, batch: Batch, stats: &Stats) {
    if let Err(e) = tx.try_send(batch) {
        let lost = match &e {
            mpsc::error::TrySendError::Full(b) | mpsc::error::TrySendError::Closed(b) => b.lines,
        };
        stats
            .lines_dropped
            .fetch_add(lost as u64, Ordering::Relaxed);
        events::SEND_DROPPED.log(|suppressed| {
            tracing::warn!(
                lines = lost,
                suppressed,
                "agent: sender is behind; round dropped"
            );
        });
    }
}

/// Settings of the script plugin sampler.
struct PluginSampling {
    interval: Duration,
    refresh: Duration,
    prefix_template: String,
    own_node: String,
    statsd: bool,
    stats: Arc<Stats>,
}

/// A plugin's cached config (field types and limits) and whether a run is in flight.
#[derive(Default)]
struct PluginSlot {
    config: Mutex<Option<(PluginConfig, Instant)>>,
    busy: AtomicBool,
}

/// Every interval, fetches each script plugin that is not still running from the previous
/// interval (a hung plugin never delays the others) and sends its values. A rescan swaps the
/// list between rounds; a plugin kept across it keeps its slot, so it never runs twice at once.
async fn plugin_rounds(
    s: PluginSampling,
    mut plugins_rx: watch::Receiver<Option<Arc<Plugins>>>,
    tx: mpsc::Sender<Batch>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let s = Arc::new(s);
    let rates = Arc::new(Mutex::new(RateTracker::new(2.0 * s.interval.as_secs_f64())));
    let mut current: Option<Arc<Plugins>> = None;
    let mut slots: HashMap<String, Arc<PluginSlot>> = HashMap::new();
    let start = Instant::now();
    let mut tick = tokio::time::interval(s.interval);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            changed = plugins_rx.changed() => {
                if changed.is_err() {
                    break;
                }
                let Some(plugins) = plugins_rx.borrow_and_update().clone() else {
                    continue;
                };
                let mut kept = std::mem::take(&mut slots);
                for name in plugins.list.keys() {
                    let slot = kept.remove(name).unwrap_or_default();
                    // What a plugin says about itself may have changed with the rescan.
                    if let Ok(mut c) = slot.config.lock() {
                        *c = None;
                    }
                    slots.insert(name.clone(), slot);
                }
                current = Some(plugins);
                // Sample the new list now rather than an interval later.
                tick.reset_immediately();
                continue;
            }
            _ = tick.tick() => {}
        }
        let Some(plugins) = &current else { continue };
        for (name, slot) in &slots {
            if slot.busy.swap(true, Ordering::AcqRel) {
                continue;
            }
            let (plugins, slot, rates, tx, s, shutdown, name) = (
                plugins.clone(),
                slot.clone(),
                rates.clone(),
                tx.clone(),
                s.clone(),
                shutdown.clone(),
                name.clone(),
            );
            tracker.spawn(async move {
                tokio::select! {
                    () = shutdown.cancelled() => {}
                    () = sample_plugin(&plugins, &slot, &name, &rates, &tx, &s, start) => {}
                }
                slot.busy.store(false, Ordering::Release);
            });
        }
    }
}

async fn sample_plugin(
    plugins: &Plugins,
    slot: &PluginSlot,
    name: &str,
    rates: &Mutex<RateTracker>,
    tx: &mpsc::Sender<Batch>,
    s: &PluginSampling,
    start: Instant,
) {
    let Some(p) = plugins.list.get(name) else {
        return;
    };
    let stale = match slot.config.lock() {
        Ok(c) => c.as_ref().is_none_or(|(_, at)| at.elapsed() >= s.refresh),
        Err(_) => return,
    };
    if stale
        && let Outcome::Lines(lines) = plugins
            .runner
            .run(&p.name, &p.section, Some("config"), "", false)
            .await
    {
        let parsed = PluginConfig::parse(&p.name, &lines);
        if let Ok(mut c) = slot.config.lock() {
            *c = Some((parsed, Instant::now()));
        }
    }
    let Outcome::Lines(lines) = plugins
        .runner
        .run(&p.name, &p.section, None, "", false)
        .await
    else {
        return;
    };
    let t = start.elapsed().as_secs_f64();
    let format = if s.statsd {
        LineFormat::Statsd
    } else {
        LineFormat::Carbon {
            timestamp: unix_now(),
        }
    };
    let own = s.own_node.as_str();
    let node = p.node.as_str();
    let prefix = prefix_for(&s.prefix_template, own, node);
    let mut text = String::new();
    let lines_out = {
        let Ok(cfg) = slot.config.lock() else { return };
        let Ok(mut rates) = rates.lock() else { return };
        let mut e = Emitter::new(&mut rates, t, &prefix, format, &mut text);
        for v in values(&p.name, &lines) {
            let Some(raw) = v.raw else { continue };
            let fc = cfg
                .as_ref()
                .map(|(c, _)| c.field(v.graph, v.field))
                .unwrap_or_default();
            e.munin_value(
                format_args!(
                    "munin.{}.{}",
                    graphite_path(v.graph),
                    graphite_path(v.field)
                ),
                fc.kind.unwrap_or(Kind::Gauge),
                raw,
                fc.limits,
                v.at,
            );
        }
        e.lines()
    };
    if lines_out > 0 {
        queue(
            tx,
            Batch {
                text,
                lines: lines_out,
            },
            &s.stats,
        );
    }
}

/// The metric prefix for `node`: `{host}` replaced by the node name with dots turned into
/// underscores. A virtual node (plugin-conf.d `host_name`) under a template without
/// `{host}` gets its name appended.
fn prefix_for(template: &str, own: &str, node: &str) -> String {
    let host = node.replace('.', "_");
    if template.contains("{host}") {
        template.replace("{host}", &host)
    } else if node.eq_ignore_ascii_case(own) {
        template.to_owned()
    } else {
        format!("{template}.{host}")
    }
}

fn node_name(config: &Config) -> Result<String, AgentError> {
    if let Some(h) = &config.host_name {
        return Ok(h.clone());
    }
    let h = nix::unistd::gethostname().map_err(AgentError::HostName)?;
    let h = h.to_string_lossy().into_owned();
    if valid_node_name(&h) {
        Ok(h)
    } else {
        Err(AgentError::Config(crate::ConfigError::BadHostName {
            value: h,
        }))
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::COLLECTORS;

    #[test]
    fn prefixes() {
        assert_eq!(prefix_for("servers.{host}", "vm", "vm"), "servers.vm");
        assert_eq!(
            prefix_for("servers.{host}", "vm", "db1.example.com"),
            "servers.db1_example_com"
        );
        assert_eq!(prefix_for("hosts.web", "vm", "vm"), "hosts.web");
        assert_eq!(
            prefix_for("hosts.web", "vm", "virtual.example"),
            "hosts.web.virtual_example"
        );
    }

    #[test]
    fn builtin_instances() {
        assert!(is_builtin_instance("if_", "if_eth0"));
        assert!(!is_builtin_instance("if_", "if_err_eth0"));
        assert!(is_builtin_instance("if_err_", "if_err_eth0"));
        assert!(!is_builtin_instance("if_", "if_"));
        assert!(!is_builtin_instance("if_", "cpu"));
    }

    #[test]
    fn collectors_table_is_complete() {
        // every collector named in the default config exists, and names are unique
        let mut names: Vec<&str> = COLLECTORS.iter().map(|c| c.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), COLLECTORS.len());
        let mut p: Vec<&str> = PLUGINS.iter().map(|c| c.name).collect();
        p.sort_unstable();
        p.dedup();
        assert_eq!(p.len(), PLUGINS.len());
    }

    #[tokio::test(start_paused = true)]
    async fn second_round_sends_rates() {
        let base = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
        let config = Config {
            host_name: Some("vm.example".into()),
            proc_root: base.join("proc-vm"),
            sys_root: base.join("sys-vm"),
            collectors: vec!["cpu".into(), "load".into()],
            ..Config::default()
        };
        let mut sampler = Sampler::new(&config).unwrap();
        assert_eq!(sampler.prefix(), "servers.vm_example");
        let mut out = String::new();
        let n = sampler.round(LineFormat::Statsd, &mut out).await;
        assert_eq!(n, 3, "{out}");
        assert!(out.contains("servers.vm_example.load.load5:0.16|g\n"));
        tokio::time::advance(Duration::from_secs(10)).await;
        let mut out = String::new();
        sampler.round(LineFormat::Statsd, &mut out).await;
        // same fixture: every counter rate is 0
        assert!(
            out.contains("servers.vm_example.cpu.total.user:0|g\n"),
            "{out}"
        );
    }
}
