//! The agent's self-metrics: atomic counters bumped where things happen, read by the binary
//! (which publishes them under `charcoal.<host>.agent.*` and `/metrics`).

use std::sync::atomic::{AtomicU64, Ordering};

/// Live counters of one agent.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub(crate) rounds: AtomicU64,
    pub(crate) source_errors: AtomicU64,
    pub(crate) lines_sent: AtomicU64,
    pub(crate) lines_dropped: AtomicU64,
    pub(crate) send_errors: AtomicU64,
    pub(crate) plugin_runs: AtomicU64,
    pub(crate) plugin_timeouts: AtomicU64,
    pub(crate) plugin_failures: AtomicU64,
    pub(crate) plugin_lines_dropped: AtomicU64,
    pub(crate) munin_sessions: AtomicU64,
    pub(crate) munin_refused: AtomicU64,
}

pub(crate) fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// A copy of the agent's counters (all since start).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StatsSnapshot {
    /// Collection rounds completed.
    pub rounds: u64,
    /// /proc or /sys reads that failed.
    pub source_errors: u64,
    /// Metric lines written to the StatsD/Carbon socket.
    pub lines_sent: u64,
    /// Metric lines dropped (Carbon unreachable for longer than the buffer holds).
    pub lines_dropped: u64,
    /// Failed sends or connects.
    pub send_errors: u64,
    /// Script plugin runs.
    pub plugin_runs: u64,
    /// Script plugin runs killed by the timeout.
    pub plugin_timeouts: u64,
    /// Script plugin runs that exited non-zero, died from a signal or could not start.
    pub plugin_failures: u64,
    /// Lone `.` lines removed from plugin output.
    pub plugin_lines_dropped: u64,
    /// munin protocol sessions served.
    pub munin_sessions: u64,
    /// munin connections refused by the allow-list.
    pub munin_refused: u64,
}

impl Stats {
    pub(crate) fn snapshot(&self) -> StatsSnapshot {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        StatsSnapshot {
            rounds: g(&self.rounds),
            source_errors: g(&self.source_errors),
            lines_sent: g(&self.lines_sent),
            lines_dropped: g(&self.lines_dropped),
            send_errors: g(&self.send_errors),
            plugin_runs: g(&self.plugin_runs),
            plugin_timeouts: g(&self.plugin_timeouts),
            plugin_failures: g(&self.plugin_failures),
            plugin_lines_dropped: g(&self.plugin_lines_dropped),
            munin_sessions: g(&self.munin_sessions),
            munin_refused: g(&self.munin_refused),
        }
    }
}
