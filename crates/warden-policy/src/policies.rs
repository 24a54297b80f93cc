//! Parsing `policies/*.cedar`, generating the inventory's own policies, resolving approval
//! annotations and validating everything against the schema.
//!
//! Annotations Warden reads:
//!
//! | annotation | on | meaning |
//! |---|---|---|
//! | `@id("…")` | every user policy (required) | the policy id shown in decisions and the audit trail |
//! | `@reason("…")` | any | the explanation shown with a decision |
//! | `@approval("X")` | permits only | `X` is an inventory approval rule id (its approvers, expiry, separation of duties and count apply) or a group id (or `human:ID`) |
//! | `@approval_ttl("15m")` | with a group `@approval` | how long the approval holds |
//! | `@approvals_required("2")` | with a group `@approval` | distinct approvals needed (default 1) |
//! | `@separation_of_duties("false")` | with a group `@approval` | default `true` |

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use cedar_policy::{Effect, Policy, PolicyId, PolicySet, Schema, ValidationMode, Validator};
use miette::Diagnostic;
use warden_core::inventory::{Approver, approval_matches, parse_approver};
use warden_core::{Inventory, PolicyFile, parse_duration};

use crate::{PolicyError, PolicyRef};

/// Ids of the generated policies.
pub const ENTITLEMENT: &str = "inventory.entitlement";
pub const NOT_ENTITLED: &str = "inventory.not-entitled";
pub const APPROVAL_PREFIX: &str = "inventory.approval.";
pub const HANDOFF_DECLARED: &str = "inventory.handoff";
pub const HANDOFF_UNDECLARED: &str = "inventory.handoff-undeclared";

/// The resolved terms of one `@approval`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApprovalTerms {
    pub approvers: Vec<String>,
    pub ttl_seconds: Option<u64>,
    pub approvals_required: u32,
    pub separation_of_duties: bool,
    pub rule: Option<String>,
}

/// Which part of the context a policy's conditions read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ContextUse {
    pub args: bool,
    pub session: bool,
    pub delegation: bool,
    pub time: bool,
    /// `context` used as a whole or an attribute not listed above.
    pub other: bool,
}

impl ContextUse {
    pub fn any(self) -> bool {
        self.args || self.session || self.delegation || self.time || self.other
    }
}

#[derive(Debug, Clone)]
pub(crate) struct PolicyMeta {
    pub pref: PolicyRef,
    pub approval: Option<ApprovalTerms>,
    pub context: ContextUse,
    /// Integer literals in the policy's conditions (for what-if probing).
    pub int_literals: BTreeSet<i64>,
    /// String literals in the policy's conditions (for what-if probing).
    pub str_literals: BTreeSet<String>,
}

impl PolicyMeta {
    pub fn is_forbid(&self) -> bool {
        self.pref.effect == "forbid"
    }
}

pub(crate) struct Loaded {
    pub policies: Vec<Policy>,
    pub meta: HashMap<PolicyId, PolicyMeta>,
}

fn line_of(text: &str, offset: usize) -> u64 {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|b| **b == b'\n')
        .count() as u64
        + 1
}

fn first_label_offset(d: &dyn Diagnostic) -> Option<usize> {
    d.labels().and_then(|mut l| l.next()).map(|l| l.offset())
}

fn err(file: &Path, line: u64, policy: Option<&str>, message: impl Into<String>) -> PolicyError {
    PolicyError::Policy {
        file: file.to_path_buf(),
        line,
        policy: policy.map(str::to_string),
        message: message.into(),
    }
}

/// Parses one `.cedar` file into policies with their `@id`s and lines.
fn parse_file(pf: &PolicyFile, out: &mut Vec<(Policy, u64)>, errors: &mut Vec<PolicyError>) {
    let text = &pf.text;
    let set = match PolicySet::from_str(text) {
        Ok(s) => s,
        Err(e) => {
            for pe in e.iter() {
                let line = first_label_offset(pe)
                    .map(|o| line_of(text, o))
                    .unwrap_or(0);
                let mut msg = pe.to_string();
                if let Some(help) = pe.help() {
                    msg.push_str(&format!(" ({help})"));
                }
                errors.push(err(&pf.path, line, None, msg));
            }
            return;
        }
    };
    if set.templates().next().is_some() {
        errors.push(err(
            &pf.path,
            0,
            None,
            "policy templates (`?principal`/`?resource` slots) are not supported",
        ));
    }
    // Default ids are `policy0`, `policy1`, … in source order.
    let mut ps: Vec<&Policy> = set.policies().collect();
    ps.sort_by_key(|p| {
        p.id()
            .to_string()
            .trim_start_matches("policy")
            .parse::<usize>()
            .unwrap_or(usize::MAX)
    });
    let mut cursor = 0usize;
    for p in ps {
        let src = p.to_cedar().unwrap_or_default();
        let line = match text[cursor..].find(src.as_str()) {
            Some(i) if !src.is_empty() => {
                let off = cursor + i;
                cursor = off + src.len();
                line_of(text, off)
            }
            _ => 0,
        };
        match p.annotation("id") {
            Some(id) if !id.trim().is_empty() => out.push((p.new_id(PolicyId::new(id)), line)),
            _ => errors.push(err(
                &pf.path,
                line,
                None,
                "policy has no `@id(\"…\")` annotation (every policy needs a stable id for decisions and the audit trail)",
            )),
        }
    }
}

/// Walks a policy's JSON form for what its conditions read.
fn analyse(policy: &Policy) -> (ContextUse, BTreeSet<i64>, BTreeSet<String>) {
    let mut cu = ContextUse::default();
    let mut ints = BTreeSet::new();
    let mut strs = BTreeSet::new();
    let Ok(json) = policy.to_json() else {
        cu.other = true;
        return (cu, ints, strs);
    };
    let conds = json.get("conditions").cloned().unwrap_or_default();
    fn walk(
        v: &serde_json::Value,
        cu: &mut ContextUse,
        ints: &mut BTreeSet<i64>,
        strs: &mut BTreeSet<String>,
    ) {
        match v {
            serde_json::Value::Object(m) => {
                // `context.x` is {".": {"left": {"Var": "context"}, "attr": "x"}}
                if let Some(dot) = m.get(".").or_else(|| m.get("has"))
                    && dot
                        .get("left")
                        .and_then(|l| l.get("Var"))
                        .and_then(|v| v.as_str())
                        == Some("context")
                {
                    match dot.get("attr").and_then(|a| a.as_str()) {
                        Some("args") => cu.args = true,
                        Some("session") => cu.session = true,
                        Some("delegation") => cu.delegation = true,
                        Some("time") => cu.time = true,
                        _ => cu.other = true,
                    }
                    return;
                }
                if m.get("Var").and_then(|v| v.as_str()) == Some("context") {
                    cu.other = true;
                }
                if let Some(val) = m.get("Value") {
                    if let Some(n) = val.as_i64() {
                        ints.insert(n);
                    } else if let Some(s) = val.as_str() {
                        strs.insert(s.to_string());
                    }
                }
                for x in m.values() {
                    walk(x, cu, ints, strs);
                }
            }
            serde_json::Value::Array(a) => {
                for x in a {
                    walk(x, cu, ints, strs);
                }
            }
            _ => {}
        }
    }
    walk(&conds, &mut cu, &mut ints, &mut strs);
    (cu, ints, strs)
}

fn known_groups(inv: &Inventory) -> BTreeSet<&str> {
    let mut g: BTreeSet<&str> = inv.groups.keys().map(|k| k.as_str()).collect();
    for h in inv.humans.values() {
        for x in &h.groups {
            g.insert(x.value.as_str());
        }
    }
    g
}

fn normalise_approver(a: &str) -> String {
    match parse_approver(a) {
        Approver::Group(g) => format!("group:{g}"),
        Approver::Human(h) => format!("human:{h}"),
    }
}

fn resolve_approval(
    inv: &Inventory,
    policy: &Policy,
    x: &str,
    file: &Path,
    line: u64,
    id: &str,
) -> Result<ApprovalTerms, PolicyError> {
    if policy.effect() != Effect::Permit {
        return Err(err(
            file,
            line,
            Some(id),
            "`@approval` only makes sense on a permit (a forbid never leads to an approval)",
        ));
    }
    if let Some(rule) = inv.approvals.iter().find(|r| r.id.value == x) {
        let mut approvers: Vec<String> = rule
            .approvers
            .iter()
            .map(|a| normalise_approver(&a.value))
            .collect();
        approvers.sort();
        approvers.dedup();
        return Ok(ApprovalTerms {
            approvers,
            // An unparsable expiry is reported by `warden check`; no TTL then.
            ttl_seconds: rule
                .expires
                .as_ref()
                .and_then(|e| parse_duration(&e.value).ok())
                .map(|d| d.as_secs().max(1)),
            approvals_required: rule.approvals_required.max(1),
            separation_of_duties: rule.separation_of_duties,
            rule: Some(x.to_string()),
        });
    }
    let approver = match parse_approver(x) {
        Approver::Group(g) if known_groups(inv).contains(g) => format!("group:{g}"),
        Approver::Human(h) if inv.humans.contains_key(h) => format!("human:{h}"),
        _ => {
            return Err(err(
                file,
                line,
                Some(id),
                format!(
                    "`@approval(\"{x}\")` names neither an approval rule nor a known group or human"
                ),
            ));
        }
    };
    let ttl_seconds = match policy.annotation("approval_ttl") {
        None => None,
        Some(t) => Some(
            parse_duration(t)
                .map_err(|_| {
                    err(
                        file,
                        line,
                        Some(id),
                        format!("`@approval_ttl(\"{t}\")` is not a duration like 15m, 2h or 1d"),
                    )
                })?
                .as_secs()
                .max(1),
        ),
    };
    let approvals_required = match policy.annotation("approvals_required") {
        None => 1,
        Some(n) => n
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| {
                err(
                    file,
                    line,
                    Some(id),
                    format!("`@approvals_required(\"{n}\")` is not a whole number ≥ 1"),
                )
            })?,
    };
    let separation_of_duties = match policy.annotation("separation_of_duties") {
        None | Some("true") => true,
        Some("false") => false,
        Some(o) => {
            return Err(err(
                file,
                line,
                Some(id),
                format!("`@separation_of_duties(\"{o}\")` must be \"true\" or \"false\""),
            ));
        }
    };
    Ok(ApprovalTerms {
        approvers: vec![approver],
        ttl_seconds,
        approvals_required,
        separation_of_duties,
        rule: None,
    })
}

/// The policies generated from the inventory: entitlements and approval rules.
fn generated(inv: &Inventory) -> Result<Vec<(Policy, PathBuf, u64)>, PolicyError> {
    let mut out = Vec::new();
    let root = if inv.root.as_os_str().is_empty() {
        PathBuf::from("<inventory>")
    } else {
        inv.root.clone()
    };
    let parse = |id: &str, text: &str| {
        Policy::parse(Some(PolicyId::new(id)), text)
            .map_err(|e| PolicyError::Inventory(format!("generated policy `{id}`: {e}")))
    };
    out.push((
        parse(
            ENTITLEMENT,
            "@reason(\"the agent is entitled to this tool (its `uses` in the inventory)\")\n\
             permit (principal is Agent, action, resource is Tool)\n\
             when { principal.entitled.contains(resource) };",
        )?,
        root.clone(),
        0,
    ));
    out.push((
        parse(
            NOT_ENTITLED,
            "@reason(\"the agent is not entitled to this tool (not in its `uses` in the inventory)\")\n\
             forbid (principal is Agent, action, resource is Tool)\n\
             unless { principal.entitled.contains(resource) };",
        )?,
        root.clone(),
        0,
    ));
    out.push((
        parse(
            HANDOFF_DECLARED,
            "@reason(\"the inventory declares this handoff\")\n\
             permit (principal is Agent, action == Action::\"handoff\", resource is Agent)\n\
             when { principal.handoffs.contains(resource) };",
        )?,
        root.clone(),
        0,
    ));
    out.push((
        parse(
            HANDOFF_UNDECLARED,
            "@reason(\"the inventory declares no handoff between these agents\")\n\
             forbid (principal is Agent, action == Action::\"handoff\", resource is Agent)\n\
             unless { principal.handoffs.contains(resource) };",
        )?,
        root.clone(),
        0,
    ));
    for rule in &inv.approvals {
        if !inv
            .all_tools()
            .any(|(r, _, t)| approval_matches(&rule.when, &r, t))
        {
            continue;
        }
        let rid = &rule.id.value;
        let id = format!("{APPROVAL_PREFIX}{rid}");
        // Constant size: the covered tools carry the rule in their `approval_rules`
        // attribute. (An `action in [every covered tool]` scope made every evaluation rebuild
        // and hash that list, which grows with the organisation.)
        let text = format!(
            "@approval(\"{rid}\")\n@reason(\"approval rule `{rid}` covers this tool\")\n\
             permit (principal is Agent, action, resource is Tool)\n\
             when {{ resource.approval_rules.contains(\"{rid}\") }};"
        );
        let loc = rule.loc(&rule.id);
        out.push((parse(&id, &text)?, loc.file, loc.line));
    }
    Ok(out)
}

/// Parses, resolves and validates every policy of `files` plus the generated ones.
pub(crate) fn load(
    inv: &Inventory,
    files: &[PolicyFile],
    schema: &Schema,
) -> Result<Loaded, PolicyError> {
    let mut errors = Vec::new();
    let mut policies = Vec::new();
    let mut meta: HashMap<PolicyId, PolicyMeta> = HashMap::new();
    let mut texts: HashMap<PolicyId, (PathBuf, String)> = HashMap::new();

    let mut add = |policy: Policy,
                   file: PathBuf,
                   line: u64,
                   generated: bool,
                   errors: &mut Vec<PolicyError>| {
        let id = policy.id().clone();
        if let Some(prev) = meta.get(&id) {
            errors.push(err(
                &file,
                line,
                Some(id.as_ref()),
                format!(
                    "duplicate policy id `{id}` (first declared at {}:{})",
                    prev.pref.file.display(),
                    prev.pref.line
                ),
            ));
            return;
        }
        let approval = match policy.annotation("approval") {
            None => None,
            Some(x) => match resolve_approval(inv, &policy, x, &file, line, id.as_ref()) {
                Ok(t) => Some(t),
                Err(e) => {
                    errors.push(e);
                    None
                }
            },
        };
        let (context, int_literals, str_literals) = analyse(&policy);
        let pref = PolicyRef {
            id: id.to_string(),
            effect: match policy.effect() {
                Effect::Permit => "permit",
                Effect::Forbid => "forbid",
            },
            file: file.clone(),
            line,
            reason: policy.annotation("reason").map(str::to_string),
            approval: policy.annotation("approval").map(str::to_string),
            generated,
        };
        meta.insert(
            id,
            PolicyMeta {
                pref,
                approval,
                context,
                int_literals,
                str_literals,
            },
        );
        policies.push(policy);
    };

    for pf in files {
        let mut parsed = Vec::new();
        parse_file(pf, &mut parsed, &mut errors);
        for (p, line) in parsed {
            texts.insert(p.id().clone(), (pf.path.clone(), pf.text.clone()));
            add(p, pf.path.clone(), line, false, &mut errors);
        }
    }
    for (p, file, line) in generated(inv)? {
        add(p, file, line, true, &mut errors);
    }

    if errors.is_empty() {
        for (group, ids) in validation_groups(inv, &policies) {
            let sub;
            let schema = match group {
                None => schema,
                Some(c) => {
                    sub = crate::schema::schema_for(inv, Some(c))?;
                    &sub
                }
            };
            // Only authored policies are validated: the generated ones are correct by
            // construction (their actions and attributes come from the same inventory as the
            // schema, and tests cover their text), and an approval rule's `action in [...]`
            // lists every tool it covers, which Cedar's validator checks against every
            // action of the schema: quadratic in the size of the organisation.
            let set = PolicySet::from_policies(
                policies
                    .iter()
                    .filter(|p| {
                        ids.contains(p.id()) && !meta.get(p.id()).is_some_and(|m| m.pref.generated)
                    })
                    .cloned(),
            )
            .map_err(|e| PolicyError::Inventory(e.to_string()))?;
            let result = Validator::new(schema.clone()).validate(&set, ValidationMode::Strict);
            for e in result.validation_errors() {
                let id = e.policy_id();
                let m = meta.get(id);
                let (file, line) = match (texts.get(id), first_label_offset(e)) {
                    (Some((f, text)), Some(off)) => (f.clone(), line_of(text, off)),
                    _ => m
                        .map(|m| (m.pref.file.clone(), m.pref.line))
                        .unwrap_or_default(),
                };
                let mut msg = e.to_string();
                if let Some(help) = e.help() {
                    msg.push_str(&format!(" ({help})"));
                }
                errors.push(err(&file, line, Some(id.as_ref()), msg));
            }
        }
        errors.sort_by_key(|e| e.to_string());
    }
    match errors.len() {
        0 => Ok(Loaded { policies, meta }),
        1 => Err(errors.remove(0)),
        _ => Err(PolicyError::Many(errors)),
    }
}

/// Groups policies for validation: those whose scope can only match one connector's tools
/// (and no other action) are validated against that connector's schema, the rest against the
/// full one. See [`crate::schema::schema_for`].
fn validation_groups<'a>(
    inv: &'a Inventory,
    policies: &[Policy],
) -> BTreeMap<Option<&'a str>, std::collections::HashSet<PolicyId>> {
    use cedar_policy::{ActionConstraint, ResourceConstraint};
    let mut out: BTreeMap<Option<&'a str>, std::collections::HashSet<PolicyId>> = BTreeMap::new();
    // Tool action id → (connector, effect groups).
    let tools: HashMap<String, (&'a str, Vec<&'static str>)> = inv
        .connectors
        .values()
        .flat_map(|c| {
            c.tools.iter().map(move |(name, t)| {
                (
                    format!("{}.{name}", c.id.value),
                    (c.id.value.as_str(), crate::schema::tool_groups(&t.value)),
                )
            })
        })
        .collect();
    for p in policies {
        let action_ids: Option<Vec<String>> = match p.action_constraint() {
            ActionConstraint::Any => None,
            ActionConstraint::Eq(u) => Some(vec![u.id().unescaped().to_string()]),
            ActionConstraint::In(v) => {
                Some(v.iter().map(|u| u.id().unescaped().to_string()).collect())
            }
        };
        // The connectors whose tools the action scope can reach; None = unknown/any.
        let mut by_action: Option<BTreeSet<&'a str>> = match &action_ids {
            None => None,
            Some(ids) => {
                let mut set = BTreeSet::new();
                let mut ok = true;
                for id in ids {
                    if let Some((c, _)) = tools.get(id) {
                        set.insert(*c);
                    } else if crate::schema::EFFECT_GROUPS.contains(&id.as_str()) {
                        for (c, groups) in tools.values() {
                            if groups.contains(&id.as_str()) {
                                set.insert(*c);
                            }
                        }
                    } else {
                        // handoff, resources/read, or an unknown action: full schema.
                        ok = false;
                    }
                }
                ok.then_some(set)
            }
        };
        let by_resource: Option<&str> = match p.resource_constraint() {
            ResourceConstraint::Eq(u)
            | ResourceConstraint::In(u)
            | ResourceConstraint::IsIn(_, u) => {
                let ty = u.type_name().to_string();
                let id = u.id().unescaped().to_string();
                match ty.as_str() {
                    "Connector" => inv.connectors.get_key_value(&id).map(|(k, _)| k.as_str()),
                    "Tool" => tools.get(&id).map(|(c, _)| *c),
                    _ => None,
                }
            }
            _ => None,
        };
        if let (Some(c), Some(set)) = (by_resource, by_action.as_mut()) {
            set.retain(|x| *x == c);
        }
        let group = match (by_action, by_resource) {
            (Some(set), _) if set.len() == 1 => set.into_iter().next(),
            (None, Some(c)) => Some(c),
            _ => None,
        };
        out.entry(group).or_default().insert(p.id().clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Generated policies are not validated at load (see `load`), so this proves they
    /// validate: on the example organisation, every generated policy passes Cedar's strict
    /// validator against the full schema.
    #[test]
    fn generated_policies_validate_against_the_schema() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/acme");
        let inv = Inventory::load(&dir).unwrap();
        let schema = crate::schema::schema_for(&inv, None).unwrap();
        let made = generated(&inv).unwrap();
        assert!(
            made.iter()
                .any(|(p, _, _)| p.id().to_string().starts_with(APPROVAL_PREFIX)),
            "the example has approval rules, so their generated policies are covered"
        );
        let set = PolicySet::from_policies(made.into_iter().map(|(p, _, _)| p)).unwrap();
        let result = Validator::new(schema).validate(&set, ValidationMode::Strict);
        let errors: Vec<String> = result.validation_errors().map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{errors:?}");
    }
}
