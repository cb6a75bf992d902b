//! Writes metric lines to StatsD (UDP datagrams packed up to a size) or Carbon (one TCP
//! connection, reconnected on failure, with a bounded backlog). The agent formats lines
//! itself (see `collect::emit`); this module only moves bytes.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt as _;
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::mpsc;

use crate::events;
use crate::stats::{Stats, bump};

/// Longest wait for a Carbon connect or write.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// Time allowed at shutdown to deliver what is still queued.
const FINAL_FLUSH: Duration = Duration::from_secs(2);

/// Where lines go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    Statsd(String),
    Carbon(String),
}

/// A batch of newline-terminated lines.
#[derive(Debug)]
pub(crate) struct Batch {
    pub(crate) text: String,
    pub(crate) lines: usize,
}

/// Delivers batches until every producer has dropped its end of the channel (they stop at
/// shutdown), then tries once more, briefly, to deliver what is still queued.
pub(crate) async fn run(
    target: Target,
    max_packet: usize,
    buffer_lines: usize,
    mut rx: mpsc::Receiver<Batch>,
    stats: Arc<Stats>,
) {
    let mut out = Output::new(target, max_packet, buffer_lines, stats);
    while let Some(batch) = rx.recv().await {
        out.push(batch);
        while let Ok(more) = rx.try_recv() {
            out.push(more);
        }
        out.flush().await;
    }
    if !out.pending.is_empty() {
        let _ = tokio::time::timeout(FINAL_FLUSH, out.flush()).await;
    }
}

struct Output {
    target: Target,
    max_packet: usize,
    buffer_lines: usize,
    stats: Arc<Stats>,
    pending: VecDeque<Batch>,
    pending_lines: usize,
    udp: Option<UdpSocket>,
    tcp: Option<TcpStream>,
}

impl Output {
    fn new(target: Target, max_packet: usize, buffer_lines: usize, stats: Arc<Stats>) -> Self {
        Output {
            target,
            max_packet,
            buffer_lines,
            stats,
            pending: VecDeque::new(),
            pending_lines: 0,
            udp: None,
            tcp: None,
        }
    }

    fn push(&mut self, batch: Batch) {
        self.pending_lines += batch.lines;
        self.pending.push_back(batch);
        // Carbon down for long: keep the newest lines.
        while self.pending_lines > self.buffer_lines && self.pending.len() > 1 {
            if let Some(old) = self.pending.pop_front() {
                self.pending_lines -= old.lines;
                self.stats
                    .lines_dropped
                    .fetch_add(old.lines as u64, std::sync::atomic::Ordering::Relaxed);
                events::SEND_DROPPED.log(|suppressed| {
                    tracing::warn!(
                        lines = old.lines,
                        suppressed,
                        "agent: send backlog full; oldest lines dropped"
                    );
                });
            }
        }
    }

    async fn flush(&mut self) {
        while let Some(batch) = self.pending.front() {
            let result = match &self.target {
                Target::Statsd(addr) => {
                    let addr = addr.clone();
                    send_statsd(&mut self.udp, &addr, &batch.text, self.max_packet).await
                }
                Target::Carbon(addr) => {
                    let addr = addr.clone();
                    send_carbon(&mut self.tcp, &addr, &batch.text).await
                }
            };
            match result {
                Ok(()) => {
                    self.stats
                        .lines_sent
                        .fetch_add(batch.lines as u64, std::sync::atomic::Ordering::Relaxed);
                    self.pending_lines -= batch.lines;
                    self.pending.pop_front();
                }
                Err(e) => {
                    bump(&self.stats.send_errors);
                    events::SEND_FAILED.log(|suppressed| {
                        tracing::warn!(target = ?self.target, error = %e, suppressed, "agent: cannot send metrics; will retry");
                    });
                    if matches!(self.target, Target::Statsd(_)) {
                        // UDP: nothing to retry later; drop the batch.
                        if let Some(b) = self.pending.pop_front() {
                            self.pending_lines -= b.lines;
                        }
                    }
                    return;
                }
            }
        }
    }
}

async fn resolve(addr: &str) -> std::io::Result<SocketAddr> {
    tokio::net::lookup_host(addr)
        .await?
        .next()
        .ok_or_else(|| std::io::Error::other(format!("{addr} resolves to no address")))
}

async fn send_statsd(
    sock: &mut Option<UdpSocket>,
    addr: &str,
    text: &str,
    max_packet: usize,
) -> std::io::Result<()> {
    if sock.is_none() {
        let peer = resolve(addr).await?;
        let local: SocketAddr = if peer.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            ([0u16; 8], 0).into()
        };
        let s = UdpSocket::bind(local).await?;
        s.connect(peer).await?;
        *sock = Some(s);
    }
    let Some(s) = sock.as_ref() else {
        return Ok(());
    };
    for packet in packets(text, max_packet) {
        if let Err(e) = s.send(packet.as_bytes()).await {
            *sock = None;
            return Err(e);
        }
    }
    Ok(())
}

/// Splits newline-terminated lines into payloads of at most `max` bytes at line boundaries
/// (a single longer line is sent alone). The last newline of each payload is dropped.
pub(crate) fn packets(text: &str, max: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut last_end: Option<usize> = None;
    let mut pos = 0;
    for line in text.split_inclusive('\n') {
        let line_start = pos;
        pos += line.len();
        let line_end = if line.ends_with('\n') { pos - 1 } else { pos };
        match last_end {
            Some(le) if line_end - start > max => {
                out.push(&text[start..le]);
                start = line_start;
            }
            _ => {}
        }
        last_end = Some(line_end);
    }
    if let Some(le) = last_end
        && le > start
    {
        out.push(&text[start..le]);
    }
    out
}

async fn send_carbon(conn: &mut Option<TcpStream>, addr: &str, text: &str) -> std::io::Result<()> {
    if conn.is_none() {
        let peer = resolve(addr).await?;
        let s = tokio::time::timeout(IO_TIMEOUT, TcpStream::connect(peer))
            .await
            .map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out")
            })??;
        *conn = Some(s);
    }
    let Some(s) = conn.as_mut() else {
        return Ok(());
    };
    let res = tokio::time::timeout(IO_TIMEOUT, s.write_all(text.as_bytes())).await;
    match res {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => {
            *conn = None;
            Err(e)
        }
        Err(_) => {
            *conn = None;
            Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "write timed out",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_respects_the_size_limit_and_line_boundaries() {
        let text = "a:1|g\nbb:2|g\nccc:3|g\n";
        assert_eq!(packets(text, 100), vec!["a:1|g\nbb:2|g\nccc:3|g"]);
        assert_eq!(packets(text, 12), vec!["a:1|g\nbb:2|g", "ccc:3|g"]);
        assert_eq!(packets(text, 6), vec!["a:1|g", "bb:2|g", "ccc:3|g"]);
        // a line longer than the limit goes alone
        assert_eq!(packets("toolongline\nx\n", 4), vec!["toolongline", "x"]);
        assert!(packets("", 10).is_empty());
        for max in 1..30 {
            let joined: Vec<&str> = packets(text, max)
                .iter()
                .flat_map(|p| p.split('\n'))
                .collect();
            assert_eq!(joined, ["a:1|g", "bb:2|g", "ccc:3|g"], "max {max}");
        }
    }

    #[tokio::test]
    async fn carbon_lines_arrive_and_reconnect_after_the_server_restarts() {
        use tokio::io::AsyncReadExt as _;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let stats = Arc::new(Stats::default());
        let mut out = Output::new(Target::Carbon(addr), 1432, 1000, stats.clone());
        out.push(Batch {
            text: "a 1 100\n".into(),
            lines: 1,
        });
        out.flush().await;
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 8];
        s.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"a 1 100\n");
        assert_eq!(stats.snapshot().lines_sent, 1);
    }

    #[tokio::test]
    async fn statsd_datagrams() {
        let rx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = rx.local_addr().unwrap().to_string();
        let stats = Arc::new(Stats::default());
        let mut out = Output::new(Target::Statsd(addr), 12, 1000, stats);
        out.push(Batch {
            text: "a:1|g\nbb:2|g\nccc:3|g\n".into(),
            lines: 3,
        });
        out.flush().await;
        let mut buf = [0u8; 64];
        let n = rx.recv(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"a:1|g\nbb:2|g");
        let n = rx.recv(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"ccc:3|g");
    }

    #[test]
    fn backlog_keeps_the_newest_lines() {
        let stats = Arc::new(Stats::default());
        let mut out = Output::new(Target::Carbon("x:1".into()), 1432, 2, stats.clone());
        for i in 0..4 {
            out.push(Batch {
                text: format!("m {i} 0\n"),
                lines: 1,
            });
        }
        assert_eq!(out.pending.len(), 2);
        assert_eq!(out.pending[0].text, "m 2 0\n");
        assert_eq!(stats.snapshot().lines_dropped, 2);
    }
}
