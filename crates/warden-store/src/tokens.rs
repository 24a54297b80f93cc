//! Agent bearer tokens: `wdn_` + 64 hex characters (32 random bytes), shown once. Only the
//! sha256 of the whole token is stored; the token id (first 12 hex characters of that hash)
//! names it in listings, revocations and audit records.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::time::{now_ms, rfc3339};
use crate::{Store, StoreError};

/// A freshly issued token: the secret is only ever in this value.
#[derive(Debug, Clone, Serialize)]
pub struct IssuedToken {
    pub id: String,
    pub agent: String,
    pub token: String,
    pub expires_at: Option<String>,
}

/// A stored token, without its secret.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TokenInfo {
    pub id: String,
    pub agent: String,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
    /// `active`, `expired` or `revoked`.
    pub status: String,
}

/// What a presented bearer token turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenLookup {
    Valid { id: String, agent: String },
    Expired { id: String, agent: String },
    Revoked { id: String, agent: String },
    Unknown,
}

/// sha256 of a presented token, hex.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn random_token() -> Result<String, StoreError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| StoreError::Random(e.to_string()))?;
    Ok(format!("wdn_{}", hex::encode(bytes)))
}

impl Store {
    /// Issues a token for `agent`, valid for `ttl_ms` (None: until revoked).
    pub async fn issue_token(
        &self,
        agent: &str,
        ttl_ms: Option<i64>,
        description: Option<&str>,
    ) -> Result<IssuedToken, StoreError> {
        let token = random_token()?;
        let hash = token_hash(&token);
        let id = hash[..12].to_string();
        let now = now_ms();
        let expires = ttl_ms.map(|t| now + t);
        sqlx::query(
            "INSERT INTO tokens (id, agent, token_hash, created_ms, expires_ms, description) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&id)
        .bind(agent)
        .bind(&hash)
        .bind(now)
        .bind(expires)
        .bind(description)
        .execute(self.pool())
        .await?;
        Ok(IssuedToken {
            id,
            agent: agent.to_string(),
            token,
            expires_at: expires.map(rfc3339),
        })
    }

    /// Resolves a presented token.
    pub async fn lookup_token(&self, token: &str) -> Result<TokenLookup, StoreError> {
        let hash = token_hash(token);
        let row = sqlx::query(
            "SELECT id, agent, expires_ms, revoked_ms FROM tokens WHERE token_hash = $1",
        )
        .bind(&hash)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else {
            return Ok(TokenLookup::Unknown);
        };
        let id: String = row.try_get("id")?;
        let agent: String = row.try_get("agent")?;
        let expires: Option<i64> = row.try_get("expires_ms")?;
        let revoked: Option<i64> = row.try_get("revoked_ms")?;
        Ok(if revoked.is_some() {
            TokenLookup::Revoked { id, agent }
        } else if expires.is_some_and(|e| e <= now_ms()) {
            TokenLookup::Expired { id, agent }
        } else {
            TokenLookup::Valid { id, agent }
        })
    }

    /// Every token, newest first.
    pub async fn list_tokens(&self) -> Result<Vec<TokenInfo>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, agent, created_ms, expires_ms, revoked_ms FROM tokens ORDER BY created_ms DESC, id",
        )
        .fetch_all(self.pool())
        .await?;
        let now = now_ms();
        rows.iter()
            .map(|r| {
                let expires: Option<i64> = r.try_get("expires_ms")?;
                let revoked: Option<i64> = r.try_get("revoked_ms")?;
                let status = if revoked.is_some() {
                    "revoked"
                } else if expires.is_some_and(|e| e <= now) {
                    "expired"
                } else {
                    "active"
                };
                Ok(TokenInfo {
                    id: r.try_get("id")?,
                    agent: r.try_get("agent")?,
                    created_at: rfc3339(r.try_get("created_ms")?),
                    expires_at: expires.map(rfc3339),
                    revoked_at: revoked.map(rfc3339),
                    status: status.to_string(),
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// Revokes a token by id; returns its agent. Revoking twice is not an error.
    pub async fn revoke_token(&self, id: &str) -> Result<String, StoreError> {
        self.revoke_by_id("tokens", "agent", id).await
    }

    /// Marks the row `id` of a token table (`tokens`, `approver_tokens`) revoked and returns
    /// its holder (`owner_column`); revoking twice keeps the first time.
    pub(crate) async fn revoke_by_id(
        &self,
        table: &'static str,
        owner_column: &'static str,
        id: &str,
    ) -> Result<String, StoreError> {
        // Table and column names are constants of this crate; the id is bound.
        let owner: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT {owner_column} FROM {table} WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        let Some(owner) = owner else {
            return Err(StoreError::NoSuchToken(id.to_string()));
        };
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE {table} SET revoked_ms = $1 WHERE id = $2 AND revoked_ms IS NULL"
        )))
        .bind(now_ms())
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(owner)
    }
}
