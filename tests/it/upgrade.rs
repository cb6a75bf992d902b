//! Replacing a running Charcoal under steady StatsD and Carbon load loses nothing: the new
//! process takes over the listening sockets, the old one drains and exits, and every counter
//! increment and every Carbon point sent is accounted for. Either a new process is started
//! beside the old one, or the old one is sent SIGUSR2 and starts it (the systemd path, with
//! its readiness notifications checked).

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

fn start(
    data: &std::path::Path,
    handoff: &str,
    carbon_sink: &str,
    extra_env: &[(&str, &str)],
) -> Server {
    let mut env = vec![
        ("CHARCOAL_STORE__DEFAULT_RETENTION", "1s:1h"),
        ("CHARCOAL_STATSD__CARBON", carbon_sink),
        ("CHARCOAL_OPS__HANDOFF_SOCKET", handoff),
        ("CHARCOAL_OPS__SELF_METRICS_INTERVAL", "0s"),
        ("CHARCOAL_CARBON__METRIC_INTERVAL", "0s"),
    ];
    env.extend_from_slice(extra_env);
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
        &env,
    )
}

/// Steady StatsD increments (UDP) and Carbon points (a TCP connection per batch, like
/// StatsD's graphite backend) until stopped.
struct Load {
    stop: Arc<AtomicBool>,
    increments: Arc<AtomicU64>,
    points: Arc<AtomicU64>,
    base: i64,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(statsd: String, carbon: String) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let increments = Arc::new(AtomicU64::new(0));
        let points = Arc::new(AtomicU64::new(0));
        let base = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
            - 600;
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
        let carbon_load = {
            let (stop, points) = (Arc::clone(&stop), Arc::clone(&points));
            std::thread::spawn(move || {
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
        Load {
            stop,
            increments,
            points,
            base,
            threads: vec![statsd_load, carbon_load],
        }
    }

    /// Keeps the load on for a while longer, and until there is enough of it to prove
    /// something (a loaded machine sends more slowly); then stops it.
    fn finish(self) -> (f64, f64, i64) {
        let after = std::time::Instant::now();
        while after.elapsed() < Duration::from_millis(1500)
            || self.increments.load(Ordering::Relaxed) < 20_000
            || self.points.load(Ordering::Relaxed) < 2_000
        {
            assert!(
                after.elapsed() < Duration::from_secs(60),
                "the load generators stalled"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().unwrap();
        }
        (
            self.increments.load(Ordering::Relaxed) as f64,
            self.points.load(Ordering::Relaxed) as f64,
            self.base,
        )
    }
}

/// Every StatsD increment reached Carbon in some flush of one of the two processes, and every
/// Carbon point is in a whisper file.
fn assert_nothing_lost(
    data: &std::path::Path,
    counted: &std::sync::Mutex<f64>,
    (sent, sent_points, base): (f64, f64, i64),
) {
    // The capture may still be reading the last flush.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while *counted.lock().unwrap() != sent && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        *counted.lock().unwrap(),
        sent,
        "StatsD increments received vs sent"
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let stored: f64 = whisper_files(data)
        .iter()
        .filter(|p| p.to_string_lossy().contains("upgrade/carbon"))
        .map(|p| {
            let file = Whisper::open_read_only(p).unwrap();
            let s = file.fetch(base - 10, now + 100, now).unwrap().unwrap();
            s.values.iter().flatten().sum::<f64>()
        })
        .sum();
    assert!(sent_points > 1_000.0);
    assert_eq!(stored, sent_points, "Carbon points stored vs sent");
}

#[test]
fn replacing_the_process_under_load_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let handoff = dir.path().join("handoff.sock");
    let (sink, counted) = capture("stats_counts.upgrade.hits");
    let old = start(&data, path_str(&handoff), &sink, &[]);
    let statsd = address(&old.wait_for("statsd listening"), "udp");
    let carbon = address(&old.wait_for("carbon receiver listening"), "tcp");
    let load = Load::start(statsd, carbon);

    std::thread::sleep(Duration::from_millis(1500));
    let new = start(&data, path_str(&handoff), &sink, &[]);
    new.wait_for("took over the listening sockets of the running process");
    assert!(
        old.wait().success(),
        "the old process stops by itself after the handoff"
    );
    let sent = load.finish();
    std::thread::sleep(Duration::from_millis(300));
    new.signal(libc::SIGTERM);
    assert!(new.wait().success());
    assert_nothing_lost(&data, &counted, sent);
}

/// Whether `pid` has exited (gone, or a zombie nobody reaped yet).
fn exited(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

#[test]
fn sigusr2_upgrades_in_place_and_tells_systemd() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let handoff = dir.path().join("handoff.sock");
    // Stands in for systemd's $NOTIFY_SOCKET.
    let notify_path = dir.path().join("notify");
    let notify = std::os::unix::net::UnixDatagram::bind(&notify_path).unwrap();
    notify
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let next_state = || {
        let mut buf = [0u8; 256];
        let n = notify.recv(&mut buf).expect("a notification");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let (sink, counted) = capture("stats_counts.upgrade.hits");
    let old = start(
        &data,
        path_str(&handoff),
        &sink,
        &[("NOTIFY_SOCKET", path_str(&notify_path))],
    );
    let statsd = address(&old.wait_for("statsd listening"), "udp");
    let carbon = address(&old.wait_for("carbon receiver listening"), "tcp");
    assert_eq!(next_state(), "READY=1");
    let load = Load::start(statsd, carbon);

    std::thread::sleep(Duration::from_millis(1500));
    old.signal(libc::SIGUSR2);
    // The successor (a child of the old process, the same binary and arguments) serves the
    // sockets and becomes the main process before the old one may stop.
    let state = next_state();
    let pid: i32 = state
        .strip_prefix("MAINPID=")
        .and_then(|rest| rest.strip_suffix("\nREADY=1"))
        .and_then(|pid| pid.parse().ok())
        .unwrap_or_else(|| panic!("unexpected notification {state:?}"));
    assert_ne!(pid as u32, old.child.id());
    assert_eq!(next_state(), "STOPPING=1", "then the old process stops");
    let events = Arc::clone(&old.events);
    assert!(old.wait().success(), "the old process exits 0");
    let sent = load.finish();
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: kill(2) on the successor's pid, which we were just told.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    assert_eq!(next_state(), "STOPPING=1");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !exited(pid) {
        assert!(
            std::time::Instant::now() < deadline,
            "the successor did not stop"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Both logged a clean stop (the log reader may still be taking the last lines).
    let stopped = || {
        let events = events.lock().unwrap();
        events.iter().filter(|e| e["message"] == "stopped").count()
    };
    while stopped() < 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(stopped(), 2, "both processes stopped cleanly");
    assert_nothing_lost(&data, &counted, sent);
}
