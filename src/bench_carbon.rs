//! `charcoal bench carbon`: a Carbon load generator, plaintext or pickle. N TCP connections
//! send `points` rounds of one point per metric for `metrics` distinct metrics, bounded by the
//! point count and a duration; prints what was sent and the rate reached.

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
    /// Send the pickle protocol (to a pickle port, e.g. Carbon's 2004) as carbon-relay does:
    /// frames of up to 500 points, pickle protocol 2.
    #[arg(long)]
    pickle: bool,
}

/// carbon-relay's MAX_DATAPOINTS_PER_MESSAGE.
const PICKLE_BATCH: usize = 500;

/// Starts a pickle frame in `out` (a list, pickle protocol 2 as Python writes it, without
/// the memo opcodes readers do not need); returns where it starts.
fn start_pickle(out: &mut Vec<u8>) -> usize {
    let at = out.len();
    out.extend_from_slice(&[0, 0, 0, 0, 0x80, 2, b']', b'(']);
    at
}

/// Appends `(name, (timestamp, value))` to the frame being written.
fn pickle_point(out: &mut Vec<u8>, name: std::fmt::Arguments<'_>, timestamp: i64, value: f64) {
    out.push(b'X');
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    let _ = out.write_fmt(name);
    let length = (out.len() - at - 4) as u32;
    out[at..at + 4].copy_from_slice(&length.to_le_bytes());
    out.push(b'J');
    out.extend_from_slice(&(timestamp as i32).to_le_bytes());
    out.push(b'G');
    out.extend_from_slice(&value.to_be_bytes());
    out.extend_from_slice(&[0x86, 0x86]);
}

/// Ends the frame started at `at`: closes the list and writes its length.
fn end_pickle(out: &mut Vec<u8>, at: usize) {
    out.extend_from_slice(b"e.");
    let length = (out.len() - at - 4) as u32;
    out[at..at + 4].copy_from_slice(&length.to_be_bytes());
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
    // The pickle frame being written: where it starts and how many points it has.
    let (mut frame, mut in_frame) = (0, 0);
    let mut sent = 0u64;
    for round in 0..args.points {
        let timestamp = first + round as i64 * args.step;
        for m in (c..args.metrics).step_by(n) {
            // `<prefix>.b<m % 100>.m<m> <value> <timestamp>`
            if args.pickle {
                if in_frame == 0 {
                    frame = start_pickle(&mut buf);
                }
                let name = format_args!("{}.b{}.m{m}", args.prefix, m % 100);
                pickle_point(&mut buf, name, timestamp, round as f64);
                in_frame += 1;
                if in_frame == PICKLE_BATCH {
                    end_pickle(&mut buf, frame);
                    in_frame = 0;
                }
            } else {
                let _ = writeln!(buf, "{}.b{}.m{m} {round} {timestamp}", args.prefix, m % 100);
            }
            sent += 1;
            // Only whole frames are sent: their length is written when they end.
            if buf.len() >= (1 << 20) - 256 && in_frame == 0 {
                stream.write_all(&buf)?;
                buf.clear();
                if Instant::now() >= deadline {
                    return Ok(sent);
                }
            }
        }
    }
    if in_frame > 0 {
        end_pickle(&mut buf, frame);
    }
    stream.write_all(&buf)?;
    stream.flush()?;
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pickle_frames_are_what_python_reads() {
        // Python: pickle.loads(payload) == [('a.b', (1700000000, 1.5))]; the bytes below are
        // pickle.dumps of that list at protocol 2 with its memo opcodes (q..) left out.
        let mut out = Vec::new();
        let at = start_pickle(&mut out);
        pickle_point(&mut out, format_args!("a.{}", "b"), 1_700_000_000, 1.5);
        end_pickle(&mut out, at);
        let payload =
            b"\x80\x02](X\x03\x00\x00\x00a.bJ\x00\xf1SeG?\xf8\x00\x00\x00\x00\x00\x00\x86\x86e.";
        assert_eq!(&out[..4], &(payload.len() as u32).to_be_bytes());
        assert_eq!(&out[4..], payload);
    }
}
