//! Measures the node agent's cost: runs N collection rounds of the built-in collectors and
//! prints CPU time per round and RSS, read from /proc/self (used by
//! benches/agent-vs-munin.sh). With `--serve ADDR` it instead runs the agent's munin server
//! (built-ins only, no sender) until SIGTERM, so a munin client can be measured against
//! it.
//!
//! ```text
//! cargo run --release -p charcoal-node-agent --example agent_rounds -- --rounds 2000
//! cargo run --release -p charcoal-node-agent --example agent_rounds -- --collectors cpu,load --print
//! cargo run --release -p charcoal-node-agent --example agent_rounds -- --serve 127.0.0.1:14950
//! ```

use std::time::{Duration, Instant};

use charcoal_node_agent::{Config, Sampler, run};
use tokio_util::sync::CancellationToken;

/// utime + stime of this process in clock ticks (USER_HZ = 100) from /proc/self/stat.
fn cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = after
        .split_whitespace()
        .map(|t| t.parse().unwrap_or(0))
        .collect();
    // fields after ")": state(0) ... utime is field 14 → index 11, stime index 12
    f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0)
}

fn status_kb(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut rounds = 1000u64;
    let mut collectors: Option<Vec<String>> = None;
    let mut print = false;
    let mut serve: Option<String> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--rounds" => rounds = it.next().and_then(|v| v.parse().ok()).unwrap_or(rounds),
            "--collectors" => {
                collectors = it.next().map(|v| v.split(',').map(str::to_owned).collect())
            }
            "--print" => print = true,
            "--serve" => serve = it.next().cloned(),
            other => {
                eprintln!(
                    "unknown argument {other}; usage: agent_rounds [--rounds N] [--collectors a,b] [--print] | --serve ADDR"
                );
                std::process::exit(2);
            }
        }
    }
    let mut config = Config::default();
    if let Some(c) = collectors {
        config.collectors = c;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    if let Some(addr) = serve {
        rt.block_on(serve_munin(config, &addr));
        return;
    }
    rt.block_on(async {
        let mut sampler = match Sampler::new(&config) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(2);
            }
        };
        let mut out = String::new();
        // warm up: first round establishes counters and grows buffers
        sampler.sample(&mut out).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        let ticks0 = cpu_ticks();
        let wall = Instant::now();
        let mut lines = 0;
        for _ in 0..rounds {
            out.clear();
            lines = sampler.sample(&mut out).await;
        }
        let elapsed = wall.elapsed();
        let ticks = cpu_ticks() - ticks0;
        let cpu_us_per_round = ticks as f64 * 10_000.0 / rounds as f64;
        if print {
            print!("{out}");
        }
        println!(
            "rounds={rounds} lines_per_round={lines} cpu_us_per_round={cpu_us_per_round:.1} wall_us_per_round={:.1} rss_kb={} peak_rss_kb={}",
            elapsed.as_micros() as f64 / rounds as f64,
            status_kb("VmRSS:"),
            status_kb("VmHWM:"),
        );
    });
}

async fn serve_munin(config: Config, addr: &str) {
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("bind {addr}: {e}");
            std::process::exit(1);
        }
    };
    let token = CancellationToken::new();
    let agent = match run(config, Some(listener), token.clone()).await {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    println!("serving {addr} pid={}", std::process::id());
    // run until SIGTERM or SIGINT
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("signal: {e}");
            std::process::exit(1);
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    token.cancel();
    agent.join().await;
}
