//! The `charcoal` binary: one process for StatsD, Carbon, the render API and the node agent,
//! plus the whisper file tools. See `charcoal --help`.

mod bench_carbon;
mod carbon_cmd;
mod config;
mod listen;
mod logging;
mod pyfmt;
mod signals;
mod whisper_cli;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "charcoal",
    version,
    about = "StatsD + Graphite + Munin in one fast binary"
)]
struct Cli {
    /// TOML configuration file; every key can also be set as CHARCOAL_<SECTION>__<KEY>.
    #[arg(long, global = true, env = "CHARCOAL_CONFIG")]
    config: Option<PathBuf>,
    /// Log format on stdout (default: human on a terminal, JSON lines otherwise).
    #[arg(long, global = true, value_enum)]
    log_format: Option<config::LogFormat>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Load generators (bounded in count and time, loopback targets only).
    #[command(subcommand)]
    Bench(BenchCommand),
    /// The store with its Carbon plaintext receiver (TCP and UDP).
    Carbon(carbon_cmd::CarbonArgs),
    /// Load and validate the configuration, print it with every default, and exit.
    CheckConfig,
    /// Whisper file tools (create, info, fetch, update, dump, resize, fill, merge).
    #[command(subcommand)]
    Whisper(whisper_cli::WhisperCommand),
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Carbon plaintext over TCP: many metrics, several connections.
    Carbon(bench_carbon::BenchCarbonArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if is_broken_pipe(&e) {
                return ExitCode::SUCCESS;
            }
            eprintln!("charcoal: {e:#}");
            if e.downcast_ref::<config::ConfigError>().is_some() || whisper_cli::is_usage_error(&e)
            {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Whisper(command) => return whisper_cli::run(command),
        Command::Bench(BenchCommand::Carbon(args)) => return bench_carbon::run(&args),
        _ => {}
    }
    let mut config = config::load(cli.config.as_deref(), std::env::vars())?;
    if let Some(format) = cli.log_format {
        config.log.format = format;
    }
    match &cli.command {
        Command::Carbon(args) => args.apply(&mut config),
        Command::CheckConfig | Command::Whisper(_) | Command::Bench(_) => {}
    }
    logging::init(&config.log);
    config::validate(&config)?;
    raise_descriptor_limit();
    match cli.command {
        Command::Carbon(_) => carbon_cmd::run(config, cli.config),
        Command::CheckConfig => {
            print!("{}", toml::to_string(&config)?);
            Ok(())
        }
        Command::Whisper(_) | Command::Bench(_) => Ok(()),
    }
}

/// Servers hold many sockets and files: take the hard limit on descriptors, as most daemons
/// do (the soft default of 1024 is for interactive shells).
fn raise_descriptor_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
        && soft < hard
        && let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard)
    {
        tracing::warn!(error = %e, soft, hard, "could not raise the open-file limit");
    }
}

/// Output piped into `head` is not an error.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
