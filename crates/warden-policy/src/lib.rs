//! # warden-policy
//!
//! The Cedar policy engine of Warden. From a loaded [`warden_core::Inventory`] it
//!
//! - generates a Cedar schema (entity types `Agent`, `Human`, `Group`, `Identity`,
//!   `Connector`, `Tool`, `Resource`; one action per tool, grouped under effect actions
//!   `read`, `write`, `external_send`, `code_exec`, `privileged`, `irreversible`; plus
//!   `handoff` and `resources/read`), with each tool's declared arguments as the typed
//!   `context.args`;
//! - parses `policies/*.cedar` (each policy's id from its `@id` annotation, keeping file and
//!   line), adds the generated entitlement and approval-rule policies, and validates all of
//!   them against the schema (strict mode): an unknown attribute or argument is a
//!   [`PolicyError`] naming file:line, never a silent deny-all;
//! - answers [`PolicyEngine::decide`] for one tool call: `allow`, `deny` or
//!   `needs_approval` ([`Outcome`]), always with the determining policies (id, file, line)
//!   and their `@reason`s ([`Decision`]);
//! - answers [`PolicyEngine::could_allow`] soundly for `tools/list` filtering and the
//!   security graph, and [`PolicyEngine::approval_gated_tools`] for `warden check`;
//! - runs policy test suites ([`suite`]) and the what-if comparison ([`diff`]).
//!
//! Policies are sliced by principal, action and resource at load time so that one
//! decision evaluates only the policies that can apply to it (see [`engine`]).
//! The engine is immutable once loaded (`Send + Sync`); reload by loading a new one and
//! swapping an `Arc`.

pub mod decision;
pub mod diff;
pub mod engine;
pub mod error;
pub mod generate;
pub mod policies;
pub mod request;
pub mod schema;
pub mod suite;

pub use decision::{ApprovalRequirement, Decision, Outcome, PolicyRef, Reachability};
pub use engine::PolicyEngine;
pub use error::PolicyError;
pub use request::{HandoffRequest, Request, SessionState, UtcTime};
