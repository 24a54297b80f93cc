//! The audit chain against a real SQLite file and a real PostgreSQL database (same tests,
//! both backends): appends verify; every kind of tampering done directly in the database (as
//! an attacker with write access would) is named by `verify_audit`.
//!
//! PostgreSQL comes from `scripts/deps.d/40-gateway.sh`; `WARDEN_TEST_POSTGRES_URL` names a
//! database on a server where the user may create databases (default
//! `postgres://warden:warden@127.0.0.1:5432/postgres`). Each test gets its own database.

use serde_json::json;
use sqlx::Row;
use warden_store::audit::{GENESIS, chain_hash, record_text};
use warden_store::{AuditEvent, Durability, ProblemKind, Store};

#[path = "support/mod.rs"]
mod support;
use support::{Db, new_store};

/// Runs one test body against both backends.
macro_rules! both {
    ($name:ident) => {
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                super::$name(super::Db::Sqlite).await
            }
            #[tokio::test]
            async fn postgres() {
                super::$name(super::Db::Postgres).await
            }
        }
    };
}

async fn store_with(db: Db, n: usize) -> (tempfile::TempDir, Store) {
    let (dir, store) = new_store(db, Durability::Full).await;
    let writer = store.audit_writer().await.unwrap();
    for i in 0..n {
        let mut ev = AuditEvent::now("decision");
        ev.agent = Some(format!("agent-{i}"));
        ev.tool = Some("crm.read_ticket".into());
        ev.args = Some(json!({"ticket_id": format!("T-{i}")}));
        writer.append(&ev).await.unwrap();
    }
    (dir, store)
}

async fn exec(store: &Store, sql: &str) {
    sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
        .execute(store.pool())
        .await
        .unwrap();
}

async fn untouched_chain_verifies_and_links(db: Db) {
    let (_d, store) = store_with(db, 20).await;
    let report = store.verify_audit(None).await.unwrap();
    assert!(report.ok, "{report:?}");
    assert_eq!(report.records, 20);
    let recs = store.audit_after(0, 100).await.unwrap();
    assert_eq!(recs[0].prev_hash, GENESIS);
    for w in recs.windows(2) {
        assert_eq!(w[1].prev_hash, w[0].hash);
        assert_eq!(w[1].seq, w[0].seq + 1);
    }
    assert_eq!(report.head, recs.last().unwrap().hash);
    // The head can be checked against a value kept elsewhere.
    assert!(store.verify_audit(Some(&recs[10].hash)).await.unwrap().ok);
}

async fn concurrent_appends_from_many_tasks_form_one_chain(db: Db) {
    let (_dir, store) = new_store(db, Durability::Normal).await;
    let writer = store.audit_writer().await.unwrap();
    let mut handles = Vec::new();
    for t in 0..8 {
        let w = writer.clone();
        handles.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for i in 0..50 {
                let ev = AuditEvent::now("decision").with_detail("n", format!("{t}-{i}"));
                seqs.push(w.append_committed(&ev).await.unwrap().seq);
            }
            seqs
        }));
    }
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await.unwrap());
    }
    // A second, independent appender (another process would look the same) interleaves.
    store.append_audit(&AuditEvent::now("token")).await.unwrap();
    writer.append(&AuditEvent::now("decision")).await.unwrap();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 400, "every append got its own seq");
    let report = store.verify_audit(None).await.unwrap();
    assert!(report.ok, "{report:?}");
    assert_eq!(report.records, 402);
}

async fn two_writers_interleave_without_forking(db: Db) {
    // Two gateway replicas on one database: each writer remembers the head it wrote last,
    // and must notice when the other one appended meanwhile.
    let (_dir, store) = new_store(db, Durability::Normal).await;
    let a = store.audit_writer().await.unwrap();
    let b = store.audit_writer().await.unwrap();
    let mut seqs = Vec::new();
    for i in 0..30 {
        let w = if i % 3 == 0 { &b } else { &a };
        seqs.push(
            w.append_committed(&AuditEvent::now("decision").with_detail("i", i))
                .await
                .unwrap()
                .seq,
        );
    }
    // Large batches (more rows than one INSERT statement carries) from both at once.
    for i in 0..600 {
        let w = if i % 2 == 0 { &a } else { &b };
        w.append_nowait(&AuditEvent::now("outcome").with_detail("i", i))
            .await;
    }
    a.flush().await;
    b.flush().await;
    let expected: Vec<i64> = (1..=30).collect();
    assert_eq!(
        seqs, expected,
        "appends awaited in turn get consecutive seqs"
    );
    let report = store.verify_audit(None).await.unwrap();
    assert!(report.ok, "{report:?}");
    assert_eq!(report.records, 630, "no record lost, none written twice");
}

async fn modified_record_is_named(db: Db) {
    let (_d, store) = store_with(db, 10).await;
    exec(
        &store,
        "UPDATE audit SET record = replace(record, 'agent-4', 'agent-X') WHERE seq = 5",
    )
    .await;
    let p = store.verify_audit(None).await.unwrap().problem.unwrap();
    assert_eq!((p.seq, p.kind), (5, ProblemKind::Modified), "{p:?}");
}

async fn modified_record_with_recomputed_hash_is_named(db: Db) {
    let (_d, store) = store_with(db, 10).await;
    let row = sqlx::query("SELECT record, prev_hash FROM audit WHERE seq = 6")
        .fetch_one(store.pool())
        .await
        .unwrap();
    let record: String = row.get("record");
    let prev: String = row.get("prev_hash");
    let forged = record.replace("agent-5", "agent-Y");
    let hash = chain_hash(&prev, &forged);
    sqlx::query("UPDATE audit SET record = $1, hash = $2 WHERE seq = 6")
        .bind(&forged)
        .bind(&hash)
        .execute(store.pool())
        .await
        .unwrap();
    let p = store.verify_audit(None).await.unwrap().problem.unwrap();
    assert_eq!((p.seq, p.kind), (6, ProblemKind::Modified), "{p:?}");
}

async fn deleted_record_is_named(db: Db) {
    let (_d, store) = store_with(db, 10).await;
    exec(&store, "DELETE FROM audit WHERE seq = 4").await;
    let p = store.verify_audit(None).await.unwrap().problem.unwrap();
    assert_eq!(p.kind, ProblemKind::Deleted, "{p:?}");
    assert!(p.message.contains("record 4"), "{p:?}");
}

async fn deleted_and_renumbered_is_named(db: Db) {
    let (_d, store) = store_with(db, 10).await;
    exec(&store, "DELETE FROM audit WHERE seq = 4").await;
    for s in 5..=10 {
        exec(
            &store,
            &format!("UPDATE audit SET seq = {} WHERE seq = {s}", s - 1),
        )
        .await;
    }
    let p = store.verify_audit(None).await.unwrap().problem.unwrap();
    assert_eq!(p.kind, ProblemKind::Deleted, "{p:?}");
    assert!(p.message.contains("record 4"), "{p:?}");
}

async fn deleted_tail_is_caught_against_a_kept_head(db: Db) {
    let (_d, store) = store_with(db, 10).await;
    let head = store.verify_audit(None).await.unwrap().head;
    exec(&store, "DELETE FROM audit WHERE seq >= 9").await;
    assert!(
        store.verify_audit(None).await.unwrap().ok,
        "a truncated chain is self-consistent"
    );
    let p = store
        .verify_audit(Some(&head))
        .await
        .unwrap()
        .problem
        .unwrap();
    assert_eq!(p.kind, ProblemKind::HeadMismatch, "{p:?}");
}

async fn inserted_record_is_named_even_with_a_valid_forged_hash(db: Db) {
    let (_d, store) = store_with(db, 10).await;
    // Make room at seq 5 by renumbering 5..=10 upwards, then insert a forged record whose
    // own hash is correct and which links to record 4.
    for s in (5..=10).rev() {
        exec(
            &store,
            &format!("UPDATE audit SET seq = {} WHERE seq = {s}", s + 1),
        )
        .await;
    }
    let prev: String = sqlx::query("SELECT hash FROM audit WHERE seq = 4")
        .fetch_one(store.pool())
        .await
        .unwrap()
        .get("hash");
    let mut ev = AuditEvent::now("decision");
    ev.agent = Some("forged".into());
    let record = record_text(5, &serde_json::to_value(&ev).unwrap());
    let hash = chain_hash(&prev, &record);
    sqlx::query("INSERT INTO audit (seq, record, prev_hash, hash) VALUES (5, $1, $2, $3)")
        .bind(&record)
        .bind(&prev)
        .bind(&hash)
        .execute(store.pool())
        .await
        .unwrap();
    let p = store.verify_audit(None).await.unwrap().problem.unwrap();
    assert_eq!((p.seq, p.kind), (5, ProblemKind::Inserted), "{p:?}");
}

async fn reordered_records_are_named(db: Db) {
    let (_d, store) = store_with(db, 10).await;
    exec(&store, "UPDATE audit SET seq = 1000 WHERE seq = 7").await;
    exec(&store, "UPDATE audit SET seq = 7 WHERE seq = 8").await;
    exec(&store, "UPDATE audit SET seq = 8 WHERE seq = 1000").await;
    let p = store.verify_audit(None).await.unwrap().problem.unwrap();
    assert_eq!((p.seq, p.kind), (7, ProblemKind::Reordered), "{p:?}");
}

async fn tokens_store_only_hashes_and_expire_and_revoke(db: Db) {
    let (_d, store) = store_with(db, 0).await;
    let t = store
        .issue_token("refund-agent", Some(3_600_000), None)
        .await
        .unwrap();
    assert!(t.token.starts_with("wdn_") && t.token.len() == 68);
    let stored: Vec<String> = sqlx::query("SELECT token_hash FROM tokens")
        .fetch_all(store.pool())
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<String, _>("token_hash"))
        .collect();
    assert!(
        !stored.iter().any(|h| h.contains(&t.token[4..])),
        "secret stored in clear"
    );
    assert_eq!(
        store.lookup_token(&t.token).await.unwrap(),
        warden_store::TokenLookup::Valid {
            id: t.id.clone(),
            agent: "refund-agent".into()
        }
    );
    assert_eq!(
        store.lookup_token("wdn_nope").await.unwrap(),
        warden_store::TokenLookup::Unknown
    );
    let expired = store
        .issue_token("refund-agent", Some(-1), None)
        .await
        .unwrap();
    assert!(matches!(
        store.lookup_token(&expired.token).await.unwrap(),
        warden_store::TokenLookup::Expired { .. }
    ));
    store.revoke_token(&t.id).await.unwrap();
    assert!(matches!(
        store.lookup_token(&t.token).await.unwrap(),
        warden_store::TokenLookup::Revoked { .. }
    ));
    assert!(store.revoke_token("nope").await.is_err());
    let list = store.list_tokens().await.unwrap();
    assert_eq!(list.len(), 2);
    let statuses: Vec<&str> = list.iter().map(|t| t.status.as_str()).collect();
    assert!(
        statuses.contains(&"revoked") && statuses.contains(&"expired"),
        "{statuses:?}"
    );
    let _ = json!(null);
}

both!(untouched_chain_verifies_and_links);
both!(concurrent_appends_from_many_tasks_form_one_chain);
both!(two_writers_interleave_without_forking);
both!(modified_record_is_named);
both!(modified_record_with_recomputed_hash_is_named);
both!(deleted_record_is_named);
both!(deleted_and_renumbered_is_named);
both!(deleted_tail_is_caught_against_a_kept_head);
both!(inserted_record_is_named_even_with_a_valid_forged_hash);
both!(reordered_records_are_named);
both!(tokens_store_only_hashes_and_expire_and_revoke);
