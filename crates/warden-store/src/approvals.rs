//! Approval requests, console logins and approver tokens in the store (issue 5).
//!
//! - `approvals`: one row per request; `request` is the JSON of
//!   [`warden_approval::ApprovalRequest`] without the exact arguments, which are kept in
//!   `args` only so that the gateway forwards exactly what was approved. Lookup columns
//!   (`agent`, `tool`, `args_digest`, `status`, times, `version`) are kept in sync.
//!   Updates are compare-and-swap on `version` ([`ApprovalStore::update`]).
//! - `console_logins`: one-time console login tokens. A token is 32 random bytes; only its
//!   sha256 is stored (a high-entropy secret needs no slow hash: sha256 already makes
//!   guessing 2^256 work, and argon2 would only slow every login). Redeeming marks it used
//!   atomically, so a token logs in once.
//! - `approver_tokens`: per-approver bearer tokens for the admin API (webhook round trips),
//!   sha256 only, like agent tokens.
//! - [`Store::audit_approval`]: every request, vote, expiry and use becomes an `approval`
//!   audit record in the hash chain.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::Row;
use sqlx::any::AnyRow;
use warden_approval::{ApprovalError, ApprovalRequest, ApprovalStore, ListFilter, Status, Vote};

use crate::time::{now_ms, rfc3339};
use crate::{AuditEvent, Receipt, Store, StoreError};

/// The tables, appended to [`crate::schema::MIGRATIONS`].
pub const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS approvals (
        id TEXT PRIMARY KEY,
        agent TEXT NOT NULL,
        tool TEXT NOT NULL,
        args_digest TEXT NOT NULL,
        status TEXT NOT NULL,
        created_ms BIGINT NOT NULL,
        expires_ms BIGINT NOT NULL,
        version BIGINT NOT NULL,
        args TEXT NOT NULL,
        request TEXT NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS approvals_lookup ON approvals(agent, tool, args_digest, status)",
    "CREATE INDEX IF NOT EXISTS approvals_status ON approvals(status, created_ms)",
    "CREATE TABLE IF NOT EXISTS console_logins (
        token_hash TEXT PRIMARY KEY,
        human TEXT NOT NULL,
        created_ms BIGINT NOT NULL,
        expires_ms BIGINT NOT NULL,
        used_ms BIGINT
    )",
    "CREATE TABLE IF NOT EXISTS approver_tokens (
        id TEXT PRIMARY KEY,
        human TEXT NOT NULL,
        token_hash TEXT NOT NULL UNIQUE,
        created_ms BIGINT NOT NULL,
        expires_ms BIGINT,
        revoked_ms BIGINT
    )",
];

/// Console sessions in the store (migration 5), so a restart or another replica behind the
/// same load balancer keeps approvers logged in. Only the sha256 of the session cookie is kept.
pub const CONSOLE_SESSIONS_SCHEMA: &[&str] = &["CREATE TABLE IF NOT EXISTS console_sessions (
        session_hash TEXT PRIMARY KEY,
        human TEXT NOT NULL,
        csrf TEXT NOT NULL,
        created_ms BIGINT NOT NULL,
        expires_ms BIGINT NOT NULL
    )"];

fn db(e: sqlx::Error) -> ApprovalError {
    ApprovalError::Store(e.to_string())
}

fn from_row(r: &AnyRow) -> Result<ApprovalRequest, ApprovalError> {
    let text: String = r.try_get("request").map_err(db)?;
    let args: String = r.try_get("args").map_err(db)?;
    let id: String = r.try_get("id").map_err(db)?;
    let mut req: ApprovalRequest = serde_json::from_str(&text)
        .map_err(|e| ApprovalError::Store(format!("approval {id} is unreadable: {e}")))?;
    req.args = serde_json::from_str(&args).map_err(|e| {
        ApprovalError::Store(format!("approval {id} arguments are unreadable: {e}"))
    })?;
    req.version = r.try_get("version").map_err(db)?;
    Ok(req)
}

fn request_json(req: &ApprovalRequest) -> Result<String, ApprovalError> {
    serde_json::to_string(req).map_err(|e| ApprovalError::Store(e.to_string()))
}

impl ApprovalStore for Store {
    async fn insert(&self, req: &ApprovalRequest) -> Result<(), ApprovalError> {
        sqlx::query(
            "INSERT INTO approvals (id, agent, tool, args_digest, status, created_ms, expires_ms, version, args, request)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&req.id)
        .bind(&req.agent)
        .bind(&req.tool)
        .bind(&req.args_digest)
        .bind(req.status.as_str())
        .bind(req.created_ms)
        .bind(req.expires_ms)
        .bind(req.version)
        .bind(req.args.to_string())
        .bind(request_json(req)?)
        .execute(self.pool())
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn get(&self, id: &str) -> Result<Option<ApprovalRequest>, ApprovalError> {
        let row = sqlx::query("SELECT id, version, args, request FROM approvals WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await
            .map_err(db)?;
        row.as_ref().map(from_row).transpose()
    }

    async fn update(&self, req: &ApprovalRequest) -> Result<(), ApprovalError> {
        let done = sqlx::query(
            "UPDATE approvals SET status = $1, expires_ms = $2, version = $3, request = $4
             WHERE id = $5 AND version = $6",
        )
        .bind(req.status.as_str())
        .bind(req.expires_ms)
        .bind(req.version + 1)
        .bind(request_json(req)?)
        .bind(&req.id)
        .bind(req.version)
        .execute(self.pool())
        .await
        .map_err(db)?;
        if done.rows_affected() == 1 {
            return Ok(());
        }
        match ApprovalStore::get(self, &req.id).await? {
            None => Err(ApprovalError::NotFound(req.id.clone())),
            Some(_) => Err(ApprovalError::Conflict(req.id.clone())),
        }
    }

    async fn list(&self, filter: &ListFilter) -> Result<Vec<ApprovalRequest>, ApprovalError> {
        // Statuses are a closed set of identifiers: inlined, the rest is bound.
        let mut sql = String::from("SELECT id, version, args, request FROM approvals WHERE 1 = 1");
        if !filter.statuses.is_empty() {
            let list: Vec<String> = filter
                .statuses
                .iter()
                .map(|s| format!("'{}'", s.as_str()))
                .collect();
            sql.push_str(&format!(" AND status IN ({})", list.join(", ")));
        }
        if filter.agent.is_some() {
            sql.push_str(" AND agent = $1");
        }
        sql.push_str(" ORDER BY created_ms DESC, id DESC");
        if filter.limit > 0 {
            sql.push_str(&format!(" LIMIT {}", filter.limit));
        }
        // Audited: only enum names and a number are interpolated; the agent is bound.
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        if let Some(a) = &filter.agent {
            q = q.bind(a);
        }
        let rows = q.fetch_all(self.pool()).await.map_err(db)?;
        rows.iter().map(from_row).collect()
    }

    async fn find_by_digest(
        &self,
        agent: &str,
        tool: &str,
        digest: &str,
        status: Status,
    ) -> Result<Option<ApprovalRequest>, ApprovalError> {
        let row = sqlx::query(
            "SELECT id, version, args, request FROM approvals WHERE agent = $1 AND tool = $2 AND args_digest = $3 AND status = $4
             ORDER BY created_ms DESC, id DESC LIMIT 1",
        )
        .bind(agent)
        .bind(tool)
        .bind(digest)
        .bind(status.as_str())
        .fetch_optional(self.pool())
        .await
        .map_err(db)?;
        row.as_ref().map(from_row).transpose()
    }

    async fn last_approved(
        &self,
        agent: &str,
        tool: &str,
        before_ms: i64,
    ) -> Result<Option<ApprovalRequest>, ApprovalError> {
        let row = sqlx::query(
            "SELECT id, version, args, request FROM approvals WHERE agent = $1 AND tool = $2 AND created_ms < $3
             AND status IN ('approved', 'consumed') ORDER BY created_ms DESC, id DESC LIMIT 1",
        )
        .bind(agent)
        .bind(tool)
        .bind(before_ms)
        .fetch_optional(self.pool())
        .await
        .map_err(db)?;
        row.as_ref().map(from_row).transpose()
    }
}

fn random_secret(prefix: &str) -> Result<String, StoreError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| StoreError::Random(e.to_string()))?;
    Ok(format!("{prefix}{}", hex::encode(bytes)))
}

fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// A one-time console login token, shown once.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ConsoleLogin {
    pub human: String,
    pub token: String,
    pub expires_at: String,
}

/// A per-approver admin API token, shown once.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ApproverToken {
    pub id: String,
    pub human: String,
    pub token: String,
    pub expires_at: Option<String>,
}

/// An approver token as listed: everything but the secret.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ApproverTokenInfo {
    pub id: String,
    pub human: String,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
}

impl Store {
    /// Issues a one-time console login token for `human`, valid for `ttl_ms`.
    pub async fn issue_console_login(
        &self,
        human: &str,
        ttl_ms: i64,
    ) -> Result<ConsoleLogin, StoreError> {
        let token = random_secret("wcl_")?;
        let now = now_ms();
        sqlx::query("INSERT INTO console_logins (token_hash, human, created_ms, expires_ms) VALUES ($1, $2, $3, $4)")
            .bind(sha256_hex(&token))
            .bind(human)
            .bind(now)
            .bind(now + ttl_ms)
            .execute(self.pool())
            .await?;
        Ok(ConsoleLogin {
            human: human.to_string(),
            token,
            expires_at: rfc3339(now + ttl_ms),
        })
    }

    /// Redeems a console login token: the human it was issued to, once; None when unknown,
    /// expired or already used.
    pub async fn redeem_console_login(&self, token: &str) -> Result<Option<String>, StoreError> {
        let hash = sha256_hex(token.trim());
        let now = now_ms();
        let done = sqlx::query(
            "UPDATE console_logins SET used_ms = $1 WHERE token_hash = $2 AND used_ms IS NULL AND expires_ms > $3",
        )
        .bind(now)
        .bind(&hash)
        .bind(now)
        .execute(self.pool())
        .await?;
        if done.rows_affected() != 1 {
            return Ok(None);
        }
        let human: Option<String> =
            sqlx::query_scalar("SELECT human FROM console_logins WHERE token_hash = $1")
                .bind(&hash)
                .fetch_optional(self.pool())
                .await?;
        Ok(human)
    }

    /// Starts a console session: `session` is the cookie value (only its hash is stored).
    pub async fn open_console_session(
        &self,
        session: &str,
        human: &str,
        csrf: &str,
        ttl_ms: i64,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        // Expired sessions go when new ones start: the table stays small without a sweeper.
        sqlx::query("DELETE FROM console_sessions WHERE expires_ms <= $1")
            .bind(now)
            .execute(self.pool())
            .await?;
        sqlx::query("INSERT INTO console_sessions (session_hash, human, csrf, created_ms, expires_ms) VALUES ($1, $2, $3, $4, $5)")
            .bind(sha256_hex(session))
            .bind(human)
            .bind(csrf)
            .bind(now)
            .bind(now + ttl_ms)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// The human and CSRF token of a live console session; None when unknown or expired.
    pub async fn console_session(
        &self,
        session: &str,
    ) -> Result<Option<(String, String)>, StoreError> {
        let row = sqlx::query(
            "SELECT human, csrf FROM console_sessions WHERE session_hash = $1 AND expires_ms > $2",
        )
        .bind(sha256_hex(session))
        .bind(now_ms())
        .fetch_optional(self.pool())
        .await?;
        match row {
            Some(r) => Ok(Some((r.try_get("human")?, r.try_get("csrf")?))),
            None => Ok(None),
        }
    }

    /// Ends a console session (logout).
    pub async fn close_console_session(&self, session: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM console_sessions WHERE session_hash = $1")
            .bind(sha256_hex(session))
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Issues an admin API token for an approver (webhook round trips).
    pub async fn issue_approver_token(
        &self,
        human: &str,
        ttl_ms: Option<i64>,
    ) -> Result<ApproverToken, StoreError> {
        let token = random_secret("wap_")?;
        let hash = sha256_hex(&token);
        let id = hash[..12].to_string();
        let now = now_ms();
        let expires = ttl_ms.map(|t| now + t);
        sqlx::query(
            "INSERT INTO approver_tokens (id, human, token_hash, created_ms, expires_ms) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&id)
        .bind(human)
        .bind(&hash)
        .bind(now)
        .bind(expires)
        .execute(self.pool())
        .await?;
        Ok(ApproverToken {
            id,
            human: human.to_string(),
            token,
            expires_at: expires.map(rfc3339),
        })
    }

    /// Every approver token (never the secret): id, human, created, expiry, revocation.
    pub async fn list_approver_tokens(&self) -> Result<Vec<ApproverTokenInfo>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, human, created_ms, expires_ms, revoked_ms FROM approver_tokens ORDER BY created_ms, id",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ApproverTokenInfo {
                    id: r.try_get("id")?,
                    human: r.try_get("human")?,
                    created_at: rfc3339(r.try_get("created_ms")?),
                    expires_at: r.try_get::<Option<i64>, _>("expires_ms")?.map(rfc3339),
                    revoked_at: r.try_get::<Option<i64>, _>("revoked_ms")?.map(rfc3339),
                })
            })
            .collect()
    }

    /// Revokes an approver token by id; returns its human. Revoking twice keeps the first time.
    pub async fn revoke_approver_token(&self, id: &str) -> Result<String, StoreError> {
        self.revoke_by_id("approver_tokens", "human", id).await
    }

    /// The approver a presented admin API token belongs to, when valid.
    pub async fn lookup_approver_token(
        &self,
        token: &str,
    ) -> Result<Option<(String, String)>, StoreError> {
        let row = sqlx::query(
            "SELECT id, human, expires_ms, revoked_ms FROM approver_tokens WHERE token_hash = $1",
        )
        .bind(sha256_hex(token.trim()))
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let expires: Option<i64> = row.try_get("expires_ms")?;
        let revoked: Option<i64> = row.try_get("revoked_ms")?;
        if revoked.is_some() || expires.is_some_and(|e| e <= now_ms()) {
            return Ok(None);
        }
        Ok(Some((row.try_get("id")?, row.try_get("human")?)))
    }

    /// Appends an `approval` record: `outcome` is `requested`, `approved`, `denied`,
    /// `pending` (a vote that did not yet reach the required count), `expired`, `consumed`
    /// or `refused` (an ineligible or invalid answer); `vote` the answer that caused it.
    pub async fn audit_approval(
        &self,
        req: &ApprovalRequest,
        outcome: &str,
        vote: Option<&Vote>,
        extra: Option<(&str, Value)>,
    ) -> Result<Receipt, StoreError> {
        self.append_audit(&approval_event(req, outcome, vote, extra))
            .await
    }
}

/// The audit event for an approval transition (also used by the gateway's writer).
pub fn approval_event(
    req: &ApprovalRequest,
    outcome: &str,
    vote: Option<&Vote>,
    extra: Option<(&str, Value)>,
) -> AuditEvent {
    let mut ev = AuditEvent::now("approval");
    ev.agent = Some(req.agent.clone());
    ev.delegation = req.delegation.clone();
    ev.root_human = req.root_human.clone();
    ev.session = req.session.clone();
    ev.request = req.request.clone();
    ev.method = Some("tools/call".into());
    ev.tool = Some(req.tool.clone());
    ev.args_digest = Some(req.args_digest.clone());
    ev.args = Some(req.display_args.clone());
    ev.decision = Some("needs_approval".into());
    ev.policies = req.policies.clone();
    ev.outcome = Some(outcome.to_string());
    ev.tainted = Some(req.tainted);
    ev.detail.insert("approval_id".into(), json!(req.id));
    ev.detail
        .insert("status".into(), json!(req.status.as_str()));
    ev.detail.insert("approvals".into(), json!(req.approvals()));
    ev.detail
        .insert("approvals_required".into(), json!(req.approvals_required));
    ev.detail.insert("approvers".into(), json!(req.approvers));
    if let Some(v) = vote {
        ev.detail.insert("human".into(), json!(v.human));
        ev.detail.insert("vote".into(), json!(v.kind.as_str()));
        ev.detail.insert("reason".into(), json!(v.reason));
        ev.detail.insert("via".into(), json!(v.via.as_str()));
    }
    if let Some((k, v)) = extra {
        ev.detail.insert(k.to_string(), v);
    }
    ev
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Durability;
    use warden_approval::{NewRequest, Via, VoteKind, ops};
    use warden_core::Inventory;

    fn inv() -> Inventory {
        Inventory::from_manifests([(
            "org.yaml",
            "humans:\n  - { id: bob, groups: [finance-leads] }\n  - { id: carol, groups: [finance-leads] }\nagents:\n  - { id: refund-agent, owner: dave }\n",
        )])
        .unwrap()
    }

    fn new_req(amount: i64) -> NewRequest {
        NewRequest {
            agent: "refund-agent".into(),
            owner: Some("dave".into()),
            tool: "payments.issue_refund".into(),
            args: json!({"amount": amount, "api_key": "hunter2hunter2"}),
            display_args: crate::redact::redact_value(
                &json!({"amount": amount, "api_key": "hunter2hunter2"}),
            ),
            approvers: vec!["group:finance-leads".into()],
            approvals_required: 2,
            separation_of_duties: true,
            ttl_ms: 60_000,
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn requests_survive_reopening_and_cas_holds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        let inv = inv();
        let id;
        let digest;
        {
            let st = Store::open(&path, Durability::Full).await.unwrap();
            let r = ops::open(&st, new_req(900), now_ms()).await.unwrap();
            // The store's audit digest and the approval digest agree.
            assert_eq!(
                r.args_digest,
                crate::audit::digest(&json!({"api_key": "hunter2hunter2", "amount": 900}))
            );
            id = r.id.clone();
            digest = r.args_digest.clone();
            let v = ops::vote(
                &st,
                &inv,
                &id,
                "bob",
                VoteKind::Approve,
                "fine",
                Via::Cli,
                now_ms(),
            )
            .await
            .unwrap();
            assert_eq!(v.status, Status::Pending);
            st.audit_approval(&v, "pending", v.votes.last(), None)
                .await
                .unwrap();
            st.close().await;
        }
        let st = Store::open(&path, Durability::Full).await.unwrap();
        let r = ApprovalStore::get(&st, &id)
            .await
            .unwrap()
            .expect("survives a restart");
        assert_eq!(
            r.args["api_key"], "hunter2hunter2",
            "exact args kept for forwarding"
        );
        assert_eq!(r.display_args["api_key"], crate::redact::REDACTED);
        assert_eq!(r.votes.len(), 1);
        assert_eq!(r.version, 1);
        // A stale copy cannot overwrite.
        let stale = r.clone();
        let v = ops::vote(
            &st,
            &inv,
            &id,
            "carol",
            VoteKind::Approve,
            "fine too",
            Via::Console,
            now_ms(),
        )
        .await
        .unwrap();
        assert_eq!(v.status, Status::Approved);
        assert!(matches!(
            st.update(&stale).await,
            Err(ApprovalError::Conflict(_))
        ));
        // Single use, same digest only.
        assert!(
            ops::consume_matching(
                &st,
                "refund-agent",
                "payments.issue_refund",
                "beef",
                now_ms()
            )
            .await
            .unwrap()
            .is_none()
        );
        let used = ops::consume_matching(
            &st,
            "refund-agent",
            "payments.issue_refund",
            &digest,
            now_ms(),
        )
        .await
        .unwrap()
        .unwrap();
        assert_eq!(used.status, Status::Consumed);
        assert!(
            ops::consume_matching(
                &st,
                "refund-agent",
                "payments.issue_refund",
                &digest,
                now_ms()
            )
            .await
            .unwrap()
            .is_none()
        );
        let pending = ops::list(&st, &ListFilter::pending(), now_ms())
            .await
            .unwrap();
        assert!(pending.is_empty());
        let all = ops::list(&st, &ListFilter::default(), now_ms())
            .await
            .unwrap();
        assert_eq!(all.len(), 1);
        // The audit record is in the chain and never holds the secret.
        let tail = st.audit_tail(10).await.unwrap();
        let rec = tail.iter().find(|r| r.event["kind"] == "approval").unwrap();
        assert_eq!(rec.event["detail"]["human"], "bob");
        assert!(!rec.event.to_string().contains("hunter2"));
        assert!(st.verify_audit(None).await.unwrap().ok);
        // No row anywhere but `args` holds the secret.
        let req_text: String = sqlx::query_scalar("SELECT request FROM approvals WHERE id = $1")
            .bind(&id)
            .fetch_one(st.pool())
            .await
            .unwrap();
        assert!(!req_text.contains("hunter2"));
    }

    #[tokio::test]
    async fn console_login_tokens_are_single_use_and_hashed() {
        let dir = tempfile::tempdir().unwrap();
        let st = Store::open(&dir.path().join("w.db"), Durability::Full)
            .await
            .unwrap();
        let t = st.issue_console_login("bob", 60_000).await.unwrap();
        let stored: String = sqlx::query_scalar("SELECT token_hash FROM console_logins")
            .fetch_one(st.pool())
            .await
            .unwrap();
        assert_ne!(stored, t.token);
        assert!(!stored.contains(&t.token[4..]));
        assert_eq!(st.redeem_console_login("wcl_nope").await.unwrap(), None);
        assert_eq!(
            st.redeem_console_login(&t.token).await.unwrap().as_deref(),
            Some("bob")
        );
        assert_eq!(
            st.redeem_console_login(&t.token).await.unwrap(),
            None,
            "used once"
        );
        let expired = st.issue_console_login("bob", -1).await.unwrap();
        assert_eq!(st.redeem_console_login(&expired.token).await.unwrap(), None);
        let a = st.issue_approver_token("carol", None).await.unwrap();
        assert_eq!(
            st.lookup_approver_token(&a.token).await.unwrap(),
            Some((a.id.clone(), "carol".to_string()))
        );
        assert_eq!(st.lookup_approver_token("wap_x").await.unwrap(), None);
        // Console sessions: found by the cookie value, only its hash stored, gone at logout
        // and at expiry.
        st.open_console_session("sid-1", "bob", "csrf-1", 60_000)
            .await
            .unwrap();
        st.open_console_session("sid-old", "bob", "csrf-2", -1)
            .await
            .unwrap();
        assert_eq!(
            st.console_session("sid-1").await.unwrap(),
            Some(("bob".to_string(), "csrf-1".to_string()))
        );
        assert_eq!(st.console_session("sid-old").await.unwrap(), None);
        let kept: Vec<String> = sqlx::query_scalar("SELECT session_hash FROM console_sessions")
            .fetch_all(st.pool())
            .await
            .unwrap();
        assert!(!kept.iter().any(|h| h.contains("sid-")));
        st.close_console_session("sid-1").await.unwrap();
        assert_eq!(st.console_session("sid-1").await.unwrap(), None);
        // Listed without the secret; revoked → no longer accepted; unknown id → error.
        let listed = st.list_approver_tokens().await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(
            (listed[0].id.as_str(), listed[0].human.as_str()),
            (a.id.as_str(), "carol")
        );
        assert_eq!(listed[0].revoked_at, None);
        assert_eq!(st.revoke_approver_token(&a.id).await.unwrap(), "carol");
        assert_eq!(st.lookup_approver_token(&a.token).await.unwrap(), None);
        assert!(
            st.list_approver_tokens().await.unwrap()[0]
                .revoked_at
                .is_some()
        );
        assert!(matches!(
            st.revoke_approver_token("nope").await,
            Err(StoreError::NoSuchToken(_))
        ));
    }
}
