//! Delegation revocation in the store, on SQLite and on PostgreSQL: a task's revocation id
//! is remembered at handoff time, revoking it once marks it (with who and when), a second
//! revocation and an unknown task are told apart, and the revoked set holds exactly the
//! revoked ids.

use warden_store::Durability;
use warden_store::context::RevokeHandoff;

#[path = "support/mod.rs"]
mod support;
use support::{Db, new_store};

async fn revoke_once_then_already_then_unknown(db: Db) {
    let (_tmp, store) = new_store(db, Durability::Normal).await;
    store
        .record_handoff_revocation_id("task_a", "aa11")
        .await
        .unwrap();
    store
        .record_handoff_revocation_id("task_b", "bb22")
        .await
        .unwrap();
    assert!(store.revoked_delegations().await.unwrap().is_empty());
    assert_eq!(
        store
            .revoke_handoff("task_a", "alice", 1_000)
            .await
            .unwrap(),
        RevokeHandoff::Revoked {
            revocation_id: "aa11".into()
        }
    );
    assert_eq!(
        store.revoke_handoff("task_a", "bob", 2_000).await.unwrap(),
        RevokeHandoff::AlreadyRevoked
    );
    assert_eq!(
        store
            .revoke_handoff("task_x", "alice", 3_000)
            .await
            .unwrap(),
        RevokeHandoff::NoSuchTask
    );
    let revoked = store.revoked_delegations().await.unwrap();
    assert_eq!(
        revoked.into_iter().collect::<Vec<_>>(),
        vec!["aa11".to_string()]
    );
    // The first revocation's author is kept.
    let by: String =
        sqlx::query_scalar("SELECT revoked_by FROM handoff_revocations WHERE task_id = $1")
            .bind("task_a")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(by, "alice");
}

mod revoke_once_then_already_then_unknown {
    #[tokio::test]
    async fn sqlite() {
        super::revoke_once_then_already_then_unknown(super::Db::Sqlite).await
    }
    #[tokio::test]
    async fn postgres() {
        super::revoke_once_then_already_then_unknown(super::Db::Postgres).await
    }
}
