//! Shared helpers: a capturing sink, a started server, waiting for counters.

use std::net::{SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use charcoal_statsd::{Config, Flush, ServerHandle, Sink, SinkError, Sockets, Stats};
use tokio_util::sync::CancellationToken;

/// Keeps every flush it is given.
#[derive(Default)]
pub struct Capture(pub Mutex<Vec<Arc<Flush>>>);

impl Sink for Capture {
    fn name(&self) -> &'static str {
        "capture"
    }
    fn deliver(&self, flush: &Arc<Flush>) -> Result<(), SinkError> {
        self.0.lock().unwrap().push(Arc::clone(flush));
        Ok(())
    }
}

pub struct Running {
    pub handle: ServerHandle,
    pub udp: SocketAddr,
    pub capture: Arc<Capture>,
    pub sender: UdpSocket,
}

/// A server that flushes only when the test asks (`flush_now`) and at shutdown, so no
/// flush on the clock can split what a test sends.
pub fn start(config: Config, sockets: Sockets, workers: usize) -> Running {
    launch(config, sockets, workers, charcoal_statsd::spawn_unscheduled)
}

/// A server flushing every `flush_interval`, as in production.
pub fn start_scheduled(config: Config, sockets: Sockets, workers: usize) -> Running {
    launch(config, sockets, workers, charcoal_statsd::spawn)
}

type Spawn = fn(
    Config,
    Sockets,
    Vec<Arc<dyn Sink>>,
    CancellationToken,
) -> Result<ServerHandle, charcoal_statsd::ServerError>;

fn launch(config: Config, mut sockets: Sockets, workers: usize, spawn: Spawn) -> Running {
    let udp = charcoal_statsd::bind_udp("127.0.0.1:0".parse().unwrap(), workers, 4 << 20).unwrap();
    let addr = udp[0].local_addr().unwrap();
    sockets.udp = udp;
    let capture = Arc::new(Capture::default());
    let sinks: Vec<Arc<dyn Sink>> = vec![capture.clone()];
    let handle = spawn(config, sockets, sinks, CancellationToken::new()).unwrap();
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    sender.connect(addr).unwrap();
    Running {
        handle,
        udp: addr,
        capture,
        sender,
    }
}

impl Running {
    pub fn send(&self, datagram: &[u8]) {
        self.sender.send(datagram).unwrap();
    }
}

/// Polls until `stats.packets` reaches `n` (bounded: fails after 10 s).
pub async fn wait_packets(stats: &Stats, n: u64) {
    for _ in 0..2000 {
        if Stats::get(&stats.packets) >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("only {} of {n} packets arrived", Stats::get(&stats.packets));
}

/// `name value` pairs of a flush, sorted, volatile internal metrics dropped.
pub fn pairs(text: &str) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = text
        .lines()
        .filter(|l| !l.is_empty())
        .filter_map(|l| {
            let mut it = l.rsplitn(3, ' ');
            let _ts = it.next()?;
            let value = it.next()?;
            let name = it.next()?;
            Some((name.to_string(), value.to_string()))
        })
        .filter(|(n, _)| {
            !["processing_time", "graphiteStats", "timestamp_lag"]
                .iter()
                .any(|v| n.contains(v))
        })
        .collect();
    v.sort();
    v
}

pub fn cfg_1s() -> Config {
    Config {
        flush_interval: Duration::from_secs(1),
        ..Config::default()
    }
}
