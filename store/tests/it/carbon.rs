//! The Carbon plaintext receiver over real sockets.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use charcoal_store::{
    CarbonConfig, CarbonReceiver, CarbonSockets, Retention, StorageRules, Store, StoreConfig,
};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio_util::sync::CancellationToken;

const NOW: i64 = 1_700_000_000;

struct Running {
    store: Store,
    receiver: CarbonReceiver,
    tcp: std::net::SocketAddr,
    udp: std::net::SocketAddr,
    pickle: std::net::SocketAddr,
}

async fn start(dir: &Path, cache_max_points: usize, flush_interval: Duration) -> Running {
    let carbon = CarbonConfig {
        metric_interval: Duration::ZERO,
        ..CarbonConfig::default()
    };
    start_with(dir, cache_max_points, flush_interval, &carbon).await
}

async fn start_with(
    dir: &Path,
    cache_max_points: usize,
    flush_interval: Duration,
    carbon: &CarbonConfig,
) -> Running {
    let config = StoreConfig {
        data_dir: dir.to_owned(),
        writers: 2,
        cache_max_points,
        flush_interval,
        ..StoreConfig::default()
    };
    let rules = StorageRules::with_default_retention(vec![Retention::new(10, 8640)]);
    let store = Store::open_with_clock(&config, rules, Arc::new(|| NOW)).unwrap();
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let pickle = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (tcp_addr, udp_addr) = (tcp.local_addr().unwrap(), udp.local_addr().unwrap());
    let pickle_addr = pickle.local_addr().unwrap();
    let sockets = CarbonSockets {
        tcp: Some(tcp),
        udp: Some(udp),
        pickle: Some(pickle),
    };
    let receiver = CarbonReceiver::start_with_clock(
        store.clone(),
        sockets,
        carbon,
        CancellationToken::new(),
        Arc::new(|| NOW),
    );
    Running {
        store,
        receiver,
        tcp: tcp_addr,
        udp: udp_addr,
        pickle: pickle_addr,
    }
}

impl Running {
    /// Stops the receiver (draining sockets) and writes everything.
    async fn stop(self) -> Store {
        self.receiver.shutdown().await;
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.close())
            .await
            .unwrap();
        self.store
    }

    /// Waits until the receiver has taken `n` datapoints (it reads asynchronously).
    async fn received(&self, n: u64) {
        for _ in 0..2000 {
            if self
                .receiver
                .stats()
                .metrics_received
                .load(Ordering::Relaxed)
                >= n
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!(
            "only {} of {n} datapoints arrived: {:?}",
            self.receiver
                .stats()
                .metrics_received
                .load(Ordering::Relaxed),
            self.receiver.stats()
        );
    }
}

/// The value stored for the interval of `t`.
fn value_at(store: &Store, name: &str, t: i64) -> Option<f64> {
    let series = store.fetch(name, t - 10, t, NOW).unwrap()?;
    series.values.last().copied().flatten()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_lines_are_readable_from_the_cache_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let run = start(dir.path(), 1_000_000, Duration::from_secs(3600)).await;
    let mut conn = TcpStream::connect(run.tcp).await.unwrap();
    conn.write_all(b"a.b 1 1699999990\na.b 2.5 1700000000\nc.d -3 -1\n")
        .await
        .unwrap();
    run.received(3).await;
    assert!(!dir.path().join("a/b.wsp").exists());
    assert_eq!(value_at(&run.store, "a.b", NOW - 10), Some(1.0));
    assert_eq!(value_at(&run.store, "a.b", NOW), Some(2.5));
    // Timestamp -1 means now.
    assert_eq!(value_at(&run.store, "c.d", NOW), Some(-3.0));
    drop(conn);
    let store = run.stop().await;
    assert!(dir.path().join("a/b.wsp").exists());
    assert_eq!(value_at(&store, "a.b", NOW), Some(2.5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_split_across_writes_and_bad_lines_among_good_ones() {
    let dir = tempfile::tempdir().unwrap();
    let run = start(dir.path(), 1_000_000, Duration::from_secs(3600)).await;
    let mut conn = TcpStream::connect(run.tcp).await.unwrap();
    conn.set_nodelay(true).unwrap();
    let stream = b"good.one 1 1700000000\nbad line\ngood.t";
    conn.write_all(stream).await.unwrap();
    conn.flush().await.unwrap();
    tokio::task::yield_now().await;
    conn.write_all(b"wo 2 1700000000\ngood.three nan 1700000000\n\xff\xfe 1 2\n")
        .await
        .unwrap();
    let long = format!("x {}\n", "9".repeat(20_000));
    conn.write_all(long.as_bytes()).await.unwrap();
    conn.write_all(
        b"../../etc/passwd 1 1700000000\ngood.four 4 1700000000\nlast.line 5 1700000000",
    )
    .await
    .unwrap();
    drop(conn); // the final line has no newline: end of stream ends it
    run.received(4).await;
    for (name, value) in [
        ("good.one", 1.0),
        ("good.two", 2.0),
        ("good.four", 4.0),
        ("last.line", 5.0),
    ] {
        assert_eq!(value_at(&run.store, name, NOW), Some(value), "{name}");
    }
    let stats = run.receiver.stats();
    assert_eq!(stats.bad_lines.load(Ordering::Relaxed), 3); // "bad line", bad UTF-8, overlong
    assert_eq!(stats.nan_values.load(Ordering::Relaxed), 1);
    assert_eq!(stats.invalid_names.load(Ordering::Relaxed), 1);
    assert_eq!(value_at(&run.store, "good.three", NOW), None);
    let store = run.stop().await;
    assert!(!dir.path().join("etc").exists());
    assert_eq!(
        store.all_metrics(),
        ["good.four", "good.one", "good.two", "last.line"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_datagrams_with_several_lines() {
    let dir = tempfile::tempdir().unwrap();
    let run = start(dir.path(), 1_000_000, Duration::from_secs(3600)).await;
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket
        .send_to(
            b"u.one 1 1700000000\r\nu.two 2 1700000000\rjunk\nu.three 3 1700000000",
            run.udp,
        )
        .await
        .unwrap();
    run.received(3).await;
    for (name, value) in [("u.one", 1.0), ("u.two", 2.0), ("u.three", 3.0)] {
        assert_eq!(value_at(&run.store, name, NOW), Some(value), "{name}");
    }
    assert_eq!(run.receiver.stats().bad_lines.load(Ordering::Relaxed), 1);
    run.stop().await;
}

/// A thousand connections open at the same time, each sending its lines.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_connections() {
    let dir = tempfile::tempdir().unwrap();
    let run = start(dir.path(), 1_000_000, Duration::from_millis(50)).await;
    let clients = 1000usize;
    let mut conns = Vec::with_capacity(clients);
    for _ in 0..clients {
        conns.push(TcpStream::connect(run.tcp).await.unwrap());
    }
    // Every connection is served at once, none waits for another to close.
    for _ in 0..2000 {
        if run
            .receiver
            .stats()
            .active_connections
            .load(Ordering::Relaxed)
            == clients as u64
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        run.receiver
            .stats()
            .active_connections
            .load(Ordering::Relaxed),
        clients as u64
    );
    for (c, conn) in conns.iter_mut().enumerate() {
        let mut text = String::new();
        for i in 0..10i64 {
            let t = NOW - 10 * (c as i64 / 50) - 1000 * i;
            text.push_str(&format!("conn.c{} {} {}\n", c % 50, i, t));
        }
        conn.write_all(text.as_bytes()).await.unwrap();
    }
    drop(conns);
    run.received(clients as u64 * 10).await;
    let store = run.stop().await;
    assert_eq!(store.find("conn.*").len(), 50);
    assert_eq!(store.stats().committed_points, clients as u64 * 10);
}

/// With a cache far smaller than what is sent, TCP senders are slowed down, not dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_cache_applies_back_pressure_without_loss() {
    let dir = tempfile::tempdir().unwrap();
    let run = start(dir.path(), 500, Duration::from_millis(10)).await;
    let mut conn = TcpStream::connect(run.tcp).await.unwrap();
    let total = 20_000u64;
    let mut text = String::new();
    for i in 0..total {
        text.push_str(&format!(
            "bp.m{} {} {}\n",
            i % 100,
            i,
            NOW - 10 * (i as i64 / 100)
        ));
    }
    conn.write_all(text.as_bytes()).await.unwrap();
    drop(conn);
    run.received(total).await;
    assert!(
        run.store.stats().cache_full > 0,
        "the cache never filled; the test proves nothing"
    );
    let store = run.stop().await;
    assert_eq!(store.stats().committed_points, total);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_what_was_sent() {
    let dir = tempfile::tempdir().unwrap();
    let run = start(dir.path(), 1_000_000, Duration::from_secs(3600)).await;
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for i in 0..200 {
        socket
            .send_to(format!("drain.u{i} 1 1700000000").as_bytes(), run.udp)
            .await
            .unwrap();
    }
    let mut conn = TcpStream::connect(run.tcp).await.unwrap();
    let mut text = String::new();
    for i in 0..200 {
        text.push_str(&format!("drain.t{i} 1 1700000000\n"));
    }
    conn.write_all(text.as_bytes()).await.unwrap();
    // Make sure the connection is accepted before the stop, then stop at once.
    while run.receiver.stats().connections.load(Ordering::Relaxed) == 0 {
        tokio::task::yield_now().await;
    }
    let store = run.stop().await;
    assert_eq!(store.stats().committed_points, 400);
}

/// A receiver serving one connection at a time on each listener.
async fn start_one_connection_each(dir: &Path) -> Running {
    let carbon = CarbonConfig {
        metric_interval: Duration::ZERO,
        max_connections: 1,
        ..CarbonConfig::default()
    };
    start_with(dir, 1_000_000, Duration::from_secs(3600), &carbon).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_still_waiting_to_be_accepted_at_the_stop_are_drained() {
    let dir = tempfile::tempdir().unwrap();
    // One connection at a time: a second one waits in the kernel's accept queue.
    let run = start_one_connection_each(dir.path()).await;
    let mut first = TcpStream::connect(run.tcp).await.unwrap();
    first
        .write_all(b"queued.first 1 1700000000\n")
        .await
        .unwrap();
    run.received(1).await;
    // The handshake completes in the kernel; the sender writes and is done.
    let mut second = TcpStream::connect(run.tcp).await.unwrap();
    second
        .write_all(b"queued.second 2 1700000000\n")
        .await
        .unwrap();
    second.shutdown().await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(run.receiver.stats().connections.load(Ordering::Relaxed), 1);
    // The first sender stays connected (and quiet) through the stop.
    let store = run.stop().await;
    assert_eq!(store.stats().committed_points, 2);
    assert_eq!(value_at(&store, "queued.second", NOW), Some(2.0));
    drop(first);
}

/// A pickle frame: the 4-byte big-endian length, then the payload.
fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(payload);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pickle_frames_are_stored_and_bad_ones_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let run = start(dir.path(), 1_000_000, Duration::from_secs(3600)).await;
    let mut conn = TcpStream::connect(run.pickle).await.unwrap();
    // pickle.dumps([('pk.a', (1700000000, 1.5)), ('pk.b', (-1, 2))], protocol=2)
    let good = b"\x80\x02]q\x00(X\x04\x00\x00\x00pk.aq\x01J\x00\xf1SeG?\xf8\x00\x00\x00\x00\x00\x00\x86q\x02\x86q\x03X\x04\x00\x00\x00pk.bq\x04J\xff\xff\xff\xffK\x02\x86q\x05\x86q\x06e.";
    // A reduce of os.system: refused whole, the connection goes on.
    let evil = b"cposix\nsystem\np0\n(Vtrue\np1\ntp2\nRp3\n.";
    // Etsy StatsD's protocol-0 form, with a NaN value (dropped) and a bad element.
    let etsy = b"(l(S'pk.c'\n(L1700000000L\nS'7'\ntta(S'pk.nan'\n(L1700000000L\nS'nan'\ntta(S'pk.bad'\nta.";
    let mut bytes = frame(good);
    bytes.extend(frame(evil));
    bytes.extend(frame(etsy));
    // Written a few bytes at a time: frames split anywhere are joined.
    for chunk in bytes.chunks(7) {
        conn.write_all(chunk).await.unwrap();
        conn.flush().await.unwrap();
    }
    run.received(3).await;
    let stats = run.receiver.stats();
    assert_eq!(stats.pickles_refused.load(Ordering::Relaxed), 1);
    assert_eq!(stats.nan_values.load(Ordering::Relaxed), 1);
    assert_eq!(stats.bad_lines.load(Ordering::Relaxed), 1);
    assert_eq!(value_at(&run.store, "pk.a", 1_700_000_000), Some(1.5));
    assert_eq!(value_at(&run.store, "pk.b", NOW), Some(2.0), "-1 is now");
    assert_eq!(value_at(&run.store, "pk.c", 1_700_000_000), Some(7.0));

    // A frame over the limit closes the connection, as Carbon's receiver does.
    conn.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::io::AsyncReadExt::read_to_end(&mut conn, &mut rest),
    )
    .await;
    assert!(closed.is_ok(), "the connection stays open");
    assert_eq!(stats.pickles_refused.load(Ordering::Relaxed), 2);
    // Hostile names are refused like plaintext ones, the rest of the payload kept.
    let mut conn = TcpStream::connect(run.pickle).await.unwrap();
    // pickle.dumps([('../escape', (1700000000, 1)), ('pk.d', (1700000000, 4))], protocol=2)
    let hostile = b"\x80\x02]q\x00(X\t\x00\x00\x00../escapeq\x01J\x00\xf1SeK\x01\x86q\x02\x86q\x03X\x04\x00\x00\x00pk.dq\x04J\x00\xf1SeK\x04\x86q\x05\x86q\x06e.";
    conn.write_all(&frame(hostile)).await.unwrap();
    run.received(4).await;
    assert_eq!(stats.invalid_names.load(Ordering::Relaxed), 1);
    let store = run.stop().await;
    assert_eq!(value_at(&store, "pk.d", 1_700_000_000), Some(4.0));
    assert!(!dir.path().parent().unwrap().join("escape.wsp").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_listener_has_its_own_connection_limit() {
    let dir = tempfile::tempdir().unwrap();
    let run = start_one_connection_each(dir.path()).await;
    // One connection open on each listener: both are served.
    let mut plain = TcpStream::connect(run.tcp).await.unwrap();
    plain
        .write_all(b"limit.plain 1 1700000000\n")
        .await
        .unwrap();
    let mut pickled = TcpStream::connect(run.pickle).await.unwrap();
    // pickle.dumps([('limit.pickle', (1700000000, 2))], protocol=2)
    let payload =
        b"\x80\x02]q\x00X\x0c\x00\x00\x00limit.pickleq\x01J\x00\xf1SeK\x02\x86q\x02\x86q\x03a.";
    pickled.write_all(&frame(payload)).await.unwrap();
    run.received(2).await;
    let store = run.stop().await;
    assert_eq!(value_at(&store, "limit.plain", 1_700_000_000), Some(1.0));
    assert_eq!(value_at(&store, "limit.pickle", 1_700_000_000), Some(2.0));
    drop((plain, pickled));
}
