//! The store's error type.

use std::path::PathBuf;

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the store at {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: sqlx::Error,
    },
    #[error("cannot connect to {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("unsupported store URL `{0}` (expected sqlite:// or postgres://)")]
    Url(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("corrupt record {seq}: {message}")]
    Corrupt { seq: i64, message: String },
    #[error("{}:{line}: {message}", path.display())]
    Journal {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("the audit writer has stopped")]
    WriterStopped,
    #[error("no token with id `{0}`")]
    NoSuchToken(String),
    #[error("cannot generate random bytes: {0}")]
    Random(String),
}
