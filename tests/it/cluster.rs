//! One-machine scale-out (issue 8), with CHARCOAL_INTEROP=1: Debian's carbon-c-relay
//! consistently hashes Carbon plaintext over two Charcoal stores; a third Charcoal, a web front
//! end whose `cluster_servers` lists the stores, finds and graphs every metric sent, and each
//! store holds only its share. `.ci/setup-relay.sh` installs the relay.

use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::{KillOnDrop, Server, address, http_get, interop_enabled, path_str, peer_port};

/// How many distinct metrics go through the relay.
const METRICS: usize = 60;

fn relay_binary() -> PathBuf {
    std::env::var_os("CHARCOAL_RELAY")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/carbon-c-relay"))
}

/// A store node: Carbon receiver and its own web API (read by the front end).
struct Store {
    server: Server,
    carbon: String,
    web: String,
}

fn start_store(data: &Path) -> Store {
    let server = Server::start(
        &[
            "serve",
            "--data-dir",
            path_str(data),
            "--no-statsd",
            "--no-agent",
            "--carbon-listen",
            "127.0.0.1:0",
            "--web-listen",
            "127.0.0.1:0",
            "--munin-listen",
            "",
        ],
        &[("CHARCOAL_STORE__DEFAULT_RETENTION", "10s:1d")],
    );
    let carbon = address(&server.wait_for("carbon receiver listening"), "tcp");
    let web = address(&server.wait_for("web API listening"), "local_addr");
    Store {
        server,
        carbon,
        web,
    }
}

/// Starts carbon-c-relay on loopback `port`, hashing everything over the stores (`fnv1a_ch`).
fn start_relay(dir: &Path, port: u16, stores: &[&str]) -> (KillOnDrop, PathBuf) {
    let relay = relay_binary();
    assert!(
        relay.exists(),
        "CHARCOAL_INTEROP=1 but {} is missing (run .ci/setup-relay.sh)",
        relay.display()
    );
    let config = dir.join("relay.conf");
    let members: String = stores.iter().map(|s| format!("        {s}\n")).collect();
    std::fs::write(
        &config,
        format!(
            "listen\n    type linemode\n        127.0.0.1:{port} proto tcp\n    ;\n\
             cluster stores\n    fnv1a_ch\n{members}    ;\n\
             match *\n    send to stores\n    stop\n    ;\n"
        ),
    )
    .unwrap();
    let log = dir.join("relay.log");
    let child = std::process::Command::new(&relay)
        .args([
            "-f",
            path_str(&config),
            "-p",
            &port.to_string(),
            "-s",
            "-w",
            "1",
        ])
        .args(["-l", path_str(&log)])
        .stdin(std::process::Stdio::null())
        .spawn()
        .expect("start carbon-c-relay");
    (KillOnDrop(child), log)
}

fn relay_log(log: &Path) -> String {
    std::fs::read_to_string(log).unwrap_or_default()
}

fn connect_with_retry(addr: &str, log: &Path) -> TcpStream {
    for _ in 0..500 {
        if let Ok(s) = TcpStream::connect(addr) {
            return s;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("relay not listening on {addr}; log:\n{}", relay_log(log));
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn name(i: usize) -> String {
    format!("scale.out.m{i:03}")
}

/// Leaf paths under `scale.out` a node lists (`format=json`, `local=1`: its own data only).
fn leaves(web: &str) -> Vec<String> {
    let (status, body) = http_get(web, "/metrics/find?query=scale.out.*&format=json&local=1");
    assert_eq!(status, 200, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    let mut out: Vec<String> = json
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["is_leaf"] == true)
        .map(|n| n["path"].as_str().unwrap().to_owned())
        .collect();
    out.sort();
    out
}

/// Node names the front end's treejson find lists under `scale.out`.
fn front_find(web: &str) -> Vec<String> {
    let (status, body) = http_get(web, "/metrics/find?query=scale.out.*");
    assert_eq!(status, 200, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    let mut out: Vec<String> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|n| format!("scale.out.{}", n["text"].as_str().unwrap()))
        .collect();
    out.sort();
    out
}

/// `(target, non-null values)` of a render over the last ten minutes.
fn render(web: &str, target: &str) -> Vec<(String, Vec<f64>)> {
    let (status, body) = http_get(
        web,
        &format!("/render?target={target}&from=-10min&format=json"),
    );
    assert_eq!(status, 200, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    json.as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["target"].as_str().unwrap().to_owned(),
                s["datapoints"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter_map(|p| p[0].as_f64())
                    .collect(),
            )
        })
        .collect()
}

#[test]
fn relay_spreads_metrics_over_two_stores_and_one_front_end_reads_them_all() {
    if !interop_enabled() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let stores = [
        start_store(&dir.path().join("store-a")),
        start_store(&dir.path().join("store-b")),
    ];
    let peers: Vec<String> = stores
        .iter()
        .map(|s| format!("\"http://{}\"", s.web))
        .collect();
    let front = Server::start(
        &[
            "web",
            "--data-dir",
            path_str(&dir.path().join("front")),
            "--listen",
            "127.0.0.1:0",
        ],
        &[(
            "CHARCOAL_WEB__CLUSTER_SERVERS",
            &format!("[{}]", peers.join(",")),
        )],
    );
    let web = address(&front.wait_for("web API listening"), "local_addr");

    let port = peer_port();
    let carbons: Vec<&str> = stores.iter().map(|s| s.carbon.as_str()).collect();
    let (relay, log) = start_relay(dir.path(), port, &carbons);
    let mut tcp = connect_with_retry(&format!("127.0.0.1:{port}"), &log);
    let t = now() - 30;
    for i in 0..METRICS {
        writeln!(tcp, "{} {} {t}", name(i), i + 1).unwrap();
    }
    drop(tcp);

    // Everything sent becomes findable through the front end once the relay has forwarded it.
    let expected: Vec<String> = (0..METRICS).map(name).collect();
    let mut found = Vec::new();
    for _ in 0..600 {
        found = front_find(&web);
        if found == expected {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        found,
        expected,
        "front end find; relay log:\n{}",
        relay_log(&log)
    );

    // Each store holds only its share: disjoint, together everything, neither empty.
    let a = leaves(&stores[0].web);
    let b = leaves(&stores[1].web);
    assert!(
        !a.is_empty() && !b.is_empty(),
        "fnv1a_ch put everything on one store: {} + {}",
        a.len(),
        b.len()
    );
    assert!(a.iter().all(|n| !b.contains(n)), "a metric on both stores");
    let mut union = [a.clone(), b.clone()].concat();
    union.sort();
    assert_eq!(union, expected);
    // The front end's own store holds none of them.
    assert!(leaves(&web).is_empty());

    // Every metric is graphable through the front end, with the value sent.
    let series = render(&web, "scale.out.*");
    assert_eq!(series.len(), METRICS);
    for (i, (target, values)) in series.iter().enumerate() {
        assert_eq!(target, &name(i));
        assert_eq!(values, &vec![(i + 1) as f64], "{target}");
    }
    // Functions evaluate over the merged set: the sum spans both stores.
    let total = render(&web, "sumSeries(scale.out.*)");
    let sent: usize = (1..=METRICS).sum();
    assert_eq!(total[0].1, vec![sent as f64]);
    // A metric of each store alone, by exact name.
    for store in [&a, &b] {
        let one = render(&web, &store[0]);
        assert_eq!(one.len(), 1, "{}", store[0]);
    }

    drop(relay);
    for store in &stores {
        store.server.signal(libc::SIGTERM);
    }
    front.signal(libc::SIGTERM);
    assert!(front.wait().success());
    for store in stores {
        assert!(store.server.wait().success());
    }
}
