//! `warden`: governance and runtime security for AI agent orchestration.
//!
//! This binary only parses arguments, calls into the library crates and maps their results
//! to output formats and exit codes. Exit codes, for every command:
//! `0` clean, `1` findings at or above `--fail-on` (or a failed test/verification),
//! `2` unusable input (a malformed manifest, a bad argument, an unreadable file).

mod approvals;
mod audit;
mod check;
mod gateway;
mod graph;
mod handoff;
mod inspect;
mod output;
mod policy;
mod scan;
mod token;
mod tools;
mod up;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc: the gateway allocates per call (JSON values, audit records) and glibc's
/// malloc/free showed up as ~15% of its CPU under load (`bench/gateway`, perf).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Run the gateway: MCP endpoint (/mcp), admin API, embedded store.
    Up(up::UpArgs),
    /// Issue, list and revoke agent tokens.
    Token(token::TokenArgs),
    /// Revoke a handoff's delegation before it expires.
    Handoff(handoff::HandoffArgs),
    /// Verify, tail and export the audit trail.
    Audit(audit::AuditArgs),
    /// Answer approval requests: list, show, approve, deny; approver API tokens.
    Approvals(approvals::ApprovalsArgs),
    /// The web console: `console login-token --as HUMAN`.
    Console(approvals::ConsoleArgs),
    /// The gateway over other transports (`gateway stdio`).
    Gateway(gateway::GatewayArgs),
    /// Export the security graph (json, dot, BloodHound OpenGraph); `graph paths` for attack paths.
    Graph(graph::GraphArgs),
    /// All posture findings: governance checks and security-graph attack paths.
    Findings(graph::FindingsArgs),
    /// Cedar policies: schema, validate, decide, test suites, what-if diff.
    Policy(policy::PolicyArgs),
    /// Scan agent code and MCP configs: secrets, risky code and config, BOM policy.
    Scan(scan::ScanArgs),
    /// Write the AI bill of materials (CycloneDX 1.6 JSON).
    Bom(scan::BomArgs),
    /// Run the detectors on content: injection in text, poisoning in tool definitions, redaction.
    Inspect(inspect::InspectArgs),
    /// Tool pins: list pinned and quarantined tools, diff a held-back definition, approve it.
    Tools(tools::ToolsArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check(args) => check::run(args),
        Command::Up(args) => up::run(args),
        Command::Token(args) => token::run(args),
        Command::Handoff(args) => handoff::run(args),
        Command::Audit(args) => audit::run(args),
        Command::Approvals(args) => approvals::run(args),
        Command::Console(args) => approvals::run_console(args),
        Command::Gateway(args) => gateway::run(args),
        Command::Graph(args) => graph::run_graph(args),
        Command::Findings(args) => graph::run_findings(args),
        Command::Policy(args) => policy::run(args),
        Command::Scan(args) => scan::run(args),
        Command::Bom(args) => scan::run_bom(args),
        Command::Inspect(args) => inspect::run(args),
        Command::Tools(args) => tools::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            output::EXIT_UNUSABLE()
        }
    }
}
