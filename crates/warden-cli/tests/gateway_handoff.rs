//! Handoffs end to end (issue 9): `warden up` with a small inventory of four agents, the
//! PyPI `mcp` SDK client as the sending and the receiving agent (two processes, two
//! sessions), the Acme in-house MCP servers as upstreams, and the raw HTTP client for the
//! refusal cases and the orchestrator API.

mod gateway_support;

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use gateway_support::*;
use serde_json::{Value, json};

/// triage → refund (2 keys, depth ≤ 1), triage → courier (2 s TTL), refund → auditor
/// (declared, but the chain limit forbids it under triage's delegation). triage may not
/// issue refunds; refund may. `inbox.echo` returns untrusted content; `notify.echo` sends
/// outside the organisation, which a tainted session may not do.
fn write_org(dir: &Path) {
    let acme = acme_server();
    let yaml = format!(
        r#"
humans:
  - {{ id: alice@example.com }}
  - {{ id: dave@example.com }}
agents:
  - id: triage
    owner: alice@example.com
    uses: [crm.read_ticket, inbox.echo, notify.echo]
    handoffs:
      - {{ to: refund, context: [ticket_id, customer_id], ttl: 10m, max_depth: 1 }}
      - {{ to: courier, context: [ticket_id], ttl: 2s }}
      - {{ to: clerk, context: [ticket_id], ttl: 10m }}
  - id: refund
    owner: dave@example.com
    uses: [payments.issue_refund, crm.read_ticket, notify.echo]
    handoffs:
      - {{ to: auditor, context: [ticket_id], ttl: 5m }}
  - id: auditor
    owner: dave@example.com
    uses: [crm.read_ticket]
  - id: courier
    owner: dave@example.com
    uses: [crm.read_ticket]
  - id: clerk
    owner: dave@example.com
    uses: [crm.read_ticket]
    handoffs:
      - {{ to: auditor, context: [ticket_id], ttl: 1h }}
connectors:
  - id: crm
    mcp: {{ command: python3, args: ["{acme}", crm] }}
    pin_on_first_sight: true
    tools:
      read_ticket: {{ effects: [read], args: {{ ticket_id: {{ type: string, required: true }} }} }}
  - id: payments
    mcp: {{ command: python3, args: ["{acme}", payments], env: {{ PAYMENTS_API_KEY: test-only-key }} }}
    pin_on_first_sight: true
    tools:
      issue_refund:
        effects: [write]
        args: {{ charge_id: {{ type: string, required: true }}, amount: {{ type: integer, required: true }} }}
  - id: inbox
    mcp: {{ command: python3, args: ["{acme}", testkit] }}
    pin_on_first_sight: true
    tools:
      echo: {{ effects: [read], untrusted_output: true }}
  - id: notify
    mcp: {{ command: python3, args: ["{acme}", testkit] }}
    pin_on_first_sight: true
    tools:
      echo: {{ effects: [external_send] }}
"#
    );
    std::fs::write(dir.join("inventory.yaml"), yaml).unwrap();
    std::fs::create_dir_all(dir.join("policies")).unwrap();
    std::fs::write(
        dir.join("policies/taint.cedar"),
        r#"@id("no-external-send-when-tainted")
@reason("the session read untrusted input; nothing may leave the organisation")
forbid (principal, action in Action::"external_send", resource)
when { context.session.tainted };
"#,
    )
    .unwrap();
}

fn events(w: &Warden, kind: &str) -> Vec<Value> {
    w.audit()
        .into_iter()
        .map(|r| r["event"].clone())
        .filter(|e| e["kind"] == kind)
        .collect()
}

/// The JSON a `warden.*` tool answered, from the Python client's text.
fn py_json(call: &Value) -> Value {
    assert_eq!(call["isError"], json!(false), "{call}");
    serde_json::from_str(call["text"].as_str().unwrap()).unwrap()
}

fn raw_json(resp: &Value) -> Value {
    assert_eq!(resp["result"]["isError"], json!(false), "{resp}");
    resp["result"]["structuredContent"].clone()
}

fn keys(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_string())
        .collect()
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn two_python_sdk_agents_hand_off_keys_dropped_authority_narrowed_taint_carried() {
    require_deps();
    let tmp = tempfile::tempdir().unwrap();
    write_org(tmp.path());
    let w = Warden::start(tmp.path(), &[]);
    let triage = w.token("triage");
    let refund = w.token("refund");

    // A (triage), clean session: hands the ticket over with two keys too many.
    let a = python_client_http(
        &w.url(),
        &triage,
        &json!([{"call": "warden.handoff", "args": {
            "to": "refund",
            "task": "refund ticket T-1001",
            "context": {"ticket_id": "T-1001", "customer_id": "C-42",
                        "charge_id": "ch_123", "api_key": "sk_live_do_not_forward"}}}]),
    );
    assert!(
        a["tools"]
            .as_array()
            .unwrap()
            .contains(&json!("warden.handoff"))
    );
    assert!(
        !a["tools"]
            .as_array()
            .unwrap()
            .contains(&json!("warden.context"))
    );
    let h = py_json(&a["calls"][0]);
    assert_eq!(keys(&h["kept"]), ["customer_id", "ticket_id"]);
    assert_eq!(keys(&h["dropped"]), ["api_key", "charge_id"]);
    assert_eq!(h["chain"], json!(["triage", "refund"]));
    assert_eq!(h["root_human"], "alice@example.com");
    assert_eq!(h["tainted"], json!(false));
    let token = h["delegation_token"].as_str().unwrap().to_string();
    let task = h["task_id"].as_str().unwrap().to_string();

    // B (refund) redeems it and then works in the same session, acting for triage.
    let b = python_client_http(
        &w.url(),
        &refund,
        &json!([
            {"call": "warden.context", "args": {"task_id": task, "token": token}},
            {"call": "payments.issue_refund", "args": {"charge_id": "ch_123", "amount": 10}},
            {"call": "crm.read_ticket", "args": {"ticket_id": "T-1001"}},
            {"call": "notify.echo", "args": {"message": "your refund is on its way"}}
        ]),
    );
    assert!(
        b["tools"]
            .as_array()
            .unwrap()
            .contains(&json!("warden.context"))
    );
    let ctx = py_json(&b["calls"][0]);
    let entries = ctx["entries"].as_array().unwrap();
    let got: Vec<&str> = entries.iter().map(|e| e["key"].as_str().unwrap()).collect();
    assert_eq!(
        got,
        ["customer_id", "ticket_id"],
        "only the kept keys travel"
    );
    assert_eq!(entries[1]["value"], "T-1001");
    assert!(
        entries
            .iter()
            .all(|e| e["written_by"] == "triage" && e["tainted"] == false)
    );
    assert_eq!(ctx["task"], "refund ticket T-1001");
    assert!(!b.to_string().contains("sk_live_do_not_forward"));
    // refund may issue refunds, triage may not: acting for triage, refund may not.
    let denied = &b["calls"][1];
    assert_eq!(denied["isError"], json!(true), "{denied}");
    let text = denied["text"].as_str().unwrap();
    assert!(
        text.contains("delegation") && text.contains("payments.issue_refund"),
        "{text}"
    );
    // What both may do still works, and a clean session may notify.
    assert_eq!(b["calls"][2]["isError"], json!(false), "{}", b["calls"][2]);
    assert!(b["calls"][2]["text"].as_str().unwrap().contains("T-1001"));
    assert_eq!(b["calls"][3]["isError"], json!(false), "{}", b["calls"][3]);

    // The same agent on its own (a session without the delegation) may refund.
    let alone = python_client_http(
        &w.url(),
        &refund,
        &json!([{"call": "payments.issue_refund", "args": {"charge_id": "ch_123", "amount": 10}}]),
    );
    assert_eq!(alone["calls"][0]["isError"], json!(false), "{alone}");

    // A again, after reading untrusted content: the handed-off context is tainted, and so is
    // B's session once it reads it, so B's external send is refused.
    let a2 = python_client_http(
        &w.url(),
        &triage,
        &json!([
            {"call": "inbox.echo", "args": {"message": "customer mail: please refund"}},
            {"call": "warden.handoff", "args": {"to": "refund", "context": {"ticket_id": "T-1002"}}}
        ]),
    );
    assert_eq!(a2["calls"][0]["isError"], json!(false), "{a2}");
    let h2 = py_json(&a2["calls"][1]);
    assert_eq!(h2["tainted"], json!(true));
    let b2 = python_client_http(
        &w.url(),
        &refund,
        &json!([
            {"call": "notify.echo", "args": {"message": "before reading"}},
            {"call": "warden.context", "args": {"task_id": h2["task_id"], "token": h2["delegation_token"]}},
            {"call": "notify.echo", "args": {"message": "after reading"}}
        ]),
    );
    assert_eq!(b2["calls"][0]["isError"], json!(false), "{b2}");
    let ctx2 = py_json(&b2["calls"][1]);
    assert_eq!(ctx2["entries"][0]["tainted"], json!(true));
    assert_eq!(ctx2["entries"][0]["taint_sources"], json!(["inbox.echo"]));
    let after = &b2["calls"][2];
    assert_eq!(after["isError"], json!(true), "{after}");
    assert!(
        after["text"]
            .as_str()
            .unwrap()
            .contains("no-external-send-when-tainted"),
        "{after}"
    );

    // The audit trail: the handoff with kept and dropped keys, the root human and the chain
    // on B's decisions, and never the token.
    let audit = w.audit();
    assert!(!serde_json::to_string(&audit).unwrap().contains(&token));
    let handoffs = events(&w, "handoff");
    let first = handoffs
        .iter()
        .find(|e| e["detail"]["task"] == json!(task))
        .unwrap();
    assert_eq!(first["agent"], "triage");
    assert_eq!(first["root_human"], "alice@example.com");
    assert_eq!(first["outcome"], "handed_off");
    assert_eq!(first["detail"]["chain"], json!(["triage", "refund"]));
    assert_eq!(first["detail"]["dropped"], json!(["api_key", "charge_id"]));
    assert_eq!(first["detail"]["kept"], json!(["customer_id", "ticket_id"]));
    let decisions = events(&w, "decision");
    let refused = decisions
        .iter()
        .find(|e| e["tool"] == "payments.issue_refund" && e["decision"] == "deny")
        .expect("the narrowed call is audited");
    assert_eq!(refused["agent"], "refund");
    assert_eq!(refused["delegation"], json!(["triage"]));
    assert_eq!(refused["root_human"], "alice@example.com");
    assert_eq!(refused["policies"], json!(["delegation"]));
    let read = decisions
        .iter()
        .find(|e| e["tool"] == "crm.read_ticket" && e["agent"] == "refund")
        .unwrap();
    assert_eq!(read["decision"], "allow");
    assert_eq!(read["delegation"], json!(["triage"]));
    assert_eq!(read["root_human"], "alice@example.com");
    let own = decisions
        .iter()
        .find(|e| e["tool"] == "payments.issue_refund" && e["decision"] == "allow")
        .unwrap();
    // A direct call: no chain (the field is left out when empty).
    assert!(
        own["delegation"].as_array().is_none_or(|a| a.is_empty()),
        "{own}"
    );
    assert_eq!(own["root_human"], "dave@example.com");
    let reads = events(&w, "context_read");
    assert!(reads.iter().any(
        |e| e["tainted"] == json!(true) && e["detail"]["tainted_keys"] == json!(["ticket_id"])
    ));
    assert!(w.terminate().success());
}

#[test]
fn undeclared_too_deep_expired_and_tampered_handoffs_are_refused() {
    require_deps();
    let tmp = tempfile::tempdir().unwrap();
    write_org(tmp.path());
    let w = Warden::start(tmp.path(), &[]);
    let mut a = Mcp::connect(w.addr, &w.token("triage"));

    // Undeclared: triage → auditor.
    let r = a.call(
        "warden.handoff",
        json!({"to": "auditor", "context": {"ticket_id": "T"}}),
    );
    assert_eq!(r["result"]["isError"], json!(true), "{r}");
    let text = result_text(&r);
    assert!(
        text.contains("denied") && text.contains("auditor"),
        "{text}"
    );
    assert!(
        !r["result"]["_meta"]["warden.dev/decision"]["policies"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // Too deep: triage → refund allows depth 1; refund cannot pass the task on.
    let h = raw_json(&a.call(
        "warden.handoff",
        json!({"to": "refund", "context": {"ticket_id": "T-1001"}}),
    ));
    let mut b = Mcp::connect(w.addr, &w.token("refund"));
    // Tampered: one character flipped in the middle of the token.
    let token = h["delegation_token"].as_str().unwrap().to_string();
    let mut bytes = token.clone().into_bytes();
    let mid = bytes.len() / 2;
    bytes[mid] = if bytes[mid] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(bytes).unwrap();
    let r = b.call(
        "warden.context",
        json!({"task_id": h["task_id"], "token": tampered}),
    );
    assert_eq!(r["result"]["isError"], json!(true), "{r}");
    assert!(result_text(&r).contains("invalid"), "{r}");
    // The same tampered token on one call's _meta is refused too.
    let r = b.request(
        "tools/call",
        json!({"name": "crm.read_ticket", "arguments": {"ticket_id": "T-1001"},
               "_meta": {"warden.dev/delegation": tampered}}),
    );
    assert_eq!(r["result"]["isError"], json!(true), "{r}");
    assert!(result_text(&r).contains("delegation"), "{r}");
    // Another agent cannot redeem refund's task.
    let mut c = Mcp::connect(w.addr, &w.token("courier"));
    let r = c.call(
        "warden.context",
        json!({"task_id": h["task_id"], "token": token}),
    );
    assert_eq!(r["result"]["isError"], json!(true), "{r}");
    // refund redeems, then tries to go one hop further.
    raw_json(&b.call(
        "warden.context",
        json!({"task_id": h["task_id"], "token": token}),
    ));
    // From now on the session lists only what the delegation still allows.
    let listed = b.request("tools/list", json!({}));
    let names: Vec<&str> = listed["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(names.contains(&"crm.read_ticket"), "{names:?}");
    assert!(names.contains(&"warden.context"), "{names:?}");
    assert!(!names.contains(&"payments.issue_refund"), "{names:?}");
    let r = b.call(
        "warden.handoff",
        json!({"to": "auditor", "context": {"ticket_id": "T-1001"}}),
    );
    assert_eq!(r["result"]["isError"], json!(true), "{r}");
    assert!(result_text(&r).contains("deep"), "{r}");

    // Expired: triage → courier lives 2 s.
    let h = raw_json(&a.call(
        "warden.handoff",
        json!({"to": "courier", "context": {"ticket_id": "T-1002", "note": "x"}}),
    ));
    assert_eq!(h["ttl_seconds"], json!(2));
    let mut c = Mcp::connect(w.addr, &w.token("courier"));
    let ctx = raw_json(&c.call(
        "warden.context",
        json!({"task_id": h["task_id"], "token": h["delegation_token"]}),
    ));
    assert_eq!(ctx["entries"].as_array().unwrap().len(), 1);
    let r = c.call("crm.read_ticket", json!({"ticket_id": "T-1002"}));
    assert_eq!(r["result"]["isError"], json!(false), "{r}");
    // Wait for the condition: the clock past the token's expiry (whole seconds).
    let expires = h["expires_at_unix"].as_i64().unwrap();
    let start = Instant::now();
    while now_unix() <= expires {
        assert!(start.elapsed() < Duration::from_secs(10), "clock stuck");
        std::thread::sleep(Duration::from_millis(50));
    }
    let r = c.call("crm.read_ticket", json!({"ticket_id": "T-1002"}));
    assert_eq!(r["result"]["isError"], json!(true), "{r}");
    assert!(result_text(&r).contains("expired"), "{r}");
    // Its context is gone, and the purge is in the audit trail.
    let r = c.call(
        "warden.context",
        json!({"task_id": h["task_id"], "token": h["delegation_token"]}),
    );
    assert_eq!(r["result"]["isError"], json!(true), "{r}");
    assert!(result_text(&r).contains("no live task"), "{r}");
    let purges = events(&w, "context_purge");
    assert!(
        purges.iter().any(|e| e["detail"]["tasks"]
            .as_array()
            .unwrap()
            .contains(&h["task_id"])
            && e["detail"]["entries"]
                .as_array()
                .unwrap()
                .contains(&json!(format!(
                    "{}/ticket_id",
                    h["task_id"].as_str().unwrap()
                )))),
        "{purges:?}"
    );
    let denied: Vec<Value> = events(&w, "handoff")
        .into_iter()
        .filter(|e| e["outcome"] == "denied")
        .collect();
    assert_eq!(denied.len(), 2, "undeclared and too deep: {denied:?}");
    let deep = denied.iter().find(|e| e["agent"] == "refund").unwrap();
    assert_eq!(deep["delegation"], json!(["triage"]));
    assert_eq!(deep["root_human"], "alice@example.com");
    assert!(w.terminate().success());
}

#[test]
fn orchestrators_hand_off_over_http_and_pass_the_token_per_call() {
    require_deps();
    let tmp = tempfile::tempdir().unwrap();
    write_org(tmp.path());
    let w = Warden::start(tmp.path(), &[]);
    let triage = format!("Bearer {}", w.token("triage"));
    let refund_token = w.token("refund");
    let refund = format!("Bearer {refund_token}");
    let post = |auth: &str, path: &str, body: Value| {
        http(
            w.addr,
            "POST",
            path,
            &[
                ("Authorization", auth),
                ("Content-Type", "application/json"),
            ],
            body.to_string().as_bytes(),
        )
    };
    let r = post(
        &triage,
        "/api/handoffs",
        json!({"to": "refund", "context": {"ticket_id": "T-1001", "transcript": "…"}}),
    );
    assert_eq!(r.status, 200, "{r:?}");
    let h = r.json();
    assert_eq!(keys(&h["dropped"]), ["transcript"]);
    let r = post(&triage, "/api/handoffs", json!({"to": "auditor"}));
    assert_eq!(r.status, 403, "{r:?}");
    let r = post(&triage, "/api/handoffs", json!({"context": {}}));
    assert_eq!(r.status, 400, "{r:?}");
    let r = http(w.addr, "POST", "/api/handoffs", &[], b"{}");
    assert_eq!(r.status, 401);
    let r = post(
        &refund,
        "/api/handoffs/context",
        json!({"task_id": h["task_id"], "token": h["delegation_token"]}),
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["entries"][0]["key"], "ticket_id");
    // No session is bound over the API: the orchestrator passes the token per call.
    let mut b = Mcp::connect(w.addr, &refund_token);
    let meta = json!({"warden.dev/delegation": h["delegation_token"]});
    let r = b.request(
        "tools/call",
        json!({"name": "payments.issue_refund", "arguments": {"charge_id": "ch_123", "amount": 1}, "_meta": meta}),
    );
    assert_eq!(r["result"]["isError"], json!(true), "{r}");
    let r = b.request(
        "tools/call",
        json!({"name": "crm.read_ticket", "arguments": {"ticket_id": "T-1001"}, "_meta": meta}),
    );
    assert_eq!(r["result"]["isError"], json!(false), "{r}");
    let d = events(&w, "decision");
    let last = d.iter().rfind(|e| e["tool"] == "crm.read_ticket").unwrap();
    assert_eq!(last["delegation"], json!(["triage"]));
    assert_eq!(last["root_human"], "alice@example.com");
    assert!(w.terminate().success());
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let name = e.file_name();
        if name == ".warden" {
            continue;
        }
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(&name));
        } else {
            std::fs::copy(e.path(), to.join(&name)).unwrap();
        }
    }
}

/// The example organisation: support-triage → refund-agent drops the keys triage should
/// keep to itself, and the refund agent acting for triage cannot issue refunds.
#[test]
fn acme_triage_to_refund_drops_keys_and_narrows_authority() {
    require_deps();
    let tmp = tempfile::tempdir().unwrap();
    let org = tmp.path().join("acme");
    copy_dir(&repo_root().join("examples/acme"), &org);
    // The payments server refuses to start without its key (a local, gitignored file).
    std::fs::create_dir_all(org.join("secrets")).unwrap();
    std::fs::write(org.join("secrets/payments_api_key"), "test-only-key\n").unwrap();
    let w = Warden::start(&org, &[]);
    let mut a = Mcp::connect(w.addr, &w.token("support-triage"));
    let h = raw_json(&a.call(
        "warden.handoff",
        json!({"to": "refund-agent", "task": "refund the duplicate charge",
               "context": {"ticket_id": "T-1001", "customer_id": "C-42", "charge_id": "ch_123",
                           "refund_amount": 1250, "email_thread": "…", "customer_phone": "+44…"}}),
    ));
    assert_eq!(
        keys(&h["kept"]),
        ["charge_id", "customer_id", "refund_amount", "ticket_id"]
    );
    assert_eq!(keys(&h["dropped"]), ["customer_phone", "email_thread"]);
    assert_eq!(h["root_human"], "alice@acme.example");
    let mut b = Mcp::connect(w.addr, &w.token("refund-agent"));
    raw_json(&b.call(
        "warden.context",
        json!({"task_id": h["task_id"], "token": h["delegation_token"]}),
    ));
    let r = b.call(
        "payments.issue_refund",
        json!({"charge_id": "ch_123", "amount": 1250}),
    );
    assert_eq!(r["result"]["isError"], json!(true), "{r}");
    let text = result_text(&r);
    assert!(
        text.contains("delegation") && text.contains("payments.issue_refund"),
        "{text}"
    );
    assert!(w.terminate().success());
}

#[test]
fn a_passed_on_handoff_never_outlives_the_token_it_comes_from() {
    require_deps();
    let tmp = tempfile::tempdir().unwrap();
    write_org(tmp.path());
    let w = Warden::start(tmp.path(), &[]);
    let mut a = Mcp::connect(w.addr, &w.token("triage"));
    // triage → clerk, shortened to 60 s; clerk → auditor is declared for an hour.
    let h = raw_json(&a.call(
        "warden.handoff",
        json!({"to": "clerk", "context": {"ticket_id": "T-7"}, "ttl_seconds": 60}),
    ));
    let parent_expiry = h["expires_at_unix"].as_i64().unwrap();
    let mut c = Mcp::connect(w.addr, &w.token("clerk"));
    let r = c.call(
        "warden.context",
        json!({"task_id": h["task_id"], "token": h["delegation_token"]}),
    );
    assert_ne!(r["result"]["isError"], json!(true), "{r}");
    let r = c.call(
        "warden.handoff",
        json!({"to": "auditor", "context": {"ticket_id": "T-7"}}),
    );
    assert_ne!(r["result"]["isError"], json!(true), "{r}");
    let child = raw_json(&r);
    let child_expiry = child["expires_at_unix"].as_i64().unwrap();
    assert!(
        child_expiry <= parent_expiry,
        "child expires at {child_expiry}, after its parent token ({parent_expiry}): {child}"
    );
    assert!(child["ttl_seconds"].as_u64().unwrap() <= 60, "{child}");
}

#[test]
fn a_revoked_delegation_stops_its_holder_and_everyone_it_was_handed_on_to() {
    require_deps();
    let tmp = tempfile::tempdir().unwrap();
    write_org(tmp.path());
    let w = Warden::start(tmp.path(), &[]);
    let mut a = Mcp::connect(w.addr, &w.token("triage"));
    // triage → clerk → auditor, each receiver redeeming its task and reading a ticket.
    let first = raw_json(&a.call(
        "warden.handoff",
        json!({"to": "clerk", "context": {"ticket_id": "T-9"}}),
    ));
    let mut c = Mcp::connect(w.addr, &w.token("clerk"));
    let r = c.call(
        "warden.context",
        json!({"task_id": first["task_id"], "token": first["delegation_token"]}),
    );
    assert_ne!(r["result"]["isError"], json!(true), "{r}");
    let second = raw_json(&c.call(
        "warden.handoff",
        json!({"to": "auditor", "context": {"ticket_id": "T-9"}}),
    ));
    let mut d = Mcp::connect(w.addr, &w.token("auditor"));
    let r = d.call(
        "warden.context",
        json!({"task_id": second["task_id"], "token": second["delegation_token"]}),
    );
    assert_ne!(r["result"]["isError"], json!(true), "{r}");
    for m in [&mut c, &mut d] {
        let r = m.call("crm.read_ticket", json!({"ticket_id": "T-1001"}));
        assert_ne!(r["result"]["isError"], json!(true), "{r}");
    }

    // Revoke the first hop: both delegations end.
    let (dir, db) = (w.dir.display().to_string(), w.db.display().to_string());
    let task = first["task_id"].as_str().unwrap();
    let out = warden(&[
        "handoff",
        "revoke",
        task,
        "--by",
        "alice@example.com",
        &dir,
        "--db",
        &db,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let start = Instant::now();
    loop {
        let r = c.call("crm.read_ticket", json!({"ticket_id": "T-1001"}));
        if r["result"]["isError"] == json!(true) {
            assert!(result_text(&r).contains("revoked"), "{r}");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "clerk's delegation still works after revocation: {r}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let r = d.call("crm.read_ticket", json!({"ticket_id": "T-1001"}));
    assert_eq!(r["result"]["isError"], json!(true), "{r}");
    assert!(result_text(&r).contains("revoked"), "{r}");
    // Nor can the revoked holder hand anything on.
    let r = c.call(
        "warden.handoff",
        json!({"to": "auditor", "context": {"ticket_id": "T-9"}}),
    );
    assert_eq!(r["result"]["isError"], json!(true), "{r}");
    // Revoking again is harmless; an unknown task is an error.
    let out = warden(&["handoff", "revoke", task, &dir, "--db", &db]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("already"));
    let out = warden(&["handoff", "revoke", "task_nosuch", &dir, "--db", &db]);
    assert_eq!(out.status.code(), Some(2));
    let (wdir, wdb) = (w.dir.clone(), w.db.clone());
    assert!(w.terminate().success());
    let audit = audit_export(&wdir, &wdb);
    assert!(
        audit.iter().any(|r| r["event"]["kind"] == "handoff"
            && r["event"]["outcome"] == "revoked"
            && r["event"]["detail"]["task"] == task
            && r["event"]["detail"]["by"] == "alice@example.com"),
        "no revocation record"
    );
}

#[test]
fn a_handoff_that_needs_approval_is_held_until_a_human_approves_it() {
    require_deps();
    let tmp = tempfile::tempdir().unwrap();
    write_org(tmp.path());
    std::fs::write(
        tmp.path().join("policies/handoff-approval.cedar"),
        r#"@id("refund-handoffs-need-dave")
@approval("human:dave@example.com")
permit (principal == Agent::"triage", action == Action::"handoff", resource == Agent::"refund");
"#,
    )
    .unwrap();
    let w = Warden::start(tmp.path(), &[]);
    let token = w.token("triage");
    let addr = w.addr;
    // The handoff waits for the approval in its own thread.
    let held = std::thread::spawn(move || {
        let mut a = Mcp::connect(addr, &token);
        a.call(
            "warden.handoff",
            json!({"to": "refund", "context": {"ticket_id": "T-1001"}}),
        )
    });
    let (dir, db) = (w.dir.display().to_string(), w.db.display().to_string());
    let start = Instant::now();
    let pending = loop {
        let o = warden(&["approvals", "list", "--format", "json", &dir, "--db", &db]);
        if o.status.success() {
            let v: Value = serde_json::from_slice(&o.stdout).unwrap();
            if let Some(r) = v["approvals"]
                .as_array()
                .and_then(|a| a.iter().find(|r| r["tool"] == "warden.handoff"))
            {
                break r.clone();
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no pending approval for the handoff"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(pending["agent"], "triage", "{pending}");
    assert!(!held.is_finished(), "the handoff must wait for the human");
    let id = pending["id"].as_str().unwrap();
    let o = warden(&[
        "approvals",
        "approve",
        id,
        "--as",
        "dave@example.com",
        "--reason",
        "ok",
        &dir,
        "--db",
        &db,
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r = held.join().unwrap();
    assert_ne!(r["result"]["isError"], json!(true), "{r}");
    let h = raw_json(&r);
    assert!(h["task_id"].as_str().unwrap().starts_with("task_"), "{h}");
    let (wdir, wdb) = (w.dir.clone(), w.db.clone());
    assert!(w.terminate().success());
    let audit = audit_export(&wdir, &wdb);
    let handed = audit
        .iter()
        .filter(|r| r["event"]["kind"] == "handoff" && r["event"]["outcome"] == "handed_off")
        .count();
    assert_eq!(handed, 1, "one approved handoff");
}
