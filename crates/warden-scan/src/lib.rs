//! # warden-scan
//!
//! The shift-left scanner behind `warden scan` and `warden bom`: it walks an agent
//! codebase and reports, as [`warden_core::Finding`]s,
//!
//! - **secrets** ([`secrets`]): provider credentials agent code holds (OpenAI, Anthropic,
//!   Hugging Face, AWS, GitHub, …) and high-entropy assignments; the same in-memory
//!   [`secrets::SecretScanner`] is used by the runtime inspector to redact tool results;
//!
//! This crate is a pure library: it reads files, returns data, and does no network I/O.

pub mod error;
pub mod secrets;

pub use error::ScanError;
pub use secrets::{SecretMatch, SecretScanner};
