//! The load generator of `charcoal bench statsd`, runnable before the CLI wires it:
//! `cargo run --release -p charcoal-statsd --example bench_statsd -- --target 127.0.0.1:8125`.

#[path = "../../src/bench_statsd.rs"]
mod bench_statsd;

use clap::Parser;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: bench_statsd::BenchStatsdArgs,
}

fn main() -> anyhow::Result<()> {
    bench_statsd::run(&Cli::parse().args)
}
