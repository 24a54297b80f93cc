//! The enforcement pipeline. One [`Gateway`] serves every agent session; transports (the
//! HTTP endpoint in warden-server, [`crate::stdio`]) authenticate the caller into a
//! [`Principal`] and hand each JSON-RPC message to [`Gateway::handle`].
//!
//! Stages of a `tools/call`, in order (each one writes to the audit trail when it ends the
//! call): authenticate (transport) → resolve `connector.tool` → rate and concurrency limits
//! → [pin check: issue 8] → decide (Cedar) → [approval: issue 5; until then
//! `needs_approval` is refused with "approval required"] → audit the decision, durably →
//! forward → [inspect: issue 8] → audit the outcome → answer.
//! `tools/list` shows only tools the decider could allow. Resources, prompts, completion
//! and `server/discover` are served by [`relay`]. Everything else is answered locally
//! (`ping`, `logging/setLevel`) or refused with `-32601`; unknown fields inside governed
//! messages are relayed untouched.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::{Map, Value, json};
use tokio::sync::oneshot;
use warden_core::{Inventory, ToolRef};
use warden_store::audit::digest;
use warden_store::redact::redact_value;
use warden_store::time::now_ms;
use warden_store::{AuditEvent, AuditWriter};

use crate::GatewayError;
use crate::decide::{CallDecision, CallRequest, Decider, Outcome};
use crate::limits::Limiter;
use crate::upstream::{
    HttpSpec, ListChangedHook, NotifySink, StdioSpec, Upstream, UpstreamOptions,
};

/// Resources, prompts, completion and `server/discover` (a child module: it extends
/// [`Gateway`]).
#[path = "relay.rs"]
pub mod relay;

/// Protocol revisions the gateway accepts in `initialize`, newest first.
pub const SUPPORTED_PROTOCOLS: &[&str] = &["2025-11-25", "2025-06-18", "2025-03-26"];

/// JSON-RPC error codes used by the gateway.
pub mod codes {
    pub const PARSE_ERROR: i64 = -32700;
    pub const INVALID_REQUEST: i64 = -32600;
    pub const METHOD_NOT_FOUND: i64 = -32601;
    pub const INVALID_PARAMS: i64 = -32602;
    pub const INTERNAL: i64 = -32603;
}

/// The `_meta` key carrying Warden's decision on denied or failed calls.
pub const META_KEY: &str = "warden.dev/decision";

/// Who is calling: the authenticated agent and the chain it acts for.
#[derive(Debug, Clone)]
pub struct Principal {
    pub agent: String,
    pub token_id: Option<String>,
    /// Agents between the root human and `agent` (empty for a direct call).
    pub delegation: Vec<String>,
    pub root_human: Option<String>,
}

impl Principal {
    /// A direct call by `agent`, on behalf of its owner.
    pub fn direct(inv: &Inventory, agent: &str, token_id: Option<String>) -> Principal {
        Principal {
            agent: agent.to_string(),
            token_id,
            delegation: Vec::new(),
            root_human: inv
                .agents
                .get(agent)
                .and_then(|a| a.owner.as_ref().map(|o| o.value.clone())),
        }
    }
}

/// One agent session (an `Mcp-Session-Id`).
#[derive(Debug)]
pub struct Session {
    pub id: String,
    pub agent: String,
    pub protocol: Mutex<String>,
    /// Untrusted content entered this session (a tool marked `untrusted_output` answered).
    pub tainted: AtomicBool,
    pub taint_sources: Mutex<Vec<String>>,
    inflight: Mutex<HashMap<String, oneshot::Sender<String>>>,
    /// Unix ms of the last request (idle sessions are dropped).
    last_used: std::sync::atomic::AtomicI64,
    /// Where messages the agent did not ask for go (the `GET /mcp` stream, stdout for
    /// `gateway stdio`): forwarded `list_changed` notifications.
    listener: Mutex<Option<NotifySink>>,
}

impl Session {
    /// Sends server-initiated messages to `sink` from now on (replacing an older stream,
    /// which then ends).
    pub fn set_listener(&self, sink: NotifySink) {
        *self.listener.lock().unwrap() = Some(sink);
    }

    /// Stops sending server-initiated messages (the stream ends once nothing else holds it).
    pub fn clear_listener(&self) {
        *self.listener.lock().unwrap() = None;
    }

    /// Sends `msg` on the session's listener; false when it has none (or it went away).
    pub fn notify(&self, msg: Value) -> bool {
        let mut l = self.listener.lock().unwrap();
        match l.as_ref().map(|tx| tx.send(msg)) {
            Some(Ok(())) => true,
            Some(Err(_)) => {
                *l = None;
                false
            }
            None => false,
        }
    }

    /// Marks the session tainted, recording `source` once.
    pub fn taint(&self, source: String) {
        self.tainted.store(true, Ordering::Release);
        let mut sources = self.taint_sources.lock().unwrap();
        if !sources.contains(&source) {
            sources.push(source);
        }
    }
}

/// A request registered for `notifications/cancelled` in its session: `receiver` gets the
/// client's reason (None without a session); dropping the registration removes it.
pub(crate) struct Cancellable<'a> {
    session: Option<&'a Session>,
    key: String,
    pub(crate) receiver: Option<oneshot::Receiver<String>>,
}

impl<'a> Cancellable<'a> {
    pub(crate) fn register(session: Option<&'a Arc<Session>>, id: &Value) -> Cancellable<'a> {
        let key = id.to_string();
        let receiver = session.map(|s| {
            let (tx, rx) = oneshot::channel();
            s.inflight.lock().unwrap().insert(key.clone(), tx);
            rx
        });
        Cancellable {
            session: session.map(|s| s.as_ref()),
            key,
            receiver,
        }
    }
}

impl Drop for Cancellable<'_> {
    fn drop(&mut self) {
        if let Some(s) = self.session {
            s.inflight.lock().unwrap().remove(&self.key);
        }
    }
}

/// Sessions idle this long are forgotten (their client must initialise again).
pub const SESSION_IDLE_MS: i64 = 60 * 60 * 1000;

/// Tunables.
#[derive(Debug, Clone, Default)]
pub struct GatewayOptions {
    pub upstream: UpstreamOptions,
}

/// The relay and its enforcement pipeline.
pub struct Gateway {
    inv: Arc<Inventory>,
    decider: Arc<dyn Decider>,
    audit: AuditWriter,
    upstreams: BTreeMap<String, Arc<Upstream>>,
    sessions: Arc<Mutex<HashMap<String, Arc<Session>>>>,
    /// Resource subscriptions per (connector, URI) (see [`relay`]).
    subscriptions: Arc<relay::Subscriptions>,
    limiter: Limiter,
    request_prefix: String,
    request_counter: AtomicU64,
    secrets: warden_scan::secrets::SecretScanner,
    /// Prompt-injection detection on tool results (issue 8).
    injection: warden_detect::InjectionDetector,
    /// Secret and PII redaction of results for connectors with `redact_results`.
    redactor: warden_detect::Redactor,
    /// The approval hold (issue 5); None: `needs_approval` is refused.
    approvals: Option<Arc<crate::approval::ApprovalGate>>,
    /// Tool pinning and shadowing (issue 8, [`crate::pinning`]).
    pub(crate) pinning: crate::pinning::Pinning,
    /// URI → connector routing of resources ([`relay`]).
    relay: relay::RelayState,
    /// Handoffs and delegation (issue 9, [`crate::handoff`]); None: `warden.*` tools refuse.
    handoffs: Option<Arc<crate::handoff::Handoffs>>,
}

/// The injection detector's settings from the inventory (`settings.injection_threshold`).
fn injection_config(inv: &Inventory) -> warden_detect::InjectionConfig {
    let mut c = warden_detect::InjectionConfig::default();
    if let Some(t) = inv.settings.injection_threshold
        && t > 0.0
        && t <= 1.0
    {
        c.threshold = t;
        c.suspicious_threshold = c.suspicious_threshold.min(t);
    }
    c
}

/// The result redactor with the inventory's extra PII patterns. A pattern that does not
/// compile is skipped with a warning rather than disabling redaction altogether.
fn redactor_for(inv: &Inventory) -> warden_detect::Redactor {
    let (redactor, errors) = warden_detect::Redactor::with_custom(&inv.settings.pii_patterns);
    for e in errors {
        eprintln!("warden: ignoring a PII pattern: {e}");
    }
    redactor
}

/// Applies `f` to every string inside `v`.
fn map_strings(v: &mut Value, f: &dyn Fn(&str) -> Option<String>) {
    match v {
        Value::String(s) => {
            if let Some(new) = f(s) {
                *s = new;
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| map_strings(x, f)),
        Value::Object(m) => m.values_mut().for_each(|x| map_strings(x, f)),
        _ => {}
    }
}

/// Collects answers fetched from several connectors at once: the ones that answered, and the
/// error text of each that failed (a failing upstream degrades only its own items).
async fn per_connector<T: 'static>(
    mut set: tokio::task::JoinSet<(String, Result<T, GatewayError>)>,
) -> (BTreeMap<String, T>, Map<String, Value>) {
    let mut served = BTreeMap::new();
    let mut degraded = Map::new();
    while let Some(r) = set.join_next().await {
        if let Ok((cid, res)) = r {
            match res {
                Ok(items) => {
                    served.insert(cid, items);
                }
                Err(e) => {
                    degraded.insert(cid, Value::String(e.to_string()));
                }
            }
        }
    }
    (served, degraded)
}

/// Completes a list record: outcome `ok`, or `degraded` naming the upstreams that failed,
/// and how many items the agent was shown.
fn record_list(ev: &mut AuditEvent, shown: usize, degraded: Map<String, Value>) {
    ev.outcome = Some(
        if degraded.is_empty() {
            "ok"
        } else {
            "degraded"
        }
        .into(),
    );
    ev.detail.insert("shown".into(), Value::from(shown));
    if !degraded.is_empty() {
        ev.detail.insert("degraded".into(), Value::Object(degraded));
    }
}

fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    let _ = getrandom::fill(&mut b);
    hex::encode(b)
}

/// Limits of one scope (agent, connector, tool) and, built only when it has some, its
/// limiter key and its name in error messages.
type LimitScope<'a> = (
    Option<&'a warden_core::model::Limits>,
    &'a dyn Fn() -> (String, String),
);

/// A JSON-RPC 2.0 message: `jsonrpc`, `id`, then `members` in order. Built field by field:
/// `json!` would copy every value (a call's result or arguments) through the serializer.
pub(crate) fn message<const N: usize>(id: &Value, members: [(&str, Value); N]) -> Value {
    let mut m = Map::with_capacity(2 + N);
    m.insert("jsonrpc".into(), Value::String("2.0".into()));
    m.insert("id".into(), id.clone());
    for (k, v) in members {
        m.insert(k.into(), v);
    }
    Value::Object(m)
}

/// A JSON-RPC success response.
pub fn ok(id: &Value, result: Value) -> Value {
    message(id, [("result", result)])
}

/// A JSON-RPC error response.
pub fn error(id: &Value, code: i64, message: &str, data: Option<Value>) -> Value {
    let mut e = json!({"code": code, "message": message});
    if let Some(d) = data {
        e["data"] = d;
    }
    self::message(id, [("error", e)])
}

/// A tool result the agent reads as a failed call (`isError`), with Warden's reasoning.
fn tool_error(id: &Value, text: &str, meta: Value) -> Value {
    ok(
        id,
        json!({
            "content": [{"type": "text", "text": text}],
            "isError": true,
            "_meta": {META_KEY: meta}
        }),
    )
}

/// Forwards an upstream's `notifications/*/list_changed`, unchanged, to every session with a
/// listener whose agent policy could allow some tool of that connector, and
/// `notifications/resources/updated` to the sessions subscribed to that URI (same check);
/// records it (kind `notification`, the connector, how many sessions were told).
fn list_changed_forwarder(
    inv: Arc<Inventory>,
    decider: Arc<dyn Decider>,
    sessions: Arc<Mutex<HashMap<String, Arc<Session>>>>,
    subscriptions: Arc<relay::Subscriptions>,
    audit: AuditWriter,
) -> ListChangedHook {
    let pace = Mutex::new(Coalescer::new(NOTIFY_EVERY));
    ListChangedHook(Arc::new(move |connector: &str, msg: &Value| {
        let Some(c) = inv.connectors.get(connector) else {
            return;
        };
        let method = msg.get("method").and_then(Value::as_str).unwrap_or("");
        let updated_uri = (method == "notifications/resources/updated")
            .then(|| msg.pointer("/params/uri").and_then(Value::as_str))
            .flatten();
        // "Something changed" is idempotent: an upstream repeating it faster than an agent
        // could act on it is not passed on (nor audited) more than once per interval.
        if !pace.lock().unwrap().admit(
            format!("{connector}\n{method}\n{}", updated_uri.unwrap_or("")),
            Instant::now(),
        ) {
            return;
        }
        let live: Vec<Arc<Session>> = {
            let all = sessions.lock().unwrap();
            match updated_uri {
                Some(uri) => subscriptions
                    .subscribers(connector, uri)
                    .iter()
                    .filter_map(|sid| all.get(sid).cloned())
                    .collect(),
                None => all.values().cloned().collect(),
            }
        };
        let mut sees: HashMap<String, bool> = HashMap::new();
        let mut told = 0u64;
        for s in live {
            let visible = *sees.entry(s.agent.clone()).or_insert_with(|| {
                c.tools.keys().any(|t| {
                    decider.could_allow(
                        &s.agent,
                        &ToolRef {
                            connector: connector.to_string(),
                            tool: t.clone(),
                        },
                    )
                })
            });
            if visible && s.notify(msg.clone()) {
                told += 1;
            }
        }
        let mut ev = AuditEvent::now("notification");
        ev.method = Some(method.to_string());
        ev.outcome = Some("forwarded".into());
        ev.detail.insert("connector".into(), json!(connector));
        ev.detail.insert("sessions".into(), json!(told));
        if let Some(uri) = updated_uri {
            ev.detail.insert("uri".into(), json!(uri));
        }
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let audit = audit.clone();
            rt.spawn(async move { audit.append_nowait(&ev).await });
        }
    }))
}

/// Shortest interval between two forwards of the same notification (connector, method, URI).
const NOTIFY_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

/// Lets one event per key through per interval (bounded: forgets keys past the interval).
struct Coalescer {
    every: std::time::Duration,
    last: HashMap<String, Instant>,
}

impl Coalescer {
    fn new(every: std::time::Duration) -> Coalescer {
        Coalescer {
            every,
            last: HashMap::new(),
        }
    }

    /// Whether an event for `key` at `now` goes through.
    fn admit(&mut self, key: String, now: Instant) -> bool {
        if self.last.len() >= 10_000 {
            let every = self.every;
            self.last.retain(|_, t| now.duration_since(*t) < every);
        }
        match self.last.get(&key) {
            Some(t) if now.duration_since(*t) < self.every => false,
            _ => {
                self.last.insert(key, now);
                true
            }
        }
    }
}

impl Gateway {
    /// Builds the gateway: one upstream per MCP connector of the inventory (nothing is
    /// started until first used).
    pub fn new(
        inv: Arc<Inventory>,
        decider: Arc<dyn Decider>,
        audit: AuditWriter,
        opts: GatewayOptions,
    ) -> Gateway {
        let mut opts = opts;
        // Upstreams record the server requests they refuse, and check those they relay.
        opts.upstream.audit = Some(audit.clone());
        opts.upstream.server_request_guard = Some(relay::server_request_guard(&inv));
        let sessions: Arc<Mutex<HashMap<String, Arc<Session>>>> = Arc::default();
        let subscriptions: Arc<relay::Subscriptions> = Arc::default();
        opts.upstream.on_list_changed = Some(list_changed_forwarder(
            inv.clone(),
            decider.clone(),
            sessions.clone(),
            subscriptions.clone(),
            audit.clone(),
        ));
        let mut upstreams = BTreeMap::new();
        for (id, c) in &inv.connectors {
            let up = match &c.mcp {
                Some(m) if m.command.is_some() => Upstream::stdio(
                    id,
                    StdioSpec {
                        command: m.command.clone().unwrap_or_default(),
                        args: m.args.clone(),
                        env: m.env.clone(),
                        cwd: m
                            .cwd
                            .as_ref()
                            .map(|d| inv.root.join(d))
                            .unwrap_or_else(|| inv.root.clone()),
                        root: inv.root.clone(),
                    },
                    opts.upstream.clone(),
                ),
                Some(m) if m.url.is_some() => Upstream::http(
                    id,
                    HttpSpec {
                        url: m.url.clone().unwrap_or_default(),
                        headers: m.headers.clone(),
                        root: inv.root.clone(),
                    },
                    opts.upstream.clone(),
                ),
                Some(_) => Upstream::unavailable(id, "its mcp section has neither command nor url"),
                None => Upstream::unavailable(
                    id,
                    "it is a plain HTTP API, not an MCP server (the gateway relays MCP only)",
                ),
            };
            upstreams.insert(id.clone(), Arc::new(up));
        }
        let injection = warden_detect::InjectionDetector::new(injection_config(&inv));
        let redactor = redactor_for(&inv);
        let pinning = crate::pinning::Pinning::new(&inv, None);
        Gateway {
            inv,
            decider,
            audit,
            upstreams,
            sessions,
            subscriptions,
            limiter: Limiter::default(),
            request_prefix: random_hex(4),
            request_counter: AtomicU64::new(1),
            secrets: warden_scan::secrets::SecretScanner::new(),
            injection,
            redactor,
            approvals: None,
            pinning,
            relay: relay::RelayState::default(),
            handoffs: None,
        }
    }

    /// The approval hold, when enabled.
    pub(crate) fn approval_gate(&self) -> Option<Arc<crate::approval::ApprovalGate>> {
        self.approvals.clone()
    }

    /// Enables the approval hold: `needs_approval` calls wait for a human.
    pub fn with_approvals(mut self, gate: Arc<crate::approval::ApprovalGate>) -> Gateway {
        self.approvals = Some(gate);
        self
    }

    /// Enables handoffs (`warden.handoff`, `warden.context`, delegated sessions).
    pub fn with_handoffs(mut self, h: Arc<crate::handoff::Handoffs>) -> Gateway {
        self.handoffs = Some(h);
        self
    }

    pub fn handoffs(&self) -> Option<&Arc<crate::handoff::Handoffs>> {
        self.handoffs.as_ref()
    }

    pub(crate) fn decider(&self) -> &dyn Decider {
        self.decider.as_ref()
    }

    pub fn inventory(&self) -> &Inventory {
        &self.inv
    }

    /// The audit writer (transports record authentication failures and rejected input).
    pub fn audit(&self) -> &AuditWriter {
        &self.audit
    }

    /// Starts a session for `who`.
    pub fn create_session(&self, who: &Principal) -> Arc<Session> {
        let s = Arc::new(Session {
            id: random_hex(16),
            agent: who.agent.clone(),
            protocol: Mutex::new(SUPPORTED_PROTOCOLS[0].to_string()),
            tainted: AtomicBool::new(false),
            taint_sources: Mutex::new(Vec::new()),
            inflight: Mutex::new(HashMap::new()),
            last_used: std::sync::atomic::AtomicI64::new(now_ms()),
            listener: Mutex::new(None),
        });
        let mut gone = Vec::new();
        {
            let mut sessions = self.sessions.lock().unwrap();
            if sessions.len() >= 1024 {
                let cutoff = now_ms() - SESSION_IDLE_MS;
                sessions.retain(|_, s| {
                    let keep = s.last_used.load(Ordering::Relaxed) > cutoff
                        || !s.inflight.lock().unwrap().is_empty();
                    if !keep {
                        gone.push(s.clone());
                    }
                    keep
                });
            }
            sessions.insert(s.id.clone(), s.clone());
        }
        for old in &gone {
            self.forget_session(old);
        }
        s
    }

    /// A live session by id (and marks it used); sessions idle for [`SESSION_IDLE_MS`] are gone.
    pub fn session(&self, id: &str) -> Option<Arc<Session>> {
        let s = self.sessions.lock().unwrap().get(id).cloned()?;
        let now = now_ms();
        if now - s.last_used.swap(now, Ordering::Relaxed) > SESSION_IDLE_MS {
            self.sessions.lock().unwrap().remove(id);
            self.forget_session(&s);
            return None;
        }
        Some(s)
    }

    /// Ends a session (HTTP DELETE); false when unknown.
    pub fn end_session(&self, id: &str) -> bool {
        let ended = self.sessions.lock().unwrap().remove(id);
        if let Some(s) = &ended {
            self.forget_session(s);
        }
        ended.is_some()
    }

    /// What a session leaves behind when it ends, is deleted or expires idle: its
    /// `GET /mcp` stream ends, and subscriptions nobody else holds end upstream too.
    fn forget_session(&self, s: &Session) {
        s.clear_listener();
        for (cid, uri) in self.subscriptions.drop_session(&s.id) {
            if let Some(up) = self.upstreams.get(&cid).cloned() {
                tokio::spawn(async move {
                    let _ = up
                        .request("resources/unsubscribe", json!({ "uri": uri }), None, None)
                        .await;
                });
            }
        }
    }

    /// Ends every session's `GET /mcp` stream (at shutdown: open streams would otherwise
    /// keep the server waiting for their clients).
    pub fn close_streams(&self) {
        for s in self.sessions.lock().unwrap().values() {
            s.clear_listener();
        }
    }

    /// Stops every child process.
    pub async fn shutdown(&self) {
        for up in self.upstreams.values() {
            up.shutdown().await;
        }
        self.audit.flush().await;
    }

    /// Arguments as written to the audit trail: credential-named keys and credential-looking
    /// values (warden-store's rules, then the scanner's secret rules) redacted.
    pub fn redact_args(&self, args: &Value) -> Value {
        let scanner = &self.secrets;
        let mut redacted = redact_value(args);
        map_strings(&mut redacted, &|s| {
            scanner.may_contain(s).then(|| scanner.redact_text(s))
        });
        redacted
    }

    pub(crate) fn next_request_id(&self) -> String {
        use std::fmt::Write;
        let n = self.request_counter.fetch_add(1, Ordering::Relaxed);
        let mut id = String::with_capacity(self.request_prefix.len() + 21);
        let _ = write!(id, "{}-{n}", self.request_prefix);
        id
    }

    /// Records `ev` as a request rejected for invalid parameters and answers `-32602`.
    async fn reject_invalid_params(&self, ev: &mut AuditEvent, id: &Value, message: &str) -> Value {
        ev.kind = "rejected".into();
        ev.outcome = Some("invalid_params".into());
        self.audit.append_nowait(ev).await;
        error(id, codes::INVALID_PARAMS, message, None)
    }

    /// An audit event about `who` in `session`.
    pub fn event(
        &self,
        kind: &str,
        who: Option<&Principal>,
        session: Option<&Session>,
    ) -> AuditEvent {
        let mut ev = AuditEvent::now(kind);
        if let Some(p) = who {
            ev.agent = Some(p.agent.clone());
            ev.delegation = p.delegation.clone();
            ev.root_human = p.root_human.clone();
            if let Some(t) = &p.token_id {
                ev.detail
                    .insert("token_id".into(), Value::String(t.clone()));
            }
        }
        if let Some(s) = session {
            ev.session = Some(s.id.clone());
        }
        ev
    }

    /// Handles one JSON-RPC message. Returns the response for requests, None for
    /// notifications and responses. `sink` receives notifications that belong to this
    /// request (progress) while it runs.
    pub async fn handle(
        &self,
        who: &Principal,
        session: Option<&Arc<Session>>,
        msg: Value,
        sink: Option<NotifySink>,
    ) -> Option<Value> {
        let Some(obj) = msg.as_object() else {
            let ev = self
                .event("rejected", Some(who), session.map(|s| s.as_ref()))
                .with_detail("error", "message is not a JSON object");
            self.audit.append_nowait(&ev).await;
            return Some(error(
                &Value::Null,
                codes::INVALID_REQUEST,
                "Invalid Request: expected a JSON-RPC object (batches are not supported)",
                None,
            ));
        };
        let id = obj.get("id").cloned();
        let method = obj
            .get("method")
            .and_then(Value::as_str)
            .map(str::to_string);
        if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0")
            || (method.is_none() && id.is_none())
        {
            let ev = self
                .event("rejected", Some(who), session.map(|s| s.as_ref()))
                .with_detail("error", "not a JSON-RPC 2.0 message");
            self.audit.append_nowait(&ev).await;
            return Some(error(
                &id.unwrap_or(Value::Null),
                codes::INVALID_REQUEST,
                "Invalid Request: not a JSON-RPC 2.0 message",
                None,
            ));
        }
        let Some(method) = method else {
            // A response to a server request an upstream sent the agent (sampling, …).
            self.server_response(who, session, &msg).await;
            return None;
        };
        // The message is ours: take the parameters out rather than copy them.
        let params = match msg {
            Value::Object(mut obj) => obj.remove("params"),
            _ => None,
        }
        .unwrap_or(Value::Object(Map::new()));
        let Some(id) = id else {
            self.notification(session, &method, &params);
            return None;
        };
        Some(self.request(who, session, &id, &method, params, sink).await)
    }

    fn notification(&self, session: Option<&Arc<Session>>, method: &str, params: &Value) {
        if method == "notifications/cancelled"
            && let Some(s) = session
            && let Some(rid) = params.get("requestId")
        {
            let reason = params
                .get("reason")
                .and_then(Value::as_str)
                .unwrap_or("cancelled by the client")
                .to_string();
            if let Some(tx) = s.inflight.lock().unwrap().remove(&rid.to_string()) {
                let _ = tx.send(reason);
            }
        }
        // notifications/initialized, roots/list_changed, …: nothing to do.
    }

    async fn request(
        &self,
        who: &Principal,
        session: Option<&Arc<Session>>,
        id: &Value,
        method: &str,
        params: Value,
        sink: Option<NotifySink>,
    ) -> Value {
        match method {
            "initialize" => self.initialize(who, session, id, &params).await,
            "ping" => ok(id, json!({})),
            "logging/setLevel" => ok(id, json!({})),
            "tools/list" => self.tools_list(who, session, id).await,
            "tools/call" => self.tools_call(who, session, id, params, sink).await,
            "server/discover" => self.discover(who, session, id).await,
            m if relay::RELAYED.contains(&m) => self.relay(who, session, id, m, params).await,
            _ => {
                let ev = self
                    .event("rejected", Some(who), session.map(|s| s.as_ref()))
                    .with_detail("error", "method not found");
                let mut ev = ev;
                ev.method = Some(method.to_string());
                self.audit.append_nowait(&ev).await;
                error(
                    id,
                    codes::METHOD_NOT_FOUND,
                    &format!(
                        "Method not found: {method} (the Warden gateway does not serve or relay it)"
                    ),
                    None,
                )
            }
        }
    }

    async fn initialize(
        &self,
        who: &Principal,
        session: Option<&Arc<Session>>,
        id: &Value,
        params: &Value,
    ) -> Value {
        let asked = params
            .get("protocolVersion")
            .and_then(Value::as_str)
            .unwrap_or("");
        let chosen = if SUPPORTED_PROTOCOLS.contains(&asked) {
            asked
        } else {
            SUPPORTED_PROTOCOLS[0]
        };
        if let Some(s) = session {
            *s.protocol.lock().unwrap() = chosen.to_string();
        }
        let mut ev = self.event("session", Some(who), session.map(|s| s.as_ref()));
        ev.method = Some("initialize".into());
        ev.detail
            .insert("protocol".into(), Value::String(chosen.to_string()));
        if let Some(ci) = params.get("clientInfo") {
            ev.detail.insert("client".into(), ci.clone());
        }
        self.audit.append_nowait(&ev).await;
        ok(
            id,
            json!({
                "protocolVersion": chosen,
                "capabilities": self.virtual_capabilities(&who.agent).await,
                "serverInfo": {"name": "warden", "title": "Warden gateway", "version": env!("CARGO_PKG_VERSION")},
                "instructions": format!("Tools of the connectors agent `{}` may use, named <connector>.<tool>. Every call is checked against policy and audited.", who.agent),
            }),
        )
    }

    /// Inventory tools of connectors this agent could use, grouped by connector.
    fn visible_tools(&self, agent: &str) -> BTreeMap<String, Vec<ToolRef>> {
        let mut out: BTreeMap<String, Vec<ToolRef>> = BTreeMap::new();
        for (cid, c) in &self.inv.connectors {
            for tname in c.tools.keys() {
                let tr = ToolRef {
                    connector: cid.clone(),
                    tool: tname.clone(),
                };
                if self.decider.could_allow(agent, &tr) {
                    out.entry(cid.clone()).or_default().push(tr);
                }
            }
        }
        out
    }

    async fn tools_list(
        &self,
        who: &Principal,
        session: Option<&Arc<Session>>,
        id: &Value,
    ) -> Value {
        let visible = self.visible_tools(&who.agent);
        let mut set = tokio::task::JoinSet::new();
        for cid in visible.keys() {
            if let Some(up) = self.upstreams.get(cid) {
                let up = up.clone();
                let cid = cid.clone();
                set.spawn(async move { (cid, up.tools().await) });
            }
        }
        let (served, mut degraded) = per_connector(set).await;
        let (served, quarantined) = self.pinning.filter_lists(self, served, &mut degraded).await;
        let mut tools = Vec::new();
        let mut missing = Vec::new();
        for (cid, refs) in &visible {
            let Some(upstream_tools) = served.get(cid) else {
                continue;
            };
            for tr in refs {
                match upstream_tools
                    .iter()
                    .find(|t| t.get("name").and_then(Value::as_str) == Some(tr.tool.as_str()))
                {
                    Some(t) => {
                        let mut t = t.clone();
                        t["name"] = Value::String(tr.qualified());
                        tools.push(t);
                    }
                    None => missing.push(Value::String(tr.qualified())),
                }
            }
        }
        self.handoff_tools(who, session, &mut tools);
        let mut ev = self.event("list", Some(who), session.map(|s| s.as_ref()));
        ev.method = Some("tools/list".into());
        record_list(&mut ev, tools.len(), degraded);
        if !missing.is_empty() {
            ev.detail
                .insert("not_served_upstream".into(), Value::Array(missing));
        }
        if !quarantined.is_empty() {
            ev.detail
                .insert("quarantined".into(), Value::Array(quarantined));
        }
        self.audit.append_nowait(&ev).await;
        ok(id, json!({ "tools": tools }))
    }

    fn check_limits(
        &self,
        who: &Principal,
        tr: &ToolRef,
    ) -> Result<Vec<tokio::sync::OwnedSemaphorePermit>, String> {
        let mut permits = Vec::new();
        let agent = self.inv.agents.get(&who.agent);
        let connector = self.inv.connectors.get(&tr.connector);
        let tool = connector.and_then(|c| c.tools.get(&tr.tool));
        // Keys and labels are built only for scopes that declare limits (most calls have none).
        let scopes: [LimitScope; 3] = [
            (agent.and_then(|a| a.limits.as_ref()), &|| {
                (
                    format!("agent:{}", who.agent),
                    format!("agent {}", who.agent),
                )
            }),
            (connector.and_then(|c| c.limits.as_ref()), &|| {
                (
                    format!("connector:{}", tr.connector),
                    format!("connector {}", tr.connector),
                )
            }),
            (tool.and_then(|t| t.value.limits.as_ref()), &|| {
                (format!("tool:{}", tr.qualified()), format!("tool {tr}"))
            }),
        ];
        for (limits, names) in scopes {
            let Some(l) = limits else { continue };
            let (key, label) = names();
            if let Some(cpm) = l.calls_per_minute
                && !self.limiter.take(&key, cpm)
            {
                return Err(format!(
                    "rate limit exceeded: {label} allows {cpm} calls per minute"
                ));
            }
            if let Some(max) = l.max_concurrency {
                match self.limiter.enter(&key, max) {
                    Some(p) => permits.push(p),
                    None => {
                        return Err(format!(
                            "concurrency cap reached: {label} allows {max} calls at a time"
                        ));
                    }
                }
            }
        }
        Ok(permits)
    }

    async fn tools_call(
        &self,
        who: &Principal,
        session: Option<&Arc<Session>>,
        id: &Value,
        mut params: Value,
        sink: Option<NotifySink>,
    ) -> Value {
        let started = Instant::now();
        let request_id = self.next_request_id();
        let name = params
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if name.starts_with("warden.") {
            return self.warden_tool(who, session, id, &name, &params).await;
        }
        // A session (or call) acting under a delegation token: decided for the whole chain.
        let delegated = self.delegated_principal(who, session, &params, &name);
        // The arguments are taken out of the request (not copied) and put back when it is
        // forwarded.
        let args_given = params.get("arguments").is_some();
        let args = params
            .as_object_mut()
            .and_then(|p| p.remove("arguments"))
            .unwrap_or(Value::Object(Map::new()));
        let who = match &delegated {
            Ok(Some(p)) => p,
            Err(r) => r.principal.as_ref().unwrap_or(who),
            Ok(None) => who,
        };
        let mut ev = self.event("decision", Some(who), session.map(|s| s.as_ref()));
        ev.request = Some(request_id.clone());
        ev.method = Some("tools/call".into());
        ev.tool = Some(name.clone());
        ev.args_digest = Some(digest(&args));
        ev.args = Some(self.redact_args(&args));
        let tainted = session.is_some_and(|s| s.tainted.load(Ordering::Acquire));
        ev.tainted = Some(tainted);
        if name.is_empty() || !args.is_object() {
            return self
                .reject_invalid_params(
                    &mut ev,
                    id,
                    "Invalid params: tools/call needs a `name` and object `arguments`",
                )
                .await;
        }
        // Resolve connector.tool; anything undeclared is denied (default deny).
        let tr = ToolRef::parse(&name);
        let declared = tr.as_ref().is_some_and(|tr| {
            self.inv
                .connectors
                .get(&tr.connector)
                .is_some_and(|c| c.tools.contains_key(&tr.tool))
        });
        if let (Some(tr), true) = (&tr, declared)
            && delegated.is_ok() // a refused delegation is denied below, before any upstream
            && let Some(text) = self
                .pinning
                .admit(self, self.upstreams.get(&tr.connector), tr)
                .await
        {
            return self
                .pinning
                .deny_call(self, id, &request_id, &mut ev, text)
                .await;
        }
        let decision = match (&tr, declared) {
            _ if let Err(r) = &delegated => {
                CallDecision::deny(Some("delegation"), r.reason.clone())
            }
            (Some(tr), true) => {
                let sources = session
                    .map(|s| s.taint_sources.lock().unwrap().clone())
                    .unwrap_or_default();
                self.decider.decide(&CallRequest {
                    agent: &who.agent,
                    delegation: &who.delegation,
                    root_human: who.root_human.as_deref(),
                    tool: tr,
                    args: &args,
                    session_tainted: tainted,
                    taint_sources: &sources,
                    time_ms: now_ms(),
                })
            }
            _ => CallDecision::deny(
                Some("default-deny"),
                format!(
                    "unknown tool `{name}`: tools are named <connector>.<tool> and must be declared in the inventory"
                ),
            ),
        };
        let mut decision = decision;
        if decision.outcome == Outcome::Deny && decision.policies.is_empty() {
            // No policy permitted the call: name the default so every decision is explained.
            decision.policies.push("default-deny".into());
        }
        ev.decision = Some(decision.outcome.as_str().into());
        ev.policies = decision.policies.clone();
        ev.reasons = decision.reasons.clone();
        // What a refusal tells the agent (built only when the call is refused).
        let meta = || json!({"request": request_id, "decision": decision.outcome.as_str(), "policies": decision.policies, "reasons": decision.reasons});
        let mut approved_args = None;
        match &decision.outcome {
            Outcome::Allow => {}
            Outcome::NeedsApproval { .. }
                if let (Some(gate), Some(tr)) = (self.approvals.clone(), tr.as_ref()) =>
            {
                let token = params.pointer("/_meta/progressToken").cloned();
                // `notifications/cancelled` ends the hold: a call its agent gave up on must
                // not run when the approval arrives later. The approval request stays
                // pending, so a retry of the same call can still use it.
                let mut registered = Cancellable::register(session, id);
                let cancelled = async {
                    match registered.receiver.take() {
                        Some(rx) => match rx.await {
                            Ok(reason) => reason,
                            Err(_) => std::future::pending().await,
                        },
                        None => std::future::pending().await,
                    }
                };
                let held = tokio::select! {
                    h = gate.hold(
                        self,
                        who,
                        session,
                        id,
                        tr,
                        &args,
                        &decision,
                        &request_id,
                        token,
                        sink.clone(),
                        &mut ev,
                    ) => h,
                    reason = cancelled => {
                        ev.outcome = Some("cancelled".into());
                        ev.detail.insert("cancel_reason".into(), Value::String(reason));
                        Err(error(id, codes::INTERNAL, "the call was cancelled while it waited for approval; the approval request stays open for a retry", None))
                    }
                };
                drop(registered);
                match held {
                    Ok(a) => approved_args = Some(a),
                    Err(reply) => {
                        if let Err(e) = self.audit.append(&ev).await {
                            eprintln!("warden: audit failed: {e}");
                        }
                        return reply;
                    }
                }
            }
            Outcome::Deny | Outcome::NeedsApproval { .. } => {
                let mut reasons = decision.reasons.clone();
                if let Outcome::NeedsApproval { approvers, .. } = &decision.outcome {
                    reasons.insert(0, format!("approval required (approvers: {}); approvals are not available in this version, so the call is refused", approvers.join(", ")));
                }
                ev.outcome = Some("denied".into());
                if let Err(e) = self.audit.append(&ev).await {
                    eprintln!("warden: audit failed: {e}");
                }
                let policies = if decision.policies.is_empty() {
                    "default deny".to_string()
                } else {
                    decision.policies.join(", ")
                };
                let text = format!(
                    "Warden denied {name}: {} (policy: {policies})",
                    reasons.join("; ")
                );
                let mut meta = meta();
                meta["reasons"] = json!(reasons);
                return tool_error(id, &text, meta);
            }
        }
        let tr = tr.expect("allowed implies parsed");
        // Limits.
        let permits = match self.check_limits(who, &tr) {
            Ok(p) => p,
            Err(msg) => {
                ev.kind = "rate_limited".into();
                ev.outcome = Some("rate_limited".into());
                self.audit.append_nowait(&ev).await;
                let mut meta = meta();
                meta["decision"] = json!("rate_limited");
                return tool_error(id, &format!("Warden refused {name}: {msg}"), meta);
            }
        };
        // The decision is durable before anything reaches the upstream.
        let durable_from = Instant::now();
        let decided_ms = started.elapsed().as_secs_f64() * 1000.0;
        if let Err(e) = self.audit.append(&ev).await {
            return error(
                id,
                codes::INTERNAL,
                &format!("the audit trail is unavailable, so the call was not forwarded: {e}"),
                None,
            );
        }
        // Forward.
        let Some(up) = self.upstreams.get(&tr.connector).cloned() else {
            return tool_error(
                id,
                &format!("connector {} has no upstream", tr.connector),
                meta(),
            );
        };
        params["name"] = Value::String(tr.tool.clone());
        if let Some(a) = approved_args {
            // Exactly the arguments that were approved.
            params["arguments"] = a;
        } else if args_given {
            params["arguments"] = args;
        }
        let mut registered = Cancellable::register(session, id);
        let forwarded_at = Instant::now();
        let result = up
            .request("tools/call", params, sink, registered.receiver.take())
            .await;
        drop(registered);
        drop(permits);
        let upstream_ms = forwarded_at.elapsed().as_secs_f64() * 1000.0;
        let mut out = self.event("outcome", Some(who), session.map(|s| s.as_ref()));
        out.request = Some(request_id.clone());
        out.method = Some("tools/call".into());
        out.tool = Some(name.clone());
        out.latency_ms = Some(started.elapsed().as_secs_f64() * 1000.0);
        out.detail.insert(
            "upstream_ms".into(),
            json!((upstream_ms * 1000.0).round() / 1000.0),
        );
        // Where the gateway's own time went: policy (and approval hold) before the decision
        // record, then waiting for that record to be durable.
        let durable_ms = (forwarded_at - durable_from).as_secs_f64() * 1000.0;
        out.detail.insert(
            "decided_ms".into(),
            json!((decided_ms * 1000.0).round() / 1000.0),
        );
        out.detail.insert(
            "durable_ms".into(),
            json!((durable_ms * 1000.0).round() / 1000.0),
        );
        let reply = match result {
            Ok(resp) => {
                if let Some(err) = resp.get("error") {
                    out.outcome = Some("upstream_error".into());
                    out.detail.insert("error".into(), err.clone());
                    json!({"jsonrpc": "2.0", "id": id, "error": err})
                } else {
                    let result = resp.get("result").cloned().unwrap_or(json!({}));
                    let is_error = result
                        .get("isError")
                        .and_then(Value::as_bool)
                        .unwrap_or(false);
                    out.outcome = Some(if is_error { "tool_error" } else { "ok" }.into());
                    if !is_error {
                        self.taint_if_untrusted(session, &tr);
                    }
                    let mut result = result;
                    match self.inspect_result(session, &tr, &mut result, &mut out) {
                        Some(blocked) => {
                            out.outcome = Some("blocked_injection".into());
                            tool_error(
                                id,
                                &blocked,
                                json!({"request": request_id, "blocked": "injection"}),
                            )
                        }
                        None => ok(id, result),
                    }
                }
            }
            Err(GatewayError::Cancelled) => {
                out.outcome = Some("cancelled".into());
                error(id, codes::INTERNAL, "the call was cancelled", None)
            }
            Err(e) => {
                out.outcome = Some("upstream_error".into());
                out.detail
                    .insert("error".into(), Value::String(e.to_string()));
                tool_error(
                    id,
                    &format!("Warden could not complete {name}: {e}"),
                    json!({"request": request_id, "decision": "allow", "error": e.to_string()}),
                )
            }
        };
        out.tainted = session.map(|s| s.tainted.load(Ordering::Acquire));
        // Nothing waits for the outcome record: it is written once the answer is out.
        self.audit.append_soon(out);
        reply
    }

    /// Inspects a result before it reaches the agent: prompt injection (flag, taint or block
    /// per the connector's `on_injection`) and, where the connector asks, redaction of secrets
    /// and PII. Returns the message for the agent when the result is blocked.
    fn inspect_result(
        &self,
        session: Option<&Arc<Session>>,
        tr: &ToolRef,
        result: &mut Value,
        out: &mut AuditEvent,
    ) -> Option<String> {
        let conn = self.inv.connectors.get(&tr.connector);
        let (report, _) = self.injection.inspect_payload(result);
        let action = warden_detect::action_for(&report, conn.and_then(|c| c.on_injection));
        if action != warden_detect::GatewayAction::Pass {
            let rules: Vec<&str> = report
                .evidence
                .iter()
                .take(5)
                .map(|e| e.rule.as_str())
                .collect();
            out.detail.insert(
                "injection".into(),
                json!({
                    "verdict": report.verdict.as_str(),
                    "score": (report.score * 1000.0).round() / 1000.0,
                    "action": action,
                    "rules": rules,
                }),
            );
        }
        if action.taints()
            && let Some(s) = session
        {
            s.taint(format!("injection:{}", tr.qualified()));
        }
        if action == warden_detect::GatewayAction::Block {
            return Some(format!(
                "Warden blocked the result of {}: {}. The session is tainted.",
                tr.qualified(),
                report.summary()
            ));
        }
        if conn.is_some_and(|c| c.redact_results) {
            let redactions = self.redactor.redact_json(result);
            if !redactions.is_empty() {
                let rules: Vec<String> = redactions.iter().map(|(_, r)| r.rule.clone()).collect();
                out.detail.insert("redacted".into(), json!(rules));
            }
        }
        None
    }

    fn taint_if_untrusted(&self, session: Option<&Arc<Session>>, tr: &ToolRef) {
        let untrusted = self
            .inv
            .connectors
            .get(&tr.connector)
            .and_then(|c| c.tools.get(&tr.tool))
            .is_some_and(|t| t.value.untrusted_output);
        if untrusted && let Some(s) = session {
            s.taint(tr.qualified());
        }
    }
}

#[cfg(test)]
mod coalescer_tests {
    use super::*;

    #[test]
    fn one_event_per_key_per_interval() {
        let every = std::time::Duration::from_millis(100);
        let mut c = Coalescer::new(every);
        let t0 = Instant::now();
        assert!(c.admit("a".into(), t0));
        assert!(
            !c.admit("a".into(), t0 + every / 2),
            "repeated within the interval"
        );
        assert!(
            c.admit("b".into(), t0 + every / 2),
            "other keys are independent"
        );
        assert!(
            c.admit("a".into(), t0 + every),
            "again once the interval passed"
        );
    }

    #[test]
    fn stays_bounded_under_many_keys() {
        let every = std::time::Duration::from_millis(100);
        let mut c = Coalescer::new(every);
        let t0 = Instant::now();
        for i in 0..10_000 {
            c.admit(format!("k{i}"), t0);
        }
        // Past the interval, the next key makes it forget the old ones.
        assert!(c.admit("late".into(), t0 + every));
        assert!(c.last.len() <= 2, "{}", c.last.len());
    }
}
