//! UDP receive: one socket per worker in a SO_REUSEPORT group, each drained by its own
//! thread with batched `recvmmsg` calls into reused buffers.
//!
//! Cost per datagram is what limits ingest, so the loop avoids the two expensive things a
//! naive receiver does at high rates: waking up once per datagram (a thread blocked on the
//! socket is woken by every send, which costs both sides a context switch), and one
//! syscall per few datagrams. When a receive returns a partial batch the queue is empty;
//! instead of blocking at once, the worker sleeps [`COALESCE`] so the next call finds a
//! full batch waiting. Only an empty queue blocks in the kernel.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use nix::sys::socket::{setsockopt, sockopt};
use socket2::{Domain, Protocol, Socket, Type};
use tokio_util::sync::CancellationToken;

use crate::aggregate::{Encoding, Ingester};
use crate::error::ServerError;
use crate::stats::Stats;

/// Datagrams fetched per `recvmmsg` call.
const BATCH: usize = 256;
/// Buffer per datagram: the largest UDP payload (IPv4 65,507; IPv6 65,527 without
/// jumbograms). The batch buffer is allocated zeroed and only the pages datagrams reach are
/// ever touched, so small datagrams keep the resident size near one page per slot.
const MAX_DATAGRAM: usize = 65_536;
/// How long a blocked receive waits before looking at the cancellation token.
const POLL: Duration = Duration::from_millis(100);
/// Pause after a partial batch (the queue ran dry while traffic flows). At 300,000
/// datagrams/s it lets about 150 datagrams queue (well under 1 MB of socket buffer) and
/// adds at most this much delay to a sample, against a flush interval of seconds.
const COALESCE: Duration = Duration::from_micros(500);

/// Binds `count` UDP sockets to `addr` in one SO_REUSEPORT group, each with a receive buffer
/// of `recv_buffer` bytes (SO_RCVBUFFORCE when permitted, else SO_RCVBUF, which the kernel
/// caps at `net.core.rmem_max`). With port 0 all sockets share the port the first one got.
pub fn bind_udp(
    addr: SocketAddr,
    count: usize,
    recv_buffer: usize,
) -> Result<Vec<UdpSocket>, ServerError> {
    let mut out: Vec<UdpSocket> = Vec::with_capacity(count.max(1));
    let mut target = addr;
    for _ in 0..count.max(1) {
        let bind_err = |source| ServerError::Bind {
            addr: target,
            source,
        };
        let sock = Socket::new(
            Domain::for_address(target),
            Type::DGRAM,
            Some(Protocol::UDP),
        )
        .map_err(bind_err)?;
        sock.set_reuse_port(true).map_err(bind_err)?;
        if recv_buffer > 0 {
            // The kernel doubles the value it is given (bookkeeping overhead).
            let forced = setsockopt(&sock, sockopt::RcvBufForce, &(recv_buffer / 2)).is_ok();
            if !forced && let Err(e) = sock.set_recv_buffer_size(recv_buffer) {
                tracing::warn!(error = %e, requested = recv_buffer, "statsd: SO_RCVBUF not set");
            }
        }
        sock.bind(&target.into()).map_err(bind_err)?;
        let std_sock: UdpSocket = sock.into();
        if target.port() == 0 {
            target = std_sock.local_addr().map_err(|source| ServerError::Io {
                context: "reading the bound UDP address",
                source,
            })?;
        }
        out.push(std_sock);
    }
    if let Some(first) = out.first() {
        let actual = socket2::SockRef::from(first)
            .recv_buffer_size()
            .unwrap_or(0);
        tracing::info!(addr = %target, sockets = out.len(), recv_buffer = actual, "statsd: UDP bound");
    }
    Ok(out)
}

/// Reused `recvmmsg` state: one buffer of `BATCH` slots and the headers pointing into it.
struct RecvBatch {
    buf: Box<[u8]>,
    iovs: Box<[libc::iovec]>,
    hdrs: Box<[libc::mmsghdr]>,
}

impl RecvBatch {
    fn new() -> RecvBatch {
        let iov = libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        };
        // SAFETY: `mmsghdr` is a plain C struct (integers and raw pointers) for which all
        // zero bytes is a valid value (null pointers, zero lengths).
        let hdr: libc::mmsghdr = unsafe { std::mem::zeroed() };
        RecvBatch {
            buf: vec![0u8; BATCH * MAX_DATAGRAM].into_boxed_slice(),
            iovs: vec![iov; BATCH].into_boxed_slice(),
            hdrs: vec![hdr; BATCH].into_boxed_slice(),
        }
    }

    /// One `recvmmsg(2)` call; the number of datagrams received.
    fn recv(&mut self, fd: RawFd, flags: libc::c_int) -> io::Result<usize> {
        // Pointers are set afresh from `&mut self` on every call, so nothing else can hold
        // a reference into the buffer while the kernel writes to it.
        let base = self.buf.as_mut_ptr();
        for (i, iov) in self.iovs.iter_mut().enumerate() {
            // `wrapping_add` stays inside `buf`: i * MAX_DATAGRAM < buf.len().
            iov.iov_base = base.wrapping_add(i * MAX_DATAGRAM).cast();
            iov.iov_len = MAX_DATAGRAM;
        }
        let iovs = self.iovs.as_mut_ptr();
        for (i, h) in self.hdrs.iter_mut().enumerate() {
            h.msg_hdr.msg_name = std::ptr::null_mut();
            h.msg_hdr.msg_namelen = 0;
            h.msg_hdr.msg_iov = iovs.wrapping_add(i);
            h.msg_hdr.msg_iovlen = 1;
            h.msg_hdr.msg_control = std::ptr::null_mut();
            h.msg_hdr.msg_controllen = 0;
            h.msg_hdr.msg_flags = 0;
            h.msg_len = 0;
        }
        // SAFETY: `hdrs` holds BATCH initialised headers; header i points to iovec i,
        // which points to slot i of `buf` (MAX_DATAGRAM bytes, in bounds). All three are
        // owned by `self`, borrowed mutably for the whole call, and outlive it; no source
        // address or control buffer is requested (null with length 0). The timeout
        // argument may be null.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                self.hdrs.as_mut_ptr(),
                BATCH as libc::c_uint,
                flags,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok((n as usize).min(BATCH))
        }
    }

    /// The payloads of the first `n` datagrams of the last receive.
    fn datagrams(&self, n: usize) -> impl Iterator<Item = &[u8]> {
        self.hdrs[..n].iter().enumerate().map(|(i, h)| {
            let len = (h.msg_len as usize).min(MAX_DATAGRAM);
            &self.buf[i * MAX_DATAGRAM..i * MAX_DATAGRAM + len]
        })
    }
}

/// Runs one receive worker until `cancel`; then drains what the socket still holds.
pub(crate) fn run_worker(
    sock: UdpSocket,
    mut ing: Ingester,
    cancel: CancellationToken,
    stats: &Stats,
) {
    if let Err(e) = sock.set_read_timeout(Some(POLL)) {
        tracing::warn!(error = %e, "statsd: cannot set UDP receive timeout");
    }
    let fd = sock.as_raw_fd();
    let mut batch = RecvBatch::new();
    loop {
        let draining = cancel.is_cancelled();
        // MSG_WAITFORONE blocks (up to POLL) only while the queue is empty.
        let flags = if draining {
            libc::MSG_DONTWAIT
        } else {
            libc::MSG_WAITFORONE
        };
        match batch.recv(fd, flags) {
            Ok(0) => {
                if draining {
                    break;
                }
            }
            Ok(n) => {
                ing.ingest(batch.datagrams(n), Encoding::Utf8);
                if n < BATCH && !draining {
                    std::thread::sleep(COALESCE);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if draining {
                    break;
                }
            }
            Err(e) => {
                Stats::add(&stats.receive_errors, 1);
                tracing::warn!(error = %e, "statsd: UDP receive failed");
                if draining {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}
