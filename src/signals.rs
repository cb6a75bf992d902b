//! Process signals as named events: SIGTERM and SIGINT stop gracefully (a second one exits at
//! once), SIGHUP asks for a reload, SIGUSR2 for an in-place upgrade.

use anyhow::Result;
use tokio::signal::unix::{SignalKind, signal};

/// What a signal asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// SIGTERM or SIGINT: stop accepting, drain, flush, exit 0.
    Stop,
    /// SIGHUP: reload what can change live.
    Reload,
    /// SIGUSR2: start the executable again beside this process; it takes over the sockets.
    Upgrade,
}

/// Signal streams, installed once at start.
pub struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
    usr2: tokio::signal::unix::Signal,
}

impl Signals {
    pub fn install() -> Result<Signals> {
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
            usr2: signal(SignalKind::user_defined2())?,
        })
    }

    /// The next event.
    pub async fn next(&mut self) -> Event {
        tokio::select! {
            _ = self.term.recv() => Event::Stop,
            _ = self.int.recv() => Event::Stop,
            _ = self.hup.recv() => Event::Reload,
            _ = self.usr2.recv() => Event::Upgrade,
        }
    }

    /// After a stop began: a second SIGTERM/SIGINT exits the process immediately.
    pub fn force_exit_on_second(mut self) {
        tokio::spawn(async move {
            tokio::select! {
                _ = self.term.recv() => {}
                _ = self.int.recv() => {}
            }
            tracing::warn!("second stop signal: exiting without draining");
            std::process::exit(1);
        });
    }
}
