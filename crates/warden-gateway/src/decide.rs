//! The decision stage's interface. The gateway asks a [`Decider`] two questions: may this
//! agent ever use this tool (for `tools/list` filtering) and what is the decision for this
//! exact call. The Cedar engine (warden-policy) is adapted to it by the binary;
//! [`EntitlementDecider`] is the inventory-only fallback used in tests of the relay itself.

use serde::Serialize;
use serde_json::Value;
use warden_core::{Inventory, ToolRef};

/// Everything the policy sees about one call.
#[derive(Debug, Clone)]
pub struct CallRequest<'a> {
    pub agent: &'a str,
    /// Agents between the root human and `agent`, outermost first.
    pub delegation: &'a [String],
    pub root_human: Option<&'a str>,
    pub tool: &'a ToolRef,
    pub args: &'a Value,
    pub session_tainted: bool,
    pub taint_sources: &'a [String],
    /// Unix milliseconds.
    pub time_ms: i64,
}

/// A handoff `from → to` as the policy sees it (Cedar `Action::"handoff"`).
#[derive(Debug, Clone)]
pub struct HandoffCall<'a> {
    pub from: &'a str,
    pub to: &'a str,
    /// Context keys the sender offers (before the allow-list drops any).
    pub context_keys: &'a [String],
    /// Agents between the root human and `from` (empty when `from` acts directly).
    pub delegation: &'a [String],
    pub root_human: Option<&'a str>,
    pub session_tainted: bool,
    pub taint_sources: &'a [String],
    /// Unix milliseconds.
    pub time_ms: i64,
}

/// `allow`, `deny` or `needs_approval`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum Outcome {
    Allow,
    Deny,
    NeedsApproval {
        approvers: Vec<String>,
        /// Distinct approvals needed (two-person rule: 2).
        approvals_required: u32,
        /// The owner and the delegation chain may not approve.
        separation_of_duties: bool,
        /// How long the approval holds; None: the gateway's default.
        ttl_seconds: Option<u64>,
    },
}

impl Outcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Allow => "allow",
            Outcome::Deny => "deny",
            Outcome::NeedsApproval { .. } => "needs_approval",
        }
    }
}

/// A decision with the policies and reasons that produced it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallDecision {
    #[serde(flatten)]
    pub outcome: Outcome,
    pub policies: Vec<String>,
    pub reasons: Vec<String>,
}

impl CallDecision {
    pub fn deny(policy: Option<&str>, reason: impl Into<String>) -> CallDecision {
        CallDecision {
            outcome: Outcome::Deny,
            policies: policy.map(|p| vec![p.to_string()]).unwrap_or_default(),
            reasons: vec![reason.into()],
        }
    }
}

/// The policy stage.
pub trait Decider: Send + Sync {
    /// Could any call of `tool` by `agent` be allowed (or need approval)?
    fn could_allow(&self, agent: &str, tool: &ToolRef) -> bool;
    /// The decision for one call with its real arguments.
    fn decide(&self, req: &CallRequest<'_>) -> CallDecision;
    /// The decision for one handoff. Deciders that know nothing of handoffs deny them.
    fn decide_handoff(&self, req: &HandoffCall<'_>) -> CallDecision {
        CallDecision::deny(
            Some("default-deny"),
            format!(
                "handoff `{}` → `{}`: this policy stage does not decide handoffs",
                req.from, req.to
            ),
        )
    }
}

/// Whether `agent`'s `uses:` entitles it to `tool` (`connector.tool` or `connector.*`).
pub fn entitled(inv: &Inventory, agent: &str, tool: &ToolRef) -> bool {
    inv.agents.get(agent).is_some_and(|a| {
        a.uses.iter().any(|u| {
            let u = u.value.as_str();
            u == tool.qualified() || u.strip_suffix(".*") == Some(tool.connector.as_str())
        })
    })
}

/// Allows exactly what the inventory's `uses:` entitles; no Cedar. For relay tests.
pub struct EntitlementDecider {
    inv: std::sync::Arc<Inventory>,
}

impl EntitlementDecider {
    pub fn new(inv: std::sync::Arc<Inventory>) -> Self {
        EntitlementDecider { inv }
    }
}

impl Decider for EntitlementDecider {
    fn could_allow(&self, agent: &str, tool: &ToolRef) -> bool {
        entitled(&self.inv, agent, tool)
    }

    fn decide(&self, req: &CallRequest<'_>) -> CallDecision {
        if entitled(&self.inv, req.agent, req.tool) {
            CallDecision {
                outcome: Outcome::Allow,
                policies: vec!["inventory-entitlement".into()],
                reasons: vec![format!("{} uses {}", req.agent, req.tool)],
            }
        } else {
            CallDecision::deny(
                Some("default-deny"),
                format!("{} is not entitled to {}", req.agent, req.tool),
            )
        }
    }

    fn decide_handoff(&self, req: &HandoffCall<'_>) -> CallDecision {
        if self.inv.handoff(req.from, req.to).is_some() {
            CallDecision {
                outcome: Outcome::Allow,
                policies: vec!["inventory.handoff".into()],
                reasons: vec![format!("{} declares a handoff to {}", req.from, req.to)],
            }
        } else {
            CallDecision::deny(
                Some("inventory.handoff-undeclared"),
                format!(
                    "the inventory declares no handoff from {} to {}",
                    req.from, req.to
                ),
            )
        }
    }
}
