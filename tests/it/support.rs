//! Helpers for driving the `charcoal` binary and the reference tools.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Interop tests run when `CHARCOAL_INTEROP=1`; then a missing peer fails the test.
pub fn interop_enabled() -> bool {
    std::env::var("CHARCOAL_INTEROP").is_ok_and(|v| v == "1")
}

pub fn charcoal() -> Command {
    Command::new(env!("CARGO_BIN_EXE_charcoal"))
}

/// Runs `charcoal ARGS`, expecting success; returns stdout.
pub fn run_ok(args: &[&str]) -> String {
    let out = charcoal().args(args).output().expect("run charcoal");
    assert!(
        out.status.success(),
        "charcoal {args:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

pub fn run(args: &[&str]) -> Output {
    charcoal().args(args).output().expect("run charcoal")
}

/// The venv with whisper 1.1.10 and its scripts (`.ci/setup-whisper.sh`).
pub fn whisper_venv() -> PathBuf {
    std::env::var_os("CHARCOAL_WHISPER_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/charcoal-interop/whisper"))
}

/// Runs one of whisper's own scripts with `time.time()` fixed at `now`, returns stdout.
pub fn whisper_script(script: &str, args: &[&str], now: i64) -> String {
    let venv = whisper_venv();
    let python = venv.join("bin/python");
    let path = venv.join("bin").join(script);
    assert!(
        path.exists(),
        "CHARCOAL_INTEROP=1 but {} is missing (run .ci/setup-whisper.sh)",
        path.display()
    );
    let code = format!(
        "import sys, time\ntime.time = lambda: {now}\nsys.argv = [{path:?}] + sys.argv[1:]\n\
         exec(compile(open({path:?}).read(), {path:?}, 'exec'))",
        path = path.to_string_lossy()
    );
    let out = Command::new(&python)
        .arg("-c")
        .arg(code)
        .args(args)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "{script} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// A `charcoal` server process whose JSON log is read in the background.
pub struct Server {
    pub child: std::process::Child,
    pub events: std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
}

impl Server {
    /// Starts `charcoal ARGS --log-format json` with extra environment.
    pub fn start(args: &[&str], env: &[(&str, &str)]) -> Server {
        use std::io::BufRead;
        let mut child = charcoal()
            .args(args)
            .args(["--log-format", "json"])
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start charcoal");
        let stdout = child.stdout.take().expect("piped stdout");
        let events = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = std::sync::Arc::clone(&events);
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                let event = serde_json::from_str(&line)
                    .unwrap_or_else(|_| serde_json::json!({"unparsed": line}));
                sink.lock().unwrap().push(event);
            }
        });
        Server { child, events }
    }

    /// Waits (up to 30 s: debug builds start slowly on a loaded machine) for a log event
    /// whose message is `message`; returns it.
    pub fn wait_for(&self, message: &str) -> serde_json::Value {
        for _ in 0..3000 {
            if let Some(e) = self
                .events
                .lock()
                .unwrap()
                .iter()
                .find(|e| e["message"] == message)
            {
                return e.clone();
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!(
            "no {message:?} event; log: {:?}",
            self.events.lock().unwrap()
        );
    }

    /// Sends a signal.
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child's pid.
        let rc = unsafe { libc::kill(self.child.id() as i32, signal) };
        assert_eq!(rc, 0, "kill failed");
    }

    /// Waits for the process to exit, returns its status.
    pub fn wait(mut self) -> std::process::ExitStatus {
        for _ in 0..3000 {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let _ = self.child.kill();
        panic!("charcoal did not exit within 30 s");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every `.wsp` file under `dir`.
pub fn whisper_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "wsp") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// A minimal HTTP/1.1 GET on loopback: returns (status, body).
pub fn http_get(addr: &str, path: &str) -> (u16, String) {
    http_request(addr, "GET", path, "")
}

/// A minimal HTTP/1.1 POST of `body` on loopback: returns (status, body).
pub fn http_post(addr: &str, path: &str, body: &str) -> (u16, String) {
    http_request(addr, "POST", path, body)
}

fn http_request(addr: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("connect web");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    (
        status,
        if chunked {
            dechunk(body)
        } else {
            body.to_owned()
        },
    )
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// The address a log event reports in `field`.
pub fn address(event: &serde_json::Value, field: &str) -> String {
    event[field]
        .as_str()
        .unwrap_or_else(|| panic!("no {field} in {event}"))
        .trim_start_matches("Some(")
        .trim_end_matches(')')
        .to_owned()
}

/// A loopback port for another program (a reference server, a client library, the packaged
/// service) to bind, free for TCP and UDP. It comes from below the kernel's ephemeral range
/// (32768-60999 by default), so nothing in this test process that binds port 0 or connects out
/// can take it before the peer binds it, and each port is handed out once.
pub fn peer_port() -> u16 {
    const FIRST: u32 = 20_000;
    const COUNT: u32 = 12_000;
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(u32::MAX);
    // Start somewhere else in each run, so that test binaries run side by side rarely meet.
    let _ = NEXT.compare_exchange(
        u32::MAX,
        std::process::id().wrapping_mul(7919) % COUNT,
        std::sync::atomic::Ordering::Relaxed,
        std::sync::atomic::Ordering::Relaxed,
    );
    for _ in 0..COUNT {
        let port = (FIRST + NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % COUNT) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
            && std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok()
        {
            return port;
        }
    }
    panic!("no free port in {FIRST}..{}", FIRST + COUNT);
}

/// A child process that is killed and reaped when dropped (reference tools in interop tests).
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
