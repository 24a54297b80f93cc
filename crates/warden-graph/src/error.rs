//! The one error type of warden-graph.

use std::path::PathBuf;

/// Why a graph could not be built or queried.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    #[error("{path}: {source}", path = .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The IAM export is not JSON, or not of the `get-account-authorization-details` shape.
    #[error("{path}: not an AWS IAM authorization-details export: {message}", path = .path.display())]
    Iam { path: PathBuf, message: String },
    /// A node named on the command line does not exist.
    #[error(
        "no node `{0}` in the graph (node ids look like `agent:support-triage`, `tool:mail.read_inbox`; `warden graph DIR --format json` lists them)"
    )]
    UnknownNode(String),
}
