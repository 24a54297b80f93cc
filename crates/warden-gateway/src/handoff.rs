//! Handoffs through the gateway (issue 9): the `warden.handoff` and `warden.context` MCP
//! tools, the delegation a receiving session acts under, and the periodic context sweep.
//!
//! - `warden.handoff` (sender A): Cedar `handoff` decision → [`warden_handoff::plan_handoff`]
//!   (allow-listed keys kept with provenance and taint, the rest dropped and named) → task and
//!   entries stored → a delegation token for B (a fresh biscuit rooted at A's owner, or A's own
//!   token attenuated when A itself acts under one: the chain grows and its depth limit holds)
//!   → a durable `handoff` audit record → the task id, kept/dropped keys, expiry and token.
//! - `warden.context` (receiver B): with the task id and the token, returns the live entries,
//!   taints B's session if any entry is tainted (`handoff:<task>`), and **binds the token to
//!   the session**: every later `tools/call` of that session is verified against the token
//!   (signature, holder, chain depth, expiry, and the tool in *every* hop's entitlements) and
//!   decided by Cedar as B acting for the chain (`delegation`, `root_human` from the token).
//! - A token can also travel per call in `params._meta["warden.dev/delegation"]` (it wins over
//!   the session's binding), for orchestrators that keep no session.
//!
//! The token is never stored (only its sha256, to tie it to its task) and never audited.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};
use warden_handoff::delegation::{self, DelegationClaims};
use warden_handoff::{DelegationKeys, HandoffError, Provenance, plan_handoff};
use warden_store::context::{HandoffTask, StoredEntry};
use warden_store::time::{now_ms, rfc3339};
use warden_store::{Store, StoreError};

use crate::decide::{CallDecision, HandoffCall, Outcome};
use crate::gateway::{Gateway, META_KEY, Principal, Session, ok};

/// The MCP tool a sender calls.
pub const HANDOFF_TOOL: &str = "warden.handoff";
/// The MCP tool a receiver calls.
pub const CONTEXT_TOOL: &str = "warden.context";
/// `params._meta` key carrying a delegation token on one call.
pub const DELEGATION_META: &str = "warden.dev/delegation";
/// Chain depth limit when neither the handoff (`max_depth`) nor
/// `settings.max_delegation_depth` names one.
pub const DEFAULT_MAX_DEPTH: u32 = 3;
/// How often the gateway purges expired context.
pub const SWEEP_EVERY: Duration = Duration::from_secs(30);

/// The gateway's tools every hop of a chain may use (they are governed by the handoff
/// declarations and Cedar, not by `uses:`).
const WARDEN_TOOLS: [&str; 2] = [HANDOFF_TOOL, CONTEXT_TOOL];

struct Binding {
    token: String,
    expires_ms: i64,
}

/// Handoff state: the store, Warden's delegation key, and which session acts under which
/// token.
pub struct Handoffs {
    store: Store,
    keys: DelegationKeys,
    bindings: Mutex<HashMap<String, Binding>>,
    /// Verified `(token sha256, holder, tool)` → claims, valid through the Unix second
    /// stated (confirmed by [`delegation::verify_until`]): repeated calls skip the
    /// signature and Datalog work. Bounded by [`VERIFIED_CACHE`].
    verified: Mutex<HashMap<VerifiedKey, (DelegationClaims, i64)>>,
    /// Revocation ids of revoked delegations (`warden handoff revoke`), refreshed from the
    /// store every [`REVOCATION_REFRESH`] (so every replica learns of a revocation).
    revoked: std::sync::RwLock<std::collections::HashSet<String>>,
}

/// How often the revoked delegations are re-read from the store.
pub const REVOCATION_REFRESH: Duration = Duration::from_secs(1);

/// `(token sha256, holder, tool)`.
type VerifiedKey = (String, String, String);

/// Most cached verifications kept.
const VERIFIED_CACHE: usize = 4096;

/// Why a delegated `tools/call` is refused, and (when the token itself is sound) for whom.
#[derive(Debug, Clone)]
pub struct DelegationRefusal {
    pub reason: String,
    pub principal: Option<Principal>,
}

/// Why a handoff or a context read was refused (already audited).
#[derive(Debug, Clone)]
pub struct Refusal {
    pub message: String,
    pub policies: Vec<String>,
    pub reasons: Vec<String>,
}

impl Refusal {
    fn new(policy: &str, reason: impl Into<String>) -> Refusal {
        let reason = reason.into();
        Refusal {
            message: reason.clone(),
            policies: vec![policy.to_string()],
            reasons: vec![reason],
        }
    }
}

impl Handoffs {
    /// Loads Warden's delegation key from the store (creating it on first start).
    pub async fn open(store: Store) -> Result<Arc<Handoffs>, StoreError> {
        let candidate = DelegationKeys::generate().private_hex();
        let hex_key = store.delegation_key(&candidate).await?;
        let keys = DelegationKeys::from_private_hex(&hex_key).map_err(|e| StoreError::Corrupt {
            seq: 0,
            message: format!("delegation key: {e}"),
        })?;
        let revoked = store.revoked_delegations().await?;
        Ok(Arc::new(Handoffs {
            store,
            keys,
            bindings: Mutex::new(HashMap::new()),
            verified: Mutex::new(HashMap::new()),
            revoked: std::sync::RwLock::new(revoked),
        }))
    }

    /// [`Handoffs::open`] plus the periodic sweep ([`SWEEP_EVERY`]).
    pub async fn start(store: Store) -> Result<Arc<Handoffs>, StoreError> {
        let h = Handoffs::open(store).await?;
        h.spawn_sweeper(SWEEP_EVERY);
        h.spawn_revocation_refresh(REVOCATION_REFRESH);
        Ok(h)
    }

    /// [`Handoffs::is_revoked`] as the refusal of a handoff or context read.
    fn refuse_revoked(&self, claims: &DelegationClaims) -> Result<(), Refusal> {
        if self.is_revoked(claims) {
            return Err(Refusal::new("delegation", revoked_reason(claims)));
        }
        Ok(())
    }

    /// Whether a token with these claims, or one it was handed on from, was revoked.
    pub fn is_revoked(&self, claims: &DelegationClaims) -> bool {
        let revoked = self.revoked.read().unwrap();
        !revoked.is_empty() && claims.revocation_ids.iter().any(|r| revoked.contains(r))
    }

    /// The public key (hex): enough to verify and attenuate tokens offline.
    pub fn public_key_hex(&self) -> String {
        self.keys.public_hex()
    }

    /// Runs `work` every `every` while the store is open and the handoffs are alive.
    fn spawn_every<F, Fut>(self: &Arc<Self>, every: Duration, work: F)
    where
        F: Fn(Arc<Handoffs>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send,
    {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let me = Arc::downgrade(self);
        rt.spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let Some(h) = me.upgrade() else { break };
                if h.store.pool().is_closed() {
                    break;
                }
                work(h).await;
            }
        });
    }

    /// Purges expired context (audited by the store) every `every`, and forgets bindings
    /// of expired tokens. Stops when the store closes.
    pub fn spawn_sweeper(self: &Arc<Self>, every: Duration) {
        self.spawn_every(every, |h| async move {
            let now = now_ms();
            if let Err(e) = h.store.purge_expired_context(now).await {
                eprintln!("warden: context purge failed: {e}");
            }
            h.bindings.lock().unwrap().retain(|_, b| b.expires_ms > now);
            h.verified
                .lock()
                .unwrap()
                .retain(|_, (_, until)| now / 1000 <= *until);
        });
    }

    /// Re-reads the revoked delegations every `every`. Stops when the store closes.
    pub fn spawn_revocation_refresh(self: &Arc<Self>, every: Duration) {
        self.spawn_every(every, |h| async move {
            match h.store.revoked_delegations().await {
                Ok(ids) => *h.revoked.write().unwrap() = ids,
                Err(e) => eprintln!("warden: reading revoked delegations failed: {e}"),
            }
        });
    }
}

/// Why a revoked delegation is refused.
fn revoked_reason(claims: &DelegationClaims) -> String {
    format!(
        "delegation: the delegation of task {} was revoked",
        claims.task_id
    )
}

fn sha256_hex(s: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(s.as_bytes()))
}

fn random_id(prefix: &str) -> String {
    let mut b = [0u8; 12];
    let _ = getrandom::fill(&mut b);
    format!("{prefix}{}", hex::encode(b))
}

fn entitled(gw: &Gateway, agent: &str) -> BTreeSet<String> {
    let inv = gw.inventory();
    let mut out: BTreeSet<String> = inv
        .agents
        .get(agent)
        .map(|a| {
            inv.entitled_tools(a)
                .into_iter()
                .map(|t| t.qualified())
                .collect()
        })
        .unwrap_or_default();
    out.extend(WARDEN_TOOLS.iter().map(|t| t.to_string()));
    out
}

/// The principal a verified token describes: its holder acting for everyone before it.
fn acting(who: &Principal, claims: &DelegationClaims) -> Principal {
    let mut chain = claims.chain.clone();
    chain.pop();
    Principal {
        agent: who.agent.clone(),
        token_id: who.token_id.clone(),
        delegation: chain,
        root_human: Some(claims.root_human.clone()),
    }
}

fn token_from_meta(params: &Value) -> Option<String> {
    params
        .pointer("/_meta")
        .and_then(|m| m.get(DELEGATION_META))
        .and_then(Value::as_str)
        .map(str::to_string)
}

impl Gateway {
    /// The delegation a `tools/call` acts under: `Ok(None)` for a direct call, the verified
    /// chain's principal, or an error when a token is present but does not allow this call
    /// now (expired, tampered, wrong holder, too deep, tool outside the intersection).
    pub fn delegated_principal(
        &self,
        who: &Principal,
        session: Option<&Arc<Session>>,
        params: &Value,
        tool: &str,
    ) -> Result<Option<Principal>, DelegationRefusal> {
        let Some(h) = self.handoffs() else {
            return Ok(None);
        };
        let token = token_from_meta(params).or_else(|| {
            session.and_then(|s| {
                h.bindings
                    .lock()
                    .unwrap()
                    .get(&s.id)
                    .map(|b| b.token.clone())
            })
        });
        let Some(token) = token else { return Ok(None) };
        let now = SystemTime::now();
        let now_s = delegation::unix_secs(now);
        let key = (sha256_hex(&token), who.agent.clone(), tool.to_string());
        let revoked = |claims: &DelegationClaims| DelegationRefusal {
            reason: revoked_reason(claims),
            principal: Some(acting(who, claims)),
        };
        if let Some((claims, until)) = h.verified.lock().unwrap().get(&key)
            && now_s <= *until
        {
            if h.is_revoked(claims) {
                return Err(revoked(claims));
            }
            return Ok(Some(acting(who, claims)));
        }
        let pk = h.keys.public_key();
        match delegation::verify_until(&token, &pk, &who.agent, tool, now) {
            Ok((claims, _)) if h.is_revoked(&claims) => Err(revoked(&claims)),
            Ok((claims, until)) => {
                let p = acting(who, &claims);
                if let Some(until) = until {
                    let mut cache = h.verified.lock().unwrap();
                    if cache.len() >= VERIFIED_CACHE {
                        cache.retain(|_, (_, u)| now_s <= *u);
                        if cache.len() >= VERIFIED_CACHE {
                            cache.clear();
                        }
                    }
                    cache.insert(key, (claims, until));
                }
                Ok(Some(p))
            }
            Err(e) => Err(DelegationRefusal {
                reason: format!("delegation: {e}"),
                // A sound token that merely does not cover this tool still names the chain
                // the refused call was made for (warden.context is in every hop's set).
                principal: delegation::verify(
                    &token,
                    &pk,
                    &who.agent,
                    CONTEXT_TOOL,
                    SystemTime::now(),
                )
                .ok()
                .map(|c| acting(who, &c)),
            }),
        }
    }

    /// Adds `warden.handoff` (agents that declare handoffs) and `warden.context` (agents
    /// some handoff names as receiver) to a `tools/list` answer.
    /// A session acting under a delegation sees only the tools the token still allows.
    pub fn handoff_tools(
        &self,
        who: &Principal,
        session: Option<&Arc<Session>>,
        tools: &mut Vec<Value>,
    ) {
        let Some(h) = self.handoffs() else {
            return;
        };
        let bound = session.is_some_and(|s| h.bindings.lock().unwrap().contains_key(&s.id));
        if bound {
            tools.retain(|t| {
                let name = t.get("name").and_then(Value::as_str).unwrap_or("");
                self.delegated_principal(who, session, &json!({}), name)
                    .is_ok()
            });
        }
        let inv = self.inventory();
        let targets: Vec<String> = inv
            .handoffs_from(&who.agent)
            .map(|h| h.to.value.clone())
            .collect();
        if !targets.is_empty() {
            tools.push(json!({
                "name": HANDOFF_TOOL,
                "title": "Hand a task to another agent",
                "description": format!(
                    "Hand a task to another agent through Warden. Only the context keys the inventory allows for that handoff travel (the others are dropped and listed); the receiver gets a delegation token that never allows more than you may do, and expires. Declared receivers: {}.",
                    targets.join(", ")
                ),
                "inputSchema": {
                    "type": "object",
                    "properties": {
                        "to": {"type": "string", "enum": targets, "description": "the receiving agent"},
                        "task": {"type": "string", "description": "what the receiver should do"},
                        "context": {"type": "object", "description": "context entries, key → JSON value", "additionalProperties": true},
                        "ttl_seconds": {"type": "integer", "minimum": 1, "description": "shorten the declared TTL (never lengthen it)"}
                    },
                    "required": ["to"]
                }
            }));
        }
        if inv.handoffs.iter().any(|h| h.to.value == who.agent) {
            tools.push(json!({
                "name": CONTEXT_TOOL,
                "title": "Read a handed-off task's context",
                "description": "Redeem a handoff: returns the task's context entries (with who wrote each and whether it is tainted) and makes this session act under the delegation token: later calls are allowed only within the intersection of your and the delegators' entitlements, until the token expires.",
                "inputSchema": {
                    "type": "object",
                    "properties": {
                        "task_id": {"type": "string"},
                        "token": {"type": "string", "description": "the delegation token returned by warden.handoff"}
                    },
                    "required": ["task_id", "token"]
                }
            }));
        }
    }

    /// Answers a `tools/call` of a `warden.*` tool.
    pub async fn warden_tool(
        &self,
        who: &Principal,
        session: Option<&Arc<Session>>,
        id: &Value,
        name: &str,
        params: &Value,
    ) -> Value {
        let args = params.get("arguments").cloned().unwrap_or(json!({}));
        let result = match name {
            HANDOFF_TOOL => {
                self.handoff(who, session, id, &args, token_from_meta(params))
                    .await
            }
            CONTEXT_TOOL => self.read_context(who, session, &args).await,
            _ => {
                let r = Refusal::new(
                    "default-deny",
                    format!(
                        "unknown tool `{name}`: Warden serves warden.handoff and warden.context"
                    ),
                );
                let mut ev = self.event("rejected", Some(who), session.map(|s| s.as_ref()));
                ev.method = Some("tools/call".into());
                ev.tool = Some(name.to_string());
                ev.decision = Some("deny".into());
                ev.reasons = r.reasons.clone();
                self.audit().append_nowait(&ev).await;
                Err(r)
            }
        };
        match result {
            Ok(v) => ok(
                id,
                json!({
                    "content": [{"type": "text", "text": serde_json::to_string_pretty(&v).unwrap_or_default()}],
                    "structuredContent": v,
                    "isError": false
                }),
            ),
            Err(r) => ok(
                id,
                json!({
                    "content": [{"type": "text", "text": format!("Warden refused {name}: {}", r.message)}],
                    "isError": true,
                    "_meta": {META_KEY: {"decision": "deny", "policies": r.policies, "reasons": r.reasons}}
                }),
            ),
        }
    }

    /// Hands a task from `who` to `args.to` (see the module docs). `parent`: a delegation
    /// token `who` holds (else the session's binding, else `who` acts for its owner).
    pub async fn handoff(
        &self,
        who: &Principal,
        session: Option<&Arc<Session>>,
        id: &Value,
        args: &Value,
        parent: Option<String>,
    ) -> Result<Value, Refusal> {
        let mut ev = self.event("handoff", Some(who), session.map(|s| s.as_ref()));
        ev.method = Some("tools/call".into());
        ev.tool = Some(HANDOFF_TOOL.into());
        let result = self
            .handoff_inner(who, session, id, args, parent, &mut ev)
            .await;
        match &result {
            Ok(_) => {
                ev.decision = Some("allow".into());
                ev.outcome = Some("handed_off".into());
                // Durable before the token leaves.
                if let Err(e) = self.audit().append(&ev).await {
                    return Err(Refusal::new(
                        "audit",
                        format!("the audit trail is unavailable, so the handoff was not made: {e}"),
                    ));
                }
            }
            Err(r) => {
                ev.decision = Some("deny".into());
                ev.outcome = Some("denied".into());
                ev.policies = r.policies.clone();
                ev.reasons = r.reasons.clone();
                if let Err(e) = self.audit().append(&ev).await {
                    eprintln!("warden: audit failed: {e}");
                }
            }
        }
        result
    }

    async fn handoff_inner(
        &self,
        who: &Principal,
        session: Option<&Arc<Session>>,
        id: &Value,
        args: &Value,
        parent: Option<String>,
        ev: &mut warden_store::AuditEvent,
    ) -> Result<Value, Refusal> {
        let Some(h) = self.handoffs() else {
            return Err(Refusal::new(
                "handoff",
                "handoffs are not enabled on this gateway",
            ));
        };
        let bad = |m: &str| Refusal::new("invalid-params", m.to_string());
        let to = args
            .get("to")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("`to` (the receiving agent) is required"))?
            .to_string();
        ev.detail.insert("to".into(), json!(to));
        let instructions = args
            .get("task")
            .or_else(|| args.get("instructions"))
            .and_then(Value::as_str)
            .map(str::to_string);
        let context: Map<String, Value> = match args.get("context") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m.clone(),
            Some(_) => return Err(bad("`context` must be an object of key → value")),
        };
        let ttl_cap = match args.get("ttl_seconds") {
            None | Some(Value::Null) => None,
            Some(v) => match v.as_u64() {
                Some(n) if n > 0 => Some(n),
                _ => return Err(bad("`ttl_seconds` must be a positive integer")),
            },
        };
        // The sender's own delegation, if it acts under one.
        let parent = parent.or_else(|| {
            session.and_then(|s| {
                h.bindings
                    .lock()
                    .unwrap()
                    .get(&s.id)
                    .map(|b| b.token.clone())
            })
        });
        let parent_claims = match &parent {
            Some(t) => Some(
                delegation::verify(
                    t,
                    &h.keys.public_key(),
                    &who.agent,
                    HANDOFF_TOOL,
                    SystemTime::now(),
                )
                .map_err(|e| Refusal::new("delegation", format!("delegation: {e}")))?,
            ),
            None => None,
        };
        if let Some(c) = &parent_claims {
            h.refuse_revoked(c)?;
        }
        let sender = match &parent_claims {
            Some(c) => acting(who, c),
            None => who.clone(),
        };
        ev.delegation = sender.delegation.clone();
        ev.root_human = sender.root_human.clone();
        let Some(root_human) = sender.root_human.clone() else {
            return Err(Refusal::new(
                "handoff-needs-owner",
                format!(
                    "agent `{}` has no owner: a handoff must be attributable to a human",
                    who.agent
                ),
            ));
        };
        let tainted = session.is_some_and(|s| s.tainted.load(std::sync::atomic::Ordering::Acquire));
        let sources = session
            .map(|s| s.taint_sources.lock().unwrap().clone())
            .unwrap_or_default();
        ev.tainted = Some(tainted);
        let keys: Vec<String> = context.keys().cloned().collect();
        // Policy: is this handoff allowed at all?
        let decision: CallDecision = self.decider().decide_handoff(&HandoffCall {
            from: &who.agent,
            to: &to,
            context_keys: &keys,
            delegation: &sender.delegation,
            root_human: Some(&root_human),
            session_tainted: tainted,
            taint_sources: &sources,
            time_ms: now_ms(),
        });
        ev.policies = decision.policies.clone();
        ev.reasons = decision.reasons.clone();
        let gate = self.approval_gate();
        if let (Outcome::NeedsApproval { .. }, Some(gate)) = (&decision.outcome, &gate) {
            // Held like a tool call: a human approves this exact handoff (receiver, keys,
            // values, instructions) as `warden.handoff`, once.
            let tr = warden_core::ToolRef {
                connector: "warden".into(),
                tool: "handoff".into(),
            };
            let request_id = self.next_request_id();
            ev.request = Some(request_id.clone());
            if let Err(reply) = gate
                .hold(
                    self,
                    who,
                    session,
                    id,
                    &tr,
                    args,
                    &decision,
                    &request_id,
                    None,
                    None,
                    ev,
                )
                .await
            {
                let message = reply
                    .pointer("/error/message")
                    .and_then(Value::as_str)
                    .unwrap_or("the approval did not allow this handoff")
                    .to_string();
                return Err(Refusal {
                    message: format!("handoff `{}` → `{to}` not approved: {message}", who.agent),
                    policies: decision.policies.clone(),
                    reasons: vec![message],
                });
            }
        } else if decision.outcome != Outcome::Allow {
            let mut reasons = decision.reasons.clone();
            if matches!(decision.outcome, Outcome::NeedsApproval { .. }) {
                reasons.insert(
                    0,
                    "a handoff that needs approval is refused (this gateway has no approval hold)"
                        .into(),
                );
            }
            let policies = if decision.policies.is_empty() {
                vec!["default-deny".to_string()]
            } else {
                decision.policies.clone()
            };
            return Err(Refusal {
                message: format!(
                    "handoff `{}` → `{to}` denied: {} (policy: {})",
                    who.agent,
                    reasons.join("; "),
                    policies.join(", ")
                ),
                policies,
                reasons,
            });
        }
        // The inventory's allow-list, provenance, taint and TTL.
        let now = now_ms();
        let now_s = now / 1000;
        let provenance = Provenance {
            session_tainted: tainted,
            ..Provenance::default()
        };
        let plan = plan_handoff(
            self.inventory(),
            &who.agent,
            &to,
            &context,
            &provenance,
            now_s,
        )
        .map_err(|e| {
            let policy = match e {
                HandoffError::Undeclared { .. } => "inventory.handoff-undeclared",
                _ => "handoff",
            };
            Refusal::new(policy, e.to_string())
        })?;
        // Never outlive the token this hop is attenuated from: its context would sit there
        // unreadable, and the new token would be refused anyway.
        let parent_expiry = parent_claims
            .as_ref()
            .and_then(|c| c.hops.iter().filter_map(|h| h.expires_at).min());
        let mut ttl_secs = ttl_cap.map_or(plan.ttl_secs, |c| c.min(plan.ttl_secs));
        if let Some(pe) = parent_expiry {
            ttl_secs = ttl_secs.min(pe.saturating_sub(now_s).max(0) as u64);
        }
        let expires_s = now_s + ttl_secs as i64;
        let expires_at = UNIX_EPOCH + Duration::from_secs(expires_s as u64);
        // Depth: the chain grows by one; the authority's limit and this hop's both hold.
        let depth = parent_claims.as_ref().map_or(0, |c| c.depth) + 1;
        let settings_limit = self
            .inventory()
            .settings
            .max_delegation_depth
            .unwrap_or(DEFAULT_MAX_DEPTH);
        let limit = [
            parent_claims.as_ref().map(|c| c.max_depth),
            plan.max_depth,
            Some(settings_limit),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(DEFAULT_MAX_DEPTH);
        if depth > limit {
            return Err(Refusal::new(
                "delegation-depth",
                HandoffError::TooDeep { depth, max: limit }.to_string(),
            ));
        }
        let task_id = random_id("task_");
        let to_tools = entitled(self, &to);
        let token = match &parent {
            Some(p) => delegation::attenuate(
                p,
                &h.keys.public_key(),
                &who.agent,
                &to,
                &to_tools,
                expires_at,
            ),
            None => delegation::issue(
                &h.keys,
                &task_id,
                &root_human,
                &who.agent,
                &entitled(self, &who.agent),
                expires_at,
                limit,
            )
            .and_then(|t| {
                delegation::attenuate(
                    &t,
                    &h.keys.public_key(),
                    &who.agent,
                    &to,
                    &to_tools,
                    expires_at,
                )
            }),
        }
        .map_err(|e| Refusal::new("delegation", format!("delegation: {e}")))?;
        let mut chain = sender.delegation.clone();
        chain.push(who.agent.clone());
        chain.push(to.clone());
        let token_id = random_id("dt_");
        let task = HandoffTask {
            id: task_id.clone(),
            from_agent: who.agent.clone(),
            to_agent: to.clone(),
            root_human: Some(root_human.clone()),
            chain: chain.clone(),
            instructions: instructions.clone(),
            created_ms: now,
            expires_ms: expires_s * 1000,
            token_id: token_id.clone(),
            token_hash: sha256_hex(&token),
            state: "open".into(),
        };
        let entries: Vec<StoredEntry> = plan
            .kept
            .iter()
            .map(|e| StoredEntry {
                key: e.key.clone(),
                value: e.value.clone(),
                written_by: e.written_by.clone(),
                tainted: e.tainted,
                taint_sources: if e.tainted {
                    sources.clone()
                } else {
                    Vec::new()
                },
                created_ms: now,
                expires_ms: expires_s * 1000,
            })
            .collect();
        h.store
            .insert_handoff(&task, &entries)
            .await
            .map_err(|e| Refusal::new("store", format!("the context store failed: {e}")))?;
        let revocation_id = delegation::own_revocation_id(&token, &h.keys.public_key())
            .map_err(|e| Refusal::new("delegation", format!("delegation: {e}")))?;
        h.store
            .record_handoff_revocation_id(&task_id, &revocation_id)
            .await
            .map_err(|e| Refusal::new("store", format!("the context store failed: {e}")))?;
        let kept: Vec<&str> = plan.kept.iter().map(|e| e.key.as_str()).collect();
        let expires_text = rfc3339(expires_s * 1000);
        for (k, v) in [
            ("task", json!(task_id)),
            ("from", json!(who.agent)),
            ("chain", json!(chain)),
            ("depth", json!(depth)),
            ("max_depth", json!(limit)),
            ("kept", json!(kept)),
            ("dropped", json!(plan.dropped)),
            ("ttl_seconds", json!(ttl_secs)),
            ("expires_at", json!(expires_text)),
            ("context_tainted", json!(plan.tainted)),
            ("delegation_token_id", json!(token_id)),
        ] {
            ev.detail.insert(k.into(), v);
        }
        if let Some(i) = &instructions {
            ev.detail.insert("instructions".into(), json!(i));
        }
        Ok(json!({
            "task_id": task_id,
            "from": who.agent,
            "to": to,
            "root_human": root_human,
            "chain": chain,
            "depth": depth,
            "max_depth": limit,
            "kept": kept,
            "dropped": plan.dropped,
            "tainted": plan.tainted,
            "ttl_seconds": ttl_secs,
            "expires_at": expires_text,
            "expires_at_unix": expires_s,
            "delegation_token_id": token_id,
            "delegation_token": token,
            "redeem": {
                "tool": CONTEXT_TOOL,
                "arguments": {"task_id": task_id, "token": "<delegation_token>"},
                "note": format!("`{to}` calls warden.context with these arguments in its own session; that session then acts for the chain")
            }
        }))
    }

    /// Returns a task's live context to its receiver and binds the delegation to the
    /// session (see the module docs).
    pub async fn read_context(
        &self,
        who: &Principal,
        session: Option<&Arc<Session>>,
        args: &Value,
    ) -> Result<Value, Refusal> {
        let mut ev = self.event("context_read", Some(who), session.map(|s| s.as_ref()));
        ev.method = Some("tools/call".into());
        ev.tool = Some(CONTEXT_TOOL.into());
        let result = self.read_context_inner(who, session, args, &mut ev).await;
        match &result {
            Ok(_) => {
                ev.decision = Some("allow".into());
                ev.outcome = Some("read".into());
            }
            Err(r) => {
                ev.decision = Some("deny".into());
                ev.outcome = Some("denied".into());
                ev.policies = r.policies.clone();
                ev.reasons = r.reasons.clone();
            }
        }
        if let Err(e) = self.audit().append(&ev).await {
            return Err(Refusal::new(
                "audit",
                format!("the audit trail is unavailable: {e}"),
            ));
        }
        result
    }

    async fn read_context_inner(
        &self,
        who: &Principal,
        session: Option<&Arc<Session>>,
        args: &Value,
        ev: &mut warden_store::AuditEvent,
    ) -> Result<Value, Refusal> {
        let Some(h) = self.handoffs() else {
            return Err(Refusal::new(
                "handoff",
                "handoffs are not enabled on this gateway",
            ));
        };
        let field = |k: &str| {
            args.get(k)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| Refusal::new("invalid-params", format!("`{k}` is required")))
        };
        let task_id = field("task_id")?;
        let token = field("token")?;
        ev.detail.insert("task".into(), json!(task_id));
        let now = now_ms();
        let (task, entries) = h
            .store
            .handoff_task(&task_id, now)
            .await
            .map_err(|e| Refusal::new("store", format!("the context store failed: {e}")))?
            .ok_or_else(|| {
                Refusal::new(
                    "handoff-task",
                    format!("no live task `{task_id}`: it expired (its context was purged) or never existed"),
                )
            })?;
        let claims = delegation::verify(
            &token,
            &h.keys.public_key(),
            &who.agent,
            CONTEXT_TOOL,
            SystemTime::now(),
        )
        .map_err(|e| Refusal::new("delegation", format!("delegation: {e}")))?;
        h.refuse_revoked(&claims)?;
        let acting_as = acting(who, &claims);
        ev.delegation = acting_as.delegation.clone();
        ev.root_human = acting_as.root_human.clone();
        if task.to_agent != who.agent {
            return Err(Refusal::new(
                "handoff-task",
                format!(
                    "task `{task_id}` was handed to `{}`, not `{}`",
                    task.to_agent, who.agent
                ),
            ));
        }
        if sha256_hex(&token) != task.token_hash {
            return Err(Refusal::new(
                "handoff-task",
                format!("the delegation token was not issued for task `{task_id}`"),
            ));
        }
        let tainted: Vec<&str> = entries
            .iter()
            .filter(|e| e.tainted)
            .map(|e| e.key.as_str())
            .collect();
        if let Some(s) = session {
            if !tainted.is_empty() {
                s.taint(format!("handoff:{task_id}"));
            }
            h.bindings.lock().unwrap().insert(
                s.id.clone(),
                Binding {
                    token: token.clone(),
                    expires_ms: task.expires_ms,
                },
            );
        }
        if let Err(e) = h.store.mark_handoff_redeemed(&task_id).await {
            eprintln!("warden: cannot mark task {task_id} redeemed: {e}");
        }
        let keys: Vec<&str> = entries.iter().map(|e| e.key.as_str()).collect();
        ev.tainted = session.map(|s| s.tainted.load(std::sync::atomic::Ordering::Acquire));
        ev.detail.insert("from".into(), json!(task.from_agent));
        ev.detail.insert("chain".into(), json!(claims.chain));
        ev.detail.insert("keys".into(), json!(keys));
        ev.detail.insert("tainted_keys".into(), json!(tainted));
        ev.detail
            .insert("session_bound".into(), json!(session.is_some()));
        ev.detail
            .insert("delegation_token_id".into(), json!(task.token_id));
        let entries: Vec<Value> = entries
            .iter()
            .map(|e| {
                json!({
                    "key": e.key,
                    "value": e.value,
                    "written_by": e.written_by,
                    "tainted": e.tainted,
                    "taint_sources": e.taint_sources,
                    "expires_at": rfc3339(e.expires_ms),
                })
            })
            .collect();
        Ok(json!({
            "task_id": task.id,
            "from": task.from_agent,
            "to": task.to_agent,
            "root_human": claims.root_human,
            "chain": claims.chain,
            "depth": claims.depth,
            "max_depth": claims.max_depth,
            "task": task.instructions,
            "expires_at": rfc3339(task.expires_ms),
            "expires_at_unix": task.expires_ms / 1000,
            "entries": entries,
            "tainted": !tainted.is_empty(),
            "session_bound": session.is_some(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;
    use warden_store::Durability;

    #[tokio::test]
    async fn the_sweeper_purges_expired_context_without_a_read_and_audits_it() {
        let dir = tempfile::tempdir().unwrap();
        let st = Store::open(&dir.path().join("w.db"), Durability::Normal)
            .await
            .unwrap();
        let h = Handoffs::open(st.clone()).await.unwrap();
        // A second start (a restart, another replica) signs with the same key.
        assert_eq!(
            Handoffs::open(st.clone()).await.unwrap().public_key_hex(),
            h.public_key_hex()
        );
        let now = now_ms();
        let task = |id: &str, expires_ms: i64| HandoffTask {
            id: id.into(),
            from_agent: "a".into(),
            to_agent: "b".into(),
            root_human: Some("alice".into()),
            chain: vec!["a".into(), "b".into()],
            instructions: None,
            created_ms: now - 10_000,
            expires_ms,
            token_id: "dt".into(),
            token_hash: "00".into(),
            state: "open".into(),
        };
        let entry = StoredEntry {
            key: "ticket_id".into(),
            value: json!("T-1"),
            written_by: "a".into(),
            tainted: false,
            taint_sources: Vec::new(),
            created_ms: now - 10_000,
            expires_ms: now - 1,
        };
        st.insert_handoff(&task("old", now - 1), std::slice::from_ref(&entry))
            .await
            .unwrap();
        st.insert_handoff(&task("live", now + 600_000), &[])
            .await
            .unwrap();
        h.spawn_sweeper(Duration::from_millis(20));
        let start = Instant::now();
        loop {
            // Read as of a moment before anything expired, so the read purges nothing itself.
            let gone = st
                .handoff_task("old", now - 60_000)
                .await
                .unwrap()
                .is_none();
            if gone {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "the sweeper did not purge"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(st.handoff_task("live", now).await.unwrap().is_some());
        let purges: Vec<Value> = st
            .audit_tail(10)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.event)
            .filter(|e| e["kind"] == "context_purge")
            .collect();
        assert_eq!(purges.len(), 1, "{purges:?}");
        assert_eq!(purges[0]["detail"]["tasks"], json!(["old"]));
        assert_eq!(purges[0]["detail"]["entries"], json!(["old/ticket_id"]));
    }
}
