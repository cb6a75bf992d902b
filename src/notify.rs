//! systemd's readiness protocol (`sd_notify`): under `Type=notify` the service manager learns
//! when Charcoal serves, which process is the main one after an in-place upgrade (SIGUSR2),
//! and when it is stopping. Outside systemd ($NOTIFY_SOCKET unset) nothing is sent.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixDatagram;

/// Sends `state` (e.g. `READY=1`, or several `KEY=value` lines) to the service manager.
pub fn notify(state: &str) {
    let Some(target) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    if let Err(e) = send(target.as_bytes(), state) {
        tracing::warn!(error = %e, state, "could not notify the service manager");
    }
}

fn send(target: &[u8], state: &str) -> std::io::Result<usize> {
    let socket = UnixDatagram::unbound()?;
    match target.strip_prefix(b"@") {
        // An abstract socket name (systemd's default is a path, but both are allowed).
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            let address = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            socket.send_to_addr(state.as_bytes(), &address)
        }
        None => socket.send_to(state.as_bytes(), std::ffi::OsStr::from_bytes(target)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_reach_a_path_and_an_abstract_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let receiver = UnixDatagram::bind(&path).unwrap();
        send(path.as_os_str().as_bytes(), "MAINPID=42\nREADY=1").unwrap();
        let mut buf = [0u8; 64];
        let n = receiver.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"MAINPID=42\nREADY=1");

        use std::os::linux::net::SocketAddrExt;
        let name = format!("charcoal-notify-test-{}", std::process::id());
        let address = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let receiver = UnixDatagram::bind_addr(&address).unwrap();
        send(format!("@{name}").as_bytes(), "STOPPING=1").unwrap();
        let n = receiver.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"STOPPING=1");
        // Nobody listening: an error to log, not a crash.
        assert!(send(dir.path().join("none").as_os_str().as_bytes(), "READY=1").is_err());
    }
}
