//! # warden-console
//!
//! The web console served by `warden up` under `/console` ([`router`], merged into the server's router): approvers log in, see pending
//! approval requests in full, and approve or deny them with a reason.
//!
//! - Users and their groups are the inventory's humans. They log in with a one-time login
//!   token (`warden console login-token --as HUMAN`), stored hashed by `warden-store`;
//!   a successful login starts a console session kept in the store (hash of the cookie only),
//!   so it survives a restart and is shared by replicas on one PostgreSQL.
//! - The session cookie is `HttpOnly`, `SameSite=Strict`, `Path=/console`, and `Secure`
//!   whenever the console is not served on loopback ([`ConsoleOptions::secure_cookies`]).
//!   Every POST carries a CSRF token bound to the session (the login form a double-submit
//!   cookie), compared in constant time.
//! - `GET /console/` is the pending-approvals page: agent, owner, tool, effects, the
//!   arguments in full (secrets redacted), what changed since the last approved call of the
//!   same agent and tool, the session's recent history, and approve / deny forms. A small
//!   script (`/console/app.js`, no inline script: the CSP forbids it) polls
//!   `/console/fragment/approvals` and swaps the list in when it changed, so new requests
//!   appear without a reload.
//! - `POST /console/approvals/{id}/approve|deny` decides through
//!   [`warden_approval::ops::vote`]: the SERVER checks eligibility (approver group,
//!   separation of duties, two-person rule); an ineligible user gets 403 and the refusal is
//!   audited. Every answer is appended to the audit chain.
//! - `GET /console/api/approvals[?status=pending|all]` is the same list as JSON.
//! - [`api_router`]: the approval admin API for answers coming back from webhooks,
//!   authenticated by per-approver bearer tokens (`warden approvals approver-token --as H`):
//!   `GET /api/approvals/{id}` and `POST /api/approvals/{id}/approve|deny` with
//!   `{"reason": "…"}`. Same eligibility rules, same audit records (`via: webhook`).

mod html;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;
use warden_approval::{
    ApprovalError, ApprovalRequest, ApprovalStore, ListFilter, Status, Via, VoteKind, ops,
};
use warden_core::Inventory;
use warden_store::Store;
use warden_store::time::now_ms;

/// The router type the server merges (axum's).
pub use axum::Router;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "warden_console";
/// Name of the login form's double-submit CSRF cookie.
pub const LOGIN_CSRF_COOKIE: &str = "warden_login_csrf";

/// Errors of the console's own setup.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("cannot generate random bytes: {0}")]
    Random(String),
}

/// Tunables.
#[derive(Debug, Clone)]
pub struct ConsoleOptions {
    /// Mark cookies `Secure` (set it whenever the console is reachable other than on loopback).
    pub secure_cookies: bool,
    /// How long a console session lasts.
    pub session_ttl: Duration,
    /// How often the page polls for changes, milliseconds.
    pub poll_ms: u64,
}

impl Default for ConsoleOptions {
    fn default() -> Self {
        ConsoleOptions {
            secure_cookies: true,
            session_ttl: Duration::from_secs(8 * 3600),
            poll_ms: 1500,
        }
    }
}

/// Shared state of the console router.
pub struct ConsoleState {
    pub inv: Arc<Inventory>,
    pub store: Store,
    pub opts: ConsoleOptions,
    /// Woken after every decision, so a waiting gateway call resumes at once.
    pub decided: Arc<tokio::sync::Notify>,
}

impl ConsoleState {
    pub fn new(
        inv: Arc<Inventory>,
        store: Store,
        opts: ConsoleOptions,
        decided: Arc<tokio::sync::Notify>,
    ) -> Arc<ConsoleState> {
        Arc::new(ConsoleState {
            inv,
            store,
            opts,
            decided,
        })
    }
}

/// The console's routes, all under `/console` already: merge it into the server's router.
pub fn router(state: Arc<ConsoleState>) -> Router {
    Router::new()
        .route("/console", get(|| async { Redirect::to("/console/") }))
        .route("/console/", get(index))
        .route("/console/login", get(login_page).post(login_post))
        .route("/console/logout", post(logout))
        .route("/console/app.js", get(app_js))
        .route("/console/fragment/approvals", get(fragment))
        .route("/console/api/approvals", get(api_list))
        .route("/console/approvals/{id}/{action}", post(decide))
        .with_state(state)
}

fn random_token() -> String {
    let mut b = [0u8; 32];
    // getrandom failing means no OS randomness: refuse to mint weak tokens.
    getrandom::fill(&mut b).expect("operating system randomness");
    hex::encode(b)
}

/// Constant-time equality of two strings.
fn ct_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

fn set_cookie(opts: &ConsoleOptions, name: &str, value: &str, max_age: Option<u64>) -> HeaderValue {
    let mut c = format!("{name}={value}; Path=/console; HttpOnly; SameSite=Strict");
    if let Some(a) = max_age {
        c.push_str(&format!("; Max-Age={a}"));
    }
    if opts.secure_cookies {
        c.push_str("; Secure");
    }
    HeaderValue::from_str(&c).expect("cookie text is ASCII")
}

/// Security headers on every page.
fn page(status: StatusCode, body: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; form-action 'self'",
            ),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        body,
    )
        .into_response()
}

/// The logged-in human and their CSRF token (sessions live in the store).
async fn current(state: &ConsoleState, headers: &HeaderMap) -> Option<(String, String)> {
    let sid = cookie(headers, SESSION_COOKIE)?;
    match state.store.console_session(&sid).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("warden: console session lookup failed: {e}");
            None
        }
    }
}

fn to_login() -> Response {
    Redirect::to("/console/login").into_response()
}

#[derive(Deserialize)]
struct LoginQuery {
    token: Option<String>,
    error: Option<String>,
}

async fn login_page(
    State(state): State<Arc<ConsoleState>>,
    Query(q): Query<LoginQuery>,
) -> Response {
    let csrf = random_token();
    let mut resp = page(
        StatusCode::OK,
        html::login(&csrf, q.token.as_deref().unwrap_or(""), q.error.as_deref()),
    );
    resp.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&state.opts, LOGIN_CSRF_COOKIE, &csrf, Some(600)),
    );
    resp
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
    csrf: String,
}

async fn login_post(
    State(state): State<Arc<ConsoleState>>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let expected = cookie(&headers, LOGIN_CSRF_COOKIE).unwrap_or_default();
    if expected.is_empty() || !ct_eq(&expected, &f.csrf) {
        return page(
            StatusCode::FORBIDDEN,
            html::message(
                "Login refused",
                "The form expired or was not sent by this console (CSRF check failed). Open the login page again.",
            ),
        );
    }
    let human = match state.store.redeem_console_login(&f.token).await {
        Ok(Some(h)) if state.inv.humans.contains_key(&h) => h,
        Ok(_) => {
            return Redirect::to("/console/login?error=invalid").into_response();
        }
        Err(e) => {
            return page(
                StatusCode::INTERNAL_SERVER_ERROR,
                html::message("Store unavailable", &e.to_string()),
            );
        }
    };
    let sid = random_token();
    if let Err(e) = state
        .store
        .open_console_session(
            &sid,
            &human,
            &random_token(),
            state.opts.session_ttl.as_millis() as i64,
        )
        .await
    {
        return page(
            StatusCode::INTERNAL_SERVER_ERROR,
            html::message("Store unavailable", &e.to_string()),
        );
    }
    let mut ev = warden_store::AuditEvent::now("console");
    ev.outcome = Some("login".into());
    ev.detail.insert("human".into(), json!(human));
    if let Err(e) = state.store.append_audit(&ev).await {
        eprintln!("warden: console audit failed: {e}");
    }
    let mut resp = Redirect::to("/console/").into_response();
    let h = resp.headers_mut();
    h.append(
        header::SET_COOKIE,
        set_cookie(
            &state.opts,
            SESSION_COOKIE,
            &sid,
            Some(state.opts.session_ttl.as_secs()),
        ),
    );
    h.append(
        header::SET_COOKIE,
        set_cookie(&state.opts, LOGIN_CSRF_COOKIE, "", Some(0)),
    );
    resp
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
}

async fn logout(
    State(state): State<Arc<ConsoleState>>,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Response {
    if let Some((_, csrf)) = current(&state, &headers).await
        && ct_eq(&csrf, &f.csrf)
        && let Some(sid) = cookie(&headers, SESSION_COOKIE)
        && let Err(e) = state.store.close_console_session(&sid).await
    {
        eprintln!("warden: console logout failed: {e}");
    }
    let mut resp = to_login();
    resp.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&state.opts, SESSION_COOKIE, "", Some(0)),
    );
    resp
}

async fn app_js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        include_str!("../assets/app.js"),
    )
        .into_response()
}

/// One request with what the page shows beside it.
pub struct Card {
    pub req: ApprovalRequest,
    pub previous: Option<ApprovalRequest>,
    pub eligible: Result<(), String>,
}

async fn cards(
    state: &ConsoleState,
    human: &str,
) -> Result<(Vec<Card>, Vec<ApprovalRequest>), ApprovalError> {
    let now = now_ms();
    let pending = ops::list(&state.store, &ListFilter::pending(), now).await?;
    let mut out = Vec::new();
    for req in pending {
        let previous = state
            .store
            .last_approved(&req.agent, &req.tool, req.created_ms)
            .await?;
        let eligible =
            warden_approval::check_eligible(&state.inv, &req, human).map_err(|e| e.to_string());
        out.push(Card {
            req,
            previous,
            eligible,
        });
    }
    let recent = state
        .store
        .list(&ListFilter {
            statuses: vec![
                Status::Approved,
                Status::Denied,
                Status::Expired,
                Status::Consumed,
            ],
            agent: None,
            limit: 10,
        })
        .await?;
    Ok((out, recent))
}

async fn index(
    State(state): State<Arc<ConsoleState>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some((human, csrf)) = current(&state, &headers).await else {
        return to_login();
    };
    match cards(&state, &human).await {
        Ok((cards, recent)) => page(
            StatusCode::OK,
            html::index(
                &state.inv,
                &human,
                &csrf,
                &cards,
                &recent,
                q.get("done").map(String::as_str),
                state.opts.poll_ms,
            ),
        ),
        Err(e) => page(
            StatusCode::INTERNAL_SERVER_ERROR,
            html::message("Store unavailable", &e.to_string()),
        ),
    }
}

async fn fragment(State(state): State<Arc<ConsoleState>>, headers: HeaderMap) -> Response {
    let Some((human, csrf)) = current(&state, &headers).await else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    match cards(&state, &human).await {
        Ok((cards, recent)) => page(
            StatusCode::OK,
            html::list(&state.inv, &csrf, &cards, &recent),
        ),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

#[derive(Deserialize)]
struct ListQuery {
    status: Option<String>,
}

async fn api_list(
    State(state): State<Arc<ConsoleState>>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Response {
    if current(&state, &headers).await.is_none() {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": "log in first"})),
        )
            .into_response();
    }
    let filter = match q.status.as_deref() {
        None | Some("pending") => ListFilter::pending(),
        Some("all") => ListFilter {
            limit: 200,
            ..Default::default()
        },
        Some(s) => match Status::parse(s) {
            Some(st) => ListFilter {
                statuses: vec![st],
                limit: 200,
                agent: None,
            },
            None => {
                return (
                    StatusCode::BAD_REQUEST,
                    axum::Json(json!({"error": format!("unknown status `{s}`")})),
                )
                    .into_response();
            }
        },
    };
    match ops::list(&state.store, &filter, now_ms()).await {
        Ok(list) => axum::Json(json!({"approvals": list})).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            axum::Json(json!({"error": e.to_string()})),
        )
            .into_response(),
    }
}

#[derive(Deserialize)]
struct DecideForm {
    csrf: String,
    #[serde(default)]
    reason: String,
}

async fn decide(
    State(state): State<Arc<ConsoleState>>,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    Form(f): Form<DecideForm>,
) -> Response {
    let Some((human, csrf)) = current(&state, &headers).await else {
        return page(
            StatusCode::UNAUTHORIZED,
            html::message("Not logged in", "Log in to answer approval requests."),
        );
    };
    if !ct_eq(&csrf, &f.csrf) {
        return page(
            StatusCode::FORBIDDEN,
            html::message(
                "Refused",
                "CSRF check failed: reload the page and try again.",
            ),
        );
    }
    let kind = match action.as_str() {
        "approve" => VoteKind::Approve,
        "deny" => VoteKind::Deny,
        _ => {
            return page(
                StatusCode::NOT_FOUND,
                html::message("Not found", "Unknown action."),
            );
        }
    };
    let result = ops::vote(
        &state.store,
        &state.inv,
        &id,
        &human,
        kind,
        &f.reason,
        Via::Console,
        now_ms(),
    )
    .await;
    let (status, title, text) = match &result {
        Ok(req) => {
            let outcome = match req.status {
                Status::Pending => "pending",
                s => s.as_str(),
            };
            if let Err(e) = state
                .store
                .audit_approval(req, outcome, req.votes.last(), None)
                .await
            {
                eprintln!("warden: approval audit failed: {e}");
            }
            state.decided.notify_waiters();
            return Redirect::to(&format!("/console/?done={id}")).into_response();
        }
        Err(ApprovalError::NotEligible { .. }) => (
            StatusCode::FORBIDDEN,
            "Not allowed",
            result.as_ref().unwrap_err().to_string(),
        ),
        Err(ApprovalError::AlreadyVoted { .. }) => (
            StatusCode::CONFLICT,
            "Already answered",
            result.as_ref().unwrap_err().to_string(),
        ),
        Err(ApprovalError::NotFound(_)) => (
            StatusCode::NOT_FOUND,
            "Not found",
            result.as_ref().unwrap_err().to_string(),
        ),
        Err(ApprovalError::EmptyReason) => (
            StatusCode::BAD_REQUEST,
            "Reason required",
            "Give a reason for your answer.".to_string(),
        ),
        Err(ApprovalError::NotPending { .. }) | Err(ApprovalError::Expired(_)) => (
            StatusCode::CONFLICT,
            "No longer pending",
            result.as_ref().unwrap_err().to_string(),
        ),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, "Error", e.to_string()),
    };
    // Refusals are audited too: who tried to answer what, and why it was refused.
    if let Ok(Some(req)) = state.store.get(&id).await {
        let vote = warden_approval::Vote {
            human: human.clone(),
            kind,
            reason: f.reason.trim().to_string(),
            at_ms: now_ms(),
            via: Via::Console,
        };
        let _ = state
            .store
            .audit_approval(&req, "refused", Some(&vote), Some(("error", json!(text))))
            .await;
    }
    page(status, html::message(title, &text))
}

/// The console and the approval admin API together, ready to merge into the server.
pub fn mount(state: Arc<ConsoleState>) -> Router {
    router(state.clone()).merge(api_router(state))
}

/// The approval admin API (webhook round trips), authenticated per approver.
pub fn api_router(state: Arc<ConsoleState>) -> Router {
    Router::new()
        .route("/api/approvals/{id}", get(api_get))
        .route("/api/approvals/{id}/{action}", post(api_decide))
        .with_state(state)
}

fn api_error(status: StatusCode, msg: impl std::fmt::Display) -> Response {
    (status, axum::Json(json!({"error": msg.to_string()}))).into_response()
}

async fn approver(state: &ConsoleState, headers: &HeaderMap) -> Result<String, Response> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .unwrap_or("");
    if token.is_empty() {
        return Err(api_error(
            StatusCode::UNAUTHORIZED,
            "an approver token is required: `warden approvals approver-token --as HUMAN`",
        ));
    }
    match state.store.lookup_approver_token(token).await {
        Ok(Some((_, human))) if state.inv.humans.contains_key(&human) => Ok(human),
        Ok(_) => Err(api_error(
            StatusCode::UNAUTHORIZED,
            "unknown, expired or revoked approver token",
        )),
        Err(e) => Err(api_error(StatusCode::INTERNAL_SERVER_ERROR, e)),
    }
}

async fn api_get(
    State(state): State<Arc<ConsoleState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = approver(&state, &headers).await {
        return r;
    }
    match ops::get(&state.store, &id, now_ms()).await {
        Ok(r) => axum::Json(json!({"approval": r})).into_response(),
        Err(ApprovalError::NotFound(_)) => {
            api_error(StatusCode::NOT_FOUND, format!("no approval request `{id}`"))
        }
        Err(e) => api_error(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

#[derive(Deserialize)]
struct ApiAnswer {
    #[serde(default)]
    reason: String,
}

async fn api_decide(
    State(state): State<Arc<ConsoleState>>,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    let human = match approver(&state, &headers).await {
        Ok(h) => h,
        Err(r) => return r,
    };
    let kind = match action.as_str() {
        "approve" => VoteKind::Approve,
        "deny" => VoteKind::Deny,
        _ => return api_error(StatusCode::NOT_FOUND, "unknown action (approve or deny)"),
    };
    let answer: ApiAnswer = match serde_json::from_slice(&body) {
        Ok(a) => a,
        Err(e) => {
            return api_error(
                StatusCode::BAD_REQUEST,
                format!("expected {{\"reason\": \"…\"}}: {e}"),
            );
        }
    };
    let result = ops::vote(
        &state.store,
        &state.inv,
        &id,
        &human,
        kind,
        &answer.reason,
        Via::Webhook,
        now_ms(),
    )
    .await;
    match result {
        Ok(req) => {
            let outcome = match req.status {
                Status::Pending => "pending",
                s => s.as_str(),
            };
            if let Err(e) = state
                .store
                .audit_approval(&req, outcome, req.votes.last(), None)
                .await
            {
                eprintln!("warden: approval audit failed: {e}");
            }
            state.decided.notify_waiters();
            axum::Json(json!({"approval": req, "outcome": outcome})).into_response()
        }
        Err(e) => {
            let status = match &e {
                ApprovalError::NotEligible { .. } => StatusCode::FORBIDDEN,
                ApprovalError::NotFound(_) => StatusCode::NOT_FOUND,
                ApprovalError::EmptyReason => StatusCode::BAD_REQUEST,
                ApprovalError::AlreadyVoted { .. }
                | ApprovalError::NotPending { .. }
                | ApprovalError::Expired(_) => StatusCode::CONFLICT,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            if status != StatusCode::NOT_FOUND
                && let Ok(Some(req)) = state.store.get(&id).await
            {
                let vote = warden_approval::Vote {
                    human: human.clone(),
                    kind,
                    reason: answer.reason.trim().to_string(),
                    at_ms: now_ms(),
                    via: Via::Webhook,
                };
                let _ = state
                    .store
                    .audit_approval(
                        &req,
                        "refused",
                        Some(&vote),
                        Some(("error", json!(e.to_string()))),
                    )
                    .await;
            }
            api_error(status, e)
        }
    }
}
