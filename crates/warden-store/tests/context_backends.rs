//! Handoff context on both backends (a real SQLite file and a real PostgreSQL database, same
//! test): storing, reading, TTL purges that remove rows and are audited, the shared
//! delegation key. PostgreSQL: `WARDEN_TEST_POSTGRES_URL` (default
//! `postgres://warden:warden@127.0.0.1:5432/postgres`), set up by `scripts/deps.d/40-gateway.sh`.

use serde_json::{Value, json};
use warden_store::context::{HandoffTask, StoredEntry};
use warden_store::{Durability, Store};

#[path = "support/mod.rs"]
mod support;
use support::{Db, new_store};

fn task(id: &str, expires_ms: i64) -> HandoffTask {
    HandoffTask {
        id: id.into(),
        from_agent: "triage".into(),
        to_agent: "refund".into(),
        root_human: Some("alice".into()),
        chain: vec!["triage".into(), "refund".into()],
        instructions: None,
        created_ms: 1_000,
        expires_ms,
        token_id: format!("dt_{id}"),
        token_hash: "00".repeat(32),
        state: "open".into(),
    }
}

fn entry(key: &str, value: Value, expires_ms: i64, tainted: bool) -> StoredEntry {
    StoredEntry {
        key: key.into(),
        value,
        written_by: "triage".into(),
        tainted,
        taint_sources: if tainted {
            vec!["mail.read_inbox".into()]
        } else {
            Vec::new()
        },
        created_ms: 1_000,
        expires_ms,
    }
}

async fn count(st: &Store, table: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
        .fetch_one(st.pool())
        .await
        .unwrap()
}

async fn contract(db: Db) {
    let (_d, st) = new_store(db, Durability::Normal).await;
    let nested = json!({"amount": 12.5, "lines": [1, 2], "note": "naïve ✓"});
    st.insert_handoff(
        &task("t1", 10_000),
        &[
            entry("ticket_id", json!("T-1"), 10_000, false),
            entry("order", nested.clone(), 5_000, true),
        ],
    )
    .await
    .unwrap();
    st.insert_handoff(&task("t2", 5_000), &[entry("x", json!(1), 5_000, false)])
        .await
        .unwrap();
    // The same task id twice is refused, and the first one is untouched.
    assert!(st.insert_handoff(&task("t1", 99_000), &[]).await.is_err());
    let (t, entries) = st.handoff_task("t1", 4_000).await.unwrap().unwrap();
    assert_eq!(t.expires_ms, 10_000);
    assert_eq!(t.chain, ["triage", "refund"]);
    assert_eq!(entries.len(), 2);
    let order = entries.iter().find(|e| e.key == "order").unwrap();
    assert_eq!(order.value, nested);
    assert!(order.tainted);

    // At 5 s the read purges t2 and t1's short-lived entry, audited before deletion.
    let (_, entries) = st.handoff_task("t1", 5_000).await.unwrap().unwrap();
    assert_eq!(entries.len(), 1);
    assert!(st.handoff_task("t2", 5_000).await.unwrap().is_none());
    assert_eq!(count(&st, "context_entries").await, 1);
    assert_eq!(count(&st, "handoff_tasks").await, 1);
    let tail = st.audit_tail(10).await.unwrap();
    assert_eq!(tail.len(), 1);
    assert_eq!(tail[0].event["kind"], "context_purge");
    assert_eq!(tail[0].event["detail"]["tasks"], json!(["t2"]));
    assert_eq!(
        tail[0].event["detail"]["entries"],
        json!(["t1/order", "t2/x"])
    );
    let p = st.purge_expired_context(10_000).await.unwrap();
    assert_eq!(p.tasks, ["t1"]);
    assert_eq!(count(&st, "context_entries").await, 0);
    assert_eq!(count(&st, "handoff_tasks").await, 0);
    assert!(st.verify_audit(None).await.unwrap().ok);

    // One delegation key per store, whoever asks first.
    let k = st.delegation_key("k1").await.unwrap();
    assert_eq!(st.delegation_key("k2").await.unwrap(), k);
}

mod backends {
    #[tokio::test]
    async fn sqlite() {
        super::contract(super::Db::Sqlite).await
    }
    #[tokio::test]
    async fn postgres() {
        super::contract(super::Db::Postgres).await
    }
}
