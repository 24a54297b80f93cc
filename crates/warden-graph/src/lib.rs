//! # warden-graph
//!
//! The security graph: *which agents can be steered by untrusted input into reaching what,
//! through whom — and what is the least a human must revoke to stop it?*
//!
//! - [`build`] turns an [`Inventory`](warden_core::Inventory) (and optionally an AWS IAM
//!   `get-account-authorization-details` export, [`iam`]) into a [`Graph`] of humans, groups,
//!   agents, identities, credentials, connectors, tools, resources, models, untrusted sources,
//!   external sinks, memory stores and approval gates. Edges follow the direction of control
//!   or access, each marked traversable or not and carrying the file (and line) that produced
//!   it. `CanInvoke` edges come from an [`InvokePolicy`]: what policy permits, gated calls
//!   carry their approval gate.
//! - [`rules::findings`] reports toxic combinations and attack paths as
//!   [`Finding`](warden_core::Finding)s with the path as evidence, and for each source →
//!   target question a minimum cut over human-changeable edges ([`Remedy`]), verified by
//!   re-counting the paths with the cut applied ([`analysis::View::with_remedies`]).
//! - [`export`] writes JSON, Graphviz DOT and BloodHound CE OpenGraph JSON.
//! - [`generate`] builds synthetic organisations for the scale benchmark.
//!
//! Pure library: no network, no database.

pub mod analysis;
pub mod build;
pub mod error;
pub mod export;
pub mod generate;
pub mod graph;
pub mod iam;
pub mod rules;
pub mod scan;

pub use analysis::View;
pub use build::{
    EntitlementPolicy, Invocation, InvokePolicy, ToolInfo, ToolTable, build, build_all,
    build_with_iam,
};
pub use error::GraphError;
pub use graph::{
    Edge, EdgeKind, Graph, GraphBuilder, Node, NodeKind, Remedy, SourceLoc, SourceTable,
};
pub use rules::{GraphFinding, Options, Remediation, findings};
pub use scan::{ScanInput, ScannedCredential, ScannedServer};

/// All graph findings of a graph with default options.
pub fn analyse(g: &Graph) -> Vec<GraphFinding> {
    rules::findings(&View::new(g), &Options::default())
}
