//! Output formats and exit codes shared by every subcommand.

use std::process::ExitCode;

use clap::ValueEnum;
use warden_core::{Finding, Severity};

pub const EXIT_OK: ExitCode = ExitCode::SUCCESS;
pub const EXIT_FINDINGS: ExitCode = ExitCode::FAILURE;
#[allow(non_snake_case)]
pub fn EXIT_UNUSABLE() -> ExitCode {
    ExitCode::from(2)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// Parses `--fail-on` values.
pub fn parse_severity(s: &str) -> Result<Severity, String> {
    s.parse()
}

/// Exit 1 when any finding is at or above the threshold.
pub fn findings_exit(findings: &[Finding], fail_on: Severity) -> ExitCode {
    if findings.iter().any(|f| f.severity >= fail_on) {
        EXIT_FINDINGS
    } else {
        EXIT_OK
    }
}

/// The `summary` object of JSON finding reports.
pub fn summary_json(findings: &[Finding]) -> serde_json::Value {
    let count = |s: Severity| findings.iter().filter(|f| f.severity == s).count();
    serde_json::json!({
        "total": findings.len(),
        "critical": count(Severity::Critical),
        "high": count(Severity::High),
        "medium": count(Severity::Medium),
        "low": count(Severity::Low),
        "info": count(Severity::Info),
    })
}
