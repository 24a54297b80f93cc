//! Store-generic operations: every front end (gateway, CLI, console, admin API) changes
//! requests through these, so the state machine and the concurrency rule live in one place.
//! Each re-reads the request, applies the transition and writes it back with the version
//! check, retrying a few times when another writer got there first.

use warden_core::Inventory;

use crate::ApprovalError;
use crate::machine;
use crate::model::{ApprovalRequest, NewRequest, Status, Via, VoteKind};
use crate::store::{ApprovalStore, ListFilter};

const RETRIES: usize = 8;

/// Reads request `id`, applies `apply` (which says whether it changed the request) and
/// writes it back under the version check, re-reading and retrying when another writer won.
/// A transition refused because the request ran out still persists the expiry it applied.
async fn transition<S: ApprovalStore>(
    store: &S,
    id: &str,
    mut apply: impl FnMut(&mut ApprovalRequest) -> Result<bool, ApprovalError>,
) -> Result<ApprovalRequest, ApprovalError> {
    for _ in 0..RETRIES {
        let mut r = store
            .get(id)
            .await?
            .ok_or_else(|| ApprovalError::NotFound(id.to_string()))?;
        match apply(&mut r) {
            Ok(false) => return Ok(r),
            Ok(true) => {}
            Err(ApprovalError::Expired(e)) => {
                // Persist the expiry; the transition itself is refused either way.
                let _ = store.update(&r).await;
                return Err(ApprovalError::Expired(e));
            }
            Err(e) => return Err(e),
        }
        match store.update(&r).await {
            Ok(()) => {
                r.version += 1;
                return Ok(r);
            }
            Err(ApprovalError::Conflict(_)) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(ApprovalError::Conflict(id.to_string()))
}

/// Opens and stores a new pending request.
pub async fn open<S: ApprovalStore>(
    store: &S,
    new: NewRequest,
    now_ms: i64,
) -> Result<ApprovalRequest, ApprovalError> {
    let req = ApprovalRequest::open(new, now_ms)?;
    store.insert(&req).await?;
    Ok(req)
}

/// A request, with its expiry applied (and persisted) when its time is up.
pub async fn get<S: ApprovalStore>(
    store: &S,
    id: &str,
    now_ms: i64,
) -> Result<ApprovalRequest, ApprovalError> {
    transition(store, id, |r| Ok(machine::expire_if_due(r, now_ms))).await
}

/// Lists requests after expiring those whose time is up.
pub async fn list<S: ApprovalStore>(
    store: &S,
    filter: &ListFilter,
    now_ms: i64,
) -> Result<Vec<ApprovalRequest>, ApprovalError> {
    let live = ListFilter {
        statuses: vec![Status::Pending, Status::Approved],
        ..Default::default()
    };
    for r in store.list(&live).await? {
        if r.expires_ms <= now_ms {
            get(store, &r.id, now_ms).await?;
        }
    }
    store.list(filter).await
}

/// Records an approve or deny by `human`; returns the request as stored afterwards.
#[allow(clippy::too_many_arguments)]
pub async fn vote<S: ApprovalStore>(
    store: &S,
    inv: &Inventory,
    id: &str,
    human: &str,
    kind: VoteKind,
    reason: &str,
    via: Via,
    now_ms: i64,
) -> Result<ApprovalRequest, ApprovalError> {
    transition(store, id, |r| {
        machine::vote(r, inv, human, kind, reason, via, now_ms).map(|_| true)
    })
    .await
}

/// Uses an approved request for the call with `digest` (single use).
pub async fn consume<S: ApprovalStore>(
    store: &S,
    id: &str,
    digest: &str,
    now_ms: i64,
) -> Result<ApprovalRequest, ApprovalError> {
    transition(store, id, |r| {
        machine::consume(r, digest, now_ms).map(|()| true)
    })
    .await
}

/// For a retried call: an approved, unexpired, unused request of `agent` for `tool` bound
/// to exactly these arguments, consumed now. None when there is none (a new request is
/// needed).
pub async fn consume_matching<S: ApprovalStore>(
    store: &S,
    agent: &str,
    tool: &str,
    digest: &str,
    now_ms: i64,
) -> Result<Option<ApprovalRequest>, ApprovalError> {
    // Several approved requests for the same digest are possible (two held calls); use the newest.
    for _ in 0..RETRIES {
        let Some(r) = store
            .find_by_digest(agent, tool, digest, Status::Approved)
            .await?
        else {
            return Ok(None);
        };
        match consume(store, &r.id, digest, now_ms).await {
            Ok(r) => return Ok(Some(r)),
            // Expired, or consumed by a concurrent retry: look for another one.
            Err(ApprovalError::Expired(_)) | Err(ApprovalError::NotPending { .. }) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

/// A pending request of `agent` for `tool` with exactly these arguments, if one is still
/// waiting (a retry while pending waits on it instead of opening a second one).
pub async fn pending_matching<S: ApprovalStore>(
    store: &S,
    agent: &str,
    tool: &str,
    digest: &str,
    now_ms: i64,
) -> Result<Option<ApprovalRequest>, ApprovalError> {
    let Some(r) = store
        .find_by_digest(agent, tool, digest, Status::Pending)
        .await?
    else {
        return Ok(None);
    };
    let r = get(store, &r.id, now_ms).await?;
    Ok((r.status == Status::Pending).then_some(r))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryStore;
    use futures_executor::block_on;
    use serde_json::json;

    fn inv() -> Inventory {
        Inventory::from_manifests([(
            "org.yaml",
            r#"
humans:
  - { id: bob, groups: [finance-leads] }
  - { id: carol, groups: [finance-leads] }
  - { id: dave, groups: [finance-ops] }
agents:
  - { id: refund-agent, owner: dave }
"#,
        )])
        .unwrap()
    }

    fn new(amount: i64) -> NewRequest {
        NewRequest {
            agent: "refund-agent".into(),
            owner: Some("dave".into()),
            tool: "payments.issue_refund".into(),
            args: json!({"amount": amount}),
            display_args: json!({"amount": amount}),
            approvers: vec!["group:finance-leads".into()],
            approvals_required: 1,
            separation_of_duties: true,
            ttl_ms: 10_000,
            ..Default::default()
        }
    }

    #[test]
    fn retry_with_same_digest_consumes_once_and_changed_args_do_not_match() {
        block_on(async {
            let s = MemoryStore::new();
            let inv = inv();
            let r = open(&s, new(900), 1_000).await.unwrap();
            assert!(
                pending_matching(
                    &s,
                    "refund-agent",
                    "payments.issue_refund",
                    &r.args_digest,
                    1_001
                )
                .await
                .unwrap()
                .is_some()
            );
            let v = vote(
                &s,
                &inv,
                &r.id,
                "bob",
                VoteKind::Approve,
                "ok",
                Via::Cli,
                2_000,
            )
            .await
            .unwrap();
            assert_eq!(v.status, Status::Approved);
            assert_eq!(v.version, 1);
            let other = crate::args_digest(&json!({"amount": 901}));
            assert!(
                consume_matching(&s, "refund-agent", "payments.issue_refund", &other, 2_100)
                    .await
                    .unwrap()
                    .is_none()
            );
            let used = consume_matching(
                &s,
                "refund-agent",
                "payments.issue_refund",
                &r.args_digest,
                2_100,
            )
            .await
            .unwrap()
            .expect("approved call proceeds");
            assert_eq!(used.status, Status::Consumed);
            assert!(
                consume_matching(
                    &s,
                    "refund-agent",
                    "payments.issue_refund",
                    &r.args_digest,
                    2_200
                )
                .await
                .unwrap()
                .is_none(),
                "single use"
            );
            let last = s
                .last_approved("refund-agent", "payments.issue_refund", 5_000)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(last.id, r.id);
        });
    }

    #[test]
    fn stale_writer_gets_a_conflict() {
        block_on(async {
            let s = MemoryStore::new();
            let r = open(&s, new(900), 1_000).await.unwrap();
            let mut a = s.get(&r.id).await.unwrap().unwrap();
            let b = a.clone();
            a.status = Status::Denied;
            s.update(&a).await.unwrap();
            assert!(matches!(
                s.update(&b).await,
                Err(ApprovalError::Conflict(_))
            ));
        });
    }

    #[test]
    fn list_expires_what_is_due() {
        block_on(async {
            let s = MemoryStore::new();
            let r = open(&s, new(900), 1_000).await.unwrap();
            let pending = list(&s, &ListFilter::pending(), 2_000).await.unwrap();
            assert_eq!(pending.len(), 1);
            let pending = list(&s, &ListFilter::pending(), r.expires_ms)
                .await
                .unwrap();
            assert!(pending.is_empty());
            assert_eq!(s.get(&r.id).await.unwrap().unwrap().status, Status::Expired);
        });
    }
}
