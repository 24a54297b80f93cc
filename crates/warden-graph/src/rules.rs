//! Posture rules over the graph: toxic combinations and attack paths, each with its path as
//! evidence and, where a source → target question exists, a minimum cut verified by re-running
//! the path count with the cut applied.
//!
//! | rule id | severity | what |
//! |---|---|---|
//! | `graph.lethal-trifecta` | critical | an agent (or handoff chain) influenced by untrusted input, reaching sensitive data, with an ungated external send |
//! | `graph.rule-of-two` | high | the same with an ungated state change (write, privileged, irreversible, code execution) as the third leg |
//! | `graph.untrusted-to-code-exec` | critical / medium when gated | untrusted input reaches an agent that can run code |
//! | `graph.credential-chain-escalation` | high | an agent reaches a credential that authenticates as a more privileged identity |
//! | `graph.identity-escalation` | critical when an agent runs as it, else high | `CanAssume` / PassRole / trust update / access-key chain to an admin-equivalent identity |
//! | `graph.agent-can-modify-governance` | high | an agent reaches Warden's own policies, inventory or gateway configuration with write rights |
//! | `graph.confused-deputy` | high | a tainted or ownerless agent hands off to one holding state-changing tools it lacks |
//! | `graph.delegation-cycle` | medium | agents hand off to each other in a cycle |
//! | `graph.memory-poisoning` | high | untrusted input → an agent that writes a memory store another agent loads |
//! | `graph.orphaned-agent-privileged-reach` | critical | an ownerless agent reaches tier-zero resources or admin identities |
//! | `graph.tier-zero-exposed` | high | a tier-zero node is reachable from untrusted input |
//! | `graph.undeclared-connector` | high when it holds credentials, else medium | an MCP server in a scanned client config that is not an inventory connector |

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::PathBuf;

use serde::Serialize;
use warden_core::model::Effect;
use warden_core::{Finding, Severity, SourceLocation};

use crate::analysis::View;
use crate::graph::{EdgeKind, Graph, NodeKind, Remedy};

/// The smallest fix proposed for a finding, and the proof that it works.
#[derive(Debug, Clone, Serialize)]
pub struct Remediation {
    /// Node ids the paths start from.
    pub sources: Vec<String>,
    /// Node ids the paths end at.
    pub targets: Vec<String>,
    /// Simple paths from sources to targets before the cut.
    pub paths_before: usize,
    /// False when counting stopped at the budget (`paths_before` is then a lower bound).
    pub paths_complete: bool,
    /// A minimum set of human-changeable edits that removes every path; empty with
    /// `cut_found: false` when some path uses only edges no human can change.
    pub cut: Vec<Remedy>,
    pub cut_found: bool,
    /// Paths left after re-running the count with the cut applied (0 when it works).
    pub paths_after: usize,
}

/// A finding plus its machine-readable remediation.
#[derive(Debug, Clone, Serialize)]
pub struct GraphFinding {
    #[serde(flatten)]
    pub finding: Finding,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remediation: Option<Remediation>,
}

/// Analysis knobs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Steps the path counter may take per finding.
    pub path_budget: usize,
    /// Compute minimum cuts (and verify them).
    pub cuts: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            path_budget: 50_000,
            cuts: true,
        }
    }
}

/// `path:line:col` back into a location.
pub fn parse_location(s: &str) -> SourceLocation {
    let mut it = s.rsplitn(3, ':');
    let (c, l, f) = (it.next(), it.next(), it.next());
    if let (Some(c), Some(l), Some(f)) = (c, l, f)
        && let (Ok(line), Ok(column)) = (l.parse(), c.parse())
    {
        return SourceLocation {
            file: PathBuf::from(f),
            line,
            column,
        };
    }
    SourceLocation {
        file: PathBuf::from(s),
        line: 0,
        column: 0,
    }
}

struct Ctx<'a, 'g> {
    v: &'a View<'g>,
    g: &'g Graph,
    opts: &'a Options,
    untrusted: Vec<u32>,
    tainted: Vec<bool>,
    out: Vec<GraphFinding>,
}

fn all(_: u32) -> bool {
    true
}

impl<'a, 'g> Ctx<'a, 'g> {
    fn id(&self, n: u32) -> &'g str {
        &self.g.node(n).id
    }
    fn label(&self, n: u32) -> &'g str {
        &self.g.node(n).label
    }
    fn influence(&self) -> impl Fn(u32) -> bool + '_ {
        |e| self.g.edge(e).kind.carries_influence()
    }
    fn loc(&self, n: u32) -> Option<SourceLocation> {
        self.g.node_source(n).as_deref().map(parse_location)
    }

    /// Passable `CanInvoke` edges of an agent, with the tool.
    fn invocable(&self, a: u32) -> Vec<(u32, u32)> {
        self.g
            .out(a)
            .iter()
            .copied()
            .filter(|&e| self.g.edge(e).kind == EdgeKind::CanInvoke && self.v.passable(e))
            .map(|e| (e, self.g.edge(e).to))
            .collect()
    }

    /// The untrusted sources whose content reaches node `n`.
    fn taint_sources(&self, n: u32) -> Vec<u32> {
        let f = self.influence();
        let anc = self.v.ancestors(n, &f);
        let mut s: Vec<u32> = anc
            .into_iter()
            .filter(|&u| self.g.node(u).kind == NodeKind::UntrustedSource)
            .collect();
        s.sort_unstable();
        s
    }

    fn remediation(
        &self,
        sources: &[u32],
        targets: &[u32],
        filter: &dyn Fn(u32) -> bool,
    ) -> Option<Remediation> {
        if !self.opts.cuts {
            return None;
        }
        let (before, complete) =
            self.v
                .count_paths(sources, targets, filter, self.opts.path_budget);
        let cut = self.v.min_cut(sources, targets, filter);
        let (cut_found, cut) = match cut {
            Some(c) => (true, c),
            None => (false, Vec::new()),
        };
        let paths_after = if cut_found {
            let mut after = self.v.clone();
            for r in &cut {
                after.block(self.g.edges_removed_by(r));
            }
            after
                .count_paths(sources, targets, filter, self.opts.path_budget)
                .0
        } else {
            before
        };
        Some(Remediation {
            sources: sources.iter().map(|&n| self.id(n).to_string()).collect(),
            targets: targets.iter().map(|&n| self.id(n).to_string()).collect(),
            paths_before: before,
            paths_complete: complete,
            cut,
            cut_found,
            paths_after,
        })
    }

    fn push(&mut self, mut f: Finding, r: Option<Remediation>, plain_fix: &str) {
        let mut fix = String::new();
        if let Some(r) = &r {
            let n = if r.paths_complete {
                format!("{}", r.paths_before)
            } else {
                format!("at least {}", r.paths_before)
            };
            if r.cut_found && !r.cut.is_empty() {
                let list: Vec<String> = r.cut.iter().map(|c| c.to_string()).collect();
                fix = format!(
                    "smallest fix ({} change{}): {} — cuts all {n} path(s); re-run with it applied: {} remain",
                    r.cut.len(),
                    if r.cut.len() == 1 { "" } else { "s" },
                    list.join("; "),
                    r.paths_after
                );
                for c in &r.cut {
                    f.evidence.push(format!("cut: {c}"));
                }
            } else if !r.cut_found {
                fix = format!(
                    "no cut over human-changeable edges removes all {n} path(s) (a path uses only declared tool behaviour); "
                );
            }
        }
        if fix.is_empty() {
            fix = plain_fix.to_string();
        } else if !r.as_ref().is_some_and(|r| r.cut_found) {
            fix.push_str(plain_fix);
        }
        f.fix = fix;
        self.out.push(GraphFinding {
            finding: f,
            remediation: r,
        });
    }

    fn path_to(&self, starts: &[u32], target: u32, filter: &dyn Fn(u32) -> bool) -> String {
        self.v
            .shortest_path(starts, &|n| n == target, filter)
            .map(|p| {
                if p.is_empty() {
                    self.id(target).to_string()
                } else {
                    self.g.render_path(&p)
                }
            })
            .unwrap_or_default()
    }
}

/// Runs every rule on a view of the graph.
pub fn findings(v: &View, opts: &Options) -> Vec<GraphFinding> {
    let g = v.g;
    let untrusted: Vec<u32> = (0..g.node_count() as u32)
        .filter(|&n| g.node(n).kind == NodeKind::UntrustedSource)
        .collect();
    let tainted = v.reach(&untrusted, &|e| g.edge(e).kind.carries_influence());
    let mut cx = Ctx {
        v,
        g,
        opts,
        untrusted,
        tainted,
        out: Vec::new(),
    };
    let agents: Vec<u32> = (0..g.node_count() as u32)
        .filter(|&n| g.node(n).kind == NodeKind::Agent)
        .collect();
    trifecta(&mut cx, &agents);
    code_exec(&mut cx, &agents);
    credential_chain(&mut cx);
    identity_escalation(&mut cx);
    governance(&mut cx, &agents);
    deputies(&mut cx);
    cycles(&mut cx, &agents);
    memory(&mut cx, &agents);
    orphans(&mut cx, &agents);
    tier_zero(&mut cx);
    undeclared_connectors(&mut cx);
    let mut out = cx.out;
    out.sort_by(|a, b| {
        b.finding
            .severity
            .cmp(&a.finding.severity)
            .then_with(|| a.finding.rule_id.cmp(&b.finding.rule_id))
            .then_with(|| a.finding.subject.cmp(&b.finding.subject))
    });
    out
}

fn trifecta(cx: &mut Ctx, agents: &[u32]) {
    let g = cx.g;
    for &x in agents {
        if !cx.tainted[x as usize] {
            continue;
        }
        let inv = cx.invocable(x);
        let sends: Vec<u32> = inv
            .iter()
            .map(|&(_, t)| t)
            .filter(|&t| g.node(t).attrs.has_effect(Effect::ExternalSend))
            .collect();
        let changes: Vec<u32> = inv
            .iter()
            .map(|&(_, t)| t)
            .filter(|&t| {
                let a = &g.node(t).attrs;
                a.changes_state() && !a.has_effect(Effect::ExternalSend)
            })
            .collect();
        if sends.is_empty() && changes.is_empty() {
            continue;
        }
        // The chain: x and every agent that hands off to it (context travels with the task).
        let chain =
            cx.v.ancestors(x, &|e| g.edge(e).kind == EdgeKind::HandsOffTo);
        let mut data: Vec<(u32, Vec<u32>)> = Vec::new(); // (resource, path edges)
        let mut seen = HashSet::new();
        let mut chain_sorted: Vec<u32> = chain.iter().copied().collect();
        chain_sorted.sort_unstable();
        for &a in &chain_sorted {
            for (e, t) in cx.invocable(a) {
                for &e2 in g.out(t) {
                    let ed = g.edge(e2);
                    if ed.kind == EdgeKind::HasAccessTo
                        && cx.v.passable(e2)
                        && g.node(ed.to).attrs.is_sensitive()
                        && seen.insert(ed.to)
                    {
                        data.push((ed.to, vec![e, e2]));
                    }
                }
            }
            for &e in g.inc(a) {
                let ed = g.edge(e);
                if ed.kind == EdgeKind::Loads
                    && cx.v.passable(e)
                    && g.node(ed.from).attrs.is_sensitive()
                    && seen.insert(ed.from)
                {
                    data.push((ed.from, vec![e]));
                }
            }
        }
        if data.is_empty() {
            continue;
        }
        let sources = cx.taint_sources(x);
        let inf = cx.influence();
        let taint_path = cx.path_to(&sources, x, &inf);
        drop(inf);
        let data_names: Vec<&str> = data.iter().map(|(r, _)| cx.label(*r)).collect();
        let src_names: Vec<&str> = sources.iter().map(|&s| cx.label(s)).collect();
        let data_ev: Vec<String> = data
            .iter()
            .take(5)
            .map(|(_, p)| format!("sensitive data: {}", g.render_path(p)))
            .collect();
        // Paths into the third leg through this agent's own calls only.
        let filter = |e: u32| {
            let ed = g.edge(e);
            ed.kind.carries_influence() || (ed.kind == EdgeKind::CanInvoke && ed.from == x)
        };
        for (third, rule, sev) in [
            (&sends, "graph.lethal-trifecta", Severity::Critical),
            (&changes, "graph.rule-of-two", Severity::High),
        ] {
            if third.is_empty() {
                continue;
            }
            let names: Vec<&str> = third.iter().map(|&t| cx.label(t)).collect();
            let what = if rule == "graph.lethal-trifecta" {
                "an ungated external send"
            } else {
                "an ungated state change"
            };
            let mut f = Finding::new(
                rule,
                sev,
                format!(
                    "agent `{}` is steerable by untrusted input ({}), reaches sensitive data ({}) and has {what} ({})",
                    cx.label(x),
                    src_names.join(", "),
                    data_names.join(", "),
                    names.join(", ")
                ),
            )
            .at(cx.loc(x))
            .subject(cx.id(x))
            .owasp(&["ASI01", "ASI02"]);
            f.evidence.push(format!("untrusted input: {taint_path}"));
            f.evidence.extend(data_ev.iter().cloned());
            for &t in third.iter() {
                let leg = third_leg(cx, x, t);
                f.evidence.push(format!("third leg: {leg}"));
            }
            if chain.len() > 1 {
                let mut ups: Vec<&str> = chain_sorted
                    .iter()
                    .filter(|&&a| a != x)
                    .map(|&a| cx.label(a))
                    .collect();
                ups.sort_unstable();
                f.evidence.push(format!(
                    "handoff chain: {} → {}",
                    ups.join(", "),
                    cx.label(x)
                ));
            }
            let r = cx.remediation(&sources, third, &filter);
            cx.push(
                f,
                r,
                "gate the third leg behind an approval rule, or revoke one of the three legs",
            );
        }
    }
}

fn third_leg(cx: &Ctx, agent: u32, tool: u32) -> String {
    let g = cx.g;
    let mut s = format!("{} -CanInvoke-> {}", cx.id(agent), cx.id(tool));
    if let Some(&e) = g
        .out(tool)
        .iter()
        .find(|&&e| matches!(g.edge(e).kind, EdgeKind::CanSendTo | EdgeKind::HasAccessTo))
    {
        let ed = g.edge(e);
        s.push_str(&format!(" -{}-> {}", ed.kind.as_str(), cx.id(ed.to)));
    }
    s
}

fn code_exec(cx: &mut Ctx, agents: &[u32]) {
    let g = cx.g;
    for &x in agents {
        if !cx.tainted[x as usize] {
            continue;
        }
        let mut ungated = Vec::new();
        let mut gated = Vec::new();
        for &e in g.out(x) {
            let ed = g.edge(e);
            if ed.kind != EdgeKind::CanInvoke || !g.node(ed.to).attrs.has_effect(Effect::CodeExec) {
                continue;
            }
            if cx.v.passable(e) {
                ungated.push(ed.to);
            } else if let Some(gate) = ed.gate {
                gated.push((ed.to, gate));
            }
        }
        if ungated.is_empty() && gated.is_empty() {
            continue;
        }
        let sources = cx.taint_sources(x);
        let inf = cx.influence();
        let path = cx.path_to(&sources, x, &inf);
        drop(inf);
        if !ungated.is_empty() {
            let names: Vec<&str> = ungated.iter().map(|&t| cx.label(t)).collect();
            let mut f = Finding::new(
                "graph.untrusted-to-code-exec",
                Severity::Critical,
                format!(
                    "untrusted input reaches agent `{}`, which can run code without approval ({})",
                    cx.label(x),
                    names.join(", ")
                ),
            )
            .at(cx.loc(x))
            .subject(cx.id(x))
            .owasp(&["ASI05", "ASI01"]);
            f.evidence.push(format!("untrusted input: {path}"));
            for &t in &ungated {
                f.evidence.push(format!(
                    "code execution: {} -CanInvoke-> {}",
                    cx.id(x),
                    cx.id(t)
                ));
            }
            let filter = |e: u32| {
                let ed = g.edge(e);
                ed.kind.carries_influence() || (ed.kind == EdgeKind::CanInvoke && ed.from == x)
            };
            let r = cx.remediation(&sources, &ungated, &filter);
            cx.push(f, r, "gate code execution behind an approval rule");
        } else {
            let names: Vec<String> = gated
                .iter()
                .map(|&(t, gt)| format!("{} (gate `{}`)", cx.label(t), cx.label(gt)))
                .collect();
            let mut f = Finding::new(
                "graph.untrusted-to-code-exec",
                Severity::Medium,
                format!(
                    "untrusted input reaches agent `{}`, which can run code behind an approval gate ({})",
                    cx.label(x),
                    names.join(", ")
                ),
            )
            .at(cx.loc(x))
            .subject(cx.id(x))
            .owasp(&["ASI05", "ASI09"]);
            f.evidence.push(format!("untrusted input: {path}"));
            cx.push(
                f,
                None,
                "keep the gate; approvers should see the untrusted content that led to the command (session taint), or separate fetching from executing agents",
            );
        }
    }
}

/// Tier-zero and admin nodes reachable from `n` (sparse).
fn privileged_reach(cx: &Ctx, n: u32) -> BTreeSet<u32> {
    cx.v.descendants(n, &all)
        .into_iter()
        .filter(|&m| m != n && (cx.g.node(m).attrs.tier_zero || cx.g.node(m).attrs.admin))
        .collect()
}

fn credential_chain(cx: &mut Ctx) {
    let g = cx.g;
    let creds: Vec<u32> = (0..g.node_count() as u32)
        .filter(|&n| g.node(n).kind == NodeKind::Credential)
        .collect();
    for c in creds {
        let targets: Vec<u32> = g
            .out(c)
            .iter()
            .filter(|&&e| g.edge(e).kind == EdgeKind::AuthenticatesAs && cx.v.passable(e))
            .map(|&e| g.edge(e).to)
            .collect();
        if targets.is_empty() {
            continue;
        }
        let anc = cx.v.ancestors(c, &all);
        let mut reaching: Vec<u32> = anc
            .iter()
            .copied()
            .filter(|&a| g.node(a).kind == NodeKind::Agent)
            .collect();
        reaching.sort_unstable();
        for a in reaching {
            let own: Vec<u32> = g
                .out(a)
                .iter()
                .filter(|&&e| g.edge(e).kind == EdgeKind::RunsAs)
                .map(|&e| g.edge(e).to)
                .collect();
            let mut own_reach: BTreeSet<u32> = BTreeSet::new();
            for &o in &own {
                own_reach.insert(o);
                own_reach.extend(privileged_reach(cx, o));
            }
            for &t in &targets {
                if own.contains(&t) {
                    continue;
                }
                let mut gained: BTreeSet<u32> = privileged_reach(cx, t);
                if g.node(t).attrs.admin || g.node(t).attrs.tier_zero {
                    gained.insert(t);
                }
                let gained: Vec<u32> = gained.difference(&own_reach).copied().collect();
                if gained.is_empty() {
                    continue;
                }
                let names: Vec<&str> = gained.iter().take(5).map(|&n| cx.label(n)).collect();
                let mut f = Finding::new(
                    "graph.credential-chain-escalation",
                    Severity::High,
                    format!(
                        "agent `{}` reaches credential `{}`, which authenticates as `{}` and gains {}",
                        cx.label(a),
                        cx.label(c),
                        cx.label(t),
                        names.join(", ")
                    ),
                )
                .at(cx.loc(a))
                .subject(cx.id(a))
                .owasp(&["ASI03"]);
                // The path through this credential (another may reach the identity first).
                f.evidence.push(format!(
                    "path: {} -AuthenticatesAs-> {}",
                    cx.path_to(&[a], c, &all),
                    cx.id(t)
                ));
                let r = cx.remediation(&[a], &[t], &all);
                cx.push(
                    f,
                    r,
                    "move the credential out of the agent's reach (secret store, narrower file access) and rotate it",
                );
            }
        }
    }
}

fn identity_escalation(cx: &mut Ctx) {
    let g = cx.g;
    let esc = |e: u32| g.edge(e).kind.is_escalation();
    for i in 0..g.node_count() as u32 {
        let n = g.node(i);
        if n.kind != NodeKind::Identity || n.attrs.admin {
            continue;
        }
        if !g
            .out(i)
            .iter()
            .any(|&e| g.edge(e).kind.is_escalation() && cx.v.passable(e))
        {
            continue;
        }
        let mut admins: Vec<u32> =
            cx.v.descendants(i, &esc)
                .into_iter()
                .filter(|&m| m != i && g.node(m).attrs.admin)
                .collect();
        if admins.is_empty() {
            continue;
        }
        admins.sort_unstable();
        let mut runners: Vec<u32> = g
            .inc(i)
            .iter()
            .filter(|&&e| g.edge(e).kind == EdgeKind::RunsAs)
            .map(|&e| g.edge(e).from)
            .filter(|&a| g.node(a).kind == NodeKind::Agent)
            .collect();
        runners.sort_unstable();
        let sev = if runners.is_empty() {
            Severity::High
        } else {
            Severity::Critical
        };
        let names: Vec<&str> = admins.iter().map(|&a| cx.label(a)).collect();
        let mut msg = format!(
            "identity `{}` can become administrator-equivalent {}",
            n.label,
            names
                .iter()
                .map(|s| format!("`{s}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        if !runners.is_empty() {
            let rn: Vec<&str> = runners.iter().map(|&a| cx.label(a)).collect();
            msg.push_str(&format!(" (agents running as it: {})", rn.join(", ")));
        }
        let mut f = Finding::new("graph.identity-escalation", sev, msg)
            .at(cx.loc(i))
            .subject(&n.id)
            .owasp(&["ASI03"]);
        for &a in &admins {
            let mut p = cx.path_to(&[i], a, &esc);
            if let Some(&r) = runners.first() {
                p = format!("{} -RunsAs-> {p}", cx.id(r));
            }
            f.evidence.push(format!("escalation: {p}"));
            for &e in g.inc(a) {
                let ed = g.edge(e);
                if ed.kind.is_escalation() && ed.from == i {
                    f.evidence
                        .push(format!("  {} from {}", ed.kind.as_str(), g.source_of(e)));
                }
            }
        }
        let r = cx.remediation(&[i], &admins, &esc);
        cx.push(
            f,
            r,
            "remove the role trust or IAM permission that lets this identity become an administrator",
        );
    }
}

fn governance_edge(g: &Graph, e: u32) -> bool {
    let ed = g.edge(e);
    if g.node(ed.to).kind != NodeKind::Governance {
        return true;
    }
    let from = g.node(ed.from);
    match from.kind {
        NodeKind::Identity => true,
        NodeKind::Tool => from
            .attrs
            .effects
            .iter()
            .any(|e| matches!(e, Effect::Write | Effect::Privileged | Effect::CodeExec)),
        NodeKind::Agent => ed.kind == EdgeKind::WritesTo,
        _ => false,
    }
}

fn governance(cx: &mut Ctx, agents: &[u32]) {
    let g = cx.g;
    let gov: Vec<u32> = (0..g.node_count() as u32)
        .filter(|&n| g.node(n).kind == NodeKind::Governance)
        .collect();
    if gov.is_empty() {
        return;
    }
    let filter = |e: u32| governance_edge(g, e);
    let back = cx.v.reach_back(&gov, &filter);
    for &a in agents {
        if !back[a as usize] {
            continue;
        }
        let Some(p) =
            cx.v.shortest_path(&[a], &|n| g.node(n).kind == NodeKind::Governance, &filter)
        else {
            continue;
        };
        let target = g.edge(*p.last().unwrap_or(&0)).to;
        let mut f = Finding::new(
            "graph.agent-can-modify-governance",
            Severity::High,
            format!(
                "agent `{}` can modify `{}` (Warden's own policies, inventory or gateway configuration)",
                cx.label(a),
                cx.label(target)
            ),
        )
        .at(cx.loc(a))
        .subject(cx.id(a))
        .owasp(&["ASI03", "ASI10"]);
        f.evidence.push(format!("path: {}", g.render_path(&p)));
        let r = cx.remediation(&[a], &gov, &filter);
        cx.push(
            f,
            r,
            "no agent should hold write access to the governance plane; remove it",
        );
    }
}

fn deputies(cx: &mut Ctx) {
    let g = cx.g;
    for e in 0..g.edge_count() as u32 {
        let ed = g.edge(e);
        if ed.kind != EdgeKind::HandsOffTo || !cx.v.passable(e) {
            continue;
        }
        let (a, b) = (ed.from, ed.to);
        let tainted = cx.tainted[a as usize];
        let orphan = g.node(a).attrs.orphaned;
        if !tainted && !orphan {
            continue;
        }
        let mine: BTreeSet<u32> = cx.invocable(a).into_iter().map(|(_, t)| t).collect();
        let extra: Vec<u32> = cx
            .invocable(b)
            .into_iter()
            .map(|(_, t)| t)
            .filter(|t| !mine.contains(t) && g.node(*t).attrs.changes_state())
            .collect();
        if extra.is_empty() {
            continue;
        }
        let why = match (tainted, orphan) {
            (true, true) => "tainted by untrusted input and ownerless",
            (true, false) => "tainted by untrusted input",
            _ => "ownerless",
        };
        let names: Vec<&str> = extra.iter().map(|&t| cx.label(t)).collect();
        let mut f = Finding::new(
            "graph.confused-deputy",
            Severity::High,
            format!(
                "agent `{}` ({why}) hands off to `{}`, which can call {} that `{}` itself cannot",
                cx.label(a),
                cx.label(b),
                names.join(", "),
                cx.label(a)
            ),
        )
        .at(cx.loc(a))
        .subject(format!("{}->{}", cx.id(a), cx.id(b)))
        .owasp(&["ASI07", "ASI03"]);
        f.evidence.push(format!("handoff: {}", g.source_of(e)));
        for &t in &extra {
            f.evidence.push(format!(
                "{} -HandsOffTo-> {} -CanInvoke-> {}",
                cx.id(a),
                cx.id(b),
                cx.id(t)
            ));
        }
        let filter = |e: u32| matches!(g.edge(e).kind, EdgeKind::HandsOffTo | EdgeKind::CanInvoke);
        let r = cx.remediation(&[a], &extra, &filter);
        cx.push(
            f,
            r,
            "gate the receiving agent's privileged tools, or have a human start the receiving task",
        );
    }
}

fn cycles(cx: &mut Ctx, agents: &[u32]) {
    let g = cx.g;
    // Tarjan's SCC, iterative, over passable handoffs.
    let n = g.node_count();
    let mut index = vec![u32::MAX; n];
    let mut low = vec![0u32; n];
    let mut on = vec![false; n];
    let mut stack: Vec<u32> = Vec::new();
    let mut next = 0u32;
    let mut sccs: Vec<Vec<u32>> = Vec::new();
    let handoffs = |v: u32| -> Vec<u32> {
        g.out(v)
            .iter()
            .filter(|&&e| g.edge(e).kind == EdgeKind::HandsOffTo && cx.v.passable(e))
            .map(|&e| g.edge(e).to)
            .collect()
    };
    for &root in agents {
        if index[root as usize] != u32::MAX {
            continue;
        }
        let mut work: Vec<(u32, Vec<u32>, usize)> = vec![(root, handoffs(root), 0)];
        index[root as usize] = next;
        low[root as usize] = next;
        next += 1;
        stack.push(root);
        on[root as usize] = true;
        while let Some((v, succ, pos)) = work.last_mut() {
            if *pos < succ.len() {
                let w = succ[*pos];
                *pos += 1;
                if index[w as usize] == u32::MAX {
                    index[w as usize] = next;
                    low[w as usize] = next;
                    next += 1;
                    stack.push(w);
                    on[w as usize] = true;
                    let s = handoffs(w);
                    work.push((w, s, 0));
                } else if on[w as usize] {
                    let v = *v as usize;
                    low[v] = low[v].min(index[w as usize]);
                }
            } else {
                let v = *v;
                work.pop();
                if let Some((p, _, _)) = work.last() {
                    let p = *p as usize;
                    low[p] = low[p].min(low[v as usize]);
                }
                if low[v as usize] == index[v as usize] {
                    let mut comp = Vec::new();
                    while let Some(w) = stack.pop() {
                        on[w as usize] = false;
                        comp.push(w);
                        if w == v {
                            break;
                        }
                    }
                    let self_loop = comp.len() == 1 && handoffs(v).contains(&v);
                    if comp.len() > 1 || self_loop {
                        sccs.push(comp);
                    }
                }
            }
        }
    }
    for mut comp in sccs {
        comp.sort_unstable();
        let names: Vec<&str> = comp.iter().map(|&a| cx.label(a)).collect();
        let mut f = Finding::new(
            "graph.delegation-cycle",
            Severity::Medium,
            format!(
                "agents hand off to each other in a cycle: {}",
                names.join(", ")
            ),
        )
        .at(cx.loc(comp[0]))
        .subject(cx.id(comp[0]))
        .owasp(&["ASI08", "ASI07"]);
        let set: HashSet<u32> = comp.iter().copied().collect();
        for &a in &comp {
            for &e in g.out(a) {
                let ed = g.edge(e);
                if ed.kind == EdgeKind::HandsOffTo && set.contains(&ed.to) {
                    f.evidence.push(format!(
                        "{} -HandsOffTo-> {} ({})",
                        cx.id(a),
                        cx.id(ed.to),
                        g.source_of(e)
                    ));
                }
            }
        }
        cx.push(
            f,
            None,
            "break the cycle (remove one handoff) and bound delegation depth (`max_depth`)",
        );
    }
}

fn memory(cx: &mut Ctx, agents: &[u32]) {
    let g = cx.g;
    for &a in agents {
        if !cx.tainted[a as usize] {
            continue;
        }
        let mut stores: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
        for &e in g.out(a) {
            let ed = g.edge(e);
            if ed.kind == EdgeKind::WritesTo
                && cx.v.passable(e)
                && g.node(ed.to).kind == NodeKind::MemoryStore
            {
                let loaders: Vec<u32> = g
                    .out(ed.to)
                    .iter()
                    .filter(|&&l| g.edge(l).kind == EdgeKind::Loads && cx.v.passable(l))
                    .map(|&l| g.edge(l).to)
                    .collect();
                if !loaders.is_empty() {
                    stores.insert(ed.to, loaders);
                }
            }
        }
        for (m, loaders) in stores {
            let sources = cx.taint_sources(a);
            let names: Vec<&str> = loaders.iter().map(|&l| cx.label(l)).collect();
            let mut f = Finding::new(
                "graph.memory-poisoning",
                Severity::High,
                format!(
                    "agent `{}` reads untrusted input and writes memory `{}`, which {} load(s) in later sessions",
                    cx.label(a),
                    cx.label(m),
                    names.join(", ")
                ),
            )
            .at(cx.loc(a))
            .subject(format!("{}->{}", cx.id(a), cx.id(m)))
            .owasp(&["ASI06"]);
            let inf = cx.influence();
            let p = cx.path_to(&sources, m, &inf);
            drop(inf);
            f.evidence.push(format!("poisoning: {p}"));
            for &l in &loaders {
                f.evidence
                    .push(format!("persistence: {} -Loads-> {}", cx.id(m), cx.id(l)));
            }
            let filter = |e: u32| g.edge(e).kind.carries_influence();
            let r = cx.remediation(&sources, &[m], &filter);
            cx.push(
                f,
                r,
                "do not let agents that read untrusted input write shared memory, or review/sanitise what they write",
            );
        }
    }
}

fn orphans(cx: &mut Ctx, agents: &[u32]) {
    let g = cx.g;
    for &a in agents {
        if !g.node(a).attrs.orphaned {
            continue;
        }
        let reach: Vec<u32> = privileged_reach(cx, a).into_iter().collect();
        if reach.is_empty() {
            continue;
        }
        let names: Vec<&str> = reach.iter().map(|&n| cx.label(n)).collect();
        let mut f = Finding::new(
            "graph.orphaned-agent-privileged-reach",
            Severity::Critical,
            format!(
                "agent `{}` has no accountable owner and reaches privileged zones: {}",
                cx.label(a),
                names.join(", ")
            ),
        )
        .at(cx.loc(a))
        .subject(cx.id(a))
        .owasp(&["ASI10", "ASI03"]);
        for &t in reach.iter().take(8) {
            f.evidence
                .push(format!("path: {}", cx.path_to(&[a], t, &all)));
        }
        let r = cx.remediation(&[a], &reach, &all);
        cx.push(
            f,
            r,
            "assign an owner who reviews its access, or retire the agent and its identity",
        );
    }
}

fn tier_zero(cx: &mut Ctx) {
    let g = cx.g;
    let fwd = cx.v.reach(&cx.untrusted, &all);
    for z in 0..g.node_count() as u32 {
        let n = g.node(z);
        if !(n.attrs.tier_zero || n.attrs.admin) || !fwd[z as usize] {
            continue;
        }
        if n.kind == NodeKind::UntrustedSource {
            continue;
        }
        let mut sources: Vec<u32> =
            cx.v.ancestors(z, &all)
                .into_iter()
                .filter(|&u| g.node(u).kind == NodeKind::UntrustedSource)
                .collect();
        sources.sort_unstable();
        let src_names: Vec<&str> = sources.iter().map(|&s| cx.label(s)).collect();
        let mut f = Finding::new(
            "graph.tier-zero-exposed",
            Severity::High,
            format!(
                "tier-zero `{}` is reachable from untrusted input ({})",
                n.label,
                src_names.join(", ")
            ),
        )
        .at(cx.loc(z))
        .subject(&n.id)
        .owasp(&["ASI01", "ASI03"]);
        f.evidence
            .push(format!("path: {}", cx.path_to(&sources, z, &all)));
        let r = cx.remediation(&sources, &[z], &all);
        cx.push(
            f,
            r,
            "put an approval gate or a trust boundary between untrusted input and this zone",
        );
    }
}

fn undeclared_connectors(cx: &mut Ctx) {
    let g = cx.g;
    for c in 0..g.node_count() as u32 {
        let n = g.node(c);
        if n.kind != NodeKind::Connector
            || n.attrs.props.get("declared").map(String::as_str) != Some("false")
        {
            continue;
        }
        let creds: Vec<u32> = g
            .out(c)
            .iter()
            .filter(|&&e| g.edge(e).kind == EdgeKind::HoldsCredential)
            .map(|&e| g.edge(e).to)
            .collect();
        let mut users: Vec<u32> = g
            .inc(c)
            .iter()
            .filter(|&&e| g.edge(e).kind == EdgeKind::Uses && cx.v.passable(e))
            .map(|&e| g.edge(e).from)
            .collect();
        users.sort_unstable();
        users.dedup();
        let prop = |k: &str| n.attrs.props.get(k).map(String::as_str).unwrap_or("?");
        let severity = if creds.is_empty() {
            Severity::Medium
        } else {
            Severity::High
        };
        let mut f = Finding::new(
            "graph.undeclared-connector",
            severity,
            format!(
                "MCP server `{}` in `{}` ({}) is not an inventory connector: its calls bypass the gateway's policy, approvals and audit",
                n.label,
                prop("config"),
                prop("client")
            ),
        )
        .at(cx.loc(c))
        .subject(&n.id)
        .owasp(&["ASI04", "ASI02"]);
        for k in ["command", "url", "transport"] {
            if let Some(v) = n.attrs.props.get(k) {
                f.evidence.push(format!("{k}: {v}"));
            }
        }
        for &k in &creds {
            f.evidence.push(format!("holds credential: {}", cx.id(k)));
        }
        for &a in &users {
            f.evidence
                .push(format!("path: {}", cx.path_to(&[a], c, &all)));
        }
        let r = if users.is_empty() {
            None
        } else {
            cx.remediation(&users, &[c], &all)
        };
        cx.push(
            f,
            r,
            "declare it as an inventory connector and point the client at the Warden gateway, or remove it from the client configuration",
        );
    }
}

/// The findings of `findings(v)` with a rule id and subject, as `(rule_id, subject)` pairs.
pub fn keys(fs: &[GraphFinding]) -> BTreeSet<(String, String)> {
    fs.iter()
        .map(|f| {
            (
                f.finding.rule_id.clone(),
                f.finding.subject.clone().unwrap_or_default(),
            )
        })
        .collect()
}
