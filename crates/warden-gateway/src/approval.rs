//! The approval hold (issue 5): what a `tools/call` whose decision is `needs_approval` does.
//!
//! 1. A retry of the same call (same agent, tool and argument digest) whose request was
//!    approved meanwhile consumes that approval (single use) and proceeds at once.
//! 2. Otherwise the call joins a pending request for the same digest, or opens a durable
//!    one (agent, owner, chain, tool, effects, exact and redacted arguments, determining
//!    policies, approver terms, session taint and its last audit events) and announces it to
//!    the approver groups' webhooks (signed, retried with backoff, in the background).
//! 3. The call waits, sending `notifications/progress` when the client gave a
//!    `progressToken`, until the request is approved (consumed; the gateway forwards exactly
//!    the approved arguments), denied or expired (a JSON-RPC error naming who and why), or
//!    the hold time ends (an error carrying the approval id: retry the same call once it is
//!    approved).
//!
//! Decisions made in this process (console, admin API) wake the waiters at once through
//! [`ApprovalGate::decided`]; decisions from other processes (`warden approvals approve`)
//! are seen by polling the store.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::Notify;
use warden_approval::webhook::{self, RetrySchedule};
use warden_approval::{
    ApprovalError, ApprovalRequest, NewRequest, Status, args_digest, eligible_approvers, ops,
};
use warden_core::ToolRef;
use warden_store::approvals::approval_event;
use warden_store::time::{now_ms, rfc3339};
use warden_store::{AuditEvent, AuditWriter, Store};

use crate::decide::{CallDecision, Outcome};
use crate::gateway::{Gateway, Principal, Session, error};
use crate::upstream::NotifySink;

/// JSON-RPC error codes of the approval hold.
pub mod codes {
    /// An approver denied the call.
    pub const APPROVAL_DENIED: i64 = -32010;
    /// The request expired without enough approvals (or an approval was not used in time).
    pub const APPROVAL_EXPIRED: i64 = -32011;
    /// The hold time ended while the request was pending: retry the same call later.
    pub const APPROVAL_PENDING: i64 = -32012;
    /// The approval store failed.
    pub const APPROVAL_UNAVAILABLE: i64 = -32013;
}

/// Where new requests are announced.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// HMAC-SHA256 key for `X-Warden-Signature`.
    pub secret: Vec<u8>,
    /// Where the console is served (`http://ADDR`), set once the server listens.
    pub console_url: Arc<std::sync::OnceLock<String>>,
    pub schedule: RetrySchedule,
    /// Per-attempt timeout.
    pub timeout: Duration,
}

/// The approval stage of the gateway.
pub struct ApprovalGate {
    pub store: Store,
    /// How long a call waits for a human (`settings.approval_hold`).
    pub hold: Duration,
    /// How long a request holds when no policy or rule says (`ttl_seconds` absent).
    pub default_ttl: Duration,
    /// How often the store is polled for answers from other processes.
    pub poll: Duration,
    /// Notified after every decision made in this process.
    pub decided: Arc<Notify>,
    pub webhooks: WebhookConfig,
    /// Session events copied into a request.
    pub history_len: usize,
    client: reqwest::Client,
}

impl ApprovalGate {
    pub fn new(
        store: Store,
        hold: Duration,
        decided: Arc<Notify>,
        webhooks: WebhookConfig,
    ) -> ApprovalGate {
        crate::upstream::install_crypto_provider();
        ApprovalGate {
            store,
            hold,
            default_ttl: Duration::from_secs(30 * 60),
            poll: Duration::from_millis(200),
            decided,
            history_len: 10,
            client: reqwest::Client::builder()
                .timeout(webhooks.timeout)
                .build()
                .unwrap_or_default(),
            webhooks,
        }
    }

    async fn history(&self, session: Option<&Session>) -> Vec<Value> {
        let Some(s) = session else { return Vec::new() };
        let Ok(tail) = self.store.audit_tail(500).await else {
            return Vec::new();
        };
        let mut out: Vec<Value> = tail
            .into_iter()
            .filter(|r| r.event.get("session").and_then(Value::as_str) == Some(s.id.as_str()))
            .map(|r| {
                let e = &r.event;
                json!({"seq": r.seq, "time": e.get("time"), "kind": e.get("kind"), "tool": e.get("tool"),
                       "decision": e.get("decision"), "outcome": e.get("outcome"), "args": e.get("args")})
            })
            .collect();
        let skip = out.len().saturating_sub(self.history_len);
        out.drain(..skip);
        out
    }

    /// Holds the call. `Ok(args)`: approved and consumed, forward exactly these arguments.
    /// `Err(reply)`: answer the agent with this JSON-RPC error. `ev` (the decision record)
    /// gains the approval id and, on `Err`, the outcome.
    #[allow(clippy::too_many_arguments)]
    pub async fn hold(
        &self,
        gw: &Gateway,
        who: &Principal,
        session: Option<&Arc<Session>>,
        id: &Value,
        tr: &ToolRef,
        args: &Value,
        decision: &CallDecision,
        request_id: &str,
        progress_token: Option<Value>,
        sink: Option<NotifySink>,
        ev: &mut AuditEvent,
    ) -> Result<Value, Value> {
        let inv = gw.inventory();
        let tool = tr.qualified();
        let digest = args_digest(args);
        let fail = |ev: &mut AuditEvent, code: i64, outcome: &str, msg: String, data: Value| {
            ev.outcome = Some(outcome.into());
            Err(error(id, code, &msg, Some(data)))
        };
        let store_err = |ev: &mut AuditEvent, e: ApprovalError| {
            ev.outcome = Some("approval_unavailable".into());
            Err(error(
                id,
                codes::APPROVAL_UNAVAILABLE,
                &format!("the approval store is unavailable: {e}"),
                None,
            ))
        };
        // 1. A retry of an approved call.
        match ops::consume_matching(&self.store, &who.agent, &tool, &digest, now_ms()).await {
            Ok(Some(r)) => {
                ev.detail.insert("approval_id".into(), json!(r.id));
                ev.detail
                    .insert("approval".into(), json!(r.answer_summary()));
                gw.audit()
                    .append_nowait(&approval_event(
                        &r,
                        "consumed",
                        None,
                        Some(("request", json!(request_id))),
                    ))
                    .await;
                return Ok(r.args);
            }
            Ok(None) => {}
            Err(e) => return store_err(ev, e),
        }
        // 2. Join a pending request for the same call, or open one.
        let req =
            match ops::pending_matching(&self.store, &who.agent, &tool, &digest, now_ms()).await {
                Ok(Some(r)) => r,
                Ok(None) => {
                    let (approvers, required, sod, ttl) = match &decision.outcome {
                        Outcome::NeedsApproval {
                            approvers,
                            approvals_required,
                            separation_of_duties,
                            ttl_seconds,
                        } => (
                            approvers.clone(),
                            *approvals_required,
                            *separation_of_duties,
                            *ttl_seconds,
                        ),
                        _ => (Vec::new(), 1, true, None),
                    };
                    let declared = inv.tool(tr).map(|(_, t)| t);
                    let new = NewRequest {
                        agent: who.agent.clone(),
                        owner: inv
                            .agents
                            .get(&who.agent)
                            .and_then(|a| a.owner.as_ref().map(|o| o.value.clone())),
                        delegation: who.delegation.clone(),
                        root_human: who.root_human.clone(),
                        session: session.map(|s| s.id.clone()),
                        request: Some(request_id.to_string()),
                        tool: tool.clone(),
                        effects: declared
                            .map(|t| t.effects.iter().map(|e| e.as_str().to_string()).collect())
                            .unwrap_or_default(),
                        irreversible: declared.is_some_and(|t| t.irreversible),
                        args: args.clone(),
                        display_args: gw.redact_args(args),
                        policies: decision.policies.clone(),
                        reasons: decision.reasons.clone(),
                        approvers,
                        approvals_required: required.max(1),
                        separation_of_duties: sod,
                        tainted: ev.tainted.unwrap_or(false),
                        taint_sources: session
                            .map(|s| s.taint_sources.lock().unwrap().clone())
                            .unwrap_or_default(),
                        history: self.history(session.map(|s| s.as_ref())).await,
                        ttl_ms: ttl
                            .map(|s| s.saturating_mul(1000) as i64)
                            .unwrap_or(self.default_ttl.as_millis() as i64),
                    };
                    let r = match ops::open(&self.store, new, now_ms()).await {
                        Ok(r) => r,
                        Err(e) => return store_err(ev, e),
                    };
                    if let Err(e) = gw
                        .audit()
                        .append(&approval_event(&r, "requested", None, None))
                        .await
                    {
                        eprintln!("warden: audit failed: {e}");
                    }
                    self.announce(gw, &r);
                    r
                }
                Err(e) => return store_err(ev, e),
            };
        ev.detail.insert("approval_id".into(), json!(req.id));
        // 3. Wait.
        let deadline = tokio::time::Instant::now() + self.hold;
        let mut tick = 0u64;
        loop {
            let notified = self.decided.notified();
            let r = match ops::get(&self.store, &req.id, now_ms()).await {
                Ok(r) => r,
                Err(e) => return store_err(ev, e),
            };
            let data = json!({"approval_id": r.id, "status": r.status.as_str(), "votes": r.votes,
                              "approvers": r.approvers, "expires_at": rfc3339(r.expires_ms)});
            match r.status {
                Status::Approved => match ops::consume(&self.store, &r.id, &digest, now_ms()).await
                {
                    Ok(used) => {
                        ev.detail
                            .insert("approval".into(), json!(used.answer_summary()));
                        gw.audit()
                            .append_nowait(&approval_event(
                                &used,
                                "consumed",
                                None,
                                Some(("request", json!(request_id))),
                            ))
                            .await;
                        return Ok(used.args);
                    }
                    // A concurrent retry of the same call used it first.
                    Err(ApprovalError::NotPending { .. }) => {
                        return fail(
                            ev,
                            codes::APPROVAL_EXPIRED,
                            "approval_used",
                            format!(
                                "approval {} was already used by another call; an approval allows one call",
                                r.id
                            ),
                            data,
                        );
                    }
                    Err(ApprovalError::Expired(_)) => {
                        return fail(
                            ev,
                            codes::APPROVAL_EXPIRED,
                            "approval_expired",
                            format!("approval {} expired before the call could use it", r.id),
                            data,
                        );
                    }
                    Err(e) => return store_err(ev, e),
                },
                Status::Denied => {
                    let (who_, why) = r
                        .denial()
                        .map(|v| (v.human.clone(), v.reason.clone()))
                        .unwrap_or_default();
                    return fail(
                        ev,
                        codes::APPROVAL_DENIED,
                        "approval_denied",
                        format!(
                            "Warden: {tool} was denied by {who_}: {why} (approval {})",
                            r.id
                        ),
                        data,
                    );
                }
                Status::Expired => {
                    return fail(
                        ev,
                        codes::APPROVAL_EXPIRED,
                        "approval_expired",
                        format!(
                            "Warden: approval {} for {tool} expired without an answer; the call did not run",
                            r.id
                        ),
                        data,
                    );
                }
                Status::Consumed => {
                    return fail(
                        ev,
                        codes::APPROVAL_EXPIRED,
                        "approval_used",
                        format!(
                            "approval {} was already used by another call; an approval allows one call",
                            r.id
                        ),
                        data,
                    );
                }
                Status::Pending => {}
            }
            if tokio::time::Instant::now() >= deadline {
                let mut data = data;
                data["eligible_approvers"] = json!(eligible_approvers(inv, &r));
                return fail(
                    ev,
                    codes::APPROVAL_PENDING,
                    "approval_pending",
                    format!(
                        "Warden: {tool} is waiting for approval {} by {} ({} of {} approvals); retry the same call once it is approved (until {})",
                        r.id,
                        r.approvers.join(", "),
                        r.approvals().len(),
                        r.approvals_required,
                        rfc3339(r.expires_ms)
                    ),
                    data,
                );
            }
            if let (Some(tok), Some(sink)) = (&progress_token, &sink)
                && tick.is_multiple_of(5)
            {
                let _ = sink.send(json!({"jsonrpc": "2.0", "method": "notifications/progress", "params": {
                    "progressToken": tok, "progress": tick / 5 + 1,
                    "message": format!("waiting for approval {} by {}", r.id, r.approvers.join(", "))}}));
            }
            tick += 1;
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep(self.poll) => {}
            }
        }
    }

    /// Posts the new request to the approver groups' and eligible humans' webhooks, in the
    /// background (never blocks the call).
    fn announce(&self, gw: &Gateway, r: &ApprovalRequest) {
        let inv = gw.inventory();
        let eligible = eligible_approvers(inv, r);
        let mut urls: Vec<String> = Vec::new();
        for a in &r.approvers {
            match warden_core::inventory::parse_approver(a) {
                warden_core::inventory::Approver::Group(g) => {
                    if let Some(g) = inv.groups.get(g) {
                        urls.extend(g.webhooks.iter().cloned());
                    }
                }
                warden_core::inventory::Approver::Human(_) => {}
            }
        }
        for h in &eligible {
            if let Some(h) = inv.humans.get(h) {
                urls.extend(h.webhooks.iter().cloned());
            }
        }
        urls.sort();
        urls.dedup();
        if urls.is_empty() {
            return;
        }
        let console = self
            .webhooks
            .console_url
            .get()
            .map(|u| format!("{}/console/", u.trim_end_matches('/')));
        let body = webhook::payload(r, &eligible, console.as_deref()).to_string();
        for url in urls {
            let delivery = Delivery {
                client: self.client.clone(),
                secret: self.webhooks.secret.clone(),
                schedule: self.webhooks.schedule,
                audit: gw.audit().clone(),
                approval_id: r.id.clone(),
                delivery_id: format!(
                    "{}-{}",
                    r.id,
                    &warden_approval::args_digest(&json!(url))[..8]
                ),
                url,
                body: body.clone(),
            };
            tokio::spawn(delivery.run());
        }
    }
}

struct Delivery {
    client: reqwest::Client,
    secret: Vec<u8>,
    schedule: RetrySchedule,
    audit: AuditWriter,
    approval_id: String,
    delivery_id: String,
    url: String,
    body: String,
}

impl Delivery {
    async fn run(self) {
        let mut attempt = 1;
        let mut last = String::new();
        let mut delivered = false;
        while let Some(wait) = self.schedule.delay_before(attempt) {
            tokio::time::sleep(wait).await;
            let ts = now_ms() / 1000;
            let sig = webhook::sign(&self.secret, ts, self.body.as_bytes());
            let res = self
                .client
                .post(&self.url)
                .header("content-type", "application/json")
                .header(webhook::TIMESTAMP_HEADER, ts.to_string())
                .header(webhook::SIGNATURE_HEADER, sig)
                .header(webhook::DELIVERY_HEADER, &self.delivery_id)
                .body(self.body.clone())
                .send()
                .await;
            match res {
                Ok(r) if r.status().is_success() => {
                    delivered = true;
                    last = r.status().as_u16().to_string();
                    break;
                }
                Ok(r) => {
                    last = format!("HTTP {}", r.status().as_u16());
                    if !RetrySchedule::retryable_status(r.status().as_u16()) {
                        break;
                    }
                }
                Err(e) => last = e.to_string(),
            }
            attempt += 1;
        }
        let mut ev = AuditEvent::now("webhook");
        ev.outcome = Some(if delivered { "delivered" } else { "failed" }.into());
        ev.detail
            .insert("approval_id".into(), json!(self.approval_id));
        ev.detail.insert("url".into(), json!(redact_url(&self.url)));
        ev.detail.insert(
            "attempts".into(),
            json!(attempt.min(self.schedule.max_attempts)),
        );
        ev.detail.insert("last".into(), json!(last));
        self.audit.append_nowait(&ev).await;
    }
}

/// A webhook URL without its query string (Slack-style URLs carry secrets in the path too:
/// keep scheme, host and the first path segment only).
fn redact_url(url: &str) -> String {
    let no_query = url.split(['?', '#']).next().unwrap_or(url);
    match no_query.split_once("://") {
        Some((scheme, rest)) => {
            let mut parts = rest.splitn(3, '/');
            let host = parts.next().unwrap_or("");
            let first = parts.next();
            match (first, parts.next()) {
                (Some(f), Some(_)) => format!("{scheme}://{host}/{f}/…"),
                (Some(f), None) => format!("{scheme}://{host}/{f}"),
                _ => format!("{scheme}://{host}"),
            }
        }
        None => "…".into(),
    }
}
