//! `warden`: governance and runtime security for AI agent orchestration.
//!
//! This binary only parses arguments, calls into the library crates and maps their results
//! to output formats and exit codes. Exit codes, for every command:
//! `0` clean, `1` findings at or above `--fail-on` (or a failed test/verification),
//! `2` unusable input (a malformed manifest, a bad argument, an unreadable file).

mod check;
mod output;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "warden",
    version,
    about = "Governance and runtime security for AI agent orchestration"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Load and validate an inventory and report governance gaps.
    Check(check::CheckArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check(args) => check::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            output::EXIT_UNUSABLE()
        }
    }
}
