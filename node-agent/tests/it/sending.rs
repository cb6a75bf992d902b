//! Values sent to Carbon and StatsD every interval, built-ins and script plugins, under the
//! documented names.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::io::AsyncBufReadExt as _;

use crate::util::*;

type CarbonReader = tokio::io::BufReader<tokio::net::TcpStream>;

/// Reads Carbon lines until every name in `want` was seen (bounded by the reply deadline).
async fn carbon_lines(
    listener: tokio::net::TcpListener,
    want: &[&str],
) -> BTreeMap<String, (String, i64)> {
    let (stream, _) = tokio::time::timeout(REPLY_DEADLINE, listener.accept())
        .await
        .expect("agent connects")
        .unwrap();
    read_until_seen(&mut tokio::io::BufReader::new(stream), want).await
}

/// Reads Carbon lines from `rd` until every name in `want` was seen.
async fn read_until_seen(rd: &mut CarbonReader, want: &[&str]) -> BTreeMap<String, (String, i64)> {
    let mut seen = BTreeMap::new();
    let deadline = tokio::time::Instant::now() + REPLY_DEADLINE;
    while !want.iter().all(|w| seen.contains_key(*w)) {
        let mut line = String::new();
        let n = tokio::time::timeout_at(deadline, rd.read_line(&mut line))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "missing {:?}",
                    want.iter()
                        .filter(|w| !seen.contains_key(**w))
                        .collect::<Vec<_>>()
                )
            })
            .unwrap();
        assert!(n > 0, "connection closed");
        let parts: Vec<&str> = line.trim_end().split(' ').collect();
        assert_eq!(parts.len(), 3, "carbon plaintext: {line:?}");
        let ts: i64 = parts[2].parse().unwrap();
        assert!(parts[1].parse::<f64>().is_ok(), "{line:?}");
        seen.insert(parts[0].to_owned(), (parts[1].to_owned(), ts));
    }
    seen
}

/// A plugin that prints `<field>.value <value>`.
fn one_value_plugin(field: &str, value: u32) -> String {
    format!(
        "#!/bin/sh\n[ \"$1\" = config ] && echo 'graph_title {field}' && exit 0\necho '{field}.value {value}'\n"
    )
}

#[tokio::test]
async fn rescan_sends_new_plugins_and_stops_removed_ones() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let s = Scratch::new(&[("first", &one_value_plugin("a", 1))], "");
    let mut config = test_config(&s);
    config.carbon = Some(listener.local_addr().unwrap().to_string());
    config.interval = Duration::from_millis(200);
    config.collectors = vec!["load".into()];
    let agent = start(config).await;
    let (stream, _) = tokio::time::timeout(REPLY_DEADLINE, listener.accept())
        .await
        .expect("agent connects")
        .unwrap();
    let mut rd = tokio::io::BufReader::new(stream);
    let seen = read_until_seen(&mut rd, &["servers.vm.munin.first.a"]).await;
    assert_eq!(seen["servers.vm.munin.first.a"].0, "1");

    std::fs::remove_file(s.plugins().join("first")).unwrap();
    let second = s.plugins().join("second");
    std::fs::write(&second, one_value_plugin("b", 2)).unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&second, std::fs::Permissions::from_mode(0o755)).unwrap();
    agent.handle.rescan_plugins();
    let seen = read_until_seen(&mut rd, &["servers.vm.munin.second.b"]).await;
    assert_eq!(seen["servers.vm.munin.second.b"].0, "2");
    // Once the new list is in use the removed plugin is no longer sampled: after one more
    // round (where a run started before the swap may still land), rounds go by without it.
    let both = ["servers.vm.munin.second.b", "servers.vm.load.load5"];
    read_until_seen(&mut rd, &both).await;
    let after = read_until_seen(&mut rd, &both).await;
    assert!(!after.contains_key("servers.vm.munin.first.a"), "{after:?}");
    agent.stop().await;
}

#[tokio::test]
async fn carbon_receives_builtins_and_plugins_with_rates() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let s = Scratch::new(TEST_PLUGINS, TEST_CONF);
    let mut config = test_config(&s);
    config.carbon = Some(listener.local_addr().unwrap().to_string());
    config.interval = Duration::from_millis(300);
    config.collectors = vec![
        "cpu".into(),
        "load".into(),
        "memory".into(),
        "network".into(),
    ];
    let agent = start(config).await;
    let seen = carbon_lines(
        listener,
        &[
            "servers.vm.load.load5",
            "servers.vm.memory.total",
            "servers.vm.cpu.total.user",
            "servers.vm.cpu.1.idle",
            "servers.vm.network.eth0.rx_bytes",
            "servers.vm.munin.t_multi.child1.part",
            "servers.vm.munin.t_multi.total",
            "servers.vm.munin.t_dirty.dirty",
            "servers.virtual_example.munin.t_virtual.v",
            "servers.vm.munin.t_garbage.c",
        ],
    )
    .await;
    assert_eq!(seen["servers.vm.load.load5"].0, "0.16");
    assert_eq!(
        seen["servers.vm.memory.total"].0,
        (24684084u64 * 1024).to_string()
    );
    // the fixture does not change: every rate is 0 (and a rate needs two samples)
    assert_eq!(seen["servers.vm.cpu.total.user"].0, "0");
    assert_eq!(seen["servers.vm.munin.t_multi.child1.part"].0, "3.5");
    // t_multi.total is DERIVE: sent as a rate, 0 for a constant counter
    assert_eq!(seen["servers.vm.munin.t_multi.total"].0, "0");
    assert_eq!(seen["servers.virtual_example.munin.t_virtual.v"].0, "5");
    // the plugin's own epoch is the Carbon timestamp
    assert_eq!(
        seen["servers.vm.munin.t_garbage.c"],
        ("5".to_owned(), 1700000000)
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!((now - seen["servers.vm.load.load5"].1).abs() < 600);
    assert!(agent.handle.stats().lines_sent > 0);
    agent.stop().await;
}

#[tokio::test]
async fn statsd_receives_gauges() {
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let s = Scratch::new(&[], "");
    let mut config = test_config(&s);
    config.plugin_dir = None;
    config.statsd = Some(sock.local_addr().unwrap().to_string());
    config.interval = Duration::from_millis(300);
    config.collectors = vec!["load".into(), "kernel".into()];
    let agent = start(config).await;
    let mut seen = BTreeMap::new();
    let mut buf = vec![0u8; 2048];
    while !seen.contains_key("servers.vm.processes.forks") {
        let n = tokio::time::timeout(REPLY_DEADLINE, sock.recv(&mut buf))
            .await
            .expect("datagram")
            .unwrap();
        assert!(n <= 1432);
        for line in std::str::from_utf8(&buf[..n]).unwrap().lines() {
            let (name, rest) = line.split_once(':').unwrap();
            let v = rest.strip_suffix("|g").expect("gauge");
            seen.insert(name.to_owned(), v.to_owned());
        }
    }
    assert_eq!(seen["servers.vm.load.load1"], "0.09");
    assert_eq!(seen["servers.vm.processes.running"], "3");
    assert_eq!(seen["servers.vm.processes.forks"], "0");
    agent.stop().await;
}
