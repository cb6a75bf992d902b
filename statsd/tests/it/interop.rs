//! Interop (CHARCOAL_INTEROP=1; fails when a peer is missing): the same input sent to Etsy
//! StatsD 0.9.0 (graphite backend pointed at a capture listener) and to Charcoal, Graphite
//! lines compared flush by flush (sorted; timestamps and the volatile `processing_time`,
//! `graphiteStats.*`, `timestamp_lag` aside). Peers come from `.ci/setup-statsd.sh`:
//! `CHARCOAL_STATSD_NODE_DIR` (default /opt/charcoal-interop/node) and
//! `CHARCOAL_STATSD_PY_VENV` (default /opt/charcoal-interop/statsd-venv).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use charcoal_statsd::{Bin, Config, HistogramRule, LineListener, Sink, Sockets, Stats};
use tokio_util::sync::CancellationToken;

use crate::common::{Capture, pairs};

pub fn node_dir() -> PathBuf {
    std::env::var_os("CHARCOAL_STATSD_NODE_DIR").map_or_else(
        || PathBuf::from("/opt/charcoal-interop/node"),
        PathBuf::from,
    )
}

fn py_venv() -> PathBuf {
    std::env::var_os("CHARCOAL_STATSD_PY_VENV").map_or_else(
        || PathBuf::from("/opt/charcoal-interop/statsd-venv"),
        PathBuf::from,
    )
}

fn interop() -> bool {
    std::env::var_os("CHARCOAL_INTEROP").is_some_and(|v| v == "1")
}

#[derive(Clone)]
enum Step {
    /// Datagrams, one per element.
    Udp(Vec<Vec<u8>>),
    /// One TCP connection, one write.
    Tcp(Vec<u8>),
    /// A Python script using the `statsd` package; `PORT` in its environment.
    Python(&'static str),
    /// A Node script using `hot-shots`; `PORT` in its environment.
    Node(&'static str),
    /// Collect the next flush.
    Flush,
    /// An admin command (after the UDP input so far was processed); its reply is
    /// compared byte for byte, as a pseudo-flush `[("admin <cmd>", reply)]`.
    Admin(&'static str),
}

#[derive(Clone)]
struct Case {
    name: String,
    config: Config,
    steps: Vec<Step>,
}

type Flushes = Vec<Vec<(String, String)>>;

fn cfg(ms: u64) -> Config {
    Config {
        flush_interval: Duration::from_millis(ms),
        ..Config::default()
    }
}

/// Each line one datagram, then one flush, default config with a 1 s interval.
fn lines(name: &str, ls: &[&str]) -> Case {
    with(name, cfg(1000), ls)
}

fn with(name: &str, config: Config, ls: &[&str]) -> Case {
    Case {
        name: name.into(),
        config,
        steps: vec![
            Step::Udp(ls.iter().map(|l| l.as_bytes().to_vec()).collect()),
            Step::Flush,
        ],
    }
}

fn steps(name: &str, config: Config, steps: Vec<Step>) -> Case {
    Case {
        name: name.into(),
        config,
        steps,
    }
}

fn udp(ls: &[&str]) -> Step {
    Step::Udp(ls.iter().map(|l| l.as_bytes().to_vec()).collect())
}

/// The Etsy spelling of a config (only what differs from Etsy's defaults).
fn etsy_js(c: &Config) -> String {
    let d = Config::default();
    let q = |s: &str| serde_json::to_string(s).unwrap();
    let mut out = vec![format!("flushInterval: {}", c.flush_interval.as_millis())];
    if c.percent_threshold != d.percent_threshold {
        out.push(format!(
            "percentThreshold: {}",
            serde_json::to_string(&c.percent_threshold).unwrap()
        ));
    }
    let mut g = vec![format!("legacyNamespace: {}", c.legacy_namespace)];
    for (k, v, dv) in [
        ("globalPrefix", &c.global_prefix, &d.global_prefix),
        ("prefixCounter", &c.prefix_counter, &d.prefix_counter),
        ("prefixTimer", &c.prefix_timer, &d.prefix_timer),
        ("prefixGauge", &c.prefix_gauge, &d.prefix_gauge),
        ("prefixSet", &c.prefix_set, &d.prefix_set),
    ] {
        if v != dv {
            g.push(format!("{k}: {}", q(v)));
        }
    }
    if let Some(s) = &c.global_suffix {
        g.push(format!("globalSuffix: {}", q(s)));
    }
    out.push(format!("graphite: {{ {} }}", g.join(", ")));
    if c.prefix_stats != d.prefix_stats {
        out.push(format!("prefixStats: {}", q(&c.prefix_stats)));
    }
    if !c.flush_counts {
        out.push("flush_counts: false".into());
    }
    if c.delete_idle_stats {
        out.push("deleteIdleStats: true".into());
    }
    for (k, v) in [
        ("deleteCounters", c.delete_counters),
        ("deleteTimers", c.delete_timers),
        ("deleteGauges", c.delete_gauges),
        ("deleteSets", c.delete_sets),
    ] {
        if let Some(v) = v {
            out.push(format!("{k}: {v}"));
        }
    }
    if c.gauges_max_ttl != 1 {
        out.push(format!("gaugesMaxTTL: {}", c.gauges_max_ttl));
    }
    if !c.key_name_sanitize {
        out.push("keyNameSanitize: false".into());
    }
    if !c.calculated_timer_metrics.is_empty() {
        out.push(format!(
            "calculatedTimerMetrics: {}",
            serde_json::to_string(&c.calculated_timer_metrics).unwrap()
        ));
    }
    if !c.histogram.is_empty() {
        let rules: Vec<String> = c
            .histogram
            .iter()
            .map(|r| {
                let bins: Vec<String> = r
                    .bins
                    .iter()
                    .map(|b| match b {
                        Bin::Bound(x) => serde_json::to_string(x).unwrap(),
                        Bin::Text(t) => q(t),
                    })
                    .collect();
                format!(
                    "{{ metric: {}, bins: [{}] }}",
                    q(&r.metric),
                    bins.join(", ")
                )
            })
            .collect();
        out.push(format!("histogram: [{}]", rules.join(", ")));
    }
    out.join(",\n  ")
}

/// A loopback port for Etsy's statsd or a client library to bind, free for TCP and UDP. It
/// comes from below the kernel's ephemeral range (32768-60999 by default), so nothing in this
/// test process that binds port 0 or connects out can take it before the peer binds it, and
/// each port is handed out once.
fn peer_port() -> u16 {
    const FIRST: u32 = 20_000;
    const COUNT: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    // Start somewhere else in each run, so that test binaries run side by side rarely meet.
    let start = std::process::id().wrapping_mul(7919) % COUNT;
    let _ = NEXT.compare_exchange(u32::MAX, start, Ordering::Relaxed, Ordering::Relaxed);
    for _ in 0..COUNT {
        let port = (FIRST + NEXT.fetch_add(1, Ordering::Relaxed) % COUNT) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok()
            && UdpSocket::bind(("127.0.0.1", port)).is_ok()
        {
            return port;
        }
    }
    panic!("no free port in {FIRST}..{}", FIRST + COUNT);
}

fn run_client(step: &Step, port: u16) -> Result<(), String> {
    let (prog, arg, script): (PathBuf, &str, &str) = match step {
        Step::Python(s) => (py_venv().join("bin/python"), "-c", s),
        Step::Node(s) => (PathBuf::from("node"), "-e", s),
        _ => return Ok(()),
    };
    let out = Command::new(&prog)
        .arg(arg)
        .arg(script)
        .current_dir(std::env::temp_dir())
        .env("PORT", port.to_string())
        .env("NODE_PATH", node_dir().join("node_modules"))
        .output()
        .map_err(|e| format!("{}: {e} (run .ci/setup-statsd.sh)", prog.display()))?;
    if !out.status.success() {
        return Err(format!(
            "client failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

struct Etsy {
    child: Child,
}

impl Drop for Etsy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run_etsy(case: &Case) -> Result<Flushes, String> {
    let stats_js = node_dir().join("node_modules/statsd/stats.js");
    if !stats_js.exists() {
        return Err(format!(
            "{} missing: run .ci/setup-statsd.sh",
            stats_js.display()
        ));
    }
    let capture = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let graphite_port = capture.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for conn in capture.incoming() {
            let Ok(mut conn) = conn else { break };
            let mut s = String::new();
            let _ = conn.read_to_string(&mut s);
            if tx.send(s).is_err() {
                break;
            }
        }
    });
    let port = peer_port();
    let tcp_port = peer_port();
    let mgmt_port = peer_port();
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let conf = format!(
        "{{\n  servers: [ {{ server: './servers/udp', address: '127.0.0.1', port: {port} }}, {{ server: './servers/tcp', address: '127.0.0.1', port: {tcp_port} }} ],\n  mgmt_address: '127.0.0.1', mgmt_port: {mgmt_port},\n  graphiteHost: '127.0.0.1', graphitePort: {graphite_port},\n  automaticConfigReload: false,\n  {}\n}}\n",
        etsy_js(&case.config)
    );
    let path = dir.path().join("config.js");
    std::fs::write(&path, conf).map_err(|e| e.to_string())?;
    let child = Command::new("node")
        .arg(&stats_js)
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("node: {e}"))?;
    let _etsy = Etsy { child };
    let interval = case.config.flush_interval + Duration::from_secs(3);
    // Synchronise on the first (idle) flush: input then lands in the next interval.
    rx.recv_timeout(Duration::from_secs(10))
        .map_err(|_| "etsy statsd did not flush".to_string())?;
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut flushes = Vec::new();
    let mut since_flush = 0;
    for step in &case.steps {
        match step {
            Step::Udp(ds) => {
                for d in ds {
                    sock.send_to(d, ("127.0.0.1", port)).unwrap();
                }
                since_flush += ds.len();
            }
            Step::Tcp(bytes) => {
                let mut s =
                    TcpStream::connect(("127.0.0.1", tcp_port)).map_err(|e| e.to_string())?;
                s.write_all(bytes).unwrap();
            }
            Step::Python(_) | Step::Node(_) => {
                run_client(step, port)?;
                sock.send_to(SYNC_LINE.as_bytes(), ("127.0.0.1", port))
                    .unwrap();
                since_flush += 1;
                wait_for_sync(mgmt_port)?;
            }
            Step::Flush => {
                let text = rx
                    .recv_timeout(interval)
                    .map_err(|_| "etsy statsd stopped flushing".to_string())?;
                flushes.push(pairs(&text));
                since_flush = 0;
            }
            Step::Admin(cmd) => {
                // The reference handles UDP asynchronously: wait until its own count of
                // packets this interval covers what was sent.
                let want = format!("'statsd.packets_received': {since_flush}");
                let mut settled = false;
                for _ in 0..200 {
                    let c = admin_command(mgmt_port, "counters")?;
                    let at = c.find(&want).map(|i| i + want.len());
                    if at.is_some_and(|i| !c.as_bytes()[i].is_ascii_digit()) {
                        settled = true;
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                if !settled {
                    return Err("etsy statsd did not receive the datagrams".into());
                }
                flushes.push(vec![(
                    format!("admin {cmd}"),
                    admin_command(mgmt_port, cmd)?,
                )]);
            }
        }
    }
    Ok(flushes)
}

/// Sent after a client library's datagrams, to both servers: once the counter shows up in
/// the admin `counters` dump, everything the client sent before it was processed (one
/// socket, one receiving queue, in order). Both flushes then contain it alike.
const SYNC_LINE: &str = "harness.sync:1|c";

fn wait_for_sync(admin_port: u16) -> Result<(), String> {
    for _ in 0..1000 {
        if admin_command(admin_port, "counters")?.contains("'harness.sync': 1") {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Err("the sync datagram after the client's never arrived".into())
}

/// One admin command over a fresh connection; the reply up to its `END\n\n`.
fn admin_command(port: u16, cmd: &str) -> Result<String, String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("admin: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    s.write_all(cmd.as_bytes()).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    while !out.ends_with(b"END\n\n") {
        let n = s.read(&mut buf).map_err(|e| format!("admin {cmd}: {e}"))?;
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    String::from_utf8(out).map_err(|e| e.to_string())
}

fn run_ours(case: &Case) -> Result<Flushes, String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let udp = charcoal_statsd::bind_udp("127.0.0.1:0".parse().unwrap(), 1, 1 << 20)
            .map_err(|e| e.to_string())?;
        let port = udp[0].local_addr().unwrap().port();
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let tcp_addr = tcp.local_addr().unwrap();
        let admin = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let admin_port = admin.local_addr().unwrap().port();
        let capture = Arc::new(Capture(Mutex::new(Vec::new())));
        let sockets = Sockets {
            udp,
            tcp: vec![LineListener::Tcp(tcp)],
            admin: Some(admin),
        };
        let h = charcoal_statsd::spawn_unscheduled(
            case.config.clone(),
            sockets,
            vec![capture.clone() as Arc<dyn Sink>],
            CancellationToken::new(),
        )
        .map_err(|e| e.to_string())?;
        let stats = h.stats();
        h.flush_now().await; // the idle first flush, as on the Etsy side
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut flushes = Vec::new();
        let mut packets = 0u64;
        let mut lines_seen = Stats::get(&stats.lines);
        for step in &case.steps {
            match step {
                Step::Udp(ds) => {
                    for d in ds {
                        sock.send_to(d, ("127.0.0.1", port)).unwrap();
                        packets += 1;
                    }
                    crate::common::wait_packets(&stats, packets).await;
                }
                Step::Tcp(bytes) => {
                    let mut s = tokio::net::TcpStream::connect(tcp_addr).await.unwrap();
                    tokio::io::AsyncWriteExt::write_all(&mut s, bytes)
                        .await
                        .unwrap();
                    drop(s);
                    let want = lines_seen
                        + bytes
                            .split(|&b| b == b'\n')
                            .filter(|l| !l.is_empty())
                            .count() as u64
                        - u64::from(!bytes.ends_with(b"\n"));
                    for _ in 0..1000 {
                        if Stats::get(&stats.lines) >= want {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    packets = Stats::get(&stats.packets);
                }
                Step::Python(_) | Step::Node(_) => {
                    let s = step.clone();
                    tokio::task::spawn_blocking(move || run_client(&s, port))
                        .await
                        .unwrap()?;
                    sock.send_to(SYNC_LINE.as_bytes(), ("127.0.0.1", port))
                        .unwrap();
                    tokio::task::spawn_blocking(move || wait_for_sync(admin_port))
                        .await
                        .unwrap()?;
                    packets = Stats::get(&stats.packets);
                }
                Step::Flush => {
                    let f = h.flush_now().await.ok_or("no flush")?;
                    flushes.push(pairs(f.text()));
                }
                &Step::Admin(cmd) => {
                    let reply = tokio::task::spawn_blocking(move || admin_command(admin_port, cmd))
                        .await
                        .unwrap()?;
                    flushes.push(vec![(format!("admin {cmd}"), reply)]);
                }
            }
            lines_seen = Stats::get(&stats.lines);
        }
        h.shutdown().await.map_err(|e| e.to_string())?;
        Ok(flushes)
    })
}

fn diff(etsy: &Flushes, ours: &Flushes) -> Option<String> {
    if etsy == ours {
        return None;
    }
    let mut out = String::new();
    for (i, (e, o)) in etsy.iter().zip(ours.iter()).enumerate() {
        for x in e.iter().filter(|x| !o.contains(x)) {
            out.push_str(&format!("  flush {i}: etsy only  {} {}\n", x.0, x.1));
        }
        for x in o.iter().filter(|x| !e.contains(x)) {
            out.push_str(&format!("  flush {i}: ours only  {} {}\n", x.0, x.1));
        }
    }
    if etsy.len() != ours.len() {
        out.push_str(&format!(
            "  flush count etsy {} ours {}\n",
            etsy.len(),
            ours.len()
        ));
    }
    Some(out)
}

/// Runs cases on a few threads; returns failures.
fn run_all(cases: Vec<Case>) -> Vec<String> {
    let queue = Arc::new(Mutex::new(cases));
    let failures = Arc::new(Mutex::new(Vec::new()));
    let threads: Vec<_> = (0..6)
        .map(|_| {
            let (q, f) = (Arc::clone(&queue), Arc::clone(&failures));
            std::thread::spawn(move || {
                loop {
                    let Some(case) = q.lock().unwrap().pop() else {
                        break;
                    };
                    let res = run_etsy(&case).and_then(|e| run_ours(&case).map(|o| (e, o)));
                    match res {
                        Ok((e, o)) => {
                            if let Some(d) = diff(&e, &o) {
                                f.lock().unwrap().push(format!("{}:\n{d}", case.name));
                            }
                        }
                        Err(err) => f.lock().unwrap().push(format!("{}: {err}", case.name)),
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    Arc::try_unwrap(failures).unwrap().into_inner().unwrap()
}

fn conformance_cases() -> Vec<Case> {
    let mut v = vec![
        // Admin dumps list keys in JavaScript object order (spec §10.1, §13): array
        // indices first, ascending, then first insertion; zeroed keys keep their place,
        // deleted ones come back at the end; `del* x.*` matches in that order too.
        steps(
            "admin_dumps_in_object_order",
            cfg(1000),
            vec![
                udp(&[
                    "zeta:1|c",
                    "alpha:2|c\n10:1|c",
                    "2:1|c|@0.5",
                    "mid.x:3|c\nbeta:1|c\nmid.a:1|c",
                    "gz:1|g",
                    "ga:2|g\n5:1|g\n007:1|g",
                    "tz:1|ms",
                    "ta:2|ms\nta:3|ms",
                ]),
                Step::Admin("counters"),
                Step::Admin("timers"),
                Step::Admin("gauges"),
                Step::Flush,
                udp(&["new:1|c", "alpha:1|c", "4294967295:1|c\n4294967294:1|c"]),
                Step::Admin("counters"),
                Step::Admin("delcounters mid.* beta"),
                udp(&["beta:1|c"]),
                Step::Admin("counters"),
                Step::Admin("deltimers tz"),
                Step::Admin("timers"),
                Step::Flush,
            ],
        ),
        steps(
            "admin_dumps_after_delete_counters",
            Config {
                delete_counters: Some(true),
                ..cfg(1000)
            },
            vec![
                udp(&["zeta:1|c", "alpha:1|c"]),
                Step::Flush,
                udp(&["alpha:1|c", "omega:1|c", "zeta:1|c"]),
                Step::Admin("counters"),
                Step::Flush,
            ],
        ),
        // Counters and sample rates (spec §17.1-15)
        lines("rate_0.1", &["a:1|c|@0.1"]),
        with("rate_0.1_interval_2s", cfg(2000), &["a:1|c|@0.1"]),
        lines("rate_2", &["a:1|c|@2"]),
        lines("rate_0.3", &["a:1|c|@0.3"]),
        lines("rate_1e-1", &["a:1|c|@1e-1"]),
        lines("rate_5e-1", &["a:1|c|@5e-1"]),
        lines("rate_.5", &["a:1|c|@.5"]),
        lines("rate_0", &["a:1|c|@0"]),
        lines("rate_0x10", &["a:1|c|@0x10"]),
        lines("rate_extra_field", &["a:1|c|@0.5|extra"]),
        lines("rate_empty_field", &["a:1|c|"]),
        lines("rate_two_dots", &["a:1|c|@1.5.", "b:1|c|@-1", "c:1|c|0.5"]),
        lines(
            "value_hex_exp",
            &["a:0x10|c", "b:1e3|c", "c:0o17|c", "d:0b101|c"],
        ),
        lines("value_spaces", &["a: 5|c", "b:  |c", "c:\t7\t|c"]),
        lines(
            "value_dots_signs",
            &["a:.5|c", "b:5.|c", "c:-3|c", "d:-0|c", "e:+4|c"],
        ),
        lines(
            "bad_values",
            &[
                "a:|c",
                "a|c",
                "a",
                "a:NaN|c",
                "a:1_000|c",
                "a:abc|g",
                "a:+0x10|g",
                "a:inf|c",
            ],
        ),
        lines(
            "unknown_types",
            &["a:1|C", "b:5|h", "c:5|d", "d:1|MS", "e:2|foo"],
        ),
        lines("carriage_return", &["a:1|c\r", "b:3|ms\r"]),
        lines(
            "multi_segments",
            &["a:1|c:2|c", "b:1:2|c", "c:1:2:3|d", "d:1|c:2|g"],
        ),
        lines(
            "number_formatting",
            &[
                "a:1e21|c",
                "b:123456789012345678901234|c",
                "c:0.0000001|c",
                "d:1e400|c",
                "e:Infinity|c",
                "f:-Infinity|c",
            ],
        ),
        lines("float_sum", &["a:0.1|c\na:0.2|c"]),
        lines("empty_lines", &["e:1|c\n\ne:1|c\n", "\n", ""]),
        lines(
            "counter_inf_nan",
            &["a:Infinity|c", "a:-Infinity|c", "a:1|c"],
        ),
        // Timers
        lines("timer_three", &["t:100|ms", "t:200|ms", "t:300|ms"]),
        lines("timer_segments", &["t:1|ms:2|ms:3|ms"]),
        lines("timer_sampled", &["t:100|ms|@0.5"]),
        lines("timer_rate_0", &["t:1|ms|@0"]),
        lines(
            "timer_negative",
            &["t:-5|ms", "u:-5| ms", "v:0x1F|ms", "w:-0|ms"],
        ),
        lines("timer_two", &["t:1|ms", "t:2|ms"]),
        lines(
            "timer_fractions",
            &[
                "t:0.1|ms",
                "t:0.7|ms",
                "t:0.3|ms",
                "t:1e-3|ms",
                "t:12.25|ms",
            ],
        ),
        lines("timer_infinity", &["t:Infinity|ms", "t:1|ms"]),
        // Gauges
        lines("gauge_new_negative", &["g:-5|g"]),
        lines("gauge_deltas", &["g:10|g", "g:-3|g", "g:+1|g"]),
        lines("gauge_zero_delta", &["g:0|g", "g:-5|g"]),
        lines(
            "gauge_misc",
            &["a:1|g|@0.1", "b:-0|g", "c:Infinity|g", "d: -5|g", "e:1e3|g"],
        ),
        lines(
            "gauge_nan",
            &[
                "g:Infinity|g",
                "g:-Infinity|g",
                "h:Infinity|g",
                "h:-Infinity|g",
                "h:+2|g",
            ],
        ),
        // Sets
        lines("set_members", &["s:a|s", "s:b|s", "s:a|s"]),
        lines("set_empty_value", &["s:|s", "t:|s", "t:0|s"]),
        lines(
            "set_misc",
            &["s:1|s|@0.5", "t:foo bar|s", "u:1|s", "u:01|s", "u:1.0|s"],
        ),
        // Names and tags
        lines("sanitise_spaces", &["a b:1|c", "a\tb:1|c", "a  \t b:1|c"]),
        lines("sanitise_chars", &["a/b:1|c", "a+b!$%^&*()x:1|c", ":1|c"]),
        lines(
            "sanitise_utf8",
            &["\u{fc}n\u{ef}x:1|c", "caf\u{e9}.latte:2|c", "a\u{a0}b:1|c"],
        ),
        Case {
            name: "invalid_utf8".into(),
            config: cfg(1000),
            steps: vec![
                Step::Udp(vec![
                    b"in\xffva\xc3lid:1|c".to_vec(),
                    b"ok\xe2\x82:2|c".to_vec(),
                ]),
                Step::Flush,
            ],
        },
        lines("tags_basic", &["tg:1|c|#env:prod,host:h1"]),
        lines(
            "tags_odd",
            &[
                "a:1|c|#a:b:c",
                "b:1|c|#novalue",
                "c:1|c|#a;b:c",
                "d:1|c|#",
                "e:1|c|#,",
                "f:1|c|#a:b|#c:d",
            ],
        ),
        lines("tags_rate_order", &["a:1|c|@0.5|#x:y", "b:1|c|#x:y|@0.5"]),
        lines("tags_timer", &["tt:5|ms|#k:v"]),
        lines(
            "tags_in_name",
            &["tagd;b=c:1|c", "tags:1|c|#z:1,a:2", "tags:1|c|#a:2,z:1"],
        ),
        with(
            "tags_non_legacy",
            Config {
                legacy_namespace: false,
                ..cfg(1000)
            },
            &["foo+bar:250|c|#tag1:val;1,tag3:val3,tag2:val2"],
        ),
        with(
            "no_sanitise",
            Config {
                key_name_sanitize: false,
                ..cfg(1000)
            },
            &["a b/c*:1|c|#k:v w,x y:z", "d e:1|ms", "f/g:2|g"],
        ),
        // Namespaces
        with(
            "non_legacy",
            Config {
                legacy_namespace: false,
                ..cfg(1000)
            },
            &["cnt:3|c", "gg:4|g", "st:x|s", "tm:5|ms"],
        ),
        with(
            "legacy_prefix_suffix",
            Config {
                global_prefix: "ignored".into(),
                global_suffix: Some("sfx".into()),
                prefix_stats: "ps".into(),
                flush_counts: false,
                ..cfg(1000)
            },
            &["cnt:3|c", "tagc:1|c|#k:v", "gg:4|g", "tm:10|ms", "st:x|s"],
        ),
        with(
            "prefix_table",
            Config {
                legacy_namespace: false,
                global_prefix: "pre".into(),
                prefix_counter: String::new(),
                prefix_timer: "tmr".into(),
                prefix_gauge: "gau".into(),
                prefix_set: String::new(),
                global_suffix: Some("host1".into()),
                prefix_stats: "mystatsd".into(),
                ..cfg(1000)
            },
            &["cnt:3|c", "tm:10|ms", "gg:4|g", "st:x|s", "tagc:1|c|#k:v"],
        ),
        with(
            "empty_global_prefix",
            Config {
                legacy_namespace: false,
                global_prefix: String::new(),
                ..cfg(1000)
            },
            &["cnt:3|c", "tm:10|ms", "gg:4|g", "st:x|s"],
        ),
        lines("idle", &[]),
        lines("bad_line_counted", &["a_bad_test_value|z"]),
        lines(
            "client_internal_counter",
            &["statsd.bad_lines_seen:5|c", "statsd.packets_received:1|c"],
        ),
        lines(
            "dogstatsd_in_etsy_mode",
            &[
                "_e{5,4}:title|text|#a:b",
                "_sc|svc|0|#a:b",
                "a:1|c|T1700000000",
                "b:1|c|c:abc",
            ],
        ),
        // Percent thresholds and histograms
        {
            let mut c = with(
                "thresholds_ten",
                Config {
                    percent_threshold: vec![
                        90.0, 50.0, -10.0, 99.9, 0.0, 100.0, -100.0, 150.0, -99.9,
                    ],
                    ..cfg(1000)
                },
                &[],
            );
            c.steps[0] = Step::Udp((1..=10).map(|i| format!("t:{i}|ms").into_bytes()).collect());
            c
        },
        with(
            "thresholds_one",
            Config {
                percent_threshold: vec![90.0, 50.0, -10.0, 99.9, 0.0, 100.0, -100.0, 150.0, -99.9],
                ..cfg(1000)
            },
            &["t:7|ms"],
        ),
        with(
            "thresholds_none",
            Config {
                percent_threshold: vec![],
                ..cfg(1000)
            },
            &["t:7|ms", "t:8|ms"],
        ),
        {
            let mut c = with(
                "thresholds_many_samples",
                Config {
                    percent_threshold: vec![95.0, 99.0, -5.0, 0.5],
                    ..cfg(1000)
                },
                &[],
            );
            c.steps[0] = Step::Udp(
                (0..200)
                    .map(|i| format!("t:{}|ms", (i * 37) % 101).into_bytes())
                    .collect(),
            );
            c
        },
        with(
            "histogram_render",
            Config {
                percent_threshold: vec![90.0, 50.0],
                histogram: vec![HistogramRule {
                    metric: "render".into(),
                    bins: vec![
                        Bin::Bound(0.01),
                        Bin::Bound(0.1),
                        Bin::Bound(1.0),
                        Bin::Bound(10.0),
                    ],
                }],
                ..cfg(1000)
            },
            &[
                "render.x:0.005|ms",
                "render.x:0.05|ms",
                "render.x:0.5|ms",
                "render.x:5|ms",
                "render.x:50|ms",
                "render.x:0.01|ms",
            ],
        ),
        with(
            "histogram_substring_inf",
            Config {
                histogram: vec![
                    HistogramRule {
                        metric: "skip".into(),
                        bins: vec![],
                    },
                    HistogramRule {
                        metric: "foo".into(),
                        bins: vec![Bin::Bound(50.0), Bin::Text("inf".into())],
                    },
                ],
                ..cfg(1000)
            },
            &["hfoo:1|ms", "hfoo:60|ms", "hfoo:500|ms", "skipfoo:1|ms"],
        ),
        with(
            "calculated_timer_metrics",
            Config {
                legacy_namespace: false,
                global_prefix: String::new(),
                calculated_timer_metrics: vec![
                    "count".into(),
                    "upper_percent".into(),
                    "histogram".into(),
                ],
                percent_threshold: vec![90.0, 99.9],
                ..cfg(1000)
            },
            &["tm:5|ms", "tm:15|ms"],
        ),
        // Across flushes
        steps(
            "idle_metrics_persist",
            cfg(1000),
            vec![
                udp(&["cnt:3|c", "tm:5|ms", "gg:4|g", "st:x|s"]),
                Step::Flush,
                Step::Flush,
            ],
        ),
        steps(
            "delete_idle_stats",
            Config {
                delete_idle_stats: true,
                ..cfg(1000)
            },
            vec![
                udp(&["cnt:3|c", "tm:5|ms", "gg:4|g", "st:x|s"]),
                Step::Flush,
                udp(&["gg:+1|g"]),
                Step::Flush,
                Step::Flush,
            ],
        ),
        steps(
            "gauge_ttl",
            Config {
                delete_gauges: Some(true),
                gauges_max_ttl: 3,
                ..cfg(1000)
            },
            vec![
                udp(&["cnt:3|c", "tm:5|ms", "gg:4|g", "st:x|s"]),
                Step::Flush,
                udp(&["gg:+1|g"]),
                Step::Flush,
                Step::Flush,
                Step::Flush,
                Step::Flush,
            ],
        ),
        steps(
            "explicit_false_wins",
            Config {
                delete_idle_stats: true,
                delete_counters: Some(false),
                delete_sets: Some(false),
                ..cfg(1000)
            },
            vec![
                udp(&["cnt:3|c", "tm:5|ms", "gg:4|g", "st:x|s"]),
                Step::Flush,
                udp(&["gg:+1|g"]),
                Step::Flush,
                Step::Flush,
            ],
        ),
        steps(
            "delete_counters_keeps_internal",
            Config {
                delete_counters: Some(true),
                ..cfg(1000)
            },
            vec![
                udp(&["app.bad_lines_seen_x:1|c", "other:1|c"]),
                Step::Flush,
                Step::Flush,
            ],
        ),
        steps(
            "timer_then_idle",
            cfg(1000),
            vec![udp(&["t:1|ms|@0.1"]), Step::Flush, Step::Flush],
        ),
        // Transport
        steps(
            "tcp_lines",
            cfg(1000),
            vec![
                Step::Tcp(b"tc:1|c\ntc:2|c\ntt:5|ms\n".to_vec()),
                Step::Flush,
            ],
        ),
        steps(
            "tcp_ascii",
            cfg(1000),
            vec![
                Step::Tcp(b"\xc3\xbcn\xc3\xafx:1|c\n".to_vec()),
                udp(&["\u{fc}n\u{ef}x:1|c"]),
                Step::Flush,
            ],
        ),
        steps(
            "tcp_partial_line",
            cfg(1000),
            vec![Step::Tcp(b"a:1|c\nb:2|c".to_vec()), Step::Flush],
        ),
    ];
    v.retain(|c| !c.name.is_empty());
    v
}

#[test]
fn etsy_conformance() {
    if !interop() {
        return;
    }
    let cases = conformance_cases();
    let n = cases.len();
    assert!(n >= 60, "only {n} cases");
    let failures = run_all(cases);
    eprintln!(
        "etsy conformance: {} passed, {} failed",
        n - failures.len(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {n} cases differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

const PYTHON_CLIENT: &str = r#"
import os, random, statsd
# The client samples with random(); a fixed seed makes both runs send the same packets.
random.seed(7)
c = statsd.StatsClient('127.0.0.1', int(os.environ['PORT']), prefix='py')
c.incr('hits')
c.incr('hits', 5)
c.incr('sampled', 1, rate=0.5)
c.decr('left', 2)
c.timing('latency', 320)
c.timing('latency', 12.5)
c.gauge('temp', 70)
c.gauge('temp', -3, delta=True)
c.gauge('temp', 2, delta=True)
c.set('users', 'alice')
c.set('users', 'bob')
c.set('users', 'alice')
with c.pipeline() as p:
    p.incr('piped')
    p.timing('piped_t', 4)
    p.gauge('piped_g', 1.5)
"#;

const NODE_CLIENT: &str = r#"
const StatsD = require('hot-shots');
const c = new StatsD({ host: '127.0.0.1', port: Number(process.env.PORT), prefix: 'node.', errorHandler: (e) => { console.error(e); process.exit(1); } });
c.increment('hits');
c.increment('hits', 4);
c.decrement('left', 2);
c.timing('latency', 42);
c.histogram('hist', 7);
c.distribution('dist', 9);
c.gauge('temp', 21.5);
c.set('users', 'alice');
c.unique('users', 'bob');
c.increment('tagged', 1, ['env:prod', 'host:h1']);
c.timing('tagged_t', 3, { region: 'eu' });
c.increment('sampled', 1, 0.99999);
c.close(() => process.exit(0));
"#;

#[test]
fn client_libraries_against_etsy_and_charcoal() {
    if !interop() {
        return;
    }
    let cases = vec![
        steps(
            "python_statsd",
            cfg(2000),
            vec![Step::Python(PYTHON_CLIENT), Step::Flush],
        ),
        steps(
            "node_hot_shots",
            cfg(2000),
            vec![Step::Node(NODE_CLIENT), Step::Flush],
        ),
    ];
    let failures = run_all(cases);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The same clients against Charcoal alone, with the values checked (from the clients'
/// documented wire format and Etsy's semantics).
#[test]
fn client_libraries_values() {
    if !interop() {
        return;
    }
    let case = steps(
        "python_values",
        cfg(1000),
        vec![Step::Python(PYTHON_CLIENT), Step::Flush],
    );
    let f = run_ours(&case).unwrap();
    let get = |n: &str| f[0].iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    assert_eq!(get("stats_counts.py.hits").as_deref(), Some("6"));
    assert_eq!(get("stats_counts.py.left").as_deref(), Some("-2"));
    assert_eq!(get("stats.timers.py.latency.upper").as_deref(), Some("320"));
    assert_eq!(get("stats.gauges.py.temp").as_deref(), Some("69"));
    assert_eq!(get("stats.sets.py.users.count").as_deref(), Some("2"));
    assert_eq!(get("stats_counts.py.piped").as_deref(), Some("1"));
}
