//! # warden-detect
//!
//! Content inspection for Warden's runtime path. A pure library: text and JSON in,
//! verdicts with evidence out; no I/O, no network, no model download (the classifier's
//! weights are compiled in).
//!
//! - [`pin`]: canonical form and `sha256:` hash of a tool definition for pinning, a
//!   structured diff of two definitions (`warden tools diff`), shadowed tool names.
//! - [`poison`]: tool-poisoning detection on definitions ([`PoisonDetector`]).
//! - [`inject`]: prompt-injection detection on tool results and resources
//!   ([`InjectionDetector`]): normalisation ([`normalize`]), rules ([`rules`]), decoded
//!   base64/URL segments, and a hashed n-gram logistic regression ([`classifier`]).
//! - [`content`]: the text parts of MCP results that reach the model.
//! - [`action`]: verdict + the connector's `on_injection` → what the gateway does.
//! - [`redact`]: secrets and PII redaction in text and JSON ([`Redactor`]).

pub mod action;
pub mod classifier;
pub mod content;
mod error;
pub mod inject;
pub mod normalize;
pub mod pin;
pub mod poison;
pub mod redact;
pub mod rules;

pub use action::{GatewayAction, action_for};
pub use error::DetectError;
pub use inject::{Evidence, InjectionConfig, InjectionDetector, InjectionReport, Verdict};
pub use pin::{
    DefinitionChange, PinStatus, Shadowing, check_pin, diff_definitions, find_shadowing, pin_hash,
};
pub use poison::{PoisonConfig, PoisonDetector, ToolEvidence, ToolReport, ToolVerdict};
pub use redact::{Redacted, Redaction, Redactor};
