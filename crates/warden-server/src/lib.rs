//! # warden-server
//!
//! The HTTP face of `warden up`: one axum router serving
//!
//! - `POST /mcp` — the MCP endpoint (Streamable HTTP, revisions 2025-03-26 … 2025-11-25).
//!   Every request must carry `Authorization: Bearer <agent token>`; failures get `401`
//!   with `WWW-Authenticate: Bearer resource_metadata="…"` (MCP authorization spec) and an
//!   audit record. `initialize` opens a session (`Mcp-Session-Id`); requests that asked for
//!   progress and accept `text/event-stream` are answered as an SSE stream carrying the
//!   relayed progress notifications and then the response. A `tools/call` whose upstream
//!   sends the agent a request (sampling, elicitation) or a log message switches to SSE
//!   when the first such message arrives; the agent answers relayed requests with a POST of
//!   the JSON-RPC response (`202`). Everything else gets plain JSON.
//! - `MCP-Protocol-Version`: on requests of a session (after `initialize`) a revision the
//!   gateway does not serve gets `400` with a JSON-RPC error; absent, the negotiated one
//!   applies. A session-less request carrying the 2026-07-28 per-request `_meta` gets `400`
//!   with `-32022` naming the served revisions; `server/discover` needs no session.
//! - `DELETE /mcp` ends a session; `GET /mcp` opens the session's stream of messages the
//!   agent did not ask for (upstreams' `list_changed` notifications, forwarded).
//! - `GET /.well-known/oauth-protected-resource[/mcp]` — protected resource metadata.
//! - `POST /api/handoffs` and `POST /api/handoffs/context` — handoffs for orchestrators that
//!   do not speak MCP (agent bearer token; same checks and audit as the `warden.handoff` and
//!   `warden.context` tools, see docs/handoffs.md).
//! - `GET /healthz`.
//!
//! Bodies above [`ServerOptions::max_body`] get 413, malformed JSON 400 (`-32700`), both
//! audited. Browser `Origin`s other than loopback are refused (DNS rebinding).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use warden_gateway::gateway::relay::unsupported_stateless;
use warden_gateway::gateway::{SUPPORTED_PROTOCOLS, codes, error};
use warden_gateway::{Gateway, Principal};
use warden_store::{Store, TokenLookup};

/// Errors starting the server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("server failed: {0}")]
    Serve(#[source] std::io::Error),
}

/// Tunables.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Largest accepted request body, bytes.
    pub max_body: usize,
    /// How long a valid token lookup is cached (revocation takes effect within this).
    pub token_cache: Duration,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            max_body: 4 * 1024 * 1024,
            token_cache: Duration::from_secs(2),
        }
    }
}

/// Shared state of the router.
pub struct AppState {
    pub gateway: Arc<Gateway>,
    pub store: Store,
    pub opts: ServerOptions,
    tokens: Mutex<HashMap<String, (Instant, String, String)>>,
}

impl AppState {
    pub fn new(gateway: Arc<Gateway>, store: Store, opts: ServerOptions) -> Arc<AppState> {
        Arc::new(AppState {
            gateway,
            store,
            opts,
            tokens: Mutex::new(HashMap::new()),
        })
    }
}

/// The router.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/mcp", post(mcp_post).delete(mcp_delete).get(mcp_get))
        .route(
            "/.well-known/oauth-protected-resource",
            get(resource_metadata),
        )
        .route(
            "/.well-known/oauth-protected-resource/mcp",
            get(resource_metadata),
        )
        .route("/api/handoffs", post(handoff_post))
        .route("/api/handoffs/context", post(handoff_context_post))
        .route(
            "/healthz",
            get(|| async { axum::Json(json!({"status": "ok"})) }),
        )
        .with_state(state)
}

/// Serves on `listener` until `shutdown` resolves, then drains in-flight requests, stops
/// the upstreams and flushes the audit trail.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    serve_with(listener, state, Router::new(), shutdown).await
}

/// [`serve`] with more routes merged in (the console and the approval admin API).
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    extra: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let gw = state.gateway.clone();
    let app = router(state).merge(extra);
    // Open `GET /mcp` streams end when shutdown starts, so draining does not wait for them.
    let gw_streams = gw.clone();
    let shutdown = async move {
        shutdown.await;
        gw_streams.close_streams();
    };
    // Answers go out as soon as they are written (no Nagle delay behind an unacknowledged
    // segment, e.g. between the events of a streamed answer).
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(ServerError::Serve)?;
    gw.shutdown().await;
    Ok(())
}

fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}")
}

async fn resource_metadata(headers: HeaderMap) -> Response {
    let base = base_url(&headers);
    axum::Json(json!({
        "resource": format!("{base}/mcp"),
        "authorization_servers": [],
        "bearer_methods_supported": ["header"],
        "resource_name": "Warden MCP gateway",
        "resource_documentation": "Agent tokens are issued by `warden token issue --agent AGENT`.",
    }))
    .into_response()
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        serde_json::to_vec(body).unwrap_or_default(),
    )
        .into_response()
}

fn loopback_origin(origin: &str) -> bool {
    let rest = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .unwrap_or(origin);
    let host = if let Some(v6) = rest.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        rest.split([':', '/']).next().unwrap_or("")
    };
    matches!(host, "localhost" | "127.0.0.1" | "::1")
}

/// Authenticates the bearer token; Err is the 401 response (already audited).
async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Principal, Response> {
    let inv = state.gateway.inventory();
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    let failure = |reason: &str, token_id: Option<String>, agent: Option<String>, invalid: bool| {
        let mut ev = state.gateway.event("auth_failure", None, None);
        ev.agent = agent;
        ev.outcome = Some("unauthenticated".into());
        ev.reasons = vec![reason.to_string()];
        if let Some(t) = token_id {
            ev.detail.insert("token_id".into(), Value::String(t));
        }
        let base = base_url(headers);
        let mut www =
            format!("Bearer resource_metadata=\"{base}/.well-known/oauth-protected-resource/mcp\"");
        if invalid {
            www.push_str(&format!(
                ", error=\"invalid_token\", error_description=\"{reason}\""
            ));
        }
        let resp = (
            StatusCode::UNAUTHORIZED,
            [
                (
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_str(&www).unwrap_or(HeaderValue::from_static("Bearer")),
                ),
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                ),
            ],
            serde_json::to_vec(&json!({"error": "unauthorized", "error_description": reason}))
                .unwrap_or_default(),
        )
            .into_response();
        (ev, resp)
    };
    let (ev, resp) = match presented {
        None | Some("") => failure(
            "no bearer token: issue one with `warden token issue --agent AGENT`",
            None,
            None,
            false,
        ),
        Some(token) => {
            let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(token.as_bytes()));
            if let Some((at, id, agent)) = state.tokens.lock().unwrap().get(&hash).cloned()
                && at.elapsed() < state.opts.token_cache
            {
                return Ok(Principal::direct(inv, &agent, Some(id)));
            }
            match state.store.lookup_token(token).await {
                Ok(TokenLookup::Valid { id, agent }) => {
                    if inv.agents.contains_key(&agent) {
                        state
                            .tokens
                            .lock()
                            .unwrap()
                            .insert(hash, (Instant::now(), id.clone(), agent.clone()));
                        return Ok(Principal::direct(inv, &agent, Some(id)));
                    }
                    failure(
                        "the token's agent is not in the inventory",
                        Some(id),
                        Some(agent),
                        true,
                    )
                }
                Ok(TokenLookup::Expired { id, agent }) => {
                    failure("the token has expired", Some(id), Some(agent), true)
                }
                Ok(TokenLookup::Revoked { id, agent }) => {
                    failure("the token was revoked", Some(id), Some(agent), true)
                }
                Ok(TokenLookup::Unknown) => failure("unknown token", None, None, true),
                Err(e) => failure(&format!("token store unavailable: {e}"), None, None, false),
            }
        }
    };
    state.gateway.audit().append_nowait(&ev).await;
    Err(resp)
}

/// A browser `Origin` other than loopback is refused (DNS rebinding); then the bearer token.
async fn admit(state: &AppState, headers: &HeaderMap) -> Result<Principal, Response> {
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok())
        && !loopback_origin(origin)
    {
        return Err(json_response(
            StatusCode::FORBIDDEN,
            &json!({"error": "origin not allowed"}),
        ));
    }
    authenticate(state, headers).await
}

/// Whether the client accepts an event stream.
fn accepts_sse(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|a| a.to_str().ok())
        .is_some_and(|a| a.contains("text/event-stream"))
}

fn session_header(headers: &HeaderMap) -> Option<String> {
    headers
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

async fn mcp_post(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    let who = match admit(&state, &headers).await {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    let gw = &state.gateway;
    let bytes: Bytes = match axum::body::to_bytes(body, state.opts.max_body).await {
        Ok(b) => b,
        Err(_) => {
            let ev = gw.event("rejected", Some(&who), None).with_detail(
                "error",
                format!("request body exceeds {} bytes", state.opts.max_body),
            );
            gw.audit().append_nowait(&ev).await;
            return json_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                &error(
                    &Value::Null,
                    codes::INVALID_REQUEST,
                    &format!(
                        "Request body exceeds the gateway's limit of {} bytes",
                        state.opts.max_body
                    ),
                    None,
                ),
            );
        }
    };
    let msg: Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(e) => {
            let ev = gw
                .event("rejected", Some(&who), None)
                .with_detail("error", format!("parse error: {e}"));
            gw.audit().append_nowait(&ev).await;
            return json_response(
                StatusCode::BAD_REQUEST,
                &error(
                    &Value::Null,
                    codes::PARSE_ERROR,
                    &format!("Parse error: {e}"),
                    None,
                ),
            );
        }
    };
    if msg.is_array() {
        let ev = gw
            .event("rejected", Some(&who), None)
            .with_detail("error", "JSON-RPC batch");
        gw.audit().append_nowait(&ev).await;
        return json_response(
            StatusCode::BAD_REQUEST,
            &error(
                &Value::Null,
                codes::INVALID_REQUEST,
                "Invalid Request: JSON-RPC batches are not supported",
                None,
            ),
        );
    }
    let method = msg
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let is_request = msg.get("id").is_some() && !method.is_empty();
    let mut new_session = None;
    let session = if method == "initialize" {
        let s = gw.create_session(&who);
        new_session = Some(s.id.clone());
        Some(s)
    } else {
        match session_header(&headers) {
            Some(sid) => match gw.session(&sid) {
                Some(s) if s.agent == who.agent => Some(s),
                _ => {
                    return json_response(
                        StatusCode::NOT_FOUND,
                        &error(
                            msg.get("id").unwrap_or(&Value::Null),
                            codes::INVALID_REQUEST,
                            "Session not found: initialize a new session",
                            None,
                        ),
                    );
                }
            },
            None if matches!(method.as_str(), "server/discover" | "ping") || !is_request => None,
            None if let Some(refusal) = unsupported_stateless(&msg) => {
                // A 2026-07-28 stateless request: name the revisions served instead.
                let mut ev = gw.event("rejected", Some(&who), None).with_detail(
                    "error",
                    "stateless request (2026-07-28 _meta) without a session",
                );
                ev.method = Some(method.clone());
                gw.audit().append_nowait(&ev).await;
                return json_response(StatusCode::BAD_REQUEST, &refusal);
            }
            None => {
                return json_response(
                    StatusCode::BAD_REQUEST,
                    &error(
                        msg.get("id").unwrap_or(&Value::Null),
                        codes::INVALID_REQUEST,
                        "Bad Request: the Mcp-Session-Id header is required (send initialize first)",
                        None,
                    ),
                );
            }
        }
    };
    if let Some(s) = &session
        && method != "initialize"
        && let Some(v) = headers.get("mcp-protocol-version")
    {
        let v = v.to_str().unwrap_or("");
        if !SUPPORTED_PROTOCOLS.contains(&v) {
            let mut ev = gw
                .event("rejected", Some(&who), Some(s))
                .with_detail("error", format!("unsupported MCP-Protocol-Version {v:?}"));
            ev.method = Some(method.clone());
            gw.audit().append_nowait(&ev).await;
            return json_response(
                StatusCode::BAD_REQUEST,
                &error(
                    msg.get("id").unwrap_or(&Value::Null),
                    codes::INVALID_REQUEST,
                    &format!(
                        "Bad Request: unsupported MCP-Protocol-Version {v:?} (supported: {}; this session negotiated {})",
                        SUPPORTED_PROTOCOLS.join(", "),
                        s.protocol.lock().unwrap()
                    ),
                    Some(json!({"supported": SUPPORTED_PROTOCOLS, "requested": v})),
                ),
            );
        }
    }
    if !is_request {
        gw.handle(&who, session.as_ref(), msg, None).await;
        return StatusCode::ACCEPTED.into_response();
    }
    let wants_sse = accepts_sse(&headers);
    let has_progress = msg
        .get("params")
        .and_then(|p| p.get("_meta"))
        .and_then(|m| m.get("progressToken"))
        .is_some();
    // A call may stream: progress it asked for, and requests or log messages its upstream
    // sends the agent (sampling, elicitation). Without a progress token the answer stays
    // plain JSON unless such a message comes first.
    let may_stream = wants_sse && (has_progress || method == "tools/call");
    let mut resp = if may_stream {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Value>();
        let gw2 = gw.clone();
        let sink = tx.clone();
        let mut call =
            Box::pin(async move { gw2.handle(&who, session.as_ref(), msg, Some(sink)).await });
        let mut first = None;
        let mut plain = None;
        if !has_progress {
            // Plain JSON unless the call sends something before its answer (no task spawned
            // on this common path).
            tokio::select! {
                biased;
                m = rx.recv() => first = m,
                r = &mut call => plain = Some(r.unwrap_or(Value::Null)),
            }
        }
        if plain.is_none() {
            tokio::spawn(async move {
                if let Some(r) = call.await {
                    let _ = tx.send(r);
                }
            });
        }
        match plain {
            Some(r) => json_response(StatusCode::OK, &r),
            None => sse_response(first, rx),
        }
    } else {
        let r = gw
            .handle(&who, session.as_ref(), msg, None)
            .await
            .unwrap_or(Value::Null);
        json_response(StatusCode::OK, &r)
    };
    if let Some(sid) = new_session
        && let Ok(v) = HeaderValue::from_str(&sid)
    {
        resp.headers_mut().insert("mcp-session-id", v);
    }
    resp
}

async fn mcp_delete(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let who = match authenticate(&state, &headers).await {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    match session_header(&headers) {
        Some(sid)
            if state
                .gateway
                .session(&sid)
                .is_some_and(|s| s.agent == who.agent) =>
        {
            state.gateway.end_session(&sid);
            StatusCode::NO_CONTENT.into_response()
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

/// `GET /mcp`: the session's stream of messages the agent did not ask for (forwarded
/// `list_changed` notifications). One per session: a new one replaces the old, which ends.
async fn mcp_get(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let who = match admit(&state, &headers).await {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    let wants_sse = accepts_sse(&headers);
    if !wants_sse {
        return json_response(
            StatusCode::NOT_ACCEPTABLE,
            &json!({"error": "GET /mcp is an event stream: send Accept: text/event-stream"}),
        );
    }
    let session = match session_header(&headers).and_then(|sid| state.gateway.session(&sid)) {
        Some(s) if s.agent == who.agent => s,
        _ => {
            return json_response(
                StatusCode::NOT_FOUND,
                &json!({"error": "Session not found: initialize a new session"}),
            );
        }
    };
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Value>();
    session.set_listener(tx);
    sse_response(None, rx)
}

/// An SSE answer: `first` (if any), then every message from `rx` until it closes.
fn sse_response(
    mut first: Option<Value>,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<Value>,
) -> Response {
    let event = |m: Value| {
        Ok::<_, std::convert::Infallible>(Bytes::from(format!("event: message\ndata: {m}\n\n")))
    };
    let stream = futures_util::stream::poll_fn(move |cx| {
        if let Some(m) = first.take() {
            return std::task::Poll::Ready(Some(event(m)));
        }
        rx.poll_recv(cx).map(|o| o.map(event))
    });
    (
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}

/// A refused handoff as an HTTP answer: 400 for malformed input, 403 otherwise.
fn refusal_response(r: &warden_gateway::handoff::Refusal) -> Response {
    let status = if r.policies.iter().any(|p| p == "invalid-params") {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::FORBIDDEN
    };
    json_response(
        status,
        &json!({"error": "refused", "message": r.message, "policies": r.policies, "reasons": r.reasons}),
    )
}

async fn read_json_body(state: &AppState, body: Body) -> Result<Value, Response> {
    let bytes = axum::body::to_bytes(body, state.opts.max_body)
        .await
        .map_err(|_| {
            json_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                &json!({"error": "body too large"}),
            )
        })?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(v) if v.is_object() => Ok(v),
        Ok(_) => Err(json_response(
            StatusCode::BAD_REQUEST,
            &json!({"error": "expected a JSON object"}),
        )),
        Err(e) => Err(json_response(
            StatusCode::BAD_REQUEST,
            &json!({"error": format!("invalid JSON: {e}")}),
        )),
    }
}

/// `POST /api/handoffs` `{to, task, context, ttl_seconds, delegation}` as the bearer's agent.
async fn handoff_post(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let who = match authenticate(&state, &headers).await {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    let args = match read_json_body(&state, body).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let parent = args
        .get("delegation")
        .and_then(Value::as_str)
        .map(str::to_string);
    match state
        .gateway
        .handoff(&who, None, &Value::Null, &args, parent)
        .await
    {
        Ok(v) => json_response(StatusCode::OK, &v),
        Err(r) => refusal_response(&r),
    }
}

/// `POST /api/handoffs/context` `{task_id, token}`: the receiver reads the task's context
/// (no session to bind: later MCP calls carry the token in `_meta`).
async fn handoff_context_post(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let who = match authenticate(&state, &headers).await {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    let args = match read_json_body(&state, body).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    match state.gateway.read_context(&who, None, &args).await {
        Ok(v) => json_response(StatusCode::OK, &v),
        Err(r) => refusal_response(&r),
    }
}
