//! # warden-gateway
//!
//! The MCP relay at the heart of Warden's runtime half: it authenticates nothing itself
//! (transports hand it a [`Principal`]), but decides, forwards, and audits every tool call.
//!
//! - [`Gateway`]: sessions, the aggregated virtual server (tools named
//!   `<connector>.<tool>`), and the enforcement pipeline of `tools/list` and `tools/call`.
//! - [`upstream`]: stdio child processes and Streamable HTTP servers, relayed as raw JSON.
//! - [`decide`]: the policy stage's interface ([`Decider`]); [`cedar::CedarDecider`] plugs
//!   the Cedar engine (warden-policy) into it.
//! - [`approval`]: the approval hold for `needs_approval` calls (issue 5).
//! - [`handoff`]: `warden.handoff` / `warden.context` and sessions acting under a delegation
//!   token (issue 9).
//! - [`limits`]: per-agent, per-connector and per-tool rate limits and concurrency caps.
//! - [`stdio`]: the gateway speaking MCP on stdin/stdout (`warden gateway stdio`).

pub mod approval;
pub mod cedar;
pub mod decide;
pub mod error;
pub mod gateway;
pub mod handoff;
pub mod http_client;
pub mod limits;
pub mod pinning;
pub mod stdio;
pub mod upstream;

pub use cedar::CedarDecider;
pub use decide::{CallDecision, CallRequest, Decider, EntitlementDecider, Outcome};
pub use error::GatewayError;
pub use gateway::{Gateway, GatewayOptions, Principal, Session};
