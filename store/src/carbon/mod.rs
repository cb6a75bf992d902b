//! The Carbon receiver: the plaintext protocol on TCP and UDP (port 2003 by default) and,
//! when enabled, the pickle protocol carbon-relay sends (port 2004 in Carbon). The only part
//! of the store that opens sockets. Points go into the store's write cache; bad lines and
//! payloads are counted, logged at most once a second, and skipped, keeping the good points
//! around them.

mod line;
mod pickle;
mod self_metrics;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use line::{CarbonLine, LineError, parse_line, python_float};

use crate::config::duration_text;
use crate::db::{BatchBuffers, Pending, Store};

/// `[carbon]`: the plaintext receiver.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CarbonConfig {
    /// Address for TCP and UDP (`HOST:PORT`; port 0 picks a free port).
    pub listen: String,
    /// Also receive datagrams on the same address.
    pub udp: bool,
    /// Most TCP connections served at once on each listener (plaintext, pickle); further ones
    /// wait to be accepted.
    pub max_connections: usize,
    /// Longest line accepted; longer lines are counted as bad and skipped.
    pub max_line_length: usize,
    /// How often Carbon's own metrics (`carbon.agents.<host>-a.*`) are stored; 0s disables.
    #[serde(with = "duration_text")]
    pub metric_interval: Duration,
    /// Prefix of those metrics; empty means `carbon.agents.<hostname>-a`.
    pub metric_prefix: String,
    /// TCP address of the pickle receiver (what carbon-relay and Etsy StatsD's
    /// `graphiteProtocol: "pickle"` send; Carbon's port 2004); empty leaves it off.
    pub pickle_listen: String,
    /// Largest pickle payload accepted; a longer one closes the connection (Carbon's
    /// PICKLE_RECEIVER_MAX_LENGTH).
    pub pickle_max_length: usize,
}

impl Default for CarbonConfig {
    fn default() -> Self {
        CarbonConfig {
            listen: "127.0.0.1:2003".to_owned(),
            udp: true,
            max_connections: 10_000,
            max_line_length: 16_384,
            metric_interval: Duration::from_secs(60),
            metric_prefix: String::new(),
            pickle_listen: String::new(),
            pickle_max_length: 1 << 20,
        }
    }
}

/// Counters of the receiver, cumulative.
#[derive(Debug, Default)]
pub struct ReceiverStats {
    /// Datapoints accepted into the store.
    pub metrics_received: AtomicU64,
    /// Lines that were not datapoints (wrong field count, bad number, bad UTF-8, too long).
    pub bad_lines: AtomicU64,
    /// Datapoints with a name the store refused.
    pub invalid_names: AtomicU64,
    /// NaN values, dropped as Carbon drops them.
    pub nan_values: AtomicU64,
    /// UDP datapoints dropped because the cache was full.
    pub udp_dropped: AtomicU64,
    /// TCP connections open now.
    pub active_connections: AtomicU64,
    /// TCP connections accepted in total (both protocols).
    pub connections: AtomicU64,
    /// Pickle payloads refused whole: not a list of datapoints, a forbidden opcode, over
    /// the length limit, or cut off.
    pub pickles_refused: AtomicU64,
}

/// Logs at most one line a second per kind of problem, with the number suppressed meanwhile.
struct RateLimitedLog {
    message: &'static str,
    last: std::sync::Mutex<Option<std::time::Instant>>,
    suppressed: AtomicU64,
}

impl RateLimitedLog {
    fn new(message: &'static str) -> Self {
        RateLimitedLog {
            message,
            last: std::sync::Mutex::new(None),
            suppressed: AtomicU64::new(0),
        }
    }

    fn warn(&self, peer: &SocketAddr, problem: &dyn std::fmt::Display, line: &[u8]) {
        let now = std::time::Instant::now();
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_some_and(|t| now.duration_since(t) < Duration::from_secs(1)) {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            return;
        }
        *last = Some(now);
        let shown = String::from_utf8_lossy(&line[..line.len().min(400)]);
        tracing::warn!(
            %peer,
            problem = %problem,
            line = %shown,
            suppressed = self.suppressed.swap(0, Ordering::Relaxed),
            "{}",
            self.message
        );
    }
}

/// During shutdown, a connection that sends nothing for this long is closed...
const DRAIN_IDLE: Duration = Duration::from_millis(500);
/// ...and one that never stops sending is closed after this long.
const DRAIN_MAX: Duration = Duration::from_secs(5);

struct Receiver {
    store: Store,
    stats: Arc<ReceiverStats>,
    log: RateLimitedLog,
    pickle_log: RateLimitedLog,
    max_line: usize,
    max_pickle: usize,
    clock: crate::db::Clock,
}

impl Receiver {
    /// Parses one line of `buf` into `pending`, or counts (and logs) why it is not a point.
    fn collect(&self, buf: &[u8], line: &[u8], peer: &SocketAddr, pending: &mut Vec<Pending>) {
        if line.len() > self.max_line {
            self.bad(peer, &LineError::TooLong(self.max_line), line);
            return;
        }
        match parse_line(line) {
            Ok(point) => {
                let timestamp = point.timestamp.unwrap_or_else(|| (self.clock)());
                pending.push(Pending::new(buf, point.path, timestamp, point.value));
            }
            Err(LineError::NaN) => {
                self.stats.nan_values.fetch_add(1, Ordering::Relaxed);
            }
            // Blank lines are not worth a warning (Carbon ignores them too).
            Err(LineError::Fields(0)) => {}
            Err(e) => self.bad(peer, &e, line),
        }
    }

    /// Stores the points collected from `buf`. With `wait` (TCP), points the full cache
    /// refuses are held, and with them the connection, until there is room: back-pressure.
    /// Without (UDP), they are dropped and counted.
    async fn store(
        &self,
        buf: &[u8],
        pending: &mut Vec<Pending>,
        buffers: &mut BatchBuffers,
        peer: &SocketAddr,
        wait: bool,
        token: &CancellationToken,
    ) {
        loop {
            let stored = self.store.write_batch(buf, pending, buffers, |name, e| {
                self.stats.invalid_names.fetch_add(1, Ordering::Relaxed);
                self.log.warn(peer, &e, name.as_bytes());
            });
            self.stats
                .metrics_received
                .fetch_add(stored as u64, Ordering::Relaxed);
            if buffers.full.is_empty() {
                break;
            }
            if !wait {
                self.stats
                    .udp_dropped
                    .fetch_add(buffers.full.len() as u64, Ordering::Relaxed);
                break;
            }
            pending.clear();
            pending.extend_from_slice(&buffers.full);
            // Shutting down with a full cache: give the writers longer between tries.
            let pause = if token.is_cancelled() { 50 } else { 5 };
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
        pending.clear();
    }

    fn bad(&self, peer: &SocketAddr, problem: &dyn std::fmt::Display, line: &[u8]) {
        self.stats.bad_lines.fetch_add(1, Ordering::Relaxed);
        self.log.warn(peer, problem, line);
    }

    fn refuse_pickle(&self, peer: &SocketAddr, problem: &dyn std::fmt::Display) {
        self.stats.pickles_refused.fetch_add(1, Ordering::Relaxed);
        self.pickle_log.warn(peer, problem, b"");
    }

    /// The datapoints of a decoded pickle into `pending`, with Carbon's rules (NaN dropped,
    /// -1 = now); the elements of another shape are counted as bad lines.
    fn collect_pickled(
        &self,
        decoder: &pickle::Decoder,
        peer: &SocketAddr,
        pending: &mut Vec<Pending>,
    ) {
        let names = decoder.names.as_str();
        for point in &decoder.points {
            let name = &names[point.name.clone()];
            match line::datapoint_time(point.value, point.timestamp) {
                Ok(time) => {
                    let timestamp = time.unwrap_or_else(|| (self.clock)());
                    pending.push(Pending::new(names.as_bytes(), name, timestamp, point.value));
                }
                Err(LineError::NaN) => {
                    self.stats.nan_values.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => self.bad(peer, &e, name.as_bytes()),
            }
        }
        if decoder.skipped > 0 {
            self.stats
                .bad_lines
                .fetch_add(decoder.skipped as u64 - 1, Ordering::Relaxed);
            self.bad(
                peer,
                &"a pickled element is not (path, (timestamp, value))",
                b"",
            );
        }
    }
}

/// A running receiver. [`shutdown`](CarbonReceiver::shutdown) stops accepting, reads what is
/// already in the socket buffers into the store, and waits for every task.
pub struct CarbonReceiver {
    stats: Arc<ReceiverStats>,
    token: CancellationToken,
    tracker: TaskTracker,
}

impl CarbonReceiver {
    /// Serves the given sockets (either may be absent) into `store` until `shutdown` fires or
    /// [`shutdown`](CarbonReceiver::shutdown) is called. Must run inside a Tokio runtime.
    pub fn start(
        store: Store,
        sockets: CarbonSockets,
        config: &CarbonConfig,
        shutdown: CancellationToken,
    ) -> CarbonReceiver {
        Self::start_with_clock(store, sockets, config, shutdown, crate::db::system_clock())
    }

    /// [`start`](CarbonReceiver::start) with a clock for "now" (timestamp `-1`).
    pub fn start_with_clock(
        store: Store,
        sockets: CarbonSockets,
        config: &CarbonConfig,
        shutdown: CancellationToken,
        clock: crate::db::Clock,
    ) -> CarbonReceiver {
        let stats = Arc::new(ReceiverStats::default());
        let receiver = Arc::new(Receiver {
            store: store.clone(),
            stats: Arc::clone(&stats),
            log: RateLimitedLog::new("invalid carbon line skipped"),
            pickle_log: RateLimitedLog::new("invalid carbon pickle skipped"),
            max_line: config.max_line_length,
            max_pickle: config.pickle_max_length,
            clock,
        });
        let tracker = TaskTracker::new();
        let token = shutdown.child_token();
        for (listener, protocol) in [
            (sockets.tcp, Protocol::Plaintext),
            (sockets.pickle, Protocol::Pickle),
        ] {
            if let Some(listener) = listener {
                // A limit per listener: a slot is taken before accepting, so a shared one
                // would let an idle listener hold it while the other's clients wait.
                let limit = Arc::new(Semaphore::new(config.max_connections.max(1)));
                tracker.spawn(accept_loop(
                    listener,
                    protocol,
                    Arc::clone(&receiver),
                    limit,
                    token.clone(),
                    tracker.clone(),
                ));
            }
        }
        if let Some(socket) = sockets.udp {
            tracker.spawn(udp_loop(socket, Arc::clone(&receiver), token.clone()));
        }
        if !config.metric_interval.is_zero() {
            let prefix = if config.metric_prefix.is_empty() {
                format!(
                    "carbon.agents.{}-a",
                    self_metrics::hostname().replace('.', "_")
                )
            } else {
                config.metric_prefix.clone()
            };
            tracker.spawn(self_metrics::run(
                store,
                Arc::clone(&stats),
                prefix,
                config.metric_interval,
                token.clone(),
            ));
        }
        tracker.close();
        CarbonReceiver {
            stats,
            token,
            tracker,
        }
    }

    /// The receiver's counters.
    pub fn stats(&self) -> &Arc<ReceiverStats> {
        &self.stats
    }

    /// Stops accepting, drains the socket buffers into the store, waits for every task.
    pub async fn shutdown(self) {
        self.token.cancel();
        self.tracker.wait().await;
    }
}

/// The sockets a receiver serves; any may be absent.
#[derive(Debug, Default)]
pub struct CarbonSockets {
    /// Plaintext lines over TCP.
    pub tcp: Option<TcpListener>,
    /// Plaintext lines in datagrams.
    pub udp: Option<UdpSocket>,
    /// The pickle protocol over TCP.
    pub pickle: Option<TcpListener>,
}

#[derive(Debug, Clone, Copy)]
enum Protocol {
    Plaintext,
    Pickle,
}

async fn accept_loop(
    listener: TcpListener,
    protocol: Protocol,
    receiver: Arc<Receiver>,
    limit: Arc<Semaphore>,
    token: CancellationToken,
    tracker: TaskTracker,
) {
    let serve = |stream: TcpStream, peer: SocketAddr, permit: OwnedSemaphorePermit| {
        let _ = stream.set_nodelay(true);
        let receiver = Arc::clone(&receiver);
        let token = token.clone();
        tracker.spawn(async move {
            receiver.stats.connections.fetch_add(1, Ordering::Relaxed);
            receiver
                .stats
                .active_connections
                .fetch_add(1, Ordering::Relaxed);
            match protocol {
                Protocol::Plaintext => connection(stream, peer, &receiver, &token).await,
                Protocol::Pickle => pickle_connection(stream, peer, &receiver, &token).await,
            }
            receiver
                .stats
                .active_connections
                .fetch_sub(1, Ordering::Relaxed);
            drop(permit);
        });
    };
    loop {
        let permit = tokio::select! {
            _ = token.cancelled() => break,
            permit = Arc::clone(&limit).acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => return,
            },
        };
        let (stream, peer) = tokio::select! {
            _ = token.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "carbon accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        serve(stream, peer, permit);
    }
    // Connections the kernel completed before the stop (waiting in the accept queue, maybe
    // for a free slot) are the senders' too: they may have written already, so they are
    // drained like the open ones, each as a slot frees up within the drain time.
    // Asked of the kernel directly (a non-blocking accept), not of the reactor, which may not
    // have seen the newest connections yet.
    let Ok(listener) = listener.into_std() else {
        return;
    };
    // Bounded: with another process serving the same socket (an upgrade) the queue may never
    // stay empty for long.
    let until = tokio::time::Instant::now() + DRAIN_MAX;
    while tokio::time::Instant::now() < until {
        let Ok((stream, peer)) = listener.accept() else {
            break;
        };
        let Ok(stream) = stream
            .set_nonblocking(true)
            .and_then(|()| TcpStream::from_std(stream))
        else {
            continue;
        };
        match tokio::time::timeout(DRAIN_MAX, Arc::clone(&limit).acquire_owned()).await {
            Ok(Ok(permit)) => serve(stream, peer, permit),
            _ => break,
        }
    }
}

/// Reads lines from one TCP connection. A line split across reads is joined; a line longer
/// than the limit is skipped up to its newline; when the cache is full the connection stops
/// reading (TCP back-pressure) until there is room.
async fn connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    receiver: &Receiver,
    token: &CancellationToken,
) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut pending = Vec::with_capacity(2048);
    let mut buffers = BatchBuffers::default();
    let mut filled = 0;
    // Skipping the rest of an overlong line until its newline.
    let mut skipping = false;
    let mut draining = false;
    let mut drain_deadline = tokio::time::Instant::now();
    loop {
        if filled == buf.len() {
            // A full buffer without a newline: the line is too long.
            receiver.bad(
                &peer,
                &LineError::TooLong(receiver.max_line),
                &buf[..filled],
            );
            filled = 0;
            skipping = true;
        }
        let n = if draining {
            // After shutdown: keep reading while the sender keeps sending (what it sent before
            // the stop may still be on its way), until it closes or goes quiet.
            let left = drain_deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(DRAIN_IDLE.min(left), stream.read(&mut buf[filled..])).await
            {
                Ok(read) => read.unwrap_or(0),
                Err(_) => {
                    if filled > 0 {
                        // An unterminated line from a sender that is still connected: it may
                        // be incomplete, so it is not stored.
                        receiver.bad(&peer, &LineError::Truncated, &buf[..filled]);
                    }
                    return;
                }
            }
        } else {
            tokio::select! {
                _ = token.cancelled() => {
                    draining = true;
                    drain_deadline = tokio::time::Instant::now() + DRAIN_MAX;
                    continue;
                }
                read = stream.read(&mut buf[filled..]) => read.unwrap_or(0),
            }
        };
        if n == 0 {
            // End of stream: a final line without a newline still counts.
            if filled > 0 && !skipping {
                let data = &buf[..filled];
                receiver.collect(data, data, &peer, &mut pending);
                receiver
                    .store(data, &mut pending, &mut buffers, &peer, true, token)
                    .await;
            }
            return;
        }
        let end = filled + n;
        let mut start = 0;
        let data = &buf[..end];
        while let Some(pos) = data[start..].iter().position(|&b| b == b'\n') {
            let line_end = start + pos;
            if skipping {
                skipping = false;
            } else {
                receiver.collect(data, &data[start..line_end], &peer, &mut pending);
            }
            start = line_end + 1;
        }
        // Every complete line of this read, stored shard by shard.
        receiver
            .store(data, &mut pending, &mut buffers, &peer, true, token)
            .await;
        if skipping {
            filled = 0;
        } else {
            buf.copy_within(start..end, 0);
            filled = end - start;
        }
    }
}

/// Fills `buf` from the stream; false at its end. Once the receiver is stopping, reading
/// goes on while the sender keeps sending (what it sent before the stop may still be on its
/// way), and ends when it goes quiet or the drain time is over.
async fn fill(
    stream: &mut TcpStream,
    buf: &mut [u8],
    token: &CancellationToken,
    drain_until: &mut Option<tokio::time::Instant>,
) -> bool {
    let mut filled = 0;
    while filled < buf.len() {
        let read = match *drain_until {
            None => tokio::select! {
                _ = token.cancelled() => {
                    *drain_until = Some(tokio::time::Instant::now() + DRAIN_MAX);
                    continue;
                }
                read = stream.read(&mut buf[filled..]) => read,
            },
            Some(deadline) => {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                match tokio::time::timeout(DRAIN_IDLE.min(left), stream.read(&mut buf[filled..]))
                    .await
                {
                    Ok(read) => read,
                    Err(_) => return false,
                }
            }
        };
        match read {
            Ok(0) | Err(_) => return false,
            Ok(n) => filled += n,
        }
    }
    true
}

/// Reads pickle frames from one TCP connection: a 4-byte big-endian length, then that many
/// bytes. A frame over the limit closes the connection, as in Carbon; a payload that is not
/// a list of datapoints is counted and skipped, and the connection goes on.
async fn pickle_connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    receiver: &Receiver,
    token: &CancellationToken,
) {
    let mut decoder = pickle::Decoder::default();
    let mut payload = Vec::new();
    let mut pending = Vec::new();
    let mut buffers = BatchBuffers::default();
    let mut drain_until = None;
    loop {
        let mut header = [0u8; 4];
        if !fill(&mut stream, &mut header, token, &mut drain_until).await {
            return;
        }
        let length = u32::from_be_bytes(header) as usize;
        if length > receiver.max_pickle {
            receiver.refuse_pickle(
                &peer,
                &format_args!(
                    "a {length}-byte pickle is over the {}-byte limit; connection closed",
                    receiver.max_pickle
                ),
            );
            return;
        }
        payload.resize(length, 0);
        if !fill(&mut stream, &mut payload, token, &mut drain_until).await {
            receiver.refuse_pickle(&peer, &"the connection ended inside a pickle");
            return;
        }
        if let Err(e) = decoder.decode(&payload) {
            receiver.refuse_pickle(&peer, &e);
            continue;
        }
        receiver.collect_pickled(&decoder, &peer, &mut pending);
        let names = decoder.names.as_bytes();
        receiver
            .store(names, &mut pending, &mut buffers, &peer, true, token)
            .await;
    }
}

/// Receives datagrams; each is split into lines as Python's `splitlines()` does. When the
/// cache is full, datapoints are dropped and counted (UDP has no back-pressure).
async fn udp_loop(socket: UdpSocket, receiver: Arc<Receiver>, token: CancellationToken) {
    let mut buf = vec![0u8; 65_536];
    let mut pending = Vec::with_capacity(256);
    let mut buffers = BatchBuffers::default();
    loop {
        let received = tokio::select! {
            _ = token.cancelled() => {
                // Drain what the kernel already holds.
                while let Ok((n, peer)) = socket.try_recv_from(&mut buf) {
                    datagram(&receiver, &buf[..n], &peer, &mut pending, &mut buffers, &token)
                        .await;
                }
                return;
            }
            r = socket.recv_from(&mut buf) => r,
        };
        match received {
            Ok((n, peer)) => {
                datagram(
                    &receiver,
                    &buf[..n],
                    &peer,
                    &mut pending,
                    &mut buffers,
                    &token,
                )
                .await
            }
            Err(e) => {
                tracing::debug!(error = %e, "carbon udp receive failed");
            }
        }
    }
}

async fn datagram(
    receiver: &Receiver,
    data: &[u8],
    peer: &SocketAddr,
    pending: &mut Vec<Pending>,
    buffers: &mut BatchBuffers,
    token: &CancellationToken,
) {
    for line in split_lines(data) {
        receiver.collect(data, line, peer, pending);
    }
    receiver
        .store(data, pending, buffers, peer, false, token)
        .await;
}

/// Python's `str.splitlines()` line ends that a datagram may use: \n, \r, \r\n, \v, \f,
/// \x1c-\x1e, and the UTF-8 encodings of U+0085, U+2028 and U+2029.
fn split_lines(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = data;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut i = 0;
        while i < rest.len() {
            let (end_len, is_end) = match rest[i] {
                b'\r' if rest.get(i + 1) == Some(&b'\n') => (2, true),
                b'\n' | b'\r' | 0x0b | 0x0c | 0x1c..=0x1e => (1, true),
                0xc2 if rest.get(i + 1) == Some(&0x85) => (2, true),
                0xe2 if rest.get(i + 1) == Some(&0x80)
                    && matches!(rest.get(i + 2), Some(0xa8 | 0xa9)) =>
                {
                    (3, true)
                }
                _ => (1, false),
            };
            if is_end {
                let line = &rest[..i];
                rest = &rest[i + end_len..];
                return Some(line);
            }
            i += 1;
        }
        let line = rest;
        rest = &[];
        Some(line)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datagram_line_ends() {
        let lines: Vec<&[u8]> =
            split_lines(b"a 1 2\nb 1 2\r\nc 1 2\rd 1 2\x0be 1 2\xc2\x85f 1 2\xe2\x80\xa8g")
                .collect();
        assert_eq!(
            lines,
            [
                &b"a 1 2"[..],
                b"b 1 2",
                b"c 1 2",
                b"d 1 2",
                b"e 1 2",
                b"f 1 2",
                b"g"
            ]
        );
        assert_eq!(split_lines(b"x\n").collect::<Vec<_>>(), [&b"x"[..]]);
        assert_eq!(split_lines(b"").count(), 0);
    }
}
