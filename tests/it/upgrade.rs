//! Replacing a running Charcoal under steady StatsD and Carbon load loses nothing: the new
//! process takes over the listening sockets, the old one drains and exits, and every counter
//! increment and every Carbon point sent is accounted for.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use charcoal_store::Whisper;

use crate::support::{Server, address, path_str, whisper_files};

/// A Carbon server that sums the values of one metric name over every line it receives.
fn capture(metric: &'static str) -> (String, Arc<std::sync::Mutex<f64>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let sum = Arc::new(std::sync::Mutex::new(0.0));
    let total = Arc::clone(&sum);
    std::thread::spawn(move || {
        for conn in listener.incoming().map_while(Result::ok) {
            let total = Arc::clone(&total);
            std::thread::spawn(move || {
                for line in BufReader::new(conn).lines().map_while(Result::ok) {
                    let mut fields = line.split_whitespace();
                    if fields.next() == Some(metric)
                        && let Some(v) = fields.next().and_then(|v| v.parse::<f64>().ok())
                    {
                        *total.lock().unwrap() += v;
                    }
                }
            });
        }
    });
    (addr, sum)
}

fn start(data: &std::path::Path, handoff: &str, carbon_sink: &str) -> Server {
    Server::start(
        &[
            "serve",
            "--data-dir",
            path_str(data),
            "--statsd-listen",
            "127.0.0.1:0",
            "--statsd-admin-listen",
            "127.0.0.1:0",
            "--carbon-listen",
            "127.0.0.1:0",
            "--no-web",
            "--no-agent",
            "--flush-interval",
            "1s",
        ],
        &[
            ("CHARCOAL_STORE__DEFAULT_RETENTION", "1s:1h"),
            ("CHARCOAL_STATSD__CARBON", carbon_sink),
            ("CHARCOAL_OPS__HANDOFF_SOCKET", handoff),
            ("CHARCOAL_OPS__SELF_METRICS_INTERVAL", "0s"),
            ("CHARCOAL_CARBON__METRIC_INTERVAL", "0s"),
        ],
    )
}

#[test]
fn replacing_the_process_under_load_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let handoff = dir.path().join("handoff.sock");
    let (sink, counted) = capture("stats_counts.upgrade.hits");
    let old = start(&data, path_str(&handoff), &sink);
    let statsd = address(&old.wait_for("statsd listening"), "udp");
    let carbon = address(&old.wait_for("carbon receiver listening"), "tcp");

    let stop = Arc::new(AtomicBool::new(false));
    let increments = Arc::new(AtomicU64::new(0));
    let points = Arc::new(AtomicU64::new(0));
    let statsd_load = {
        let (stop, increments) = (Arc::clone(&stop), Arc::clone(&increments));
        std::thread::spawn(move || {
            let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
            while !stop.load(Ordering::Relaxed) {
                socket
                    .send_to(b"upgrade.hits:1|c\nupgrade.hits:2|c", &statsd)
                    .unwrap();
                increments.fetch_add(3, Ordering::Relaxed);
                std::thread::sleep(Duration::from_micros(200));
            }
        })
    };
    let base = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        - 600;
    let carbon_load = {
        let (stop, points) = (Arc::clone(&stop), Arc::clone(&points));
        std::thread::spawn(move || {
            // Like StatsD's graphite backend: a connection per batch.
            let mut i = 0i64;
            while !stop.load(Ordering::Relaxed) {
                let mut conn = TcpStream::connect(&carbon).unwrap();
                let mut batch = String::new();
                for _ in 0..50 {
                    batch.push_str(&format!(
                        "upgrade.carbon.m{} 1 {}\n",
                        i % 1000,
                        base + i / 1000
                    ));
                    i += 1;
                }
                conn.write_all(batch.as_bytes()).unwrap();
                drop(conn);
                points.fetch_add(50, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };

    std::thread::sleep(Duration::from_millis(1500));
    let new = start(&data, path_str(&handoff), &sink);
    new.wait_for("took over the listening sockets of the running process");
    assert!(
        old.wait().success(),
        "the old process stops by itself after the handoff"
    );
    // Keep the load on for a while after the takeover, and until there is enough of it to
    // prove something (a loaded machine sends more slowly).
    let after = std::time::Instant::now();
    while after.elapsed() < Duration::from_millis(1500)
        || increments.load(Ordering::Relaxed) < 20_000
        || points.load(Ordering::Relaxed) < 2_000
    {
        assert!(
            after.elapsed() < Duration::from_secs(60),
            "the load generators stalled"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::Relaxed);
    statsd_load.join().unwrap();
    carbon_load.join().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    new.signal(libc::SIGTERM);
    assert!(new.wait().success());

    // Every StatsD increment reached Carbon in some flush of one of the two processes (the
    // capture may still be reading the last one).
    let sent = increments.load(Ordering::Relaxed) as f64;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while *counted.lock().unwrap() != sent && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        *counted.lock().unwrap(),
        sent,
        "StatsD increments received vs sent"
    );
    // Every Carbon point is in a whisper file.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let stored: f64 = whisper_files(&data)
        .iter()
        .filter(|p| p.to_string_lossy().contains("upgrade/carbon"))
        .map(|p| {
            let file = Whisper::open_read_only(p).unwrap();
            let s = file.fetch(base - 10, now + 100, now).unwrap().unwrap();
            s.values.iter().flatten().sum::<f64>()
        })
        .sum();
    let sent_points = points.load(Ordering::Relaxed) as f64;
    assert!(sent_points > 1_000.0);
    assert_eq!(stored, sent_points, "Carbon points stored vs sent");
}
