//! What the engine answers: a [`Decision`] with its [`Outcome`] and the policies behind it.

use std::path::PathBuf;

use serde::Serialize;

/// A policy that determined a decision, with where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyRef {
    /// The `@id` annotation (user policies) or `inventory.…` (generated ones).
    pub id: String,
    /// `permit` or `forbid`.
    pub effect: &'static str,
    /// The `.cedar` file, or for generated policies the manifest they come from.
    pub file: PathBuf,
    /// 1-based line of the policy's first token (0 when unknown).
    pub line: u64,
    /// The `@reason` annotation, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The `@approval` annotation, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval: Option<String>,
    /// Generated from the inventory (entitlements, approval rules), not written by a person.
    pub generated: bool,
}

/// Who must approve a call before it runs, and under which terms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApprovalRequirement {
    /// Approver references as in the inventory: `group:ID` or `human:ID`, sorted, unique.
    pub approvers: Vec<String>,
    /// How long an approval holds, in seconds; `None` when no policy or rule says
    /// (the gateway then applies its own default).
    pub ttl_seconds: Option<u64>,
    /// How many distinct approvers must approve (max over the approval policies).
    pub approvals_required: u32,
    /// Whether the requesting agent's owner and its delegation chain's root human may not approve.
    pub separation_of_duties: bool,
    /// Inventory approval rules that apply (ids), if any.
    pub rules: Vec<String>,
    /// Ids of the permits carrying `@approval` that determined this requirement
    /// (JSON `approval_policies`, since a decision's `policies` lists all determining policies).
    #[serde(rename = "approval_policies")]
    pub policies: Vec<String>,
}

/// `allow`, `deny`, or `needs_approval`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    Allow,
    Deny,
    NeedsApproval(ApprovalRequirement),
}

impl Outcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Allow => "allow",
            Outcome::Deny => "deny",
            Outcome::NeedsApproval(_) => "needs_approval",
        }
    }

    pub fn approval(&self) -> Option<&ApprovalRequirement> {
        match self {
            Outcome::NeedsApproval(a) => Some(a),
            _ => None,
        }
    }
}

/// A decision and everything needed to explain it.
///
/// JSON: `{"outcome": "needs_approval", "approvers": [...], ..., "policies": [...], "reasons": [...]}`
/// (the approval fields appear only for `needs_approval`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    #[serde(flatten)]
    pub outcome: Outcome,
    /// The determining policies: the forbids for a deny, the satisfied permits otherwise.
    pub policies: Vec<PolicyRef>,
    /// Human-readable reasons, one per determining policy or pre-check
    /// ("no policy permits …", "missing required argument `amount`").
    pub reasons: Vec<String>,
    /// Arguments present in the call but not declared for the tool: left out of
    /// `context.args` (policies cannot see them), kept by the caller for the audit.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ignored_args: Vec<String>,
    /// Policies whose evaluation failed (an overflow, say). A failing forbid denies.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

impl Decision {
    /// A deny produced before Cedar ran (unknown agent or tool, bad arguments).
    pub fn deny_precheck(reason: impl Into<String>) -> Decision {
        Decision {
            outcome: Outcome::Deny,
            policies: Vec::new(),
            reasons: vec![reason.into()],
            ignored_args: Vec::new(),
            errors: Vec::new(),
        }
    }

    pub fn is_allow(&self) -> bool {
        self.outcome == Outcome::Allow
    }

    pub fn is_deny(&self) -> bool {
        self.outcome == Outcome::Deny
    }

    /// Ids of the determining policies.
    pub fn policy_ids(&self) -> Vec<&str> {
        self.policies.iter().map(|p| p.id.as_str()).collect()
    }
}

/// What an agent could ever get for a tool, over all arguments, session states, times and
/// delegation chains. Sound: [`Reachability::Never`] means no request can be allowed or
/// need approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reachability", rename_all = "snake_case")]
pub enum Reachability {
    /// Every request is denied.
    Never,
    /// Every well-formed request is allowed without a human.
    Always,
    /// Every well-formed request needs approval (the requirement shown is for a clean session).
    NeedsApproval { approvers: Vec<String> },
    /// Depends on arguments, session taint, time or delegation: some requests may be allowed
    /// or need approval, others denied.
    Conditional {
        /// Some request could need approval (a conditional `@approval` permit can apply).
        may_need_approval: bool,
    },
}

impl Reachability {
    /// Whether some request could be allowed or need approval.
    pub fn is_possible(&self) -> bool {
        !matches!(self, Reachability::Never)
    }
}
