//! Wiring: receive workers, TCP and admin servers, the flush schedule, delivery to sinks,
//! and an orderly shutdown (drain sockets, then one final flush — spec §8.1: the reference
//! loses the interval in progress).

use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::admin::Admin;
use crate::aggregate::{Aggregator, Compiled};
use crate::config::{Config, HealthStatus};
use crate::error::{ConfigError, ServerError};
use crate::flush::Flush;
use crate::sink::Sink;
use crate::stats::Stats;
use crate::tcp::LineListener;

/// The bound sockets a server serves (the caller binds them; see [`crate::bind_udp`]).
#[derive(Debug, Default)]
pub struct Sockets {
    /// UDP sockets, one receive worker thread each (a SO_REUSEPORT group from `bind_udp`,
    /// possibly for several addresses, e.g. IPv4 and IPv6).
    pub udp: Vec<UdpSocket>,
    /// TCP or Unix line listeners (Etsy's `./servers/tcp`).
    pub tcp: Vec<LineListener>,
    /// The admin interface listener.
    pub admin: Option<tokio::net::TcpListener>,
}

/// Unix milliseconds from the system clock.
pub fn system_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A running StatsD server.
#[derive(Debug)]
pub struct ServerHandle {
    agg: Arc<Aggregator>,
    cancel: CancellationToken,
    flush_tx: mpsc::Sender<oneshot::Sender<Arc<Flush>>>,
    /// The newest reloaded settings, picked up by the flusher at its next scheduled flush.
    reconfig_tx: watch::Sender<Option<Arc<Compiled>>>,
    /// The configuration last asked for (in force, or waiting for the next flush).
    requested: std::sync::Mutex<Config>,
    done: JoinHandle<Result<(), ServerError>>,
}

/// What a [`ServerHandle::reload`] changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Reloaded {
    /// Keys that take effect from the next scheduled flush on.
    pub applied: Vec<&'static str>,
    /// Keys that changed in the file but keep their old value until a restart.
    pub need_restart: Vec<&'static str>,
}

type FlushRequest = oneshot::Sender<Arc<Flush>>;

/// Starts a StatsD server on the current Tokio runtime: a receive thread per UDP socket,
/// a task per TCP/admin listener, and a flush every `config.flush_interval` (aligned like
/// Etsy's to the start second) delivered to every sink. Cancelling `cancel` (or calling
/// [`ServerHandle::shutdown`]) stops receiving, drains the socket buffers and flushes once
/// more before the handle completes.
pub fn spawn(
    config: Config,
    sockets: Sockets,
    sinks: Vec<Arc<dyn Sink>>,
    cancel: CancellationToken,
) -> Result<ServerHandle, ServerError> {
    start(config, sockets, sinks, cancel, true)
}

/// Like [`spawn`], but flushes only when asked ([`ServerHandle::flush_now`]) and at
/// shutdown, never on the clock: for tests and embedders that drive the schedule
/// themselves. `flush_interval` still gives the rates.
pub fn spawn_unscheduled(
    config: Config,
    sockets: Sockets,
    sinks: Vec<Arc<dyn Sink>>,
    cancel: CancellationToken,
) -> Result<ServerHandle, ServerError> {
    start(config, sockets, sinks, cancel, false)
}

fn start(
    config: Config,
    sockets: Sockets,
    sinks: Vec<Arc<dyn Sink>>,
    cancel: CancellationToken,
    scheduled: bool,
) -> Result<ServerHandle, ServerError> {
    let start_ms = system_now_ms();
    let healthy = config.health_status == HealthStatus::Up;
    let interval = config.flush_interval;
    let udp_count = sockets.udp.len();
    let requested = std::sync::Mutex::new(config.clone());
    let agg = Arc::new(Aggregator::new(config, udp_count + 1, start_ms)?);
    let tracker = TaskTracker::new();

    let mut threads = Vec::with_capacity(udp_count);
    for (i, sock) in sockets.udp.into_iter().enumerate() {
        let ing = agg.ingester(i);
        let token = cancel.clone();
        let a = Arc::clone(&agg);
        let t = std::thread::Builder::new()
            .name(format!("statsd-udp-{i}"))
            .spawn(move || crate::udp::run_worker(sock, ing, token, a.stats()))
            .map_err(|source| ServerError::Io {
                context: "starting a UDP worker thread",
                source,
            })?;
        threads.push(t);
    }
    for l in sockets.tcp {
        tracker.spawn(crate::tcp::run(
            l,
            Arc::clone(&agg),
            udp_count,
            cancel.clone(),
            tracker.clone(),
        ));
    }
    if let Some(l) = sockets.admin {
        let admin = Arc::new(Admin {
            agg: Arc::clone(&agg),
            healthy: AtomicBool::new(healthy),
        });
        tracker.spawn(crate::admin::run(l, admin, cancel.clone(), tracker.clone()));
    }

    let (flush_tx, flush_rx) = mpsc::channel::<FlushRequest>(8);
    let (final_tx, final_rx) = oneshot::channel::<()>();
    let (reconfig_tx, reconfig_rx) = watch::channel(None);
    let flusher = tokio::spawn(flush_loop(
        Arc::clone(&agg),
        sinks,
        interval,
        scheduled.then_some(start_ms),
        flush_rx,
        reconfig_rx,
        final_rx,
    ));
    let token = cancel.clone();
    let done = tokio::spawn(async move {
        token.cancelled().await;
        // 1. Stop receiving; UDP workers drain their socket buffers before returning.
        let mut result = Ok(());
        for t in threads {
            let joined = tokio::task::spawn_blocking(move || t.join()).await;
            if !matches!(joined, Ok(Ok(()))) {
                result = Err(ServerError::Panicked { what: "UDP worker" });
            }
        }
        tracker.close();
        tracker.wait().await;
        // 2. Final flush of the interval in progress.
        let _ = final_tx.send(());
        if flusher.await.is_err() {
            result = Err(ServerError::Panicked { what: "flusher" });
        }
        result
    });
    Ok(ServerHandle {
        agg,
        cancel,
        flush_tx,
        reconfig_tx,
        requested,
        done,
    })
}

/// The next flush time: Etsy's getFlushTimeout, `anchor + k * interval`, with `k` counted
/// from the flushes that should have happened by `now_ms`.
fn next_deadline(anchor_ms: i64, interval_ms: i64, now_ms: i64) -> i64 {
    let attempt = ((now_ms - anchor_ms) as f64 / interval_ms as f64).round() as i64 + 1;
    anchor_ms + attempt * interval_ms
}

fn interval_ms(c: &Compiled) -> i64 {
    (c.flush_interval().as_millis() as i64).max(1)
}

async fn flush_loop(
    agg: Arc<Aggregator>,
    sinks: Vec<Arc<dyn Sink>>,
    interval: Duration,
    // When the server started (Unix ms); `None` when it flushes only on request.
    start_ms: Option<i64>,
    mut requests: mpsc::Receiver<FlushRequest>,
    mut reconfig: watch::Receiver<Option<Arc<Compiled>>>,
    mut final_rx: oneshot::Receiver<()>,
) {
    let mut interval_ms = (interval.as_millis() as i64).max(1);
    let sinks: Arc<[Arc<dyn Sink>]> = sinks.into();
    // Etsy counts flush times from the start second.
    let scheduled = start_ms.is_some();
    let mut anchor_ms = crate::aggregate::round_secs(start_ms.unwrap_or_else(system_now_ms)) * 1000;
    let mut deadline = next_deadline(anchor_ms, interval_ms, system_now_ms());
    let mut pending: Option<Arc<Compiled>> = None;
    let mut reconfig_open = true;
    loop {
        let wait = Duration::from_millis((deadline - system_now_ms()).max(0) as u64);
        let reply = tokio::select! {
            _ = tokio::time::sleep(wait), if scheduled => None,
            Some(r) = requests.recv() => Some(r),
            changed = reconfig.changed(), if reconfig_open => {
                match changed {
                    Ok(()) => pending = reconfig.borrow_and_update().clone(),
                    Err(_) => reconfig_open = false,
                }
                continue;
            }
            _ = &mut final_rx => {
                // The final flush closes the interval in progress, so it carries that
                // interval's scheduled time: stamped "now", it would fall in the same storage
                // slot as the previous flush and overwrite it.
                let at = if scheduled { deadline } else { system_now_ms() };
                run_flush(&agg, &sinks, at).await;
                break;
            }
        };
        let flush = run_flush(&agg, &sinks, system_now_ms()).await;
        // An interval ends at a scheduled flush (or at any flush when nothing is scheduled).
        let interval_ended = reply.is_none() || !scheduled;
        if let Some(r) = reply {
            let _ = r.send(flush);
        }
        if interval_ended {
            // New settings start with a fresh interval: the one that just closed was
            // computed (rates, percentiles, names) with the settings it began under.
            if let Some(c) = pending.take() {
                interval_ms = self::interval_ms(&c);
                anchor_ms = deadline;
                agg.reconfigure(c);
            }
            deadline = next_deadline(anchor_ms, interval_ms, system_now_ms());
        }
    }
}

async fn run_flush(agg: &Arc<Aggregator>, sinks: &Arc<[Arc<dyn Sink>]>, at_ms: i64) -> Arc<Flush> {
    let (agg2, sinks2) = (Arc::clone(agg), Arc::clone(sinks));
    let res = tokio::task::spawn_blocking(move || {
        let flush = Arc::new(agg2.flush(at_ms));
        let started = Instant::now();
        let mut failed = false;
        for sink in sinks2.iter() {
            if let Err(e) = sink.deliver(&flush) {
                failed = true;
                Stats::add(&agg2.stats().sink_errors, 1);
                tracing::warn!(sink = sink.name(), error = %e, "statsd: flush not delivered");
            }
        }
        let took = started.elapsed().as_millis() as f64;
        agg2.record_delivery(system_now_ms(), took, flush.text().len(), failed);
        flush
    })
    .await;
    res.unwrap_or_else(|e| {
        tracing::error!(error = %e, "statsd: flush task failed");
        Arc::new(Flush::default())
    })
}

impl ServerHandle {
    /// The aggregator (tests, benches, self-metrics).
    pub fn aggregator(&self) -> &Arc<Aggregator> {
        &self.agg
    }

    /// Lifetime counters for self-metrics.
    pub fn stats(&self) -> Arc<Stats> {
        Arc::clone(self.agg.stats())
    }

    /// Applies a reloaded configuration: its flush settings (interval, percentiles, names,
    /// `delete_*`, histograms, ...) from the next scheduled flush on, so the interval in
    /// progress is still computed as it began; sockets, sink and ingest options keep their
    /// values until a restart. A value the server cannot use is refused, changing nothing.
    pub fn reload(&self, new: &Config) -> Result<Reloaded, ConfigError> {
        let mut requested = self.requested.lock().unwrap_or_else(|e| e.into_inner());
        let (next, applied, need_restart) = requested.reload(new);
        if !applied.is_empty() {
            let compiled = Arc::new(Compiled::new(next.clone())?);
            self.reconfig_tx.send_replace(Some(compiled));
            *requested = next;
        }
        Ok(Reloaded {
            applied,
            need_restart,
        })
    }

    /// Flushes now (as if the interval ended) and returns what was delivered; `None` once
    /// the server is stopping.
    pub async fn flush_now(&self) -> Option<Arc<Flush>> {
        let (tx, rx) = oneshot::channel();
        self.flush_tx.send(tx).await.ok()?;
        rx.await.ok()
    }

    /// Stops the server: no more receiving, socket buffers drained, one final flush
    /// delivered to the sinks. Returns when all of it is done.
    pub async fn shutdown(self) -> Result<(), ServerError> {
        self.cancel.cancel();
        self.wait().await
    }

    /// Waits until the server has stopped (after its cancellation token fired).
    pub async fn wait(self) -> Result<(), ServerError> {
        match self.done.await {
            Ok(r) => r,
            Err(_) => Err(ServerError::Panicked { what: "supervisor" }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flush_deadlines_are_aligned_to_the_start_second() {
        // Start 1000.4 s → anchor 1000 s; interval 10 s.
        let anchor = crate::aggregate::round_secs(1_000_400) * 1000;
        assert_eq!(next_deadline(anchor, 10_000, 1_000_400), 1_010_000);
        assert_eq!(next_deadline(anchor, 10_000, 1_010_003), 1_020_000);
        assert_eq!(next_deadline(anchor, 10_000, 1_014_000), 1_020_000);
    }
}
