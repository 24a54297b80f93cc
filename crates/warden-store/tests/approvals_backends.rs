//! Approval requests on both backends (a real SQLite file and a real PostgreSQL database,
//! same tests): the ApprovalStore contract the gateway, CLI and console rely on.
//! PostgreSQL: `WARDEN_TEST_POSTGRES_URL` (default
//! `postgres://warden:warden@127.0.0.1:5432/postgres`), set up by `scripts/deps.d/40-gateway.sh`.

use serde_json::json;
use warden_approval::{
    ApprovalError, ApprovalStore, ListFilter, NewRequest, Status, Via, VoteKind, ops,
};
use warden_core::Inventory;
use warden_store::Durability;
use warden_store::time::now_ms;

#[path = "support/mod.rs"]
mod support;
use support::{Db, new_store};

fn inv() -> Inventory {
    Inventory::from_manifests([(
        "org.yaml",
        "humans:\n  - { id: bob, groups: [leads] }\n  - { id: carol, groups: [leads] }\n  - { id: frank, groups: [leads] }\nagents:\n  - { id: trader, owner: frank }\n  - { id: refunder, owner: dave }\n",
    )])
    .unwrap()
}

fn new(agent: &str, owner: &str, tool: &str, amount: i64, required: u32) -> NewRequest {
    let args = json!({"amount": amount, "token": "hunter2hunter2"});
    NewRequest {
        agent: agent.into(),
        owner: Some(owner.into()),
        tool: tool.into(),
        display_args: warden_store::redact::redact_value(&args),
        args,
        approvers: vec!["group:leads".into()],
        approvals_required: required,
        separation_of_duties: true,
        ttl_ms: 600_000,
        ..Default::default()
    }
}

async fn contract(db: Db) {
    let (_d, st) = new_store(db, Durability::Normal).await;
    let inv = inv();
    let t0 = now_ms();
    let a = ops::open(
        &st,
        new("trader", "frank", "market.place_order", 100, 2),
        t0,
    )
    .await
    .unwrap();
    let b = ops::open(
        &st,
        new("refunder", "dave", "payments.issue_refund", 900, 1),
        t0 + 1,
    )
    .await
    .unwrap();
    let c = ops::open(
        &st,
        new("refunder", "dave", "payments.issue_refund", 901, 1),
        t0 + 2,
    )
    .await
    .unwrap();

    // Listing: newest first, by status and agent, limited.
    let all = st.list(&ListFilter::default()).await.unwrap();
    assert_eq!(
        all.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        [&c.id, &b.id, &a.id]
    );
    let mine = st
        .list(&ListFilter {
            agent: Some("refunder".into()),
            limit: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].id, c.id);
    assert_eq!(mine[0].args["token"], "hunter2hunter2");

    // Two-person rule, owner refused, CAS.
    let e = ops::vote(
        &st,
        &inv,
        &a.id,
        "frank",
        VoteKind::Approve,
        "mine",
        Via::Cli,
        now_ms(),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, ApprovalError::NotEligible { .. }));
    let stale = st.get(&a.id).await.unwrap().unwrap();
    let r = ops::vote(
        &st,
        &inv,
        &a.id,
        "bob",
        VoteKind::Approve,
        "ok",
        Via::Cli,
        now_ms(),
    )
    .await
    .unwrap();
    assert_eq!(r.status, Status::Pending);
    assert!(matches!(
        st.update(&stale).await,
        Err(ApprovalError::Conflict(_))
    ));
    let r = ops::vote(
        &st,
        &inv,
        &a.id,
        "carol",
        VoteKind::Approve,
        "ok",
        Via::Console,
        now_ms(),
    )
    .await
    .unwrap();
    assert_eq!(r.status, Status::Approved);
    assert_eq!(r.version, 2);

    // Deny, then the digest lookups.
    ops::vote(
        &st,
        &inv,
        &b.id,
        "bob",
        VoteKind::Deny,
        "no",
        Via::Webhook,
        now_ms(),
    )
    .await
    .unwrap();
    assert!(
        st.find_by_digest(
            "refunder",
            "payments.issue_refund",
            &b.args_digest,
            Status::Pending
        )
        .await
        .unwrap()
        .is_none()
    );
    assert_eq!(
        st.find_by_digest(
            "refunder",
            "payments.issue_refund",
            &c.args_digest,
            Status::Pending
        )
        .await
        .unwrap()
        .unwrap()
        .id,
        c.id
    );
    let used = ops::consume_matching(
        &st,
        "trader",
        "market.place_order",
        &a.args_digest,
        now_ms(),
    )
    .await
    .unwrap();
    assert_eq!(used.unwrap().status, Status::Consumed);
    assert!(
        ops::consume_matching(
            &st,
            "trader",
            "market.place_order",
            &a.args_digest,
            now_ms()
        )
        .await
        .unwrap()
        .is_none()
    );
    assert_eq!(
        st.last_approved("trader", "market.place_order", now_ms())
            .await
            .unwrap()
            .unwrap()
            .id,
        a.id
    );
    assert!(
        st.last_approved("refunder", "payments.issue_refund", now_ms())
            .await
            .unwrap()
            .is_none()
    );

    // Expiry is applied by list.
    let pending = ops::list(&st, &ListFilter::pending(), c.expires_ms)
        .await
        .unwrap();
    assert!(pending.is_empty());
    assert_eq!(
        st.get(&c.id).await.unwrap().unwrap().status,
        Status::Expired
    );

    // Console logins and approver tokens.
    let t = st.issue_console_login("bob", 60_000).await.unwrap();
    assert_eq!(
        st.redeem_console_login(&t.token).await.unwrap().as_deref(),
        Some("bob")
    );
    assert_eq!(st.redeem_console_login(&t.token).await.unwrap(), None);
    let k = st
        .issue_approver_token("carol", Some(60_000))
        .await
        .unwrap();
    assert_eq!(
        st.lookup_approver_token(&k.token).await.unwrap().unwrap().1,
        "carol"
    );

    // Audit records of approvals chain and verify, without the secret.
    let r = st.get(&a.id).await.unwrap().unwrap();
    st.audit_approval(&r, "approved", r.votes.last(), None)
        .await
        .unwrap();
    let tail = st.audit_tail(5).await.unwrap();
    assert!(!serde_json::to_string(&tail).unwrap().contains("hunter2"));
    assert!(st.verify_audit(None).await.unwrap().ok);
    st.close().await;
}

mod approvals_contract {
    #[tokio::test]
    async fn sqlite() {
        super::contract(super::Db::Sqlite).await
    }
    #[tokio::test]
    async fn postgres() {
        super::contract(super::Db::Postgres).await
    }
}
