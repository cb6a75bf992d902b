//! Binding listeners where configured. Every socket gets SO_REUSEADDR and SO_REUSEPORT so a new
//! Charcoal can start beside a running one during an upgrade; UDP sockets get large receive
//! buffers so bursts survive a busy moment.

use std::net::{SocketAddr, ToSocketAddrs};

use anyhow::{Context, Result};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// Receive buffer asked for on UDP sockets (the kernel caps it at net.core.rmem_max).
const UDP_RECEIVE_BUFFER: usize = 32 * 1024 * 1024;

/// Resolves `HOST:PORT` to one address.
pub fn resolve(address: &str) -> Result<SocketAddr> {
    address
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve {address:?} (expected HOST:PORT)"))?
        .next()
        .with_context(|| format!("{address:?} resolves to no address"))
}

/// Checks that `address` is `HOST:PORT` and resolves.
pub fn check_address(address: &str) -> Result<()> {
    resolve(address).map(|_| ())
}

fn socket(addr: SocketAddr, kind: Type, protocol: Protocol) -> Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), kind, Some(protocol))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(false).ok();
    }
    socket.set_nonblocking(true)?;
    Ok(socket)
}

/// A TCP listener on `addr`.
pub fn tcp(addr: SocketAddr) -> Result<tokio::net::TcpListener> {
    let s = socket(addr, Type::STREAM, Protocol::TCP)?;
    s.bind(&SockAddr::from(addr))
        .with_context(|| format!("cannot listen on tcp {addr}"))?;
    s.listen(1024)?;
    Ok(tokio::net::TcpListener::from_std(s.into())?)
}

/// A UDP socket on `addr` with a large receive buffer.
pub fn udp(addr: SocketAddr) -> Result<tokio::net::UdpSocket> {
    let s = socket(addr, Type::DGRAM, Protocol::UDP)?;
    let _ = s.set_recv_buffer_size(UDP_RECEIVE_BUFFER);
    s.bind(&SockAddr::from(addr))
        .with_context(|| format!("cannot listen on udp {addr}"))?;
    Ok(tokio::net::UdpSocket::from_std(s.into())?)
}
