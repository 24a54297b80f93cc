//! The one error type of warden-core.

use std::path::{Path, PathBuf};

use crate::finding::SourceLocation;

/// Why an inventory could not be loaded. Every variant names the file (and line where known).
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error("{path}: {source}", path = .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: not a directory (expected an inventory directory)", .0.display())]
    NotADirectory(PathBuf),
    #[error("{}: {} bytes is larger than a manifest may be", .0.display(), .1)]
    TooLarge(PathBuf, u64),
    /// Malformed YAML, an unknown field or a type error.
    #[error("{location}: {message}")]
    Manifest {
        location: SourceLocation,
        message: String,
        /// serde-saphyr's full rendering, with a source snippet.
        rendered: String,
    },
    #[error("{location}: duplicate {kind} `{id}` (first declared in {first})", first = .first.display())]
    Duplicate {
        kind: &'static str,
        id: String,
        location: SourceLocation,
        first: PathBuf,
    },
    #[error("{location}: invalid {kind} `{id}`: {why}")]
    InvalidId {
        kind: &'static str,
        id: String,
        location: SourceLocation,
        why: &'static str,
    },
    #[error("invalid duration `{0}` (expected a number and a unit: 30s, 15m, 24h, 7d)")]
    Duration(String),
}

impl CoreError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        CoreError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// The place in a file this error is about, when it has one.
    pub fn location(&self) -> Option<&SourceLocation> {
        match self {
            CoreError::Manifest { location, .. }
            | CoreError::Duplicate { location, .. }
            | CoreError::InvalidId { location, .. } => Some(location),
            _ => None,
        }
    }
}
