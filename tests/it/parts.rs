//! Each part run alone: `charcoal statsd` from an Etsy config file flushing to Carbon,
//! `charcoal agent` sending to Carbon, `charcoal web` over an existing data directory.

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, UdpSocket};
use std::sync::mpsc;
use std::time::Duration;

use crate::support::{Server, address, http_get, path_str, peer_port, run_ok};

/// A Carbon listener that forwards every received line to a channel.
fn carbon_capture() -> (String, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for conn in listener.incoming().map_while(Result::ok) {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(conn).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, rx)
}

fn wait_for_line(rx: &mpsc::Receiver<String>, prefix: &str) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(line) if line.starts_with(prefix) => return line,
            Ok(_) => {}
            Err(_) => break,
        }
    }
    panic!("no line starting with {prefix:?}");
}

#[test]
fn statsd_runs_from_an_etsy_config_file() {
    let (carbon, lines) = carbon_capture();
    let (host, port) = carbon.rsplit_once(':').unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.js");
    let write_config = |statsd_port: u16, mgmt_port: u16, flush_ms: u32, percent: u32| {
        std::fs::write(
            &config,
            format!(
                "/* Etsy's exampleConfig.js style */\n{{\n  graphitePort: {port},\n  graphiteHost: \"{host}\",\n  \
                 port: {statsd_port}, address: '127.0.0.1',\n  mgmt_address: '127.0.0.1', mgmt_port: {mgmt_port},\n  \
                 flushInterval: {flush_ms},\n  backends: [ \"./backends/graphite\" ],\n  \
                 graphite: {{ legacyNamespace: false }},\n  percentThreshold: [{percent}],\n  \
                 automaticConfigReload: false,\n}}\n"
            ),
        )
        .unwrap()
    };
    // Etsy reads port 0 as its default 8125: give free ports.
    let (statsd_port, mgmt_port) = (peer_port(), peer_port());
    write_config(statsd_port, mgmt_port, 500, 95);
    let server = Server::start(&["statsd", "--etsy-config", path_str(&config)], &[]);
    let statsd = address(&server.wait_for("statsd listening"), "udp");
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .send_to(b"parts.hits:5|c\nparts.time:10|ms", &statsd)
        .unwrap();
    // legacyNamespace false: counters under stats.counters.<name>.count.
    let count = wait_for_line(&lines, "stats.counters.parts.hits.count ");
    assert!(
        count.starts_with("stats.counters.parts.hits.count 5 "),
        "{count}"
    );
    let upper = wait_for_line(&lines, "stats.timers.parts.time.upper_95 ");
    assert!(
        upper.starts_with("stats.timers.parts.time.upper_95 10 "),
        "{upper}"
    );

    // SIGHUP reads the Etsy file again: flush settings change from the next flush on; the
    // listening ports need a restart and say so.
    write_config(peer_port(), peer_port(), 1000, 50);
    server.signal(libc::SIGHUP);
    let reloaded = server.wait_for("configuration reloaded: storage rules for new files updated");
    let changed = reloaded["changed"].as_str().unwrap();
    assert!(
        changed.contains("statsd.percent_threshold") && changed.contains("statsd.flush_interval"),
        "{reloaded}"
    );
    let restart = server.wait_for("reload: these changed but take effect only at a restart");
    let keys = restart["keys"].as_str().unwrap();
    assert!(
        keys.contains("statsd.listen") && keys.contains("statsd.admin_listen"),
        "{restart}"
    );
    // The interval in progress still closes with upper_95; samples sent until the new
    // settings are in force come out as upper_50.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let upper = 'found: loop {
        assert!(std::time::Instant::now() < deadline, "no upper_50 line");
        socket.send_to(b"parts.time:20|ms", &statsd).unwrap();
        while let Ok(line) = lines.recv_timeout(Duration::from_millis(300)) {
            if line.starts_with("stats.timers.parts.time.upper_50 ") {
                break 'found line;
            }
        }
    };
    assert!(
        upper.starts_with("stats.timers.parts.time.upper_50 20 "),
        "{upper}"
    );
    server.signal(libc::SIGTERM);
    assert!(server.wait().success());
}

#[test]
fn a_second_stop_signal_exits_without_draining() {
    // A Carbon target that refuses connections keeps the final StatsD flush retrying for its
    // shutdown grace (5 s): the drain is still under way when the second signal comes. The
    // port is bound but not listening, so it refuses and no other test can take it.
    let held = tokio::net::TcpSocket::new_v4().unwrap();
    held.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let refusing = held.local_addr().unwrap().to_string();
    let server = Server::start(
        &[
            "statsd",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--carbon",
            &refusing,
        ],
        &[],
    );
    server.wait_for("statsd listening");
    server.signal(libc::SIGTERM);
    server.wait_for("stopping: draining sockets, flushing StatsD and the store cache");
    server.signal(libc::SIGTERM);
    server.wait_for("second stop signal: exiting without draining");
    // A graceful stop exits 0 (after giving up on Carbon); the forced one exits 1.
    assert_eq!(server.wait().code(), Some(1));
    drop(held);
}

#[test]
fn agent_reports_this_host_to_carbon() {
    let (carbon, lines) = carbon_capture();
    let server = Server::start(
        &[
            "agent",
            "--carbon",
            &carbon,
            "--interval",
            "200ms",
            "--munin-listen",
            "",
            "--prefix",
            "servers.testhost",
        ],
        &[],
    );
    let load = wait_for_line(&lines, "servers.testhost.load.load1 ");
    let value: f64 = load.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(value >= 0.0, "{load}");
    wait_for_line(&lines, "servers.testhost.memory.");
    server.signal(libc::SIGTERM);
    assert!(server.wait().success());
}

#[test]
fn agent_rescans_its_plugin_directory_on_sighup() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    // plugins run as `nobody` when the tests run as root: let them in
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let (plugins, conf) = (dir.path().join("plugins"), dir.path().join("plugin-conf.d"));
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::create_dir_all(&conf).unwrap();
    let add_plugin = |name: &str, field: &str| {
        let path = plugins.join(name);
        std::fs::write(
            &path,
            format!("#!/bin/sh\n[ \"$1\" = config ] && echo 'graph_title {name}' && exit 0\necho '{field}.value 1'\n"),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    add_plugin("first", "a");
    let config = dir.path().join("charcoal.toml");
    std::fs::write(
        &config,
        format!(
            "[agent]\nplugin_dir = {:?}\nplugin_conf_dir = {:?}\nplugin_state_dir = {:?}\n",
            path_str(&plugins),
            path_str(&conf),
            path_str(&dir.path().join("state"))
        ),
    )
    .unwrap();
    let (carbon, lines) = carbon_capture();
    let server = Server::start(
        &[
            "agent",
            "--config",
            path_str(&config),
            "--carbon",
            &carbon,
            "--interval",
            "200ms",
            "--munin-listen",
            "",
            "--prefix",
            "servers.testhost",
        ],
        &[],
    );
    wait_for_line(&lines, "servers.testhost.munin.first.a 1 ");
    add_plugin("second", "b");
    server.signal(libc::SIGHUP);
    wait_for_line(&lines, "servers.testhost.munin.second.b 1 ");
    server.signal(libc::SIGTERM);
    assert!(server.wait().success());
}

#[test]
fn web_serves_an_existing_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(data.join("old/host")).unwrap();
    let file = data.join("old/host/cpu.wsp");
    run_ok(&["whisper", "create", path_str(&file), "60:1440"]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    run_ok(&[
        "whisper",
        "update",
        path_str(&file),
        &format!("{}:42", now - 60),
    ]);
    let server = Server::start(
        &[
            "web",
            "--data-dir",
            path_str(&data),
            "--listen",
            "127.0.0.1:0",
        ],
        &[],
    );
    let web = address(&server.wait_for("web API listening"), "local_addr");
    let (status, body) = http_get(&web, "/render?target=old.*.cpu&from=-5min&format=json");
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("\"target\": \"old.host.cpu\"") && body.contains("42.0"),
        "{body}"
    );
    let (status, version) = http_get(&web, "/version");
    assert_eq!((status, version.trim()), (200, "1.1.10"));
    server.signal(libc::SIGTERM);
    assert!(server.wait().success());
}
