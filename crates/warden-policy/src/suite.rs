//! Policy test suites: `DIR/tests/*.yaml`, each a list of requests with the expected decision.
//!
//! ```yaml
//! time: "2026-01-05T12:00:00Z"   # optional default for cases without `time`
//! cases:
//!   - name: refund over the limit needs a finance lead
//!     agent: refund-agent
//!     tool: payments.issue_refund
//!     args: { charge_id: ch_123, amount: 900 }
//!     tainted: false                # optional; also taint_sources: [mail.read_inbox]
//!     delegation: [support-triage]  # optional chain of agents, outermost first
//!     root_human: alice@acme.example
//!     time: "2026-11-23T15:00:00Z"  # optional, RFC 3339
//!     expect: needs_approval        # allow | deny | needs_approval
//!     approvers: [finance-leads]    # optional: exact approver set (bare ids are groups)
//!     approvals_required: 1         # optional
//!     policies: [refunds-over-limit] # optional: must be among the determining policies
//!     reason_contains: finance      # optional: some reason contains this text
//! ```
//!
//! A handoff case has `handoff: { from: A, to: B, keys: [k1, k2] }` instead of agent/tool/args.
//! Cases without `time` and no suite default use Monday 2026-01-05 12:00 UTC, so results do
//! not depend on when the suite runs.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;
use warden_core::ToolRef;

use crate::{Decision, HandoffRequest, PolicyEngine, PolicyError, Request, SessionState, UtcTime};

/// The default time of a case: Monday 2026-01-05 12:00:00 UTC.
pub const DEFAULT_TIME: i64 = 1_767_614_400;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuiteFile {
    #[serde(default)]
    pub time: Option<String>,
    pub cases: Vec<Spanned<Case>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandoffCase {
    pub from: String,
    pub to: String,
    #[serde(default)]
    pub keys: Vec<String>,
}

/// One request and what it must produce.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    #[serde(default)]
    pub agent: Option<String>,
    #[serde(default)]
    pub tool: Option<String>,
    #[serde(default)]
    pub args: Option<serde_json::Value>,
    #[serde(default)]
    pub handoff: Option<HandoffCase>,
    #[serde(default)]
    pub tainted: bool,
    #[serde(default)]
    pub taint_sources: Vec<String>,
    #[serde(default)]
    pub delegation: Vec<String>,
    #[serde(default)]
    pub root_human: Option<String>,
    #[serde(default)]
    pub time: Option<String>,
    pub expect: Expected,
    #[serde(default)]
    pub approvers: Option<Vec<String>>,
    #[serde(default)]
    pub approvals_required: Option<u32>,
    #[serde(default)]
    pub policies: Vec<String>,
    #[serde(default)]
    pub reason_contains: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Expected {
    Allow,
    Deny,
    NeedsApproval,
}

impl Expected {
    pub fn as_str(self) -> &'static str {
        match self {
            Expected::Allow => "allow",
            Expected::Deny => "deny",
            Expected::NeedsApproval => "needs_approval",
        }
    }
}

/// The result of one case.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    pub file: PathBuf,
    pub line: u64,
    pub name: String,
    pub expected: Expected,
    pub decision: Decision,
    pub passed: bool,
    /// What did not match (empty when passed).
    pub mismatches: Vec<String>,
}

/// Lists `DIR/tests/*.yaml` and `*.yml`, sorted.
pub fn suite_files(dir: &Path) -> Result<Vec<PathBuf>, PolicyError> {
    let tdir = dir.join("tests");
    let mut out = Vec::new();
    if !tdir.is_dir() {
        return Ok(out);
    }
    let rd = std::fs::read_dir(&tdir).map_err(|source| PolicyError::Io {
        path: tdir.clone(),
        source,
    })?;
    for e in rd {
        let p = e
            .map_err(|source| PolicyError::Io {
                path: tdir.clone(),
                source,
            })?
            .path();
        if matches!(
            p.extension().and_then(|x| x.to_str()),
            Some("yaml") | Some("yml")
        ) {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}

/// Parses one suite file.
pub fn parse_suite(file: &Path, text: &str) -> Result<SuiteFile, PolicyError> {
    serde_saphyr::from_str::<SuiteFile>(text).map_err(|e| {
        let line = e.location().map(|l| l.line()).unwrap_or(0);
        let msg = e.to_string();
        let first = msg.lines().next().unwrap_or(&msg).to_string();
        PolicyError::TestFile {
            file: file.to_path_buf(),
            line,
            message: first,
        }
    })
}

fn test_err(file: &Path, line: u64, message: String) -> PolicyError {
    PolicyError::TestFile {
        file: file.to_path_buf(),
        line,
        message,
    }
}

fn normalise(a: &str) -> String {
    if a.starts_with("group:") || a.starts_with("human:") {
        a.to_string()
    } else {
        format!("group:{a}")
    }
}

/// Runs one case (malformed cases are errors, not failures).
pub fn run_case(
    engine: &PolicyEngine,
    file: &Path,
    default_time: UtcTime,
    case: &Spanned<Case>,
) -> Result<CaseResult, PolicyError> {
    let line = case.referenced.line();
    let c = &case.value;
    let time = match &c.time {
        Some(t) => UtcTime::parse_rfc3339(t).map_err(|e| test_err(file, line, e.to_string()))?,
        None => default_time,
    };
    let session = SessionState {
        tainted: c.tainted || !c.taint_sources.is_empty(),
        taint_sources: c.taint_sources.clone(),
    };
    let decision = match (&c.handoff, &c.agent, &c.tool) {
        (Some(h), None, None) => engine.decide_handoff(&HandoffRequest {
            from: h.from.clone(),
            to: h.to.clone(),
            context_keys: h.keys.clone(),
            delegation_chain: c.delegation.clone(),
            root_human: c.root_human.clone(),
            session,
            time,
        }),
        (None, Some(agent), Some(tool)) => {
            let tool = ToolRef::parse(tool).ok_or_else(|| {
                test_err(
                    file,
                    line,
                    format!("case `{}`: tool `{tool}` is not `connector.tool`", c.name),
                )
            })?;
            engine.decide(&Request {
                agent: agent.clone(),
                delegation_chain: c.delegation.clone(),
                root_human: c.root_human.clone(),
                tool,
                args: c.args.clone().unwrap_or(serde_json::Value::Null),
                session,
                time,
            })
        }
        _ => {
            return Err(test_err(
                file,
                line,
                format!(
                    "case `{}`: give either `agent` and `tool`, or `handoff`",
                    c.name
                ),
            ));
        }
    };
    let mut mismatches = Vec::new();
    if decision.outcome.as_str() != c.expect.as_str() {
        mismatches.push(format!(
            "expected {}, got {}",
            c.expect.as_str(),
            decision.outcome.as_str()
        ));
    }
    if let Some(want) = &c.approvers {
        let mut want: Vec<String> = want.iter().map(|a| normalise(a)).collect();
        want.sort();
        want.dedup();
        let got = decision
            .outcome
            .approval()
            .map(|a| a.approvers.clone())
            .unwrap_or_default();
        if got != want {
            mismatches.push(format!(
                "expected approvers [{}], got [{}]",
                want.join(", "),
                got.join(", ")
            ));
        }
    }
    if let Some(n) = c.approvals_required {
        let got = decision.outcome.approval().map(|a| a.approvals_required);
        if got != Some(n) {
            mismatches.push(format!(
                "expected {n} approvals required, got {}",
                got.map(|g| g.to_string()).unwrap_or_else(|| "none".into())
            ));
        }
    }
    for p in &c.policies {
        if !decision.policies.iter().any(|x| &x.id == p) {
            mismatches.push(format!(
                "expected policy `{p}` among the determining policies [{}]",
                decision.policy_ids().join(", ")
            ));
        }
    }
    if let Some(s) = &c.reason_contains
        && !decision.reasons.iter().any(|r| r.contains(s.as_str()))
    {
        mismatches.push(format!("no reason contains `{s}`"));
    }
    Ok(CaseResult {
        file: file.to_path_buf(),
        line,
        name: c.name.clone(),
        expected: c.expect,
        passed: mismatches.is_empty(),
        decision,
        mismatches,
    })
}

/// Runs every case of one suite file.
pub fn run_file(engine: &PolicyEngine, file: &Path) -> Result<Vec<CaseResult>, PolicyError> {
    let text = std::fs::read_to_string(file).map_err(|source| PolicyError::Io {
        path: file.to_path_buf(),
        source,
    })?;
    let suite = parse_suite(file, &text)?;
    let default_time = match &suite.time {
        Some(t) => UtcTime::parse_rfc3339(t).map_err(|e| test_err(file, 0, e.to_string()))?,
        None => UtcTime::from_unix(DEFAULT_TIME),
    };
    suite
        .cases
        .iter()
        .map(|c| run_case(engine, file, default_time, c))
        .collect()
}

/// Runs every suite under `DIR/tests/`.
pub fn run_dir(engine: &PolicyEngine, dir: &Path) -> Result<Vec<CaseResult>, PolicyError> {
    let mut out = Vec::new();
    for f in suite_files(dir)? {
        out.extend(run_file(engine, &f)?);
    }
    Ok(out)
}
