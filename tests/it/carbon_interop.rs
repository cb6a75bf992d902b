//! `charcoal carbon` against the real Carbon ecosystem (only with `CHARCOAL_INTEROP=1`; then a
//! missing peer fails the test):
//! - Etsy StatsD 0.9.0's graphite backend feeds us (`.ci/setup-statsd.sh`,
//!   `CHARCOAL_STATSD_NODE_DIR`, default /opt/charcoal-interop/node), and the files hold what
//!   Etsy's documented aggregation makes of the StatsD input;
//! - Python's whisper 1.1.10 (`.ci/setup-whisper.sh`, `CHARCOAL_WHISPER_VENV`) reads the files
//!   written at SIGTERM, with exactly the values sent;
//! - carbon-cache 1.1.10 (`.ci/setup-carbon.sh`, `CHARCOAL_CARBON_VENV`, default
//!   /opt/charcoal-interop/carbon), fed the same lines with the same storage-schemas.conf and
//!   storage-aggregation.conf, writes files with the same header and the same points;
//! - Debian's collectd 5.12 (`.ci/setup-collectd.sh`) feeds us through its write_graphite
//!   plugin, and every line it wrote is in the files.
//!
//! Files are read with Python's whisper (`whisper.info`, `whisper.fetch` with a fixed `now`)
//! plus a plain read of every archive slot; values are compared bit for bit.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{Server, interop_enabled, path_str, peer_port, whisper_files, whisper_venv};

pub(crate) fn node_dir() -> PathBuf {
    std::env::var_os("CHARCOAL_STATSD_NODE_DIR").map_or_else(
        || PathBuf::from("/opt/charcoal-interop/node"),
        PathBuf::from,
    )
}

pub(crate) fn carbon_venv() -> PathBuf {
    std::env::var_os("CHARCOAL_CARBON_VENV").map_or_else(
        || PathBuf::from("/opt/charcoal-interop/carbon"),
        PathBuf::from,
    )
}

pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Starts `charcoal carbon` on a free loopback port (TCP and UDP on the same port).
pub(crate) fn start_charcoal(data: &Path, env: &[(&str, &str)]) -> (Server, SocketAddr) {
    let mut env = env.to_vec();
    // No self metrics in the data directory: the tests compare whole directories.
    env.push(("CHARCOAL_CARBON__METRIC_INTERVAL", "0s"));
    let server = Server::start(
        &[
            "carbon",
            "--data-dir",
            path_str(data),
            "--listen",
            "127.0.0.1:0",
        ],
        &env,
    );
    let event = server.wait_for("carbon receiver listening");
    let addr = event["tcp"].as_str().expect("tcp address").parse().unwrap();
    (server, addr)
}

pub(crate) fn stop_charcoal(server: Server) {
    server.signal(libc::SIGTERM);
    let status = server.wait();
    assert!(status.success(), "charcoal carbon exited with {status}");
}

/// A reference process, killed when dropped.
pub(crate) struct Peer {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Peer {
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub(crate) fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!("{} exited ({status}): {}", self.name, self.log());
        }
    }

    /// SIGTERM, then waits up to 30 s.
    pub(crate) fn stop(mut self) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.child.try_wait().unwrap().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn spawn_logged(name: &'static str, cmd: &mut Command, log: PathBuf) -> Peer {
    let out = std::fs::File::create(&log).unwrap();
    let err = out.try_clone().unwrap();
    let child = cmd
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("starting {name}: {e}"));
    Peer { name, child, log }
}

/// Polls `ready` every 50 ms for up to `secs` seconds.
pub(crate) fn wait_until(secs: u64, what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What Python's whisper 1.1.10 reads from each file: header (`whisper.info`), the non-empty
/// points of each archive as `whisper.fetch(path, now - retention, now, now)` returns them,
/// and every written slot of each archive (a plain read of the archive, sorted by time, so
/// that files written in a different order compare equal). Values as IEEE-754 bits in hex.
const WHISPER_DUMP: &str = r#"
import json, struct, sys, whisper
now = int(sys.argv[1])
root = sys.argv[2]
out = {}
for path in sys.argv[3:]:
    info = whisper.info(path)
    archives = []
    with open(path, "rb") as f:
        raw = f.read()
    for a in info["archives"]:
        (start, end, step), values = whisper.fetch(path, now - a["retention"], now, now=now)
        assert step == a["secondsPerPoint"], (path, step, a)
        fetched = [[start + i * step, struct.pack(">d", v).hex()]
                   for i, v in enumerate(values) if v is not None]
        slots = sorted([ts, struct.pack(">d", v).hex()]
                       for ts, v in struct.iter_unpack(">Ld", raw[a["offset"]:a["offset"] + a["size"]])
                       if ts != 0)
        archives.append({"secondsPerPoint": a["secondsPerPoint"], "points": a["points"],
                         "offset": a["offset"], "fetched": fetched, "slots": slots})
    rel = path[len(root):].lstrip("/")
    out[rel] = {"aggregationMethod": info["aggregationMethod"],
                "xFilesFactor": info["xFilesFactor"], "maxRetention": info["maxRetention"],
                "size": len(raw), "archives": archives}
print(json.dumps(out, sort_keys=True))
"#;

pub(crate) fn whisper_python() -> PathBuf {
    let python = whisper_venv().join("bin/python");
    assert!(
        python.exists(),
        "CHARCOAL_INTEROP=1 but {} is missing (run .ci/setup-whisper.sh)",
        python.display()
    );
    python
}

/// Every `.wsp` file under `root` as Python's whisper reads it, keyed by relative path.
pub(crate) fn whisper_dump(root: &Path, now: i64) -> BTreeMap<String, serde_json::Value> {
    let files = whisper_files(root);
    let out = Command::new(whisper_python())
        .arg("-c")
        .arg(WHISPER_DUMP)
        .arg(now.to_string())
        .arg(root)
        .args(&files)
        .output()
        .expect("run python whisper");
    assert!(
        out.status.success(),
        "python whisper failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("whisper dump is JSON")
}

pub(crate) fn bits(v: f64) -> String {
    format!("{:016x}", v.to_bits())
}

/// The fetched points of archive `i` as `(timestamp, value bits)`.
pub(crate) fn fetched(file: &serde_json::Value, i: usize) -> Vec<(i64, String)> {
    file["archives"][i]["fetched"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_i64().unwrap(), p[1].as_str().unwrap().to_owned()))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Etsy StatsD's graphite backend -> charcoal carbon

/// Starts Etsy's StatsD flushing every 2 s to Carbon on this host (`graphite`: the port
/// settings) with deleteIdleStats, so a metric is flushed once, in the interval its input
/// arrived (each file holds one point) and rates differ from counts. Returns once its first
/// flush (its own metrics, sent even when idle) is in our files, with its UDP port.
pub(crate) fn start_etsy_statsd(dir: &Path, data: &Path, graphite: &str) -> (Peer, u16) {
    let stats_js = node_dir().join("node_modules/statsd/stats.js");
    assert!(
        stats_js.exists(),
        "CHARCOAL_INTEROP=1 but {} is missing (run .ci/setup-statsd.sh)",
        stats_js.display()
    );
    let statsd_port = peer_port();
    let config = format!(
        "{{ port: {statsd_port}, address: '127.0.0.1', mgmt_port: {}, \
         mgmt_address: '127.0.0.1', flushInterval: 2000, graphiteHost: '127.0.0.1', \
         {graphite}, deleteIdleStats: true, automaticConfigReload: false }}\n",
        peer_port()
    );
    let config_path = dir.join("etsy.js");
    std::fs::write(&config_path, config).unwrap();
    let mut etsy = spawn_logged(
        "etsy statsd",
        Command::new("node").arg(&stats_js).arg(&config_path),
        dir.join("etsy.log"),
    );
    wait_until(20, "etsy statsd's first flush in our files", || {
        etsy.assert_running();
        data.join("statsd/numStats.wsp").exists()
    });
    (etsy, statsd_port)
}

#[test]
fn etsy_statsd_graphite_backend_feeds_charcoal() {
    if !interop_enabled() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // One-second slots: each Etsy flush has its own timestamp.
    let (server, carbon) = start_charcoal(
        &data,
        &[
            ("CHARCOAL_STORE__DEFAULT_RETENTION", "1s:10m"),
            ("CHARCOAL_STORE__FLUSH_INTERVAL", "100ms"),
        ],
    );
    let graphite = format!("graphitePort: {}", carbon.port());
    let (mut etsy, statsd_port) = start_etsy_statsd(dir.path(), &data, &graphite);
    // One datagram, so that all of it lands in one flush interval.
    let input = "interop.count:5|c\ninterop.count:3|c\ninterop.count:1|c|@0.5\n\
                 interop.t:100|ms\ninterop.t:300|ms\ninterop.t:200|ms\n\
                 interop.g:42|g\ninterop.g:-2|g\n\
                 interop.s:a|s\ninterop.s:b|s\ninterop.s:a|s";
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .send_to(input.as_bytes(), ("127.0.0.1", statsd_port))
        .unwrap();
    let sent_at = unix_now();

    // Etsy StatsD's aggregation (its README and lib/process_metrics.js) of that input, with a
    // 2 s flush interval and the default percentThreshold [90] and legacy namespace.
    let std_dev = ((100.0f64 * 100.0 + 0.0 + 100.0 * 100.0) / 3.0).sqrt();
    let expected: Vec<(&str, f64)> = vec![
        ("stats_counts/interop/count.wsp", 10.0),
        ("stats/interop/count.wsp", 5.0),
        ("stats/timers/interop/t/count.wsp", 3.0),
        ("stats/timers/interop/t/count_ps.wsp", 1.5),
        ("stats/timers/interop/t/lower.wsp", 100.0),
        ("stats/timers/interop/t/upper.wsp", 300.0),
        ("stats/timers/interop/t/sum.wsp", 600.0),
        ("stats/timers/interop/t/sum_squares.wsp", 140_000.0),
        ("stats/timers/interop/t/mean.wsp", 200.0),
        ("stats/timers/interop/t/median.wsp", 200.0),
        ("stats/timers/interop/t/std.wsp", std_dev),
        ("stats/timers/interop/t/count_90.wsp", 3.0),
        ("stats/timers/interop/t/mean_90.wsp", 200.0),
        ("stats/timers/interop/t/upper_90.wsp", 300.0),
        ("stats/timers/interop/t/sum_90.wsp", 600.0),
        ("stats/timers/interop/t/sum_squares_90.wsp", 140_000.0),
        ("stats/gauges/interop/g.wsp", 40.0),
        ("stats/sets/interop/s/count.wsp", 2.0),
    ];
    wait_until(
        30,
        "etsy statsd's flush of our metrics in our files",
        || {
            etsy.assert_running();
            expected.iter().all(|(f, _)| data.join(f).exists())
        },
    );
    etsy.stop();
    stop_charcoal(server);

    // Etsy stamps flushes with Math.round(ms / 1000): up to a second ahead of our clock.
    let now = unix_now() + 1;
    let dump = whisper_dump(&data, now);
    for (file, value) in &expected {
        let got = dump.get(*file).unwrap_or_else(|| panic!("{file} missing"));
        assert_eq!(got["archives"][0]["secondsPerPoint"], 1, "{file}");
        let points = fetched(got, 0);
        assert_eq!(points.len(), 1, "{file}: {points:?}");
        let (ts, v) = &points[0];
        assert_eq!(*v, bits(*value), "{file}: got bits {v}, want {value}");
        assert!(
            (sent_at - 1..=sent_at + 5).contains(ts),
            "{file}: timestamp {ts}, sent at {sent_at}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// collectd's write_graphite plugin -> charcoal carbon

/// What a [`recording_proxy`] saw: every byte its clients sent, and how many of their
/// connections it has finished forwarding (the client closed, Charcoal got all of it).
#[derive(Default)]
struct Recorded {
    bytes: std::sync::Mutex<Vec<u8>>,
    finished: std::sync::atomic::AtomicUsize,
}

/// Forwards one connection at a time from a loopback listener to `target`, keeping a copy of
/// every byte sent (what the client wrote, exactly as Charcoal received it).
fn recording_proxy(target: SocketAddr) -> (u16, std::sync::Arc<Recorded>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = std::sync::Arc::new(Recorded::default());
    let copy = std::sync::Arc::clone(&seen);
    std::thread::spawn(move || {
        for client in listener.incoming().map_while(Result::ok) {
            let Ok(mut upstream) = TcpStream::connect(target) else {
                return;
            };
            let mut client = client;
            let mut buf = [0u8; 16 * 1024];
            loop {
                match std::io::Read::read(&mut client, &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        copy.bytes.lock().unwrap().extend_from_slice(&buf[..n]);
                        if upstream.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                }
            }
            let _ = upstream.shutdown(std::net::Shutdown::Write);
            copy.finished
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    });
    (port, seen)
}

#[test]
fn collectd_write_graphite_feeds_charcoal() {
    if !interop_enabled() {
        return;
    }
    whisper_python();
    let collectd = std::env::var_os("CHARCOAL_COLLECTD")
        .map_or_else(|| PathBuf::from("/usr/sbin/collectd"), PathBuf::from);
    assert!(
        collectd.exists(),
        "CHARCOAL_INTEROP=1 but {} is missing (run .ci/setup-collectd.sh)",
        collectd.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // One-second slots: collectd sends every second.
    let (server, carbon) = start_charcoal(
        &data,
        &[
            ("CHARCOAL_STORE__DEFAULT_RETENTION", "1s:10m"),
            ("CHARCOAL_STORE__FLUSH_INTERVAL", "100ms"),
        ],
    );
    let (port, sent) = recording_proxy(carbon);
    let conf = dir.path().join("collectd.conf");
    std::fs::write(
        &conf,
        format!(
            "Hostname \"charcoal-test\"\nFQDNLookup false\nInterval 1\nBaseDir \"{d}\"\n\
             PIDFile \"{d}/collectd.pid\"\nPluginDir \"/usr/lib/collectd\"\n\
             TypesDB \"/usr/share/collectd/types.db\"\nLoadPlugin load\nLoadPlugin memory\n\
             LoadPlugin write_graphite\n<Plugin write_graphite>\n  <Node \"charcoal\">\n\
             \x20   Host \"127.0.0.1\"\n    Port \"{port}\"\n    Protocol \"tcp\"\n\
             \x20   Prefix \"collectd.\"\n  </Node>\n</Plugin>\n",
            d = dir.path().display()
        ),
    )
    .unwrap();
    let mut peer = spawn_logged(
        "collectd",
        Command::new(&collectd).arg("-f").arg("-C").arg(&conf),
        dir.path().join("collectd.log"),
    );
    let shortterm = data.join("collectd/charcoal-test/load/load/shortterm.wsp");
    let used = data.join("collectd/charcoal-test/memory/memory-used.wsp");
    wait_until(30, "collectd's load and memory values in our files", || {
        peer.assert_running();
        shortterm.exists() && used.exists()
    });
    // A few more rounds, then stop collectd (it flushes its write queue) and Charcoal.
    std::thread::sleep(Duration::from_secs(3));
    peer.stop();
    wait_until(30, "the proxy to forward collectd's last lines", || {
        sent.finished.load(std::sync::atomic::Ordering::SeqCst) > 0
    });
    stop_charcoal(server);

    // Every line collectd wrote is in the files, value for value (the last one per second).
    let text = String::from_utf8(sent.bytes.lock().unwrap().clone()).unwrap();
    let mut want: BTreeMap<String, BTreeMap<i64, f64>> = BTreeMap::new();
    // Complete lines only: one cut off by collectd's exit is not a point (Charcoal agrees).
    // collectd ends its lines with \r\n.
    let lines = text
        .split_inclusive('\n')
        .filter_map(|l| l.strip_suffix('\n'));
    for line in lines.map(|l| l.strip_suffix('\r').unwrap_or(l)) {
        let mut f = line.split(' ');
        let (Some(name), Some(value), Some(ts)) = (f.next(), f.next(), f.next()) else {
            panic!("not a Carbon line from collectd: {line:?}");
        };
        let file = format!("{}.wsp", name.replace('.', "/"));
        want.entry(file)
            .or_default()
            .insert(ts.parse().unwrap(), value.parse().unwrap());
    }
    assert!(want.len() >= 9, "load and memory series: {:?}", want.keys());
    // collectd's timestamps may be a second ahead of our clock (it rounds); read the files as
    // of its latest one so that point is not "in the future".
    let latest = want.values().flat_map(|p| p.keys()).max().copied();
    let dump = whisper_dump(&data, latest.unwrap_or(0).max(unix_now()));
    for (file, points) in &want {
        let got = dump
            .get(file)
            .unwrap_or_else(|| panic!("{file} missing; files: {:?}", dump.keys()));
        let expected: Vec<(i64, String)> = points.iter().map(|(t, v)| (*t, bits(*v))).collect();
        assert_eq!(fetched(got, 0), expected, "{file}");
    }
    assert!(
        want[&"collectd/charcoal-test/load/load/shortterm.wsp".to_string()].len() >= 3,
        "several rounds"
    );
}

// ---------------------------------------------------------------------------------------------
// Python's whisper reads what charcoal wrote at SIGTERM

#[test]
fn python_whisper_reads_every_point_written_at_sigterm() {
    if !interop_enabled() {
        return;
    }
    whisper_python();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // A one-hour flush interval: every point is still in memory when SIGTERM arrives.
    let (server, addr) = start_charcoal(
        &data,
        &[
            ("CHARCOAL_STORE__DEFAULT_RETENTION", "10s:1h,1m:1d"),
            ("CHARCOAL_STORE__FLUSH_INTERVAL", "1h"),
        ],
    );
    // Half an hour ago, at a minute boundary: inside the 10 s archive.
    let b = (unix_now() - 1800) / 60 * 60;
    let mut text = String::new();
    let mut line = |s: String| text.push_str(&s);
    // Python float syntax (spec 12.2): exponents, inf/Infinity, digit-group underscores.
    line(format!("interop.int 42 {b}\n"));
    line(format!("interop.float 0.1 {b}\n"));
    line(format!("interop.exp -2.5e-3 {b}\n"));
    line(format!("interop.big 1e300 {b}\n"));
    line(format!("interop.inf inf {b}\n"));
    line(format!("interop.ninf -Infinity {b}\n"));
    line(format!("interop.under 1_000 {b}\n"));
    line(format!("interop.neg -17.25 {b}\n"));
    // NaN is dropped before anything else: no file.
    line(format!("interop.nan nan {b}\n"));
    // Same second: the last received wins.
    line(format!("interop.dup 1 {b}\ninterop.dup 2 {b}\n"));
    // Same 10 s interval: the later second wins, whatever the arrival order.
    line(format!(
        "interop.interval 7 {}\ninterop.interval 5 {b}\n",
        b + 5
    ));
    // A fractional timestamp counts as its whole second.
    line(format!("interop.fts 3 {}.7\n", b + 20));
    // Any run of whitespace separates fields; a trailing \r is stripped.
    line(format!("interop.ws \t 4  {b}  \r\n"));
    // Bad lines are skipped, their neighbours kept.
    line("this line is bad\ninterop.bad x 1\n\n".to_owned());
    // Six 10 s points in one minute roll up (average, xFilesFactor 0.5) to 3.5; two do not.
    for k in 0..6 {
        line(format!("interop.roll {} {}\n", k + 1, b + 10 * k));
    }
    line(format!(
        "interop.sparse 10 {b}\ninterop.sparse 20 {}\n",
        b + 10
    ));
    // A tagged series, stored where Carbon stores it in its readable layout
    // (TAG_HASH_FILENAMES = False): spec 12.4's example hash, dots as `_DOT_`.
    line(format!("cpu.load;host=a.b;dc=x 11 {b}\n"));
    // Timestamp -1 means now.
    let before = unix_now();
    line("interop.now 8 -1\n".to_owned());
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_nodelay(true).unwrap();
    conn.write_all(text.as_bytes()).unwrap();
    // A line split across two writes.
    conn.write_all(b"interop.split 9 ").unwrap();
    conn.flush().unwrap();
    std::thread::sleep(Duration::from_millis(50));
    conn.write_all(format!("{b}\n").as_bytes()).unwrap();
    drop(conn);
    // UDP: one datagram, two lines.
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .send_to(
            format!("interop.udp 5 {b}\ninterop.udp2 6 {b}\r\n").as_bytes(),
            addr,
        )
        .unwrap();
    stop_charcoal(server);
    let after = unix_now();

    let dump = whisper_dump(&data, unix_now());
    let single = |v: f64| vec![(b, bits(v))];
    let mut want: BTreeMap<&str, Vec<(i64, String)>> = BTreeMap::new();
    want.insert("interop/int.wsp", single(42.0));
    want.insert("interop/float.wsp", single(0.1));
    want.insert("interop/exp.wsp", single(-2.5e-3));
    want.insert("interop/big.wsp", single(1e300));
    want.insert("interop/inf.wsp", single(f64::INFINITY));
    want.insert("interop/ninf.wsp", single(f64::NEG_INFINITY));
    want.insert("interop/under.wsp", single(1000.0));
    want.insert("interop/neg.wsp", single(-17.25));
    want.insert("interop/dup.wsp", single(2.0));
    want.insert("interop/interval.wsp", single(7.0));
    want.insert("interop/fts.wsp", vec![(b + 20, bits(3.0))]);
    want.insert("interop/ws.wsp", single(4.0));
    want.insert(
        "interop/roll.wsp",
        (0..6).map(|k| (b + 10 * k, bits((k + 1) as f64))).collect(),
    );
    want.insert(
        "interop/sparse.wsp",
        vec![(b, bits(10.0)), (b + 10, bits(20.0))],
    );
    want.insert(
        "_tagged/659/3e2/cpu_DOT_load;dc=x;host=a_DOT_b.wsp",
        single(11.0),
    );
    want.insert("interop/split.wsp", single(9.0));
    want.insert("interop/udp.wsp", single(5.0));
    want.insert("interop/udp2.wsp", single(6.0));

    let mut names: Vec<&str> = want.keys().copied().collect();
    names.push("interop/now.wsp");
    names.sort_unstable();
    let files: Vec<&str> = dump.keys().map(String::as_str).collect();
    assert_eq!(files, names, "files written");
    for (file, points) in &want {
        let got = &dump[*file];
        assert_eq!(got["aggregationMethod"], "average", "{file}");
        assert_eq!(got["xFilesFactor"], 0.5, "{file}");
        assert_eq!(got["maxRetention"], 86_400, "{file}");
        assert_eq!(got["archives"][0]["secondsPerPoint"], 10, "{file}");
        assert_eq!(got["archives"][0]["points"], 360, "{file}");
        assert_eq!(got["archives"][1]["secondsPerPoint"], 60, "{file}");
        assert_eq!(got["archives"][1]["points"], 1440, "{file}");
        assert_eq!(&fetched(got, 0), points, "{file}: 10 s archive");
    }
    // The 1 min archive: whisper's rollup on write.
    assert_eq!(
        fetched(&dump["interop/roll.wsp"], 1),
        vec![(b, bits(3.5))],
        "roll-up of six points"
    );
    for file in ["interop/sparse.wsp", "interop/int.wsp"] {
        assert_eq!(
            fetched(&dump[file], 1),
            vec![],
            "{file}: below xFilesFactor"
        );
    }
    let now_points = fetched(&dump["interop/now.wsp"], 0);
    assert_eq!(now_points.len(), 1, "{now_points:?}");
    assert_eq!(now_points[0].1, bits(8.0));
    assert!(
        (before / 10 * 10..=after).contains(&now_points[0].0),
        "timestamp -1 stored at {}, sent between {before} and {after}",
        now_points[0].0
    );
}

// ---------------------------------------------------------------------------------------------
// carbon-cache 1.1.10 and charcoal fed the same lines

const SCHEMAS: &str = "\
[carbon]
pattern = ^carbon\\.
retentions = 60:90d

[tagged]
pattern = ^cpu\\.load;
retentions = 10s:10m,1m:1h

[interop]
pattern = ^interop\\.
retentions = 10s:1h,1m:1d

[default]
pattern = .*
retentions = 60s:1d
";

const AGGREGATION: &str = "\
[count]
pattern = \\.count$
xFilesFactor = 0
aggregationMethod = sum

[max]
pattern = ^interop\\.max\\.
xFilesFactor = 0.1
aggregationMethod = max

[min]
pattern = ^interop\\.min\\.
xFilesFactor = 0.1
aggregationMethod = min

[last]
pattern = ^interop\\.last\\.
aggregationMethod = last

[absmax]
pattern = ^interop\\.absmax\\.
xFilesFactor = 0
aggregationMethod = absmax

[avg_zero]
pattern = ^interop\\.avgzero\\.
xFilesFactor = 0.3
aggregationMethod = avg_zero

[default]
pattern = .*
xFilesFactor = 0.5
aggregationMethod = average
";

/// The lines both servers get: regular series, roll-ups with every aggregation method and
/// xFilesFactor boundaries, points old enough for the second archive only, a point too old for
/// any archive, a tagged series, Python float syntax. No two points of a metric share a
/// 10 s interval unless they arrive in time order (carbon-cache may write a metric in several
/// batches, and then the last batch wins an interval).
fn comparison_lines(now: i64) -> String {
    let b = (now - 1800) / 60 * 60;
    let mut s = String::new();
    for m in 0..20 {
        for k in 0..40 {
            let v = m as f64 * 1000.0 + k as f64 * 0.25;
            s.push_str(&format!("interop.series.m{m} {v} {}\n", b + 10 * k));
        }
    }
    // Every 20 s: 3 of 6 points per minute, exactly the 0.5 xFilesFactor.
    for k in 0..12 {
        s.push_str(&format!("interop.half {} {}\n", k * 7, b + 20 * k));
    }
    // Every 30 s: 2 of 6, below it.
    for k in 0..8 {
        s.push_str(&format!("interop.third {} {}\n", k, b + 30 * k));
    }
    for (name, values) in [
        ("interop.hits.count", [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
        ("interop.max.x", [3.0, -9.0, 12.5, 0.0, 7.0, 1.0]),
        ("interop.min.x", [3.0, -9.0, 12.5, 0.0, 7.0, 1.0]),
        ("interop.last.x", [3.0, -9.0, 12.5, 0.0, 7.0, 1.0]),
        ("interop.absmax.x", [3.0, -19.0, 12.5, 0.0, 7.0, 1.0]),
        ("interop.avgzero.x", [3.0, -9.0, 12.5, 0.0, 7.0, 1.0]),
    ] {
        // Minute one full, minute two with one point (xFilesFactor decides).
        for (k, v) in values.iter().enumerate() {
            s.push_str(&format!("{name} {v} {}\n", b + 10 * k as i64));
        }
        s.push_str(&format!("{name} 100 {}\n", b + 60));
    }
    // Older than the 10 s archive: straight into the 1 min archive.
    for k in 0..5 {
        s.push_str(&format!("interop.old {} {}\n", k + 1, now - 7200 + 60 * k));
    }
    // Older than every archive: dropped (the file is still created).
    s.push_str(&format!("interop.ancient 1 {}\n", now - 2 * 86_400));
    // Value and timestamp syntax.
    s.push_str(&format!(
        "interop.syntax.a 1_000.5 {b}\ninterop.syntax.b -2.5E-3 {b}\ninterop.syntax.c +.5 {b}\n\
         interop.syntax.d 5. {b}\ninterop.syntax.e -inf {b}\ninterop.syntax.f 1e308 {b}\n\
         interop.syntax.g 7 {}.9\ninterop.syntax.h \t8  {b} \r\ninterop.syntax.nan NaN {b}\n",
        b + 10
    ));
    // A tagged series in two tag orders (one series), ten minutes of 10 s points.
    for k in 0..30 {
        let tags = if k % 2 == 0 {
            "host=a.b;dc=x"
        } else {
            "dc=x;host=a.b"
        };
        s.push_str(&format!("cpu.load;{tags} {k} {}\n", now - 300 + 10 * k));
    }
    s
}

fn start_carbon_cache(dir: &Path, conf: &Path) -> (Peer, u16) {
    let venv = carbon_venv();
    let script = venv.join("bin/carbon-cache.py");
    assert!(
        script.exists(),
        "CHARCOAL_INTEROP=1 but {} is missing (run .ci/setup-carbon.sh)",
        script.display()
    );
    let storage = dir.join("storage");
    for sub in ["whisper", "log", "lists"] {
        std::fs::create_dir_all(storage.join(sub)).unwrap();
    }
    let port = peer_port();
    let carbon_conf = format!(
        "[cache]\nSTORAGE_DIR = {s}\nLOCAL_DATA_DIR = {s}/whisper\nWHITELISTS_DIR = {s}/lists\n\
         CONF_DIR = {c}\nLOG_DIR = {s}/log\nPID_DIR = {s}\nENABLE_LOGROTATION = False\nUSER =\n\
         MAX_CACHE_SIZE = inf\nMAX_UPDATES_PER_SECOND = inf\nMAX_CREATES_PER_MINUTE = inf\n\
         LINE_RECEIVER_INTERFACE = 127.0.0.1\nLINE_RECEIVER_PORT = {port}\n\
         ENABLE_UDP_LISTENER = False\nPICKLE_RECEIVER_INTERFACE = 127.0.0.1\n\
         PICKLE_RECEIVER_PORT = {p2}\nCACHE_QUERY_INTERFACE = 127.0.0.1\nCACHE_QUERY_PORT = {p3}\n\
         ENABLE_TAGS = False\nTAG_HASH_FILENAMES = False\nCARBON_METRIC_INTERVAL = 0\n\
         WHISPER_FALLOCATE_CREATE = False\n",
        s = storage.display(),
        c = conf.display(),
        p2 = peer_port(),
        p3 = peer_port(),
    );
    std::fs::write(conf.join("carbon.conf"), carbon_conf).unwrap();
    let mut peer = spawn_logged(
        "carbon-cache",
        Command::new(venv.join("bin/python"))
            .arg(&script)
            .arg(format!("--config={}", conf.join("carbon.conf").display()))
            .args(["--nodaemon", "--logfile=-", "start"])
            .env("GRAPHITE_ROOT", dir),
        dir.join("carbon.log"),
    );
    wait_until(30, "carbon-cache to listen", || {
        peer.assert_running();
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    (peer, port)
}

#[test]
fn carbon_cache_and_charcoal_write_the_same_files() {
    if !interop_enabled() {
        return;
    }
    whisper_python();
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("conf");
    std::fs::create_dir_all(&conf).unwrap();
    std::fs::write(conf.join("storage-schemas.conf"), SCHEMAS).unwrap();
    std::fs::write(conf.join("storage-aggregation.conf"), AGGREGATION).unwrap();
    let carbon_dir = dir.path().join("carbon");
    let (mut carbon, carbon_port) = start_carbon_cache(&carbon_dir, &conf);
    let ours = dir.path().join("charcoal");
    let schemas = conf.join("storage-schemas.conf");
    let aggregation = conf.join("storage-aggregation.conf");
    let (server, addr) = start_charcoal(
        &ours,
        &[
            ("CHARCOAL_STORE__SCHEMAS", path_str(&schemas)),
            ("CHARCOAL_STORE__AGGREGATION", path_str(&aggregation)),
        ],
    );
    let lines = comparison_lines(unix_now());
    for port in [addr.port(), carbon_port] {
        let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
        conn.write_all(lines.as_bytes()).unwrap();
        conn.shutdown(std::net::Shutdown::Write).unwrap();
    }
    stop_charcoal(server);
    let now = unix_now();
    let expected = whisper_dump(&ours, now);
    // 39 names: 20 series, half, third, six aggregation methods, old, ancient, eight syntax
    // cases (the NaN-only one makes no file) and one tagged series.
    assert_eq!(expected.len(), 39, "{:?}", expected.keys());

    // carbon-cache 1.1.10 may drop points still cached at SIGTERM, so wait until its files
    // hold what ours hold, or stop changing (its writer sleeps 1 s when its cache is empty).
    let carbon_root = carbon_dir.join("storage/whisper");
    let deadline = Instant::now() + Duration::from_secs(60);
    let theirs = loop {
        carbon.assert_running();
        let dump = whisper_dump(&carbon_root, now);
        // A difference only counts once carbon-cache has had the whole minute.
        if dump == expected || Instant::now() > deadline {
            break dump;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let log = carbon.log();
    carbon.stop();

    let names = |d: &BTreeMap<String, serde_json::Value>| d.keys().cloned().collect::<Vec<_>>();
    assert_eq!(
        names(&theirs),
        names(&expected),
        "file sets differ; carbon-cache log:\n{log}"
    );
    let differing: Vec<String> = expected
        .iter()
        .filter(|(k, v)| theirs.get(*k) != Some(*v))
        .map(|(k, v)| format!("{k}:\n  charcoal:     {v}\n  carbon-cache: {}", theirs[k]))
        .collect();
    assert!(
        differing.is_empty(),
        "{} of {} files differ:\n{}",
        differing.len(),
        expected.len(),
        differing.join("\n")
    );
    // Not vacuous: the files hold points, including roll-ups.
    assert_eq!(fetched(&expected["interop/series/m3.wsp"], 0).len(), 40);
    assert!(!fetched(&expected["interop/half.wsp"], 1).is_empty());
    assert!(!fetched(&expected["interop/old.wsp"], 1).is_empty());
}
