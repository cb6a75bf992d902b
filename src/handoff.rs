//! Upgrades without losing a metric: a new process takes over the old one's listening sockets.
//!
//! A running process listens on a Unix socket (`[ops] handoff_socket`, by default
//! `.charcoal.sock` in the data directory). A new process started with the same configuration
//! connects to it first, asks for the sockets, receives them (SCM_RIGHTS), starts serving
//! them and confirms; only then does the old process stop as on SIGTERM, draining what it has
//! already read. A new process that fails before confirming leaves the old one serving. The kernel
//! sockets never close in between, so no datagram in a receive buffer and no connection in an
//! accept queue is lost, which SO_REUSEPORT alone cannot promise (a socket leaving a reuseport
//! group drops what is queued on it). Sockets bound without a running predecessor still get
//! SO_REUSEPORT, so the two processes can also simply overlap.

use std::io::{IoSlice, IoSliceMut};
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, bail};
use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};
use tokio_util::sync::CancellationToken;

const REQUEST: &[u8] = b"charcoal-handoff 1\n";
/// The successor's word that it serves the sockets (the predecessor may stop).
const CONFIRM: &[u8] = b"serving\n";
/// How long a predecessor waits for that word before it goes on serving alone.
const CONFIRM_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);
/// The kernel passes at most this many descriptors in one message (SCM_MAX_FD).
const MAX_FDS: usize = 253;

/// Sockets inherited from the previous process, by name, not yet taken.
#[derive(Default)]
pub struct Inherited {
    sockets: Vec<(String, OwnedFd)>,
    /// The connection to the previous process, until this one confirms it serves.
    predecessor: Option<UnixStream>,
}

/// The sockets this process serves (duplicates, for handing them on).
#[derive(Default)]
pub struct Inventory {
    sockets: Vec<(String, OwnedFd)>,
}

impl Inventory {
    /// Records a socket under `name`.
    pub fn add(&mut self, name: &str, socket: &impl AsFd) -> Result<()> {
        let fd = socket.as_fd().try_clone_to_owned()?;
        self.sockets.push((name.to_owned(), fd));
        Ok(())
    }
}

impl Inherited {
    fn take(&mut self, name: &str) -> Option<OwnedFd> {
        let index = self.sockets.iter().position(|(n, _)| n == name)?;
        Some(self.sockets.remove(index).1)
    }

    /// The inherited TCP listener `name`, if it listens where `want` says (any port when
    /// `want` has port 0).
    pub fn tcp(&mut self, name: &str, want: SocketAddr) -> Option<std::net::TcpListener> {
        let fd = self.take(name)?;
        let listener = std::net::TcpListener::from(fd);
        matches(listener.local_addr().ok()?, want).then_some(listener)
    }

    /// The inherited UDP socket `name`, if it is bound where `want` says.
    pub fn udp(&mut self, name: &str, want: SocketAddr) -> Option<std::net::UdpSocket> {
        let fd = self.take(name)?;
        let socket = std::net::UdpSocket::from(fd);
        matches(socket.local_addr().ok()?, want).then_some(socket)
    }

    /// Names left over (not taken): logged, then closed.
    pub fn leftovers(&self) -> Vec<String> {
        self.sockets.iter().map(|(n, _)| n.clone()).collect()
    }

    /// Whether these sockets came from a running predecessor still waiting to stop.
    pub fn has_predecessor(&self) -> bool {
        self.predecessor.is_some()
    }

    /// Tells the predecessor that this process serves now: it stops and drains.
    pub fn confirm(&mut self) {
        if let Some(mut stream) = self.predecessor.take() {
            use std::io::Write;
            if let Err(e) = stream.write_all(CONFIRM) {
                tracing::warn!(error = %e, "could not tell the previous process to stop");
            }
        }
    }
}

fn matches(have: SocketAddr, want: SocketAddr) -> bool {
    (want.port() == 0 || have.port() == want.port())
        && (want.ip().is_unspecified() || have.ip() == want.ip())
}

/// Asks the process serving `path` for its sockets. `None` when no process answers there (a
/// stale socket file is removed).
pub fn request(path: &Path) -> Result<Option<Inherited>> {
    let stream = match UnixStream::connect(path) {
        Ok(s) => s,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            if e.kind() == std::io::ErrorKind::ConnectionRefused {
                let _ = std::fs::remove_file(path);
            }
            return Ok(None);
        }
        Err(e) => return Err(e).with_context(|| format!("handoff socket {}", path.display())),
    };
    stream.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    use std::io::Write;
    (&stream).write_all(REQUEST)?;
    let mut names = vec![0u8; 64 * 1024];
    let mut cmsg = nix::cmsg_space!([RawFd; MAX_FDS]);
    let (len, fds) = {
        let mut iov = [IoSliceMut::new(&mut names)];
        let msg = recvmsg::<()>(
            stream.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .context("receiving sockets from the running process")?;
        let mut fds = Vec::new();
        for c in msg.cmsgs()? {
            if let ControlMessageOwned::ScmRights(received) = c {
                // SAFETY: the kernel just installed these descriptors in our table for us;
                // nothing else owns them.
                fds.extend(
                    received
                        .into_iter()
                        .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
                );
            }
        }
        (msg.bytes, fds)
    };
    let names: Vec<String> = serde_json::from_slice(&names[..len])
        .context("the running process sent an unreadable socket list")?;
    if names.len() != fds.len() {
        bail!("handoff: {} names for {} sockets", names.len(), fds.len());
    }
    Ok(Some(Inherited {
        sockets: names.into_iter().zip(fds).collect(),
        predecessor: Some(stream),
    }))
}

/// Listens on `path` for a successor. On a request it sends every socket of `inventory`; when
/// the successor confirms it serves them, cancels `replaced` (the cue for this process to
/// stop) and stops listening. Without a confirmation it keeps serving and listening.
pub fn serve(
    path: PathBuf,
    inventory: Arc<Mutex<Inventory>>,
    replaced: CancellationToken,
    shutdown: CancellationToken,
) -> Result<tokio::task::JoinHandle<()>> {
    let _ = std::fs::remove_file(&path);
    let listener =
        UnixListener::bind(&path).with_context(|| format!("handoff socket {}", path.display()))?;
    listener.set_nonblocking(true)?;
    let listener = tokio::net::UnixListener::from_std(listener)?;
    Ok(tokio::spawn(async move {
        loop {
            let stream = tokio::select! {
                _ = shutdown.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok((s, _)) => s,
                    Err(_) => continue,
                },
            };
            let handed = async {
                let mut request = [0u8; REQUEST.len()];
                use tokio::io::AsyncReadExt;
                let mut stream = stream;
                stream.read_exact(&mut request).await?;
                if request != REQUEST {
                    bail!("unknown handoff request");
                }
                let stream = stream.into_std()?;
                stream.set_nonblocking(false)?;
                let count = {
                    let inventory = inventory.lock().unwrap_or_else(|p| p.into_inner());
                    send(&stream, &inventory)?
                };
                tracing::info!(
                    sockets = count,
                    "handed the listening sockets to a new process"
                );
                stream.set_nonblocking(true)?;
                let mut stream = tokio::net::UnixStream::from_std(stream)?;
                let mut word = [0u8; CONFIRM.len()];
                tokio::time::timeout(CONFIRM_TIMEOUT, stream.read_exact(&mut word))
                    .await
                    .context("no word from the new process")?
                    .context("the new process went away before serving")?;
                if word != CONFIRM {
                    bail!("the new process said something else than that it serves");
                }
                Ok(count)
            }
            .await;
            match handed {
                Ok(_) => {
                    tracing::info!("the new process serves the sockets; stopping");
                    replaced.cancel();
                    break;
                }
                Err(e) => tracing::warn!(
                    error = %format!("{e:#}"),
                    "handoff did not complete; still serving"
                ),
            }
        }
        // A successor binds the path next; ours is gone either way.
        let _ = std::fs::remove_file(&path);
    }))
}

fn send(stream: &UnixStream, inventory: &Inventory) -> Result<usize> {
    let names: Vec<&str> = inventory.sockets.iter().map(|(n, _)| n.as_str()).collect();
    let fds: Vec<RawFd> = inventory
        .sockets
        .iter()
        .map(|(_, fd)| fd.as_raw_fd())
        .collect();
    if fds.len() > MAX_FDS {
        bail!("too many sockets to hand over ({})", fds.len());
    }
    let payload = serde_json::to_vec(&names)?;
    sendmsg::<()>(
        stream.as_raw_fd(),
        &[IoSlice::new(&payload)],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )?;
    Ok(fds.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sockets_pass_to_a_successor_and_the_predecessor_is_told_to_stop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.sock");
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let (tcp_addr, udp_addr) = (tcp.local_addr().unwrap(), udp.local_addr().unwrap());
        let mut inventory = Inventory::default();
        inventory.add("carbon.tcp", &tcp).unwrap();
        inventory.add("carbon.udp", &udp).unwrap();
        let replaced = CancellationToken::new();
        let task = serve(
            path.clone(),
            Arc::new(Mutex::new(inventory)),
            replaced.clone(),
            CancellationToken::new(),
        )
        .unwrap();
        let requested = path.clone();
        let mut inherited = tokio::task::spawn_blocking(move || request(&requested))
            .await
            .unwrap()
            .unwrap()
            .expect("a running process answers");
        // The predecessor stops only once the successor says it serves.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert!(!replaced.is_cancelled());
        assert!(inherited.has_predecessor());
        inherited.confirm();
        task.await.unwrap();
        assert!(replaced.is_cancelled());
        assert!(!path.exists());
        // A datagram sent before the handoff, still queued, is read by the successor.
        let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        sender.send_to(b"queued", udp_addr).unwrap();
        let got = inherited
            .udp("carbon.udp", "127.0.0.1:0".parse().unwrap())
            .unwrap();
        let mut buf = [0u8; 16];
        let (n, _) = got.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"queued");
        // The same listening socket: a connection made to it is accepted through the copy.
        let client = std::net::TcpStream::connect(tcp_addr).unwrap();
        let listener = inherited.tcp("carbon.tcp", tcp_addr).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        assert_eq!(accepted.peer_addr().unwrap(), client.local_addr().unwrap());
        // A socket asked for at another address is not used.
        assert!(inherited.tcp("nope", tcp_addr).is_none());
    }

    #[tokio::test]
    async fn a_successor_that_fails_before_serving_leaves_the_predecessor_serving() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.sock");
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut inventory = Inventory::default();
        inventory.add("carbon.tcp", &tcp).unwrap();
        let replaced = CancellationToken::new();
        let shutdown = CancellationToken::new();
        let task = serve(
            path.clone(),
            Arc::new(Mutex::new(inventory)),
            replaced.clone(),
            shutdown.clone(),
        )
        .unwrap();
        // A successor that takes the sockets and dies without confirming.
        let requested = path.clone();
        let failed = tokio::task::spawn_blocking(move || request(&requested))
            .await
            .unwrap()
            .unwrap()
            .expect("a running process answers");
        drop(failed);
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert!(
            !replaced.is_cancelled(),
            "the predecessor must keep serving"
        );
        // A later successor can still take over.
        let requested = path.clone();
        let mut second = tokio::task::spawn_blocking(move || request(&requested))
            .await
            .unwrap()
            .unwrap()
            .expect("the predecessor still answers");
        second.confirm();
        task.await.unwrap();
        assert!(replaced.is_cancelled());
    }

    #[test]
    fn nobody_running_means_nothing_inherited() {
        let dir = tempfile::tempdir().unwrap();
        assert!(request(&dir.path().join("none.sock")).unwrap().is_none());
        // A stale socket file (no process behind it) is removed.
        let stale = dir.path().join("stale.sock");
        drop(UnixListener::bind(&stale).unwrap());
        assert!(request(&stale).unwrap().is_none());
        assert!(!stale.exists());
    }
}
