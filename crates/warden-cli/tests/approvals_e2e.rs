//! Approval gates end to end with real parts: `warden up`, the Python `mcp` SDK client,
//! the acme testkit MCP server over stdio, `warden approvals` from another process, a
//! restart while a request is pending, and webhook receivers on loopback.
//! Prerequisites: `scripts/deps.d/40-gateway.sh` (CI runs it).

#[path = "gateway_support/mod.rs"]
mod gateway_support;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gateway_support::*;
use serde_json::{Value, json};

/// Approval rules and approvers added to the gateway fixture inventory.
fn write_approvals(dir: &Path, hold: &str, hooks: &[String]) {
    let group_hooks = hooks.first().cloned().unwrap_or_default();
    let human_hooks = hooks.get(1).cloned().unwrap_or_default();
    let yaml = format!(
        r#"
humans:
  - {{ id: approver@example.com, groups: [ops-leads], webhooks: [{human_hooks}] }}
  - {{ id: outsider@example.com, groups: [sales] }}
groups:
  - {{ id: ops-leads, webhooks: [{group_hooks}] }}
  - {{ id: sales }}
approvals:
  - id: echo-needs-a-lead
    when: {{ tools: [testkit.echo] }}
    approvers: [group:ops-leads, group:ops]
    separation_of_duties: true
    expires: 10m
  - id: slow-expires-fast
    when: {{ tools: [testkit.slow] }}
    approvers: [group:ops-leads]
    expires: 2s
settings:
  approval_hold: {hold}
"#
    );
    std::fs::write(dir.join("approvals.yaml"), yaml).unwrap();
}

fn client(w: &Warden, token: &str, steps: Value) -> Child {
    Command::new(python())
        .args([
            fixture("mcp_client.py"),
            "http".into(),
            w.url(),
            token.to_string(),
            steps.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn finish(c: Child) -> Value {
    let out = c.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("client printed: {}", String::from_utf8_lossy(&out.stdout)))
}

fn cli(w: &Warden, args: &[&str]) -> std::process::Output {
    let mut a: Vec<&str> = args.to_vec();
    let dir = w.dir.display().to_string();
    let db = w.db.display().to_string();
    a.extend([dir.as_str(), "--db", db.as_str()]);
    warden(&a)
}

fn list(w: &Warden, status: &str) -> Vec<Value> {
    let o = cli(
        w,
        &["approvals", "list", "--status", status, "--format", "json"],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    v["approvals"].as_array().cloned().unwrap_or_default()
}

/// Waits (bounded) until `n` requests are pending; returns them, newest first.
fn wait_pending(w: &Warden, n: usize) -> Vec<Value> {
    let start = Instant::now();
    loop {
        let p = list(w, "pending");
        if p.len() >= n {
            return p;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{n} pending request(s) never appeared; stderr: {}",
            std::fs::read_to_string(&w.stderr_log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn answer(w: &Warden, verb: &str, id: &str, human: &str, reason: &str) -> std::process::Output {
    cli(
        w,
        &["approvals", verb, id, "--as", human, "--reason", reason],
    )
}

/// One HTTP request a receiver got.
#[derive(Debug, Clone)]
struct Hit {
    path: String,
    headers: HashMap<String, String>,
    body: String,
    at: Instant,
}

/// A loopback webhook receiver: `/ok` answers 200; `/flaky` answers 503 to the first two
/// attempts of each delivery, then 200.
fn receiver() -> (u16, Arc<Mutex<Vec<Hit>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let hits = Arc::new(Mutex::new(Vec::<Hit>::new()));
    let h2 = hits.clone();
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(180);
        l.set_nonblocking(true).unwrap();
        while Instant::now() < deadline {
            let Ok((mut s, _)) = l.accept() else {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            };
            s.set_nonblocking(false).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            if r.read_line(&mut line).is_err() {
                continue;
            }
            let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
            let mut headers = HashMap::new();
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).is_err() || h.trim().is_empty() {
                    break;
                }
                if let Some((k, v)) = h.split_once(':') {
                    headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
                }
            }
            let len: usize = headers
                .get("content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let mut body = vec![0u8; len];
            let _ = r.read_exact(&mut body);
            let mut hits = h2.lock().unwrap();
            // Earlier attempts of the same delivery (every delivery fails twice on /flaky,
            // whatever other deliveries are in flight).
            let delivery = headers.get("x-warden-delivery").cloned();
            let n_same = hits
                .iter()
                .filter(|x| {
                    x.path == path && x.headers.get("x-warden-delivery") == delivery.as_ref()
                })
                .count();
            hits.push(Hit {
                path: path.clone(),
                headers,
                body: String::from_utf8_lossy(&body).into_owned(),
                at: Instant::now(),
            });
            drop(hits);
            let status = if path == "/flaky" && n_same < 2 {
                "503 Service Unavailable"
            } else {
                "200 OK"
            };
            let _ = write!(
                s,
                "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
        }
    });
    (port, hits)
}

#[test]
fn waiting_call_is_approved_denied_or_expires_and_webhooks_are_signed_and_retried() {
    require_deps();
    let dir = tempfile::tempdir().unwrap();
    let (port, hits) = receiver();
    write_inventory(dir.path(), None, "");
    write_approvals(
        dir.path(),
        "30s",
        &[
            format!("http://127.0.0.1:{port}/ok"),
            format!("http://127.0.0.1:{port}/flaky"),
        ],
    );
    let w = Warden::start(dir.path(), &[]);
    let token = w.token("alpha");
    let a = json!({"message": "refund ch_123 for 900 EUR", "api_key": "sk_live_abcdefghijklmnopqrstuvwx"});

    // 1. The call waits; the request is durable and visible to another process.
    let c = client(
        &w,
        &token,
        json!([{"call": "testkit.echo", "args": a, "progress": true}]),
    );
    let pending = wait_pending(&w, 1);
    let id = pending[0]["id"].as_str().unwrap().to_string();
    assert_eq!(pending[0]["agent"], "alpha");
    assert_eq!(pending[0]["tool"], "testkit.echo");
    assert_eq!(pending[0]["owner"], "olivia@example.com");
    assert_eq!(pending[0]["display_args"]["api_key"], "[REDACTED]");
    assert!(
        pending[0]["policies"]
            .as_array()
            .is_some_and(|p| !p.is_empty())
    );

    // The owner (olivia, in group ops) may not approve her own agent's call; nor an outsider.
    let o = answer(&w, "approve", &id, "olivia@example.com", "mine");
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("separation of duties"));
    assert_eq!(
        answer(&w, "approve", &id, "outsider@example.com", "ok")
            .status
            .code(),
        Some(1)
    );
    assert_eq!(
        answer(
            &w,
            "approve",
            &id,
            "approver@example.com",
            "customer verified"
        )
        .status
        .code(),
        Some(0)
    );

    let out = finish(c);
    let call = &out["calls"][0];
    assert_eq!(call["isError"], false, "{out}");
    // The upstream echoed exactly the approved arguments.
    assert!(
        call["text"]
            .as_str()
            .unwrap()
            .contains("refund ch_123 for 900 EUR"),
        "{out}"
    );
    assert!(
        !call["progress"].as_array().unwrap().is_empty(),
        "progress notifications while waiting: {out}"
    );
    assert_eq!(list(&w, "consumed")[0]["id"], id.as_str());

    // 2. Single use: the same call again needs a new approval; a deny names who and why.
    let c = client(&w, &token, json!([{"call": "testkit.echo", "args": a}]));
    let second = wait_pending(&w, 1)[0]["id"].as_str().unwrap().to_string();
    assert_ne!(second, id);
    assert_eq!(
        answer(
            &w,
            "deny",
            &second,
            "approver@example.com",
            "already refunded"
        )
        .status
        .code(),
        Some(0)
    );
    let out = finish(c);
    let err = out["calls"][0]["exception"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        err.contains("approver@example.com") && err.contains("already refunded"),
        "{out}"
    );

    // 3. Changed arguments are a different request (a different digest).
    let b = json!({"message": "refund ch_123 for 4900 EUR"});
    let c = client(&w, &token, json!([{"call": "testkit.echo", "args": b}]));
    let third = wait_pending(&w, 1);
    assert_ne!(third[0]["args_digest"], pending[0]["args_digest"]);
    assert_eq!(
        answer(
            &w,
            "approve",
            third[0]["id"].as_str().unwrap(),
            "approver@example.com",
            "ok"
        )
        .status
        .code(),
        Some(0)
    );
    let out = finish(c);
    assert!(
        out["calls"][0]["text"]
            .as_str()
            .unwrap_or("")
            .contains("4900"),
        "{out}"
    );

    // 4. Expiry: the rule for testkit.slow holds 2 s; nobody answers.
    let c = client(
        &w,
        &token,
        json!([{"call": "testkit.slow", "args": {"steps": 1}}]),
    );
    let out = finish(c);
    let err = out["calls"][0]["exception"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(err.contains("expired"), "{out}");

    // 5. Webhooks: every new request was announced to both receivers, signed; the flaky
    //    one was retried with growing delays. The calls above never waited for them.
    let key = std::fs::read_to_string(dir.path().join("webhook.key")).unwrap();
    let start = Instant::now();
    loop {
        let n = hits
            .lock()
            .unwrap()
            .iter()
            .filter(|h| h.path == "/flaky" && h.body.contains(id.as_str()))
            .count();
        if n >= 3 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "flaky receiver got {n} attempts"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let hits = hits.lock().unwrap().clone();
    let ok: Vec<&Hit> = hits.iter().filter(|h| h.path == "/ok").collect();
    assert!(ok.len() >= 4, "one delivery per request: {}", ok.len());
    for h in &hits {
        let ts: i64 = h.headers["x-warden-timestamp"].parse().unwrap();
        let sig = &h.headers["x-warden-signature"];
        let now = (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()) as i64;
        assert!(
            warden_approval::webhook::verify(
                key.trim().as_bytes(),
                ts,
                h.body.as_bytes(),
                sig,
                now,
                300
            ),
            "bad signature on {h:?}"
        );
        assert!(!warden_approval::webhook::verify(
            b"wrong",
            ts,
            h.body.as_bytes(),
            sig,
            now,
            300
        ));
        let v: Value = serde_json::from_str(&h.body).unwrap();
        assert!(
            v["text"].as_str().unwrap().contains("testkit."),
            "Slack-compatible text: {v}"
        );
        assert!(!h.body.contains("sk_live"), "secret in webhook body");
    }
    let first_id = id.as_str();
    let flaky: Vec<&Hit> = hits
        .iter()
        .filter(|h| h.path == "/flaky" && h.body.contains(first_id))
        .collect();
    assert!(flaky.len() >= 3, "retried: {}", flaky.len());
    let d1 = flaky[1].at - flaky[0].at;
    let d2 = flaky[2].at - flaky[1].at;
    assert!(
        d1 >= Duration::from_millis(900) && d2 >= Duration::from_millis(1800),
        "backoff {d1:?} then {d2:?}"
    );
    assert!(
        flaky.iter().all(
            |h| h.headers.get("x-warden-delivery") == flaky[0].headers.get("x-warden-delivery")
        )
    );

    // The audit chain has requests, votes, uses and deliveries, and verifies.
    let audit: Vec<Value> = w
        .audit()
        .into_iter()
        .map(|r| r.get("event").cloned().unwrap_or(r))
        .collect();
    let kinds: Vec<String> = audit
        .iter()
        .filter(|e| e["kind"] == "approval")
        .map(|e| e["outcome"].as_str().unwrap_or("").to_string())
        .collect();
    for want in ["requested", "refused", "approved", "consumed", "denied"] {
        assert!(kinds.iter().any(|k| k == want), "no {want} in {kinds:?}");
    }
    assert!(
        audit
            .iter()
            .any(|e| e["kind"] == "webhook" && e["outcome"] == "delivered")
    );
    assert!(!serde_json::to_string(&audit).unwrap().contains("sk_live"));
    let v = cli(&w, &["audit", "verify"]);
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stdout));
    w.terminate();
}

#[test]
fn hold_time_over_then_restart_then_retry_proceeds_once() {
    require_deps();
    let dir = tempfile::tempdir().unwrap();
    write_inventory(dir.path(), None, "");
    write_approvals(dir.path(), "1s", &[]);
    let w = Warden::start(dir.path(), &[]);
    let token = w.token("alpha");
    let args = json!({"message": "ship it"});
    let step = json!([{"call": "testkit.echo", "args": args}]);

    // The hold time ends first: the agent gets an error carrying the approval id.
    let out = finish(client(&w, &token, step.clone()));
    let err = out["calls"][0]["exception"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let pending = list(&w, "pending");
    assert_eq!(pending.len(), 1);
    let id = pending[0]["id"].as_str().unwrap().to_string();
    assert!(err.contains(&id), "error names the approval: {out}");

    // The gateway restarts while the request is pending: it is still there.
    assert!(w.terminate().success());
    let w = Warden::start(dir.path(), &[]);
    assert_eq!(list(&w, "pending")[0]["id"], id.as_str());
    assert_eq!(
        answer(
            &w,
            "approve",
            &id,
            "approver@example.com",
            "approved after restart"
        )
        .status
        .code(),
        Some(0)
    );

    // The retried call (same digest) proceeds at once, without a new request …
    let out = finish(client(&w, &token, step.clone()));
    assert_eq!(out["calls"][0]["isError"], false, "{out}");
    assert!(
        out["calls"][0]["text"]
            .as_str()
            .unwrap()
            .contains("ship it")
    );
    assert_eq!(list(&w, "all").len(), 1);
    assert_eq!(list(&w, "consumed")[0]["id"], id.as_str());
    // … once: the next identical call needs a new approval.
    let out = finish(client(&w, &token, step));
    let err = out["calls"][0]["exception"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let again = list(&w, "pending");
    assert_eq!(again.len(), 1);
    assert_ne!(again[0]["id"], id.as_str());
    assert!(err.contains(again[0]["id"].as_str().unwrap()), "{out}");
    w.terminate();
}

#[test]
fn stdio_gateway_holds_the_call_until_approved_from_the_cli() {
    require_deps();
    let dir = tempfile::tempdir().unwrap();
    write_inventory(dir.path(), None, "");
    write_approvals(dir.path(), "60s", &[]);
    let db = dir.path().join("warden.db");
    let steps = json!([{"call": "testkit.echo", "args": {"message": "over stdio"}}]);
    let c = Command::new(python())
        .args([
            fixture("mcp_client.py"),
            "stdio".into(),
            steps.to_string(),
            "--".into(),
        ])
        .args([WARDEN, "gateway", "stdio", "--agent", "alpha"])
        .arg(dir.path())
        .arg("--db")
        .arg(&db)
        .env("PATH", path_env())
        .env("WARDEN_TEST_UPSTREAM_SECRET", "s3cr3t-upstream-credential")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let run = |args: &[&str]| {
        let mut a: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        a.extend([
            dir.path().display().to_string(),
            "--db".into(),
            db.display().to_string(),
        ]);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        warden(&a)
    };
    let start = Instant::now();
    let id = loop {
        if db.exists() {
            let o = run(&["approvals", "list", "--format", "json"]);
            if o.status.success() {
                let v: Value = serde_json::from_slice(&o.stdout).unwrap();
                if let Some(id) = v["approvals"][0]["id"].as_str() {
                    break id.to_string();
                }
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no pending request from the stdio gateway"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let o = run(&[
        "approvals",
        "approve",
        &id,
        "--as",
        "approver@example.com",
        "--reason",
        "fine",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = finish(c);
    assert_eq!(out["calls"][0]["isError"], false, "{out}");
    assert!(
        out["calls"][0]["text"]
            .as_str()
            .unwrap()
            .contains("over stdio")
    );
}

#[test]
fn a_call_cancelled_while_held_never_runs_and_its_approval_serves_a_retry() {
    require_deps();
    let dir = tempfile::tempdir().unwrap();
    write_inventory(dir.path(), None, "");
    write_approvals(dir.path(), "120s", &[]);
    let w = Warden::start(dir.path(), &[]);
    let token = w.token("alpha");
    let mut held = Mcp::connect(w.addr, &token);
    let canceller = Mcp {
        addr: held.addr,
        token: held.token.clone(),
        session: held.session.clone(),
        next: 1000,
    };
    let args = json!({"message": "cancel me"});
    let a = args.clone();
    let waiting = std::thread::spawn(move || {
        let reply = held.call("testkit.echo", a);
        (held.next, reply)
    });
    let pending = wait_pending(&w, 1);
    let approval = pending[0]["id"].as_str().unwrap().to_string();
    // The JSON-RPC id the held call used: Mcp::request increments `next` before sending.
    let r = canceller.post(
        &json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                "params": {"requestId": 2, "reason": "the user gave up"}}),
        true,
    );
    assert_eq!(r.status, 202, "{r:?}");
    // The held call answers now, long before its 120 s hold would end.
    let (used_id, reply) = waiting.join().unwrap();
    assert_eq!(used_id, 2, "the cancellation named the held call's id");
    let msg = reply["error"]["message"].as_str().unwrap_or_default();
    assert!(msg.contains("cancelled"), "{reply}");

    // Approving afterwards runs nothing: the cancelled call is gone.
    assert_eq!(
        answer(&w, "approve", &approval, "approver@example.com", "late")
            .status
            .code(),
        Some(0)
    );
    let audit = w.audit();
    let decision = audit
        .iter()
        .find(|r| r["event"]["kind"] == "decision" && r["event"]["tool"] == "testkit.echo")
        .expect("a decision record for the held call");
    assert_eq!(decision["event"]["outcome"], "cancelled", "{decision}");
    assert_eq!(
        decision["event"]["detail"]["cancel_reason"],
        "the user gave up"
    );
    assert!(
        !audit
            .iter()
            .any(|r| r["event"]["kind"] == "outcome" && r["event"]["tool"] == "testkit.echo"),
        "nothing was forwarded to the upstream"
    );
    assert_eq!(list(&w, "approved")[0]["id"], approval.as_str());

    // The approval is still good for one retry of the same call.
    let out = finish(client(
        &w,
        &token,
        json!([{"call": "testkit.echo", "args": args}]),
    ));
    assert_eq!(out["calls"][0]["isError"], false, "{out}");
    assert_eq!(list(&w, "consumed")[0]["id"], approval.as_str());
    w.terminate();
}
