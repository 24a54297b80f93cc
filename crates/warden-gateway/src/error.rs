//! The gateway's error type.

/// What can go wrong between the gateway and an upstream, or while starting the gateway.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GatewayError {
    #[error("connector `{connector}` is unavailable: {message}")]
    Unavailable { connector: String, message: String },
    #[error("connector `{connector}` failed during the call: {message}")]
    Upstream { connector: String, message: String },
    #[error("connector `{connector}`: {message}")]
    Config { connector: String, message: String },
    #[error("the call was cancelled")]
    Cancelled,
    #[error("audit trail unavailable: {0}")]
    Audit(String),
}
