//! The Cedar policy stage: [`warden_policy::PolicyEngine`] behind the gateway's [`Decider`].

use warden_core::{Inventory, ToolRef};
use warden_policy::{HandoffRequest, PolicyEngine, PolicyError, Request, SessionState, UtcTime};

use crate::decide::{CallDecision, CallRequest, Decider, HandoffCall, Outcome};

/// Decides with the inventory's Cedar policies (generated entitlements, approval rules and
/// `policies/*.cedar`).
pub struct CedarDecider {
    engine: PolicyEngine,
}

impl CedarDecider {
    /// Loads and validates the policies; an invalid policy set is an error, never deny-all.
    pub fn load(inv: &Inventory) -> Result<CedarDecider, PolicyError> {
        Ok(CedarDecider {
            engine: PolicyEngine::load(inv)?,
        })
    }
}

impl Decider for CedarDecider {
    fn could_allow(&self, agent: &str, tool: &ToolRef) -> bool {
        self.engine.could_allow(agent, tool).is_possible()
    }

    fn decide(&self, req: &CallRequest<'_>) -> CallDecision {
        // A pair whose decision is the same for every call (its policies read no context):
        // the arguments are checked, nothing is copied into a `Request`.
        if let Some(d) = self.engine.decide_reused(req.agent, req.tool, req.args) {
            return convert(&d);
        }
        let d = self.engine.decide(&Request {
            agent: req.agent.to_string(),
            delegation_chain: req.delegation.to_vec(),
            root_human: req.root_human.map(str::to_string),
            tool: req.tool.clone(),
            args: req.args.clone(),
            session: SessionState {
                tainted: req.session_tainted,
                taint_sources: req.taint_sources.to_vec(),
            },
            time: UtcTime::from_unix_ms(req.time_ms),
        });
        convert(&d)
    }

    fn decide_handoff(&self, req: &HandoffCall<'_>) -> CallDecision {
        convert(&self.engine.decide_handoff(&HandoffRequest {
            from: req.from.to_string(),
            to: req.to.to_string(),
            context_keys: req.context_keys.to_vec(),
            delegation_chain: req.delegation.to_vec(),
            root_human: req.root_human.map(str::to_string),
            session: SessionState {
                tainted: req.session_tainted,
                taint_sources: req.taint_sources.to_vec(),
            },
            time: UtcTime::from_unix_ms(req.time_ms),
        }))
    }
}

/// The engine's decision in the gateway's terms.
fn convert(d: &warden_policy::Decision) -> CallDecision {
    let outcome = match &d.outcome {
        warden_policy::Outcome::Allow => Outcome::Allow,
        warden_policy::Outcome::Deny => Outcome::Deny,
        warden_policy::Outcome::NeedsApproval(a) => Outcome::NeedsApproval {
            approvers: a.approvers.clone(),
            approvals_required: a.approvals_required,
            separation_of_duties: a.separation_of_duties,
            ttl_seconds: a.ttl_seconds,
        },
    };
    let mut reasons = d.reasons.clone();
    reasons.extend(
        d.errors
            .iter()
            .map(|e| format!("policy evaluation error: {e}")),
    );
    CallDecision {
        outcome,
        policies: d.policies.iter().map(|p| p.id.clone()).collect(),
        reasons,
    }
}
