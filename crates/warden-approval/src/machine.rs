//! The state machine. Every transition takes the current time explicitly, so it is
//! deterministic and testable; persistence is the caller's ([`crate::ops`]).
//!
//! ```text
//! pending ──approve × approvals_required──▶ approved ──consume(same digest)──▶ consumed
//!    │ └──deny──▶ denied                        │
//!    └──now ≥ expires──▶ expired ◀──now ≥ expires┘
//! ```

use warden_core::Inventory;

use crate::ApprovalError;
use crate::eligibility::check_eligible;
use crate::model::{ApprovalRequest, Status, Via, Vote, VoteKind};

/// Expires a pending or unused approved request whose time is up. True when it changed.
pub fn expire_if_due(req: &mut ApprovalRequest, now_ms: i64) -> bool {
    if matches!(req.status, Status::Pending | Status::Approved) && now_ms >= req.expires_ms {
        req.status = Status::Expired;
        req.decided_ms = Some(now_ms);
        true
    } else {
        false
    }
}

/// Records `human`'s answer. Refuses ineligible humans, empty reasons, a second vote by the
/// same person, and anything not pending (an expired request is first marked expired).
pub fn vote(
    req: &mut ApprovalRequest,
    inv: &Inventory,
    human: &str,
    kind: VoteKind,
    reason: &str,
    via: Via,
    now_ms: i64,
) -> Result<Status, ApprovalError> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(ApprovalError::EmptyReason);
    }
    if expire_if_due(req, now_ms) {
        return Err(ApprovalError::Expired(req.id.clone()));
    }
    if req.status != Status::Pending {
        return Err(ApprovalError::NotPending {
            id: req.id.clone(),
            status: req.status,
        });
    }
    check_eligible(inv, req, human).map_err(|why| ApprovalError::NotEligible {
        id: req.id.clone(),
        human: human.to_string(),
        why: why.to_string(),
    })?;
    if req.votes.iter().any(|v| v.human == human) {
        return Err(ApprovalError::AlreadyVoted {
            id: req.id.clone(),
            human: human.to_string(),
        });
    }
    req.votes.push(Vote {
        human: human.to_string(),
        kind,
        reason: reason.to_string(),
        at_ms: now_ms,
        via,
    });
    match kind {
        VoteKind::Deny => {
            req.status = Status::Denied;
            req.decided_ms = Some(now_ms);
        }
        VoteKind::Approve => {
            if req.approvals().len() as u32 >= req.approvals_required {
                req.status = Status::Approved;
                req.decided_ms = Some(now_ms);
            }
        }
    }
    Ok(req.status)
}

/// Uses an approval for the call with `digest`: single use, same arguments only.
pub fn consume(req: &mut ApprovalRequest, digest: &str, now_ms: i64) -> Result<(), ApprovalError> {
    if expire_if_due(req, now_ms) {
        return Err(ApprovalError::Expired(req.id.clone()));
    }
    if req.status != Status::Approved {
        return Err(ApprovalError::NotPending {
            id: req.id.clone(),
            status: req.status,
        });
    }
    if req.args_digest != digest {
        return Err(ApprovalError::DigestMismatch {
            id: req.id.clone(),
            approved: req.args_digest.clone(),
            presented: digest.to_string(),
        });
    }
    req.status = Status::Consumed;
    req.consumed_ms = Some(now_ms);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::NewRequest;
    use serde_json::json;

    pub(crate) fn acme() -> Inventory {
        Inventory::from_manifests([(
            "org.yaml",
            r#"
groups:
  - id: finance-leads
  - id: support-leads
humans:
  - { id: alice, groups: [support-leads] }
  - { id: bob, groups: [finance-leads] }
  - { id: carol, groups: [finance-leads, support-leads] }
  - { id: dave, groups: [finance-ops] }
  - { id: frank, groups: [finance-leads] }
agents:
  - { id: refund-agent, owner: dave, uses: [payments.issue_refund] }
  - { id: treasury-agent, owner: frank, uses: [market.place_order] }
  - { id: triage, owner: carol }
"#,
        )])
        .unwrap()
    }

    fn req(agent: &str, owner: &str, approvers: &[&str], required: u32) -> ApprovalRequest {
        ApprovalRequest::open(
            NewRequest {
                agent: agent.into(),
                owner: Some(owner.into()),
                root_human: Some(owner.into()),
                tool: "payments.issue_refund".into(),
                args: json!({"amount": 900, "charge": "ch_1"}),
                display_args: json!({"amount": 900, "charge": "ch_1"}),
                approvers: approvers.iter().map(|s| s.to_string()).collect(),
                approvals_required: required,
                separation_of_duties: true,
                ttl_ms: 60_000,
                ..Default::default()
            },
            1_000,
        )
        .unwrap()
    }

    #[test]
    fn one_eligible_approval_approves_and_consumes_once() {
        let inv = acme();
        let mut r = req("refund-agent", "dave", &["group:finance-leads"], 1);
        assert_eq!(r.status, Status::Pending);
        let s = vote(
            &mut r,
            &inv,
            "bob",
            VoteKind::Approve,
            "checked the ticket",
            Via::Cli,
            2_000,
        )
        .unwrap();
        assert_eq!(s, Status::Approved);
        let digest = r.args_digest.clone();
        assert!(matches!(
            consume(&mut r.clone(), "0000", 3_000),
            Err(ApprovalError::DigestMismatch { .. })
        ));
        consume(&mut r, &digest, 3_000).unwrap();
        assert_eq!(r.status, Status::Consumed);
        assert!(matches!(
            consume(&mut r, &digest, 3_001),
            Err(ApprovalError::NotPending {
                status: Status::Consumed,
                ..
            })
        ));
    }

    #[test]
    fn outsiders_owner_and_chain_are_refused() {
        let inv = acme();
        let mut r = req("refund-agent", "dave", &["group:finance-leads"], 1);
        // alice is not a finance lead.
        let e = vote(
            &mut r,
            &inv,
            "alice",
            VoteKind::Approve,
            "ok",
            Via::Console,
            2_000,
        )
        .unwrap_err();
        assert!(matches!(e, ApprovalError::NotEligible { .. }), "{e}");
        // Unknown people never count.
        assert!(
            vote(
                &mut r,
                &inv,
                "mallory",
                VoteKind::Approve,
                "ok",
                Via::Cli,
                2_000
            )
            .is_err()
        );
        // frank is a finance lead but owns the treasury agent: for its own request he is refused.
        let mut t = req("treasury-agent", "frank", &["group:finance-leads"], 1);
        let e = vote(
            &mut t,
            &inv,
            "frank",
            VoteKind::Approve,
            "mine",
            Via::Cli,
            2_000,
        )
        .unwrap_err();
        assert!(e.to_string().contains("separation of duties"), "{e}");
        assert_eq!(t.status, Status::Pending);
        assert!(t.votes.is_empty());
        // Delegation: triage (owned by carol) delegated to refund-agent; carol may not approve.
        let mut d = req("refund-agent", "dave", &["group:finance-leads"], 1);
        d.delegation = vec!["triage".into()];
        d.root_human = Some("alice".into());
        let e = vote(
            &mut d,
            &inv,
            "carol",
            VoteKind::Approve,
            "ok",
            Via::Cli,
            2_000,
        )
        .unwrap_err();
        assert!(e.to_string().contains("delegation chain"), "{e}");
        // Without separation of duties the owner may approve.
        let mut n = req("treasury-agent", "frank", &["group:finance-leads"], 1);
        n.separation_of_duties = false;
        assert_eq!(
            vote(
                &mut n,
                &inv,
                "frank",
                VoteKind::Approve,
                "ok",
                Via::Cli,
                2_000
            )
            .unwrap(),
            Status::Approved
        );
        let elig = crate::eligible_approvers(&inv, &t);
        assert_eq!(elig, vec!["bob".to_string(), "carol".to_string()]);
    }

    #[test]
    fn two_person_rule_needs_two_distinct_people() {
        let inv = acme();
        let mut r = req("treasury-agent", "frank", &["group:finance-leads"], 2);
        assert_eq!(
            vote(
                &mut r,
                &inv,
                "bob",
                VoteKind::Approve,
                "ok",
                Via::Cli,
                2_000
            )
            .unwrap(),
            Status::Pending
        );
        let e = vote(
            &mut r,
            &inv,
            "bob",
            VoteKind::Approve,
            "again",
            Via::Console,
            2_100,
        )
        .unwrap_err();
        assert!(matches!(e, ApprovalError::AlreadyVoted { .. }));
        assert_eq!(r.status, Status::Pending);
        assert_eq!(
            vote(
                &mut r,
                &inv,
                "carol",
                VoteKind::Approve,
                "ok",
                Via::Cli,
                2_200
            )
            .unwrap(),
            Status::Approved
        );
        assert_eq!(r.approvals(), vec!["bob", "carol"]);
    }

    #[test]
    fn deny_is_final_and_names_who_and_why() {
        let inv = acme();
        let mut r = req("refund-agent", "dave", &["group:finance-leads"], 2);
        vote(
            &mut r,
            &inv,
            "bob",
            VoteKind::Approve,
            "ok",
            Via::Cli,
            2_000,
        )
        .unwrap();
        assert_eq!(
            vote(
                &mut r,
                &inv,
                "carol",
                VoteKind::Deny,
                "duplicate refund",
                Via::Cli,
                2_100
            )
            .unwrap(),
            Status::Denied
        );
        assert_eq!(r.answer_summary(), "denied by carol: duplicate refund");
        assert!(matches!(
            vote(
                &mut r,
                &inv,
                "frank",
                VoteKind::Approve,
                "ok",
                Via::Cli,
                2_200
            ),
            Err(ApprovalError::NotPending {
                status: Status::Denied,
                ..
            })
        ));
        assert_eq!(
            vote(
                &mut r,
                &inv,
                "frank",
                VoteKind::Approve,
                "  ",
                Via::Cli,
                2_200
            ),
            Err(ApprovalError::EmptyReason)
        );
    }

    #[test]
    fn expiry_applies_to_pending_and_unused_approvals() {
        let inv = acme();
        let mut r = req("refund-agent", "dave", &["group:finance-leads"], 1);
        let at = r.expires_ms;
        assert!(!expire_if_due(&mut r, at - 1));
        let e = vote(&mut r, &inv, "bob", VoteKind::Approve, "late", Via::Cli, at).unwrap_err();
        assert!(matches!(e, ApprovalError::Expired(_)));
        assert_eq!(r.status, Status::Expired);
        let mut a = req("refund-agent", "dave", &["group:finance-leads"], 1);
        vote(
            &mut a,
            &inv,
            "bob",
            VoteKind::Approve,
            "ok",
            Via::Cli,
            2_000,
        )
        .unwrap();
        let d = a.args_digest.clone();
        let late = a.expires_ms + 5;
        assert!(matches!(
            consume(&mut a, &d, late),
            Err(ApprovalError::Expired(_))
        ));
        assert_eq!(a.status, Status::Expired);
    }
}
