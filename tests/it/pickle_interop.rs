//! The pickle receiver fed by the real senders (only with `CHARCOAL_INTEROP=1`; then a missing
//! peer fails the test): carbon-relay 1.1.10 forwarding plaintext it receives as pickles
//! (`.ci/setup-carbon.sh`), Etsy StatsD 0.9.0's graphite backend with
//! `graphiteProtocol: "pickle"` (`.ci/setup-statsd.sh`), and Python's own `pickle.dumps` in
//! every protocol, 0 to 5. Files are read back with Python's whisper.

use std::io::Write;
use std::net::{TcpStream, UdpSocket};
use std::path::Path;
use std::process::Command;

use crate::carbon_interop::{
    bits, carbon_venv, fetched, spawn_logged, start_charcoal, start_etsy_statsd, stop_charcoal,
    unix_now, wait_until, whisper_dump, whisper_python,
};
use crate::support::{Server, address, interop_enabled, peer_port};

/// `charcoal carbon` with the pickle receiver on a free port; returns it and that port.
fn start_with_pickle(data: &Path, env: &[(&str, &str)]) -> (Server, u16) {
    let mut env = env.to_vec();
    env.push(("CHARCOAL_CARBON__PICKLE_LISTEN", "127.0.0.1:0"));
    let (server, _) = start_charcoal(data, &env);
    let pickle = address(&server.wait_for("carbon receiver listening"), "pickle");
    let port = pickle.rsplit_once(':').unwrap().1.parse().unwrap();
    (server, port)
}

/// The stored points of each file, by relative path, read as of a second from now (senders
/// such as Etsy StatsD round their timestamps up to a second ahead of our clock).
fn values(data: &Path) -> std::collections::BTreeMap<String, Vec<(i64, String)>> {
    whisper_dump(data, unix_now() + 1)
        .iter()
        .map(|(file, dump)| (file.clone(), fetched(dump, 0)))
        .collect()
}

#[test]
fn carbon_relay_forwards_pickles_to_charcoal() {
    if !interop_enabled() {
        return;
    }
    whisper_python();
    let venv = carbon_venv();
    let script = venv.join("bin/carbon-relay.py");
    assert!(
        script.exists(),
        "CHARCOAL_INTEROP=1 but {} is missing (run .ci/setup-carbon.sh)",
        script.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (server, pickle_port) =
        start_with_pickle(&data, &[("CHARCOAL_STORE__DEFAULT_RETENTION", "10s:1h")]);

    // carbon-relay's default destination protocol is pickle.
    let relay_dir = dir.path().join("relay");
    let storage = relay_dir.join("storage");
    std::fs::create_dir_all(storage.join("log")).unwrap();
    let conf = relay_dir.join("carbon.conf");
    // Required by carbon's start-up even in a relay.
    std::fs::write(
        relay_dir.join("storage-schemas.conf"),
        "[all]\npattern = .*\nretentions = 10s:1h\n",
    )
    .unwrap();
    let line_port = peer_port();
    std::fs::write(
        &conf,
        format!(
            "[relay]\nSTORAGE_DIR = {s}\nLOG_DIR = {s}/log\nPID_DIR = {s}\nUSER =\n\
             LINE_RECEIVER_INTERFACE = 127.0.0.1\nLINE_RECEIVER_PORT = {line_port}\n\
             PICKLE_RECEIVER_INTERFACE = 127.0.0.1\nPICKLE_RECEIVER_PORT = {p2}\n\
             ENABLE_UDP_LISTENER = False\nRELAY_METHOD = consistent-hashing\n\
             DESTINATIONS = 127.0.0.1:{pickle_port}:a\nDESTINATION_PROTOCOL = pickle\n\
             CARBON_METRIC_INTERVAL = 0\nENABLE_LOGROTATION = False\n",
            s = storage.display(),
            p2 = peer_port(),
        ),
    )
    .unwrap();
    let mut relay = spawn_logged(
        "carbon-relay",
        Command::new(venv.join("bin/python"))
            .arg(&script)
            .arg(format!("--config={}", conf.display()))
            .args(["--nodaemon", "--logfile=-", "start"])
            .env("GRAPHITE_ROOT", &relay_dir),
        relay_dir.join("relay.log"),
    );
    wait_until(30, "carbon-relay to listen", || {
        relay.assert_running();
        TcpStream::connect(("127.0.0.1", line_port)).is_ok()
    });

    let now = unix_now();
    let ts = now - now % 10 - 60;
    let mut lines = String::new();
    for i in 0..200 {
        lines.push_str(&format!("relay.m{i} {}.5 {ts}\n", i));
    }
    // "-1 = now" and a NaN (dropped) pass through the relay too.
    lines.push_str("relay.now 9 -1\nrelay.nan nan 1700000000\n");
    let mut conn = TcpStream::connect(("127.0.0.1", line_port)).unwrap();
    conn.write_all(lines.as_bytes()).unwrap();
    drop(conn);
    wait_until(60, "the relayed points in our files", || {
        relay.assert_running();
        (0..200).all(|i| data.join(format!("relay/m{i}.wsp")).exists())
            && data.join("relay/now.wsp").exists()
    });
    relay.stop();
    stop_charcoal(server);

    let stored = values(&data);
    for i in 0..200 {
        let points = &stored[&format!("relay/m{i}.wsp")];
        assert_eq!(points, &[(ts, bits(i as f64 + 0.5))], "relay.m{i}");
    }
    let (when, value) = &stored["relay/now.wsp"][0];
    assert_eq!(*value, bits(9.0));
    assert!((now - 10..=unix_now() + 10).contains(when), "{when}");
    assert!(!stored.contains_key("relay/nan.wsp"));
}

#[test]
fn etsy_statsd_pickle_backend_feeds_charcoal() {
    if !interop_enabled() {
        return;
    }
    whisper_python();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (server, pickle_port) =
        start_with_pickle(&data, &[("CHARCOAL_STORE__DEFAULT_RETENTION", "1s:10m")]);
    // The plaintext port is one nobody listens on: everything must come by pickle.
    let graphite =
        format!("graphitePort: 1, graphitePicklePort: {pickle_port}, graphiteProtocol: 'pickle'");
    let (mut etsy, statsd_port) = start_etsy_statsd(dir.path(), &data, &graphite);
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .send_to(
            b"pickled.count:5|c\npickled.count:3|c\npickled.g:2.25|g",
            ("127.0.0.1", statsd_port),
        )
        .unwrap();
    let expected = [
        ("stats_counts/pickled/count.wsp", 8.0),
        ("stats/pickled/count.wsp", 4.0),
        ("stats/gauges/pickled/g.wsp", 2.25),
    ];
    wait_until(30, "etsy statsd's pickled flush of our metrics", || {
        etsy.assert_running();
        expected.iter().all(|(f, _)| data.join(f).exists())
    });
    etsy.stop();
    stop_charcoal(server);
    let stored = values(&data);
    for (file, value) in expected {
        let points = &stored[file];
        assert_eq!(points.len(), 1, "{file}: {points:?}");
        assert_eq!(points[0].1, bits(value), "{file}");
    }
}

/// Sends one frame per pickle protocol, each a list of (path, (timestamp, value)) with ints,
/// floats, strings and a repeated name (memo), as Python's pickle.dumps writes them.
const SEND_PICKLES: &str = r#"
import pickle, socket, struct, sys
port, ts = int(sys.argv[1]), int(sys.argv[2])
with socket.create_connection(("127.0.0.1", port)) as s:
    for proto in range(0, pickle.HIGHEST_PROTOCOL + 1):
        name = "py.p%d.same" % proto
        points = [(name, (ts, proto + 0.5)), (name, (ts - 1, proto)),
                  ("py.p%d.text" % proto, (str(ts), " %d.25 " % proto)),
                  ("py.p%d.big" % proto, (ts, 2 ** 40 + proto))]
        payload = pickle.dumps(points, protocol=proto)
        s.sendall(struct.pack("!L", len(payload)) + payload)
print(pickle.HIGHEST_PROTOCOL)
"#;

#[test]
fn python_pickles_of_every_protocol_are_read() {
    if !interop_enabled() {
        return;
    }
    let python = whisper_python();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (server, pickle_port) =
        start_with_pickle(&data, &[("CHARCOAL_STORE__DEFAULT_RETENTION", "1s:10m")]);
    let ts = unix_now() - 30;
    let out = Command::new(&python)
        .args([
            "-c",
            SEND_PICKLES,
            &pickle_port.to_string(),
            &ts.to_string(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let highest: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert!(
        highest >= 5,
        "python's pickle only goes to protocol {highest}"
    );
    wait_until(30, "every protocol's points in our files", || {
        (0..=highest).all(|p| data.join(format!("py/p{p}/big.wsp")).exists())
    });
    stop_charcoal(server);
    let stored = values(&data);
    for p in 0..=highest {
        let f = f64::from(p);
        assert_eq!(
            stored[&format!("py/p{p}/same.wsp")],
            [(ts - 1, bits(f)), (ts, bits(f + 0.5))],
            "protocol {p}"
        );
        assert_eq!(stored[&format!("py/p{p}/text.wsp")], [(ts, bits(f + 0.25))]);
        assert_eq!(
            stored[&format!("py/p{p}/big.wsp")],
            [(ts, bits(2f64.powi(40) + f))]
        );
    }
}
