//! The yardstick for the StatsD receive path: a bare `recvmmsg` loop that drains a UDP
//! socket and parses nothing, only counting datagrams, bytes and lines (newlines + 1 per
//! non-empty datagram, which is what `bench_statsd` sends). `benches/statsd-vs-etsy.sh`
//! runs it on the same load as Charcoal's server and prints Charcoal's rate as a
//! percentage of this one.
//!
//! `recvmmsg_baseline --listen 127.0.0.1:8125 [--batch 64] [--pause-us 0]
//! [--recv-buffer 33554432] [--idle 2s]`: binds one socket with the server's default
//! receive buffer, blocks in `recvmmsg(MSG_WAITFORONE)` (the plain loop; `--pause-us N`
//! adds the server's trick of sleeping N µs after a partial batch), and once datagrams
//! have arrived, exits after `--idle` without any, printing one line:
//! `received D datagrams L lines B bytes in S s, cpu C s` (S: first to last datagram;
//! C: user + system CPU of the whole process).

use std::io::IoSliceMut;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::resource::{UsageWho, getrusage};
use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg, setsockopt, sockopt};
use socket2::{Domain, Protocol, Socket, Type};

/// Largest UDP payload.
const MAX_DATAGRAM: usize = 65_536;

fn main() -> anyhow::Result<()> {
    let mut listen: SocketAddr = "127.0.0.1:8125".parse()?;
    let mut batch = 64usize;
    let mut pause = Duration::ZERO;
    let mut recv_buffer = 32 * 1024 * 1024usize;
    let mut idle = Duration::from_secs(2);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || {
            args.next()
                .ok_or_else(|| anyhow::anyhow!("{a} needs a value"))
        };
        match a.as_str() {
            "--listen" => listen = val()?.parse()?,
            "--batch" => batch = val()?.parse::<usize>()?.clamp(1, 1024),
            "--pause-us" => pause = Duration::from_micros(val()?.parse()?),
            "--recv-buffer" => recv_buffer = val()?.parse()?,
            "--idle" => idle = humantime::parse_duration(&val()?)?,
            other => anyhow::bail!("unknown argument {other}"),
        }
    }

    let sock = Socket::new(
        Domain::for_address(listen),
        Type::DGRAM,
        Some(Protocol::UDP),
    )?;
    // The same buffer setting as `charcoal_statsd::bind_udp`.
    if setsockopt(&sock, sockopt::RcvBufForce, &(recv_buffer / 2)).is_err() {
        sock.set_recv_buffer_size(recv_buffer)?;
    }
    sock.bind(&listen.into())?;
    sock.set_read_timeout(Some(Duration::from_millis(100)))?;
    let fd = sock.as_raw_fd();

    let mut bufs: Vec<Vec<u8>> = (0..batch).map(|_| vec![0u8; MAX_DATAGRAM]).collect();
    let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(batch, None);
    let mut lens = vec![0usize; batch];
    let (mut datagrams, mut lines, mut bytes) = (0u64, 0u64, 0u64);
    let mut first: Option<Instant> = None;
    let mut last = Instant::now();
    loop {
        let got = {
            let mut iovs: Vec<[IoSliceMut<'_>; 1]> =
                bufs.iter_mut().map(|b| [IoSliceMut::new(b)]).collect();
            match recvmmsg(
                fd,
                &mut headers,
                iovs.iter_mut(),
                MsgFlags::MSG_WAITFORONE,
                None,
            ) {
                Ok(results) => {
                    let mut n = 0;
                    for (slot, msg) in lens.iter_mut().zip(results) {
                        *slot = msg.bytes;
                        n += 1;
                    }
                    Ok(n)
                }
                Err(e) => Err(e),
            }
        };
        match got {
            Ok(n) if n > 0 => {
                let now = Instant::now();
                first.get_or_insert(now);
                last = now;
                for (b, &len) in bufs.iter().zip(&lens[..n]) {
                    let d = &b[..len.min(b.len())];
                    datagrams += 1;
                    bytes += d.len() as u64;
                    if !d.is_empty() {
                        lines += 1 + d.iter().filter(|&&c| c == b'\n').count() as u64;
                    }
                }
                if n < batch && !pause.is_zero() {
                    std::thread::sleep(pause);
                }
            }
            Ok(_) | Err(Errno::EAGAIN | Errno::EINTR) => {
                if first.is_some() && last.elapsed() >= idle {
                    break;
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    let secs = first.map_or(0.0, |f| last.duration_since(f).as_secs_f64());
    let usage = getrusage(UsageWho::RUSAGE_SELF)?;
    let cpu = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
    println!(
        "received {datagrams} datagrams {lines} lines {bytes} bytes in {secs:.3} s, cpu {:.3} s",
        cpu(usage.user_time()) + cpu(usage.system_time())
    );
    Ok(())
}
