//! The Debian package, end to end (CHARCOAL_INTEROP=1, as root; `.ci/setup-deb.sh` installs
//! cargo-deb): `cargo deb` builds it, `dpkg -i` installs the binary, the unit, the charcoal
//! user and its directories, the installed binary serves as that user and stops cleanly on
//! SIGTERM, and `dpkg -r` then `dpkg --purge` leave nothing behind.
//!
//! No systemd runs in CI containers, so the service is started the way the unit starts it,
//! as the charcoal user, rather than through systemctl.

use std::io::{BufRead, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::{address, http_get, interop_enabled};

const PACKAGE: &str = "charcoal";
const CONFIG: &str = "/etc/charcoal/charcoal.toml";
/// The service's state directory, the user's home.
const DATA: &str = "/var/lib/charcoal";
/// The packaged configuration's data_dir, dashboards_dir and plugin_state_dir.
const STATE_DIRS: [&str; 4] = [
    DATA,
    "/var/lib/charcoal/whisper",
    "/var/lib/charcoal/dashboards",
    "/var/lib/charcoal/plugin-state",
];
/// Where deb-systemd-helper puts the enablement symlink (systemd need not run for that).
const WANTS: &str = "/etc/systemd/system/multi-user.target.wants/charcoal.service";
/// The unit, at the path cargo-deb installs it (/lib is /usr/lib on merged-/usr systems).
const UNITS: [&str; 2] = [
    "/usr/lib/systemd/system/charcoal.service",
    "/lib/systemd/system/charcoal.service",
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs a command, expecting success; returns stdout.
fn run(command: &mut Command) -> String {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        out.status.success(),
        "{command:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn tool_present(program: &str, arg: &str) -> bool {
    Command::new(program)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

fn installed() -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", PACKAGE])
        .output()
        .is_ok_and(|o| o.status.success() && !o.stdout.is_empty())
}

/// `(uid, gid, home, shell)` of a user, if it exists.
fn user(name: &str) -> Option<(u32, u32, String, String)> {
    let out = Command::new("getent")
        .args(["passwd", name])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let line = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let fields: Vec<&str> = line.split(':').collect();
    Some((
        fields.get(2)?.parse().ok()?,
        fields.get(3)?.parse().ok()?,
        (*fields.get(5)?).to_owned(),
        (*fields.get(6)?).to_owned(),
    ))
}

fn group_exists(name: &str) -> bool {
    Command::new("getent")
        .args(["group", name])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Purges the package if the test leaves it installed (a failed assertion half-way).
struct PurgeOnDrop;

impl Drop for PurgeOnDrop {
    fn drop(&mut self) {
        if installed() {
            let _ = Command::new("dpkg").args(["--purge", PACKAGE]).status();
        }
    }
}

#[test]
fn debian_package_installs_runs_as_charcoal_and_purges_cleanly() {
    if !interop_enabled() {
        return;
    }
    // SAFETY: geteuid has no preconditions.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "CHARCOAL_INTEROP=1: the package test installs a .deb and must run as root"
    );
    for (program, arg) in [
        ("dpkg", "--version"),
        ("dpkg-query", "--version"),
        ("runuser", "--version"),
        ("adduser", "--version"),
        ("deb-systemd-helper", "--help"),
    ] {
        assert!(
            tool_present(program, arg),
            "CHARCOAL_INTEROP=1 but {program} is missing (run .ci/setup-deb.sh)"
        );
    }
    assert!(
        cargo()
            .args(["deb", "--version"])
            .output()
            .is_ok_and(|o| o.status.success()),
        "CHARCOAL_INTEROP=1 but cargo-deb is missing (run .ci/setup-deb.sh)"
    );
    // Installing and purging replaces whatever is there, data included: refuse to touch a
    // machine where Charcoal is installed or the user exists for another reason.
    assert!(
        !installed(),
        "the charcoal package is already installed here; the test would purge it and its data \
         (run `dpkg --purge charcoal` first if that is intended)"
    );
    assert!(
        user("charcoal").is_none() && !Path::new(DATA).exists(),
        "a charcoal user or {DATA} exists already; the test would delete them"
    );

    let deb = build_package();
    let _purge = PurgeOnDrop;
    run(Command::new("dpkg").arg("-i").arg(&deb));
    let (uid, gid) = check_installed();
    serve_as_charcoal(uid);
    check_data_written(uid, gid);
    remove_then_purge();
}

/// `cargo deb`: the release build (a no-op when target/release is fresh) and the package.
fn build_package() -> PathBuf {
    let started = Instant::now();
    let stdout = run(cargo()
        .current_dir(root())
        .args(["deb", "-p", PACKAGE, "--locked"]));
    eprintln!("cargo deb took {:.0?}", started.elapsed());
    let deb = stdout
        .lines()
        .map(str::trim)
        .find(|l| l.ends_with(".deb"))
        .unwrap_or_else(|| panic!("cargo deb printed no .deb path: {stdout}"));
    PathBuf::from(deb)
}

/// Files, user, directories and unit are where the package says; returns the user's ids.
fn check_installed() -> (u32, u32) {
    let (uid, gid, home, shell) = user("charcoal").expect("postinst creates the charcoal user");
    assert!(uid < 1000, "charcoal is a system user, uid {uid}");
    assert_eq!(home, DATA);
    assert!(
        shell.ends_with("nologin") || shell.ends_with("false"),
        "{shell}"
    );
    assert!(group_exists("charcoal"));
    for dir in STATE_DIRS {
        let meta = std::fs::metadata(dir).unwrap_or_else(|e| panic!("{dir}: {e}"));
        assert!(meta.is_dir(), "{dir}");
        assert_eq!((meta.uid(), meta.gid()), (uid, gid), "{dir} owner");
        assert_eq!(meta.mode() & 0o7777, 0o750, "{dir} mode");
    }
    let binary = std::fs::metadata("/usr/bin/charcoal").expect("/usr/bin/charcoal");
    assert_eq!(binary.mode() & 0o777, 0o755);
    let version = run(Command::new("/usr/bin/charcoal").arg("--version"));
    assert_eq!(
        version.trim(),
        format!("charcoal {}", env!("CARGO_PKG_VERSION"))
    );
    // The shipped files are the ones in contrib/.
    for (installed, source) in [
        (CONFIG, "contrib/charcoal.toml"),
        (
            "/etc/charcoal/storage-schemas.conf",
            "contrib/storage-schemas.conf",
        ),
        (
            "/etc/charcoal/storage-aggregation.conf",
            "contrib/storage-aggregation.conf",
        ),
        ("/etc/default/charcoal", "contrib/debian/default"),
    ] {
        assert_eq!(
            std::fs::read(installed).unwrap_or_else(|e| panic!("{installed}: {e}")),
            std::fs::read(root().join(source)).unwrap(),
            "{installed}"
        );
    }
    let unit = UNITS
        .iter()
        .find(|p| Path::new(p).exists())
        .expect("the systemd unit is installed");
    assert_eq!(
        std::fs::read(unit).unwrap(),
        std::fs::read(root().join("contrib/systemd/charcoal.service")).unwrap()
    );
    assert!(
        std::fs::symlink_metadata(WANTS).is_ok(),
        "postinst enables the unit ({WANTS})"
    );
    let conffiles = run(Command::new("dpkg-query").args(["-W", "-f=${Conffiles}", PACKAGE]));
    for file in [
        CONFIG,
        "/etc/charcoal/storage-schemas.conf",
        "/etc/charcoal/storage-aggregation.conf",
        "/etc/default/charcoal",
    ] {
        assert!(
            conffiles.contains(file),
            "{file} is a conffile: {conffiles}"
        );
    }
    if tool_present("systemd-analyze", "--version") {
        run(Command::new("systemd-analyze").args(["verify", unit]));
    }
    // The configuration loads as the service user (rule files readable, keys valid).
    run(Command::new("runuser").args([
        "-u",
        "charcoal",
        "--",
        "/usr/bin/charcoal",
        "check-config",
        "--config",
        CONFIG,
    ]));
    (uid, gid)
}

/// The installed `charcoal serve`, run as the service user on free ports.
struct Service {
    /// `runuser`, which forks the server and waits for it.
    runuser: Child,
    events: Arc<Mutex<Vec<serde_json::Value>>>,
}

impl Service {
    fn start() -> Service {
        let mut command = Command::new("runuser");
        command
            .args(["-u", "charcoal", "--", "/usr/bin/charcoal", "serve"])
            .args(["--config", CONFIG, "--log-format", "json"])
            .current_dir(DATA)
            .env_remove("CHARCOAL_CONFIG")
            .stdout(Stdio::piped());
        for (key, _) in std::env::vars() {
            if key.starts_with("CHARCOAL_") && key.contains("__") {
                command.env_remove(key);
            }
        }
        for key in [
            "CHARCOAL_STATSD__LISTEN",
            "CHARCOAL_STATSD__ADMIN_LISTEN",
            "CHARCOAL_CARBON__LISTEN",
            "CHARCOAL_WEB__LISTEN",
            "CHARCOAL_AGENT__MUNIN_LISTEN",
        ] {
            command.env(key, "127.0.0.1:0");
        }
        let mut runuser = command.spawn().expect("start runuser");
        let stdout = runuser.stdout.take().expect("piped stdout");
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&events);
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                let event = serde_json::from_str(&line)
                    .unwrap_or_else(|_| serde_json::json!({ "unparsed": line }));
                sink.lock().unwrap().push(event);
            }
        });
        Service { runuser, events }
    }

    fn wait_for(&self, message: &str) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(e) = self
                .events
                .lock()
                .unwrap()
                .iter()
                .find(|e| e["message"] == message)
            {
                return e.clone();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "no {message:?} event; log: {:?}",
            self.events.lock().unwrap()
        );
    }

    /// The server process: runuser's child. (Signalling runuser itself is no good: it
    /// forwards SIGTERM and sends SIGKILL two seconds later, cutting the cache flush short.)
    fn server_pid(&self) -> i32 {
        let parent = self.runuser.id();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            for entry in std::fs::read_dir("/proc").unwrap().flatten() {
                let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                    continue;
                };
                // pid (comm) state ppid ...; comm may contain spaces, so split after ')'.
                let Some((head, rest)) = stat.rsplit_once(')') else {
                    continue;
                };
                let ppid = rest.split_whitespace().nth(1).and_then(|p| p.parse().ok());
                if ppid == Some(parent) && head.contains("(charcoal") {
                    return entry.file_name().to_string_lossy().parse().unwrap();
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("no charcoal process under runuser {parent}");
    }

    fn wait(mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Some(status) = self.runuser.try_wait().expect("try_wait") {
                return status;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("charcoal did not stop within 60 s of SIGTERM");
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if self.runuser.try_wait().ok().flatten().is_none() {
            let _ = self.runuser.kill();
            let _ = self.runuser.wait();
        }
    }
}

fn uid_of(pid: i32) -> u32 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().next())
        .and_then(|uid| uid.parse().ok())
        .expect("Uid line")
}

/// Metrics sent to the packaged service; checked on disk after it stopped.
const SENT: [&str; 2] = ["deb.check.value", "stats_counts.deb.hits"];

fn serve_as_charcoal(uid: u32) {
    let service = Service::start();
    let web = address(&service.wait_for("web API listening"), "local_addr");
    let carbon = address(&service.wait_for("carbon receiver listening"), "tcp");
    let pid = service.server_pid();
    assert_eq!(uid_of(pid), uid, "the server runs as the charcoal user");

    let (status, body) = http_get(&web, "/version");
    assert_eq!(status, 200, "{body}");
    assert!(!body.trim().is_empty());

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut conn = std::net::TcpStream::connect(&carbon).unwrap();
    for name in SENT {
        writeln!(conn, "{name} 42 {now}").unwrap();
    }
    drop(conn);
    // Found through the API once the receiver has them.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = http_get(&web, "/metrics/find?query=deb.check.*");
        assert_eq!(status, 200, "{body}");
        if body.contains("\"value\"") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "deb.check.value not found: {body}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // SAFETY: kill(2) on a pid we just read from /proc, a child of our child.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0, "kill failed");
    let events = Arc::clone(&service.events);
    let status = service.wait();
    assert!(status.success(), "exit after SIGTERM: {status}");
    // The log reader may still be taking the last lines.
    let stopped = || {
        events
            .lock()
            .unwrap()
            .iter()
            .any(|e| e["message"] == "stopped")
    };
    for _ in 0..500 {
        if stopped() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        stopped(),
        "no \"stopped\" event: {:?}",
        events.lock().unwrap()
    );
}

/// The points were written by the charcoal user with the packaged storage rules.
fn check_data_written(uid: u32, gid: u32) {
    for (name, method) in [(SENT[0], "average"), (SENT[1], "sum")] {
        let path = Path::new(STATE_DIRS[1]).join(format!("{}.wsp", name.replace('.', "/")));
        let meta = std::fs::metadata(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(
            (meta.uid(), meta.gid()),
            (uid, gid),
            "{} owner",
            path.display()
        );
        let out = run(Command::new("/usr/bin/charcoal")
            .args(["whisper", "info", "--json"])
            .arg(&path));
        let info: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(info["aggregationMethod"], method, "{name}");
        assert_eq!(info["archives"][0]["secondsPerPoint"], 10, "{name}");
    }
}

fn remove_then_purge() {
    run(Command::new("dpkg").args(["-r", PACKAGE]));
    assert!(
        !Path::new("/usr/bin/charcoal").exists(),
        "binary left after dpkg -r"
    );
    for unit in UNITS {
        assert!(!Path::new(unit).exists(), "{unit} left after dpkg -r");
    }
    // `remove` keeps configuration, data and the user, as Debian packages do.
    let status = run(Command::new("dpkg-query").args(["-W", "-f=${Status}", PACKAGE]));
    assert_eq!(status, "deinstall ok config-files");
    assert!(Path::new(CONFIG).exists(), "conffiles stay until purge");
    assert!(Path::new(DATA).exists(), "data stays until purge");
    assert!(user("charcoal").is_some());

    run(Command::new("dpkg").args(["--purge", PACKAGE]));
    assert!(!installed(), "dpkg still knows charcoal after --purge");
    for path in [
        "/etc/charcoal",
        "/etc/default/charcoal",
        DATA,
        WANTS,
        "/etc/systemd/system/charcoal.service",
        "/var/lib/systemd/deb-systemd-helper-enabled/charcoal.service.dsh-also",
        "/var/lib/systemd/deb-systemd-helper-enabled/multi-user.target.wants/charcoal.service",
        "/var/lib/systemd/deb-systemd-helper-masked/charcoal.service",
    ] {
        assert!(
            std::fs::symlink_metadata(path).is_err(),
            "{path} left after purge"
        );
    }
    assert!(user("charcoal").is_none(), "user left after purge");
    assert!(!group_exists("charcoal"), "group left after purge");
}
