//! Etsy's optional TCP (and Unix socket) line server (spec §1): ASCII decoding, and each
//! read that completes at least one line is one packet.

use std::path::PathBuf;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, UnixListener};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::aggregate::{Aggregator, Encoding};

/// Longest partial line kept per connection; beyond it the buffer is dropped (and logged).
const MAX_PENDING: usize = 1024 * 1024;

/// After the stop, a connection is read until its sender closes it or is quiet this long...
const DRAIN_IDLE: Duration = Duration::from_millis(500);
/// ...and for at most this long in all.
const DRAIN_MAX: Duration = Duration::from_secs(5);

/// A bound stream listener for StatsD lines.
#[derive(Debug)]
pub enum LineListener {
    /// TCP.
    Tcp(TcpListener),
    /// A Unix stream socket; the path is removed when the server stops.
    Unix(UnixListener, PathBuf),
}

async fn serve_conn<S: tokio::io::AsyncRead + Unpin>(
    mut stream: S,
    agg: std::sync::Arc<Aggregator>,
    shard: usize,
    cancel: CancellationToken,
) {
    let mut ing = agg.ingester(shard);
    let mut buf: Vec<u8> = Vec::with_capacity(16 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    let mut drain_until = None;
    loop {
        let n = match drain_until {
            None => tokio::select! {
                r = stream.read(&mut chunk) => r,
                _ = cancel.cancelled() => {
                    drain_until = Some(tokio::time::Instant::now() + DRAIN_MAX);
                    continue;
                }
            },
            // Stopping: what the sender wrote before the stop is still read.
            Some(deadline) => {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                match tokio::time::timeout(DRAIN_IDLE.min(left), stream.read(&mut chunk)).await {
                    Ok(r) => r,
                    Err(_) => break,
                }
            }
        };
        let n = match n {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                tracing::debug!(error = %e, "statsd: tcp read failed");
                break;
            }
        };
        buf.extend_from_slice(&chunk[..n]);
        if let Some(last) = buf.iter().rposition(|&b| b == b'\n') {
            ing.ingest_one(&buf[..=last], Encoding::Ascii);
            buf.drain(..=last);
        } else if buf.len() > MAX_PENDING {
            tracing::warn!(bytes = buf.len(), "statsd: tcp line too long, dropped");
            buf.clear();
        }
    }
    // A trailing line without a newline is never processed (as in the reference).
}

pub(crate) async fn run(
    listener: LineListener,
    agg: std::sync::Arc<Aggregator>,
    shard: usize,
    cancel: CancellationToken,
    tracker: TaskTracker,
) {
    loop {
        match &listener {
            LineListener::Tcp(l) => {
                let accepted = tokio::select! {
                    r = l.accept() => r,
                    _ = cancel.cancelled() => break,
                };
                match accepted {
                    Ok((s, _)) => {
                        tracker.spawn(serve_conn(s, agg.clone(), shard, cancel.clone()));
                    }
                    Err(e) => tracing::warn!(error = %e, "statsd: tcp accept failed"),
                }
            }
            LineListener::Unix(l, _) => {
                let accepted = tokio::select! {
                    r = l.accept() => r,
                    _ = cancel.cancelled() => break,
                };
                match accepted {
                    Ok((s, _)) => {
                        tracker.spawn(serve_conn(s, agg.clone(), shard, cancel.clone()));
                    }
                    Err(e) => tracing::warn!(error = %e, "statsd: unix accept failed"),
                }
            }
        }
    }
    // Connections the kernel completed before the stop may hold lines already sent: they
    // are drained like the open ones. Asked of the kernel directly (a non-blocking accept),
    // not of the reactor, which may not have seen the newest connections yet.
    // Bounded: with another process serving the same socket (an upgrade) the queue may never
    // stay empty for long.
    let until = std::time::Instant::now() + DRAIN_MAX;
    match &listener {
        LineListener::Tcp(l) => {
            let fd = std::os::fd::AsFd::as_fd(l).try_clone_to_owned();
            if let Ok(std) = fd.map(std::net::TcpListener::from) {
                while std::time::Instant::now() < until {
                    let Ok((s, _)) = std.accept() else {
                        break;
                    };
                    if let Ok(s) = s
                        .set_nonblocking(true)
                        .and_then(|()| tokio::net::TcpStream::from_std(s))
                    {
                        tracker.spawn(serve_conn(s, agg.clone(), shard, cancel.clone()));
                    }
                }
            }
        }
        LineListener::Unix(l, _) => {
            let fd = std::os::fd::AsFd::as_fd(l).try_clone_to_owned();
            if let Ok(std) = fd.map(std::os::unix::net::UnixListener::from) {
                while std::time::Instant::now() < until {
                    let Ok((s, _)) = std.accept() else {
                        break;
                    };
                    if let Ok(s) = s
                        .set_nonblocking(true)
                        .and_then(|()| tokio::net::UnixStream::from_std(s))
                    {
                        tracker.spawn(serve_conn(s, agg.clone(), shard, cancel.clone()));
                    }
                }
            }
        }
    }
    if let LineListener::Unix(_, path) = &listener {
        let _ = std::fs::remove_file(path);
    }
}
