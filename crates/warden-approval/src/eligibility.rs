//! Who may answer an approval request.
//!
//! A human may approve or deny a request when they are a member of one of its approver
//! groups (or named as `human:ID`) in the inventory. With separation of duties they may
//! not be the requesting agent's owner, the delegation's root human, nor a human tied to
//! the delegation chain (the owner of an agent in it, or an id in it).

use serde::Serialize;
use warden_core::Inventory;

use crate::model::ApprovalRequest;

/// Why someone may not answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "why")]
pub enum Ineligible {
    /// Not a human of the inventory.
    UnknownHuman,
    /// Not in any approver group of the request.
    NotAnApprover { approvers: Vec<String> },
    /// Separation of duties: the requester's own chain.
    OwnChain { role: String },
}

impl std::fmt::Display for Ineligible {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ineligible::UnknownHuman => f.write_str("not a human of the inventory"),
            Ineligible::NotAnApprover { approvers } => write!(
                f,
                "not a member of the approvers ({})",
                approvers.join(", ")
            ),
            Ineligible::OwnChain { role } => write!(
                f,
                "separation of duties: they are {role}, and nobody approves their own agent's actions"
            ),
        }
    }
}

/// Whether `human` may answer `req`.
pub fn check_eligible(
    inv: &Inventory,
    req: &ApprovalRequest,
    human: &str,
) -> Result<(), Ineligible> {
    if !inv.humans.contains_key(human) {
        return Err(Ineligible::UnknownHuman);
    }
    let member = req
        .approvers
        .iter()
        .any(|a| inv.approver_humans(a).iter().any(|h| h == human));
    if !member {
        return Err(Ineligible::NotAnApprover {
            approvers: req.approvers.clone(),
        });
    }
    if req.separation_of_duties {
        if req.owner.as_deref() == Some(human) {
            return Err(Ineligible::OwnChain {
                role: format!("the owner of agent {}", req.agent),
            });
        }
        // The inventory's owner of the agent, in case the request predates an ownership change.
        if inv
            .agents
            .get(&req.agent)
            .and_then(|a| a.owner.as_ref())
            .is_some_and(|o| o.value == human)
        {
            return Err(Ineligible::OwnChain {
                role: format!("the owner of agent {}", req.agent),
            });
        }
        if req.root_human.as_deref() == Some(human) {
            return Err(Ineligible::OwnChain {
                role: "the human at the root of the delegation chain".into(),
            });
        }
        for link in &req.delegation {
            if link == human {
                return Err(Ineligible::OwnChain {
                    role: "part of the delegation chain".into(),
                });
            }
            if inv
                .agents
                .get(link)
                .and_then(|a| a.owner.as_ref())
                .is_some_and(|o| o.value == human)
            {
                return Err(Ineligible::OwnChain {
                    role: format!("the owner of agent {link} in the delegation chain"),
                });
            }
        }
    }
    Ok(())
}

/// Every human who may answer `req`, sorted (for webhooks and the console).
pub fn eligible_approvers(inv: &Inventory, req: &ApprovalRequest) -> Vec<String> {
    let mut out: Vec<String> = req
        .approvers
        .iter()
        .flat_map(|a| inv.approver_humans(a))
        .filter(|h| check_eligible(inv, req, h).is_ok())
        .collect();
    out.sort();
    out.dedup();
    out
}
