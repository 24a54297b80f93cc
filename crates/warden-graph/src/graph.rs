//! Nodes, edges and the compact adjacency the analyses walk.
//!
//! Node ids are `kind:name` strings derived only from declared names (never from load order),
//! so the same inventory yields the same ids on every run. Internally nodes and edges are
//! dense `u32` indices with CSR adjacency in both directions.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

/// FxHash: a fast non-cryptographic hash for the builder's internal maps (keys are our own
/// ids, not attacker-chosen at a scale where flooding matters).
#[derive(Default, Clone, Copy)]
pub struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(b));
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.add(i as u64);
    }
    fn write_u32(&mut self, i: u32) {
        self.add(i as u64);
    }
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

impl FxHasher {
    #[inline]
    fn add(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

/// `HashMap` with [`FxHasher`].
pub type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

use serde::Serialize;
use warden_core::model::{Effect, Sensitivity};

/// What a node stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeKind {
    Human,
    Group,
    Agent,
    Identity,
    Credential,
    Connector,
    Tool,
    /// A datastore, bucket, queue, API or environment.
    Resource,
    Model,
    /// Content from outside the organisation (inbox, web, tickets, RAG corpora).
    UntrustedSource,
    ExternalSink,
    MemoryStore,
    /// Warden's own configuration, policies or inventory.
    Governance,
    ApprovalGate,
}

impl NodeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeKind::Human => "human",
            NodeKind::Group => "group",
            NodeKind::Agent => "agent",
            NodeKind::Identity => "identity",
            NodeKind::Credential => "credential",
            NodeKind::Connector => "connector",
            NodeKind::Tool => "tool",
            NodeKind::Resource => "resource",
            NodeKind::Model => "model",
            NodeKind::UntrustedSource => "untrusted_source",
            NodeKind::ExternalSink => "external_sink",
            NodeKind::MemoryStore => "memory_store",
            NodeKind::Governance => "governance",
            NodeKind::ApprovalGate => "approval_gate",
        }
    }

    /// The kind name in BloodHound OpenGraph exports (`Warden` prefix avoids clashes).
    pub fn opengraph_kind(self) -> &'static str {
        match self {
            NodeKind::Human => "WardenHuman",
            NodeKind::Group => "WardenGroup",
            NodeKind::Agent => "WardenAgent",
            NodeKind::Identity => "WardenIdentity",
            NodeKind::Credential => "WardenCredential",
            NodeKind::Connector => "WardenConnector",
            NodeKind::Tool => "WardenTool",
            NodeKind::Resource => "WardenResource",
            NodeKind::Model => "WardenModel",
            NodeKind::UntrustedSource => "WardenUntrustedSource",
            NodeKind::ExternalSink => "WardenExternalSink",
            NodeKind::MemoryStore => "WardenMemoryStore",
            NodeKind::Governance => "WardenGovernance",
            NodeKind::ApprovalGate => "WardenApprovalGate",
        }
    }
}

/// A directed relation, along the direction of control or access.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum EdgeKind {
    /// human → agent
    OwnsAgent,
    /// human → group
    MemberOf,
    /// agent or connector → identity
    RunsAs,
    /// identity → identity (role trust / impersonation)
    CanAssume,
    /// identity → identity: `iam:PassRole` onto a role a service it can create trusts
    CanPassRole,
    /// identity → identity: `iam:UpdateAssumeRolePolicy` on the role
    CanUpdateTrust,
    /// identity → identity: `iam:CreateAccessKey` for the user
    CanCreateAccessKey,
    /// agent, connector or resource → credential
    HoldsCredential,
    /// credential → identity
    AuthenticatesAs,
    /// agent → tool (what policy permits; gated ones carry their gate)
    CanInvoke,
    /// identity or tool → resource
    HasAccessTo,
    /// tool → external sink
    CanSendTo,
    /// agent → agent
    HandsOffTo,
    /// untrusted source → agent, through the output of a tool it may call (`via`)
    Influences,
    /// agent → memory store (or other resource) it writes outside of tools
    WritesTo,
    /// memory store or corpus → agent that loads it into its context
    Loads,
    /// tool → approval gate that holds calls to it
    GatedBy,
    /// agent → model
    UsesModel,
    /// connector → tool it serves
    Provides,
    /// agent → connector it reaches directly through an MCP client configuration in its code
    /// (found by the scanner), bypassing the gateway's per-tool policy
    Uses,
}

impl EdgeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EdgeKind::OwnsAgent => "OwnsAgent",
            EdgeKind::MemberOf => "MemberOf",
            EdgeKind::RunsAs => "RunsAs",
            EdgeKind::CanAssume => "CanAssume",
            EdgeKind::CanPassRole => "CanPassRole",
            EdgeKind::CanUpdateTrust => "CanUpdateTrust",
            EdgeKind::CanCreateAccessKey => "CanCreateAccessKey",
            EdgeKind::HoldsCredential => "HoldsCredential",
            EdgeKind::AuthenticatesAs => "AuthenticatesAs",
            EdgeKind::CanInvoke => "CanInvoke",
            EdgeKind::HasAccessTo => "HasAccessTo",
            EdgeKind::CanSendTo => "CanSendTo",
            EdgeKind::HandsOffTo => "HandsOffTo",
            EdgeKind::Influences => "Influences",
            EdgeKind::WritesTo => "WritesTo",
            EdgeKind::Loads => "Loads",
            EdgeKind::GatedBy => "GatedBy",
            EdgeKind::UsesModel => "UsesModel",
            EdgeKind::Provides => "Provides",
            EdgeKind::Uses => "Uses",
        }
    }

    /// Whether attack paths follow this kind of edge. Ownership, membership, models,
    /// gates and connector structure describe the organisation; they grant nothing.
    pub fn traversable(self) -> bool {
        !matches!(
            self,
            EdgeKind::OwnsAgent
                | EdgeKind::MemberOf
                | EdgeKind::GatedBy
                | EdgeKind::UsesModel
                | EdgeKind::Provides
        )
    }

    /// Identity-to-identity escalation edges.
    pub fn is_escalation(self) -> bool {
        matches!(
            self,
            EdgeKind::CanAssume
                | EdgeKind::CanPassRole
                | EdgeKind::CanUpdateTrust
                | EdgeKind::CanCreateAccessKey
        )
    }

    /// Edges along which untrusted content spreads into agents' contexts.
    pub fn carries_influence(self) -> bool {
        matches!(
            self,
            EdgeKind::Influences | EdgeKind::WritesTo | EdgeKind::Loads | EdgeKind::HandsOffTo
        )
    }
}

/// Facts about a node that the rules read. Everything else goes in `props`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct NodeAttrs {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sensitivity: Option<Sensitivity>,
    #[serde(skip_serializing_if = "is_false")]
    pub tier_zero: bool,
    /// Administrator-equivalent identity (declared, or derived from IAM policies).
    #[serde(skip_serializing_if = "is_false")]
    pub admin: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub effects: Vec<Effect>,
    #[serde(skip_serializing_if = "is_false")]
    pub irreversible: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub untrusted_output: bool,
    /// An agent with no owner, or an owner who is not a known human.
    #[serde(skip_serializing_if = "is_false")]
    pub orphaned: bool,
    /// Free-form properties (ARNs, purposes, data classes), exported as-is.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub props: BTreeMap<String, String>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Node {
    /// A `props` entry set to `"true"`.
    pub fn props_flag(&self, key: &str) -> bool {
        self.attrs.props.get(key).is_some_and(|v| v == "true")
    }
}

impl NodeAttrs {
    pub fn has_effect(&self, e: Effect) -> bool {
        self.effects.contains(&e)
    }
    /// Changes state or communicates externally (leg C of the Rule of Two).
    pub fn changes_state(&self) -> bool {
        self.irreversible
            || self.effects.iter().any(|e| {
                matches!(
                    e,
                    Effect::Write | Effect::ExternalSend | Effect::CodeExec | Effect::Privileged
                )
            })
    }
    pub fn is_sensitive(&self) -> bool {
        self.tier_zero
            || matches!(
                self.sensitivity,
                Some(Sensitivity::Confidential) | Some(Sensitivity::Restricted)
            )
    }
}

/// One node.
#[derive(Debug, Clone, Serialize)]
pub struct Node {
    pub id: String,
    pub kind: NodeKind,
    pub label: String,
    #[serde(flatten)]
    pub attrs: NodeAttrs,
    /// The file or import that declared it: an index into the graph's source table
    /// ([`Graph::node_source`] formats it).
    #[serde(skip)]
    pub source: Option<u32>,
}

/// One edge.
#[derive(Debug, Clone)]
pub struct Edge {
    pub from: u32,
    pub to: u32,
    pub kind: EdgeKind,
    /// For `CanInvoke`: the approval gate node that holds the call.
    pub gate: Option<u32>,
    /// For `Influences` into an agent: the tool whose output carries the content.
    pub via: Option<u32>,
    /// Index into the graph's source table ([`Graph::source_text`]): the file (and line and
    /// column) or import that produced the edge.
    pub source: u32,
}

/// Where an edge came from: a file (manifest, IAM export, scanned tree) and, for manifest
/// entries, the line and column (0 when not known). Formatted only when shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SourceLoc {
    /// Index into the source table's files.
    pub file: u32,
    pub line: u32,
    pub column: u32,
}

/// Interned source files and the locations inside them that edges point at.
#[derive(Debug, Clone, Default)]
pub struct SourceTable {
    files: Vec<String>,
    file_index: FxMap<String, u32>,
    locs: Vec<SourceLoc>,
}

impl SourceTable {
    /// The file's index, added when new.
    pub fn file(&mut self, name: &str) -> u32 {
        if let Some(&i) = self.file_index.get(name) {
            return i;
        }
        let i = self.files.len() as u32;
        self.files.push(name.to_string());
        self.file_index.insert(name.to_string(), i);
        i
    }
    /// A location's index; the same location as the last one added reuses its index.
    pub fn loc(&mut self, file: u32, line: u32, column: u32) -> u32 {
        let l = SourceLoc { file, line, column };
        if let Some(last) = self.locs.last()
            && *last == l
        {
            return (self.locs.len() - 1) as u32;
        }
        self.locs.push(l);
        (self.locs.len() - 1) as u32
    }
    /// The file of a location.
    pub fn file_name(&self, i: u32) -> &str {
        &self.files[self.locs[i as usize].file as usize]
    }
    /// `file`, `file:line` or `file:line:column`, as far as they are known.
    pub fn text(&self, i: u32) -> String {
        let l = self.locs[i as usize];
        let f = &self.files[l.file as usize];
        match (l.line, l.column) {
            (0, _) => f.clone(),
            (line, 0) => format!("{f}:{line}"),
            (line, col) => format!("{f}:{line}:{col}"),
        }
    }
    pub fn len(&self) -> usize {
        self.locs.len()
    }
    pub fn is_empty(&self) -> bool {
        self.locs.is_empty()
    }
}

/// What a human changes to remove an edge from the attack graph.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Remedy {
    /// Remove `tool` from the agent's `uses`.
    RevokeEntitlement {
        agent: String,
        tool: String,
    },
    /// Put every call of the tool behind an approval rule.
    GateTool {
        tool: String,
    },
    RemoveHandoff {
        from: String,
        to: String,
    },
    /// Remove a role trust / IAM permission that lets one identity become another.
    RemoveRoleTrust {
        from: String,
        to: String,
        via: String,
    },
    /// Remove a resource from an identity's access.
    RevokeAccess {
        identity: String,
        resource: String,
    },
    StopWriting {
        agent: String,
        resource: String,
    },
    StopLoading {
        agent: String,
        resource: String,
    },
    /// Remove an MCP server entry from the client configuration in the agent's code.
    RemoveMcpServer {
        agent: String,
        server: String,
        config: String,
    },
    /// Remove a hardcoded secret from the agent's code (and rotate it).
    RemoveSecret {
        agent: String,
        secret: String,
    },
}

impl std::fmt::Display for Remedy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Remedy::RevokeEntitlement { agent, tool } => {
                write!(f, "revoke `{tool}` from agent `{agent}` (its `uses`)")
            }
            Remedy::GateTool { tool } => write!(f, "gate `{tool}` behind an approval rule"),
            Remedy::RemoveHandoff { from, to } => write!(f, "remove the handoff `{from}` → `{to}`"),
            Remedy::RemoveRoleTrust { from, to, via } => {
                write!(f, "remove `{from}`'s ability to become `{to}` ({via})")
            }
            Remedy::RevokeAccess { identity, resource } => {
                write!(f, "remove `{resource}` from identity `{identity}`'s access")
            }
            Remedy::StopWriting { agent, resource } => {
                write!(f, "stop agent `{agent}` writing `{resource}`")
            }
            Remedy::StopLoading { agent, resource } => {
                write!(f, "stop agent `{agent}` loading `{resource}`")
            }
            Remedy::RemoveMcpServer {
                agent,
                server,
                config,
            } => write!(
                f,
                "remove MCP server `{server}` from `{config}` (agent `{agent}`'s client configuration)"
            ),
            Remedy::RemoveSecret { agent, secret } => write!(
                f,
                "remove the hardcoded secret at `{secret}` from agent `{agent}`'s code and rotate it"
            ),
        }
    }
}

/// The security graph: nodes, edges, and adjacency in both directions.
#[derive(Debug, Clone, Default)]
pub struct Graph {
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
    /// Files and imports (with line and column) that produced edges.
    sources: SourceTable,
    index: FxMap<String, u32>,
    out_start: Vec<u32>,
    out_edges: Vec<u32>,
    in_start: Vec<u32>,
    in_edges: Vec<u32>,
}

impl Graph {
    pub fn node_index(&self, id: &str) -> Option<u32> {
        self.index.get(id).copied()
    }
    pub fn node(&self, i: u32) -> &Node {
        &self.nodes[i as usize]
    }
    pub fn edge(&self, e: u32) -> &Edge {
        &self.edges[e as usize]
    }
    /// The file (with line and column for inventory entries) or import that produced an edge.
    pub fn source_of(&self, e: u32) -> String {
        self.sources.text(self.edges[e as usize].source)
    }
    /// The file (with line and column) or import that declared a node.
    pub fn node_source(&self, n: u32) -> Option<String> {
        self.nodes[n as usize].source.map(|s| self.sources.text(s))
    }
    /// The file of a source table entry (without line and column).
    pub fn source_file(&self, source: u32) -> &str {
        self.sources.file_name(source)
    }
    /// A source table entry as text (`file` or `file:line:column`).
    pub fn source_text(&self, source: u32) -> String {
        self.sources.text(source)
    }
    /// Outgoing edge indices of a node.
    pub fn out(&self, n: u32) -> &[u32] {
        let (a, b) = (
            self.out_start[n as usize] as usize,
            self.out_start[n as usize + 1] as usize,
        );
        &self.out_edges[a..b]
    }
    /// Incoming edge indices of a node.
    pub fn inc(&self, n: u32) -> &[u32] {
        let (a, b) = (
            self.in_start[n as usize] as usize,
            self.in_start[n as usize + 1] as usize,
        );
        &self.in_edges[a..b]
    }
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }
    pub fn edge_count(&self) -> usize {
        self.edges.len()
    }
    /// A stable edge id: `from|Kind|to`.
    pub fn edge_id(&self, e: u32) -> String {
        let ed = self.edge(e);
        match ed.via {
            Some(t) => format!(
                "{}|{}[{}]|{}",
                self.node(ed.from).id,
                ed.kind.as_str(),
                self.node(t).label,
                self.node(ed.to).id
            ),
            None => format!(
                "{}|{}|{}",
                self.node(ed.from).id,
                ed.kind.as_str(),
                self.node(ed.to).id
            ),
        }
    }

    /// Whether a human can change this edge (entitlements, gates, handoffs, role trusts),
    /// and the change that removes it.
    pub fn remedy(&self, e: u32) -> Option<Remedy> {
        let ed = self.edge(e);
        let from = self.node(ed.from);
        let to = self.node(ed.to);
        match ed.kind {
            EdgeKind::CanInvoke => Some(Remedy::RevokeEntitlement {
                agent: from.label.clone(),
                tool: to.label.clone(),
            }),
            EdgeKind::Influences if to.kind == NodeKind::Agent => {
                let tool = ed.via.map(|t| self.node(t).label.clone())?;
                Some(Remedy::RevokeEntitlement {
                    agent: to.label.clone(),
                    tool,
                })
            }
            EdgeKind::HandsOffTo => Some(Remedy::RemoveHandoff {
                from: from.label.clone(),
                to: to.label.clone(),
            }),
            k if k.is_escalation() => Some(Remedy::RemoveRoleTrust {
                from: from.label.clone(),
                to: to.label.clone(),
                via: k.as_str().to_string(),
            }),
            EdgeKind::HasAccessTo if from.kind == NodeKind::Identity => {
                Some(Remedy::RevokeAccess {
                    identity: from.label.clone(),
                    resource: to.label.clone(),
                })
            }
            EdgeKind::WritesTo if from.kind == NodeKind::Agent => Some(Remedy::StopWriting {
                agent: from.label.clone(),
                resource: to.label.clone(),
            }),
            EdgeKind::Loads if to.kind == NodeKind::Agent => Some(Remedy::StopLoading {
                agent: to.label.clone(),
                resource: from.label.clone(),
            }),
            EdgeKind::Uses => {
                let config = self.source_file(ed.source);
                // A merged inventory connector: the server's name in that config.
                let server = to
                    .attrs
                    .props
                    .get("client_configs")
                    .and_then(|list| {
                        list.split(',').find_map(|entry| {
                            let (file, name) = entry.rsplit_once(':')?;
                            std::path::Path::new(config)
                                .ends_with(file)
                                .then(|| name.to_string())
                        })
                    })
                    .unwrap_or_else(|| to.label.clone());
                Some(Remedy::RemoveMcpServer {
                    agent: from.label.clone(),
                    server,
                    config: config.to_string(),
                })
            }
            EdgeKind::HoldsCredential
                if from.kind == NodeKind::Agent && to.props_flag("scanned") =>
            {
                Some(Remedy::RemoveSecret {
                    agent: from.label.clone(),
                    secret: to.label.clone(),
                })
            }
            _ => None,
        }
    }

    /// The edges a remedy removes from the attack graph.
    pub fn edges_removed_by(&self, r: &Remedy) -> Vec<u32> {
        match r {
            Remedy::GateTool { tool } => {
                let Some(t) = self.node_index(&format!("tool:{tool}")) else {
                    return Vec::new();
                };
                self.inc(t)
                    .iter()
                    .copied()
                    .filter(|&e| self.edge(e).kind == EdgeKind::CanInvoke)
                    .collect()
            }
            _ => {
                // Only edges touching the node the remedy names can match.
                let anchor = match r {
                    Remedy::RevokeEntitlement { agent, .. } => self.labelled("agent:", agent),
                    Remedy::RemoveHandoff { from, .. } => self.labelled("agent:", from),
                    Remedy::RemoveRoleTrust { from, .. } => self.labelled("identity:", from),
                    Remedy::RevokeAccess { identity, .. } => self.labelled("identity:", identity),
                    Remedy::StopWriting { agent, .. } => self.labelled("agent:", agent),
                    Remedy::StopLoading { agent, .. } => self.labelled("agent:", agent),
                    Remedy::RemoveMcpServer { agent, .. } => self.labelled("agent:", agent),
                    Remedy::RemoveSecret { agent, .. } => self.labelled("agent:", agent),
                    Remedy::GateTool { .. } => Vec::new(),
                };
                let mut out: Vec<u32> = anchor
                    .iter()
                    .flat_map(|&n| self.out(n).iter().chain(self.inc(n)).copied())
                    .filter(|&e| self.remedy(e).as_ref() == Some(r))
                    .collect();
                out.sort_unstable();
                out.dedup();
                out
            }
        }
    }

    /// Nodes with this label: `prefix + label` when that id exists, else every node so
    /// labelled (IAM principals are `iam:<ARN>` with their name as label).
    fn labelled(&self, prefix: &str, label: &str) -> Vec<u32> {
        if let Some(i) = self.node_index(&format!("{prefix}{label}")) {
            return vec![i];
        }
        (0..self.nodes.len() as u32)
            .filter(|&n| self.nodes[n as usize].label == label)
            .collect()
    }

    /// Renders a path of edge indices: `a -Kind-> b -Kind-> c`.
    pub fn render_path(&self, path: &[u32]) -> String {
        let mut s = String::new();
        for (i, &e) in path.iter().enumerate() {
            let ed = self.edge(e);
            if i == 0 {
                s.push_str(&self.node(ed.from).id);
            }
            match ed.via {
                Some(t) => s.push_str(&format!(
                    " -{}[{}]-> {}",
                    ed.kind.as_str(),
                    self.node(t).label,
                    self.node(ed.to).id
                )),
                None => s.push_str(&format!(" -{}-> {}", ed.kind.as_str(), self.node(ed.to).id)),
            }
        }
        s
    }
}

/// Incrementally builds a [`Graph`]; duplicate `(from, kind, to, via)` edges are merged.
///
/// Duplicates are found by walking the source node's out-edges (newest first) while it has
/// few of them, and in a hash map only for nodes with many: most nodes have a handful of
/// out-edges, and a map over millions of edges costs two cache misses per insert.
#[derive(Debug, Default)]
pub struct GraphBuilder {
    nodes: Vec<Node>,
    index: FxMap<String, u32>,
    edges: Vec<Edge>,
    /// Per node: its newest out-edge (`NONE` when none) and its out-degree.
    head: Vec<u32>,
    out_deg: Vec<u32>,
    /// Per edge: the previous out-edge of the same source node.
    prev: Vec<u32>,
    /// Edges from nodes with at least [`SCAN_LIMIT`] out-edges.
    many: FxMap<(u32, u32, EdgeKind, u32), u32>,
    sources: SourceTable,
}

const NONE: u32 = u32::MAX;
/// Out-degree up to which duplicate checks walk the node's edges.
const SCAN_LIMIT: u32 = 64;

impl GraphBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_capacity(nodes: usize, edges: usize) -> Self {
        GraphBuilder {
            nodes: Vec::with_capacity(nodes),
            index: FxMap::with_capacity_and_hasher(nodes, Default::default()),
            edges: Vec::with_capacity(edges),
            head: Vec::with_capacity(nodes),
            out_deg: Vec::with_capacity(nodes),
            prev: Vec::with_capacity(edges),
            ..Default::default()
        }
    }

    /// The node with this id, created with `kind` and `label` when new.
    pub fn node<S: AsRef<str> + Into<String>>(
        &mut self,
        id: S,
        kind: NodeKind,
        label: &str,
    ) -> u32 {
        if let Some(&i) = self.index.get(id.as_ref()) {
            return i;
        }
        let i = self.nodes.len() as u32;
        let id: String = id.into();
        self.index.insert(id.clone(), i);
        self.head.push(NONE);
        self.out_deg.push(0);
        self.nodes.push(Node {
            id,
            kind,
            label: label.to_string(),
            attrs: NodeAttrs::default(),
            source: None,
        });
        i
    }

    pub fn find(&self, id: &str) -> Option<u32> {
        self.index.get(id).copied()
    }

    pub fn node_mut(&mut self, i: u32) -> &mut Node {
        &mut self.nodes[i as usize]
    }

    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// A whole-file source (an import, a scanned tree, a test): no line or column.
    pub fn intern_source(&mut self, source: &str) -> u32 {
        let f = self.sources.file(source);
        self.sources.loc(f, 0, 0)
    }

    /// The source table, for sources with a line and column ([`SourceTable::loc`]).
    pub fn sources_mut(&mut self) -> &mut SourceTable {
        &mut self.sources
    }

    /// Adds an edge; returns its index (the existing one for a duplicate).
    pub fn edge(&mut self, from: u32, to: u32, kind: EdgeKind, source: u32) -> u32 {
        self.edge_via(from, to, kind, None, source)
    }

    /// Adds an edge carried by a tool (`Influences` through a tool's output).
    pub fn edge_via(
        &mut self,
        from: u32,
        to: u32,
        kind: EdgeKind,
        via: Option<u32>,
        source: u32,
    ) -> u32 {
        let f = from as usize;
        let key = (from, to, kind, via.unwrap_or(NONE));
        if self.out_deg[f] < SCAN_LIMIT {
            let mut e = self.head[f];
            while e != NONE {
                let ed = &self.edges[e as usize];
                if ed.to == to && ed.kind == kind && ed.via == via {
                    return e;
                }
                e = self.prev[e as usize];
            }
        } else if let Some(&e) = self.many.get(&key) {
            return e;
        }
        let next = self.edges.len() as u32;
        self.edges.push(Edge {
            from,
            to,
            kind,
            gate: None,
            via,
            source,
        });
        self.prev.push(self.head[f]);
        self.head[f] = next;
        self.out_deg[f] += 1;
        if self.out_deg[f] == SCAN_LIMIT {
            // From now on this node's duplicates are looked up in the map.
            let mut e = next;
            while e != NONE {
                let ed = &self.edges[e as usize];
                self.many
                    .insert((ed.from, ed.to, ed.kind, ed.via.unwrap_or(NONE)), e);
                e = self.prev[e as usize];
            }
        } else if self.out_deg[f] > SCAN_LIMIT {
            self.many.insert(key, next);
        }
        next
    }

    pub fn set_gate(&mut self, edge: u32, gate: u32) {
        self.edges[edge as usize].gate = Some(gate);
    }

    pub fn finish(self) -> Graph {
        let n = self.nodes.len();
        let m = self.edges.len();
        let mut out_start = vec![0u32; n + 1];
        let mut in_start = vec![0u32; n + 1];
        for e in &self.edges {
            out_start[e.from as usize + 1] += 1;
            in_start[e.to as usize + 1] += 1;
        }
        for i in 0..n {
            out_start[i + 1] += out_start[i];
            in_start[i + 1] += in_start[i];
        }
        let mut out_edges = vec![0u32; m];
        let mut in_edges = vec![0u32; m];
        let mut o = out_start.clone();
        let mut ii = in_start.clone();
        for (k, e) in self.edges.iter().enumerate() {
            out_edges[o[e.from as usize] as usize] = k as u32;
            o[e.from as usize] += 1;
            in_edges[ii[e.to as usize] as usize] = k as u32;
            ii[e.to as usize] += 1;
        }
        Graph {
            nodes: self.nodes,
            edges: self.edges,
            sources: self.sources,
            index: self.index,
            out_start,
            out_edges,
            in_start,
            in_edges,
        }
    }
}
