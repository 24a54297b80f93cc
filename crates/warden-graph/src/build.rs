//! Building the graph from an inventory (and, through [`crate::iam`], an AWS IAM export).
//!
//! `CanInvoke` edges come from an [`InvokePolicy`]: what policy permits, not only what was
//! declared. Until the Cedar engine (`warden-policy`) is wired in, [`EntitlementPolicy`]
//! answers from the inventory's entitlements and approval rules.

use std::path::Path;

use warden_core::inventory::{Inventory, Sourced, ToolRef};
use warden_core::model::{Effect, ResourceKind, Spanned};

use crate::graph::{EdgeKind, FxMap, Graph, GraphBuilder, NodeKind};

/// Whether policy could let an agent call a tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invocation {
    /// No request is ever allowed (forbidden, or not entitled): no edge.
    Never,
    /// Allowed without a human.
    Always,
    /// Allowed once the named approval gate says yes.
    WithApproval(String),
    /// Allowed for some arguments or contexts without a human (treated as reachable).
    Conditional,
}

/// Answers "could this agent ever call this tool, and behind which gate?".
pub trait InvokePolicy {
    fn could_invoke(&self, inv: &Inventory, agent: &str, tool: &ToolRef) -> Invocation;

    /// The tools worth asking about for this agent (default: every declared tool).
    fn candidates(&self, inv: &Inventory, agent: &str) -> Vec<ToolRef> {
        let _ = agent;
        inv.all_tools().map(|(t, _, _)| t).collect()
    }

    /// Every candidate tool with its answer (override to share work across tools).
    fn invocations(&self, inv: &Inventory, agent: &str) -> Vec<(ToolRef, Invocation)> {
        self.candidates(inv, agent)
            .into_iter()
            .map(|t| {
                let d = self.could_invoke(inv, agent, &t);
                (t, d)
            })
            .collect()
    }
}

/// Entitlements (`uses`) plus approval rules: an entitled tool that an approval rule covers
/// is [`Invocation::WithApproval`] of the first such rule; other entitled tools are
/// [`Invocation::Always`]; everything else [`Invocation::Never`].
#[derive(Debug, Default, Clone, Copy)]
pub struct EntitlementPolicy;

impl EntitlementPolicy {
    fn gate_of(inv: &Inventory, tool: &ToolRef) -> Invocation {
        let Some((_, t)) = inv.tool(tool) else {
            return Invocation::Never;
        };
        match inv.approval_rules_for(tool, t).first() {
            Some(rule) => Invocation::WithApproval(rule.id.value.clone()),
            None => Invocation::Always,
        }
    }
}

impl InvokePolicy for EntitlementPolicy {
    fn invocations(&self, inv: &Inventory, agent: &str) -> Vec<(ToolRef, Invocation)> {
        self.candidates(inv, agent)
            .into_iter()
            .map(|t| {
                let d = Self::gate_of(inv, &t);
                (t, d)
            })
            .collect()
    }

    fn candidates(&self, inv: &Inventory, agent: &str) -> Vec<ToolRef> {
        inv.agents
            .get(agent)
            .map(|a| inv.entitled_tools(a))
            .unwrap_or_default()
    }

    fn could_invoke(&self, inv: &Inventory, agent: &str, tool: &ToolRef) -> Invocation {
        let Some(a) = inv.agents.get(agent) else {
            return Invocation::Never;
        };
        if !inv.entitled_tools(a).contains(tool) {
            return Invocation::Never;
        }
        let Some((_, t)) = inv.tool(tool) else {
            return Invocation::Never;
        };
        match inv.approval_rules_for(tool, t).first() {
            Some(rule) => Invocation::WithApproval(rule.id.value.clone()),
            None => Invocation::Always,
        }
    }
}

/// Node id of an inventory resource (whatever its kind).
pub fn resource_id(id: &str) -> String {
    format!("resource:{id}")
}

fn resource_node_kind(k: ResourceKind) -> NodeKind {
    match k {
        ResourceKind::UntrustedSource => NodeKind::UntrustedSource,
        ResourceKind::ExternalSink => NodeKind::ExternalSink,
        ResourceKind::Memory => NodeKind::MemoryStore,
        ResourceKind::Governance => NodeKind::Governance,
        _ => NodeKind::Resource,
    }
}

fn loc<T, V>(s: &Sourced<T>, span: &Spanned<V>) -> String {
    s.loc(span).to_string()
}

/// Interns `file:line:column` sources without formatting each one more than once.
#[derive(Default)]
struct Sources<'a> {
    files: FxMap<&'a Path, String>,
    seen: FxMap<(&'a Path, u64, u64), u32>,
}

impl<'a> Sources<'a> {
    fn get<T, V>(&mut self, b: &mut GraphBuilder, s: &'a Sourced<T>, span: &Spanned<V>) -> u32 {
        let (line, col) = (span.referenced.line(), span.referenced.column());
        let key = (s.file.as_path(), line, col);
        if let Some(&i) = self.seen.get(&key) {
            return i;
        }
        let f = self
            .files
            .entry(s.file.as_path())
            .or_insert_with(|| s.file.display().to_string());
        let i = b.intern_source(&format!("{f}:{line}:{col}"));
        self.seen.insert(key, i);
        i
    }
}

/// The node for a resource reference; an undeclared one becomes a plain resource node.
fn resource_node(b: &mut GraphBuilder, inv: &Inventory, id: &str) -> u32 {
    let nid = resource_id(id);
    if let Some(i) = b.find(&nid) {
        return i;
    }
    let kind = inv
        .resources
        .get(id)
        .map(|r| resource_node_kind(r.kind))
        .unwrap_or(NodeKind::Resource);
    let i = b.node(&nid, kind, id);
    if !inv.resources.contains_key(id) {
        b.node_mut(i)
            .attrs
            .props
            .insert("declared".into(), "false".into());
    }
    i
}

/// Adds everything the inventory declares to `b`.
pub fn add_inventory(b: &mut GraphBuilder, inv: &Inventory, policy: &dyn InvokePolicy) {
    let mut src = Sources::default();
    // Resources first so their kinds are known.
    for r in inv.resources.values() {
        let i = resource_node(b, inv, &r.id.value);
        let n = b.node_mut(i);
        n.attrs.sensitivity = Some(r.sensitivity);
        n.attrs.tier_zero = r.tier_zero;
        n.source = Some(loc(r, &r.id));
        if let Some(d) = &r.trust_domain {
            n.attrs.props.insert("trust_domain".into(), d.clone());
        }
        if !r.data.is_empty() {
            n.attrs.props.insert("data".into(), r.data.join(","));
        }
    }
    for g in inv.groups.values() {
        let i = b.node(
            &format!("group:{}", g.id.value),
            NodeKind::Group,
            &g.id.value,
        );
        b.node_mut(i).source = Some(loc(g, &g.id));
    }
    for h in inv.humans.values() {
        let i = b.node(
            &format!("human:{}", h.id.value),
            NodeKind::Human,
            &h.id.value,
        );
        b.node_mut(i).source = Some(loc(h, &h.id));
        for g in &h.groups {
            let gi = b.node(&format!("group:{}", g.value), NodeKind::Group, &g.value);
            let s = src.get(b, h, g);
            b.edge(i, gi, EdgeKind::MemberOf, s);
        }
    }
    for id in inv.identities.values() {
        let i = b.node(
            &format!("identity:{}", id.id.value),
            NodeKind::Identity,
            &id.id.value,
        );
        {
            let n = b.node_mut(i);
            n.source = Some(loc(id, &id.id));
            n.attrs.admin |= id.admin;
            n.attrs.tier_zero |= id.admin;
            if let Some(x) = &id.external_id {
                n.attrs.props.insert("external_id".into(), x.clone());
            }
            if let Some(p) = &id.provider {
                n.attrs.props.insert("provider".into(), p.clone());
            }
        }
        for r in &id.access {
            let ri = resource_node(b, inv, &r.value);
            let s = src.get(b, id, r);
            b.edge(i, ri, EdgeKind::HasAccessTo, s);
        }
    }
    // can_assume after all identities exist.
    for id in inv.identities.values() {
        let i = b.find(&format!("identity:{}", id.id.value)).unwrap_or(0);
        for t in &id.can_assume {
            let ti = b.node(
                &format!("identity:{}", t.value),
                NodeKind::Identity,
                &t.value,
            );
            let s = src.get(b, id, t);
            b.edge(i, ti, EdgeKind::CanAssume, s);
        }
    }
    // Tool → the untrusted sources its output carries.
    let mut untrusted_of: FxMap<u32, Vec<u32>> = FxMap::default();
    // `connector.tool` → tool node, so per-agent lookups allocate nothing.
    let mut tool_idx: FxMap<ToolRef, u32> = FxMap::default();
    for c in inv.connectors.values() {
        let ci = b.node(
            &format!("connector:{}", c.id.value),
            NodeKind::Connector,
            &c.id.value,
        );
        b.node_mut(ci).source = Some(loc(c, &c.id));
        let csrc = src.get(b, c, &c.id);
        let runs_as = c.runs_as.as_ref().map(|r| {
            let ri = b.node(
                &format!("identity:{}", r.value),
                NodeKind::Identity,
                &r.value,
            );
            let s = src.get(b, c, r);
            b.edge(ci, ri, EdgeKind::RunsAs, s);
            ri
        });
        // Credentials the connector is configured with.
        let mut creds: Vec<String> = Vec::new();
        if let Some(m) = &c.mcp {
            for v in m.env.values().chain(m.headers.values()) {
                creds.extend(secret_refs(v));
            }
        }
        if let Some(h) = &c.http {
            for v in h.headers.values() {
                creds.extend(secret_refs(v));
            }
        }
        for cred in creds {
            let ki = b.node(&format!("credential:{cred}"), NodeKind::Credential, &cred);
            b.node_mut(ki)
                .attrs
                .props
                .insert("held_by".into(), c.id.value.clone());
            b.edge(ci, ki, EdgeKind::HoldsCredential, csrc);
            if let Some(ri) = runs_as {
                b.edge(ki, ri, EdgeKind::AuthenticatesAs, csrc);
            }
        }
        for (name, ts) in &c.tools {
            let t = &ts.value;
            let q = format!("{}.{}", c.id.value, name);
            let ti = b.node(&format!("tool:{q}"), NodeKind::Tool, &q);
            tool_idx.insert(
                ToolRef {
                    connector: c.id.value.clone(),
                    tool: name.clone(),
                },
                ti,
            );
            let tsrc = src.get(b, c, ts);
            {
                let n = b.node_mut(ti);
                n.source = Some(loc(c, ts));
                n.attrs.effects = t.effects.clone();
                n.attrs.irreversible = t.irreversible;
                n.attrs.untrusted_output = t.untrusted_output;
                if !t.data.is_empty() {
                    n.attrs.props.insert("data".into(), t.data.join(","));
                }
            }
            b.edge(ci, ti, EdgeKind::Provides, tsrc);
            let res: Vec<&Spanned<String>> = if t.resources.is_empty() {
                c.resources.iter().collect()
            } else {
                t.resources.iter().collect()
            };
            let mut sources_of_tool = Vec::new();
            for r in res {
                let ri = resource_node(b, inv, &r.value);
                match b.nodes()[ri as usize].kind {
                    NodeKind::UntrustedSource => {
                        if t.untrusted_output {
                            sources_of_tool.push(ri);
                        }
                        b.edge(ti, ri, EdgeKind::HasAccessTo, tsrc);
                    }
                    NodeKind::ExternalSink => {
                        b.edge(ti, ri, EdgeKind::CanSendTo, tsrc);
                    }
                    NodeKind::MemoryStore if t.effects.contains(&Effect::Write) => {
                        b.edge(ti, ri, EdgeKind::WritesTo, tsrc);
                    }
                    _ => {
                        b.edge(ti, ri, EdgeKind::HasAccessTo, tsrc);
                    }
                }
            }
            if t.untrusted_output && sources_of_tool.is_empty() {
                // Content from outside the organisation with no declared source: the tool's
                // own output is the source (ticket bodies, quotes with news headlines).
                let ui = b.node(
                    &format!("untrusted:{q}"),
                    NodeKind::UntrustedSource,
                    &format!("content returned by {q}"),
                );
                sources_of_tool.push(ui);
            }
            if !sources_of_tool.is_empty() {
                untrusted_of.insert(ti, sources_of_tool);
            }
        }
    }
    for a in inv.agents.values() {
        let ai = b.node(
            &format!("agent:{}", a.id.value),
            NodeKind::Agent,
            &a.id.value,
        );
        let asrc = src.get(b, a, &a.id);
        {
            let n = b.node_mut(ai);
            n.source = Some(loc(a, &a.id));
            for (k, v) in [
                ("model", &a.model),
                ("framework", &a.framework),
                ("purpose", &a.purpose),
            ] {
                if let Some(v) = v {
                    n.attrs.props.insert(k.into(), v.clone());
                }
            }
        }
        match &a.owner {
            Some(o) if inv.humans.contains_key(&o.value) => {
                let hi = b.node(&format!("human:{}", o.value), NodeKind::Human, &o.value);
                let s = src.get(b, a, o);
                b.edge(hi, ai, EdgeKind::OwnsAgent, s);
                b.node_mut(ai)
                    .attrs
                    .props
                    .insert("owner".into(), o.value.clone());
            }
            _ => b.node_mut(ai).attrs.orphaned = true,
        }
        if let Some(m) = &a.model {
            let mi = b.node(&format!("model:{m}"), NodeKind::Model, m);
            b.edge(ai, mi, EdgeKind::UsesModel, asrc);
        }
        if let Some(r) = &a.runs_as {
            let ri = b.node(
                &format!("identity:{}", r.value),
                NodeKind::Identity,
                &r.value,
            );
            let s = src.get(b, a, r);
            b.edge(ai, ri, EdgeKind::RunsAs, s);
        }
        for w in &a.writes {
            let ri = resource_node(b, inv, &w.value);
            let s = src.get(b, a, w);
            b.edge(ai, ri, EdgeKind::WritesTo, s);
        }
        for r in &a.reads {
            let ri = resource_node(b, inv, &r.value);
            let s = src.get(b, a, r);
            b.edge(ri, ai, EdgeKind::Loads, s);
        }
        // What policy permits, tool by tool. Entitlement locations point at the `uses` entry.
        for (tr, decision) in policy.invocations(inv, &a.id.value) {
            if decision == Invocation::Never {
                continue;
            }
            let Some(&ti) = tool_idx.get(&tr) else {
                continue;
            };
            let s = match a.uses.iter().find(|u| {
                (u.value.len() == tr.connector.len() + 1 + tr.tool.len()
                    && u.value.starts_with(tr.connector.as_str())
                    && u.value.ends_with(tr.tool.as_str())
                    && u.value.as_bytes()[tr.connector.len()] == b'.')
                    || (u.value.len() == tr.connector.len() + 2
                        && u.value.starts_with(tr.connector.as_str())
                        && u.value.ends_with(".*"))
            }) {
                Some(u) => src.get(b, a, u),
                None => src.get(b, a, &a.id),
            };
            let e = b.edge(ai, ti, EdgeKind::CanInvoke, s);
            match &decision {
                Invocation::WithApproval(gate) => {
                    let gi = b.node(&format!("gate:{gate}"), NodeKind::ApprovalGate, gate);
                    b.set_gate(e, gi);
                    b.edge(ti, gi, EdgeKind::GatedBy, s);
                }
                Invocation::Conditional => {
                    b.node_mut(ti)
                        .attrs
                        .props
                        .insert("conditional".into(), "true".into());
                }
                _ => {}
            }
            if let Some(srcs) = untrusted_of.get(&ti) {
                for &u in srcs {
                    b.edge_via(u, ai, EdgeKind::Influences, Some(ti), s);
                }
            }
        }
    }
    for h in &inv.handoffs {
        let (Some(f), Some(t)) = (
            b.find(&format!("agent:{}", h.from.value)),
            b.find(&format!("agent:{}", h.to.value)),
        ) else {
            continue; // dangling: `warden check` reports it
        };
        let s = src.get(b, h, &h.to);
        b.edge(f, t, EdgeKind::HandsOffTo, s);
    }
}

/// `${env:NAME}` and `${file:PATH}` references in a configuration value.
fn secret_refs(v: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = v;
    while let Some(p) = rest.find("${") {
        let after = &rest[p + 2..];
        let Some(end) = after.find('}') else { break };
        let inner = &after[..end];
        if let Some(n) = inner.strip_prefix("env:") {
            out.push(format!("env:{n}"));
        } else if let Some(f) = inner.strip_prefix("file:") {
            out.push(format!("file:{f}"));
        }
        rest = &after[end + 1..];
    }
    out
}

/// A builder sized for an inventory (avoids rehashing millions of edges).
fn builder_for(inv: &Inventory) -> GraphBuilder {
    let tools: usize = inv.connectors.values().map(|c| c.tools.len()).sum();
    let nodes = inv.humans.len()
        + inv.groups.len()
        + inv.identities.len()
        + inv.agents.len()
        + inv.connectors.len()
        + inv.resources.len()
        + tools;
    GraphBuilder::with_capacity(nodes, nodes * 5)
}

/// Builds the graph of an inventory under the given invocation policy.
pub fn build(inv: &Inventory, policy: &dyn InvokePolicy) -> Graph {
    let mut b = builder_for(inv);
    add_inventory(&mut b, inv, policy);
    b.finish()
}

/// A secret the scanner found in a file: becomes a credential node.
#[derive(Debug, Clone)]
pub struct ScannedCredential {
    /// The file, as the scanner reported it (relative to the scanned root).
    pub file: std::path::PathBuf,
    pub line: u64,
    /// The scanner's rule (`scan.secret.aws-access-key`, …).
    pub rule_id: String,
    /// The identity it authenticates as, when that is known (inventory identity id).
    pub identity: Option<String>,
}

/// Adds scanned secrets: `credential:scan:<file>:<line>` nodes held by the agents whose
/// `code` directory contains the file (relative to `scan_root`), authenticating as the
/// identity when known.
pub fn add_scanned_credentials(
    b: &mut GraphBuilder,
    inv: &Inventory,
    scan_root: &Path,
    creds: &[ScannedCredential],
) {
    let src = b.intern_source(&format!("scan:{}", scan_root.display()));
    for c in creds {
        let id = format!("credential:scan:{}:{}", c.file.display(), c.line);
        let ki = b.node(
            &id,
            NodeKind::Credential,
            &format!("{}:{}", c.file.display(), c.line),
        );
        {
            let n = b.node_mut(ki);
            n.source = Some(format!("{}:{}", scan_root.join(&c.file).display(), c.line));
            n.attrs.props.insert("rule_id".into(), c.rule_id.clone());
        }
        let abs = scan_root.join(&c.file);
        for a in inv.agents.values() {
            let Some(code) = &a.code else { continue };
            let dir = inv.root.join(code);
            if abs.starts_with(&dir) || c.file.starts_with(code) {
                let ai = b.node(
                    &format!("agent:{}", a.id.value),
                    NodeKind::Agent,
                    &a.id.value,
                );
                b.edge(ai, ki, EdgeKind::HoldsCredential, src);
            }
        }
        if let Some(ident) = &c.identity {
            let ii = b.node(&format!("identity:{ident}"), NodeKind::Identity, ident);
            b.edge(ki, ii, EdgeKind::AuthenticatesAs, src);
        }
    }
}

/// Everything: inventory, optional IAM export, scanned credentials.
pub fn build_all(
    inv: &Inventory,
    policy: &dyn InvokePolicy,
    iam: Option<&Path>,
    scan: Option<(&Path, &[ScannedCredential])>,
) -> Result<Graph, crate::GraphError> {
    let mut b = builder_for(inv);
    add_inventory(&mut b, inv, policy);
    if let Some(p) = iam {
        let export = crate::iam::IamExport::load(p)?;
        crate::iam::add_iam(&mut b, &export, &p.display().to_string());
    }
    if let Some((root, creds)) = scan {
        add_scanned_credentials(&mut b, inv, root, creds);
    }
    Ok(b.finish())
}

/// Inventory plus optional IAM export.
pub fn build_with_iam(
    inv: &Inventory,
    policy: &dyn InvokePolicy,
    iam: Option<&Path>,
) -> Result<Graph, crate::GraphError> {
    let mut b = builder_for(inv);
    add_inventory(&mut b, inv, policy);
    if let Some(p) = iam {
        let export = crate::iam::IamExport::load(p)?;
        crate::iam::add_iam(&mut b, &export, &p.display().to_string());
    }
    Ok(b.finish())
}
