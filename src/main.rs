//! The `charcoal` binary: one process for StatsD, Carbon, the render API and the node agent,
//! plus the whisper file tools. See `charcoal --help`.

mod pyfmt;
mod whisper_cli;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "charcoal",
    version,
    about = "StatsD + Graphite + Munin in one fast binary"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Whisper file tools (create, info, fetch, update, dump, resize, fill, merge).
    #[command(subcommand)]
    Whisper(whisper_cli::WhisperCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Whisper(command) => whisper_cli::run(command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if is_broken_pipe(&e) {
                return ExitCode::SUCCESS;
            }
            eprintln!("charcoal: {e:#}");
            if whisper_cli::is_usage_error(&e) {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
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
