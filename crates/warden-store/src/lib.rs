//! # warden-store
//!
//! Warden's durable state, in one SQLite file (WAL mode): the **audit trail** and the
//! **agent tokens**. Later issues add their tables through [`schema::MIGRATIONS`]
//! (approvals, tool pins, sessions, handoff context): append a migration, never edit one.
//!
//! - [`Store::open`] creates or opens a SQLite file; [`Store::connect_url`] also takes a
//!   `postgres://` URL (several gateway replicas sharing one store). Same schema, same SQL.
//! - The audit trail is append-only and hash-chained: each record's `hash` is
//!   `sha256(prev_hash || canonical_json({"seq", "event"}))`. [`AuditWriter`] appends with
//!   group commit (one transaction, one fsync for every queued record) and acknowledges a
//!   record only once it is durable: committed, or, for the gateway's
//!   [`Store::journaled_audit_writer`], written to the process's [`journal`] (copied into
//!   the chain in batches; what a stopped process left is recovered exactly once); [`Store::verify_audit`] recomputes the chain and names
//!   the first record that was modified, deleted, inserted or reordered.
//! - Agent tokens are 32 random bytes shown once; only their sha256 is stored
//!   ([`Store::issue_token`], [`Store::lookup_token`], [`Store::revoke_token`]).
//! - [`redact`] removes credentials from arguments before they are written to the trail.

pub mod approvals;
pub mod audit;
pub mod canonical;
pub mod context;
pub mod error;
pub mod journal;
pub mod pins;
pub mod redact;
pub mod schema;
pub mod time;
pub mod tokens;

pub use audit::{
    AuditEvent, AuditRecord, AuditWriter, Problem, ProblemKind, Receipt, VerifyReport,
};
pub use canonical::canonical_json;
pub use error::StoreError;
pub use journal::RecoveredJournal;
pub use pins::{ApproveOutcome, SightingReason, ToolPin, ToolSighting};
pub use tokens::{IssuedToken, TokenInfo, TokenLookup};

use std::path::Path;
use std::str::FromStr;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyConnection, AnyPool, ConnectOptions, Executor};

/// How hard a commit waits for the disk (SQLite; PostgreSQL commits are always durable).
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

/// Which database a store lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// An open store. Cheap to clone (a connection pool).
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    url: String,
    backend: Backend,
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
        let abs = std::path::absolute(path).map_err(|e| StoreError::Io {
            path: path.to_path_buf(),
            source: e,
        })?;
        let url = format!("sqlite://{}?mode=rwc", abs.display());
        Store::connect_url(&url, durability)
            .await
            .map_err(|e| match e {
                StoreError::Connect { source, .. } => StoreError::Open {
                    path: path.to_path_buf(),
                    source,
                },
                other => other,
            })
    }

    /// Opens a store by URL: `sqlite://PATH?mode=rwc` or `postgres://USER:PASS@HOST/DB`.
    pub async fn connect_url(url: &str, durability: Durability) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            return Err(StoreError::Url(url.to_string()));
        };
        let pool = AnyPoolOptions::new()
            .max_connections(4)
            .after_connect(move |conn, _meta| {
                Box::pin(async move { prepare(conn, backend, durability).await })
            })
            .connect(url)
            .await
            .map_err(|e| StoreError::Connect {
                url: redact_url(url),
                source: e,
            })?;
        let store = Store {
            pool,
            url: url.to_string(),
            backend,
            durability,
        };
        schema::migrate(&store.pool).await?;
        Ok(store)
    }

    /// The backend.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The pool, for crates that add their own tables through migrations. SQL must be
    /// portable: `$1` placeholders, BIGINT/TEXT columns.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// A second, independent connection pool to the same database (what another process
    /// would have), bound to the calling async runtime.
    pub async fn reconnect(&self) -> Result<Store, StoreError> {
        Store::connect_url(&self.url, self.durability).await
    }

    /// The durability commits (and journal appends) wait for.
    pub fn durability(&self) -> Durability {
        self.durability
    }

    /// Starts the group-commit audit writer (one per process that appends at a high rate);
    /// an append returns once committed. The gateway uses
    /// [`Store::journaled_audit_writer`] instead.
    pub async fn audit_writer(&self) -> Result<AuditWriter, StoreError> {
        self.start_audit_writer(None).await
    }

    pub(crate) async fn start_audit_writer(
        &self,
        journal: Option<std::sync::Arc<journal::Journal>>,
    ) -> Result<AuditWriter, StoreError> {
        let opts = AnyConnectOptions::from_str(&self.url)?;
        let mut conn: AnyConnection = opts.connect().await?;
        prepare(&mut conn, self.backend, self.durability).await?;
        if self.backend == Backend::Sqlite {
            // Checkpoints move out of the commit path: the writer never checkpoints itself
            // (that stalls the call whose commit crosses the threshold); a background task
            // does a PASSIVE checkpoint, which never blocks the writer, once a second.
            conn.execute("PRAGMA wal_autocheckpoint = 0").await?;
            let pool = self.pool.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
                loop {
                    tick.tick().await;
                    if pool.is_closed() {
                        break;
                    }
                    let _ = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                        .execute(&pool)
                        .await;
                }
            });
        }
        Ok(AuditWriter::start(conn, self.backend, journal))
    }

    /// Closes the pool (waits for connections to be returned).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Per-connection settings.
async fn prepare(
    conn: &mut AnyConnection,
    backend: Backend,
    durability: Durability,
) -> Result<(), sqlx::Error> {
    if backend == Backend::Sqlite {
        conn.execute("PRAGMA journal_mode = WAL").await?;
        conn.execute(match durability {
            Durability::Full => "PRAGMA synchronous = FULL",
            Durability::Normal => "PRAGMA synchronous = NORMAL",
        })
        .await?;
        conn.execute("PRAGMA busy_timeout = 10000").await?;
        conn.execute("PRAGMA foreign_keys = ON").await?;
    }
    Ok(())
}

/// A URL without its password, for error messages.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            let user = creds.split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..s + 3], &url[at..])
        }
        _ => url.to_string(),
    }
}
