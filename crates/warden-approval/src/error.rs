//! The crate's error type.

use crate::model::Status;

/// Why an approval operation was refused or failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ApprovalError {
    #[error("no approval request `{0}`")]
    NotFound(String),
    #[error("approval request {id} is {status}, not pending")]
    NotPending { id: String, status: Status },
    #[error("approval request {0} has expired")]
    Expired(String),
    #[error("{human} may not answer approval request {id}: {why}")]
    NotEligible {
        id: String,
        human: String,
        why: String,
    },
    #[error(
        "{human} has already approved request {id}; a second approval must come from someone else"
    )]
    AlreadyVoted { id: String, human: String },
    #[error("a reason is required")]
    EmptyReason,
    #[error(
        "approval request {id} was approved for different arguments (digest {approved}, call has {presented})"
    )]
    DigestMismatch {
        id: String,
        approved: String,
        presented: String,
    },
    #[error("approval request {0} was changed concurrently; retry")]
    Conflict(String),
    #[error("approval store: {0}")]
    Store(String),
    #[error("cannot generate random bytes: {0}")]
    Random(String),
}
