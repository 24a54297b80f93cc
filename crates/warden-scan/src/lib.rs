//! # warden-scan
//!
//! The shift-left scanner behind `warden scan` and `warden bom`. One parallel walk over an
//! agent codebase ([`walk::scan_path`], respecting `.gitignore` and `.wardenignore`,
//! skipping binary and huge files) reports, as [`warden_core::Finding`]s:
//!
//! - **secrets** ([`secrets`], `scan.secret.<provider>`): credentials agent code holds
//!   (OpenAI, Anthropic, Hugging Face, AWS, GitHub, …) and high-entropy assignments. The
//!   same in-memory [`secrets::SecretScanner`] is what the runtime inspector uses to
//!   redact tool results;
//! - **MCP client config risks** ([`mcp`], `scan.mcp.*`): inline secrets, unpinned
//!   packages, broad filesystem roots, privileged containers, plain-HTTP remotes;
//! - **agent code risks** ([`code`], `scan.code.*`): code-execution tools and flags,
//!   `trust_remote_code`, pickle loading, eval/exec/shell on model output;
//! - **the AI-BOM** ([`bom`]): frameworks/SDKs, models, datasets and MCP servers as
//!   CycloneDX 1.6, and `scan.bom.*` deviations from the inventory's BOM policy.
//!
//! Output helpers: [`sarif::to_sarif`] (SARIF 2.1.0), [`baseline::Baseline`].
//! This crate is a pure library: it reads files and returns data; no network I/O.

pub mod baseline;
pub mod bom;
pub mod code;
pub mod error;
pub mod mcp;
pub mod sarif;
pub mod secrets;
pub mod walk;

pub use error::ScanError;
pub use secrets::{SecretMatch, SecretScanner};
pub use walk::{Progress, ScanOptions, ScanOutput, ScanStats, scan_path};
