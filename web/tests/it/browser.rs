//! The browser UI end to end, in Debian's headless Chromium driven by Playwright
//! (`tests/e2e/ui.cjs`): browse the tree, build a graph, use the interactive chart, search,
//! change the time range, save a dashboard and reload it, open the shipped dashboards by URL,
//! delete a dashboard, then check that the interactive chart draws stacked areas, colours, a
//! second Y axis and the area mode as the image does (by sampling its canvas pixels). Screenshots go to `test-artifacts/ui/` at the repository root.
//!
//! Runs only with CHARCOAL_INTEROP=1 and then fails if a piece is missing; installed by
//! `.ci/setup-chromium.sh`: Chromium at $CHARCOAL_CHROMIUM (default /usr/bin/chromium),
//! playwright-core under $CHARCOAL_PLAYWRIGHT_DIR (default /opt/charcoal-interop/playwright).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use charcoal_store::{StorageRules, Store, StoreConfig};
use charcoal_web::{AppState, Config, serve};
use tokio_util::sync::CancellationToken;

fn enabled() -> bool {
    std::env::var("CHARCOAL_INTEROP").as_deref() == Ok("1")
}

fn env_path(var: &str, default: &str) -> PathBuf {
    std::env::var_os(var).map_or_else(|| PathBuf::from(default), PathBuf::from)
}

/// Six hours of minutely points for two hosts, StatsD and Carbon, ending now.
fn seed(store: &Store, now: i64) {
    let wave = |k: i64, period: f64, phase: f64| ((k as f64) / period + phase).sin();
    for (h, host) in ["web1", "web2"].iter().enumerate() {
        let p = h as f64;
        for k in 0..360 {
            let t = now - k * 60;
            let put = |name: &str, v: f64| {
                store
                    .write(&format!("servers.{host}.{name}"), v, t)
                    .expect("write");
            };
            put("cpu.total.user", 22.0 + 12.0 * wave(k, 40.0, p));
            put("cpu.total.system", 7.0 + 3.0 * wave(k, 25.0, p));
            put("cpu.total.iowait", 2.0 + 1.5 * wave(k, 9.0, p).abs());
            put("cpu.total.nice", 0.5);
            put("cpu.total.softirq", 0.8);
            put("cpu.total.idle", 65.0 - 12.0 * wave(k, 40.0, p));
            put("load.load1", 1.2 + 0.8 * wave(k, 30.0, p));
            put("load.load5", 1.1 + 0.5 * wave(k, 60.0, p));
            put("load.load15", 1.0 + 0.3 * wave(k, 90.0, p));
            let gib = 1024.0 * 1024.0 * 1024.0;
            put("memory.total", 16.0 * gib);
            put("memory.available", 9.0 * gib + gib * wave(k, 80.0, p));
            put("memory.cached", 5.0 * gib + 0.5 * gib * wave(k, 70.0, p));
            put("memory.buffers", 0.4 * gib);
            put("memory.swap_in", (3.0 * wave(k, 11.0, p)).max(0.0));
            put("memory.swap_out", (2.0 * wave(k, 13.0, p)).max(0.0));
            put("network.eth0.rx_bytes", 2.0e6 + 1.5e6 * wave(k, 20.0, p));
            put("network.eth0.tx_bytes", 8.0e5 + 5.0e5 * wave(k, 17.0, p));
            put("disk.sda.read_bytes", 4.0e6 + 3.0e6 * wave(k, 15.0, p));
            put("disk.sda.write_bytes", 6.0e6 + 4.0e6 * wave(k, 12.0, p));
            put("disk.sda.util", 30.0 + 20.0 * wave(k, 15.0, p));
            put("fs._.used_percent", 61.0 + 0.01 * (360 - k) as f64);
            put("fs._var.used_percent", 42.0);
            put("processes.runnable", 3.0 + 2.0 * wave(k, 7.0, p).abs());
            put(
                "processes.uninterruptible",
                (wave(k, 5.0, p) * 2.0).max(0.0),
            );
            put("processes.zombie", 0.0);
            put(
                "kernel.context_switches",
                4000.0 + 1500.0 * wave(k, 10.0, p),
            );
            put("kernel.interrupts", 2500.0 + 800.0 * wave(k, 14.0, p));
        }
    }
    for k in 0..360 {
        let t = now - k * 60;
        let put = |name: &str, v: f64| store.write(name, v, t).expect("write");
        put(
            "stats.statsd.packets_received",
            900.0 + 300.0 * wave(k, 30.0, 0.0),
        );
        put(
            "stats.statsd.metrics_received",
            1800.0 + 600.0 * wave(k, 30.0, 0.0),
        );
        put(
            "stats.statsd.bad_lines_seen",
            if k % 50 == 0 { 2.0 } else { 0.0 },
        );
        put("stats.statsd.numStats", 420.0);
        put("stats.statsd.processing_time", 3.0 + wave(k, 8.0, 0.0));
        put(
            "stats.statsd.graphiteStats.calculationtime",
            1.0 + 0.5 * wave(k, 6.0, 1.0),
        );
        put(
            "stats.statsd.graphiteStats.flush_time",
            4.0 + 2.0 * wave(k, 9.0, 2.0).abs(),
        );
        put(
            "stats.statsd.graphiteStats.flush_length",
            48_000.0 + 4000.0 * wave(k, 30.0, 0.0),
        );
        let agent = "carbon.agents.e2e-a";
        put(
            &format!("{agent}.metricsReceived"),
            60_000.0 + 9000.0 * wave(k, 25.0, 0.0),
        );
        put(
            &format!("{agent}.committedPoints"),
            58_000.0 + 9000.0 * wave(k, 25.0, 0.3),
        );
        put(
            &format!("{agent}.updateOperations"),
            3000.0 + 400.0 * wave(k, 25.0, 0.0),
        );
        put(
            &format!("{agent}.pointsPerUpdate"),
            19.0 + 2.0 * wave(k, 20.0, 0.0),
        );
        put(
            &format!("{agent}.cache.size"),
            12_000.0 + 5000.0 * wave(k, 15.0, 0.0),
        );
        put(
            &format!("{agent}.cache.queues"),
            2_500.0 + 300.0 * wave(k, 15.0, 0.5),
        );
        put(&format!("{agent}.cache.overflow"), 0.0);
        put(&format!("{agent}.errors"), 0.0);
        put(
            &format!("{agent}.badLines"),
            if k % 40 == 0 { 1.0 } else { 0.0 },
        );
        put(&format!("{agent}.droppedCreates"), 0.0);
        put(
            &format!("{agent}.creates"),
            if k % 60 == 0 { 5.0 } else { 0.0 },
        );
        put(&format!("{agent}.cpuUsage"), 6.0 + 2.0 * wave(k, 12.0, 0.0));
        put(
            &format!("{agent}.memUsage"),
            180.0e6 + 10.0e6 * wave(k, 50.0, 0.0),
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ui_in_headless_chromium() {
    if !enabled() {
        return;
    }
    let playwright = env_path(
        "CHARCOAL_PLAYWRIGHT_DIR",
        "/opt/charcoal-interop/playwright",
    );
    let chromium = env_path("CHARCOAL_CHROMIUM", "/usr/bin/chromium");
    assert!(
        playwright
            .join("node_modules/playwright-core/package.json")
            .exists(),
        "CHARCOAL_INTEROP=1 but playwright-core is not installed in {} (run .ci/setup-chromium.sh)",
        playwright.display()
    );
    assert!(
        chromium.exists(),
        "CHARCOAL_INTEROP=1 but {} is missing (run .ci/setup-chromium.sh)",
        chromium.display()
    );
    let node_ok = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(node_ok, "CHARCOAL_INTEROP=1 but `node` is not on PATH");

    let dir = tempfile::tempdir().expect("tempdir");
    let boards = dir.path().join("dashboards");
    std::fs::create_dir_all(&boards).expect("dashboards dir");
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../dashboards");
    for entry in std::fs::read_dir(&shipped).expect("shipped dashboards") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "json") {
            std::fs::copy(&path, boards.join(path.file_name().expect("name"))).expect("copy");
        }
    }
    let store = Store::open(
        &StoreConfig {
            data_dir: dir.path().join("data"),
            ..StoreConfig::default()
        },
        StorageRules::default(),
    )
    .expect("store");
    let now = jiff::Timestamp::now().as_second();
    seed(&store, now - now % 60);

    let config = Config {
        dashboards_dir: boards,
        ..Config::default()
    };
    let state = AppState::new(Arc::new(store.clone()), config).expect("state");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let token = CancellationToken::new();
    let server = serve(listener, state, token.clone()).expect("serve");
    let url = format!("http://{}", server.local_addr());

    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../test-artifacts/ui");
    std::fs::create_dir_all(&artifacts).expect("artifacts dir");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/ui.cjs");
    let mut child = Command::new("node")
        .arg(&script)
        .env("CHARCOAL_URL", &url)
        .env("CHARCOAL_ARTIFACTS", &artifacts)
        .env("CHARCOAL_PLAYWRIGHT", &playwright)
        .env("CHARCOAL_CHROMIUM", &chromium)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start node");
    // The browser talks to the server on this runtime, so wait off it.
    let output = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(480);
        loop {
            match child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() > deadline => {
                    let _ = child.kill();
                    break;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(100)),
                Err(_) => break,
            }
        }
        child.wait_with_output()
    })
    .await
    .expect("join")
    .expect("node output");
    server.shutdown().await.expect("shutdown");
    store.close();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(
        output.status.success() && stdout.contains("ok: all steps passed"),
        "UI test failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
}
