//! # warden-core
//!
//! The inventory model every other Warden crate builds on: humans, groups, identities,
//! agents, connectors, tools (with their effects), resources, handoffs and approval rules,
//! loaded from a directory of YAML manifests plus `policies/*.cedar`.
//!
//! - [`Inventory::load`] reads and indexes a directory; malformed YAML, unknown fields,
//!   type errors and duplicate ids are [`CoreError`]s that name file, line and column.
//! - [`check::check`] reports governance gaps (orphaned agents, ungated irreversible
//!   tools, unbounded handoffs, dangling entitlements, separation-of-duties conflicts) as
//!   [`Finding`]s, the result shape shared by every posture command.
//!
//! This crate does no network and no database I/O.

pub mod check;
pub mod duration;
pub mod error;
pub mod finding;
pub mod inventory;
pub mod model;

pub use duration::parse_duration;
pub use error::CoreError;
pub use finding::{Finding, Severity, SourceLocation};
pub use inventory::{Inventory, PolicyFile, Sourced, ToolRef};
