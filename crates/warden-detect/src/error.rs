use thiserror::Error;

/// Errors of this crate.
#[derive(Debug, Error)]
pub enum DetectError {
    #[error("classifier model: {0}")]
    Model(String),
    #[error("custom PII pattern `{name}`: {message}")]
    Pattern { name: String, message: String },
    #[error("unrecognised tool list: {0}")]
    ToolList(String),
}
