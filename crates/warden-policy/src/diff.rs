//! What-if: how decisions change between two policy sets over the same inventory.
//!
//! For every (agent, tool) pair, each engine's answer is summarised as `allow`, `deny`,
//! `needs_approval` or `depends` (on arguments, taint, time or delegation). Pairs that
//! [`PolicyEngine::could_allow`] settles without looking at the context are not probed.
//! The others are probed: each declared argument at its declared boundaries (`min`, `max`,
//! `enum` values) and at every integer literal of the policies that can apply (c−1, c, c+1,
//! within the declared range); string literals from those policies; booleans both ways;
//! optional arguments also absent; clean and tainted sessions; delegation depth 0–3;
//! every weekday at hours 0, 23 and the hour literals ±1. The full product is probed when it
//! has at most 4,096 points, otherwise one dimension at a time around a baseline.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use warden_core::model::{ArgSpec, ArgType};
use warden_core::{Inventory, ToolRef};

use crate::{PolicyEngine, Reachability, Request, SessionState, UtcTime};

/// One engine's answer for one (agent, tool) pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PairSummary {
    /// `allow`, `deny`, `needs_approval`, or `depends`.
    pub outcome: String,
    /// The outcomes seen (one unless `depends`).
    pub outcomes: Vec<String>,
    /// Approvers over all approval-needing probes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub approvers: Vec<String>,
    /// One example request per outcome when probed: `{outcome: {args, tainted, depth, time}}`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub examples: BTreeMap<String, serde_json::Value>,
}

/// A pair whose answer differs.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    pub agent: String,
    pub tool: String,
    pub before: PairSummary,
    pub after: PairSummary,
    /// For probed pairs: the first probe whose outcome differs, `{probe, before, after}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_difference: Option<serde_json::Value>,
    /// How many probes differ (0 when not probed).
    pub differing_probes: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct DiffReport {
    pub pairs: usize,
    pub probed_pairs: usize,
    pub changes: Vec<Change>,
}

#[derive(Clone)]
struct Probe {
    args: serde_json::Map<String, serde_json::Value>,
    tainted: bool,
    depth: usize,
    time: UtcTime,
}

/// Sets one dimension of a probe.
type Setter = Box<dyn Fn(&mut Probe)>;

const MONDAY: i64 = 1_767_571_200; // 2026-01-05T00:00:00Z
const MAX_PRODUCT: usize = 4_096;

fn arg_values(
    spec: &ArgSpec,
    ints: &BTreeSet<i64>,
    strs: &BTreeSet<String>,
) -> Vec<Option<serde_json::Value>> {
    let mut out: Vec<Option<serde_json::Value>> = Vec::new();
    if !spec.required {
        out.push(None);
    }
    match spec.ty {
        ArgType::Integer | ArgType::Number => {
            let lo = spec.min.map(|m| m.ceil() as i64);
            let hi = spec.max.map(|m| m.floor() as i64);
            let mut vals = BTreeSet::new();
            vals.extend(lo);
            vals.extend(hi);
            for c in ints {
                for v in [c.saturating_sub(1), *c, c.saturating_add(1)] {
                    if lo.is_none_or(|l| v >= l) && hi.is_none_or(|h| v <= h) {
                        vals.insert(v);
                    }
                }
            }
            if vals.is_empty() {
                vals.insert(lo.unwrap_or(0).max(0));
            }
            out.extend(vals.into_iter().map(|v| Some(serde_json::json!(v))));
        }
        ArgType::Boolean => {
            out.push(Some(serde_json::json!(false)));
            out.push(Some(serde_json::json!(true)));
        }
        ArgType::String => {
            let mut vals: BTreeSet<String> = BTreeSet::new();
            if spec.one_of.is_empty() {
                vals.extend(strs.iter().cloned());
                vals.insert("x".into());
            } else {
                vals.extend(spec.one_of.iter().cloned());
            }
            out.extend(vals.into_iter().map(|v| Some(serde_json::json!(v))));
        }
    }
    out
}

fn probes(engines: &[&PolicyEngine], tool: &ToolRef) -> Vec<Probe> {
    let mut ints = BTreeSet::new();
    let mut strs = BTreeSet::new();
    let mut specs = BTreeMap::new();
    for e in engines {
        let (i, s) = e.literals(tool);
        ints.extend(i);
        strs.extend(s);
        if let Some(t) = e.tools.get(tool) {
            specs = t.args.clone();
        }
    }
    // Dimensions: each argument, taint, depth, (weekday, hour).
    let mut dims: Vec<Vec<Setter>> = Vec::new();
    for (name, spec) in &specs {
        let mut d: Vec<Setter> = Vec::new();
        for v in arg_values(spec, &ints, &strs) {
            let name = name.clone();
            d.push(Box::new(move |p: &mut Probe| match &v {
                Some(v) => {
                    p.args.insert(name.clone(), v.clone());
                }
                None => {
                    p.args.remove(&name);
                }
            }));
        }
        dims.push(d);
    }
    dims.push(
        [false, true]
            .into_iter()
            .map(|t| Box::new(move |p: &mut Probe| p.tainted = t) as Setter)
            .collect(),
    );
    dims.push(
        (0..4)
            .map(|d| Box::new(move |p: &mut Probe| p.depth = d) as Setter)
            .collect(),
    );
    let mut hours: BTreeSet<i64> = [0, 23].into_iter().collect();
    for c in &ints {
        for h in [c - 1, *c, c + 1] {
            if (0..24).contains(&h) {
                hours.insert(h);
            }
        }
    }
    let mut times = Vec::new();
    for day in 0..7 {
        for h in &hours {
            times.push(UtcTime::from_unix(MONDAY + day * 86_400 + h * 3_600));
        }
    }
    dims.push(
        times
            .into_iter()
            .map(|t| Box::new(move |p: &mut Probe| p.time = t) as Setter)
            .collect(),
    );
    let base = || {
        let mut p = Probe {
            args: serde_json::Map::new(),
            tainted: false,
            depth: 0,
            time: UtcTime::from_unix(MONDAY + 12 * 3_600),
        };
        for d in &dims {
            if let Some(f) = d.last() {
                f(&mut p);
            }
        }
        p
    };
    let product: usize = dims.iter().map(|d| d.len().max(1)).product();
    let mut out = Vec::new();
    if product <= MAX_PRODUCT {
        let mut idx = vec![0usize; dims.len()];
        loop {
            let mut p = base();
            for (d, i) in dims.iter().zip(&idx) {
                if let Some(f) = d.get(*i) {
                    f(&mut p);
                }
            }
            out.push(p);
            let mut k = 0;
            loop {
                if k == idx.len() {
                    return out;
                }
                idx[k] += 1;
                if idx[k] < dims[k].len() {
                    break;
                }
                idx[k] = 0;
                k += 1;
            }
        }
    }
    for d in &dims {
        for f in d {
            let mut p = base();
            f(&mut p);
            out.push(p);
        }
    }
    out
}

fn fixed(reach: &Reachability) -> Option<PairSummary> {
    let f = |o: &str, approvers: Vec<String>| PairSummary {
        outcome: o.into(),
        outcomes: vec![o.into()],
        approvers,
        examples: BTreeMap::new(),
    };
    match reach {
        Reachability::Never => Some(f("deny", vec![])),
        Reachability::Always => Some(f("allow", vec![])),
        Reachability::NeedsApproval { approvers } => Some(f("needs_approval", approvers.clone())),
        Reachability::Conditional { .. } => None,
    }
}

fn probe_json(p: &Probe) -> serde_json::Value {
    serde_json::json!({
        "args": p.args, "tainted": p.tainted, "delegation_depth": p.depth,
        "time": p.time.to_rfc3339(),
    })
}

fn decide_probe(
    engine: &PolicyEngine,
    agent: &str,
    tool: &ToolRef,
    p: &Probe,
) -> (String, Vec<String>) {
    let d = engine.decide(&Request {
        agent: agent.to_string(),
        delegation_chain: (0..p.depth)
            .map(|i| format!("probe-delegate-{i}"))
            .collect(),
        root_human: None,
        tool: tool.clone(),
        args: serde_json::Value::Object(p.args.clone()),
        session: SessionState {
            tainted: p.tainted,
            taint_sources: vec![],
        },
        time: p.time,
    });
    let approvers = d
        .outcome
        .approval()
        .map(|a| a.approvers.clone())
        .unwrap_or_default();
    (d.outcome.as_str().to_string(), approvers)
}

fn summary_of(results: &[(String, Vec<String>)], probes: &[Probe]) -> PairSummary {
    let mut outcomes = BTreeSet::new();
    let mut approvers = BTreeSet::new();
    let mut examples = BTreeMap::new();
    for ((o, a), p) in results.iter().zip(probes) {
        approvers.extend(a.iter().cloned());
        examples.entry(o.clone()).or_insert_with(|| probe_json(p));
        outcomes.insert(o.clone());
    }
    let outcomes: Vec<String> = outcomes.into_iter().collect();
    PairSummary {
        outcome: if outcomes.len() == 1 {
            outcomes[0].clone()
        } else {
            "depends".into()
        },
        outcomes,
        approvers: approvers.into_iter().collect(),
        examples,
    }
}

/// Compares two engines loaded from the same inventory with different policies.
///
/// A pair changes when its summary differs, or, for probed pairs, when any probe's outcome
/// or approvers differ (so moving a threshold inside "depends" is still a change, shown with
/// the first probe that differs).
pub fn diff(inv: &Inventory, before: &PolicyEngine, after: &PolicyEngine) -> DiffReport {
    let mut changes = Vec::new();
    let mut pairs = 0;
    let mut probed_pairs = 0;
    let tools: Vec<ToolRef> = inv.all_tools().map(|(r, _, _)| r).collect();
    for agent in inv.agents.keys() {
        for tool in &tools {
            pairs += 1;
            let (rb, ra) = (
                before.could_allow(agent, tool),
                after.could_allow(agent, tool),
            );
            let change = match (fixed(&rb), fixed(&ra)) {
                (Some(b), Some(a)) => (b != a).then_some((b, a, None, 0)),
                _ => {
                    probed_pairs += 1;
                    let ps = probes(&[before, after], tool);
                    let rb: Vec<_> = ps
                        .iter()
                        .map(|p| decide_probe(before, agent, tool, p))
                        .collect();
                    let ra: Vec<_> = ps
                        .iter()
                        .map(|p| decide_probe(after, agent, tool, p))
                        .collect();
                    let differing: Vec<usize> =
                        (0..ps.len()).filter(|i| rb[*i] != ra[*i]).collect();
                    differing.first().map(|i| {
                        (
                            summary_of(&rb, &ps),
                            summary_of(&ra, &ps),
                            Some(serde_json::json!({
                                "probe": probe_json(&ps[*i]),
                                "before": rb[*i].0, "after": ra[*i].0,
                            })),
                            differing.len(),
                        )
                    })
                }
            };
            if let Some((b, a, first_difference, differing_probes)) = change {
                changes.push(Change {
                    agent: agent.clone(),
                    tool: tool.qualified(),
                    before: b,
                    after: a,
                    first_difference,
                    differing_probes,
                });
            }
        }
    }
    DiffReport {
        pairs,
        probed_pairs,
        changes,
    }
}
