//! Notable happenings that can repeat quickly (bad input, failing sources, refused peers):
//! each is a static [`LogLimit`] so its log line appears at most once a minute, with the
//! number of occurrences suppressed since the last one. Counters live in [`crate::Stats`].

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Minimum time between two log lines of one event.
const LOG_EVERY_MS: u64 = 60_000;

/// Rate limit for one kind of log event.
pub(crate) struct LogLimit {
    /// Milliseconds since process start of the last line logged, plus one (0 = never).
    last_ms: AtomicU64,
    /// Occurrences not logged since the last line.
    suppressed: AtomicU64,
}

impl LogLimit {
    pub(crate) const fn new() -> Self {
        LogLimit {
            last_ms: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// Calls `log(suppressed)` if this event was not logged within the last minute.
    pub(crate) fn log(&self, log: impl FnOnce(u64)) {
        let start = START.get_or_init(Instant::now);
        let now = u64::try_from(start.elapsed().as_millis())
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        let last = self.last_ms.load(Ordering::Relaxed);
        if last != 0 && now.saturating_sub(last) < LOG_EVERY_MS {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if self
            .last_ms
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            return;
        }
        log(self.suppressed.swap(0, Ordering::Relaxed));
    }
}

static START: OnceLock<Instant> = OnceLock::new();

pub(crate) static STATVFS_TIMEOUT: LogLimit = LogLimit::new();
pub(crate) static SOURCE_FAILED: LogLimit = LogLimit::new();
pub(crate) static MUNIN_REFUSED: LogLimit = LogLimit::new();
pub(crate) static MUNIN_LIST_MISMATCH: LogLimit = LogLimit::new();
pub(crate) static PLUGIN_LONE_DOT: LogLimit = LogLimit::new();
pub(crate) static PLUGIN_STDERR: LogLimit = LogLimit::new();
pub(crate) static PLUGIN_FAILED: LogLimit = LogLimit::new();
pub(crate) static PLUGIN_CONF: LogLimit = LogLimit::new();
pub(crate) static SEND_FAILED: LogLimit = LogLimit::new();
pub(crate) static SEND_DROPPED: LogLimit = LogLimit::new();

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_event_within_a_minute_is_suppressed_and_counted() {
        let l = LogLimit::new();
        let mut logged = Vec::new();
        l.log(|s| logged.push(s));
        l.log(|s| logged.push(s));
        l.log(|s| logged.push(s));
        assert_eq!(logged, vec![0]);
        assert_eq!(l.suppressed.load(Ordering::Relaxed), 2);
    }
}
