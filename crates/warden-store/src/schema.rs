//! Schema migrations. Each entry runs once, in order, inside a transaction; the applied
//! version is kept in `schema_version`. Append new migrations; never edit an applied one.
//! SQL stays portable (INTEGER/TEXT, no AUTOINCREMENT) so the same schema serves PostgreSQL.

use sqlx::AnyPool;

use crate::StoreError;

/// `(version, statements)`.
pub const MIGRATIONS: &[(i64, &[&str])] = &[
    (
        1,
        &[
            // The audit trail. `record` is the canonical JSON of {"seq", "event"}; `hash` chains it.
            "CREATE TABLE IF NOT EXISTS audit (
            seq BIGINT PRIMARY KEY,
            record TEXT NOT NULL,
            prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL
        )",
            // Agent bearer tokens: only the sha256 of the secret is stored.
            "CREATE TABLE IF NOT EXISTS tokens (
            id TEXT PRIMARY KEY,
            agent TEXT NOT NULL,
            token_hash TEXT NOT NULL UNIQUE,
            created_ms BIGINT NOT NULL,
            expires_ms BIGINT,
            revoked_ms BIGINT,
            description TEXT
        )",
            "CREATE INDEX IF NOT EXISTS tokens_agent ON tokens(agent)",
        ],
    ),
    (2, crate::approvals::SCHEMA),
    (3, crate::pins::SCHEMA),
    (4, crate::context::SCHEMA),
    (5, crate::approvals::CONSOLE_SESSIONS_SCHEMA),
    (6, crate::journal::SCHEMA),
    (7, crate::context::REVOCATION_SCHEMA),
];

/// Applies every migration newer than the database's version.
pub async fn migrate(pool: &AnyPool) -> Result<(), StoreError> {
    sqlx::query("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")
        .execute(pool)
        .await?;
    let current: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM schema_version")
        .fetch_one(pool)
        .await?;
    let current = current.unwrap_or(0);
    for (version, statements) in MIGRATIONS {
        if *version <= current {
            continue;
        }
        let mut tx = pool.begin().await?;
        for stmt in *statements {
            sqlx::query(*stmt).execute(&mut *tx).await?;
        }
        sqlx::query("INSERT INTO schema_version (version) VALUES ($1)")
            .bind(version)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
    }
    Ok(())
}
