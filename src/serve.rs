//! Wiring: one process running the parts an operator asked for (`charcoal serve` runs all of
//! them; `charcoal statsd|carbon|web|agent` one each), with one start-up and one shutdown
//! order: stop accepting → drain socket buffers → final StatsD flush → store cache flush → exit.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use charcoal_statsd::{CarbonSink, CarbonSinkConfig, CarbonSinkHandle, Flush, Sink, SinkError};
use charcoal_store::{CarbonReceiver, CarbonSockets, Store, StoreError};
use tokio_util::sync::CancellationToken;

use crate::config::{self, Config};
use crate::handoff::{Inherited, Inventory};
use crate::ops::{self, Observed};
use crate::signals::{Event, Signals};

/// Where StatsD flushes go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatsdSink {
    /// Into this process's store.
    Store,
    /// Carbon plaintext to `HOST:PORT`.
    Carbon(String),
    /// Nowhere (an Etsy config without `graphiteHost`: aggregates are computed and dropped).
    Discard,
}

/// StatsD listeners (more than one when an Etsy config lists several servers).
#[derive(Debug, Clone, Default)]
pub struct StatsdListen {
    /// UDP addresses.
    pub udp: Vec<String>,
    /// TCP line-server addresses.
    pub tcp: Vec<String>,
}

/// Which parts run.
#[derive(Debug, Clone)]
pub struct Parts {
    pub statsd: Option<(StatsdSink, StatsdListen)>,
    pub carbon: bool,
    pub web: bool,
    pub agent: bool,
}

impl Parts {
    fn needs_store(&self) -> bool {
        self.carbon || self.web || matches!(self.statsd, Some((StatsdSink::Store, _)))
    }
}

/// Binds listeners, preferring sockets inherited from a predecessor (see `handoff.rs`), and
/// records every socket so a successor can take them over in turn.
#[derive(Default)]
struct Binder {
    inherited: Inherited,
    inventory: Inventory,
}

impl Binder {
    fn tcp(&mut self, name: &str, address: &str) -> Result<tokio::net::TcpListener> {
        let want = crate::listen::resolve(address)?;
        let listener = match self.inherited.tcp(name, want) {
            Some(l) => {
                l.set_nonblocking(true)?;
                tokio::net::TcpListener::from_std(l)?
            }
            None => crate::listen::tcp(want)?,
        };
        self.inventory.add(name, &listener)?;
        Ok(listener)
    }

    fn udp(&mut self, name: &str, want: SocketAddr) -> Result<tokio::net::UdpSocket> {
        let socket = match self.inherited.udp(name, want) {
            Some(s) => {
                s.set_nonblocking(true)?;
                tokio::net::UdpSocket::from_std(s)?
            }
            None => crate::listen::udp(want)?,
        };
        self.inventory.add(name, &socket)?;
        Ok(socket)
    }

    /// Carbon's TCP listener and UDP socket on one address (UDP takes TCP's port when the
    /// configured port is 0).
    fn carbon(
        &mut self,
        address: &str,
        with_udp: bool,
    ) -> Result<(tokio::net::TcpListener, Option<tokio::net::UdpSocket>)> {
        let tcp = self.tcp("carbon.tcp", address)?;
        let udp = if with_udp {
            Some(self.udp("carbon.udp", tcp.local_addr()?)?)
        } else {
            None
        };
        Ok((tcp, udp))
    }

    /// StatsD's group of UDP sockets on `address` (one per worker).
    fn statsd_udp(
        &mut self,
        address: &str,
        workers: usize,
        buffer: usize,
    ) -> Result<Vec<std::net::UdpSocket>> {
        let want = crate::listen::resolve(address)?;
        let prefix = format!("statsd.udp {address} ");
        let mut sockets = Vec::new();
        while let Some(s) = self
            .inherited
            .udp(&format!("{prefix}{}", sockets.len()), want)
        {
            sockets.push(s);
        }
        if sockets.is_empty() {
            sockets = charcoal_statsd::bind_udp(want, workers, buffer)?;
        }
        for (i, s) in sockets.iter().enumerate() {
            self.inventory.add(&format!("{prefix}{i}"), s)?;
        }
        Ok(sockets)
    }
}

/// Builds the configuration again (file, environment, flags) for a SIGHUP reload.
pub type Reread = Box<dyn Fn() -> Result<Config> + Send>;

/// How this process was started (the executable's path then, and the arguments), for
/// starting a successor on SIGUSR2: after a package upgrade the path holds the new binary.
struct Invocation {
    exe: PathBuf,
    args: Vec<std::ffi::OsString>,
}

pub fn run(config: Config, parts: Parts, reread: Reread) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("charcoal-io")
        .build()?;
    let invocation = Invocation {
        exe: std::env::current_exe().context("finding this executable")?,
        args: std::env::args_os().skip(1).collect(),
    };
    runtime.block_on(serve(config, parts, reread, invocation))
}

/// The running parts, in the order they are stopped.
struct Running {
    observed: Arc<Observed>,
    self_metrics: Option<tokio::task::JoinHandle<()>>,
    agent: Option<charcoal_node_agent::AgentHandle>,
    statsd: Option<charcoal_statsd::ServerHandle>,
    carbon_sink: Option<CarbonSinkHandle>,
    carbon: Option<CarbonReceiver>,
    web: Option<charcoal_web::WebServer>,
    store: Option<Store>,
}

async fn serve(
    mut config: Config,
    parts: Parts,
    reread: Reread,
    invocation: Invocation,
) -> Result<()> {
    let mut signals = Signals::install()?;
    let token = CancellationToken::new();
    let handoff_path = handoff_path(&config, &parts);
    let mut binder = Binder::default();
    if let Some(path) = &handoff_path {
        let request = path.clone();
        if let Some(inherited) =
            tokio::task::spawn_blocking(move || crate::handoff::request(&request)).await??
        {
            tracing::info!(
                sockets = ?inherited.leftovers(),
                "took over the listening sockets of the running process"
            );
            binder.inherited = inherited;
        }
    }
    let (running, mut binder) = start(&config, &parts, &token, binder).await?;
    // Serving: under systemd this process is the main one now (after an in-place upgrade the
    // manager must learn that before the predecessor exits), then the predecessor may stop.
    if binder.inherited.has_predecessor() {
        crate::notify::notify(&format!("MAINPID={}\nREADY=1", std::process::id()));
    } else {
        crate::notify::notify("READY=1");
    }
    binder.inherited.confirm();
    let leftovers = binder.inherited.leftovers();
    if !leftovers.is_empty() {
        tracing::info!(sockets = ?leftovers, "inherited sockets not used by this configuration");
    }
    let replaced = CancellationToken::new();
    let handoff = match &handoff_path {
        Some(path) => Some(crate::handoff::serve(
            path.clone(),
            Arc::new(std::sync::Mutex::new(binder.inventory)),
            replaced.clone(),
            token.child_token(),
        )?),
        None => None,
    };
    loop {
        tokio::select! {
            event = signals.next() => match event {
                Event::Stop => break,
                Event::Reload => {
                    reload(&running, &mut config, &reread);
                    // Like munin-node on SIGHUP: new or removed plugin scripts take effect.
                    if let Some(agent) = &running.agent {
                        agent.rescan_plugins();
                    }
                }
                Event::Upgrade if handoff.is_some() => start_successor(&invocation),
                Event::Upgrade => tracing::warn!(
                    "SIGUSR2 ignored: an in-place upgrade needs [ops] handoff_socket"
                ),
            },
            _ = replaced.cancelled() => break,
        }
    }
    tracing::info!("stopping: draining sockets, flushing StatsD and the store cache");
    crate::notify::notify("STOPPING=1");
    signals.force_exit_on_second();
    stop(running, &token).await;
    if let Some(task) = handoff {
        let _ = task.await;
    }
    Ok(())
}

/// SIGUSR2: starts the executable again (the same path and arguments, this environment and
/// output) as a child. It asks for our sockets over the handoff socket, serves them and
/// confirms; then this process stops. If it fails first, this process goes on serving.
fn start_successor(invocation: &Invocation) {
    let spawned = std::process::Command::new(&invocation.exe)
        .args(&invocation.args)
        .stdin(std::process::Stdio::null())
        .spawn();
    match spawned {
        Ok(mut child) => {
            tracing::info!(pid = child.id(), exe = %invocation.exe.display(), "started a successor");
            // Reaped here if it ends while this process still runs (it failed to take over).
            std::thread::spawn(move || {
                if let Ok(status) = child.wait() {
                    tracing::warn!(%status, "the successor exited; still serving");
                }
            });
        }
        Err(e) => tracing::error!(
            exe = %invocation.exe.display(),
            error = %e,
            "could not start a successor; still serving"
        ),
    }
}

/// Where this process offers its sockets to a successor: `[ops] handoff_socket`, by default
/// `.charcoal.sock` in the data directory (when there is a store); `off` disables it.
fn handoff_path(config: &Config, parts: &Parts) -> Option<PathBuf> {
    match config.ops.handoff_socket.as_str() {
        "off" => None,
        "" if parts.needs_store() => Some(config.store.data_dir.join(".charcoal.sock")),
        "" => None,
        path => Some(PathBuf::from(path)),
    }
}

/// The events store's file (`POST /events/`, Grafana's event annotations): `[web]
/// events_file`, by default `events.jsonl` in the data directory; `off` disables events.
fn events_file(config: &Config) -> Option<PathBuf> {
    match &config.web.events_file {
        None => Some(config.store.data_dir.join("events.jsonl")),
        Some(path) if path.as_os_str() == "off" => None,
        Some(path) => Some(path.clone()),
    }
}

async fn start(
    config: &Config,
    parts: &Parts,
    token: &CancellationToken,
    mut binder: Binder,
) -> Result<(Running, Binder)> {
    let store = if parts.needs_store() {
        let rules = config::storage_rules(&config.store)?;
        let store = Store::open(&config.store, rules)
            .with_context(|| format!("opening {}", config.store.data_dir.display()))?;
        tracing::info!(data_dir = %config.store.data_dir.display(), "store open");
        Some(store)
    } else {
        None
    };
    let mut running = Running {
        observed: Arc::new(Observed::new()),
        self_metrics: None,
        agent: None,
        statsd: None,
        carbon_sink: None,
        carbon: None,
        web: None,
        store: store.clone(),
    };
    // Stop whatever started if a later part fails to start.
    match start_parts(config, parts, token, store, &mut running, &mut binder).await {
        Ok(()) => Ok((running, binder)),
        Err(e) => {
            stop(running, token).await;
            Err(e)
        }
    }
}

async fn start_parts(
    config: &Config,
    parts: &Parts,
    token: &CancellationToken,
    store: Option<Store>,
    running: &mut Running,
    binder: &mut Binder,
) -> Result<()> {
    let mut observed = Observed::new();
    observed.store = store.clone();
    let mut carbon_tcp: Option<SocketAddr> = None;
    if parts.carbon
        && let Some(store) = &store
    {
        let (tcp, udp) = binder.carbon(&config.carbon.listen, config.carbon.udp)?;
        let addr = tcp.local_addr()?;
        carbon_tcp = Some(addr);
        let pickle = if config.carbon.pickle_listen.is_empty() {
            None
        } else {
            Some(binder.tcp("carbon.pickle", &config.carbon.pickle_listen)?)
        };
        tracing::info!(
            tcp = %addr,
            udp = ?udp.as_ref().and_then(|u| u.local_addr().ok()),
            pickle = ?pickle.as_ref().and_then(|p| p.local_addr().ok()),
            "carbon receiver listening"
        );
        let sockets = CarbonSockets {
            tcp: Some(tcp),
            udp,
            pickle,
        };
        let receiver =
            CarbonReceiver::start(store.clone(), sockets, &config.carbon, token.child_token());
        observed.carbon = Some(Arc::clone(receiver.stats()));
        running.carbon = Some(receiver);
    }
    if let Some((sink, listen)) = &parts.statsd {
        let (handle, carbon_sink) =
            start_statsd(config, sink, listen, store.as_ref(), token, binder)?;
        observed.statsd = Some(handle.stats());
        running.statsd = Some(handle);
        running.carbon_sink = carbon_sink;
    }
    if parts.agent {
        let mut agent = config.agent.clone();
        // Inside `serve`, the agent reports this host into our own Carbon receiver.
        if agent.statsd.is_none()
            && agent.carbon.is_none()
            && let Some(addr) = carbon_tcp
        {
            agent.carbon = Some(addr.to_string());
        }
        let munin = if agent.munin_listen.is_empty() {
            None
        } else {
            Some(binder.tcp("munin", &agent.munin_listen)?)
        };
        if let Some(l) = &munin {
            tracing::info!(addr = %l.local_addr()?, "munin-node protocol listening");
        }
        let handle = charcoal_node_agent::run(agent, munin, token.child_token()).await?;
        observed.agent = Some(handle.stats_reader());
        running.agent = Some(handle);
    }
    let observed = Arc::new(observed);
    running.observed = Arc::clone(&observed);
    // The web API comes last: once it answers, everything else is up.
    if parts.web
        && let Some(store) = &store
    {
        let listener = binder.tcp("web", &config.web.listen.to_string())?;
        // With `cluster_servers`, reads fan out to the other nodes as graphite-web's
        // CLUSTER_SERVERS do; without, this is the store itself.
        let source = charcoal_web::source_for(Arc::new(store.clone()), &config.web)
            .map_err(|e| config::ConfigError(format!("web.cluster_servers: {e}")))?;
        let web_config = charcoal_web::Config {
            events_file: events_file(config),
            ..config.web.clone()
        };
        let state = charcoal_web::AppState::new(source, web_config)
            .map_err(|e| config::ConfigError(format!("web.{e}")))?;
        let router = ops::with_ops_routes(charcoal_web::app(state), Arc::clone(&observed));
        running.web = Some(charcoal_web::serve_router(
            listener,
            router,
            config.web.shutdown_grace,
            token.child_token(),
        )?);
    }
    if let Some(store) = &store
        && !config.ops.self_metrics_interval.is_zero()
    {
        let prefix = if config.ops.self_metrics_prefix.is_empty() {
            format!("charcoal.{}", ops::host_node())
        } else {
            config.ops.self_metrics_prefix.clone()
        };
        running.self_metrics = Some(tokio::spawn(ops::store_self_metrics(
            Arc::clone(&observed),
            store.clone(),
            prefix,
            config.ops.self_metrics_interval,
            token.child_token(),
        )));
    }
    observed
        .ready
        .store(true, std::sync::atomic::Ordering::SeqCst);
    Ok(())
}

fn start_statsd(
    config: &Config,
    sink: &StatsdSink,
    listen: &StatsdListen,
    store: Option<&Store>,
    token: &CancellationToken,
    binder: &mut Binder,
) -> Result<(charcoal_statsd::ServerHandle, Option<CarbonSinkHandle>)> {
    let statsd = &config.statsd;
    let workers = if statsd.workers == 0 {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    } else {
        statsd.workers
    };
    let mut sockets = charcoal_statsd::Sockets::default();
    for address in &listen.udp {
        let bound = binder.statsd_udp(address, workers, statsd.udp_recv_buffer)?;
        if let Some(first) = bound.first() {
            tracing::info!(udp = %first.local_addr()?, workers, "statsd listening");
        }
        sockets.udp.extend(bound);
    }
    for address in &listen.tcp {
        let listener = binder.tcp(&format!("statsd.tcp {address}"), address)?;
        tracing::info!(tcp = %listener.local_addr()?, "statsd tcp listening");
        sockets
            .tcp
            .push(charcoal_statsd::LineListener::Tcp(listener));
    }
    if !statsd.admin_listen.is_empty() {
        let admin = binder.tcp("statsd.admin", &statsd.admin_listen)?;
        tracing::info!(admin = %admin.local_addr()?, "statsd admin listening");
        sockets.admin = Some(admin);
    }
    let mut sinks: Vec<Arc<dyn Sink>> = Vec::new();
    let mut carbon_handle = None;
    match sink {
        StatsdSink::Store => {
            if let Some(store) = store {
                sinks.push(Arc::new(StoreSink::new(store.clone())));
            }
        }
        StatsdSink::Carbon(target) => {
            let (sink, handle) = CarbonSink::spawn(CarbonSinkConfig::new(target.clone()));
            tracing::info!(carbon = %target, "statsd flushes to carbon");
            sinks.push(Arc::new(sink));
            carbon_handle = Some(handle);
        }
        StatsdSink::Discard => {
            tracing::warn!("statsd has no sink: aggregates are computed and dropped");
        }
    }
    let handle = charcoal_statsd::spawn(statsd.clone(), sockets, sinks, token.child_token())?;
    Ok((handle, carbon_handle))
}

/// The shutdown order: clients of our own listeners first (the agent), then StatsD (its final
/// flush goes into the store or Carbon), then the receivers drain, then the web API, and last
/// the store writes its cache.
async fn stop(running: Running, token: &CancellationToken) {
    let started = Instant::now();
    running
        .observed
        .ready
        .store(false, std::sync::atomic::Ordering::SeqCst);
    if let Some(agent) = running.agent {
        agent.shutdown().await;
    }
    if let Some(statsd) = running.statsd
        && let Err(e) = statsd.shutdown().await
    {
        tracing::error!(error = %e, "statsd shutdown");
    }
    if let Some(sink) = running.carbon_sink {
        sink.shutdown().await;
    }
    if let Some(carbon) = running.carbon {
        carbon.shutdown().await;
    }
    token.cancel();
    if let Some(task) = running.self_metrics {
        let _ = task.await;
    }
    if let Some(web) = running.web
        && let Err(e) = web.shutdown().await
    {
        tracing::error!(error = %e, "web shutdown");
    }
    if let Some(store) = running.store {
        let closing = store.clone();
        let _ = tokio::task::spawn_blocking(move || closing.close()).await;
    }
    tracing::info!(elapsed_ms = started.elapsed().as_millis() as u64, "stopped");
}

/// SIGHUP: builds the configuration again and applies what can change live: the storage
/// rules for new files, the log level, the store's flush interval and StatsD's flush settings
/// (from its next flush). A bad file is refused and the old configuration kept; what changed,
/// and what changed but needs a restart, is logged.
fn reload(running: &Running, current: &mut Config, reread: &Reread) {
    let loaded = reread().and_then(|c| {
        let rules = config::storage_rules(&c.store)?;
        Ok((c, rules))
    });
    let (new, rules) = match loaded {
        Ok(pair) => pair,
        Err(e) => {
            tracing::error!(
                error = %format!("{e:#}"),
                "reload refused; keeping the old configuration"
            );
            return;
        }
    };
    let mut changed = vec!["storage rules for new files".to_string()];
    let mut need_restart = Vec::new();
    if let Some(statsd) = &running.statsd {
        match statsd.reload(&new.statsd) {
            Ok(r) => {
                changed.extend(r.applied.iter().map(|k| format!("statsd.{k}")));
                need_restart.extend(r.need_restart.iter().map(|k| format!("statsd.{k}")));
                current.statsd = current.statsd.reload(&new.statsd).0;
            }
            Err(e) => {
                tracing::error!(error = %e, "reload refused; keeping the old configuration");
                return;
            }
        }
    }
    if let Some(store) = &running.store {
        store.set_rules(rules);
        if new.store.flush_interval != current.store.flush_interval {
            store.set_flush_interval(new.store.flush_interval);
            changed.push("store.flush_interval".into());
        }
    }
    if new.store.data_dir != current.store.data_dir {
        need_restart.push("store.data_dir".into());
    }
    if new.log.level != current.log.level && crate::logging::set_level(&new.log.level) {
        changed.push("log.level".into());
    }
    current.store.flush_interval = new.store.flush_interval;
    current.store.schemas = new.store.schemas;
    current.store.aggregation = new.store.aggregation;
    current.store.default_retention = new.store.default_retention;
    current.log.level = new.log.level;
    if !need_restart.is_empty() {
        tracing::warn!(keys = ?need_restart, "reload: these changed but take effect only at a restart");
    }
    tracing::info!(changed = ?changed, "configuration reloaded: storage rules for new files updated");
}

/// StatsD flushes written into the embedded store. A full cache slows the flush down (the
/// writers make room) rather than losing points.
struct StoreSink {
    store: Store,
    refused: AtomicU64,
}

impl StoreSink {
    fn new(store: Store) -> StoreSink {
        StoreSink {
            store,
            refused: AtomicU64::new(0),
        }
    }
}

impl Sink for StoreSink {
    fn name(&self) -> &'static str {
        "store"
    }

    fn deliver(&self, flush: &Arc<Flush>) -> Result<(), SinkError> {
        let mut first_error = None;
        for point in flush.points() {
            loop {
                match self.store.write(point.name, point.value, point.timestamp) {
                    Ok(()) => break,
                    Err(StoreError::CacheFull { .. }) => {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(e) => {
                        self.refused.fetch_add(1, Ordering::Relaxed);
                        first_error.get_or_insert(e);
                        break;
                    }
                }
            }
        }
        match first_error {
            None => Ok(()),
            Some(e) => Err(SinkError::Other {
                sink: "store",
                source: Box::new(e),
            }),
        }
    }
}
