//! The console router against a real SQLite store: login, CSRF, cookies, eligibility
//! enforced by the server, audit records.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::json;
use tower::ServiceExt;
use warden_approval::{ApprovalStore, NewRequest, Status, Via, VoteKind, ops};
use warden_console::{ConsoleOptions, ConsoleState, router};
use warden_core::Inventory;
use warden_store::time::now_ms;
use warden_store::{Durability, Store};

fn inv() -> Inventory {
    Inventory::from_manifests([(
        "org.yaml",
        r#"
groups:
  - id: finance-leads
  - id: support-leads
humans:
  - { id: alice, groups: [support-leads] }
  - { id: bob, name: Bob Okafor, groups: [finance-leads] }
  - { id: carol, groups: [finance-leads] }
  - { id: dave, groups: [finance-ops] }
agents:
  - { id: refund-agent, owner: dave }
"#,
    )])
    .unwrap()
}

struct T {
    _dir: tempfile::TempDir,
    store: Store,
    inv: Arc<Inventory>,
    app: axum::Router,
}

async fn setup(secure: bool) -> T {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("w.db"), Durability::Normal)
        .await
        .unwrap();
    let inv = Arc::new(inv());
    let state = ConsoleState::new(
        inv.clone(),
        store.clone(),
        ConsoleOptions {
            secure_cookies: secure,
            ..Default::default()
        },
        Arc::new(tokio::sync::Notify::new()),
    );
    let app = router(state);
    T {
        _dir: dir,
        store,
        inv,
        app,
    }
}

fn refund(amount: i64) -> NewRequest {
    let args =
        json!({"amount": amount, "charge": "ch_9", "api_key": "sk_live_abcdefghijklmnopqrstuvwx"});
    NewRequest {
        agent: "refund-agent".into(),
        owner: Some("dave".into()),
        root_human: Some("dave".into()),
        tool: "payments.issue_refund".into(),
        effects: vec!["write".into(), "privileged".into()],
        irreversible: true,
        display_args: warden_store::redact::redact_value(&args),
        args,
        policies: vec!["refunds-over-limit".into()],
        reasons: vec!["refunds above 500 EUR need a finance lead".into()],
        approvers: vec!["group:finance-leads".into()],
        approvals_required: 1,
        separation_of_duties: true,
        history: vec![
            json!({"time": "2026-11-23T10:00:00.000Z", "kind": "decision", "tool": "payments.get_charge", "decision": "allow", "outcome": "ok"}),
        ],
        ttl_ms: 600_000,
        ..Default::default()
    }
}

async fn send(
    app: &axum::Router,
    req: Request<Body>,
) -> (StatusCode, axum::http::HeaderMap, String) {
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

fn cookies(h: &axum::http::HeaderMap) -> Vec<String> {
    h.get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect()
}

fn cookie_value(set: &[String], name: &str) -> String {
    set.iter()
        .find_map(|c| c.strip_prefix(&format!("{name}=")))
        .map(|c| c.split(';').next().unwrap().to_string())
        .unwrap_or_else(|| panic!("no {name} cookie in {set:?}"))
}

fn hidden(body: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let at = body
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {body}"))
        + marker.len();
    body[at..].split('"').next().unwrap().to_string()
}

fn form(uri: &str, cookie: &str, body: String) -> Request<Body> {
    Request::post(uri)
        .header(header::COOKIE, cookie)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(body))
        .unwrap()
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Logs `human` in through the real login form; returns (session cookie header, csrf).
async fn login(t: &T, human: &str) -> (String, String) {
    let tok = t.store.issue_console_login(human, 60_000).await.unwrap();
    let (st, h, body) = send(
        &t.app,
        Request::get("/console/login").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    let login_csrf = cookie_value(&cookies(&h), "warden_login_csrf");
    assert_eq!(hidden(&body, "csrf"), login_csrf);
    let (st, h, _) = send(
        &t.app,
        form(
            "/console/login",
            &format!("warden_login_csrf={login_csrf}"),
            format!("token={}&csrf={login_csrf}", enc(&tok.token)),
        ),
    )
    .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let set = cookies(&h);
    let sid = cookie_value(&set, "warden_console");
    let cookie = format!("warden_console={sid}");
    let (st, _, page) = send(
        &t.app,
        Request::get("/console/")
            .header(header::COOKIE, &cookie)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    (cookie, hidden(&page, "csrf"))
}

#[tokio::test]
async fn login_sets_strict_cookies_and_tokens_work_once() {
    let t = setup(true).await;
    // Not logged in: the page sends you to the login form; the API refuses.
    let (st, h, _) = send(
        &t.app,
        Request::get("/console/").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    assert_eq!(h.get(header::LOCATION).unwrap(), "/console/login");
    let (st, _, _) = send(
        &t.app,
        Request::get("/console/api/approvals")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);

    let tok = t.store.issue_console_login("bob", 60_000).await.unwrap();
    let (_, h, _) = send(
        &t.app,
        Request::get("/console/login").body(Body::empty()).unwrap(),
    )
    .await;
    let csrf = cookie_value(&cookies(&h), "warden_login_csrf");
    // A form without the matching double-submit cookie is refused.
    let (st, _, _) = send(
        &t.app,
        form(
            "/console/login",
            "warden_login_csrf=forged",
            format!("token={}&csrf={csrf}", enc(&tok.token)),
        ),
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, h, _) = send(
        &t.app,
        form(
            "/console/login",
            &format!("warden_login_csrf={csrf}"),
            format!("token={}&csrf={csrf}", enc(&tok.token)),
        ),
    )
    .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let set = cookies(&h);
    let session = set
        .iter()
        .find(|c| c.starts_with("warden_console="))
        .unwrap();
    for attr in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/console"] {
        assert!(session.contains(attr), "{attr} missing in {session}");
    }
    // The same token does not log in twice.
    let (st, h, _) = send(
        &t.app,
        form(
            "/console/login",
            &format!("warden_login_csrf={csrf}"),
            format!("token={}&csrf={csrf}", enc(&tok.token)),
        ),
    )
    .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    assert_eq!(
        h.get(header::LOCATION).unwrap(),
        "/console/login?error=invalid"
    );
    // On loopback (secure_cookies false) the cookie is not Secure.
    let t2 = setup(false).await;
    let tok = t2.store.issue_console_login("bob", 60_000).await.unwrap();
    let (st, h, _) = send(
        &t2.app,
        form(
            "/console/login",
            "warden_login_csrf=abc",
            format!("token={}&csrf=abc", enc(&tok.token)),
        ),
    )
    .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    assert!(!cookies(&h).iter().any(|c| c.contains("Secure")));
}

#[tokio::test]
async fn page_shows_the_request_in_full_with_changes_and_history_never_secrets() {
    let t = setup(false).await;
    // An earlier approved refund of 120 to compare with.
    let earlier = ops::open(&t.store, refund(120), now_ms() - 10_000)
        .await
        .unwrap();
    ops::vote(
        &t.store,
        &t.inv,
        &earlier.id,
        "bob",
        VoteKind::Approve,
        "ok",
        Via::Cli,
        now_ms(),
    )
    .await
    .unwrap();
    let r = ops::open(&t.store, refund(4900), now_ms()).await.unwrap();
    let (cookie, _) = login(&t, "carol").await;
    let (st, h, page) = send(
        &t.app,
        Request::get("/console/")
            .header(header::COOKIE, &cookie)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert!(
        h.get(header::CONTENT_SECURITY_POLICY)
            .unwrap()
            .to_str()
            .unwrap()
            .contains("script-src 'self'")
    );
    for want in [
        r.id.as_str(),
        "refund-agent",
        "payments.issue_refund",
        "privileged",
        "irreversible",
        "refunds-over-limit",
        "payments.get_charge",
        "/amount",
        "4900",
        "[REDACTED]",
    ] {
        assert!(page.contains(want), "page lacks {want}");
    }
    assert!(!page.contains("sk_live"), "secret leaked into the page");
    let (st, _, json) = send(
        &t.app,
        Request::get("/console/api/approvals")
            .header(header::COOKIE, &cookie)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["approvals"].as_array().unwrap().len(), 1);
    assert_eq!(v["approvals"][0]["id"], r.id.as_str());
    assert!(!json.contains("sk_live"));
    // The fragment the page polls carries a tag that changes when a request arrives.
    let tag = |s: &str| hidden(&s.replace("data-tag=\"", "name=\"tag\" value=\""), "tag");
    let (_, _, f1) = send(
        &t.app,
        Request::get("/console/fragment/approvals")
            .header(header::COOKIE, &cookie)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    let r2 = ops::open(&t.store, refund(777), now_ms()).await.unwrap();
    let (_, _, f2) = send(
        &t.app,
        Request::get("/console/fragment/approvals")
            .header(header::COOKIE, &cookie)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_ne!(tag(&f1), tag(&f2));
    assert!(f2.contains(&r2.id) && !f1.contains(&r2.id));
}

#[tokio::test]
async fn server_refuses_outsiders_owner_and_forged_posts_and_accepts_an_approver() {
    let t = setup(false).await;
    let r = ops::open(&t.store, refund(900), now_ms()).await.unwrap();
    let url = format!("/console/approvals/{}/approve", r.id);

    // alice (support lead) sees it, but the server refuses her approval.
    let (alice, alice_csrf) = login(&t, "alice").await;
    let (_, _, page) = send(
        &t.app,
        Request::get("/console/")
            .header(header::COOKIE, &alice)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert!(page.contains(&r.id) && page.contains("You may not answer"));
    let (st, _, body) = send(
        &t.app,
        form(&url, &alice, format!("csrf={alice_csrf}&reason=looks+fine")),
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("not a member of the approvers"), "{body}");
    // dave owns the agent: separation of duties.
    let (dave, dave_csrf) = login(&t, "dave").await;
    let (st, _, _) = send(
        &t.app,
        form(&url, &dave, format!("csrf={dave_csrf}&reason=mine")),
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert_eq!(
        t.store.get(&r.id).await.unwrap().unwrap().status,
        Status::Pending
    );

    // bob: a forged form (wrong CSRF token) and no session are refused; the real one works.
    let (bob, bob_csrf) = login(&t, "bob").await;
    let (st, _, _) = send(&t.app, form(&url, &bob, "csrf=0000&reason=x".into())).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, _, _) = send(&t.app, form(&url, "", format!("csrf={bob_csrf}&reason=x"))).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, _, _) = send(&t.app, form(&url, &bob, format!("csrf={bob_csrf}&reason="))).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "a reason is required");
    let (st, h, _) = send(
        &t.app,
        form(
            &url,
            &bob,
            format!("csrf={bob_csrf}&reason=charge+verified"),
        ),
    )
    .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    assert!(
        h.get(header::LOCATION)
            .unwrap()
            .to_str()
            .unwrap()
            .contains(&r.id)
    );
    let stored = t.store.get(&r.id).await.unwrap().unwrap();
    assert_eq!(stored.status, Status::Approved);
    assert_eq!(stored.votes[0].human, "bob");
    assert_eq!(stored.votes[0].reason, "charge verified");
    assert_eq!(stored.votes[0].via, Via::Console);

    // The audit chain holds the refusals and the approval, and still verifies.
    let tail = t.store.audit_tail(50).await.unwrap();
    let approvals: Vec<(String, String)> = tail
        .iter()
        .filter(|r| r.event["kind"] == "approval")
        .map(|r| {
            (
                r.event["outcome"].as_str().unwrap().to_string(),
                r.event["detail"]["human"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        approvals,
        vec![
            ("refused".to_string(), "alice".to_string()),
            ("refused".to_string(), "dave".to_string()),
            // bob's first attempt had no reason.
            ("refused".to_string(), "bob".to_string()),
            ("approved".to_string(), "bob".to_string())
        ]
    );
    assert!(t.store.verify_audit(None).await.unwrap().ok);
    // Answering again is refused: it is no longer pending.
    let (carol, carol_csrf) = login(&t, "carol").await;
    let (st, _, _) = send(
        &t.app,
        form(
            &format!("/console/approvals/{}/deny", r.id),
            &carol,
            format!("csrf={carol_csrf}&reason=late"),
        ),
    )
    .await;
    assert_eq!(st, StatusCode::CONFLICT);
}

#[tokio::test]
async fn admin_api_answers_with_per_approver_tokens() {
    let t = setup(false).await;
    let state = ConsoleState::new(
        t.inv.clone(),
        t.store.clone(),
        ConsoleOptions::default(),
        Arc::new(tokio::sync::Notify::new()),
    );
    let api = warden_console::mount(state);
    let r = ops::open(&t.store, refund(900), now_ms()).await.unwrap();
    let post = |token: Option<&str>, action: &str, body: &str| {
        let mut b = Request::post(format!("/api/approvals/{}/{action}", r.id))
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(tok) = token {
            b = b.header(header::AUTHORIZATION, format!("Bearer {tok}"));
        }
        b.body(Body::from(body.to_string())).unwrap()
    };
    // No token, a wrong token: 401.
    let (st, _, _) = send(&api, post(None, "approve", r#"{"reason":"x"}"#)).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, _, _) = send(
        &api,
        post(Some("wap_forged"), "approve", r#"{"reason":"x"}"#),
    )
    .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    // The owner's token: 403 (separation of duties), audited as refused.
    let dave = t.store.issue_approver_token("dave", None).await.unwrap();
    let (st, _, body) = send(
        &api,
        post(Some(&dave.token), "approve", r#"{"reason":"mine"}"#),
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{body}");
    // A finance lead: no reason is 400, with a reason it is approved (via webhook).
    let bob = t.store.issue_approver_token("bob", None).await.unwrap();
    let (st, _, _) = send(&api, post(Some(&bob.token), "approve", r#"{"reason":""}"#)).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, _, body) = send(
        &api,
        post(Some(&bob.token), "approve", r#"{"reason":"ok from Slack"}"#),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["approval"]["status"], "approved");
    assert_eq!(v["approval"]["votes"][0]["via"], "webhook");
    assert!(v["approval"].get("args").is_none());
    // Answering again: 409. Reading it back works with a token.
    let (st, _, _) = send(
        &api,
        post(Some(&bob.token), "deny", r#"{"reason":"changed my mind"}"#),
    )
    .await;
    assert_eq!(st, StatusCode::CONFLICT);
    let (st, _, body) = send(
        &api,
        Request::get(format!("/api/approvals/{}", r.id))
            .header(header::AUTHORIZATION, format!("Bearer {}", bob.token))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert!(body.contains(&r.id) && !body.contains("sk_live"));
}

#[tokio::test]
async fn a_session_survives_a_restart_and_is_shared_by_replicas_until_logout() {
    let t = setup(true).await;
    let (cookie, csrf) = login(&t, "bob").await;
    // A second console on the same store: another replica, or this one after a restart.
    let replica = router(ConsoleState::new(
        t.inv.clone(),
        t.store.clone(),
        ConsoleOptions::default(),
        Arc::new(tokio::sync::Notify::new()),
    ));
    let page = |app: axum::Router, cookie: String| async move {
        send(
            &app,
            Request::get("/console/")
                .header(header::COOKIE, cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await
    };
    let (st, _, body) = page(replica.clone(), cookie.clone()).await;
    assert_eq!(st, StatusCode::OK, "the other console knows the session");
    assert_eq!(hidden(&body, "csrf"), csrf, "same CSRF token everywhere");
    // A forged cookie is not a session.
    let (st, h, _) = page(replica.clone(), "warden_console=forged".into()).await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    assert_eq!(h[header::LOCATION], "/console/login");
    // Logging out on one ends it on all.
    let (st, _, _) = send(
        &t.app,
        form("/console/logout", &cookie, format!("csrf={csrf}")),
    )
    .await;
    assert_eq!(st, StatusCode::SEE_OTHER);
    let (st, _, _) = page(replica, cookie).await;
    assert_eq!(st, StatusCode::SEE_OTHER, "logged out everywhere");
}
