//! Upstream MCP servers: stdio child processes and Streamable HTTP endpoints.
//!
//! One [`Upstream`] per connector, shared by every agent session. The gateway initialises
//! each upstream itself (it is the upstream's only client) and relays raw JSON: request ids
//! are rewritten to the upstream's own counter, progress tokens to gateway-unique ones, and
//! both are restored on the way back. Non-JSON lines on a child's stdout are skipped; a child
//! that exits fails its in-flight calls and is restarted on the next call, with exponential
//! backoff between failed starts. Its stderr goes to the gateway's log.
//!
//! Server → client requests: the gateway tells upstreams it handles `sampling` and
//! `elicitation`. Such a request is relayed to the agent whose call it belongs to (over
//! HTTP: the call's SSE stream; over stdio: the only call with a relay channel in flight on
//! that child, otherwise it is refused as ambiguous) under a fresh unguessable id; the
//! agent's answer comes back through [`deliver_response`]. `ping` is answered locally;
//! anything else (`roots/list`: an upstream is shared by every agent) gets `-32601`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::{mpsc, oneshot};

use crate::GatewayError;
use crate::http_client::{Outgoing, Response};
use hyper::header::{ACCEPT, CONTENT_TYPE, HeaderName, HeaderValue};

/// The protocol revision the gateway speaks to upstreams.
pub const UPSTREAM_PROTOCOL: &str = "2025-11-25";

/// Where a call's progress (and other request-scoped notifications) go.
pub type NotifySink = mpsc::UnboundedSender<Value>;

/// Server → client methods relayed to the agent during a call.
pub const RELAYED_SERVER_REQUESTS: &[&str] = &["sampling/createMessage", "elicitation/create"];

/// Longest the gateway waits for an agent to answer a relayed server request.
pub const SERVER_REQUEST_TIMEOUT: Duration = Duration::from_secs(600);

/// Relayed server requests awaiting the agent's answer: gateway id → (connector, method,
/// where the answer goes).
type PendingServerRequests = HashMap<String, (String, String, oneshot::Sender<Value>)>;
static SERVER_REQUESTS: std::sync::LazyLock<Mutex<PendingServerRequests>> =
    std::sync::LazyLock::new(|| Mutex::new(HashMap::new()));

/// Hands an agent's JSON-RPC response to the upstream request it answers. Returns the
/// connector and method of that request, or None when no relayed request has this id.
pub fn deliver_response(msg: &Value) -> Option<(String, String)> {
    let id = msg.get("id").and_then(Value::as_str)?;
    let (connector, method, tx) = SERVER_REQUESTS.lock().unwrap().remove(id)?;
    let _ = tx.send(msg.clone());
    Some((connector, method))
}

/// The reply to send upstream for a server → client request `msg`: relayed to the agent
/// through `sink` when it is one of [`RELAYED_SERVER_REQUESTS`] and a call owns it.
async fn answer_server_request(
    connector: &str,
    msg: &Value,
    sink: Option<NotifySink>,
    audit: Option<&warden_store::AuditWriter>,
    guard: Option<&ServerRequestGuard>,
) -> Value {
    let method = msg.get("method").and_then(Value::as_str).unwrap_or("");
    let blocked = if RELAYED_SERVER_REQUESTS.contains(&method) {
        guard.and_then(|g| (g.0)(connector, msg))
    } else {
        None
    };
    let reply = match &blocked {
        Some(why) => json!({"jsonrpc": "2.0", "id": msg.get("id").cloned().unwrap_or(Value::Null),
            "error": {"code": -32603, "message": format!("Warden blocked {method}: {why}")}}),
        None => relay_server_request(connector, msg, sink).await,
    };
    if let (Some(audit), Some(err)) = (audit, reply.get("error"))
        && method != "ping"
    {
        let mut ev = warden_store::AuditEvent::now("server_request");
        ev.method = Some(method.to_string());
        ev.outcome = Some(
            if blocked.is_some() {
                "blocked_injection"
            } else if err.get("code").and_then(Value::as_i64) == Some(-32601) {
                "refused"
            } else {
                "unanswered"
            }
            .into(),
        );
        ev.detail
            .insert("connector".into(), Value::String(connector.to_string()));
        if let Some(m) = err.get("message") {
            ev.reasons = vec![m.as_str().unwrap_or("").to_string()];
        }
        audit.append_nowait(&ev).await;
    }
    reply
}

async fn relay_server_request(connector: &str, msg: &Value, sink: Option<NotifySink>) -> Value {
    let id = msg.get("id").cloned().unwrap_or(Value::Null);
    let method = msg.get("method").and_then(Value::as_str).unwrap_or("");
    let refuse = |why: String| json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32601, "message": why}});
    if method == "ping" {
        return json!({"jsonrpc": "2.0", "id": id, "result": {}});
    }
    if !RELAYED_SERVER_REQUESTS.contains(&method) {
        return refuse(format!(
            "the Warden gateway does not relay {method} (an upstream is shared by every agent)"
        ));
    }
    let Some(sink) = sink else {
        return refuse(format!(
            "the Warden gateway cannot tell which agent's call {method} belongs to, or that agent's transport cannot carry it"
        ));
    };
    let mut b = [0u8; 12];
    let _ = getrandom::fill(&mut b);
    let ours = format!("warden-{connector}-{}", hex::encode(b));
    let (tx, rx) = oneshot::channel();
    SERVER_REQUESTS.lock().unwrap().insert(
        ours.clone(),
        (connector.to_string(), method.to_string(), tx),
    );
    let mut fwd = msg.clone();
    fwd["id"] = Value::String(ours.clone());
    if sink.send(fwd).is_err() {
        SERVER_REQUESTS.lock().unwrap().remove(&ours);
        return refuse(format!(
            "the agent's call ended before {method} could be relayed"
        ));
    }
    match tokio::time::timeout(SERVER_REQUEST_TIMEOUT, rx).await {
        Ok(Ok(answer)) => {
            let mut reply = json!({"jsonrpc": "2.0", "id": id});
            match answer.get("error") {
                Some(e) => reply["error"] = e.clone(),
                None => reply["result"] = answer.get("result").cloned().unwrap_or(json!({})),
            }
            reply
        }
        _ => {
            SERVER_REQUESTS.lock().unwrap().remove(&ours);
            json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32603,
                "message": format!("the agent did not answer {method}")}})
        }
    }
}

/// The capabilities the gateway announces to upstreams.
fn client_capabilities() -> Value {
    json!({"sampling": {}, "elicitation": {}})
}

/// Resolves `${env:NAME}` and `${file:PATH}` (relative to `root`) inside a configured value.
pub fn resolve_value(raw: &str, root: &Path) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = raw;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unterminated `${{` in `{raw}`"))?;
        let expr = &after[..end];
        if let Some(name) = expr.strip_prefix("env:") {
            let v = std::env::var(name)
                .map_err(|_| format!("environment variable {name} is not set"))?;
            out.push_str(&v);
        } else if let Some(path) = expr.strip_prefix("file:") {
            let p = root.join(path);
            let v = std::fs::read_to_string(&p)
                .map_err(|e| format!("cannot read secret file {}: {e}", p.display()))?;
            out.push_str(v.trim_end_matches(['\n', '\r']));
        } else {
            return Err(format!(
                "unknown reference `${{{expr}}}` (use env:NAME or file:PATH)"
            ));
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The environment a child gets besides its configured `env`: never the gateway's own
/// secrets, only what programs need to run.
const PASSED_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LC_ALL",
    "TMPDIR",
    "TERM",
    "SHELL",
    "NODE_PATH",
    "VIRTUAL_ENV",
];

/// How to start a stdio upstream.
#[derive(Debug, Clone)]
pub struct StdioSpec {
    pub command: String,
    pub args: Vec<String>,
    /// Unresolved values (`${env:…}`, `${file:…}`).
    pub env: BTreeMap<String, String>,
    pub cwd: PathBuf,
    pub root: PathBuf,
}

/// How to reach an HTTP upstream.
#[derive(Debug, Clone)]
pub struct HttpSpec {
    pub url: String,
    /// Unresolved values.
    pub headers: BTreeMap<String, String>,
    pub root: PathBuf,
}

/// Tunables.
#[derive(Debug, Clone)]
pub struct UpstreamOptions {
    /// Longest wait for an upstream's `initialize` answer.
    pub init_timeout: Duration,
    /// Longest a cached `tools/list` is trusted.
    pub tools_ttl: Duration,
    pub max_backoff: Duration,
    /// Where server → client requests the gateway refuses or that go unanswered are
    /// recorded (kind `server_request`); answered ones are recorded by the gateway.
    pub audit: Option<warden_store::AuditWriter>,
    /// Checks a server → client request before it is relayed to the agent.
    pub server_request_guard: Option<ServerRequestGuard>,
    /// Told (connector, message) of every `notifications/{tools,resources,prompts}/list_changed`
    /// and `notifications/resources/updated` an upstream sends; the gateway forwards them to
    /// the sessions that can see the connector (and subscribed, for `updated`).
    pub on_list_changed: Option<ListChangedHook>,
}

/// See [`UpstreamOptions::on_list_changed`].
#[derive(Clone)]
pub struct ListChangedHook(pub Arc<ListChangedFn>);

/// The function inside a [`ListChangedHook`]: (connector, notification).
pub type ListChangedFn = dyn Fn(&str, &Value) + Send + Sync;

impl std::fmt::Debug for ListChangedHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ListChangedHook")
    }
}

/// Checks a server → client request (connector, message) before it reaches the agent:
/// `Some(reason)` refuses it (the gateway uses it to block prompt injections in sampling
/// and elicitation requests of `on_injection: block` connectors).
#[derive(Clone)]
pub struct ServerRequestGuard(pub Arc<ServerRequestCheck>);

/// The function inside a [`ServerRequestGuard`].
pub type ServerRequestCheck = dyn Fn(&str, &Value) -> Option<String> + Send + Sync;

impl std::fmt::Debug for ServerRequestGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerRequestGuard")
    }
}

impl Default for UpstreamOptions {
    fn default() -> Self {
        UpstreamOptions {
            init_timeout: Duration::from_secs(60),
            tools_ttl: Duration::from_secs(300),
            max_backoff: Duration::from_secs(30),
            audit: None,
            server_request_guard: None,
            on_list_changed: None,
        }
    }
}

enum Kind {
    Stdio(StdioUpstream),
    Http(HttpUpstream),
    Unavailable(String),
}

/// One connector's upstream.
pub struct Upstream {
    pub connector: String,
    kind: Kind,
    tools: Mutex<Option<(Instant, Arc<Vec<Value>>)>>,
    tools_stale: Arc<AtomicBool>,
    opts: UpstreamOptions,
    next_progress: AtomicU64,
}

impl Upstream {
    pub fn stdio(connector: &str, spec: StdioSpec, opts: UpstreamOptions) -> Upstream {
        let stale = Arc::new(AtomicBool::new(false));
        Upstream {
            connector: connector.to_string(),
            kind: Kind::Stdio(StdioUpstream {
                connector: connector.to_string(),
                spec,
                state: tokio::sync::Mutex::new(StdioState {
                    conn: None,
                    failures: 0,
                    not_before: None,
                    last_error: None,
                }),
                tools_stale: stale.clone(),
                init_timeout: opts.init_timeout,
                max_backoff: opts.max_backoff,
                audit: opts.audit.clone(),
                guard: opts.server_request_guard.clone(),
                list_changed: opts.on_list_changed.clone(),
            }),
            tools: Mutex::new(None),
            tools_stale: stale,
            opts,
            next_progress: AtomicU64::new(1),
        }
    }

    pub fn http(connector: &str, spec: HttpSpec, opts: UpstreamOptions) -> Upstream {
        let stale = Arc::new(AtomicBool::new(false));
        Upstream {
            connector: connector.to_string(),
            kind: Kind::Http(HttpUpstream::new(
                connector,
                spec,
                opts.init_timeout,
                stale.clone(),
                opts.audit.clone(),
                opts.server_request_guard.clone(),
                opts.on_list_changed.clone(),
            )),
            tools: Mutex::new(None),
            tools_stale: stale,
            opts,
            next_progress: AtomicU64::new(1),
        }
    }

    pub fn unavailable(connector: &str, why: &str) -> Upstream {
        Upstream {
            connector: connector.to_string(),
            kind: Kind::Unavailable(why.to_string()),
            tools: Mutex::new(None),
            tools_stale: Arc::new(AtomicBool::new(false)),
            opts: UpstreamOptions::default(),
            next_progress: AtomicU64::new(1),
        }
    }

    /// Sends one request and waits for its response message (`result` or `error`, id
    /// removed). Progress notifications for it go to `sink` with the caller's token restored.
    pub async fn request(
        &self,
        method: &str,
        mut params: Value,
        sink: Option<NotifySink>,
        cancel: Option<oneshot::Receiver<String>>,
    ) -> Result<Value, GatewayError> {
        let relay = sink.clone();
        // Rewrite the progress token so that tokens of different clients never collide.
        let mut progress: Option<(String, Value, NotifySink)> = None;
        if let Some(meta) = params.get_mut("_meta").and_then(Value::as_object_mut)
            && let Some(orig) = meta.get("progressToken").cloned()
        {
            if let Some(sink) = sink {
                let ours = format!(
                    "warden-{}",
                    self.next_progress.fetch_add(1, Ordering::Relaxed)
                );
                meta.insert("progressToken".into(), Value::String(ours.clone()));
                progress = Some((ours, orig, sink));
            } else {
                meta.remove("progressToken");
            }
        }
        match &self.kind {
            Kind::Stdio(s) => s.request(method, params, progress, relay, cancel).await,
            Kind::Http(h) => h.request(method, params, progress, relay, cancel).await,
            Kind::Unavailable(why) => Err(GatewayError::Unavailable {
                connector: self.connector.clone(),
                message: why.clone(),
            }),
        }
    }

    /// The upstream's tools (all pages), cached until `notifications/tools/list_changed`,
    /// a restart, or the TTL.
    pub async fn tools(&self) -> Result<Arc<Vec<Value>>, GatewayError> {
        {
            // Stale flag and cache under one lock: once the list is outdated no caller is
            // served it (tool pins are checked on the new one), and a failed fetch leaves
            // nothing to fall back on.
            let mut cache = self.tools.lock().unwrap();
            if !self.tools_stale.swap(false, Ordering::AcqRel)
                && let Some((at, tools)) = cache.as_ref()
                && at.elapsed() < self.opts.tools_ttl
            {
                return Ok(tools.clone());
            }
            *cache = None;
        }
        let mut all = Vec::new();
        let mut cursor: Option<Value> = None;
        for _page in 0..100 {
            let params = match &cursor {
                Some(c) => json!({ "cursor": c }),
                None => json!({}),
            };
            let resp = self.request("tools/list", params, None, None).await?;
            if let Some(err) = resp.get("error") {
                return Err(GatewayError::Upstream {
                    connector: self.connector.clone(),
                    message: format!("tools/list failed: {err}"),
                });
            }
            let result = resp.get("result").cloned().unwrap_or(Value::Null);
            if let Some(tools) = result.get("tools").and_then(Value::as_array) {
                all.extend(tools.iter().cloned());
            }
            match result.get("nextCursor") {
                Some(c) if !c.is_null() => cursor = Some(c.clone()),
                _ => break,
            }
        }
        let tools = Arc::new(all);
        *self.tools.lock().unwrap() = Some((Instant::now(), tools.clone()));
        Ok(tools)
    }

    /// The capabilities the upstream announced in its `initialize` answer (connecting first
    /// if needed).
    pub async fn capabilities(&self) -> Result<Value, GatewayError> {
        match &self.kind {
            Kind::Stdio(s) => Ok(s.connection().await?.capabilities.lock().unwrap().clone()),
            Kind::Http(h) => Ok(h.session().await?.capabilities.clone()),
            Kind::Unavailable(why) => Err(GatewayError::Unavailable {
                connector: self.connector.clone(),
                message: why.clone(),
            }),
        }
    }

    /// Stops a child process, if any.
    pub async fn shutdown(&self) {
        if let Kind::Stdio(s) = &self.kind {
            let mut st = s.state.lock().await;
            if let Some(conn) = st.conn.take() {
                conn.kill();
            }
        }
    }
}

/// Routes a notification from an upstream: progress goes to the call that asked for it.
fn route_notification(
    msg: &Value,
    progress: &Mutex<HashMap<String, (Value, NotifySink)>>,
    tools_stale: &AtomicBool,
    connector: &str,
    list_changed: Option<&ListChangedHook>,
) {
    let method = msg.get("method").and_then(Value::as_str).unwrap_or("");
    if matches!(
        method,
        "notifications/tools/list_changed"
            | "notifications/resources/list_changed"
            | "notifications/prompts/list_changed"
            | "notifications/resources/updated"
    ) && let Some(hook) = list_changed
    {
        (hook.0)(connector, msg);
    }
    match method {
        "notifications/progress" => {
            let token = msg
                .pointer("/params/progressToken")
                .and_then(Value::as_str)
                .unwrap_or("");
            let map = progress.lock().unwrap();
            if let Some((orig, sink)) = map.get(token) {
                let mut m = msg.clone();
                m["params"]["progressToken"] = orig.clone();
                let _ = sink.send(m);
            }
        }
        "notifications/tools/list_changed" => tools_stale.store(true, Ordering::Release),
        "notifications/message" => {
            eprintln!(
                "[{connector}] log: {}",
                msg.get("params").unwrap_or(&Value::Null)
            );
        }
        _ => {}
    }
}

fn is_response(msg: &Value) -> bool {
    msg.get("method").is_none() && (msg.get("result").is_some() || msg.get("error").is_some())
}

// ---------------------------------------------------------------------------------------
// stdio

struct StdioState {
    conn: Option<Arc<StdioConn>>,
    failures: u32,
    not_before: Option<Instant>,
    last_error: Option<String>,
}

struct StdioUpstream {
    audit: Option<warden_store::AuditWriter>,
    guard: Option<ServerRequestGuard>,
    list_changed: Option<ListChangedHook>,
    connector: String,
    spec: StdioSpec,
    state: tokio::sync::Mutex<StdioState>,
    tools_stale: Arc<AtomicBool>,
    init_timeout: Duration,
    max_backoff: Duration,
}

struct StdioConn {
    stdin: tokio::sync::Mutex<ChildStdin>,
    pending: Mutex<HashMap<u64, oneshot::Sender<Value>>>,
    progress: Arc<Mutex<HashMap<String, (Value, NotifySink)>>>,
    alive: AtomicBool,
    exit: Mutex<Option<String>>,
    child: Mutex<Option<Child>>,
    next_id: AtomicU64,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
    /// The server's `capabilities` from its `initialize` answer.
    capabilities: Mutex<Value>,
    /// In-flight calls that can carry server requests to their agent, by upstream id.
    relays: Mutex<HashMap<u64, NotifySink>>,
}

/// Unregisters a call's relay channel when the call ends, however it ends.
struct RelayGuard<'a>(&'a StdioConn, u64);

impl Drop for RelayGuard<'_> {
    fn drop(&mut self) {
        self.0.relays.lock().unwrap().remove(&self.1);
    }
}

impl StdioConn {
    /// The relay channel of the only in-flight call that has one.
    fn sole_relay(&self) -> Option<NotifySink> {
        let r = self.relays.lock().unwrap();
        if r.len() == 1 {
            r.values().next().cloned()
        } else {
            None
        }
    }

    fn kill(&self) {
        self.alive.store(false, Ordering::Release);
        if let Some(mut c) = self.child.lock().unwrap().take() {
            let _ = c.start_kill();
        }
    }

    fn death_message(&self) -> String {
        let exit = self
            .exit
            .lock()
            .unwrap()
            .clone()
            .unwrap_or_else(|| "exited".into());
        let tail: Vec<String> = self.stderr_tail.lock().unwrap().iter().cloned().collect();
        if tail.is_empty() {
            format!("the server process {exit}")
        } else {
            format!(
                "the server process {exit}; last stderr: {}",
                tail.join(" | ")
            )
        }
    }

    async fn send(&self, msg: &Value) -> Result<(), String> {
        let mut line = serde_json::to_vec(msg).map_err(|e| e.to_string())?;
        line.push(b'\n');
        let mut stdin = self.stdin.lock().await;
        stdin.write_all(&line).await.map_err(|e| e.to_string())?;
        stdin.flush().await.map_err(|e| e.to_string())
    }

    /// Sends a request and waits for its response (or the child's death).
    async fn call(
        &self,
        method: &str,
        params: Value,
        relay: Option<NotifySink>,
        cancel: Option<oneshot::Receiver<String>>,
    ) -> Result<Value, Result<String, ()>> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let _relay = relay.map(|sink| {
            self.relays.lock().unwrap().insert(id, sink);
            RelayGuard(self, id)
        });
        let (tx, rx) = oneshot::channel();
        self.pending.lock().unwrap().insert(id, tx);
        if !self.alive.load(Ordering::Acquire) {
            self.pending.lock().unwrap().remove(&id);
            return Err(Ok(self.death_message()));
        }
        let msg = request_message(&Value::from(id), method, params);
        if let Err(e) = self.send(&msg).await {
            self.pending.lock().unwrap().remove(&id);
            return Err(Ok(format!("cannot write to the server: {e}")));
        }
        let res = match cancel {
            Some(cancel) => {
                tokio::select! {
                    r = rx => r,
                    reason = cancel => {
                        self.pending.lock().unwrap().remove(&id);
                        let reason = reason.unwrap_or_default();
                        let _ = self.send(&json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                            "params": {"requestId": id, "reason": reason}})).await;
                        return Err(Err(()));
                    }
                }
            }
            None => rx.await,
        };
        res.map_err(|_| Ok(self.death_message()))
    }
}

impl StdioUpstream {
    async fn connection(&self) -> Result<Arc<StdioConn>, GatewayError> {
        let mut st = self.state.lock().await;
        if let Some(c) = &st.conn {
            if c.alive.load(Ordering::Acquire) {
                return Ok(c.clone());
            }
            let msg = c.death_message();
            st.conn = None;
            st.failures += 1;
            st.last_error = Some(msg);
            let backoff = Duration::from_millis(100u64 << st.failures.min(9)).min(self.max_backoff);
            st.not_before = Some(Instant::now() + backoff);
            eprintln!(
                "[{}] upstream died; restart allowed in {backoff:?}",
                self.connector
            );
        }
        if let Some(nb) = st.not_before
            && Instant::now() < nb
        {
            return Err(GatewayError::Unavailable {
                connector: self.connector.clone(),
                message: format!(
                    "restarting after a failure (next attempt in {} ms): {}",
                    (nb - Instant::now()).as_millis(),
                    st.last_error.clone().unwrap_or_default()
                ),
            });
        }
        match self.start().await {
            Ok(c) => {
                st.conn = Some(c.clone());
                st.not_before = None;
                self.tools_stale.store(true, Ordering::Release);
                Ok(c)
            }
            Err(message) => {
                st.failures += 1;
                let backoff =
                    Duration::from_millis(100u64 << st.failures.min(9)).min(self.max_backoff);
                st.not_before = Some(Instant::now() + backoff);
                st.last_error = Some(message.clone());
                Err(GatewayError::Unavailable {
                    connector: self.connector.clone(),
                    message,
                })
            }
        }
    }

    async fn start(&self) -> Result<Arc<StdioConn>, String> {
        let spec = &self.spec;
        let mut cmd = Command::new(&spec.command);
        cmd.args(&spec.args)
            .current_dir(&spec.cwd)
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for k in PASSED_ENV {
            if let Ok(v) = std::env::var(k) {
                cmd.env(k, v);
            }
        }
        for (k, raw) in &spec.env {
            cmd.env(k, resolve_value(raw, &spec.root)?);
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start `{}`: {e}", spec.command))?;
        let stdin = child.stdin.take().ok_or("no stdin")?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let conn = Arc::new(StdioConn {
            stdin: tokio::sync::Mutex::new(stdin),
            pending: Mutex::new(HashMap::new()),
            progress: Arc::new(Mutex::new(HashMap::new())),
            alive: AtomicBool::new(true),
            exit: Mutex::new(None),
            child: Mutex::new(Some(child)),
            next_id: AtomicU64::new(1),
            stderr_tail: Arc::new(Mutex::new(VecDeque::new())),
            capabilities: Mutex::new(json!({})),
            relays: Mutex::new(HashMap::new()),
        });
        // stderr → log, keeping the last lines for error messages.
        {
            let tail = conn.stderr_tail.clone();
            let connector = self.connector.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    eprintln!("[{connector}] {line}");
                    let mut t = tail.lock().unwrap();
                    if t.len() == 5 {
                        t.pop_front();
                    }
                    t.push_back(line.chars().take(300).collect());
                }
            });
        }
        // stdout → responses and notifications.
        {
            let conn2 = conn.clone();
            let connector = self.connector.clone();
            let stale = self.tools_stale.clone();
            let audit = self.audit.clone();
            let guard = self.guard.clone();
            let list_changed = self.list_changed.clone();
            tokio::spawn(async move {
                let mut reader = BufReader::new(stdout);
                let mut buf = Vec::new();
                loop {
                    buf.clear();
                    match reader.read_until(b'\n', &mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                    let text = String::from_utf8_lossy(&buf);
                    let text = text.trim();
                    if text.is_empty() {
                        continue;
                    }
                    let msg: Value = match serde_json::from_str(text) {
                        Ok(v) => v,
                        Err(_) => {
                            eprintln!(
                                "[{connector}] skipped a non-JSON line on stdout: {}",
                                text.chars().take(200).collect::<String>()
                            );
                            continue;
                        }
                    };
                    if is_response(&msg) {
                        if let Some(id) = msg.get("id").and_then(Value::as_u64)
                            && let Some(tx) = conn2.pending.lock().unwrap().remove(&id)
                        {
                            let _ = tx.send(msg);
                        }
                    } else if msg.get("id").is_some() {
                        // A request from the server (sampling, elicitation, roots, ping).
                        let sink = conn2.sole_relay();
                        let conn3 = conn2.clone();
                        let connector = connector.clone();
                        let audit = audit.clone();
                        let guard = guard.clone();
                        tokio::spawn(async move {
                            let reply = answer_server_request(
                                &connector,
                                &msg,
                                sink,
                                audit.as_ref(),
                                guard.as_ref(),
                            )
                            .await;
                            let _ = conn3.send(&reply).await;
                        });
                    } else {
                        route_notification(
                            &msg,
                            &conn2.progress,
                            &stale,
                            &connector,
                            list_changed.as_ref(),
                        );
                    }
                }
                conn2.alive.store(false, Ordering::Release);
                let status = conn2.child.lock().unwrap().take();
                let exit = match status {
                    Some(mut c) => {
                        match tokio::time::timeout(Duration::from_secs(2), c.wait()).await {
                            Ok(Ok(s)) => format!("exited ({s})"),
                            _ => {
                                let _ = c.start_kill();
                                "closed its stdout".to_string()
                            }
                        }
                    }
                    None => "was stopped".to_string(),
                };
                *conn2.exit.lock().unwrap() = Some(exit);
                // Fail every in-flight call.
                conn2.pending.lock().unwrap().clear();
                conn2.progress.lock().unwrap().clear();
                stale.store(true, Ordering::Release);
            });
        }
        // Handshake.
        let init = json!({
            "protocolVersion": UPSTREAM_PROTOCOL,
            "capabilities": client_capabilities(),
            "clientInfo": {"name": "warden-gateway", "version": env!("CARGO_PKG_VERSION")}
        });
        let resp =
            tokio::time::timeout(self.init_timeout, conn.call("initialize", init, None, None))
                .await
                .map_err(|_| {
                    conn.kill();
                    format!("no answer to initialize within {:?}", self.init_timeout)
                })?
                .map_err(|e| e.unwrap_or_else(|_| "cancelled".into()))?;
        if let Some(err) = resp.get("error") {
            conn.kill();
            return Err(format!("initialize failed: {err}"));
        }
        if let Some(c) = resp.pointer("/result/capabilities") {
            *conn.capabilities.lock().unwrap() = c.clone();
        }
        conn.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await?;
        Ok(conn)
    }

    async fn request(
        &self,
        method: &str,
        params: Value,
        progress: Option<(String, Value, NotifySink)>,
        relay: Option<NotifySink>,
        cancel: Option<oneshot::Receiver<String>>,
    ) -> Result<Value, GatewayError> {
        let conn = self.connection().await?;
        let token = progress.as_ref().map(|p| p.0.clone());
        if let Some((ours, orig, sink)) = progress {
            conn.progress.lock().unwrap().insert(ours, (orig, sink));
        }
        let r = conn.call(method, params, relay, cancel).await;
        if let Some(t) = token {
            conn.progress.lock().unwrap().remove(&t);
        }
        match r {
            Ok(v) => Ok(v),
            Err(Ok(message)) => Err(GatewayError::Upstream {
                connector: self.connector.clone(),
                message,
            }),
            Err(Err(())) => Err(GatewayError::Cancelled),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Streamable HTTP

struct HttpSession {
    id: Option<String>,
    protocol: String,
    /// The server's `capabilities` from its `initialize` answer.
    capabilities: Value,
}

struct HttpUpstream {
    connector: String,
    spec: HttpSpec,
    client: crate::http_client::HttpClient,
    session: tokio::sync::Mutex<Option<Arc<HttpSession>>>,
    next_id: AtomicU64,
    stale_for_tools: Arc<AtomicBool>,
    audit: Option<warden_store::AuditWriter>,
    guard: Option<ServerRequestGuard>,
    list_changed: Option<ListChangedHook>,
}

/// Installs ring as rustls' process-wide provider (idempotent).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl HttpUpstream {
    fn new(
        connector: &str,
        spec: HttpSpec,
        connect_timeout: Duration,
        stale: Arc<AtomicBool>,
        audit: Option<warden_store::AuditWriter>,
        guard: Option<ServerRequestGuard>,
        list_changed: Option<ListChangedHook>,
    ) -> HttpUpstream {
        let client = crate::http_client::HttpClient::new(
            &spec.url,
            connect_timeout.min(Duration::from_secs(10)),
        );
        HttpUpstream {
            connector: connector.to_string(),
            spec,
            client,
            session: tokio::sync::Mutex::new(None),
            next_id: AtomicU64::new(1),
            stale_for_tools: stale,
            audit,
            guard,
            list_changed,
        }
    }

    fn err(&self, message: impl Into<String>) -> GatewayError {
        GatewayError::Upstream {
            connector: self.connector.clone(),
            message: message.into(),
        }
    }

    /// The request carrying `body`: MCP headers, the connector's configured headers
    /// (resolved now, so a rotated secret file is picked up) and the session's.
    fn build(&self, body: &Value, session: Option<&HttpSession>) -> Result<Outgoing, GatewayError> {
        let unusable = |m: String| GatewayError::Unavailable {
            connector: self.connector.clone(),
            message: m,
        };
        let mut headers = vec![
            (CONTENT_TYPE, HeaderValue::from_static("application/json")),
            (
                ACCEPT,
                HeaderValue::from_static("application/json, text/event-stream"),
            ),
        ];
        for (k, raw) in &self.spec.headers {
            let v = resolve_value(raw, &self.spec.root).map_err(unusable)?;
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|e| unusable(format!("header name {k:?}: {e}")))?;
            let value = HeaderValue::from_str(&v)
                .map_err(|e| unusable(format!("header {k}: the value is not valid ({e})")))?;
            headers.push((name, value));
        }
        if let Some(s) = session {
            if let Some(id) = &s.id
                && let Ok(v) = HeaderValue::from_str(id)
            {
                headers.push((HeaderName::from_static("mcp-session-id"), v));
            }
            if let Ok(v) = HeaderValue::from_str(&s.protocol) {
                headers.push((HeaderName::from_static("mcp-protocol-version"), v));
            }
        }
        Ok(Outgoing {
            headers,
            body: serde_json::to_vec(body).unwrap_or_default(),
        })
    }

    /// Posts a message that expects no answer (a notification, the reply to a server
    /// request). Err only when the request cannot be built; a failed delivery is ignored.
    async fn post_one_way(
        &self,
        msg: &Value,
        session: Option<&HttpSession>,
    ) -> Result<(), GatewayError> {
        let out = self.build(msg, session)?;
        if let Ok(resp) = self.client.post(out).await {
            resp.discard();
        }
        Ok(())
    }

    async fn session(&self) -> Result<Arc<HttpSession>, GatewayError> {
        let mut s = self.session.lock().await;
        if let Some(sess) = s.as_ref() {
            return Ok(sess.clone());
        }
        let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": UPSTREAM_PROTOCOL,
            "capabilities": client_capabilities(),
            "clientInfo": {"name": "warden-gateway", "version": env!("CARGO_PKG_VERSION")}
        }});
        let resp = self
            .client
            .post(self.build(&init, None)?)
            .await
            .map_err(|e| GatewayError::Unavailable {
                connector: self.connector.clone(),
                message: format!("cannot reach {}: {e}", self.spec.url),
            })?;
        if !resp.status.is_success() {
            return Err(GatewayError::Unavailable {
                connector: self.connector.clone(),
                message: format!("initialize answered HTTP {}", resp.status),
            });
        }
        let sid = resp.header("mcp-session-id").map(str::to_string);
        let msg = self
            .read_response(resp, &Value::from(0), None, None)
            .await?;
        if let Some(err) = msg.get("error") {
            return Err(GatewayError::Unavailable {
                connector: self.connector.clone(),
                message: format!("initialize failed: {err}"),
            });
        }
        let protocol = msg
            .pointer("/result/protocolVersion")
            .and_then(Value::as_str)
            .unwrap_or(UPSTREAM_PROTOCOL)
            .to_string();
        let capabilities = msg
            .pointer("/result/capabilities")
            .cloned()
            .unwrap_or_else(|| json!({}));
        let sess = Arc::new(HttpSession {
            id: sid,
            protocol,
            capabilities,
        });
        let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        self.post_one_way(&note, Some(&sess)).await?;
        *s = Some(sess.clone());
        self.stale_for_tools.store(true, Ordering::Release);
        Ok(sess)
    }

    /// Reads a JSON or SSE response until the message answering `id`.
    async fn read_response(
        &self,
        mut resp: Response,
        id: &Value,
        progress: Option<&Mutex<HashMap<String, (Value, NotifySink)>>>,
        relay: Option<&NotifySink>,
    ) -> Result<Value, GatewayError> {
        let ct = resp
            .header("content-type")
            .unwrap_or("")
            .to_ascii_lowercase();
        if !ct.starts_with("text/event-stream") {
            let bytes = resp.bytes().await.map_err(|e| self.err(e))?;
            let v: Value = serde_json::from_slice(&bytes)
                .map_err(|e| self.err(format!("upstream answered non-JSON: {e}")))?;
            return Ok(v);
        }
        let empty = Mutex::new(HashMap::new());
        let progress = progress.unwrap_or(&empty);
        let mut buf: Vec<u8> = Vec::new();
        loop {
            let chunk = resp.chunk().await.map_err(|e| self.err(e))?;
            let Some(chunk) = chunk else {
                return Err(self.err("the event stream ended without a response"));
            };
            buf.extend_from_slice(&chunk);
            while let Some((end, sep)) = find_event_end(&buf) {
                let event: Vec<u8> = buf.drain(..end + sep).collect();
                let text = String::from_utf8_lossy(&event[..end]);
                let mut data = String::new();
                for line in text.lines() {
                    if let Some(d) = line.strip_prefix("data:") {
                        if !data.is_empty() {
                            data.push('\n');
                        }
                        data.push_str(d.strip_prefix(' ').unwrap_or(d));
                    }
                }
                if data.is_empty() {
                    continue;
                }
                let Ok(msg) = serde_json::from_str::<Value>(&data) else {
                    continue;
                };
                if is_response(&msg) && msg.get("id") == Some(id) {
                    return Ok(msg);
                }
                if msg.get("method").is_some() && msg.get("id").is_some() {
                    // A server request on this call's stream: it belongs to this call.
                    let reply = answer_server_request(
                        &self.connector,
                        &msg,
                        relay.cloned(),
                        self.audit.as_ref(),
                        self.guard.as_ref(),
                    )
                    .await;
                    let sess = self.session.lock().await.clone();
                    let _ = self.post_one_way(&reply, sess.as_deref()).await;
                } else if msg.get("method").is_some() {
                    if msg.get("method").and_then(Value::as_str) == Some("notifications/message")
                        && let Some(sink) = relay
                    {
                        // A log message on this call's stream goes to the call's agent.
                        let _ = sink.send(msg.clone());
                    }
                    route_notification(
                        &msg,
                        progress,
                        &self.stale_for_tools,
                        &self.connector,
                        self.list_changed.as_ref(),
                    );
                }
            }
        }
    }

    async fn request(
        &self,
        method: &str,
        params: Value,
        progress: Option<(String, Value, NotifySink)>,
        relay: Option<NotifySink>,
        cancel: Option<oneshot::Receiver<String>>,
    ) -> Result<Value, GatewayError> {
        let progress_map = Mutex::new(HashMap::new());
        if let Some((ours, orig, sink)) = progress {
            progress_map.lock().unwrap().insert(ours, (orig, sink));
        }
        let id = Value::from(self.next_id.fetch_add(1, Ordering::Relaxed));
        let body = request_message(&id, method, params);
        let work = async {
            for attempt in 0..2 {
                let sess = self.session().await?;
                let resp = self
                    .client
                    .post(self.build(&body, Some(&sess))?)
                    .await
                    .map_err(|e| self.err(format!("request failed: {e}")))?;
                if resp.status == hyper::StatusCode::NOT_FOUND && sess.id.is_some() && attempt == 0
                {
                    // The upstream forgot our session (restart): initialise again, once.
                    *self.session.lock().await = None;
                    continue;
                }
                if !resp.status.is_success() {
                    let status = resp.status;
                    let text = String::from_utf8_lossy(&resp.bytes().await.unwrap_or_default())
                        .into_owned();
                    return Err(self.err(format!(
                        "HTTP {status}: {}",
                        text.chars().take(300).collect::<String>()
                    )));
                }
                return self
                    .read_response(resp, &id, Some(&progress_map), relay.as_ref())
                    .await;
            }
            Err(self.err("session lost twice"))
        };
        match cancel {
            Some(cancel) => {
                tokio::select! {
                    r = work => r,
                    reason = cancel => {
                        if let Ok(sess) = self.session().await {
                            let note = json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                                "params": {"requestId": id, "reason": reason.unwrap_or_default()}});
                            let _ = self.post_one_way(&note, Some(&sess)).await;
                        }
                        Err(GatewayError::Cancelled)
                    }
                }
            }
            None => work.await,
        }
    }
}

/// The JSON-RPC request sent upstream (the call's arguments moved in, not copied).
fn request_message(id: &Value, method: &str, params: Value) -> Value {
    crate::gateway::message(
        id,
        [
            ("method", Value::String(method.to_string())),
            ("params", params),
        ],
    )
}

fn find_event_end(buf: &[u8]) -> Option<(usize, usize)> {
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|p| (p, 2));
    let crlf = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| (p, 4));
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}
