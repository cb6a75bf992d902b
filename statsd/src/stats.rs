//! Self-metrics of the StatsD server (atomics the binary can export) and a rate limiter
//! for per-line log events.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Lifetime counters of one StatsD server. Cheap to read at any time.
#[derive(Debug, Default)]
pub struct Stats {
    /// Datagrams (UDP) and line-completing reads (TCP) received.
    pub packets: AtomicU64,
    /// Non-empty lines received (bad ones included).
    pub lines: AtomicU64,
    /// Invalid value segments (Etsy's `bad_lines_seen`).
    pub bad_lines: AtomicU64,
    /// Samples or keys refused because `max_names` distinct keys were already held.
    pub names_dropped: AtomicU64,
    /// DogStatsD events (`_e{...}`) accepted in DogStatsD mode.
    pub events: AtomicU64,
    /// DogStatsD service checks (`_sc|...`) accepted in DogStatsD mode.
    pub service_checks: AtomicU64,
    /// Flushes computed.
    pub flushes: AtomicU64,
    /// Points handed to sinks.
    pub points_flushed: AtomicU64,
    /// Sink deliveries that returned an error.
    pub sink_errors: AtomicU64,
    /// Unix seconds of the last packet (Etsy's `messages.last_msg_seen`).
    pub last_msg_seen: AtomicI64,
    /// Receive-side errors from the OS (other than timeouts).
    pub receive_errors: AtomicU64,
}

impl Stats {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        if n > 0 {
            counter.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Reads one counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// Allows a burst of log events per window and counts the rest, so a flood of bad input
/// cannot flood the log (spec §16: the reference logs every bad line).
#[derive(Debug)]
pub(crate) struct LogLimiter {
    window_start: Instant,
    in_window: u32,
    suppressed: u64,
}

const LOG_WINDOW: Duration = Duration::from_secs(10);
const LOG_BURST: u32 = 10;

impl LogLimiter {
    pub(crate) fn new() -> Self {
        LogLimiter {
            window_start: Instant::now(),
            in_window: 0,
            suppressed: 0,
        }
    }

    /// Returns `Some(suppressed_before)` when an event may be logged now.
    pub(crate) fn allow(&mut self) -> Option<u64> {
        let now = Instant::now();
        if now.duration_since(self.window_start) >= LOG_WINDOW {
            self.window_start = now;
            self.in_window = 0;
        }
        if self.in_window < LOG_BURST {
            self.in_window += 1;
            let s = self.suppressed;
            self.suppressed = 0;
            Some(s)
        } else {
            self.suppressed += 1;
            None
        }
    }
}
