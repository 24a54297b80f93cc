//! The approval request and its votes.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ApprovalError;
use crate::canonical::args_digest;

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Waiting for approvers.
    Pending,
    /// Enough eligible approvers approved; the call may run once.
    Approved,
    /// An eligible approver denied it.
    Denied,
    /// Nobody answered in time, or an approval was not used in time.
    Expired,
    /// Approved and used by the call it was bound to (single use).
    Consumed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Approved => "approved",
            Status::Denied => "denied",
            Status::Expired => "expired",
            Status::Consumed => "consumed",
        }
    }

    /// Parses the stored or command-line name.
    pub fn parse(s: &str) -> Option<Status> {
        Some(match s {
            "pending" => Status::Pending,
            "approved" => Status::Approved,
            "denied" => Status::Denied,
            "expired" => Status::Expired,
            "consumed" => Status::Consumed,
            _ => return None,
        })
    }

    /// No further transition is possible.
    pub fn is_final(self) -> bool {
        matches!(self, Status::Denied | Status::Expired | Status::Consumed)
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Approve or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VoteKind {
    Approve,
    Deny,
}

impl VoteKind {
    pub fn as_str(self) -> &'static str {
        match self {
            VoteKind::Approve => "approve",
            VoteKind::Deny => "deny",
        }
    }
}

/// Which front end a vote came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    Cli,
    Console,
    Webhook,
    Api,
}

impl Via {
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Cli => "cli",
            Via::Console => "console",
            Via::Webhook => "webhook",
            Via::Api => "api",
        }
    }
}

/// One approver's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vote {
    pub human: String,
    pub kind: VoteKind,
    pub reason: String,
    /// Unix milliseconds.
    pub at_ms: i64,
    pub via: Via,
}

/// A durable request for a human to approve one exact tool call.
///
/// JSON (CLI `--format json`, console API, webhooks) has every field except `args`: the
/// unredacted arguments are kept for forwarding exactly what was approved and are never
/// serialised; `display_args` is their redacted copy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalRequest {
    /// `apr_` + 20 hex characters.
    pub id: String,
    pub agent: String,
    /// The requesting agent's owner (a human id), if it has one.
    pub owner: Option<String>,
    /// Agents between the root human and `agent`, outermost first.
    pub delegation: Vec<String>,
    /// The human on whose behalf the chain runs.
    pub root_human: Option<String>,
    /// The gateway session the call came from.
    pub session: Option<String>,
    /// The gateway's request id of the call that created this request.
    pub request: Option<String>,
    /// `connector.tool`.
    pub tool: String,
    /// The tool's declared effects (`write`, `external_send`, …).
    pub effects: Vec<String>,
    pub irreversible: bool,
    /// The exact arguments; never serialised.
    #[serde(skip_serializing, default)]
    pub args: Value,
    /// The arguments with secrets redacted, for display.
    pub display_args: Value,
    /// sha256 of the canonical JSON of `args`.
    pub args_digest: String,
    /// Determining policies (ids) and their reasons.
    pub policies: Vec<String>,
    pub reasons: Vec<String>,
    /// `group:ID` / `human:ID` references.
    pub approvers: Vec<String>,
    pub approvals_required: u32,
    pub separation_of_duties: bool,
    pub tainted: bool,
    pub taint_sources: Vec<String>,
    /// The session's recent audit events, oldest first.
    pub history: Vec<Value>,
    pub created_ms: i64,
    /// After this instant a pending request expires and an approval can no longer be used.
    pub expires_ms: i64,
    pub status: Status,
    pub votes: Vec<Vote>,
    /// When it became approved, denied or expired.
    pub decided_ms: Option<i64>,
    /// When the approved call used it.
    pub consumed_ms: Option<i64>,
    /// Bumped by every stored change (optimistic concurrency).
    pub version: i64,
}

/// What the gateway supplies to open a request.
#[derive(Debug, Clone, Default)]
pub struct NewRequest {
    pub agent: String,
    pub owner: Option<String>,
    pub delegation: Vec<String>,
    pub root_human: Option<String>,
    pub session: Option<String>,
    pub request: Option<String>,
    pub tool: String,
    pub effects: Vec<String>,
    pub irreversible: bool,
    pub args: Value,
    /// Redacted copy of `args` (the caller's redactor, e.g. `warden_store::redact`).
    pub display_args: Value,
    pub policies: Vec<String>,
    pub reasons: Vec<String>,
    pub approvers: Vec<String>,
    pub approvals_required: u32,
    pub separation_of_duties: bool,
    pub tainted: bool,
    pub taint_sources: Vec<String>,
    pub history: Vec<Value>,
    /// How long the request (and an approval of it) holds.
    pub ttl_ms: i64,
}

/// A fresh request id: `apr_` + 20 hex characters (80 random bits).
pub fn new_id() -> Result<String, ApprovalError> {
    let mut b = [0u8; 10];
    getrandom::fill(&mut b).map_err(|e| ApprovalError::Random(e.to_string()))?;
    Ok(format!("apr_{}", hex::encode(b)))
}

impl ApprovalRequest {
    /// Opens a pending request at `now_ms`.
    pub fn open(n: NewRequest, now_ms: i64) -> Result<ApprovalRequest, ApprovalError> {
        let mut approvers = n.approvers;
        approvers.sort();
        approvers.dedup();
        Ok(ApprovalRequest {
            id: new_id()?,
            args_digest: args_digest(&n.args),
            agent: n.agent,
            owner: n.owner,
            delegation: n.delegation,
            root_human: n.root_human,
            session: n.session,
            request: n.request,
            tool: n.tool,
            effects: n.effects,
            irreversible: n.irreversible,
            args: n.args,
            display_args: n.display_args,
            policies: n.policies,
            reasons: n.reasons,
            approvers,
            approvals_required: n.approvals_required.max(1),
            separation_of_duties: n.separation_of_duties,
            tainted: n.tainted,
            taint_sources: n.taint_sources,
            history: n.history,
            created_ms: now_ms,
            expires_ms: now_ms.saturating_add(n.ttl_ms.max(1)),
            status: Status::Pending,
            votes: Vec::new(),
            decided_ms: None,
            consumed_ms: None,
            version: 0,
        })
    }

    /// Distinct humans who approved.
    pub fn approvals(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self
            .votes
            .iter()
            .filter(|v| v.kind == VoteKind::Approve)
            .map(|v| v.human.as_str())
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// The vote that denied it, if any.
    pub fn denial(&self) -> Option<&Vote> {
        self.votes.iter().find(|v| v.kind == VoteKind::Deny)
    }

    /// One line for logs, errors and chat: who answered and why.
    pub fn answer_summary(&self) -> String {
        match self.status {
            Status::Denied => match self.denial() {
                Some(v) => format!("denied by {}: {}", v.human, v.reason),
                None => "denied".into(),
            },
            Status::Approved | Status::Consumed => {
                let names: Vec<String> = self
                    .votes
                    .iter()
                    .filter(|v| v.kind == VoteKind::Approve)
                    .map(|v| format!("{} ({})", v.human, v.reason))
                    .collect();
                format!("approved by {}", names.join(", "))
            }
            Status::Expired if self.approvals().is_empty() => "expired without an answer".into(),
            Status::Expired => format!(
                "expired ({} of {} approvals, not used in time)",
                self.approvals().len(),
                self.approvals_required
            ),
            Status::Pending => format!(
                "pending ({} of {} approvals)",
                self.approvals().len(),
                self.approvals_required
            ),
        }
    }
}
