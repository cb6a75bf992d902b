//! `charcoal carbon` as a process: listening where told, SIGTERM writes every point, kill -9
//! leaves only valid files.

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use charcoal_store::Whisper;

use crate::support::{Server, interop_enabled, path_str, whisper_files, whisper_venv};

fn start(data: &std::path::Path, env: &[(&str, &str)]) -> (Server, std::net::SocketAddr) {
    let server = Server::start(
        &[
            "carbon",
            "--data-dir",
            path_str(data),
            "--listen",
            "127.0.0.1:0",
        ],
        env,
    );
    let event = server.wait_for("carbon receiver listening");
    let addr = event["tcp"].as_str().expect("tcp address").parse().unwrap();
    (server, addr)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Counts the points stored in every file (10 s archive of the default test retention).
fn stored_points(data: &std::path::Path) -> usize {
    let now = now();
    whisper_files(data)
        .iter()
        .map(|path| {
            let file = Whisper::open_read_only(path).unwrap();
            let s = file.fetch(now - 3000, now, now).unwrap().unwrap();
            s.values.iter().flatten().count()
        })
        .sum()
}

#[test]
fn sigterm_writes_every_point_sent() {
    let dir = tempfile::tempdir().unwrap();
    let (server, addr) = start(
        dir.path(),
        &[
            ("CHARCOAL_STORE__DEFAULT_RETENTION", "10s:1h"),
            ("CHARCOAL_STORE__FLUSH_INTERVAL", "1h"),
        ],
    );
    let start = now() - 2000;
    let mut conn = TcpStream::connect(addr).unwrap();
    let mut text = String::new();
    for i in 0..5000 {
        text.push_str(&format!("sig.m{} {i} {}\n", i % 50, start + 10 * (i / 50)));
    }
    conn.write_all(text.as_bytes()).unwrap();
    conn.flush().unwrap();
    // The points are only in memory (flush interval 1 h) when SIGTERM arrives.
    server.signal(libc::SIGTERM);
    let status = server.wait();
    assert!(status.success(), "{status}");
    assert_eq!(whisper_files(dir.path()).len(), 50);
    assert_eq!(stored_points(dir.path()), 5000);
}

#[test]
fn kill_9_during_ingest_leaves_only_valid_files() {
    let dir = tempfile::tempdir().unwrap();
    let (server, addr) = start(
        dir.path(),
        &[
            ("CHARCOAL_STORE__DEFAULT_RETENTION", "10s:1h,1m:1d"),
            ("CHARCOAL_STORE__FLUSH_INTERVAL", "50ms"),
        ],
    );
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sender = {
        let stop = std::sync::Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut conn = TcpStream::connect(addr).unwrap();
            let base = now() - 3000;
            let mut i = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let mut text = String::new();
                for _ in 0..500 {
                    text.push_str(&format!(
                        "k9.m{} {i} {}\n",
                        i % 300,
                        base + (i / 300) as i64
                    ));
                    i += 1;
                }
                if conn.write_all(text.as_bytes()).is_err() {
                    break;
                }
            }
        })
    };
    // Let files be created and written for a while, then kill without warning.
    for _ in 0..3000 {
        if whisper_files(dir.path()).len() >= 300 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(200));
    server.signal(libc::SIGKILL);
    let status = server.wait();
    assert!(!status.success());
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    sender.join().unwrap();
    let files = whisper_files(dir.path());
    assert!(
        files.len() >= 300,
        "only {} files were created",
        files.len()
    );
    for path in &files {
        let file = Whisper::open_read_only(path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(file.header().archives.len(), 2);
    }
    if interop_enabled() {
        // Python's whisper reads every file too.
        let script = "import sys, whisper\nfor p in sys.argv[1:]:\n    i = whisper.info(p)\n    assert len(i['archives']) == 2, p\n    whisper.fetch(p, 0)\nprint(len(sys.argv) - 1)\n";
        let mut args = vec!["-c".to_owned(), script.to_owned()];
        args.extend(files.iter().map(|p| path_str(p).to_owned()));
        let out = std::process::Command::new(whisper_venv().join("bin/python"))
            .args(&args)
            .output()
            .expect("python whisper");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            files.len().to_string()
        );
    }
}

#[test]
fn bad_configuration_exits_2_naming_the_key() {
    let out = crate::support::charcoal()
        .args(["carbon", "--listen", "127.0.0.1:0"])
        .env("CHARCOAL_STORE__DEFAULT_RETENTION", "10x:1d")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("store.default_retention: Invalid unit 'x'")
    );
    let out = crate::support::charcoal()
        .args(["check-config"])
        .env("CHARCOAL_CARBON__NOPE", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope"));
}
