//! The server over real loopback sockets.

use std::sync::Arc;
use std::time::Duration;

use charcoal_statsd::{CarbonSink, CarbonSinkConfig, Config, LineListener, Sink, Sockets};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::common::{cfg_1s, pairs, start, start_scheduled, wait_packets};

fn value<'a>(p: &'a [(String, String)], name: &str) -> Option<&'a str> {
    p.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_datagrams_are_aggregated_across_workers() {
    let r = start(cfg_1s(), Sockets::default(), 2);
    // Several senders (source ports) so both REUSEPORT sockets get traffic.
    let mut total = 0;
    for s in 0..4 {
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        for i in 0..50 {
            sock.send_to(
                format!("c:1|c\nt:{i}|ms\ng:+1|g\ns:{s}-{i}|s").as_bytes(),
                r.udp,
            )
            .unwrap();
            total += 1;
        }
    }
    wait_packets(&r.handle.stats(), total).await;
    let f = r.handle.flush_now().await.unwrap();
    let p = pairs(f.text());
    assert_eq!(value(&p, "stats_counts.c"), Some("200"));
    assert_eq!(value(&p, "stats.timers.t.count"), Some("200"));
    assert_eq!(value(&p, "stats.gauges.g"), Some("200"));
    assert_eq!(value(&p, "stats.sets.s.count"), Some("200"));
    assert_eq!(
        value(&p, "stats_counts.statsd.packets_received"),
        Some("200")
    );
    assert_eq!(
        value(&p, "stats_counts.statsd.metrics_received"),
        Some("800")
    );
    assert_eq!(r.capture.0.lock().unwrap().len(), 1);
    r.handle.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_counted_and_good_lines_survive() {
    let r = start(cfg_1s(), Sockets::default(), 1);
    let garbage: Vec<Vec<u8>> = vec![
        b"a:1|c|@+0.5\ngood:1|c".to_vec(),
        b"a:1|c|@Infinity\ngood:1|c".to_vec(),
        vec![
            0xff, 0xfe, b':', b'1', b'|', b'c', b'\n', b'g', b'o', b'o', b'd', b':', b'1', b'|',
            b'c',
        ],
        vec![b'x'; 60_000],
        b"\n\n\n".to_vec(),
        b"good:1|c|@0\nbig:1e400|c".to_vec(),
    ];
    for g in &garbage {
        r.send(g);
    }
    wait_packets(&r.handle.stats(), garbage.len() as u64).await;
    let p = pairs(r.handle.flush_now().await.unwrap().text());
    assert_eq!(value(&p, "stats_counts.good"), Some("Infinity"));
    assert_eq!(value(&p, "stats_counts.statsd.bad_lines_seen"), Some("3"));
    assert_eq!(value(&p, "stats.big"), Some("Infinity"));
    r.handle.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_and_flushes_the_interval_in_progress() {
    let r = start(Config::default(), Sockets::default(), 1);
    for _ in 0..500 {
        r.send(b"x:1|c");
    }
    // No waiting: what is still in the socket buffer must be drained.
    let capture = Arc::clone(&r.capture);
    r.handle.shutdown().await.unwrap();
    let flushes = capture.0.lock().unwrap();
    let last = flushes.last().expect("a final flush");
    assert_eq!(value(&pairs(last.text()), "stats_counts.x"), Some("500"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_loopback() {
    let Ok(udp) = charcoal_statsd::bind_udp("[::1]:0".parse().unwrap(), 1, 1 << 20) else {
        return; // no IPv6 on this host
    };
    let addr = udp[0].local_addr().unwrap();
    let cap = Arc::new(crate::common::Capture::default());
    let h = charcoal_statsd::spawn_unscheduled(
        cfg_1s(),
        Sockets {
            udp,
            ..Sockets::default()
        },
        vec![cap.clone() as Arc<dyn Sink>],
        CancellationToken::new(),
    )
    .unwrap();
    let s = std::net::UdpSocket::bind("[::1]:0").unwrap();
    s.send_to(b"v6:2|c", addr).unwrap();
    wait_packets(&h.stats(), 1).await;
    let p = pairs(h.flush_now().await.unwrap().text());
    assert_eq!(value(&p, "stats_counts.v6"), Some("2"));
    h.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_lines_use_ascii_and_chunks() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let r = start(
        cfg_1s(),
        Sockets {
            tcp: vec![LineListener::Tcp(l)],
            ..Sockets::default()
        },
        1,
    );
    let mut c = TcpStream::connect(addr).await.unwrap();
    // Spec §17 cases 46 and 47.
    c.write_all(b"tc:1|c\ntc:2|c\ntt:5|ms\n\xc3\xbcn\xc3\xafx:1|c\npartial:1|c")
        .await
        .unwrap();
    c.shutdown().await.unwrap();
    wait_packets(&r.handle.stats(), 1).await;
    let p = pairs(r.handle.flush_now().await.unwrap().text());
    assert_eq!(value(&p, "stats.tc"), Some("3"));
    assert_eq!(value(&p, "stats.CnC-x"), Some("1"));
    assert_eq!(value(&p, "stats.partial"), None);
    assert_eq!(value(&p, "stats_counts.statsd.metrics_received"), Some("4"));
    r.handle.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_lines_sent_before_the_stop_are_all_counted() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let r = start(
        Config::default(),
        Sockets {
            tcp: vec![LineListener::Tcp(l)],
            ..Sockets::default()
        },
        1,
    );
    // Several connections, one still open at the stop; nothing waits for the server to
    // read: lines in socket buffers and connections not yet accepted must be drained.
    let mut open = TcpStream::connect(addr).await.unwrap();
    open.write_all(&b"tcpdrain:1|c\n".repeat(2000))
        .await
        .unwrap();
    for _ in 0..4 {
        let mut c = TcpStream::connect(addr).await.unwrap();
        c.write_all(&b"tcpdrain:1|c\n".repeat(2000)).await.unwrap();
        c.shutdown().await.unwrap();
    }
    let capture = Arc::clone(&r.capture);
    r.handle.shutdown().await.unwrap();
    let flushes = capture.0.lock().unwrap();
    let last = flushes.last().expect("a final flush");
    assert_eq!(
        value(&pairs(last.text()), "stats_counts.tcpdrain"),
        Some("10000")
    );
    drop(open);
}

async fn admin(stream: &mut TcpStream, cmd: &str) -> String {
    stream.write_all(cmd.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await;
        match n {
            Ok(Ok(0)) | Err(_) => break,
            Ok(Ok(n)) => {
                out.extend_from_slice(&buf[..n]);
                let s = String::from_utf8_lossy(&out);
                if s.ends_with("END\n\n")
                    || s.ends_with("\n")
                        && !s.contains("END")
                        && !cmd.starts_with("stats")
                        && !cmd.starts_with("counters")
                        && !cmd.starts_with("del")
                {
                    break;
                }
            }
            Ok(Err(e)) => panic!("{e}"),
        }
    }
    String::from_utf8(out).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_commands_reply_like_etsy() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let r = start(
        cfg_1s(),
        Sockets {
            admin: Some(l),
            ..Sockets::default()
        },
        1,
    );
    r.send(b"foo.bar:1|c\nfoo.baz:2|c\ntm.a:5|ms\ngg:3|g");
    wait_packets(&r.handle.stats(), 1).await;
    let mut c = TcpStream::connect(addr).await.unwrap();
    assert_eq!(
        admin(&mut c, "help").await,
        "Commands: stats, counters, timers, gauges, delcounters, deltimers, delgauges, health, config, quit\n\n"
    );
    assert_eq!(admin(&mut c, "health").await, "health: up\n");
    assert_eq!(admin(&mut c, "health DOWN").await, "health: down\n");
    assert_eq!(admin(&mut c, "health sideways").await, "health: down\n");
    assert_eq!(admin(&mut c, "sets").await, "ERROR\n");
    assert_eq!(admin(&mut c, "HEALTH").await, "ERROR\n");
    let stats = admin(&mut c, "stats").await;
    assert!(stats.starts_with("uptime: "), "{stats}");
    assert!(stats.contains("\nmessages.last_msg_seen: "), "{stats}");
    assert!(stats.contains("\nmessages.bad_lines_seen: 0\n"), "{stats}");
    assert!(stats.contains("\ngraphite.flush_length: "), "{stats}");
    assert!(stats.ends_with("END\n\n"), "{stats}");
    let counters = admin(&mut c, "counters").await;
    assert!(counters.contains("'foo.bar': 1,"), "{counters}");
    assert!(counters.ends_with("\n}\nEND\n\n"), "{counters}");
    assert_eq!(admin(&mut c, "timers").await, "{ 'tm.a': [ 5 ] }\nEND\n\n");
    assert_eq!(admin(&mut c, "gauges").await, "{ gg: 3 }\nEND\n\n");
    assert_eq!(
        admin(&mut c, "delcounters foo.* nothing").await,
        "deleted: foo.bar\ndeleted: foo.baz\nmetric nothing not found\nEND\n\n"
    );
    assert_eq!(
        admin(&mut c, "deltimers tm.a").await,
        "deleted: tm.a\nEND\n\n"
    );
    let p = pairs(r.handle.flush_now().await.unwrap().text());
    assert_eq!(value(&p, "stats.foo.bar"), None);
    assert_eq!(value(&p, "stats.timers.tm.a.count"), None);
    c.write_all(b"quit").await.unwrap();
    let mut rest = Vec::new();
    let n = tokio::time::timeout(Duration::from_secs(5), c.read_to_end(&mut rest))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n, 0);
    r.handle.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn carbon_sink_writes_plaintext_and_retries_until_carbon_is_up() {
    // Reserve a port, then leave it closed while the first flush is attempted.
    let probe = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let carbon_addr = probe.local_addr().unwrap();
    drop(probe);
    let mut cfg = CarbonSinkConfig::new(carbon_addr.to_string());
    cfg.max_backoff = Duration::from_millis(200);
    let (sink, sink_handle) = CarbonSink::spawn(cfg);
    let udp = charcoal_statsd::bind_udp("127.0.0.1:0".parse().unwrap(), 1, 1 << 20).unwrap();
    let addr = udp[0].local_addr().unwrap();
    let h = charcoal_statsd::spawn_unscheduled(
        cfg_1s(),
        Sockets {
            udp,
            ..Sockets::default()
        },
        vec![Arc::new(sink.clone()) as Arc<dyn Sink>],
        CancellationToken::new(),
    )
    .unwrap();
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.send_to(b"carbon.test:7|c", addr).unwrap();
    wait_packets(&h.stats(), 1).await;
    let first = h.flush_now().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.sent_points(), 0);
    // Carbon comes up: the buffered flush arrives.
    let listener = TcpListener::bind(carbon_addr).await.unwrap();
    let (mut conn, _) = tokio::time::timeout(Duration::from_secs(10), listener.accept())
        .await
        .unwrap()
        .unwrap();
    let mut got = Vec::new();
    while got.len() < first.text().len() {
        let mut buf = [0u8; 65536];
        let n = tokio::time::timeout(Duration::from_secs(10), conn.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8(got).unwrap();
    assert_eq!(&text[..first.text().len()], first.text());
    assert!(
        text.contains("\nstats_counts.carbon.test 7 ")
            || text.starts_with("stats_counts.carbon.test 7 ")
    );
    h.shutdown().await.unwrap();
    sink_handle.shutdown().await;
    assert_eq!(sink.dropped_points(), 0);
    assert!(sink.sent_points() >= first.len() as u64);
}

/// Waits until `capture` holds more than `n` flushes (bounded: fails after 30 s).
async fn flushes_after(
    capture: &crate::common::Capture,
    n: usize,
) -> Vec<Arc<charcoal_statsd::Flush>> {
    for _ in 0..3000 {
        {
            let all = capture.0.lock().unwrap();
            if all.len() > n {
                return all[n..].to_vec();
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no flush after the first {n} within 30 s");
}

/// The first flush from index `from` on that has `name` (with value `want`, when given),
/// and its index (polls; fails after 30 s).
async fn first_flush_with(
    capture: &crate::common::Capture,
    from: usize,
    name: &str,
    want: Option<&str>,
) -> (usize, Arc<charcoal_statsd::Flush>) {
    for _ in 0..3000 {
        {
            let all = capture.0.lock().unwrap();
            for (i, f) in all.iter().enumerate().skip(from) {
                let p = pairs(f.text());
                if value(&p, name).is_some_and(|v| want.is_none_or(|w| v == w)) {
                    return (i, Arc::clone(f));
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no flush with {name} = {want:?} within 30 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_applies_flush_settings_from_the_next_interval() {
    let r = start_scheduled(cfg_1s(), Sockets::default(), 1);
    let seen = flushes_after(&r.capture, 0).await.len();
    r.send(b"c:4|c\nt:10|ms");
    wait_packets(&r.handle.stats(), 1).await;
    let new = Config {
        flush_interval: Duration::from_secs(2),
        percent_threshold: vec![50.0],
        prefix_stats: "statsd2".into(),
        listen: "127.0.0.1:1".into(),
        ..cfg_1s()
    };
    let reloaded = r.handle.reload(&new).unwrap();
    assert_eq!(
        reloaded.applied,
        ["flush_interval", "percent_threshold", "prefix_stats"]
    );
    assert_eq!(reloaded.need_restart, ["listen"]);

    // The interval in progress closes under the settings it began with.
    let (at, old) = first_flush_with(&r.capture, seen, "stats_counts.c", Some("4")).await;
    let p = pairs(old.text());
    assert_eq!(value(&p, "stats.c"), Some("4"), "rate over 1 s");
    assert!(value(&p, "stats.timers.t.upper_90").is_some());
    assert!(value(&p, "stats.timers.t.upper_50").is_none());

    // From the next scheduled flush on: the new internal names (created at 0 as the
    // reference does on reload), the new percentile, rates over 2 s.
    let (applied, _) = first_flush_with(
        &r.capture,
        at,
        "stats_counts.statsd2.packets_received",
        None,
    )
    .await;
    r.send(b"c:4|c\nt:10|ms");
    wait_packets(&r.handle.stats(), 2).await;
    let (_, later) = first_flush_with(&r.capture, applied + 1, "stats_counts.c", Some("4")).await;
    let p = pairs(later.text());
    assert_eq!(value(&p, "stats.c"), Some("2"), "rate over 2 s");
    assert!(value(&p, "stats.timers.t.upper_50").is_some());
    assert!(value(&p, "stats.timers.t.upper_90").is_none());

    // Scheduled flushes now come every 2 s: three of them span about 4 s (at least 3,
    // allowing for a late first one), where 1 s flushes would span 2.
    let n = r.capture.0.lock().unwrap().len();
    let mut three = flushes_after(&r.capture, n - 1).await;
    while three.len() < 3 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        three = flushes_after(&r.capture, n - 1).await;
    }
    let span =
        three[2].points().next().unwrap().timestamp - three[0].points().next().unwrap().timestamp;
    assert!(span >= 3, "three flushes span {span} s");

    // A value the server cannot use is refused and changes nothing.
    let bad = Config {
        percent_threshold: vec![f64::NAN],
        ..new.clone()
    };
    assert!(r.handle.reload(&bad).is_err());
    assert_eq!(r.handle.aggregator().config().percent_threshold, [50.0]);
    r.handle.shutdown().await.unwrap();
}
