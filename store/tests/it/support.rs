//! Shared test helpers: the interop switch and a reference oracle.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use serde_json::Value;

/// Interop tests run when `CHARCOAL_INTEROP=1` (set by `.ci/run`); then a missing peer is a
/// failure, not a skip.
pub fn interop_enabled() -> bool {
    std::env::var("CHARCOAL_INTEROP").is_ok_and(|v| v == "1")
}

/// The Python that has whisper 1.1.10 (installed by `.ci/setup-whisper.sh`).
pub fn whisper_python() -> PathBuf {
    std::env::var_os("CHARCOAL_WHISPER_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/charcoal-interop/whisper/bin/python"))
}

/// Python's whisper behind a JSON-lines pipe (`tests/data/whisper_oracle.py`).
pub struct Oracle {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Oracle {
    /// `None` when interop tests are off; panics when they are on and whisper is missing.
    pub fn start() -> Option<Oracle> {
        if !interop_enabled() {
            eprintln!("CHARCOAL_INTEROP is not 1: skipping the comparison with Python's whisper");
            return None;
        }
        let python = whisper_python();
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/whisper_oracle.py");
        let mut child = Command::new(&python)
            .arg(&script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "CHARCOAL_INTEROP=1 but {} cannot run: {e}",
                    python.display()
                )
            });
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut oracle = Oracle {
            child,
            stdin,
            stdout,
        };
        // Fail now, with a clear message, if whisper is not importable.
        let probe = oracle.call(serde_json::json!({"op": "info", "path": "/nonexistent"}));
        assert!(
            probe.get("ok").is_some(),
            "whisper oracle is not working: {probe}"
        );
        Some(oracle)
    }

    /// Sends one request and returns `{"ok": result}` or `{"error": class, "message": text}`.
    pub fn call(&mut self, request: Value) -> Value {
        writeln!(self.stdin, "{request}").expect("write to oracle");
        self.stdin.flush().expect("flush oracle");
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("read from oracle");
        assert!(
            !line.is_empty(),
            "whisper oracle exited (request {request})"
        );
        serde_json::from_str(&line).expect("oracle JSON")
    }

    /// [`call`](Self::call), panicking on a reference error.
    pub fn ok(&mut self, request: Value) -> Value {
        let reply = self.call(request.clone());
        match reply.get("ok") {
            Some(v) => v.clone(),
            None => panic!("whisper refused {request}: {reply}"),
        }
    }
}

impl Drop for Oracle {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A small deterministic generator (xorshift64*), so failures replay.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}
