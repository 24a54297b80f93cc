//! Resources, prompts and completion through the virtual server, and `server/discover`.
//!
//! Which connectors an agent reaches here: those on which it has at least one tool the
//! decider could allow (the same set whose tools `tools/list` shows). Everything else is
//! denied (default deny), and the denial does not say whether the URI or prompt exists.
//!
//! - `resources/list`, `resources/templates/list`, `prompts/list`: every page is fetched
//!   from each visible connector that announced the capability, and the union is answered
//!   as one page (no `nextCursor`; a `cursor` from the client is invalid, `-32602`).
//!   Resource URIs keep the upstream's spelling (they are identifiers that tool results
//!   link to); prompt names are namespaced like tools, `<connector>.<prompt>`.
//! - `resources/read`: routed by URI to the connector that listed it, or whose
//!   `uriTemplate` matches it. The gateway keeps a URI → connectors map filled by the
//!   lists; an unknown URI triggers one refresh of the visible connectors' lists (at most
//!   every 2 s per agent), then `-32002` (resource not found).
//! - `prompts/get` by its namespaced name; `completion/complete` by its `ref`
//!   (`ref/prompt` → prompt name, `ref/resource` → URI or template).
//! - Contents that flow back (resource contents, prompt messages) pass through the same
//!   injection/redaction inspection as tool results (`Gateway::inspect_result`).
//! - Audit: `resource_read` (connector, URI), `prompt_get` (connector, prompt, argument
//!   digest and redacted arguments), `completion`, and `list` for the lists. Never the
//!   content.
//! - `resources/subscribe` / `unsubscribe`: routed like `resources/read`, to connectors
//!   that announced `resources.subscribe`. An upstream is shared by every session, so the
//!   gateway keeps who subscribed to what ([`Subscriptions`]) and subscribes upstream once
//!   per (connector, URI), unsubscribing when the last session leaves (or ends).
//!   `notifications/resources/updated` from the upstream goes to the subscribed sessions
//!   whose agent can still see the connector, on their `GET /mcp` stream.
//!
//! Server → client requests (relayed by [`crate::upstream`]): the agent's answer is handed
//! back and audited here (`server_request`); `server_request_guard` keeps injected
//! sampling/elicitation text of `on_injection: block` connectors from the agent's model.
//!
//! `server/discover` (2026-07-28) is answered with the revisions the gateway serves — all
//! of them handshake-era — so 2026 clients fall back to `initialize`; a session-less request
//! carrying the 2026 per-request `_meta` is refused with `-32022` naming those revisions.

use super::*;

/// The `_meta` key of the 2026-07-28 per-request protocol version.
pub const PROTOCOL_VERSION_META: &str = "io.modelcontextprotocol/protocolVersion";

/// JSON-RPC error code of the 2026-07-28 revision for an unsupported protocol version.
pub const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;

/// MCP's "resource not found" error code.
pub const RESOURCE_NOT_FOUND: i64 = -32002;

/// Methods served by this module.
pub const RELAYED: &[&str] = &[
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "resources/subscribe",
    "resources/unsubscribe",
    "prompts/list",
    "prompts/get",
    "completion/complete",
];

/// Longest `initialize` waits for upstreams to announce their capabilities; a connector
/// that has not answered by then is not counted (it keeps starting in the background).
const CAPS_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Most URIs remembered before the map is cleared (it refills from the next lists).
const MAX_URIS: usize = 100_000;

/// Shortest interval between two list refreshes caused by one agent's unknown URIs (an
/// agent probing URIs must not turn each probe into a list call on every upstream).
const REFRESH_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);

/// Which sessions subscribed to which (connector, URI): shared by the relay and the
/// notification forwarder.
#[derive(Default)]
pub struct Subscriptions(Mutex<HashMap<(String, String), std::collections::BTreeSet<String>>>);

impl Subscriptions {
    /// Adds `session`; true when it is the first subscriber (subscribe upstream).
    fn add(&self, connector: &str, uri: &str, session: &str) -> bool {
        let mut m = self.0.lock().unwrap();
        let set = m
            .entry((connector.to_string(), uri.to_string()))
            .or_default();
        set.insert(session.to_string()) && set.len() == 1
    }

    /// Removes `session`; true when it was the last one (unsubscribe upstream).
    fn remove(&self, connector: &str, uri: &str, session: &str) -> bool {
        let mut m = self.0.lock().unwrap();
        let key = (connector.to_string(), uri.to_string());
        let Some(set) = m.get_mut(&key) else {
            return false;
        };
        let last = set.remove(session) && set.is_empty();
        if set.is_empty() {
            m.remove(&key);
        }
        last
    }

    /// The sessions subscribed to `uri` of `connector`.
    pub(crate) fn subscribers(&self, connector: &str, uri: &str) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .get(&(connector.to_string(), uri.to_string()))
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Drops every subscription of `session`; returns the (connector, URI) pairs nobody
    /// subscribes to any more.
    pub(crate) fn drop_session(&self, session: &str) -> Vec<(String, String)> {
        let mut m = self.0.lock().unwrap();
        let mut emptied = Vec::new();
        m.retain(|key, set| {
            if set.remove(session) && set.is_empty() {
                emptied.push(key.clone());
                return false;
            }
            !set.is_empty()
        });
        emptied
    }
}

/// URI → connector routing, shared by every session (each read checks the reader may use
/// the connector).
#[derive(Default)]
pub struct RelayState {
    uris: Mutex<HashMap<String, Vec<String>>>,
    /// (connector, uriTemplate)
    templates: Mutex<Vec<(String, String)>>,
    /// When each agent's unknown URI last caused a refresh.
    refreshed: Mutex<HashMap<String, Instant>>,
}

impl RelayState {
    /// Whether `agent` may cause a refresh now (and records that it does).
    fn may_refresh(&self, agent: &str) -> bool {
        let mut r = self.refreshed.lock().unwrap();
        if r.len() >= 10_000 {
            r.retain(|_, at| at.elapsed() < REFRESH_INTERVAL);
        }
        match r.get(agent) {
            Some(at) if at.elapsed() < REFRESH_INTERVAL => false,
            _ => {
                r.insert(agent.to_string(), Instant::now());
                true
            }
        }
    }

    fn remember_uri(&self, uri: &str, connector: &str) {
        let mut m = self.uris.lock().unwrap();
        if m.len() >= MAX_URIS {
            m.clear();
        }
        let v = m.entry(uri.to_string()).or_default();
        if !v.iter().any(|c| c == connector) {
            v.push(connector.to_string());
        }
    }

    fn remember_template(&self, template: &str, connector: &str) {
        let mut t = self.templates.lock().unwrap();
        if !t.iter().any(|(c, x)| c == connector && x == template) {
            if t.len() >= 10_000 {
                t.clear();
            }
            t.push((connector.to_string(), template.to_string()));
        }
    }

    /// The first connector in `visible` that listed `uri` or has a template matching it.
    fn route(&self, uri: &str, visible: &[String]) -> Option<String> {
        if let Some(cs) = self.uris.lock().unwrap().get(uri)
            && let Some(c) = cs.iter().find(|c| visible.contains(c))
        {
            return Some(c.clone());
        }
        let t = self.templates.lock().unwrap();
        t.iter()
            .find(|(c, tpl)| visible.contains(c) && (tpl == uri || template_matches(tpl, uri)))
            .map(|(c, _)| c.clone())
    }
}

/// Whether `uri` is an expansion of the RFC 6570 `template` (level 1–2 expressions: a
/// `{var}` matches one non-empty segment without `/`, `{+var}`/`{#var}` any non-empty text).
pub fn template_matches(template: &str, uri: &str) -> bool {
    // Split into literals and expressions, then match greedily from the left with
    // backtracking over the (few) expressions.
    let mut parts: Vec<(bool, String)> = Vec::new(); // (is_expr_any, literal or "")
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            return false;
        };
        parts.push((false, rest[..open].to_string()));
        let expr = &rest[open + 1..open + close];
        parts.push((
            expr.starts_with('+') || expr.starts_with('#'),
            "\u{0}".into(),
        ));
        rest = &rest[open + close + 1..];
    }
    parts.push((false, rest.to_string()));
    fn go(parts: &[(bool, String)], s: &str) -> bool {
        let Some(((any, lit), tail)) = parts.split_first() else {
            return s.is_empty();
        };
        if lit != "\u{0}" {
            return s.strip_prefix(lit.as_str()).is_some_and(|r| go(tail, r));
        }
        // An expression: try every non-empty prefix it may take.
        for (i, ch) in s.char_indices() {
            if !any && ch == '/' {
                break;
            }
            let end = i + ch.len_utf8();
            if go(tail, &s[end..]) {
                return true;
            }
        }
        false
    }
    go(&parts, uri)
}

/// The refusal of a session-less request that carries the 2026-07-28 per-request `_meta`:
/// `-32022` with the revisions the gateway serves. None when `msg` carries no such `_meta`.
pub fn unsupported_stateless(msg: &Value) -> Option<Value> {
    let requested = msg.pointer("/params/_meta")?.get(PROTOCOL_VERSION_META)?;
    let requested = requested.as_str().unwrap_or("").to_string();
    Some(error(
        msg.get("id").unwrap_or(&Value::Null),
        UNSUPPORTED_PROTOCOL_VERSION,
        &format!(
            "Unsupported protocol version {requested}: the Warden gateway serves the session-based revisions {} (send initialize)",
            SUPPORTED_PROTOCOLS.join(", ")
        ),
        Some(json!({"supported": SUPPORTED_PROTOCOLS, "requested": requested})),
    ))
}

/// The check the upstreams run on sampling and elicitation requests before relaying them:
/// their text goes to the agent's model, so a connector with `on_injection: block` cannot
/// send one that the injection detector calls an injection. (Flag and taint have no
/// session to act on here: an upstream does not know whose call it is serving.)
pub(crate) fn server_request_guard(inv: &Inventory) -> crate::upstream::ServerRequestGuard {
    let blocking: Vec<String> = inv
        .connectors
        .iter()
        .filter(|(_, c)| c.on_injection == Some(warden_core::model::InjectionAction::Block))
        .map(|(id, _)| id.clone())
        .collect();
    let detector = warden_detect::InjectionDetector::new(injection_config(inv));
    crate::upstream::ServerRequestGuard(Arc::new(move |connector: &str, msg: &Value| {
        if !blocking.iter().any(|c| c == connector) {
            return None;
        }
        let (report, _) = detector.inspect_payload(msg.get("params").unwrap_or(&Value::Null));
        (report.verdict == warden_detect::Verdict::Injection).then(|| report.summary())
    }))
}

impl Gateway {
    /// Connectors the agent may reach resources, prompts and completions of.
    fn relay_connectors(&self, agent: &str) -> Vec<String> {
        self.visible_tools(agent).into_keys().collect()
    }

    /// Each visible connector's announced capabilities (connectors that fail or do not
    /// answer within [`CAPS_WAIT`] are left out).
    async fn upstream_capabilities(&self, agent: &str) -> BTreeMap<String, Value> {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut n = 0;
        for cid in self.relay_connectors(agent) {
            if let Some(up) = self.upstreams.get(&cid).cloned() {
                n += 1;
                let tx = tx.clone();
                tokio::spawn(async move {
                    let _ = tx.send((cid, up.capabilities().await));
                });
            }
        }
        drop(tx);
        let mut out = BTreeMap::new();
        let deadline = tokio::time::Instant::now() + CAPS_WAIT;
        while n > 0 {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some((cid, Ok(caps)))) => {
                    out.insert(cid, caps);
                }
                Ok(Some((_, Err(_)))) => {}
                Ok(None) | Err(_) => break,
            }
            n -= 1;
        }
        out
    }

    /// The capabilities of the virtual server for `agent`: tools and logging always;
    /// resources, prompts and completions when a visible connector announced them.
    pub(crate) async fn virtual_capabilities(&self, agent: &str) -> Value {
        let ups = self.upstream_capabilities(agent).await;
        let mut caps = json!({"tools": {"listChanged": true}, "logging": {}});
        if ups.values().any(|c| c.get("resources").is_some()) {
            let subscribe = ups
                .values()
                .any(|c| c.pointer("/resources/subscribe") == Some(&Value::Bool(true)));
            caps["resources"] = json!({"listChanged": true, "subscribe": subscribe});
        }
        if ups.values().any(|c| c.get("prompts").is_some()) {
            caps["prompts"] = json!({"listChanged": true});
        }
        if ups.values().any(|c| c.get("completions").is_some()) {
            caps["completions"] = json!({});
        }
        caps
    }

    /// `server/discover` (2026-07-28): the revisions served, capabilities and identity.
    pub(crate) async fn discover(
        &self,
        who: &Principal,
        session: Option<&Arc<Session>>,
        id: &Value,
    ) -> Value {
        let caps = self.virtual_capabilities(&who.agent).await;
        let mut ev = self.event("session", Some(who), session.map(|s| s.as_ref()));
        ev.method = Some("server/discover".into());
        ev.outcome = Some("ok".into());
        self.audit.append_nowait(&ev).await;
        ok(
            id,
            json!({
                "resultType": "complete",
                "supportedVersions": SUPPORTED_PROTOCOLS,
                "capabilities": caps,
                "serverInfo": {"name": "warden", "title": "Warden gateway", "version": env!("CARGO_PKG_VERSION")},
                "instructions": format!("Warden serves the session-based MCP revisions ({}): send initialize. Tools are named <connector>.<tool>.", SUPPORTED_PROTOCOLS.join(", ")),
            }),
        )
    }

    /// Every page of `method`'s `key` list from one upstream. A server that does not
    /// implement the method (`-32601`) has an empty list.
    async fn list_all(up: &Upstream, method: &str, key: &str) -> Result<Vec<Value>, GatewayError> {
        let mut all = Vec::new();
        let mut cursor: Option<Value> = None;
        for _page in 0..100 {
            let params = match &cursor {
                Some(c) => json!({ "cursor": c }),
                None => json!({}),
            };
            let resp = up.request(method, params, None, None).await?;
            if let Some(err) = resp.get("error") {
                if err.get("code").and_then(Value::as_i64) == Some(codes::METHOD_NOT_FOUND) {
                    return Ok(all);
                }
                return Err(GatewayError::Upstream {
                    connector: up.connector.clone(),
                    message: format!("{method} failed: {err}"),
                });
            }
            let result = resp.get("result").cloned().unwrap_or(Value::Null);
            if let Some(items) = result.get(key).and_then(Value::as_array) {
                all.extend(items.iter().cloned());
            }
            match result.get("nextCursor") {
                Some(c) if !c.is_null() => cursor = Some(c.clone()),
                _ => break,
            }
        }
        Ok(all)
    }

    /// Fetches `method` from every visible connector announcing `capability`, remembering
    /// URIs and templates. Returns items per connector and the degraded connectors.
    async fn gather(
        &self,
        agent: &str,
        method: &'static str,
        key: &'static str,
        capability: &str,
    ) -> (BTreeMap<String, Vec<Value>>, Map<String, Value>) {
        let caps = self.upstream_capabilities(agent).await;
        let mut set = tokio::task::JoinSet::new();
        for (cid, c) in &caps {
            if c.get(capability).is_none() {
                continue;
            }
            if let Some(up) = self.upstreams.get(cid).cloned() {
                let cid = cid.clone();
                set.spawn(async move { (cid, Gateway::list_all(&up, method, key).await) });
            }
        }
        let (served, degraded) = super::per_connector(set).await;
        for (cid, items) in &served {
            for it in items {
                if let Some(u) = it.get("uri").and_then(Value::as_str) {
                    self.relay.remember_uri(u, cid);
                }
                if let Some(t) = it.get("uriTemplate").and_then(Value::as_str) {
                    self.relay.remember_template(t, cid);
                }
            }
        }
        (served, degraded)
    }

    /// Dispatches the methods in [`RELAYED`].
    pub(crate) async fn relay(
        &self,
        who: &Principal,
        session: Option<&Arc<Session>>,
        id: &Value,
        method: &str,
        params: Value,
    ) -> Value {
        match method {
            "resources/list" | "resources/templates/list" | "prompts/list" => {
                self.relay_list(who, session, id, method, &params).await
            }
            "resources/read" => self.relay_resource(who, session, id, method, params).await,
            "resources/subscribe" | "resources/unsubscribe" => {
                self.relay_subscription(who, session, id, method, params)
                    .await
            }
            "prompts/get" => self.relay_prompt(who, session, id, params).await,
            _ => self.relay_completion(who, session, id, params).await,
        }
    }

    async fn relay_list(
        &self,
        who: &Principal,
        session: Option<&Arc<Session>>,
        id: &Value,
        method: &str,
        params: &Value,
    ) -> Value {
        let method: &'static str = match method {
            "resources/list" => "resources/list",
            "resources/templates/list" => "resources/templates/list",
            _ => "prompts/list",
        };
        let mut ev = self.event("list", Some(who), session.map(|s| s.as_ref()));
        ev.method = Some(method.into());
        if params.get("cursor").is_some_and(|c| !c.is_null()) {
            return self
                .reject_invalid_params(
                    &mut ev,
                    id,
                    "Invalid params: unknown cursor (the gateway answers every item in one page)",
                )
                .await;
        }
        let (key, capability) = match method {
            "resources/list" => ("resources", "resources"),
            "resources/templates/list" => ("resourceTemplates", "resources"),
            _ => ("prompts", "prompts"),
        };
        let (served, degraded) = self.gather(&who.agent, method, key, capability).await;
        let mut items = Vec::new();
        for (cid, list) in served {
            for mut it in list {
                if key == "prompts" {
                    let Some(name) = it.get("name").and_then(Value::as_str) else {
                        continue;
                    };
                    it["name"] = Value::String(format!("{cid}.{name}"));
                }
                items.push(it);
            }
        }
        super::record_list(&mut ev, items.len(), degraded);
        self.audit.append_nowait(&ev).await;
        ok(id, json!({ key: items }))
    }

    /// The connector serving `uri` for `agent`, refreshing the lists once when unknown
    /// (at most every [`REFRESH_INTERVAL`] per agent).
    async fn route_uri(&self, agent: &str, uri: &str) -> Option<String> {
        let visible = self.relay_connectors(agent);
        if let Some(c) = self.relay.route(uri, &visible) {
            return Some(c);
        }
        if !self.relay.may_refresh(agent) {
            return None;
        }
        self.gather(agent, "resources/list", "resources", "resources")
            .await;
        self.gather(
            agent,
            "resources/templates/list",
            "resourceTemplates",
            "resources",
        )
        .await;
        self.relay.route(uri, &visible)
    }

    /// Forwards `method` to `cid`, returning the upstream's response message or the error
    /// text for the agent.
    async fn forward(
        &self,
        cid: &str,
        method: &str,
        params: Value,
        session: Option<&Arc<Session>>,
        id: &Value,
    ) -> Result<Value, GatewayError> {
        let Some(up) = self.upstreams.get(cid).cloned() else {
            return Err(GatewayError::Unavailable {
                connector: cid.to_string(),
                message: "no upstream".into(),
            });
        };
        let mut registered = super::Cancellable::register(session, id);
        up.request(method, params, None, registered.receiver.take())
            .await
    }

    /// Relays an upstream answer, inspecting a successful result's content. Fills the
    /// outcome of `ev`.
    fn answer(
        &self,
        session: Option<&Arc<Session>>,
        id: &Value,
        inspect_as: Option<&ToolRef>,
        res: Result<Value, GatewayError>,
        ev: &mut AuditEvent,
    ) -> Value {
        match res {
            Ok(resp) => {
                if let Some(err) = resp.get("error") {
                    ev.outcome = Some("upstream_error".into());
                    ev.detail.insert("error".into(), err.clone());
                    return json!({"jsonrpc": "2.0", "id": id, "error": err});
                }
                let mut result = resp.get("result").cloned().unwrap_or(json!({}));
                ev.outcome = Some("ok".into());
                if let Some(tr) = inspect_as
                    && let Some(blocked) = self.inspect_result(session, tr, &mut result, ev)
                {
                    ev.outcome = Some("blocked_injection".into());
                    return error(
                        id,
                        codes::INTERNAL,
                        &blocked,
                        Some(json!({META_KEY: {"blocked": "injection"}})),
                    );
                }
                ok(id, result)
            }
            Err(GatewayError::Cancelled) => {
                ev.outcome = Some("cancelled".into());
                error(id, codes::INTERNAL, "the request was cancelled", None)
            }
            Err(e) => {
                ev.outcome = Some("upstream_error".into());
                ev.detail
                    .insert("error".into(), Value::String(e.to_string()));
                error(id, codes::INTERNAL, &format!("Warden: {e}"), None)
            }
        }
    }

    /// The `uri` of a resource request and the connector serving it for `who`. Err is the
    /// answer: invalid params, or "resource not found" (audited as a default deny, without
    /// saying whether the URI exists elsewhere).
    async fn routed_uri(
        &self,
        who: &Principal,
        id: &Value,
        method: &str,
        params: &Value,
        ev: &mut AuditEvent,
    ) -> Result<(String, String), Value> {
        let Some(uri) = params
            .get("uri")
            .and_then(Value::as_str)
            .map(str::to_string)
        else {
            return Err(self
                .reject_invalid_params(
                    ev,
                    id,
                    &format!("Invalid params: {method} needs a string `uri`"),
                )
                .await);
        };
        ev.detail.insert("uri".into(), Value::String(uri.clone()));
        let Some(cid) = self.route_uri(&who.agent, &uri).await else {
            ev.decision = Some("deny".into());
            ev.policies = vec!["default-deny".into()];
            let reason = format!(
                "no connector that agent {} may use lists the resource {uri}",
                who.agent
            );
            ev.reasons = vec![reason.clone()];
            ev.outcome = Some("denied".into());
            self.audit.append_nowait(ev).await;
            return Err(error(
                id,
                RESOURCE_NOT_FOUND,
                &format!("Resource not found: {reason}"),
                Some(
                    json!({"uri": uri, META_KEY: {"decision": "deny", "policies": ["default-deny"]}}),
                ),
            ));
        };
        Ok((uri, cid))
    }

    async fn relay_resource(
        &self,
        who: &Principal,
        session: Option<&Arc<Session>>,
        id: &Value,
        method: &str,
        params: Value,
    ) -> Value {
        let started = Instant::now();
        let mut ev = self.event("resource_read", Some(who), session.map(|s| s.as_ref()));
        ev.request = Some(self.next_request_id());
        ev.method = Some(method.into());
        let (uri, cid) = match self.routed_uri(who, id, method, &params, &mut ev).await {
            Ok(x) => x,
            Err(reply) => return reply,
        };
        ev.args_digest = Some(digest(&json!({ "uri": uri })));
        ev.decision = Some("allow".into());
        ev.tool = Some(format!("{cid}.{method}"));
        ev.detail
            .insert("connector".into(), Value::String(cid.clone()));
        let res = self.forward(&cid, method, params, session, id).await;
        let tr = ToolRef {
            connector: cid,
            tool: method.to_string(),
        };
        let reply = self.answer(session, id, Some(&tr), res, &mut ev);
        ev.latency_ms = Some(started.elapsed().as_secs_f64() * 1000.0);
        ev.tainted = session.map(|s| s.tainted.load(Ordering::Acquire));
        self.audit.append_nowait(&ev).await;
        reply
    }

    /// `resources/subscribe` and `resources/unsubscribe` (see the module documentation).
    async fn relay_subscription(
        &self,
        who: &Principal,
        session: Option<&Arc<Session>>,
        id: &Value,
        method: &str,
        params: Value,
    ) -> Value {
        let mut ev = self.event(
            "resource_subscription",
            Some(who),
            session.map(|s| s.as_ref()),
        );
        ev.method = Some(method.into());
        let Some(session) = session else {
            return self
                .reject_invalid_params(
                    &mut ev,
                    id,
                    "Invalid params: subscriptions belong to a session (send initialize first)",
                )
                .await;
        };
        let (uri, cid) = match self.routed_uri(who, id, method, &params, &mut ev).await {
            Ok(x) => x,
            Err(reply) => return reply,
        };
        ev.decision = Some("allow".into());
        ev.detail
            .insert("connector".into(), Value::String(cid.clone()));
        let supported = match self.upstreams.get(&cid) {
            Some(up) => up
                .capabilities()
                .await
                .is_ok_and(|c| c.pointer("/resources/subscribe") == Some(&Value::Bool(true))),
            None => false,
        };
        if !supported {
            ev.outcome = Some("unsupported".into());
            self.audit.append_nowait(&ev).await;
            return error(
                id,
                codes::METHOD_NOT_FOUND,
                &format!("connector {cid} does not support resource subscriptions"),
                None,
            );
        }
        let subscribe = method == "resources/subscribe";
        let upstream_call = if subscribe {
            self.subscriptions.add(&cid, &uri, &session.id)
        } else {
            self.subscriptions.remove(&cid, &uri, &session.id)
        };
        let mut reply = ok(id, json!({}));
        if upstream_call {
            let res = self
                .forward(&cid, method, json!({ "uri": uri }), Some(session), id)
                .await;
            reply = self.answer(Some(session), id, None, res, &mut ev);
            if subscribe && reply.get("error").is_some() {
                self.subscriptions.remove(&cid, &uri, &session.id);
            }
        } else {
            ev.outcome = Some("ok".into());
            ev.detail.insert("shared".into(), Value::Bool(true));
        }
        self.audit.append_nowait(&ev).await;
        reply
    }

    /// Splits `<connector>.<prompt>` into a connector the agent may use and the upstream
    /// name.
    fn route_prompt(&self, agent: &str, name: &str) -> Option<(String, String)> {
        let (cid, prompt) = name.split_once('.')?;
        if prompt.is_empty() || !self.relay_connectors(agent).iter().any(|c| c == cid) {
            return None;
        }
        Some((cid.to_string(), prompt.to_string()))
    }

    async fn relay_prompt(
        &self,
        who: &Principal,
        session: Option<&Arc<Session>>,
        id: &Value,
        mut params: Value,
    ) -> Value {
        let started = Instant::now();
        let mut ev = self.event("prompt_get", Some(who), session.map(|s| s.as_ref()));
        ev.request = Some(self.next_request_id());
        ev.method = Some("prompts/get".into());
        let name = params
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let args = params
            .get("arguments")
            .cloned()
            .unwrap_or(Value::Object(Map::new()));
        ev.tool = Some(name.clone());
        ev.args_digest = Some(digest(&args));
        ev.args = Some(self.redact_args(&args));
        if name.is_empty() || !args.is_object() {
            return self
                .reject_invalid_params(
                    &mut ev,
                    id,
                    "Invalid params: prompts/get needs a `name` and object `arguments`",
                )
                .await;
        }
        let Some((cid, prompt)) = self.route_prompt(&who.agent, &name) else {
            let reason = format!(
                "unknown prompt `{name}`: prompts are named <connector>.<prompt> of a connector agent {} may use",
                who.agent
            );
            ev.decision = Some("deny".into());
            ev.policies = vec!["default-deny".into()];
            ev.reasons = vec![reason.clone()];
            ev.outcome = Some("denied".into());
            self.audit.append_nowait(&ev).await;
            return error(
                id,
                codes::INVALID_PARAMS,
                &format!("Invalid params: {reason}"),
                Some(json!({META_KEY: {"decision": "deny", "policies": ["default-deny"]}})),
            );
        };
        ev.decision = Some("allow".into());
        ev.detail
            .insert("connector".into(), Value::String(cid.clone()));
        params["name"] = Value::String(prompt.clone());
        let res = self.forward(&cid, "prompts/get", params, session, id).await;
        let tr = ToolRef {
            connector: cid,
            tool: format!("prompts/get:{prompt}"),
        };
        let reply = self.answer(session, id, Some(&tr), res, &mut ev);
        ev.latency_ms = Some(started.elapsed().as_secs_f64() * 1000.0);
        ev.tainted = session.map(|s| s.tainted.load(Ordering::Acquire));
        self.audit.append_nowait(&ev).await;
        reply
    }

    /// An agent's answer to a server request relayed during one of its calls: handed to
    /// the upstream waiting for it, and audited (kind `server_request`: connector, method,
    /// whether the agent answered or refused; never the content).
    pub(crate) async fn server_response(
        &self,
        who: &Principal,
        session: Option<&Arc<Session>>,
        msg: &Value,
    ) {
        let Some((connector, method)) = crate::upstream::deliver_response(msg) else {
            return;
        };
        let mut ev = self.event("server_request", Some(who), session.map(|s| s.as_ref()));
        ev.method = Some(method);
        ev.outcome = Some(
            if msg.get("error").is_some() {
                "refused_by_agent"
            } else {
                "answered"
            }
            .into(),
        );
        ev.detail
            .insert("connector".into(), Value::String(connector));
        self.audit.append_nowait(&ev).await;
    }

    async fn relay_completion(
        &self,
        who: &Principal,
        session: Option<&Arc<Session>>,
        id: &Value,
        mut params: Value,
    ) -> Value {
        let mut ev = self.event("completion", Some(who), session.map(|s| s.as_ref()));
        ev.request = Some(self.next_request_id());
        ev.method = Some("completion/complete".into());
        let r = params.get("ref").cloned().unwrap_or(Value::Null);
        let kind = r.get("type").and_then(Value::as_str).unwrap_or("");
        ev.args_digest = Some(digest(&params.get("argument").cloned().unwrap_or_default()));
        let routed = match kind {
            "ref/prompt" => {
                let name = r.get("name").and_then(Value::as_str).unwrap_or("");
                ev.tool = Some(name.to_string());
                self.route_prompt(&who.agent, name).map(|(cid, prompt)| {
                    params["ref"]["name"] = Value::String(prompt);
                    cid
                })
            }
            "ref/resource" => {
                let uri = r.get("uri").and_then(Value::as_str).unwrap_or("");
                ev.detail.insert("uri".into(), Value::String(uri.into()));
                self.route_uri(&who.agent, uri).await
            }
            _ => {
                return self.reject_invalid_params(&mut ev, id, "Invalid params: completion/complete needs a `ref` of type ref/prompt or ref/resource").await;
            }
        };
        let Some(cid) = routed else {
            ev.decision = Some("deny".into());
            ev.policies = vec!["default-deny".into()];
            ev.outcome = Some("denied".into());
            self.audit.append_nowait(&ev).await;
            return error(
                id,
                codes::INVALID_PARAMS,
                &format!(
                    "Invalid params: the completion ref names no prompt or resource of a connector agent {} may use",
                    who.agent
                ),
                None,
            );
        };
        ev.decision = Some("allow".into());
        ev.detail
            .insert("connector".into(), Value::String(cid.clone()));
        let res = self
            .forward(&cid, "completion/complete", params, session, id)
            .await;
        let reply = self.answer(session, id, None, res, &mut ev);
        self.audit.append_nowait(&ev).await;
        reply
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_match_their_expansions_only() {
        let t = "demo://resource/dynamic/text/{resourceId}";
        assert!(template_matches(t, "demo://resource/dynamic/text/42"));
        assert!(!template_matches(t, "demo://resource/dynamic/text/"));
        assert!(!template_matches(t, "demo://resource/dynamic/text/4/2"));
        assert!(!template_matches(t, "demo://resource/dynamic/blob/42"));
        assert!(template_matches("file:///{+path}", "file:///a/b/c.txt"));
        assert!(template_matches("x://{a}/{b}.json", "x://one/two.json"));
        assert!(!template_matches("x://{a}/{b}.json", "x://one/two.txt"));
        assert!(!template_matches("x://{a", "x://a"));
    }

    #[test]
    fn routing_prefers_visible_connectors() {
        let s = RelayState::default();
        s.remember_uri("u://1", "hidden");
        s.remember_uri("u://1", "shown");
        s.remember_template("t://{id}", "hidden");
        let vis = vec!["shown".to_string()];
        assert_eq!(s.route("u://1", &vis).as_deref(), Some("shown"));
        assert_eq!(s.route("t://9", &vis), None);
        assert_eq!(
            s.route("t://9", &["hidden".to_string()]).as_deref(),
            Some("hidden")
        );
        assert_eq!(s.route("u://2", &vis), None);
    }

    #[test]
    fn unknown_uris_refresh_the_lists_at_most_every_interval_per_agent() {
        let s = RelayState::default();
        assert!(s.may_refresh("alpha"));
        assert!(!s.may_refresh("alpha"));
        assert!(s.may_refresh("beta"));
    }

    #[test]
    fn stateless_requests_are_refused_with_the_served_revisions() {
        let msg = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/list",
            "params": {"_meta": {PROTOCOL_VERSION_META: "2026-07-28"}}});
        let r = unsupported_stateless(&msg).expect("refused");
        assert_eq!(r["error"]["code"], UNSUPPORTED_PROTOCOL_VERSION);
        assert_eq!(r["id"], 7);
        assert_eq!(r["error"]["data"]["requested"], "2026-07-28");
        assert_eq!(r["error"]["data"]["supported"], json!(SUPPORTED_PROTOCOLS));
        let legacy = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/list",
            "params": {"_meta": {"progressToken": 1}}});
        assert!(unsupported_stateless(&legacy).is_none());
    }
}
