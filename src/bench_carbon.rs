//! `charcoal bench carbon`: a Carbon plaintext load generator. N TCP connections send
//! `points` rounds of one point per metric for `metrics` distinct metrics, bounded by the point
//! count and a duration; prints what was sent and the rate reached.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// Options of `charcoal bench carbon`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchCarbonArgs {
    /// Carbon plaintext address (must be a loopback address).
    #[arg(long, default_value = "127.0.0.1:2003")]
    target: String,
    /// TCP connections, each on its own thread.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Distinct metric names (`<prefix>.m<i>` spread over 100 branches).
    #[arg(long, default_value_t = 100_000)]
    metrics: usize,
    /// Rounds: points per metric, one interval apart.
    #[arg(long, default_value_t = 20)]
    points: usize,
    /// Seconds between a metric's points.
    #[arg(long, default_value_t = 10)]
    step: i64,
    /// Timestamp of the first round (default: now - points × step).
    #[arg(long)]
    first_timestamp: Option<i64>,
    /// Stop after this long at the latest.
    #[arg(long, default_value = "60s", value_parser = charcoal_store::duration_text::parse)]
    duration: Duration,
    /// Name prefix.
    #[arg(long, default_value = "bench")]
    prefix: String,
}

pub fn run(args: &BenchCarbonArgs) -> Result<()> {
    let target: SocketAddr = crate::listen::resolve(&args.target)?;
    if !target.ip().is_loopback() {
        bail!("load is only sent to loopback addresses, not {target}");
    }
    let connections = args.connections.clamp(1, 256);
    let first = args.first_timestamp.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64)
            - args.points as i64 * args.step
    });
    let deadline = Instant::now() + args.duration;
    let started = Instant::now();
    let handles: Vec<_> = (0..connections)
        .map(|c| {
            let args = args.clone();
            std::thread::spawn(move || send(&args, target, c, connections, first, deadline))
        })
        .collect();
    let mut sent = 0u64;
    for h in handles {
        sent += h
            .join()
            .map_err(|_| anyhow::anyhow!("a sender thread panicked"))??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "sent {sent} points ({} metrics x {} rounds) over {connections} connections in {elapsed:.3} s = {:.0} points/s",
        args.metrics,
        args.points,
        sent as f64 / elapsed
    );
    Ok(())
}

/// One connection's share: metrics `c, c + n, ...` for every round.
fn send(
    args: &BenchCarbonArgs,
    target: SocketAddr,
    c: usize,
    n: usize,
    first: i64,
    deadline: Instant,
) -> Result<u64> {
    let mut stream = TcpStream::connect(target).with_context(|| format!("connect {target}"))?;
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 20);
    let mut sent = 0u64;
    for round in 0..args.points {
        let timestamp = first + round as i64 * args.step;
        for m in (c..args.metrics).step_by(n) {
            // `<prefix>.b<m % 100>.m<m> <value> <timestamp>`
            let _ = writeln!(buf, "{}.b{}.m{m} {round} {timestamp}", args.prefix, m % 100);
            sent += 1;
            if buf.len() >= (1 << 20) - 256 {
                stream.write_all(&buf)?;
                buf.clear();
                if Instant::now() >= deadline {
                    return Ok(sent);
                }
            }
        }
    }
    stream.write_all(&buf)?;
    stream.flush()?;
    Ok(sent)
}
