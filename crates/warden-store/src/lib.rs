//! # warden-store
//!
//! Warden's durable state, in one SQLite file (WAL mode): the **audit trail** and the
//! **agent tokens**. Later issues add their tables through [`schema::MIGRATIONS`]
//! (approvals, tool pins, sessions, handoff context): append a migration, never edit one.
//!
//! - [`Store::open`] creates or opens the database and applies migrations.
//! - The audit trail is append-only and hash-chained: each record's `hash` is
//!   `sha256(prev_hash || canonical_json({"seq", "event"}))`. [`AuditWriter`] appends with
//!   group commit (one transaction, one fsync for every queued record) and acknowledges a
//!   record only once it is durable; [`Store::verify_audit`] recomputes the chain and names
//!   the first record that was modified, deleted, inserted or reordered.
//! - Agent tokens are 32 random bytes shown once; only their sha256 is stored
//!   ([`Store::issue_token`], [`Store::lookup_token`], [`Store::revoke_token`]).
//! - [`redact`] removes credentials from arguments before they are written to the trail.

pub mod audit;
pub mod canonical;
pub mod error;
pub mod redact;
pub mod schema;
pub mod time;
pub mod tokens;

pub use audit::{
    AuditEvent, AuditRecord, AuditWriter, Problem, ProblemKind, Receipt, VerifyReport,
};
pub use canonical::canonical_json;
pub use error::StoreError;
pub use tokens::{IssuedToken, TokenInfo, TokenLookup};

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

/// How hard a commit waits for the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `synchronous=FULL`: every commit is fsynced; survives power loss.
    #[default]
    Full,
    /// `synchronous=NORMAL` in WAL mode: a commit survives the process being killed
    /// (`kill -9`), not a power loss of the machine.
    Normal,
}

impl FromStr for Durability {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "full" => Ok(Durability::Full),
            "normal" => Ok(Durability::Normal),
            other => Err(format!(
                "unknown durability `{other}` (expected full or normal)"
            )),
        }
    }
}

/// An open store. Cheap to clone (a connection pool).
#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
    path: PathBuf,
    durability: Durability,
}

impl Store {
    /// Opens (creating if needed) the SQLite database at `path` and applies migrations.
    pub async fn open(path: &Path, durability: Durability) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Io {
                path: dir.to_path_buf(),
                source: e,
            })?;
        }
        let opts = connect_options(path, durability);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts)
            .await
            .map_err(|e| StoreError::Open {
                path: path.to_path_buf(),
                source: e,
            })?;
        let store = Store {
            pool,
            path: path.to_path_buf(),
            durability,
        };
        schema::migrate(&store.pool).await?;
        Ok(store)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The pool, for crates that add their own tables through migrations.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Starts the group-commit audit writer (one per process that appends at a high rate).
    pub async fn audit_writer(&self) -> Result<AuditWriter, StoreError> {
        let conn_opts = connect_options(&self.path, self.durability);
        AuditWriter::start(conn_opts).await
    }

    /// Closes the pool (waits for connections to be returned).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

pub(crate) fn connect_options(path: &Path, durability: Durability) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(match durability {
            Durability::Full => SqliteSynchronous::Full,
            Durability::Normal => SqliteSynchronous::Normal,
        })
        .busy_timeout(Duration::from_secs(10))
        .foreign_keys(true)
}
