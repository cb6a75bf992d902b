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
