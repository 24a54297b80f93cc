//! # warden-approval
//!
//! Human approval gates, as a pure library (no network, no database): what the gateway
//! stores when a decision is `needs_approval`, who may answer it, and how it moves.
//!
//! - [`ApprovalRequest`]: agent, owner, delegation chain, tool and effects, the full
//!   arguments (kept for forwarding, never serialised) plus a redacted display copy, the
//!   canonical argument digest ([`args_digest`]: sha256 of canonical JSON, sorted keys, no
//!   whitespace), the determining policies, approver groups, session taint and recent
//!   history, created and expiry times, the votes cast.
//! - The state machine ([`machine`]): `pending → approved | denied | expired`;
//!   `approved → consumed` exactly once by a call with the same digest; the two-person rule
//!   (`approvals_required`); the same person never counts twice.
//! - Eligibility ([`eligibility`]): only members of the approver groups (from the
//!   inventory's humans and groups); with separation of duties never the requesting agent's
//!   owner, the delegation's root human, nor anyone in (or owning an agent in) the
//!   delegation chain.
//! - Webhooks ([`webhook`]): JSON payloads with a Slack-compatible `text`, HMAC-SHA256
//!   signatures (`X-Warden-Signature: sha256=<hex>` over `timestamp + "." + body`), and the
//!   exponential-backoff retry schedule the server's delivery loop follows.
//! - Persistence behind [`ApprovalStore`] (optimistic concurrency by `version`), with
//!   [`MemoryStore`] for tests; `warden-store` implements it on SQLite/PostgreSQL.
//!   [`ops`] holds the store-generic operations (vote, expire, consume) every front end
//!   (CLI, console, admin API, gateway) uses.
//! - [`diff::diff_args`]: what changed since the last approved call of the same agent+tool.

pub mod canonical;
pub mod diff;
pub mod eligibility;
pub mod error;
pub mod machine;
pub mod model;
pub mod ops;
pub mod store;
pub mod webhook;

pub use canonical::{args_digest, canonical_json, write_canonical};
pub use diff::{ArgChange, diff_args};
pub use eligibility::{Ineligible, check_eligible, eligible_approvers};
pub use error::ApprovalError;
pub use model::{ApprovalRequest, NewRequest, Status, Via, Vote, VoteKind, new_id};
pub use store::{ApprovalStore, ListFilter, MemoryStore};
