//! The one error type of this crate.

use std::path::PathBuf;

/// Why a policy set or a request could not be used.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// A policy file does not parse, or a policy does not validate against the schema.
    #[error("{file}:{line}: {message}")]
    Policy {
        file: PathBuf,
        /// 1-based; 0 when unknown.
        line: u64,
        /// The policy's id when known.
        policy: Option<String>,
        message: String,
    },
    /// Several policy errors at once (all of them are reported, not just the first).
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"))]
    Many(Vec<PolicyError>),
    /// The generated schema or entities were rejected by Cedar (a bug or an inventory Cedar
    /// cannot represent).
    #[error("inventory cannot be expressed in Cedar: {0}")]
    Inventory(String),
    /// A policy test file or a request is malformed.
    #[error("{file}:{line}: {message}")]
    TestFile {
        file: PathBuf,
        line: u64,
        message: String,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A time that is not RFC 3339.
    #[error("invalid time `{0}`: expected RFC 3339, e.g. 2026-11-23T15:00:00Z")]
    Time(String),
}

impl PolicyError {
    /// Every individual error, flattening [`PolicyError::Many`].
    pub fn flatten(&self) -> Vec<&PolicyError> {
        match self {
            PolicyError::Many(v) => v.iter().flat_map(|e| e.flatten()).collect(),
            e => vec![e],
        }
    }
}
