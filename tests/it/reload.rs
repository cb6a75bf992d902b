//! SIGHUP: a good configuration changes the storage rules for new files; a bad one is refused
//! and the old rules stay.

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use charcoal_store::Whisper;

use crate::support::{Server, address, path_str};

fn send(carbon: &str, metric: &str) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut conn = TcpStream::connect(carbon).unwrap();
    writeln!(conn, "{metric} 1 {now}").unwrap();
}

/// Waits for the metric's file and returns its first archive's step.
fn step_of(data: &std::path::Path, metric: &str) -> u32 {
    let path = data.join(format!("{}.wsp", metric.replace('.', "/")));
    for _ in 0..400 {
        if let Ok(file) = Whisper::open_read_only(&path) {
            return file.header().archives[0].step;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("{} was never created", path.display());
}

#[test]
fn sighup_reloads_good_rules_and_keeps_them_on_a_bad_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let schemas = dir.path().join("schemas.conf");
    let config = dir.path().join("charcoal.toml");
    std::fs::write(&schemas, "[all]\npattern = .*\nretentions = 60s:1d\n").unwrap();
    let write_config = |level: &str| {
        std::fs::write(
            &config,
            format!(
                "[log]\nlevel = {level:?}\n[store]\nschemas = {:?}\nflush_interval = \"50ms\"\n\
                 [carbon]\nmetric_interval = \"0s\"\n",
                path_str(&schemas)
            ),
        )
        .unwrap()
    };
    write_config("info");
    let server = Server::start(
        &[
            "carbon",
            "--config",
            path_str(&config),
            "--data-dir",
            path_str(&data),
            "--listen",
            "127.0.0.1:0",
        ],
        &[],
    );
    let carbon = address(&server.wait_for("carbon receiver listening"), "tcp");
    send(&carbon, "before.reload");
    assert_eq!(step_of(&data, "before.reload"), 60);

    // A good change: new files get the new retention, and the log level changes live.
    std::fs::write(&schemas, "[all]\npattern = .*\nretentions = 10s:6h\n").unwrap();
    write_config("info,charcoal_store=debug");
    server.signal(libc::SIGHUP);
    let reloaded = server.wait_for("configuration reloaded: storage rules for new files updated");
    assert!(
        reloaded["changed"].as_str().unwrap().contains("log.level"),
        "{reloaded}"
    );
    send(&carbon, "after.good");
    assert_eq!(step_of(&data, "after.good"), 10);
    server.wait_for("writer pass");

    // A bad one is refused with a clear log line, and the last good rules stay.
    std::fs::write(&schemas, "[all]\npattern = .*\nretentions = 10x:6h\n").unwrap();
    server.signal(libc::SIGHUP);
    let refused = server.wait_for("reload refused; keeping the old configuration");
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("Invalid unit 'x'"),
        "{refused}"
    );
    send(&carbon, "after.bad");
    assert_eq!(step_of(&data, "after.bad"), 10);
    // Existing files keep their archives whatever the rules say.
    assert_eq!(step_of(&data, "before.reload"), 60);
    server.signal(libc::SIGTERM);
    assert!(server.wait().success());
}
