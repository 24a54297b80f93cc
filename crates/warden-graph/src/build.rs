//! Building the graph from an inventory (and, through [`crate::iam`], an AWS IAM export).
//!
//! `CanInvoke` edges come from an [`InvokePolicy`]: what policy permits, not only what was
//! declared. Until the Cedar engine (`warden-policy`) is wired in, [`EntitlementPolicy`]
//! answers from the inventory's entitlements and approval rules.

use std::path::Path;

use warden_core::inventory::{Inventory, Sourced, ToolRef};
use warden_core::model::{Agent, Effect, ResourceKind, Spanned, Tool};

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

/// Every declared tool once, in stable order (connector, then tool name), with what does not
/// depend on the agent asking: built once per graph so per-agent policy questions allocate
/// nothing and look nothing up by string twice.
pub struct ToolTable<'i> {
    tools: Vec<ToolInfo<'i>>,
    /// Connector id → its tools' range in `tools`.
    by_connector: FxMap<&'i str, (u32, u32)>,
}

/// One row of a [`ToolTable`].
pub struct ToolInfo<'i> {
    pub tool_ref: ToolRef,
    pub name: &'i str,
    pub tool: &'i Tool,
    /// The first inventory approval rule covering the tool (it holds every allowed call).
    pub approval_rule: Option<&'i str>,
}

impl<'i> ToolTable<'i> {
    pub fn new(inv: &'i Inventory) -> Self {
        let mut tools = Vec::new();
        let mut by_connector = FxMap::default();
        for c in inv.connectors.values() {
            let start = tools.len() as u32;
            for (name, ts) in &c.tools {
                let tool_ref = ToolRef {
                    connector: c.id.value.clone(),
                    tool: name.clone(),
                };
                let approval_rule = inv
                    .approval_rules_for(&tool_ref, &ts.value)
                    .first()
                    .map(|r| r.id.value.as_str());
                tools.push(ToolInfo {
                    tool_ref,
                    name: name.as_str(),
                    tool: &ts.value,
                    approval_rule,
                });
            }
            by_connector.insert(c.id.value.as_str(), (start, tools.len() as u32));
        }
        ToolTable {
            tools,
            by_connector,
        }
    }
    pub fn len(&self) -> usize {
        self.tools.len()
    }
    pub fn is_empty(&self) -> bool {
        self.tools.is_empty()
    }
    pub fn get(&self, i: u32) -> &ToolInfo<'i> {
        &self.tools[i as usize]
    }
    /// The index range of a connector's tools (empty for an unknown connector).
    pub fn of_connector(&self, connector: &str) -> std::ops::Range<u32> {
        self.by_connector
            .get(connector)
            .map(|&(a, b)| a..b)
            .unwrap_or(0..0)
    }
    /// The index of `connector.tool`.
    pub fn find(&self, connector: &str, tool: &str) -> Option<u32> {
        let r = self.of_connector(connector);
        let slice = &self.tools[r.start as usize..r.end as usize];
        slice
            .binary_search_by(|t| t.name.cmp(tool))
            .ok()
            .map(|k| r.start + k as u32)
    }
    /// The tools an agent's `uses` entitles it to (wildcards expanded), sorted, each once;
    /// with the index of the `uses` entry that grants it (the first such entry).
    pub fn entitled(&self, agent: &Agent) -> Vec<(u32, usize)> {
        let mut out = Vec::new();
        for (k, u) in agent.uses.iter().enumerate() {
            let Some((c, t)) = u.value.split_once('.') else {
                continue;
            };
            if t == "*" {
                out.extend(self.of_connector(c).map(|i| (i, k)));
            } else if let Some(i) = self.find(c, t) {
                out.push((i, k));
            }
        }
        out.sort_unstable();
        out.dedup_by_key(|x| x.0);
        out
    }
}

/// Answers "could this agent ever call this tool, and behind which gate?". `Sync`: agents are
/// asked about in parallel.
pub trait InvokePolicy: Sync {
    fn could_invoke(&self, inv: &Inventory, agent: &str, tool: &ToolRef) -> Invocation;

    /// The decision for every tool worth asking about for this agent, as `(index into tools,
    /// decision)`; tools left out are [`Invocation::Never`]. Default: every declared tool
    /// through [`InvokePolicy::could_invoke`] (override to skip tools or share work).
    fn invocations(
        &self,
        inv: &Inventory,
        agent: &Agent,
        tools: &ToolTable<'_>,
    ) -> Vec<(u32, Invocation)> {
        (0..tools.len() as u32)
            .map(|i| {
                (
                    i,
                    self.could_invoke(inv, &agent.id.value, &tools.get(i).tool_ref),
                )
            })
            .collect()
    }
}

/// Entitlements (`uses`) plus approval rules: an entitled tool that an approval rule covers
/// is [`Invocation::WithApproval`] of the first such rule; other entitled tools are
/// [`Invocation::Always`]; everything else [`Invocation::Never`].
#[derive(Debug, Default, Clone, Copy)]
pub struct EntitlementPolicy;

impl InvokePolicy for EntitlementPolicy {
    fn invocations(
        &self,
        _inv: &Inventory,
        agent: &Agent,
        tools: &ToolTable<'_>,
    ) -> Vec<(u32, Invocation)> {
        tools
            .entitled(agent)
            .into_iter()
            .map(|(i, _)| {
                let d = match tools.get(i).approval_rule {
                    Some(rule) => Invocation::WithApproval(rule.to_string()),
                    None => Invocation::Always,
                };
                (i, d)
            })
            .collect()
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

/// Every agent's invocations, computed on all cores in agent order.
fn all_invocations(
    inv: &Inventory,
    agents: &[&Sourced<Agent>],
    policy: &dyn InvokePolicy,
    tools: &ToolTable<'_>,
) -> Vec<Vec<(u32, Invocation)>> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(agents.len().div_ceil(256).max(1));
    if threads <= 1 {
        return agents
            .iter()
            .map(|a| policy.invocations(inv, a, tools))
            .collect();
    }
    let chunk = agents.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = agents
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    part.iter()
                        .map(|a| policy.invocations(inv, a, tools))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("policy evaluation panicked"))
            .collect()
    })
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

/// Manifest locations (`file:line:column`) as source-table entries: files interned once,
/// locations kept as numbers and formatted only when shown.
#[derive(Default)]
struct Sources<'a> {
    files: FxMap<&'a [u8], u32>,
}

impl<'a> Sources<'a> {
    fn get<T, V>(&mut self, b: &mut GraphBuilder, s: &'a Sourced<T>, span: &Spanned<V>) -> u32 {
        let key = s.file.as_os_str().as_encoded_bytes();
        let f = match self.files.get(key) {
            Some(&f) => f,
            None => {
                let f = b.sources_mut().file(&s.file.display().to_string());
                self.files.insert(key, f);
                f
            }
        };
        let (line, col) = (span.referenced.line(), span.referenced.column());
        b.sources_mut().loc(
            f,
            u32::try_from(line).unwrap_or(u32::MAX),
            u32::try_from(col).unwrap_or(u32::MAX),
        )
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
        let s = src.get(b, r, &r.id);
        let n = b.node_mut(i);
        n.attrs.sensitivity = Some(r.sensitivity);
        n.attrs.tier_zero = r.tier_zero;
        n.source = Some(s);
        if let Some(d) = &r.trust_domain {
            n.attrs.props.insert("trust_domain".into(), d.clone());
        }
        if !r.data.is_empty() {
            n.attrs.props.insert("data".into(), r.data.join(","));
        }
    }
    for g in inv.groups.values() {
        let i = b.node(
            format!("group:{}", g.id.value),
            NodeKind::Group,
            &g.id.value,
        );
        let s = src.get(b, g, &g.id);
        b.node_mut(i).source = Some(s);
    }
    for h in inv.humans.values() {
        let i = b.node(
            format!("human:{}", h.id.value),
            NodeKind::Human,
            &h.id.value,
        );
        let s = src.get(b, h, &h.id);
        b.node_mut(i).source = Some(s);
        for g in &h.groups {
            let gi = b.node(format!("group:{}", g.value), NodeKind::Group, &g.value);
            let s = src.get(b, h, g);
            b.edge(i, gi, EdgeKind::MemberOf, s);
        }
    }
    for id in inv.identities.values() {
        let i = b.node(
            format!("identity:{}", id.id.value),
            NodeKind::Identity,
            &id.id.value,
        );
        let s = src.get(b, id, &id.id);
        {
            let n = b.node_mut(i);
            n.source = Some(s);
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
                format!("identity:{}", t.value),
                NodeKind::Identity,
                &t.value,
            );
            let s = src.get(b, id, t);
            b.edge(i, ti, EdgeKind::CanAssume, s);
        }
    }
    // Tool → the untrusted sources its output carries.
    let mut untrusted_of: FxMap<u32, Vec<u32>> = FxMap::default();
    // Tool table index → tool node (the table and this loop share the same order).
    let tools = ToolTable::new(inv);
    let mut tool_node: Vec<u32> = Vec::with_capacity(tools.len());
    for c in inv.connectors.values() {
        let ci = b.node(
            format!("connector:{}", c.id.value),
            NodeKind::Connector,
            &c.id.value,
        );
        let csrc = src.get(b, c, &c.id);
        b.node_mut(ci).source = Some(csrc);
        let runs_as = c.runs_as.as_ref().map(|r| {
            let ri = b.node(
                format!("identity:{}", r.value),
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
            let ki = b.node(format!("credential:{cred}"), NodeKind::Credential, &cred);
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
            let ti = b.node(format!("tool:{q}"), NodeKind::Tool, &q);
            tool_node.push(ti);
            let tsrc = src.get(b, c, ts);
            {
                let n = b.node_mut(ti);
                n.source = Some(tsrc);
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
                    format!("untrusted:{q}"),
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
    // What policy permits, asked for all agents at once (in parallel).
    let agents: Vec<&Sourced<Agent>> = inv.agents.values().collect();
    let decisions = all_invocations(inv, &agents, policy, &tools);
    for (a, decisions) in agents.into_iter().zip(decisions) {
        let ai = b.node(
            format!("agent:{}", a.id.value),
            NodeKind::Agent,
            &a.id.value,
        );
        let asrc = src.get(b, a, &a.id);
        {
            let n = b.node_mut(ai);
            n.source = Some(asrc);
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
                let hi = b.node(format!("human:{}", o.value), NodeKind::Human, &o.value);
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
            let mi = b.node(format!("model:{m}"), NodeKind::Model, m);
            b.edge(ai, mi, EdgeKind::UsesModel, asrc);
        }
        if let Some(r) = &a.runs_as {
            let ri = b.node(
                format!("identity:{}", r.value),
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
        // What policy permits, tool by tool. Entitlement locations point at the first `uses`
        // entry granting the tool; a tool only policy grants points at the agent.
        let mut grants: Vec<(std::ops::Range<u32>, u32)> = Vec::with_capacity(a.uses.len());
        for u in &a.uses {
            let Some((c, t)) = u.value.split_once('.') else {
                continue;
            };
            let r = if t == "*" {
                tools.of_connector(c)
            } else {
                match tools.find(c, t) {
                    Some(i) => i..i + 1,
                    None => continue,
                }
            };
            grants.push((r, src.get(b, a, u)));
        }
        for (tix, decision) in decisions {
            if decision == Invocation::Never {
                continue;
            }
            let Some(&ti) = tool_node.get(tix as usize) else {
                continue;
            };
            let s = match grants.iter().find(|(r, _)| r.contains(&tix)) {
                Some(&(_, s)) => s,
                None => asrc,
            };
            let e = b.edge(ai, ti, EdgeKind::CanInvoke, s);
            match &decision {
                Invocation::WithApproval(gate) => {
                    let gi = b.node(format!("gate:{gate}"), NodeKind::ApprovalGate, gate);
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
pub(crate) fn secret_refs(v: &str) -> Vec<String> {
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
    // Entitlements dominate: one `CanInvoke` per entitled tool (plus `Influences` for some),
    // about two structural edges per node besides.
    let entitled: usize = inv
        .agents
        .values()
        .flat_map(|a| &a.uses)
        .map(|u| match u.value.split_once('.') {
            Some((c, "*")) => inv.connectors.get(c).map_or(0, |c| c.tools.len()),
            _ => 1,
        })
        .sum();
    GraphBuilder::with_capacity(nodes, nodes * 2 + entitled + entitled / 8)
}

/// Builds the graph of an inventory under the given invocation policy.
pub fn build(inv: &Inventory, policy: &dyn InvokePolicy) -> Graph {
    let mut b = builder_for(inv);
    add_inventory(&mut b, inv, policy);
    b.finish()
}

/// Everything: inventory, optional IAM export, what the scanner found ([`crate::scan`]).
pub fn build_all(
    inv: &Inventory,
    policy: &dyn InvokePolicy,
    iam: Option<&Path>,
    scan: Option<&crate::scan::ScanInput<'_>>,
) -> Result<Graph, crate::GraphError> {
    let mut b = builder_for(inv);
    add_inventory(&mut b, inv, policy);
    let export = match iam {
        Some(p) => {
            let export = crate::iam::IamExport::load(p)?;
            let nodes = crate::iam::add_iam(&mut b, &export, &p.display().to_string());
            Some((export, nodes))
        }
        None => None,
    };
    if let Some(scan) = scan {
        let iam = export.as_ref().map(|(e, n)| (e, n.as_slice()));
        crate::scan::add_scan(&mut b, inv, scan, iam);
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
