//! The engine: schema, policies, entity store and slices, built once per inventory load.
//!
//! ## Slicing
//!
//! Cedar evaluates every policy of the set it is given (≈0.7 µs each), so a decision hands
//! `is_authorized` only the policies whose *scope* can match the request. At load, each
//! policy's scope is classified against every tool:
//!
//! - action: `action` (any), `== Action::"c.t"`, `in Action::"<effect group>"` or a list;
//!   exact, since tool actions have no parents other than their effect groups;
//! - resource: `== Tool::"c.t"`, `in Connector::"c"`, `is Tool`, …; exact, since a tool's
//!   only ancestor is its connector;
//! - principal: `== Agent::"a"` (or `in Agent::"a"`) makes the policy agent-specific;
//!   any other principal scope applies to every agent (agents have no parents, so
//!   `principal in Group::"g"` could never match; such policies are dropped from tool slices).
//!
//! Each tool keeps a generic slice (policies for any agent) and, for agents named by
//! agent-specific policies, a per-agent slice of those; agent-specific policies for every
//! tool (`principal == Agent::"a", action, resource`) live in one slice per agent. A decision
//! evaluates at most these three ready-made `PolicySet`s and merges the answers exactly as
//! Cedar would (forbid wins; the determining permits are the union): policies are evaluated
//! independently, so splitting a set changes nothing. Nothing is built per request except the
//! request and its context. Tools with the same slice share one `PolicySet` (most tools of
//! an organisation do). The unsliced set remains available
//! ([`PolicyEngine::decide_unsliced`]) and a test proves both agree.
//!
//! ## Soundness of [`PolicyEngine::could_allow`]
//!
//! Policies whose conditions do not read `context` are evaluated exactly (entities are
//! known). Policies that read `context` (arguments, taint, time, delegation) are treated as
//! "may or may not apply". `Never` is returned only when a context-free forbid applies, or
//! when no context-free permit applies and no context-dependent permit exists.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use cedar_policy::{ActionConstraint, Entities, PrincipalConstraint, ResourceConstraint};
use cedar_policy::{
    Authorizer, Context, Decision as CedarDecision, EntityUid, PolicyId, PolicySet,
    RestrictedExpression, Schema,
};
use warden_core::model::{ArgSpec, ArgType};
use warden_core::{Inventory, PolicyFile, ToolRef};

use crate::policies::{self, ApprovalTerms, PolicyMeta};
use crate::schema::{self, EFFECT_GROUPS, HANDOFF, RESOURCES_READ, uid};
use crate::{
    ApprovalRequirement, Decision, HandoffRequest, Outcome, PolicyError, PolicyRef, Reachability,
    Request, SessionState, UtcTime,
};

#[derive(Debug)]
struct AgentInfo {
    uid: EntityUid,
    file: std::path::PathBuf,
    line: u64,
}

#[derive(Debug)]
pub(crate) struct ToolInfo {
    action: EntityUid,
    resource: EntityUid,
    pub(crate) args: BTreeMap<String, ArgSpec>,
    /// Policies for any agent.
    generic: Arc<PolicySet>,
    /// Agent-specific policies for this tool (without the generic ones).
    by_agent: HashMap<String, Arc<PolicySet>>,
    /// Decisions of the agents whose policies for this tool never read the context: with
    /// the entities fixed for the engine's lifetime, Cedar's answer for such a pair is the
    /// same on every call, so it is evaluated once. None: some policy reads the context (the
    /// arguments, the session, the delegation, the time), so every call is evaluated.
    constant: std::sync::RwLock<HashMap<String, Option<Arc<Decision>>>>,
}

/// Built once per inventory load; immutable, `Send + Sync`, cheap to share in an `Arc`.
pub struct PolicyEngine {
    schema: Schema,
    entities: Entities,
    authorizer: Authorizer,
    all: PolicySet,
    meta: HashMap<PolicyId, PolicyMeta>,
    agents: HashMap<String, AgentInfo>,
    pub(crate) tools: HashMap<ToolRef, ToolInfo>,
    handoff: PolicySet,
    resources_read: PolicySet,
    resources: HashMap<String, EntityUid>,
    approval_gated: BTreeSet<String>,
    /// Agent-specific policies whose scope covers every tool.
    agent_wide: HashMap<String, PolicySet>,
    empty: PolicySet,
}

impl std::fmt::Debug for PolicyEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyEngine")
            .field("policies", &self.meta.len())
            .field("agents", &self.agents.len())
            .field("tools", &self.tools.len())
            .finish()
    }
}

/// How a policy's principal scope relates to agents.
enum PrincipalScope {
    AnyAgent,
    Agent(String),
    NoAgent,
}

fn principal_scope(c: PrincipalConstraint) -> PrincipalScope {
    let agent_of = |u: &EntityUid| {
        if u.type_name().to_string() == "Agent" {
            PrincipalScope::Agent(u.id().unescaped().to_string())
        } else {
            PrincipalScope::NoAgent
        }
    };
    match c {
        PrincipalConstraint::Any => PrincipalScope::AnyAgent,
        PrincipalConstraint::Is(t) => {
            if t.to_string() == "Agent" {
                PrincipalScope::AnyAgent
            } else {
                PrincipalScope::NoAgent
            }
        }
        PrincipalConstraint::Eq(u) | PrincipalConstraint::In(u) => agent_of(&u),
        PrincipalConstraint::IsIn(t, u) => {
            if t.to_string() == "Agent" {
                agent_of(&u)
            } else {
                PrincipalScope::NoAgent
            }
        }
    }
}

/// Whether an action scope can match `action` (whose parents are `groups`).
fn action_matches(c: &ActionConstraint, action: &EntityUid, groups: &[EntityUid]) -> bool {
    match c {
        ActionConstraint::Any => true,
        ActionConstraint::Eq(u) => u == action,
        ActionConstraint::In(list) => list.iter().any(|u| u == action || groups.contains(u)),
    }
}

/// Whether a resource scope can match a tool resource (whose only parent is `connector`).
fn resource_matches_tool(c: &ResourceConstraint, tool: &EntityUid, connector: &EntityUid) -> bool {
    let is_tool = |t: &cedar_policy::EntityTypeName| t.to_string() == "Tool";
    match c {
        ResourceConstraint::Any => true,
        ResourceConstraint::Eq(u) => u == tool,
        ResourceConstraint::In(u) => u == tool || u == connector,
        ResourceConstraint::Is(t) => is_tool(t),
        ResourceConstraint::IsIn(t, u) => is_tool(t) && (u == tool || u == connector),
    }
}

/// An agent-specific scope that covers every tool: any action, any tool resource.
fn is_tool_wide(ac: &ActionConstraint, rc: &ResourceConstraint) -> bool {
    matches!(ac, ActionConstraint::Any)
        && match rc {
            ResourceConstraint::Any => true,
            ResourceConstraint::Is(t) => t.to_string() == "Tool",
            _ => false,
        }
}

/// Policy sets shared between tools: most tools of an organisation have the same slice
/// (the same few policies), and building a `PolicySet` copies every policy in it.
#[derive(Default)]
struct SharedSlices(HashMap<Vec<PolicyId>, Arc<PolicySet>>);

impl SharedSlices {
    fn get(&mut self, policies: &[&cedar_policy::Policy]) -> Result<Arc<PolicySet>, PolicyError> {
        let key: Vec<PolicyId> = policies.iter().map(|p| p.id().clone()).collect();
        if let Some(s) = self.0.get(&key) {
            return Ok(s.clone());
        }
        let s = Arc::new(set_of(policies)?);
        self.0.insert(key, s.clone());
        Ok(s)
    }
}

fn set_of(policies: &[&cedar_policy::Policy]) -> Result<PolicySet, PolicyError> {
    PolicySet::from_policies(policies.iter().map(|p| (*p).clone()))
        .map_err(|e| PolicyError::Inventory(e.to_string()))
}

fn session_expr(s: &SessionState) -> RestrictedExpression {
    rec(vec![
        ("tainted", RestrictedExpression::new_bool(s.tainted)),
        (
            "taint_sources",
            RestrictedExpression::new_set(
                s.taint_sources
                    .iter()
                    .map(|t| RestrictedExpression::new_string(t.clone())),
            ),
        ),
    ])
}

fn rec(pairs: Vec<(&str, RestrictedExpression)>) -> RestrictedExpression {
    // Keys are distinct literals here; `new_record` only fails on duplicates.
    RestrictedExpression::new_record(pairs.into_iter().map(|(k, v)| (k.to_string(), v)))
        .unwrap_or_else(|_| unreachable!("duplicate record key"))
}

fn delegation_expr(chain: &[String], root: Option<&str>) -> RestrictedExpression {
    rec(vec![
        ("depth", RestrictedExpression::new_long(chain.len() as i64)),
        (
            "chain",
            RestrictedExpression::new_set(
                chain
                    .iter()
                    .map(|a| RestrictedExpression::new_entity_uid(uid("Agent", a))),
            ),
        ),
        (
            "root",
            RestrictedExpression::new_string(root.unwrap_or("").to_string()),
        ),
    ])
}

fn time_expr(t: UtcTime) -> RestrictedExpression {
    rec(vec![
        ("hour", RestrictedExpression::new_long(t.hour())),
        ("weekday", RestrictedExpression::new_long(t.weekday())),
        ("epoch", RestrictedExpression::new_long(t.epoch)),
    ])
}

/// Converts the call's arguments to `context.args`; `Err` is a deny reason.
/// Returns the record and the names of undeclared arguments that were left out.
pub(crate) fn args_record(
    specs: &BTreeMap<String, ArgSpec>,
    args: &serde_json::Value,
    tool: &ToolRef,
) -> Result<(RestrictedExpression, Vec<String>), String> {
    let mut fields = Vec::with_capacity(specs.len());
    let ignored = check_args(specs, args, tool, Some(&mut fields))?;
    let rec = RestrictedExpression::new_record(fields)
        .map_err(|e| format!("arguments of `{tool}`: {e}"))?;
    Ok((rec, ignored))
}

/// Checks a call's arguments against the tool's declared ones: a JSON object (or null),
/// every required argument present, every declared one of its type, value list and range.
/// Returns the undeclared argument names (sorted); pushes each declared argument's Cedar
/// value onto `fields` when given (None: only check, as the reused decisions do).
fn check_args(
    specs: &BTreeMap<String, ArgSpec>,
    args: &serde_json::Value,
    tool: &ToolRef,
    mut fields: Option<&mut Vec<(String, RestrictedExpression)>>,
) -> Result<Vec<String>, String> {
    let empty = serde_json::Map::new();
    let obj = match args {
        serde_json::Value::Object(m) => m,
        serde_json::Value::Null => &empty,
        _ => return Err(format!("arguments of `{tool}` must be a JSON object")),
    };
    let mut ignored: Vec<String> = obj
        .keys()
        .filter(|k| !specs.contains_key(*k))
        .cloned()
        .collect();
    ignored.sort();
    for (name, spec) in specs {
        let v = match obj.get(name) {
            None | Some(serde_json::Value::Null) => {
                if spec.required {
                    return Err(format!("missing required argument `{name}` of `{tool}`"));
                }
                continue;
            }
            Some(v) => v,
        };
        let e = match spec.ty {
            ArgType::String => {
                let s = v
                    .as_str()
                    .ok_or_else(|| format!("argument `{name}` of `{tool}` must be a string"))?;
                if !spec.one_of.is_empty() && !spec.one_of.iter().any(|x| x == s) {
                    return Err(format!(
                        "argument `{name}` of `{tool}` is `{s}`, not one of the declared values ({})",
                        spec.one_of.join(", ")
                    ));
                }
                fields
                    .is_some()
                    .then(|| RestrictedExpression::new_string(s.to_string()))
            }
            ArgType::Boolean => {
                let b = v
                    .as_bool()
                    .ok_or_else(|| format!("argument `{name}` of `{tool}` must be a boolean"))?;
                fields.is_some().then(|| RestrictedExpression::new_bool(b))
            }
            ArgType::Integer | ArgType::Number => {
                let n = match (v.as_i64(), v.as_f64()) {
                    (Some(n), _) => n,
                    (None, Some(f)) if f.fract() == 0.0 && f.abs() < 9.0e15 => f as i64,
                    (None, Some(f)) => {
                        return Err(format!(
                            "argument `{name}` of `{tool}` is {f}: Warden passes numbers to Cedar as whole numbers (Long) and denies fractional values"
                        ));
                    }
                    _ => {
                        return Err(format!("argument `{name}` of `{tool}` must be a number"));
                    }
                };
                if let Some(min) = spec.min
                    && (n as f64) < min
                {
                    return Err(format!(
                        "argument `{name}` of `{tool}` is {n}, below the declared minimum {min}"
                    ));
                }
                if let Some(max) = spec.max
                    && (n as f64) > max
                {
                    return Err(format!(
                        "argument `{name}` of `{tool}` is {n}, above the declared maximum {max}"
                    ));
                }
                fields.is_some().then(|| RestrictedExpression::new_long(n))
            }
        };
        if let (Some(fields), Some(e)) = (fields.as_deref_mut(), e) {
            fields.push((name.clone(), e));
        }
    }
    Ok(ignored)
}

fn context(pairs: Vec<(&str, RestrictedExpression)>) -> Result<Context, String> {
    Context::from_pairs(pairs.into_iter().map(|(k, v)| (k.to_string(), v)))
        .map_err(|e| format!("context: {e}"))
}

impl PolicyEngine {
    /// Generates the schema, parses and validates every policy (`inv.policies` plus the
    /// generated ones), builds the entity store and the per-tool policy slices.
    pub fn load(inv: &Inventory) -> Result<PolicyEngine, PolicyError> {
        Self::load_with_policies(inv, &inv.policies)
    }

    /// Like [`PolicyEngine::load`] with other policy files (what-if comparisons).
    pub fn load_with_policies(
        inv: &Inventory,
        files: &[PolicyFile],
    ) -> Result<PolicyEngine, PolicyError> {
        let schema = schema::schema_for(inv, None)?;
        let loaded = policies::load(inv, files, &schema)?;
        let entities = schema::entities(inv, &schema)?;
        let all = set_of(&loaded.policies.iter().collect::<Vec<_>>())?;

        let mut scopes = Vec::new();
        for p in &loaded.policies {
            scopes.push((
                p,
                principal_scope(p.principal_constraint()),
                p.action_constraint(),
                p.resource_constraint(),
            ));
        }

        let agents = inv
            .agents
            .values()
            .map(|a| {
                let loc = a.loc(&a.id);
                (
                    a.id.value.clone(),
                    AgentInfo {
                        uid: uid("Agent", &a.id.value),
                        file: loc.file,
                        line: loc.line,
                    },
                )
            })
            .collect();

        let group_uids: HashMap<&str, EntityUid> = EFFECT_GROUPS
            .iter()
            .map(|g| (*g, uid("Action", g)))
            .collect();
        let mut tools = HashMap::new();
        let mut approval_gated = BTreeSet::new();
        let mut slices = SharedSlices::default();
        for (r, _c, tool) in inv.all_tools() {
            let name = r.qualified();
            let action = uid("Action", &name);
            let resource = uid("Tool", &name);
            let connector = uid("Connector", &r.connector);
            let groups: Vec<EntityUid> = schema::tool_groups(tool)
                .iter()
                .map(|g| group_uids[g].clone())
                .collect();
            let mut generic = Vec::new();
            let mut specific: BTreeMap<&str, Vec<&cedar_policy::Policy>> = BTreeMap::new();
            for (p, ps, ac, rc) in &scopes {
                if !action_matches(ac, &action, &groups)
                    || !resource_matches_tool(rc, &resource, &connector)
                {
                    continue;
                }
                match ps {
                    PrincipalScope::AnyAgent => generic.push(*p),
                    PrincipalScope::Agent(_) if is_tool_wide(ac, rc) => {}
                    PrincipalScope::Agent(a) => specific.entry(a.as_str()).or_default().push(*p),
                    PrincipalScope::NoAgent => continue,
                }
                let m = &loaded.meta[p.id()];
                if m.approval.is_some() {
                    // A generated approval permit names its rule in the tool's attribute
                    // instead of its scope: gated only where that rule matches.
                    let gated = match p
                        .id()
                        .to_string()
                        .strip_prefix(crate::policies::APPROVAL_PREFIX)
                    {
                        Some(rid) => inv.approvals.iter().any(|rule| {
                            rule.id.value == rid
                                && warden_core::inventory::approval_matches(&rule.when, &r, tool)
                        }),
                        None => true,
                    };
                    if gated {
                        approval_gated.insert(name.clone());
                    }
                }
            }
            let mut by_agent = HashMap::new();
            for (a, ps) in specific {
                by_agent.insert(a.to_string(), slices.get(&ps)?);
            }
            tools.insert(
                r.clone(),
                ToolInfo {
                    action,
                    resource,
                    args: tool.args.clone(),
                    generic: slices.get(&generic)?,
                    by_agent,
                    constant: Default::default(),
                },
            );
        }

        let mut wide: BTreeMap<&str, Vec<&cedar_policy::Policy>> = BTreeMap::new();
        for (p, ps, ac, rc) in &scopes {
            if let PrincipalScope::Agent(a) = ps
                && is_tool_wide(ac, rc)
            {
                wide.entry(a.as_str()).or_default().push(*p);
                if loaded.meta[p.id()].approval.is_some() {
                    approval_gated.extend(tools.keys().map(|t: &ToolRef| t.qualified()));
                }
            }
        }
        let mut agent_wide = HashMap::new();
        for (a, ps) in wide {
            agent_wide.insert(a.to_string(), set_of(&ps)?);
        }

        let only_action = |id: &str| -> Result<PolicySet, PolicyError> {
            let a = uid("Action", id);
            let v: Vec<&cedar_policy::Policy> = scopes
                .iter()
                .filter(|(_, _, ac, _)| action_matches(ac, &a, &[]))
                .map(|(p, ..)| *p)
                .collect();
            set_of(&v)
        };
        let handoff = only_action(HANDOFF)?;
        let resources_read = only_action(RESOURCES_READ)?;
        let resources = inv
            .resources
            .keys()
            .map(|k| (k.clone(), uid("Resource", k)))
            .collect();

        Ok(PolicyEngine {
            schema,
            entities,
            authorizer: Authorizer::new(),
            all,
            meta: loaded.meta,
            agents,
            tools,
            handoff,
            resources_read,
            resources,
            approval_gated,
            agent_wide,
            empty: PolicySet::new(),
        })
    }

    /// Decides one tool call, evaluating only the policies that can apply to it.
    pub fn decide(&self, req: &Request) -> Decision {
        self.decide_inner(req, true)
    }

    /// The decision [`PolicyEngine::decide`] gives this call, shared instead of evaluated,
    /// when it is known to be the same for every call of the pair: `agent`'s policies for
    /// `tool` read no context and the pair was decided before. The arguments are still
    /// checked against the tool's declared ones on every call. None (call `decide`) when the
    /// pair is not known to be constant, or the arguments are invalid or include undeclared
    /// ones (`decide` explains the deny or lists them in `ignored_args`).
    ///
    /// The gateway's per-call path: no [`Request`] is built and no Cedar value either.
    pub fn decide_reused(
        &self,
        agent: &str,
        tool: &ToolRef,
        args: &serde_json::Value,
    ) -> Option<Arc<Decision>> {
        let info = self.tools.get(tool)?;
        let known = info.constant.read().unwrap().get(agent)?.clone()?;
        match check_args(&info.args, args, tool, None) {
            Ok(ignored) if ignored.is_empty() => Some(known),
            _ => None,
        }
    }

    /// Decides one tool call against the whole policy set (for tests and benchmarks proving
    /// that slicing changes nothing).
    pub fn decide_unsliced(&self, req: &Request) -> Decision {
        self.decide_inner(req, false)
    }

    fn decide_inner(&self, req: &Request, sliced: bool) -> Decision {
        let Some(agent) = self.agents.get(&req.agent) else {
            return Decision::deny_precheck(format!(
                "unknown agent `{}` (not in the inventory)",
                req.agent
            ));
        };
        let Some(tool) = self.tools.get(&req.tool) else {
            return Decision::deny_precheck(format!(
                "unknown tool `{}` (not declared by any connector in the inventory)",
                req.tool
            ));
        };
        // Whether this pair was classified already (its decision reusable or not).
        let mut classified = false;
        if sliced && let Some(known) = tool.constant.read().unwrap().get(&req.agent) {
            if let Some(d) = known {
                // The arguments are checked all the same; no Cedar value is built.
                return match check_args(&tool.args, &req.args, &req.tool, None) {
                    Ok(ignored) => {
                        let mut d = Decision::clone(d);
                        d.ignored_args = ignored;
                        d
                    }
                    Err(reason) => Decision::deny_precheck(reason),
                };
            }
            classified = true;
        }
        let (args, ignored) = match args_record(&tool.args, &req.args, &req.tool) {
            Ok(x) => x,
            Err(reason) => return Decision::deny_precheck(reason),
        };
        let ctx = match context(vec![
            ("args", args),
            ("session", session_expr(&req.session)),
            (
                "delegation",
                delegation_expr(&req.delegation_chain, req.root_human.as_deref()),
            ),
            ("time", time_expr(req.time)),
        ]) {
            Ok(c) => c,
            Err(e) => return Decision::deny_precheck(e),
        };
        let sets: Vec<&PolicySet> = if sliced {
            self.slices(&req.agent, tool)
        } else {
            vec![&self.all]
        };
        let mut d = self.evaluate(
            agent.uid.clone(),
            tool.action.clone(),
            tool.resource.clone(),
            ctx,
            &sets,
            Some(agent),
            &format!("agent `{}` to call `{}`", req.agent, req.tool),
        );
        if sliced && !classified {
            // Once per pair: the pairs that read the context take no write lock per call.
            let reads_context = sets
                .iter()
                .flat_map(|s| s.policies())
                .any(|p| self.meta.get(p.id()).is_none_or(|m| m.context.any()));
            tool.constant.write().unwrap().insert(
                req.agent.clone(),
                (!reads_context).then(|| Arc::new(d.clone())),
            );
        }
        d.ignored_args = ignored;
        d
    }

    /// Decides one handoff (`Action::"handoff"`, principal the sender, resource the receiver).
    pub fn decide_handoff(&self, req: &HandoffRequest) -> Decision {
        let (Some(from), Some(to)) = (self.agents.get(&req.from), self.agents.get(&req.to)) else {
            return Decision::deny_precheck(format!(
                "handoff `{}` → `{}` names an agent that is not in the inventory",
                req.from, req.to
            ));
        };
        let ctx = match context(vec![
            (
                "keys",
                RestrictedExpression::new_set(
                    req.context_keys
                        .iter()
                        .map(|k| RestrictedExpression::new_string(k.clone())),
                ),
            ),
            ("session", session_expr(&req.session)),
            (
                "delegation",
                delegation_expr(&req.delegation_chain, req.root_human.as_deref()),
            ),
            ("time", time_expr(req.time)),
        ]) {
            Ok(c) => c,
            Err(e) => return Decision::deny_precheck(e),
        };
        self.evaluate(
            from.uid.clone(),
            uid("Action", HANDOFF),
            to.uid.clone(),
            ctx,
            &[&self.handoff],
            Some(from),
            &format!("handoff from `{}` to `{}`", req.from, req.to),
        )
    }

    /// Decides an MCP `resources/read` of an inventory resource.
    pub fn decide_resource_read(
        &self,
        agent: &str,
        resource: &str,
        uri: &str,
        session: &SessionState,
        delegation_chain: &[String],
        time: UtcTime,
    ) -> Decision {
        let (Some(a), Some(r)) = (self.agents.get(agent), self.resources.get(resource)) else {
            return Decision::deny_precheck(format!(
                "`resources/read` of `{resource}` by `{agent}`: unknown agent or resource"
            ));
        };
        let ctx = match context(vec![
            ("uri", RestrictedExpression::new_string(uri.to_string())),
            ("session", session_expr(session)),
            ("delegation", delegation_expr(delegation_chain, None)),
            ("time", time_expr(time)),
        ]) {
            Ok(c) => c,
            Err(e) => return Decision::deny_precheck(e),
        };
        self.evaluate(
            a.uid.clone(),
            uid("Action", RESOURCES_READ),
            r.clone(),
            ctx,
            &[&self.resources_read],
            Some(a),
            &format!("agent `{agent}` to read `{resource}`"),
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn evaluate(
        &self,
        principal: EntityUid,
        action: EntityUid,
        resource: EntityUid,
        ctx: Context,
        sets: &[&PolicySet],
        agent: Option<&AgentInfo>,
        what: &str,
    ) -> Decision {
        let request = match cedar_policy::Request::new(principal, action, resource, ctx, None) {
            Ok(r) => r,
            Err(e) => return Decision::deny_precheck(format!("request: {e}")),
        };
        let mut errors = Vec::new();
        let mut failed_forbids: Vec<PolicyId> = Vec::new();
        let mut failed_notes = Vec::new();
        let mut forbids: Vec<PolicyId> = Vec::new();
        let mut permits: Vec<PolicyId> = Vec::new();
        for set in sets {
            if set.is_empty() {
                continue;
            }
            let resp = self.authorizer.is_authorized(&request, set, &self.entities);
            for e in resp.diagnostics().errors() {
                let cedar_policy::AuthorizationError::PolicyEvaluationError(pe) = e;
                let id = pe.policy_id();
                errors.push(format!("{id}: {e}"));
                if self.meta.get(id).is_some_and(|m| m.is_forbid()) {
                    failed_forbids.push(id.clone());
                    failed_notes.push(format!(
                        "forbid `{id}` could not be evaluated; failing closed"
                    ));
                }
            }
            // A Deny's reasons are the satisfied forbids; an Allow's the satisfied permits.
            match resp.decision() {
                CedarDecision::Deny => forbids.extend(resp.diagnostics().reason().cloned()),
                CedarDecision::Allow => permits.extend(resp.diagnostics().reason().cloned()),
            }
        }
        let reason_ids: Vec<&PolicyId> = permits.iter().collect();
        let (outcome, ids): (Outcome, Vec<&PolicyId>) =
            if !forbids.is_empty() || !failed_forbids.is_empty() {
                let mut ids: Vec<&PolicyId> = forbids.iter().collect();
                ids.extend(failed_forbids.iter());
                (Outcome::Deny, ids)
            } else if permits.is_empty() {
                (Outcome::Deny, Vec::new())
            } else {
                {
                    let terms: Vec<(&PolicyId, &ApprovalTerms)> = reason_ids
                        .iter()
                        .filter_map(|id| {
                            self.meta
                                .get(*id)
                                .and_then(|m| m.approval.as_ref())
                                .map(|t| (*id, t))
                        })
                        .collect();
                    if terms.is_empty() {
                        (Outcome::Allow, reason_ids)
                    } else {
                        (Outcome::NeedsApproval(combine(&terms)), reason_ids)
                    }
                }
            };
        let mut policies: Vec<PolicyRef> = ids
            .iter()
            .filter_map(|id| self.meta.get(*id))
            .map(|m| self.located(m, agent))
            .collect();
        policies.sort_by(|a, b| {
            (a.generated, &a.file, a.line, &a.id).cmp(&(b.generated, &b.file, b.line, &b.id))
        });
        policies.dedup_by(|a, b| a.id == b.id);
        let mut reasons: Vec<String> = policies
            .iter()
            .map(|p| match &p.reason {
                Some(r) => r.clone(),
                None => format!(
                    "{} by policy `{}`",
                    if p.effect == "forbid" {
                        "forbidden"
                    } else {
                        "permitted"
                    },
                    p.id
                ),
            })
            .collect();
        if outcome == Outcome::Deny && policies.is_empty() {
            reasons.push(format!("no policy permits {what} (default deny)"));
        }
        reasons.extend(failed_notes);
        Decision {
            outcome,
            policies,
            reasons,
            ignored_args: Vec::new(),
            errors,
        }
    }

    /// Generated entitlement policies point at the agent's declaration.
    fn located(&self, m: &PolicyMeta, agent: Option<&AgentInfo>) -> PolicyRef {
        let mut p = m.pref.clone();
        if (p.id == policies::ENTITLEMENT || p.id == policies::NOT_ENTITLED)
            && let Some(a) = agent
        {
            p.file = a.file.clone();
            p.line = a.line;
        }
        p
    }

    /// Whether some arguments, session state, time or delegation could make the call allowed
    /// or need approval. Sound: `Never` only when nothing could (see the module docs).
    pub fn could_allow(&self, agent: &str, tool: &ToolRef) -> Reachability {
        let (Some(a), Some(t)) = (self.agents.get(agent), self.tools.get(tool)) else {
            return Reachability::Never;
        };
        let mut context_free = Vec::new();
        let mut cd_forbid = false;
        let mut cd_permit = false;
        let mut cd_approval = false;
        for p in self.slices(agent, t).into_iter().flat_map(|s| s.policies()) {
            let m = &self.meta[p.id()];
            if m.context.any() {
                if m.is_forbid() {
                    cd_forbid = true;
                } else {
                    cd_permit = true;
                    cd_approval |= m.approval.is_some();
                }
            } else {
                context_free.push(p);
            }
        }
        let Ok(cf) = set_of(&context_free) else {
            return Reachability::Conditional {
                may_need_approval: true,
            };
        };
        let request = match cedar_policy::Request::new(
            a.uid.clone(),
            t.action.clone(),
            t.resource.clone(),
            Context::empty(),
            None,
        ) {
            Ok(r) => r,
            Err(_) => {
                return Reachability::Conditional {
                    may_need_approval: true,
                };
            }
        };
        let resp = self.authorizer.is_authorized(&request, &cf, &self.entities);
        let forbid_failed = resp.diagnostics().errors().any(|e| {
            let cedar_policy::AuthorizationError::PolicyEvaluationError(pe) = e;
            self.meta.get(pe.policy_id()).is_some_and(|m| m.is_forbid())
        });
        let cf_permits: Vec<&PolicyId> = match resp.decision() {
            CedarDecision::Deny => {
                if resp.diagnostics().reason().next().is_some() {
                    return Reachability::Never;
                }
                Vec::new()
            }
            CedarDecision::Allow => resp.diagnostics().reason().collect(),
        };
        if forbid_failed {
            return Reachability::Never;
        }
        if cf_permits.is_empty() && !cd_permit {
            return Reachability::Never;
        }
        let cf_terms: Vec<(&PolicyId, &ApprovalTerms)> = cf_permits
            .iter()
            .filter_map(|id| {
                self.meta
                    .get(*id)
                    .and_then(|m| m.approval.as_ref())
                    .map(|t| (*id, t))
            })
            .collect();
        if cd_forbid || cf_permits.is_empty() {
            return Reachability::Conditional {
                may_need_approval: !cf_terms.is_empty() || cd_approval,
            };
        }
        if !cf_terms.is_empty() {
            return Reachability::NeedsApproval {
                approvers: combine(&cf_terms).approvers,
            };
        }
        if cd_approval {
            Reachability::Conditional {
                may_need_approval: true,
            }
        } else {
            Reachability::Always
        }
    }

    /// Tools (`connector.tool`) that some `@approval`-annotated permit can apply to, by scope
    /// (its conditions may still make it apply only to some calls).
    pub fn approval_gated_tools(&self) -> BTreeSet<String> {
        self.approval_gated.clone()
    }

    /// The parsed schema (for tools that validate their own policies against it).
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// Every policy (user and generated), sorted by file and line.
    pub fn policies(&self) -> Vec<PolicyRef> {
        let mut v: Vec<PolicyRef> = self.meta.values().map(|m| m.pref.clone()).collect();
        v.sort_by(|a, b| {
            (a.generated, &a.file, a.line, &a.id).cmp(&(b.generated, &b.file, b.line, &b.id))
        });
        v
    }

    /// How many policies a decision for (agent, tool) evaluates after slicing.
    pub fn slice_len(&self, agent: &str, tool: &ToolRef) -> usize {
        self.tools
            .get(tool)
            .map(|t| {
                self.slices(agent, t)
                    .iter()
                    .map(|s| s.num_of_policies())
                    .sum()
            })
            .unwrap_or(0)
    }

    /// The policy sets a decision for `agent` on `tool` evaluates.
    fn slices<'a>(&'a self, agent: &str, tool: &'a ToolInfo) -> Vec<&'a PolicySet> {
        vec![
            &tool.generic,
            tool.by_agent
                .get(agent)
                .map(|s| &**s)
                .unwrap_or(&self.empty),
            self.agent_wide.get(agent).unwrap_or(&self.empty),
        ]
    }

    /// Integer and string literals of the context-dependent policies that can apply to a
    /// tool (for what-if probing).
    pub(crate) fn literals(&self, tool: &ToolRef) -> (BTreeSet<i64>, BTreeSet<String>) {
        let mut ints = BTreeSet::new();
        let mut strs = BTreeSet::new();
        if let Some(t) = self.tools.get(tool) {
            let sets = std::iter::once(&*t.generic)
                .chain(t.by_agent.values().map(|s| &**s))
                .chain(self.agent_wide.values());
            for s in sets {
                for p in s.policies() {
                    let m = &self.meta[p.id()];
                    ints.extend(m.int_literals.iter().copied());
                    strs.extend(m.str_literals.iter().cloned());
                }
            }
        }
        (ints, strs)
    }
}

/// Several approval permits: union of approvers, max count, min TTL, SoD if any asks.
fn combine(terms: &[(&PolicyId, &ApprovalTerms)]) -> ApprovalRequirement {
    let mut approvers = BTreeSet::new();
    let mut rules = BTreeSet::new();
    let mut policies = BTreeSet::new();
    let mut ttl: Option<u64> = None;
    let mut count = 1;
    let mut sod = false;
    for (id, t) in terms {
        approvers.extend(t.approvers.iter().cloned());
        if let Some(r) = &t.rule {
            rules.insert(r.clone());
        }
        policies.insert(id.to_string());
        ttl = match (ttl, t.ttl_seconds) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        count = count.max(t.approvals_required);
        sod |= t.separation_of_duties;
    }
    ApprovalRequirement {
        approvers: approvers.into_iter().collect(),
        ttl_seconds: ttl,
        approvals_required: count,
        separation_of_duties: sod,
        rules: rules.into_iter().collect(),
        policies: policies.into_iter().collect(),
    }
}
