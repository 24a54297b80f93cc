//! The engine: schema, policies, entity store and slices, built once per inventory load.

use std::collections::BTreeSet;

use warden_core::{Inventory, ToolRef};

use crate::{Decision, HandoffRequest, PolicyError, Reachability, Request};

/// Built once per inventory load; immutable, `Send + Sync`, cheap to share in an `Arc`.
#[derive(Debug)]
pub struct PolicyEngine {
    _private: (),
}

impl PolicyEngine {
    /// Generates the schema, parses and validates every policy, builds the entity store and
    /// the per-tool policy slices.
    pub fn load(_inv: &Inventory) -> Result<PolicyEngine, PolicyError> {
        Ok(PolicyEngine { _private: () })
    }

    /// Decides one tool call.
    pub fn decide(&self, _req: &Request) -> Decision {
        Decision::deny_precheck("policy engine not implemented yet")
    }

    /// Decides one handoff.
    pub fn decide_handoff(&self, _req: &HandoffRequest) -> Decision {
        Decision::deny_precheck("policy engine not implemented yet")
    }

    /// Whether some arguments, session state, time or delegation could make the call allowed
    /// or need approval (sound: `Never` only when nothing could).
    pub fn could_allow(&self, _agent: &str, _tool: &ToolRef) -> Reachability {
        Reachability::Never
    }

    /// Tools (`connector.tool`) that some `@approval`-annotated permit can apply to.
    pub fn approval_gated_tools(&self) -> BTreeSet<String> {
        BTreeSet::new()
    }

    /// The generated Cedar schema, in Cedar schema syntax.
    pub fn schema_text(&self) -> String {
        String::new()
    }
}
