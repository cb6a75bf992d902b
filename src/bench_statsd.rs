//! `charcoal bench statsd`: a StatsD load generator. Sends newline-packed StatsD lines over
//! UDP to one loopback address, bounded by a line count and a duration, optionally paced to
//! a rate, and prints what it sent and the rate reached.

use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// Options of `charcoal bench statsd`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchStatsdArgs {
    /// StatsD UDP address to send to (must be a loopback address).
    #[arg(long, default_value = "127.0.0.1:8125")]
    pub target: String,
    /// Stop after this many lines.
    #[arg(long, default_value_t = 10_000_000)]
    pub count: u64,
    /// Stop after this long at the latest (e.g. `10s`).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Lines packed into each datagram (newline-separated).
    #[arg(long, default_value_t = 20)]
    pub lines_per_datagram: usize,
    /// Target rate in lines per second (0 = as fast as possible).
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Distinct metric names cycled through.
    #[arg(long, default_value_t = 1000)]
    pub names: usize,
    /// Metric type of the lines: counter, timer, gauge, set or mix.
    #[arg(long, default_value = "counter")]
    pub kind: String,
    /// Name prefix of the generated metrics.
    #[arg(long, default_value = "bench")]
    pub prefix: String,
}

/// `500ms`, `10s`, `5m`, `1h` (or plain seconds).
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .map_or((s, "s"), |i| (&s[..i], &s[i..]));
    let n: f64 = num.parse().map_err(|_| format!("not a duration: {s:?}"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("unknown unit in {s:?} (use ms, s, m, h)")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| e.to_string())
}

fn line(kind: &str, prefix: &str, i: usize, names: usize) -> String {
    let n = i % names.max(1);
    let k = match kind {
        "mix" => ["counter", "timer", "gauge", "set"][i % 4],
        k => k,
    };
    match k {
        "timer" => format!("{prefix}.t{n}:{}|ms", i % 1000),
        "gauge" => format!("{prefix}.g{n}:{}|g", i % 100),
        "set" => format!("{prefix}.s{n}:{}|s", i % 5000),
        _ => format!("{prefix}.c{n}:1|c"),
    }
}

/// Runs the load generator.
pub fn run(args: &BenchStatsdArgs) -> anyhow::Result<()> {
    if !matches!(
        args.kind.as_str(),
        "counter" | "timer" | "gauge" | "set" | "mix"
    ) {
        bail!(
            "--kind must be counter, timer, gauge, set or mix, not {:?}",
            args.kind
        );
    }
    if args.lines_per_datagram == 0 {
        bail!("--lines-per-datagram must be at least 1");
    }
    let target: SocketAddr = args
        .target
        .to_socket_addrs()
        .with_context(|| format!("resolving --target {}", args.target))?
        .next()
        .with_context(|| format!("--target {} resolves to nothing", args.target))?;
    if !target.ip().is_loopback() {
        bail!(
            "--target {target} is not a loopback address; the load generator only targets this machine"
        );
    }
    let bind = if target.is_ipv4() {
        "127.0.0.1:0"
    } else {
        "[::1]:0"
    };
    let sock = UdpSocket::bind(bind).context("binding the sending socket")?;
    sock.connect(target)
        .with_context(|| format!("connecting to {target}"))?;

    // A pool of ready datagrams, cycled, so generating text does not limit the rate.
    let per = args.lines_per_datagram;
    let pool_size = (args.names.max(1) * 4).div_ceil(per).clamp(16, 4096);
    let mut pool: Vec<Vec<u8>> = Vec::with_capacity(pool_size);
    let mut i = 0;
    for _ in 0..pool_size {
        let mut d = String::new();
        for j in 0..per {
            if j > 0 {
                d.push('\n');
            }
            d.push_str(&line(&args.kind, &args.prefix, i, args.names));
            i += 1;
        }
        pool.push(d.into_bytes());
    }

    let start = Instant::now();
    let mut sent_lines = 0u64;
    let mut datagrams = 0u64;
    let mut errors = 0u64;
    let mut p = 0usize;
    while sent_lines < args.count {
        let elapsed = start.elapsed();
        if elapsed >= args.duration {
            break;
        }
        if args.rate > 0 {
            let due = (elapsed.as_secs_f64() * args.rate as f64) as u64;
            if sent_lines >= due {
                let ahead = (sent_lines - due) as f64 / args.rate as f64;
                if ahead > 0.000_2 {
                    std::thread::sleep(Duration::from_secs_f64(ahead.min(0.01)));
                }
                continue;
            }
        }
        // The last datagram may carry fewer lines to honour --count exactly.
        let left = args.count - sent_lines;
        let d = &pool[p];
        let (payload, n) = if left < per as u64 {
            let cut = d
                .iter()
                .enumerate()
                .filter(|&(_, &b)| b == b'\n')
                .nth(left as usize - 1)
                .map_or(d.len(), |(idx, _)| idx);
            (&d[..cut], left)
        } else {
            (&d[..], per as u64)
        };
        match sock.send(payload) {
            Ok(_) => {
                sent_lines += n;
                datagrams += 1;
                p = (p + 1) % pool.len();
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => {
                // ENOBUFS/ECONNREFUSED: counted; nothing was sent.
                errors += 1;
                if errors > 1_000_000 {
                    bail!("too many send errors");
                }
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "sent {sent_lines} lines in {datagrams} datagrams to {target} in {secs:.3} s: {:.0} lines/s, {:.0} datagrams/s, {errors} send errors",
        sent_lines as f64 / secs,
        datagrams as f64 / secs
    );
    Ok(())
}
