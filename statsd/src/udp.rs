//! UDP receive: one socket per worker in a SO_REUSEPORT group, each drained by its own
//! thread with batched `recvmmsg` calls into reused buffers.

use std::io::IoSliceMut;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg, setsockopt, sockopt};
use socket2::{Domain, Protocol, Socket, Type};
use tokio_util::sync::CancellationToken;

use crate::aggregate::{Encoding, Ingester};
use crate::error::ServerError;
use crate::stats::Stats;

/// Datagrams fetched per `recvmmsg` call.
const BATCH: usize = 64;
/// Largest UDP payload (IPv4 65,507; IPv6 65,527 without jumbograms).
const MAX_DATAGRAM: usize = 65_536;
/// How long a blocked receive waits before looking at the cancellation token.
const POLL: Duration = Duration::from_millis(100);

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
    let mut bufs: Vec<Vec<u8>> = (0..BATCH).map(|_| vec![0u8; MAX_DATAGRAM]).collect();
    let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
    let mut lens = [0usize; BATCH];
    loop {
        let draining = cancel.is_cancelled();
        let flags = if draining {
            MsgFlags::MSG_DONTWAIT
        } else {
            MsgFlags::MSG_WAITFORONE
        };
        let received = {
            let mut iovs: Vec<[IoSliceMut<'_>; 1]> =
                bufs.iter_mut().map(|b| [IoSliceMut::new(b)]).collect();
            match recvmmsg(fd, &mut headers, iovs.iter_mut(), flags, None) {
                Ok(results) => {
                    let mut n = 0;
                    for msg in results {
                        if n < BATCH {
                            lens[n] = msg.bytes;
                            n += 1;
                        }
                    }
                    Ok(n)
                }
                Err(e) => Err(e),
            }
        };
        match received {
            Ok(0) => {
                if draining {
                    break;
                }
            }
            Ok(n) => {
                ing.ingest(
                    bufs.iter()
                        .zip(&lens[..n])
                        .map(|(b, &len)| &b[..len.min(b.len())]),
                    Encoding::Utf8,
                );
            }
            Err(Errno::EAGAIN | Errno::EINTR) => {
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
