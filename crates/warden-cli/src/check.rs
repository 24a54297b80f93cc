//! `warden check [DIR]`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use warden_core::{CoreError, Inventory, Severity, check, finding};

use crate::output::{self, Format};

#[derive(Args)]
pub struct CheckArgs {
    /// Inventory directory.
    #[arg(default_value = ".")]
    dir: PathBuf,
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// Exit 1 when a finding is at or above this severity.
    #[arg(long, default_value = "high", value_parser = output::parse_severity)]
    fail_on: Severity,
}

pub fn run(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let inv = match Inventory::load(&args.dir) {
        Ok(inv) => inv,
        Err(e) => return Ok(report_load_error(&e, args.format)),
    };
    // Policies are part of the inventory: invalid ones make it unusable (exit 2, file:line),
    // and tools gated by an `@approval` permit count as covered by an approval.
    let engine = match warden_policy::PolicyEngine::load(&inv) {
        Ok(e) => e,
        Err(e) => {
            crate::policy::report_policy_error(&e, args.format);
            return Ok(output::EXIT_UNUSABLE());
        }
    };
    let findings = check::check_with(&inv, &engine.approval_gated_tools());
    match args.format {
        Format::Text => print!("{}", finding::render_text(&findings)),
        Format::Json => {
            let doc = serde_json::json!({
                "inventory": args.dir,
                "findings": findings,
                "summary": output::summary_json(&findings),
            });
            println!("{}", serde_json::to_string_pretty(&doc)?);
        }
    }
    Ok(output::findings_exit(&findings, args.fail_on))
}

/// Unusable input: print the error (with file:line:column) and exit 2.
pub fn report_load_error(e: &CoreError, format: Format) -> ExitCode {
    match format {
        Format::Text => {
            eprintln!("error: {e}");
            if let CoreError::Manifest { rendered, .. } = e {
                let snippet: Vec<&str> = rendered.lines().skip(1).collect();
                if !snippet.is_empty() {
                    eprintln!("{}", snippet.join("\n"));
                }
            }
        }
        Format::Json => {
            let doc = serde_json::json!({
                "error": {
                    "message": e.to_string(),
                    "location": e.location(),
                }
            });
            println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        }
    }
    output::EXIT_UNUSABLE()
}
