//! Carbon's self-instrumentation: every interval, per-interval counts stored under
//! `carbon.agents.<host>-a.*` (spec `whisper-carbon.md` 12.7) directly into the store.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::ReceiverStats;
use crate::db::{Store, StoreStats};

/// The host name, as Carbon uses it in its metric names.
pub(super) fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// CPU seconds used by this process so far.
fn cpu_seconds() -> f64 {
    use nix::sys::time::TimeValLike;
    nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF).map_or(0.0, |u| {
        (u.user_time().num_microseconds() + u.system_time().num_microseconds()) as f64 / 1e6
    })
}

/// Resident set size in bytes (from /proc/self/statm; 0 where unavailable).
fn rss_bytes() -> f64 {
    let pages = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<f64>().ok())
        .unwrap_or(0.0);
    let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .unwrap_or(4096);
    pages * page as f64
}

struct Previous {
    store: StoreStats,
    received: u64,
    bad_lines: u64,
    overflow: u64,
    cpu: f64,
    at: Instant,
}

pub(super) async fn run(
    store: Store,
    stats: Arc<ReceiverStats>,
    prefix: String,
    interval: Duration,
    token: CancellationToken,
) {
    let mut previous = Previous {
        store: store.stats(),
        received: 0,
        bad_lines: 0,
        overflow: 0,
        cpu: cpu_seconds(),
        at: Instant::now(),
    };
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    loop {
        tokio::select! {
            _ = token.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        for (name, value) in sample(&store, &stats, &mut previous) {
            // Our own metrics go straight into the cache, as Carbon's do; a full cache just
            // skips them.
            let _ = store.write(&format!("{prefix}.{name}"), value, now);
        }
    }
}

fn sample(
    store: &Store,
    stats: &ReceiverStats,
    previous: &mut Previous,
) -> Vec<(&'static str, f64)> {
    let current = store.stats();
    let received = stats.metrics_received.load(Ordering::Relaxed);
    let bad_lines = stats.bad_lines.load(Ordering::Relaxed);
    let overflow = current.cache_full;
    let cpu = cpu_seconds();
    let at = Instant::now();
    let p = &previous.store;
    let committed = current.committed_points - p.committed_points;
    let updates = current.update_operations - p.update_operations;
    let nanos = current.update_nanos - p.update_nanos;
    let elapsed = at.duration_since(previous.at).as_secs_f64().max(1e-9);
    let mut out = vec![
        ("metricsReceived", (received - previous.received) as f64),
        ("committedPoints", committed as f64),
        ("updateOperations", updates as f64),
        ("creates", (current.creates - p.creates) as f64),
        ("droppedCreates", 0.0),
        ("errors", (current.errors - p.errors) as f64),
        ("cache.size", current.cache_size as f64),
        ("cache.queues", current.cache_queues as f64),
        ("cache.overflow", (overflow - previous.overflow) as f64),
        (
            "activeConnections",
            stats.active_connections.load(Ordering::Relaxed) as f64,
        ),
        ("badLines", (bad_lines - previous.bad_lines) as f64),
        ("cpuUsage", 100.0 * (cpu - previous.cpu) / elapsed),
        ("memUsage", rss_bytes()),
    ];
    if updates > 0 {
        out.push(("pointsPerUpdate", committed as f64 / updates as f64));
        out.push(("avgUpdateTime", nanos as f64 / 1e9 / updates as f64));
    }
    *previous = Previous {
        store: current,
        received,
        bad_lines,
        overflow,
        cpu,
        at,
    };
    out
}
