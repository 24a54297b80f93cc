//! Handoff tasks and their context (issue 9).
//!
//! - `handoff_tasks`: one row per handoff `A → B`: who handed what to whom, the human at the
//!   root and the whole agent chain, when it expires, and the delegation token's id and
//!   sha256 (the token itself is returned once, to the sender, and never stored).
//! - `context_entries`: the entries that survived the handoff's allow-list, each with its
//!   provenance (who wrote it), whether it is tainted (and by what) and its own expiry.
//! - `delegation_keys`: Warden's delegation signing key (hex), created once and shared by
//!   every gateway replica on the same database, so tokens survive restarts. Never logged.
//!
//! Expired tasks and entries are purged by [`Store::purge_expired_context`], which every
//! read calls first (an expired entry is never served) and which the gateway also runs
//! periodically. Each purge that removes something writes one `context_purge` audit record
//! naming the tasks and keys removed, *before* deleting them: a purge is never silent.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{AuditEvent, Store, StoreError};

/// The tables, appended to [`crate::schema::MIGRATIONS`] as version 4.
pub const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS handoff_tasks (
        id TEXT PRIMARY KEY,
        from_agent TEXT NOT NULL,
        to_agent TEXT NOT NULL,
        root_human TEXT,
        chain TEXT NOT NULL,
        instructions TEXT,
        created_ms BIGINT NOT NULL,
        expires_ms BIGINT NOT NULL,
        token_id TEXT NOT NULL,
        token_hash TEXT NOT NULL,
        state TEXT NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS handoff_tasks_expiry ON handoff_tasks(expires_ms)",
    "CREATE TABLE IF NOT EXISTS context_entries (
        task_id TEXT NOT NULL,
        entry_key TEXT NOT NULL,
        value_json TEXT NOT NULL,
        written_by TEXT NOT NULL,
        tainted BIGINT NOT NULL,
        taint_sources TEXT NOT NULL,
        created_ms BIGINT NOT NULL,
        expires_ms BIGINT NOT NULL,
        PRIMARY KEY (task_id, entry_key)
    )",
    "CREATE INDEX IF NOT EXISTS context_entries_expiry ON context_entries(expires_ms)",
    "CREATE TABLE IF NOT EXISTS delegation_keys (
        id TEXT PRIMARY KEY,
        private_key TEXT NOT NULL,
        created_ms BIGINT NOT NULL
    )",
];

/// Delegation revocation (migration 7): each task's token revocation id (the biscuit id of
/// the token's last block, which every token handed on from it carries too), and when and by
/// whom it was revoked.
pub const REVOCATION_SCHEMA: &[&str] = &["CREATE TABLE IF NOT EXISTS handoff_revocations (
        task_id TEXT PRIMARY KEY,
        revocation_id TEXT NOT NULL,
        revoked_ms BIGINT,
        revoked_by TEXT
    )"];

/// What [`Store::revoke_handoff`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevokeHandoff {
    Revoked { revocation_id: String },
    AlreadyRevoked,
    NoSuchTask,
}

/// A task handed from one agent to another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandoffTask {
    pub id: String,
    pub from_agent: String,
    pub to_agent: String,
    pub root_human: Option<String>,
    /// Every agent on the delegation chain, first to `to_agent`.
    pub chain: Vec<String>,
    /// What the sender asked the receiver to do (free text), if given.
    pub instructions: Option<String>,
    pub created_ms: i64,
    pub expires_ms: i64,
    pub token_id: String,
    /// sha256 (hex) of the delegation token issued for this task.
    pub token_hash: String,
    /// `open` until the receiver first reads the context, then `redeemed`.
    pub state: String,
}

/// One context entry of a task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredEntry {
    pub key: String,
    pub value: Value,
    /// The agent (or `agent/connector.tool`) that wrote it.
    pub written_by: String,
    pub tainted: bool,
    /// What tainted it (the sender session's taint sources).
    pub taint_sources: Vec<String>,
    pub created_ms: i64,
    pub expires_ms: i64,
}

/// What one purge removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ContextPurge {
    /// Tasks removed (with all their entries).
    pub tasks: Vec<String>,
    /// `(task, key)` of every entry removed.
    pub entries: Vec<(String, String)>,
}

impl ContextPurge {
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty() && self.entries.is_empty()
    }
}

fn task_from_row(r: &AnyRow) -> Result<HandoffTask, StoreError> {
    let id: String = r.try_get("id")?;
    let chain: String = r.try_get("chain")?;
    let chain = serde_json::from_str(&chain).map_err(|e| StoreError::Corrupt {
        seq: 0,
        message: format!("handoff task {id}: unreadable chain: {e}"),
    })?;
    Ok(HandoffTask {
        from_agent: r.try_get("from_agent")?,
        to_agent: r.try_get("to_agent")?,
        root_human: r.try_get("root_human")?,
        chain,
        instructions: r.try_get("instructions")?,
        created_ms: r.try_get("created_ms")?,
        expires_ms: r.try_get("expires_ms")?,
        token_id: r.try_get("token_id")?,
        token_hash: r.try_get("token_hash")?,
        state: r.try_get("state")?,
        id,
    })
}

fn entry_from_row(r: &AnyRow) -> Result<StoredEntry, StoreError> {
    let key: String = r.try_get("entry_key")?;
    let corrupt = |what: &str, e: serde_json::Error| StoreError::Corrupt {
        seq: 0,
        message: format!("context entry {key}: unreadable {what}: {e}"),
    };
    let value: String = r.try_get("value_json")?;
    let sources: String = r.try_get("taint_sources")?;
    Ok(StoredEntry {
        value: serde_json::from_str(&value).map_err(|e| corrupt("value", e))?,
        taint_sources: serde_json::from_str(&sources).map_err(|e| corrupt("taint sources", e))?,
        written_by: r.try_get("written_by")?,
        tainted: r.try_get::<i64, _>("tainted")? != 0,
        created_ms: r.try_get("created_ms")?,
        expires_ms: r.try_get("expires_ms")?,
        key,
    })
}

const TASK_COLUMNS: &str = "id, from_agent, to_agent, root_human, chain, instructions, created_ms, expires_ms, token_id, token_hash, state";
const ENTRY_COLUMNS: &str =
    "entry_key, value_json, written_by, tainted, taint_sources, created_ms, expires_ms";

impl Store {
    /// Stores a task and its entries in one transaction.
    pub async fn insert_handoff(
        &self,
        task: &HandoffTask,
        entries: &[StoredEntry],
    ) -> Result<(), StoreError> {
        let chain = serde_json::to_string(&task.chain).unwrap_or_else(|_| "[]".into());
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "INSERT INTO handoff_tasks (id, from_agent, to_agent, root_human, chain, instructions, created_ms, expires_ms, token_id, token_hash, state)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&task.id)
        .bind(&task.from_agent)
        .bind(&task.to_agent)
        .bind(task.root_human.clone())
        .bind(chain)
        .bind(task.instructions.clone())
        .bind(task.created_ms)
        .bind(task.expires_ms)
        .bind(&task.token_id)
        .bind(&task.token_hash)
        .bind(&task.state)
        .execute(&mut *tx)
        .await?;
        for e in entries {
            sqlx::query(
                "INSERT INTO context_entries (task_id, entry_key, value_json, written_by, tainted, taint_sources, created_ms, expires_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&task.id)
            .bind(&e.key)
            .bind(e.value.to_string())
            .bind(&e.written_by)
            .bind(i64::from(e.tainted))
            .bind(serde_json::to_string(&e.taint_sources).unwrap_or_else(|_| "[]".into()))
            .bind(e.created_ms)
            .bind(e.expires_ms)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// A live task and its live entries (sorted by key). Purges everything expired at
    /// `now_ms` first, so an expired task or entry is never returned.
    pub async fn handoff_task(
        &self,
        id: &str,
        now_ms: i64,
    ) -> Result<Option<(HandoffTask, Vec<StoredEntry>)>, StoreError> {
        self.purge_expired_context(now_ms).await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TASK_COLUMNS} FROM handoff_tasks WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let task = task_from_row(&row)?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ENTRY_COLUMNS} FROM context_entries WHERE task_id = $1 ORDER BY entry_key"
        )))
        .bind(id)
        .fetch_all(self.pool())
        .await?;
        let entries = rows.iter().map(entry_from_row).collect::<Result<_, _>>()?;
        Ok(Some((task, entries)))
    }

    /// Remembers the revocation id of the token issued for `task_id`.
    pub async fn record_handoff_revocation_id(
        &self,
        task_id: &str,
        revocation_id: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO handoff_revocations (task_id, revocation_id) VALUES ($1, $2)")
            .bind(task_id)
            .bind(revocation_id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Revokes the token of `task_id`, and with it every token handed on from it.
    pub async fn revoke_handoff(
        &self,
        task_id: &str,
        by: &str,
        now_ms: i64,
    ) -> Result<RevokeHandoff, StoreError> {
        let r = sqlx::query(
            "UPDATE handoff_revocations SET revoked_ms = $1, revoked_by = $2 WHERE task_id = $3 AND revoked_ms IS NULL",
        )
        .bind(now_ms)
        .bind(by)
        .bind(task_id)
        .execute(self.pool())
        .await?;
        let id: Option<String> =
            sqlx::query_scalar("SELECT revocation_id FROM handoff_revocations WHERE task_id = $1")
                .bind(task_id)
                .fetch_optional(self.pool())
                .await?;
        Ok(match (r.rows_affected(), id) {
            (1, Some(revocation_id)) => RevokeHandoff::Revoked { revocation_id },
            (_, Some(_)) => RevokeHandoff::AlreadyRevoked,
            (_, None) => RevokeHandoff::NoSuchTask,
        })
    }

    /// The revocation ids of every revoked delegation.
    pub async fn revoked_delegations(
        &self,
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT revocation_id FROM handoff_revocations WHERE revoked_ms IS NOT NULL",
        )
        .fetch_all(self.pool())
        .await?;
        Ok(ids.into_iter().collect())
    }

    /// Marks a task redeemed (the receiver read its context); false if it is gone.
    pub async fn mark_handoff_redeemed(&self, id: &str) -> Result<bool, StoreError> {
        let r = sqlx::query("UPDATE handoff_tasks SET state = 'redeemed' WHERE id = $1")
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Removes every task and entry expired at `now_ms`. When something is removed, a
    /// `context_purge` audit record (tasks and `task/key` entries) is appended first.
    pub async fn purge_expired_context(&self, now_ms: i64) -> Result<ContextPurge, StoreError> {
        let tasks: Vec<String> =
            sqlx::query_scalar("SELECT id FROM handoff_tasks WHERE expires_ms <= $1 ORDER BY id")
                .bind(now_ms)
                .fetch_all(self.pool())
                .await?;
        let rows = sqlx::query(
            "SELECT e.task_id, e.entry_key FROM context_entries e
             LEFT JOIN handoff_tasks t ON t.id = e.task_id
             WHERE e.expires_ms <= $1 OR t.expires_ms <= $1 OR t.id IS NULL
             ORDER BY e.task_id, e.entry_key",
        )
        .bind(now_ms)
        .fetch_all(self.pool())
        .await?;
        let mut entries = Vec::with_capacity(rows.len());
        for r in &rows {
            entries.push((
                r.try_get::<String, _>("task_id")?,
                r.try_get::<String, _>("entry_key")?,
            ));
        }
        let purge = ContextPurge { tasks, entries };
        if purge.is_empty() {
            return Ok(purge);
        }
        let mut ev = AuditEvent::now("context_purge");
        ev.outcome = Some("purged".into());
        ev.detail.insert("tasks".into(), json!(purge.tasks));
        ev.detail.insert(
            "entries".into(),
            json!(
                purge
                    .entries
                    .iter()
                    .map(|(t, k)| format!("{t}/{k}"))
                    .collect::<Vec<_>>()
            ),
        );
        ev.detail
            .insert("expired_at_or_before_ms".into(), json!(now_ms));
        self.append_audit(&ev).await?;
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "DELETE FROM context_entries WHERE expires_ms <= $1
             OR task_id IN (SELECT id FROM handoff_tasks WHERE expires_ms <= $1)
             OR task_id NOT IN (SELECT id FROM handoff_tasks)",
        )
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM handoff_tasks WHERE expires_ms <= $1")
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(purge)
    }

    /// Warden's delegation signing key (hex). The first caller's `candidate` is kept; every
    /// later call (another replica, a restart) gets that same key back.
    pub async fn delegation_key(&self, candidate: &str) -> Result<String, StoreError> {
        sqlx::query(
            "INSERT INTO delegation_keys (id, private_key, created_ms) VALUES ('root', $1, $2)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(candidate)
        .bind(crate::time::now_ms())
        .execute(self.pool())
        .await?;
        let key: String =
            sqlx::query_scalar("SELECT private_key FROM delegation_keys WHERE id = 'root'")
                .fetch_one(self.pool())
                .await?;
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Durability;

    fn task(id: &str, expires_ms: i64) -> HandoffTask {
        HandoffTask {
            id: id.into(),
            from_agent: "triage".into(),
            to_agent: "refund".into(),
            root_human: Some("alice".into()),
            chain: vec!["triage".into(), "refund".into()],
            instructions: Some("refund ticket T-1".into()),
            created_ms: 1_000,
            expires_ms,
            token_id: format!("{id}-tok"),
            token_hash: "ab".repeat(32),
            state: "open".into(),
        }
    }

    fn entry(key: &str, expires_ms: i64, tainted: bool) -> StoredEntry {
        StoredEntry {
            key: key.into(),
            value: json!({"v": key}),
            written_by: "triage".into(),
            tainted,
            taint_sources: if tainted {
                vec!["mail.read_inbox".into()]
            } else {
                vec![]
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

    #[tokio::test]
    async fn tasks_and_entries_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let st = Store::open(&dir.path().join("w.db"), Durability::Normal)
            .await
            .unwrap();
        let t = task("t1", 10_000);
        st.insert_handoff(
            &t,
            &[
                entry("ticket_id", 10_000, false),
                entry("customer_id", 10_000, true),
            ],
        )
        .await
        .unwrap();
        let (got, entries) = st.handoff_task("t1", 2_000).await.unwrap().unwrap();
        assert_eq!(got, t);
        let keys: Vec<&str> = entries.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["customer_id", "ticket_id"]);
        assert!(entries[0].tainted);
        assert_eq!(entries[0].taint_sources, ["mail.read_inbox"]);
        assert_eq!(entries[0].value, json!({"v": "customer_id"}));
        assert!(!entries[1].tainted);
        assert!(st.mark_handoff_redeemed("t1").await.unwrap());
        let (got, _) = st.handoff_task("t1", 2_000).await.unwrap().unwrap();
        assert_eq!(got.state, "redeemed");
        assert!(st.handoff_task("nope", 2_000).await.unwrap().is_none());
        assert!(!st.mark_handoff_redeemed("nope").await.unwrap());
    }

    #[tokio::test]
    async fn expired_context_is_purged_from_the_store_and_the_purge_is_audited() {
        let dir = tempfile::tempdir().unwrap();
        let st = Store::open(&dir.path().join("w.db"), Durability::Normal)
            .await
            .unwrap();
        // t1 lives to 10 s but one entry only to 5 s; t2 expires at 5 s altogether.
        st.insert_handoff(
            &task("t1", 10_000),
            &[entry("short", 5_000, false), entry("long", 10_000, false)],
        )
        .await
        .unwrap();
        st.insert_handoff(&task("t2", 5_000), &[entry("ticket_id", 5_000, true)])
            .await
            .unwrap();
        // Nothing expired yet: nothing purged, nothing audited.
        assert!(st.purge_expired_context(4_999).await.unwrap().is_empty());
        assert_eq!(count(&st, "audit").await, 0);
        assert_eq!(count(&st, "context_entries").await, 3);

        // Reading at 5 s purges first: t2 is gone, t1 keeps only its long-lived entry.
        assert!(st.handoff_task("t2", 5_000).await.unwrap().is_none());
        let (_, entries) = st.handoff_task("t1", 5_000).await.unwrap().unwrap();
        assert_eq!(
            entries.iter().map(|e| e.key.as_str()).collect::<Vec<_>>(),
            ["long"]
        );
        // Gone from the tables, not merely hidden.
        assert_eq!(count(&st, "context_entries").await, 1);
        assert_eq!(count(&st, "handoff_tasks").await, 1);
        let left: Vec<String> = sqlx::query_scalar("SELECT entry_key FROM context_entries")
            .fetch_all(st.pool())
            .await
            .unwrap();
        assert_eq!(left, ["long"]);

        // Exactly one purge record, naming what went.
        let tail = st.audit_tail(10).await.unwrap();
        let purges: Vec<&Value> = tail
            .iter()
            .map(|r| &r.event)
            .filter(|e| e["kind"] == "context_purge")
            .collect();
        assert_eq!(purges.len(), 1, "{tail:?}");
        assert_eq!(purges[0]["detail"]["tasks"], json!(["t2"]));
        assert_eq!(
            purges[0]["detail"]["entries"],
            json!(["t1/short", "t2/ticket_id"])
        );

        // The sweep at 10 s removes the rest; a second sweep finds nothing and writes nothing.
        let p = st.purge_expired_context(10_000).await.unwrap();
        assert_eq!(p.tasks, ["t1"]);
        assert_eq!(p.entries, [("t1".to_string(), "long".to_string())]);
        assert_eq!(count(&st, "context_entries").await, 0);
        assert_eq!(count(&st, "handoff_tasks").await, 0);
        assert!(st.purge_expired_context(20_000).await.unwrap().is_empty());
        assert_eq!(st.audit_tail(10).await.unwrap().len(), 2);
        assert!(st.verify_audit(None).await.unwrap().ok);
    }

    #[tokio::test]
    async fn the_delegation_key_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        let first = {
            let st = Store::open(&path, Durability::Normal).await.unwrap();
            let k = st.delegation_key("aa11").await.unwrap();
            // A second candidate (another replica) does not replace it.
            assert_eq!(st.delegation_key("bb22").await.unwrap(), "aa11");
            st.close().await;
            k
        };
        let st = Store::open(&path, Durability::Normal).await.unwrap();
        assert_eq!(st.delegation_key("cc33").await.unwrap(), first);
        // Never in the audit trail.
        assert!(st.audit_tail(100).await.unwrap().is_empty());
    }
}
