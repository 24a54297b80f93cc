//! `warden up` end to end over Streamable HTTP, with real MCP peers: npm
//! server-everything and server-filesystem (stdio), the PyPI `mcp` SDK as a stdio server
//! (testkit) and as a Streamable HTTP server (warehouse), and as the client; npm
//! inspector-cli as a second client.

mod gateway_support;

use std::io::{Read, Write};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use gateway_support::*;
use serde_json::{Value, json};

fn kinds(audit: &[Value], kind: &str) -> Vec<Value> {
    audit
        .iter()
        .filter(|r| r["event"]["kind"] == kind)
        .map(|r| r["event"].clone())
        .collect()
}

fn verify(w: &Warden) -> std::process::Output {
    warden(&[
        "audit",
        "verify",
        w.dir.to_str().unwrap(),
        "--db",
        w.db.to_str().unwrap(),
        "--format",
        "json",
    ])
}

#[test]
fn python_sdk_client_lists_calls_is_denied_and_gets_progress() {
    require_deps();
    let tmp = tempfile::tempdir().unwrap();
    let (_wh, port) = start_http_upstream("warehouse");
    write_inventory(tmp.path(), Some(port), "");
    let w = Warden::start(tmp.path(), &[]);
    let token = w.token("alpha");
    let hello = tmp.path().join("data/hello.txt").display().to_string();
    let steps = json!([
        {"call": "everything.echo", "args": {"message": "hi through warden"}},
        {"call": "files.read_text_file", "args": {"path": hello}},
        {"call": "files.write_file", "args": {"path": hello, "content": "overwritten"}},
        {"call": "testkit.slow", "args": {"steps": 3}, "progress": true},
        {"call": "warehouse.run_query", "args": {"sql": "select 1"}, "progress": true},
        {"call": "testkit.echo", "args": {"message": "password=hunter2hunter2 please"}},
        {"call": "testkit.env", "args": {"name": "TESTKIT_SECRET"}},
        {"call": "testkit.env", "args": {"name": "WARDEN_TEST_UPSTREAM_SECRET"}},
    ]);
    let out = python_client_http(&w.url(), &token, &steps);

    // tools/list: exactly the entitled tools, namespaced <connector>.<tool>.
    let tools: Vec<&str> = out["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for t in [
        "everything.echo",
        "everything.get-sum",
        "files.read_text_file",
        "testkit.slow",
        "warehouse.run_query",
    ] {
        assert!(tools.contains(&t), "{t} missing from {tools:?}");
    }
    for t in ["everything.get-env", "files.write_file"] {
        assert!(
            !tools.contains(&t),
            "{t} must be hidden from alpha: {tools:?}"
        );
    }
    assert!(tools.iter().all(|t| t.contains('.')), "{tools:?}");
    // Upstream schema fields survive the relay.
    assert_eq!(
        out["tool_defs"]["files.read_text_file"]["inputSchema"]["type"],
        "object"
    );

    let calls = out["calls"].as_array().unwrap();
    let call = |i: usize| &calls[i];
    assert_eq!(call(0)["isError"], false, "{}", call(0));
    assert!(
        call(0)["text"]
            .as_str()
            .unwrap()
            .contains("hi through warden")
    );
    assert_eq!(call(1)["isError"], false, "{}", call(1));
    assert!(
        call(1)["text"]
            .as_str()
            .unwrap()
            .contains("hello from the filesystem server")
    );
    // Denied: an error result naming the policy and the reason.
    assert_eq!(call(2)["isError"], true, "{}", call(2));
    let denied = call(2)["text"].as_str().unwrap();
    assert!(
        denied.contains("Warden denied files.write_file") && denied.contains("policy"),
        "{denied}"
    );
    assert_eq!(
        call(2)["meta"]["warden.dev/decision"]["decision"],
        "deny",
        "{}",
        call(2)
    );
    assert_eq!(
        std::fs::read_to_string(&hello).unwrap(),
        "hello from the filesystem server\n",
        "denied call must not reach the upstream"
    );
    // Progress relayed from a stdio upstream and from an HTTP (SSE) upstream.
    assert_eq!(call(3)["isError"], false, "{}", call(3));
    assert_eq!(
        call(3)["progress"].as_array().unwrap().len(),
        3,
        "{}",
        call(3)
    );
    assert_eq!(call(4)["isError"], false, "{}", call(4));
    assert!(call(4)["text"].as_str().unwrap().contains("2026-Q3"));
    assert_eq!(
        call(4)["progress"].as_array().unwrap().len(),
        3,
        "{}",
        call(4)
    );
    // Upstream credentials come from the connector's configuration; the gateway's own
    // environment is not passed through.
    assert_eq!(call(6)["text"], "s3cr3t-upstream-credential");
    assert_eq!(call(7)["text"], "<unset>");

    let audit = w.audit();
    let decisions = kinds(&audit, "decision");
    assert_eq!(
        decisions.len(),
        steps.as_array().unwrap().len(),
        "one decision per call"
    );
    let deny = decisions
        .iter()
        .find(|d| d["tool"] == "files.write_file")
        .unwrap();
    assert_eq!(deny["decision"], "deny");
    assert!(!deny["policies"].as_array().unwrap().is_empty());
    assert_eq!(deny["agent"], "alpha");
    assert_eq!(deny["root_human"], "olivia@example.com");
    assert!(deny["args_digest"].as_str().unwrap().len() == 64);
    let outcomes = kinds(&audit, "outcome");
    assert_eq!(
        outcomes.len(),
        steps.as_array().unwrap().len() - 1,
        "every forwarded call has an outcome"
    );
    assert!(outcomes.iter().all(|o| o["latency_ms"].as_f64().is_some()));
    // The secret in the arguments is redacted in the trail, the digest still binds the call.
    let trail = serde_json::to_string(&audit).unwrap();
    assert!(
        !trail.contains("hunter2hunter2"),
        "secret argument leaked into the audit trail"
    );
    assert!(
        !trail.contains(&token[4..]),
        "agent token leaked into the audit trail"
    );
    let v = verify(&w);
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stdout));
}

#[test]
fn inspector_cli_lists_and_calls_through_the_gateway() {
    require_deps();
    let tmp = tempfile::tempdir().unwrap();
    write_inventory(tmp.path(), None, "");
    let w = Warden::start(tmp.path(), &[]);
    let token = w.token("alpha");
    let cli = node_module("@modelcontextprotocol/inspector-cli/build/index.js");
    let auth = format!("Authorization: Bearer {token}");
    let run = |extra: &[&str]| {
        let url = w.url();
        let mut full: Vec<String> = vec![
            cli.clone(),
            url,
            "--transport".into(),
            "http".into(),
            "--header".into(),
            auth.clone(),
        ];
        full.extend(extra.iter().map(|s| s.to_string()));
        // inspector-cli 1.0.3 looks for its package.json relative to the working directory.
        let out = Command::new("node")
            .args(&full)
            .current_dir(node_module("@modelcontextprotocol/inspector-cli/build"))
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (ok, stdout, stderr) = run(&["--method", "tools/list"]);
    assert!(ok, "inspector-cli tools/list failed: {stdout}\n{stderr}");
    let listed: Value = serde_json::from_str(&stdout).unwrap();
    let names: Vec<&str> = listed["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(
        names.contains(&"everything.echo") && !names.contains(&"files.write_file"),
        "{names:?}"
    );
    let (ok, stdout, stderr) = run(&[
        "--method",
        "tools/call",
        "--tool-name",
        "everything.get-sum",
        "--tool-arg",
        "a=19",
        "b=23",
    ]);
    assert!(ok, "inspector-cli tools/call failed: {stdout}\n{stderr}");
    assert!(stdout.contains("42"), "{stdout}");
    let (_, stdout, _) = run(&[
        "--method",
        "tools/call",
        "--tool-name",
        "files.write_file",
        "--tool-arg",
        "path=/tmp/x",
        "content=y",
    ]);
    assert!(
        stdout.contains("Warden denied files.write_file"),
        "{stdout}"
    );
}

#[test]
fn bad_input_and_bad_tokens_get_clear_errors_are_audited_and_the_gateway_keeps_serving() {
    require_deps();
    let tmp = tempfile::tempdir().unwrap();
    write_inventory(tmp.path(), None, "");
    let w = Warden::start(tmp.path(), &["--max-body", "65536"]);
    let alpha = w.token("alpha");
    let beta = w.token("beta");
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}).to_string();
    let post = |auth: Option<&str>, body: &[u8]| {
        let bearer = auth.map(|t| format!("Bearer {t}"));
        let mut h = vec![
            ("Content-Type", "application/json"),
            ("Accept", "application/json, text/event-stream"),
        ];
        if let Some(b) = &bearer {
            h.push(("Authorization", b.as_str()));
        }
        http(w.addr, "POST", "/mcp", &h, body)
    };

    // No token: 401 pointing at the protected resource metadata.
    let r = post(None, init.as_bytes());
    assert_eq!(r.status, 401);
    let www = r.header("www-authenticate").unwrap();
    assert!(
        www.starts_with("Bearer resource_metadata=\"http://")
            && www.contains("/.well-known/oauth-protected-resource"),
        "{www}"
    );
    let meta = http(
        w.addr,
        "GET",
        "/.well-known/oauth-protected-resource/mcp",
        &[],
        b"",
    )
    .json();
    assert_eq!(meta["resource"], format!("http://{}/mcp", w.addr));
    // Unknown, expired and revoked tokens.
    let r = post(Some("wdn_0000"), init.as_bytes());
    assert_eq!(r.status, 401);
    assert!(
        r.header("www-authenticate")
            .unwrap()
            .contains("error=\"invalid_token\"")
    );
    let expired = issue_token(&w.dir, &w.db, "alpha", "1ms");
    let r = post(Some(&expired), init.as_bytes());
    assert_eq!(r.status, 401);
    assert!(r.body.contains("expired"), "{}", r.body);
    let revoked = issue_token(&w.dir, &w.db, "alpha", "1h");
    let list = warden(&[
        "token",
        "list",
        w.dir.to_str().unwrap(),
        "--db",
        w.db.to_str().unwrap(),
        "--format",
        "json",
    ]);
    let list: Value = serde_json::from_slice(&list.stdout).unwrap();
    let id = list["tokens"][0]["id"].as_str().unwrap().to_string();
    assert!(
        !list.to_string().contains(&revoked[4..]),
        "token list must not show secrets"
    );
    assert!(
        warden(&[
            "token",
            "revoke",
            &id,
            w.dir.to_str().unwrap(),
            "--db",
            w.db.to_str().unwrap()
        ])
        .status
        .success()
    );
    let r = post(Some(&revoked), init.as_bytes());
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.body.contains("revoked"), "{}", r.body);

    // Malformed JSON, oversized body, batches.
    let r = post(
        Some(&alpha),
        b"{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": ",
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["code"], -32700);
    let big = format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":{{\"pad\":\"{}\"}}}}",
        "x".repeat(100_000)
    );
    let r = post(Some(&alpha), big.as_bytes());
    assert_eq!(r.status, 413);
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("65536")
    );
    let r = post(
        Some(&alpha),
        b"[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}]",
    );
    assert_eq!(r.status, 400);

    // Sessions: required, and bound to the agent that opened them.
    let mut a = Mcp::connect(w.addr, &alpha);
    let r = a.post(
        &json!({"jsonrpc": "2.0", "id": 5, "method": "tools/list"}),
        false,
    );
    assert_eq!(r.status, 400, "{r:?}");
    let b = Mcp {
        session: a.session.clone(),
        ..Mcp::connect(w.addr, &beta)
    };
    let r = b.post(
        &json!({"jsonrpc": "2.0", "id": 5, "method": "tools/list"}),
        true,
    );
    assert_eq!(r.status, 404, "beta must not use alpha's session");

    // Unknown method; a tool of a connector the agent is not entitled to; unknown tool.
    let v = a.request("nosuch/method", json!({}));
    assert_eq!(v["error"]["code"], -32601, "{v}");
    // A subscription to a resource no usable connector lists is refused like a read.
    let v = a.request("resources/subscribe", json!({"uri": "file:///etc/passwd"}));
    assert_eq!(v["error"]["code"], -32002, "{v}");
    let mut b = Mcp::connect(w.addr, &beta);
    let v = b.call("files.read_text_file", json!({"path": "/etc/hostname"}));
    assert_eq!(v["result"]["isError"], true);
    assert!(
        result_text(&v).contains("Warden denied files.read_text_file"),
        "{v}"
    );
    let v = a.call("nosuch.tool", json!({}));
    assert_eq!(v["result"]["isError"], true);
    assert!(result_text(&v).contains("unknown tool"), "{v}");
    // beta's rate limit (3/minute; denied calls do not count): three calls, then refused.
    for _ in 0..3 {
        let v = b.call("everything.echo", json!({"message": "x"}));
        assert_ne!(v["result"]["isError"], true, "{v}");
    }
    let v = b.call("everything.echo", json!({"message": "x"}));
    assert_eq!(v["result"]["isError"], true);
    assert!(result_text(&v).contains("rate limit exceeded"), "{v}");

    // Still serving.
    let v = a.call("everything.echo", json!({"message": "still here"}));
    assert!(result_text(&v).contains("still here"), "{v}");

    let audit = w.audit();
    let auth = kinds(&audit, "auth_failure");
    assert!(auth.len() >= 4, "{auth:?}");
    let reasons = serde_json::to_string(&auth).unwrap();
    for r in ["no bearer token", "unknown token", "expired", "revoked"] {
        assert!(reasons.contains(r), "{r} not audited: {reasons}");
    }
    let rejected = serde_json::to_string(&kinds(&audit, "rejected")).unwrap();
    for r in [
        "parse error",
        "exceeds 65536 bytes",
        "batch",
        "method not found",
    ] {
        assert!(rejected.contains(r), "{r} not audited: {rejected}");
    }
    let denied = kinds(&audit, "decision")
        .into_iter()
        .filter(|d| d["decision"] == "deny")
        .count();
    assert!(denied >= 2);
    assert_eq!(kinds(&audit, "rate_limited").len(), 1);
    assert!(verify(&w).status.success());
}

#[test]
fn upstream_crash_mid_call_degrades_only_that_connector_and_it_restarts() {
    require_deps();
    let tmp = tempfile::tempdir().unwrap();
    write_inventory(tmp.path(), None, "");
    let w = Warden::start(tmp.path(), &[]);
    let token = w.token("alpha");
    let mut a = Mcp::connect(w.addr, &token);
    let v = a.call("testkit.echo", json!({"message": "before"}));
    assert_eq!(result_text(&v), "before");
    let v = a.call("testkit.crash", json!({}));
    assert_eq!(v["result"]["isError"], true, "{v}");
    let text = result_text(&v);
    assert!(
        text.contains("testkit") && text.contains("exited"),
        "{text}"
    );
    // Other connectors are unaffected.
    let v = a.call("everything.echo", json!({"message": "other"}));
    assert!(result_text(&v).contains("other"), "{v}");
    // The crashed connector comes back (after its backoff).
    let start = Instant::now();
    loop {
        let v = a.call("testkit.echo", json!({"message": "after"}));
        if v["result"]["isError"] != true {
            assert_eq!(result_text(&v), "after");
            break;
        }
        assert!(
            result_text(&v).contains("restarting") || result_text(&v).contains("unavailable"),
            "{v}"
        );
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "testkit never restarted: {v}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let audit = w.audit();
    let crash = kinds(&audit, "outcome")
        .into_iter()
        .find(|o| o["tool"] == "testkit.crash")
        .unwrap();
    assert_eq!(crash["outcome"], "upstream_error");
    assert!(
        crash["detail"]["error"]
            .as_str()
            .unwrap()
            .contains("exited"),
        "{crash}"
    );
    // The non-JSON banner the testkit prints on stdout was skipped, not fatal.
    let log = std::fs::read_to_string(&w.stderr_log).unwrap();
    assert!(log.contains("skipped a non-JSON line"), "{log}");
    assert!(verify(&w).status.success());
}

#[test]
fn progress_tokens_are_restored_and_streamed_over_sse() {
    require_deps();
    let tmp = tempfile::tempdir().unwrap();
    write_inventory(tmp.path(), None, "");
    let w = Warden::start(tmp.path(), &[]);
    let token = w.token("alpha");
    let a = Mcp::connect(w.addr, &token);
    let r = a.post(
        &json!({"jsonrpc": "2.0", "id": "call-7", "method": "tools/call", "params": {
            "name": "everything.trigger-long-running-operation",
            "arguments": {"duration": 1, "steps": 4},
            "_meta": {"progressToken": "client-token-1"}}}),
        true,
    );
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("text/event-stream")
    );
    let msgs = r.sse_messages();
    let progress: Vec<&Value> = msgs
        .iter()
        .filter(|m| m["method"] == "notifications/progress")
        .collect();
    assert_eq!(progress.len(), 4, "{msgs:?}");
    assert!(
        progress
            .iter()
            .all(|p| p["params"]["progressToken"] == "client-token-1"),
        "{progress:?}"
    );
    let last = msgs.last().unwrap();
    assert_eq!(last["id"], "call-7");
    assert!(last["result"]["content"].is_array(), "{last}");
}

#[test]
fn tampering_with_the_sqlite_file_is_caught_by_audit_verify() {
    require_deps();
    let tmp = tempfile::tempdir().unwrap();
    write_inventory(tmp.path(), None, "");
    let w = Warden::start(tmp.path(), &[]);
    let token = w.token("alpha");
    let mut a = Mcp::connect(w.addr, &token);
    for i in 0..5 {
        a.call("everything.echo", json!({"message": format!("m{i}")}));
    }
    let (dir, db) = (w.dir.clone(), w.db.clone());
    assert!(w.terminate().success());
    let ok = warden(&[
        "audit",
        "verify",
        dir.to_str().unwrap(),
        "--db",
        db.to_str().unwrap(),
    ]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    // Rewrite one decision as an attacker with file access would: allow instead of deny.
    let sql = |q: &str| {
        let out = Command::new(python())
            .args(["-c", "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); r=c.execute(sys.argv[2]).fetchall(); c.commit(); print(r)", db.to_str().unwrap(), q])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let seq: i64 = sql(
        "SELECT seq FROM audit WHERE record LIKE '%\"m2\"%' AND record LIKE '%decision%' LIMIT 1",
    )
    .trim_matches(|c| "[](),\n ".contains(c))
    .parse()
    .unwrap();
    sql(&format!(
        "UPDATE audit SET record = replace(record, 'm2', 'm9') WHERE seq = {seq}"
    ));
    let out = warden(&[
        "audit",
        "verify",
        dir.to_str().unwrap(),
        "--db",
        db.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["problem"]["kind"], "modified");
    assert_eq!(report["problem"]["seq"], seq);
    // Deleting a record instead.
    sql(&format!(
        "UPDATE audit SET record = replace(record, 'm9', 'm2') WHERE seq = {seq}"
    ));
    sql(&format!("DELETE FROM audit WHERE seq = {}", seq + 1));
    let out = warden(&[
        "audit",
        "verify",
        dir.to_str().unwrap(),
        "--db",
        db.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("deleted") && text.contains(&format!("record {}", seq + 1)),
        "{text}"
    );
}

#[test]
fn kill_9_under_load_leaves_a_verifiable_chain_with_every_answered_call_decided() {
    require_deps();
    let tmp = tempfile::tempdir().unwrap();
    write_inventory(tmp.path(), None, "");
    let w = Warden::start(tmp.path(), &[]);
    let token = w.token("alpha");
    // Warm the upstream so the load is calls, not a start-up.
    let mut a = Mcp::connect(w.addr, &token);
    a.call("testkit.echo", json!({"message": "warm"}));
    let answered = Arc::new(AtomicUsize::new(0));
    let mut threads = Vec::new();
    for t in 0..4 {
        let answered = answered.clone();
        let (addr, token) = (w.addr, token.clone());
        threads.push(std::thread::spawn(move || {
            let m = Mcp::connect(addr, &token);
            for i in 0..500 {
                let body = json!({"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": {"name": "testkit.echo", "arguments": {"message": format!("{t}-{i}")}}});
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| m.post(&body, true)));
                match r {
                    Ok(r) if r.status == 200 && r.body.contains(&format!("{t}-{i}")) => {
                        answered.fetch_add(1, Ordering::SeqCst);
                    }
                    _ => return,
                }
            }
        }));
    }
    let start = Instant::now();
    while answered.load(Ordering::SeqCst) < 100 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "load never reached 100 calls"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let (dir, db) = (w.dir.clone(), w.db.clone());
    w.kill9();
    for t in threads {
        let _ = t.join();
    }
    let answered = answered.load(Ordering::SeqCst);
    let out = warden(&[
        "audit",
        "verify",
        dir.to_str().unwrap(),
        "--db",
        db.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "chain broken after kill -9: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let audit = audit_export(&dir, &db);
    let decided = kinds(&audit, "decision")
        .into_iter()
        .filter(|d| d["tool"] == "testkit.echo" && d["decision"] == "allow")
        .count();
    assert!(
        decided > answered,
        "{answered} calls answered but only {decided} decisions durable"
    );
    // The outcome is journaled before the answer leaves, so every answered call has one.
    let outcomes = kinds(&audit, "outcome")
        .into_iter()
        .filter(|o| o["tool"] == "testkit.echo" && o["outcome"] == "ok")
        .count();
    assert!(
        outcomes >= answered,
        "{answered} calls answered but only {outcomes} outcomes durable"
    );
    // What the killed process had not copied yet was recovered by `audit verify`, and its
    // journal deleted.
    let mut journal_dir = db.clone().into_os_string();
    journal_dir.push(".audit-journal");
    let left: Vec<_> = std::fs::read_dir(&journal_dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "journals left behind: {left:?}");
}

#[test]
fn sigterm_stops_gracefully_and_records_the_stop() {
    require_deps();
    let tmp = tempfile::tempdir().unwrap();
    write_inventory(tmp.path(), None, "");
    let w = Warden::start(tmp.path(), &[]);
    let token = w.token("alpha");
    let mut a = Mcp::connect(w.addr, &token);
    a.call("testkit.echo", json!({"message": "x"}));
    // An agent holding its `GET /mcp` stream open does not keep the gateway from stopping:
    // the stream ends when shutdown starts.
    let mut stream = std::net::TcpStream::connect(w.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(
        stream,
        "GET /mcp HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\nMcp-Session-Id: {}\r\nAccept: text/event-stream\r\n\r\n",
        w.addr, a.session
    )
    .unwrap();
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 200", "{}", String::from_utf8_lossy(&head));
    let (dir, db) = (w.dir.clone(), w.db.clone());
    assert!(w.terminate().success());
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).unwrap();
    assert!(
        String::from_utf8_lossy(&rest).contains("text/event-stream"),
        "the stream was open until shutdown ended it"
    );
    let audit = audit_export(&dir, &db);
    let last = &audit.last().unwrap()["event"];
    assert_eq!(
        (last["kind"].as_str(), last["outcome"].as_str()),
        (Some("gateway"), Some("stopped"))
    );
    assert!(
        kinds(&audit, "outcome")
            .iter()
            .any(|o| o["tool"] == "testkit.echo")
    );
    let tail = warden(&[
        "audit",
        "tail",
        dir.to_str().unwrap(),
        "--db",
        db.to_str().unwrap(),
        "-n",
        "3",
        "--format",
        "json",
    ]);
    let tail: Value = serde_json::from_slice(&tail.stdout).unwrap();
    assert_eq!(tail["records"].as_array().unwrap().len(), 3);
}
