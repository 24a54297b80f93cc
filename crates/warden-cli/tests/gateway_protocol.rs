//! Protocol completeness of `warden up` with real peers: resources, resource templates,
//! prompts and completion of the npm server-everything relayed through the virtual server
//! (seen by the PyPI `mcp` SDK client), a resource of a connector the agent may not use
//! refused, resource contents inspected like tool results, sampling and elicitation
//! requests of an upstream relayed to the calling agent, the `MCP-Protocol-Version`
//! header checked, and `server/discover` / 2026-07-28 stateless requests answered as
//! docs/gateway.md says.

mod gateway_support;

use std::process::Command;

use gateway_support::*;
use serde_json::{Value, json};

/// alpha may use server-everything; bob may use the vault (an in-repo PyPI `mcp` server
/// with a confidential resource, a template and a prompt).
fn write_org(dir: &std::path::Path) {
    let everything = node_module("@modelcontextprotocol/server-everything/dist/index.js");
    let vault = fixture("vault_mcp.py");
    let files = node_module("@modelcontextprotocol/server-filesystem/dist/index.js");
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let data = data.display();
    let yaml = format!(
        r#"
humans:
  - {{ id: olivia@example.com }}
agents:
  - {{ id: alpha, owner: olivia@example.com, uses: [everything.echo, everything.trigger-sampling-request, everything.trigger-elicitation-request, everything.toggle-subscriber-updates] }}
  - {{ id: bob, owner: olivia@example.com, uses: [vault.whoami, vault.ask_roots, vault.ask_injected] }}
  - {{ id: dora, owner: olivia@example.com, uses: [files.list_directory] }}
connectors:
  - id: files
    mcp: {{ command: node, args: ["{files}", "{data}"] }}
    pin_on_first_sight: true
    tools:
      list_directory: {{ effects: [read] }}
  - id: everything
    mcp: {{ command: node, args: ["{everything}", "stdio"] }}
    pin_on_first_sight: true
    tools:
      echo: {{ effects: [read] }}
      trigger-sampling-request: {{ effects: [read] }}
      trigger-elicitation-request: {{ effects: [read] }}
      toggle-subscriber-updates: {{ effects: [read] }}
  - id: vault
    mcp: {{ command: python3, args: ["{vault}"] }}
    on_injection: block
    pin_on_first_sight: true
    tools:
      whoami: {{ effects: [read] }}
      ask_roots: {{ effects: [read] }}
      ask_injected: {{ effects: [read] }}
"#
    );
    std::fs::write(dir.join("inventory.yaml"), yaml).unwrap();
}

/// Runs the PyPI SDK protocol client script.
fn protocol_client(url: &str, token: &str, steps: &Value) -> Value {
    let out = Command::new(python())
        .args([
            fixture("protocol_client.py"),
            url.to_string(),
            token.to_string(),
            steps.to_string(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python client failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    serde_json::from_str(stdout.lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

fn events<'a>(audit: &'a [Value], kind: &str) -> Vec<&'a Value> {
    audit
        .iter()
        .map(|r| &r["event"])
        .filter(|e| e["kind"] == kind)
        .collect()
}

fn texts(v: &Value) -> String {
    let mut out = Vec::new();
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(t) = m.get("text").and_then(Value::as_str) {
                    out.push(t.to_string());
                }
                m.values().for_each(|x| walk(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    walk(v, &mut out);
    out.join("\n")
}

#[test]
fn sdk_client_lists_and_reads_resources_gets_prompts_and_completions() {
    require_deps();
    let tmp = tempfile::tempdir().unwrap();
    write_org(tmp.path());
    let w = Warden::start(tmp.path(), &[]);
    let token = w.token("alpha");
    let steps = json!([
        {"op": "list_resources"},
        {"op": "read", "uri": "demo://resource/static/document/architecture.md"},
        {"op": "list_templates"},
        {"op": "read", "uri": "demo://resource/dynamic/text/7"},
        {"op": "list_prompts"},
        {"op": "prompt", "name": "everything.args-prompt", "args": {"city": "Lisbon"}},
        {"op": "complete_prompt", "name": "everything.completable-prompt", "argument": "department", "value": "Eng"},
        {"op": "read", "uri": "vault://payroll/2026"},
        {"op": "prompt", "name": "vault.summary", "args": {"reader": "alpha"}},
        {"op": "prompt", "name": "args-prompt", "args": {"city": "Lisbon"}},
    ]);
    let out = protocol_client(&w.url(), &token, &steps);
    let s = out["steps"].as_array().unwrap();

    // The client probed server/discover, was told the handshake revisions, and initialised.
    assert_eq!(out["protocol"], "2025-11-25", "{out}");
    assert!(out["capabilities"]["resources"].is_object(), "{out}");
    assert!(out["capabilities"]["prompts"].is_object(), "{out}");

    // Resources: everything's, never the vault's.
    let uris: Vec<&str> = s[0]["result"]["resources"]
        .as_array()
        .unwrap_or_else(|| panic!("{}", s[0]))
        .iter()
        .filter_map(|r| r["uri"].as_str())
        .collect();
    assert!(
        uris.contains(&"demo://resource/static/document/architecture.md"),
        "{uris:?}"
    );
    assert!(uris.iter().all(|u| !u.starts_with("vault://")), "{uris:?}");
    let doc = texts(&s[1]["result"]);
    assert!(doc.contains("Architecture"), "{}", s[1]);

    // Templates, and a URI expanded from one is routed to its connector.
    let templates: Vec<&str> = s[2]["result"]["resourceTemplates"]
        .as_array()
        .unwrap_or_else(|| panic!("{}", s[2]))
        .iter()
        .filter_map(|t| t["uriTemplate"].as_str())
        .collect();
    assert!(
        templates.contains(&"demo://resource/dynamic/text/{resourceId}"),
        "{templates:?}"
    );
    assert!(texts(&s[3]["result"]).contains("Resource 7"), "{}", s[3]);

    // Prompts are namespaced like tools and fetched by that name.
    let prompts: Vec<&str> = s[4]["result"]["prompts"]
        .as_array()
        .unwrap_or_else(|| panic!("{}", s[4]))
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert!(prompts.contains(&"everything.args-prompt"), "{prompts:?}");
    assert!(
        prompts.iter().all(|p| p.starts_with("everything.")),
        "{prompts:?}"
    );
    assert!(texts(&s[5]["result"]).contains("Lisbon"), "{}", s[5]);

    // Completion by a namespaced prompt ref.
    let values = s[6]["result"]["completion"]["values"]
        .as_array()
        .unwrap_or_else(|| panic!("{}", s[6]));
    assert!(values.iter().any(|v| v == "Engineering"), "{}", s[6]);

    // The vault is bob's: its resource and prompt are refused, as is an unnamespaced prompt.
    assert_eq!(s[7]["code"], -32002, "{}", s[7]);
    assert!(s[7]["result"].is_null(), "{}", s[7]);
    assert_eq!(s[8]["code"], -32602, "{}", s[8]);
    assert_eq!(s[9]["code"], -32602, "{}", s[9]);

    let audit = w.audit();
    let reads = events(&audit, "resource_read");
    let served: Vec<&&Value> = reads.iter().filter(|e| e["outcome"] == "ok").collect();
    assert_eq!(served.len(), 2, "{reads:?}");
    assert!(
        served
            .iter()
            .all(|e| e["detail"]["connector"] == "everything" && e["args_digest"].is_string()),
        "{served:?}"
    );
    let denied: Vec<&&Value> = reads.iter().filter(|e| e["decision"] == "deny").collect();
    assert_eq!(denied.len(), 1, "{reads:?}");
    assert_eq!(denied[0]["detail"]["uri"], "vault://payroll/2026");
    assert_eq!(denied[0]["policies"], json!(["default-deny"]));
    let prompts = events(&audit, "prompt_get");
    assert_eq!(prompts.len(), 3, "{prompts:?}");
    assert!(prompts.iter().any(|e| e["tool"] == "everything.args-prompt"
        && e["outcome"] == "ok"
        && e["args_digest"].is_string()));
    // Contents never reach the trail.
    let trail = serde_json::to_string(&audit).unwrap();
    assert!(
        !trail.contains(&doc[..doc.len().min(200)]),
        "content leaked"
    );
    assert!(
        !trail.contains("weather in Lisbon"),
        "prompt content leaked"
    );
    let status = Command::new(WARDEN)
        .args(["audit", "verify"])
        .arg(&w.dir)
        .arg("--db")
        .arg(&w.db)
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn resources_are_routed_per_agent_and_their_contents_inspected() {
    require_deps();
    let tmp = tempfile::tempdir().unwrap();
    write_org(tmp.path());
    let w = Warden::start(tmp.path(), &[]);
    let mut bob = Mcp::connect(w.addr, &w.token("bob"));
    let mut alpha = Mcp::connect(w.addr, &w.token("alpha"));

    // bob lists and reads his vault.
    let listed = bob.request("resources/list", json!({}));
    let uris: Vec<&str> = listed["result"]["resources"]
        .as_array()
        .unwrap_or_else(|| panic!("{listed}"))
        .iter()
        .filter_map(|r| r["uri"].as_str())
        .collect();
    assert_eq!(uris, vec!["vault://payroll/2026"], "{listed}");
    let read = bob.request("resources/read", json!({"uri": "vault://payroll/2026"}));
    assert!(texts(&read["result"]).contains("PAYROLL-2026"), "{read}");
    let prompt = bob.request(
        "prompts/get",
        json!({"name": "vault.summary", "arguments": {"reader": "bob"}}),
    );
    assert!(
        texts(&prompt["result"]).contains("Summarise the vault for bob"),
        "{prompt}"
    );

    // alpha cannot read it, although the gateway now knows which connector serves it.
    let refused = alpha.request("resources/read", json!({"uri": "vault://payroll/2026"}));
    assert_eq!(refused["error"]["code"], -32002, "{refused}");
    assert!(!refused.to_string().contains("PAYROLL"), "{refused}");
    // …nor a URI nobody lists.
    let unknown = alpha.request("resources/read", json!({"uri": "file:///etc/passwd"}));
    assert_eq!(unknown["error"]["code"], -32002, "{unknown}");

    // A templated note carrying a prompt injection is blocked (the vault is on_injection:
    // block), like a tool result would be; a clean note passes.
    let clean = bob.request("resources/read", json!({"uri": "vault://notes/42"}));
    assert!(
        texts(&clean["result"]).contains("nothing to see"),
        "{clean}"
    );
    let blocked = bob.request("resources/read", json!({"uri": "vault://notes/inject"}));
    assert!(blocked["result"].is_null(), "{blocked}");
    assert!(
        blocked["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("prompt injection"),
        "{blocked}"
    );
    assert!(!blocked.to_string().contains("attacker@evil"), "{blocked}");

    // roots/list from an upstream is refused (an upstream is shared by every agent), and
    // the refusal is audited.
    let roots = bob.call("vault.ask_roots", json!({}));
    assert!(texts(&roots["result"]).contains("roots refused"), "{roots}");

    // A sampling request carrying a prompt injection from a `block` connector never
    // reaches the agent (bob's client accepts SSE, so it could have).
    let r = bob.post(
        &json!({"jsonrpc": "2.0", "id": 99, "method": "tools/call",
            "params": {"name": "vault.ask_injected", "arguments": {}}}),
        true,
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert!(
        !r.body.contains(r#""method":"sampling/createMessage""#),
        "relayed: {}",
        r.body
    );
    assert_eq!(r.header("content-type"), Some("application/json"), "{r:?}");
    let v = r.json();
    assert!(texts(&v["result"]).contains("sampling refused"), "{v}");

    // A cursor the gateway never issued is invalid params.
    let bad = bob.request("resources/list", json!({"cursor": "not-ours"}));
    assert_eq!(bad["error"]["code"], -32602, "{bad}");

    let audit = w.audit();
    let reads = events(&audit, "resource_read");
    assert!(
        reads
            .iter()
            .any(|e| e["detail"]["uri"] == "vault://notes/inject"
                && e["outcome"] == "blocked_injection"
                && e["agent"] == "bob"),
        "{reads:?}"
    );
    assert!(
        reads
            .iter()
            .any(|e| e["detail"]["uri"] == "vault://payroll/2026"
                && e["agent"] == "alpha"
                && e["decision"] == "deny"),
        "{reads:?}"
    );
    assert!(
        events(&audit, "server_request")
            .iter()
            .any(|e| e["method"] == "roots/list"
                && e["outcome"] == "refused"
                && e["detail"]["connector"] == "vault"),
        "{audit:?}"
    );
    assert!(
        events(&audit, "server_request")
            .iter()
            .any(|e| e["method"] == "sampling/createMessage"
                && e["outcome"] == "blocked_injection"
                && e["detail"]["connector"] == "vault"),
        "{audit:?}"
    );
}

#[test]
fn an_unsupported_protocol_version_header_gets_400_and_an_absent_one_is_fine() {
    require_deps();
    let tmp = tempfile::tempdir().unwrap();
    write_org(tmp.path());
    let w = Warden::start(tmp.path(), &[]);
    let m = Mcp::connect(w.addr, &w.token("alpha"));
    let auth = format!("Bearer {}", m.token);
    let send = |version: Option<&str>, id: u64| {
        let mut h = vec![
            ("Authorization", auth.as_str()),
            ("Content-Type", "application/json"),
            ("Accept", "application/json, text/event-stream"),
            ("Mcp-Session-Id", m.session.as_str()),
        ];
        if let Some(v) = version {
            h.push(("MCP-Protocol-Version", v));
        }
        let body = json!({"jsonrpc": "2.0", "id": id, "method": "tools/list", "params": {}});
        http(w.addr, "POST", "/mcp", &h, body.to_string().as_bytes())
    };
    let bad = send(Some("1999-01-01"), 5);
    assert_eq!(bad.status, 400, "{bad:?}");
    let v = bad.json();
    assert_eq!(v["jsonrpc"], "2.0");
    assert_eq!(v["id"], 5);
    assert_eq!(v["error"]["code"], -32600, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("1999-01-01"),
        "{v}"
    );
    // The stateless revision is not served on a session either.
    assert_eq!(send(Some("2026-07-28"), 6).status, 400);
    let fine = send(Some("2025-06-18"), 7);
    assert_eq!(fine.status, 200, "{fine:?}");
    assert!(fine.json()["result"]["tools"].is_array());
    let absent = send(None, 8);
    assert_eq!(absent.status, 200, "{absent:?}");
    assert!(absent.json()["result"]["tools"].is_array());

    let audit = w.audit();
    let rejected = events(&audit, "rejected");
    assert!(
        rejected.iter().any(|e| e["detail"]["error"]
            .as_str()
            .unwrap_or("")
            .contains("1999-01-01")),
        "{rejected:?}"
    );
}

#[test]
fn server_discover_names_the_handshake_revisions_and_stateless_requests_are_refused() {
    require_deps();
    let tmp = tempfile::tempdir().unwrap();
    write_org(tmp.path());
    let w = Warden::start(tmp.path(), &[]);
    let token = w.token("alpha");
    let auth = format!("Bearer {token}");
    let post = |body: Value, version: &str| {
        http(
            w.addr,
            "POST",
            "/mcp",
            &[
                ("Authorization", auth.as_str()),
                ("Content-Type", "application/json"),
                ("Accept", "application/json, text/event-stream"),
                ("MCP-Protocol-Version", version),
            ],
            body.to_string().as_bytes(),
        )
    };
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "probe", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {}
    });
    // server/discover needs no session and names what the gateway serves.
    let r = post(
        json!({"jsonrpc": "2.0", "id": "d-1", "method": "server/discover", "params": {"_meta": meta}}),
        "2026-07-28",
    );
    assert_eq!(r.status, 200, "{r:?}");
    let v = r.json();
    assert_eq!(v["id"], "d-1");
    let versions: Vec<&str> = v["result"]["supportedVersions"]
        .as_array()
        .unwrap_or_else(|| panic!("{v}"))
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(versions.contains(&"2025-11-25"), "{v}");
    assert!(versions.contains(&"2025-06-18"), "{v}");
    assert!(!versions.contains(&"2026-07-28"), "{v}");
    assert_eq!(v["result"]["serverInfo"]["name"], "warden");
    assert!(v["result"]["capabilities"]["tools"].is_object(), "{v}");
    assert!(v["result"]["capabilities"]["resources"].is_object(), "{v}");

    // A stateless 2026-07-28 request: -32022 with the revisions to use instead.
    let r = post(
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {"_meta": meta}}),
        "2026-07-28",
    );
    assert_eq!(r.status, 400, "{r:?}");
    let v = r.json();
    assert_eq!(v["id"], 2);
    assert_eq!(v["error"]["code"], -32022, "{v}");
    assert_eq!(v["error"]["data"]["requested"], "2026-07-28");
    let supported = v["error"]["data"]["supported"].as_array().unwrap();
    assert!(supported.iter().any(|s| s == "2025-11-25"), "{v}");
    assert!(
        !r.body.contains("\"result\""),
        "nothing was served statelessly: {v}"
    );

    // The same without the 2026 _meta is the usual missing-session error.
    let r = post(
        json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list", "params": {}}),
        "2025-11-25",
    );
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(r.json()["error"]["code"], -32600);
}

#[test]
fn sampling_and_elicitation_requests_of_an_upstream_reach_the_calling_agent() {
    require_deps();
    let tmp = tempfile::tempdir().unwrap();
    write_org(tmp.path());
    let w = Warden::start(tmp.path(), &[]);
    let token = w.token("alpha");
    let steps = json!([
        {"op": "call", "name": "everything.trigger-sampling-request", "args": {"prompt": "haiku about gateways", "maxTokens": 20}},
        {"op": "call", "name": "everything.trigger-elicitation-request", "args": {}},
    ]);
    let out = protocol_client(&w.url(), &token, &steps);
    let s = out["steps"].as_array().unwrap();
    let reqs = out["server_requests"].as_array().unwrap();

    // The upstream's sampling request reached the agent (with the upstream's prompt), and
    // the agent's answer reached the upstream, which put it into the tool result.
    let sampling: Vec<&Value> = reqs
        .iter()
        .filter(|r| r["method"] == "sampling/createMessage")
        .collect();
    assert_eq!(sampling.len(), 1, "{out}");
    assert!(
        sampling[0]["params"]
            .to_string()
            .contains("haiku about gateways"),
        "{out}"
    );
    let text = texts(&s[0]["result"]);
    assert!(text.contains("sampled-by-agent"), "{}", s[0]);
    assert_ne!(s[0]["result"]["isError"], true, "{}", s[0]);

    // Elicitation: the agent declined, and the upstream saw the decline.
    assert!(
        reqs.iter().any(|r| r["method"] == "elicitation/create"),
        "{out}"
    );
    assert!(texts(&s[1]["result"]).contains("declined"), "{}", s[1]);

    let audit = w.audit();
    let relayed = events(&audit, "server_request");
    assert!(
        relayed
            .iter()
            .any(|e| e["method"] == "sampling/createMessage"
                && e["outcome"] == "answered"
                && e["detail"]["connector"] == "everything"
                && e["agent"] == "alpha"),
        "{relayed:?}"
    );
    assert!(
        relayed
            .iter()
            .any(|e| e["method"] == "elicitation/create" && e["agent"] == "alpha"),
        "{relayed:?}"
    );
    // The sampled text is content: it is not in the trail's server_request records.
    assert!(
        relayed
            .iter()
            .all(|e| !e.to_string().contains("sampled-by-agent")),
        "{relayed:?}"
    );
}

#[test]
fn over_gateway_stdio_resources_and_sampling_are_relayed_too() {
    require_deps();
    let tmp = tempfile::tempdir().unwrap();
    write_org(tmp.path());
    let db = tmp.path().join("stdio.db");
    let steps = json!([
        {"op": "read", "uri": "demo://resource/dynamic/text/3"},
        {"op": "read", "uri": "vault://payroll/2026"},
        {"op": "call", "name": "everything.trigger-sampling-request", "args": {"prompt": "over stdio", "maxTokens": 10}},
    ]);
    let out = Command::new(python())
        .args([
            fixture("protocol_client.py"),
            "stdio".into(),
            steps.to_string(),
            "--".into(),
            WARDEN.into(),
            "gateway".into(),
            "stdio".into(),
            "--agent".into(),
            "alpha".into(),
            tmp.path().display().to_string(),
            "--db".into(),
            db.display().to_string(),
        ])
        .env("PATH", path_env())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().last().unwrap()).unwrap();
    let s = v["steps"].as_array().unwrap();
    assert_eq!(v["protocol"], "2025-11-25", "{v}");
    assert!(texts(&s[0]["result"]).contains("Resource 3"), "{v}");
    assert_eq!(s[1]["code"], -32002, "{v}");
    assert!(
        v["server_requests"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["method"] == "sampling/createMessage"
                && r["params"].to_string().contains("over stdio")),
        "{v}"
    );
    assert!(texts(&s[2]["result"]).contains("sampled-by-agent"), "{v}");
    let audit = audit_export(tmp.path(), &db);
    assert!(
        events(&audit, "server_request")
            .iter()
            .any(|e| e["outcome"] == "answered"),
        "{audit:?}"
    );
}

#[test]
fn a_streamable_http_upstreams_sampling_request_and_log_message_reach_the_calling_agent() {
    require_deps();
    let port = free_port();
    let child = Command::new(python())
        .args([fixture("vault_mcp.py"), "--http".into(), port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let _upstream = Proc(child);
    wait_for_port(port, std::time::Duration::from_secs(30));
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("inventory.yaml"),
        format!(
            r#"
humans: [{{ id: olivia@example.com }}]
agents:
  - {{ id: carol, owner: olivia@example.com, uses: [remote.ask_model, remote.shout] }}
connectors:
  - id: remote
    mcp: {{ url: "http://127.0.0.1:{port}/mcp" }}
    pin_on_first_sight: true
    tools:
      ask_model: {{ effects: [read] }}
      shout: {{ effects: [read] }}
"#
        ),
    )
    .unwrap();
    let w = Warden::start(tmp.path(), &[]);
    let steps = json!([
        {"op": "call", "name": "remote.ask_model", "args": {}},
        {"op": "call", "name": "remote.shout", "args": {}},
    ]);
    let out = protocol_client(&w.url(), &w.token("carol"), &steps);
    let s = out["steps"].as_array().unwrap();
    assert!(
        texts(&s[0]["result"]).contains("model said: sampled-by-agent"),
        "{out}"
    );
    assert!(
        out["server_requests"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["method"] == "sampling/createMessage"
                && r["params"].to_string().contains("Name this vault")),
        "{out}"
    );
    assert!(texts(&s[1]["result"]).contains("shouted"), "{out}");
    assert!(
        out["logs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l.to_string().contains("vault log line")),
        "{out}"
    );
    let audit = w.audit();
    assert!(
        events(&audit, "server_request")
            .iter()
            .any(|e| e["detail"]["connector"] == "remote" && e["outcome"] == "answered"),
        "{audit:?}"
    );
}

#[test]
fn resources_and_prompts_are_advertised_only_when_a_usable_connector_offers_them() {
    require_deps();
    let tmp = tempfile::tempdir().unwrap();
    write_org(tmp.path());
    let w = Warden::start(tmp.path(), &[]);
    let initialize = |agent: &str| {
        let auth = format!("Bearer {}", w.token(agent));
        let r = http(
            w.addr,
            "POST",
            "/mcp",
            &[
                ("Authorization", auth.as_str()),
                ("Content-Type", "application/json"),
                ("Accept", "application/json, text/event-stream"),
            ],
            json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": {},
                "clientInfo": {"name": "caps-test", "version": "1"}}})
            .to_string()
            .as_bytes(),
        );
        assert_eq!(r.status, 200, "{r:?}");
        r.json()["result"]["capabilities"].clone()
    };
    // server-filesystem announces tools only.
    let dora = initialize("dora");
    assert!(dora["tools"].is_object(), "{dora}");
    assert!(dora.get("resources").is_none(), "{dora}");
    assert!(dora.get("prompts").is_none(), "{dora}");
    assert!(dora.get("completions").is_none(), "{dora}");
    // server-everything announces resources, prompts and completions.
    let alpha = initialize("alpha");
    // It also announces `resources.subscribe`, which the gateway relays.
    assert_eq!(alpha["resources"]["subscribe"], true, "{alpha}");
    assert!(alpha["prompts"].is_object(), "{alpha}");
    assert!(alpha["completions"].is_object(), "{alpha}");
    // Asking anyway: empty lists, nothing from connectors dora may not use.
    let mut m = Mcp::connect(w.addr, &w.token("dora"));
    let v = m.request("resources/list", json!({}));
    assert_eq!(v["result"]["resources"], json!([]), "{v}");
    let v = m.request("prompts/list", json!({}));
    assert_eq!(v["result"]["prompts"], json!([]), "{v}");
}

#[test]
fn resource_subscriptions_are_relayed_and_updates_reach_only_the_subscribed_agent() {
    require_deps();
    let tmp = tempfile::tempdir().unwrap();
    write_org(tmp.path());
    let w = Warden::start(tmp.path(), &[]);
    let token = w.token("alpha");
    let uri = "demo://resource/static/document/architecture.md";
    // server-everything sends `notifications/resources/updated` for subscribed URIs once its
    // toggle tool is called (at once, then every 5 s).
    let steps = json!([
        {"op": "list_resources"},
        {"op": "subscribe", "uri": uri},
        {"op": "call", "name": "everything.toggle-subscriber-updates", "args": {}},
        {"op": "wait_updated", "uri": uri, "seconds": 20},
        {"op": "unsubscribe", "uri": uri},
        {"op": "call", "name": "everything.toggle-subscriber-updates", "args": {}},
    ]);
    let out = protocol_client(&w.url(), &token, &steps);
    assert_eq!(out["capabilities"]["resources"]["subscribe"], true, "{out}");
    let steps_out = out["steps"].as_array().unwrap();
    assert!(steps_out[1].get("exception").is_none(), "{out}");
    assert_eq!(steps_out[3]["result"]["received"], true, "{out}");
    assert!(steps_out[4].get("exception").is_none(), "{out}");
    // bob cannot see `everything`: subscribing to its resource is refused like a read.
    let bob = w.token("bob");
    let out = protocol_client(&w.url(), &bob, &json!([{"op": "subscribe", "uri": uri}]));
    let refused = &out["steps"][0];
    assert_eq!(refused["code"], -32002, "{out}");
    let (dir, db) = (w.dir.clone(), w.db.clone());
    assert!(w.terminate().success());
    let audit = audit_export(&dir, &db);
    let subs = events(&audit, "resource_subscription");
    assert!(
        subs.iter().any(|e| e["agent"] == "alpha"
            && e["method"] == "resources/subscribe"
            && e["outcome"] == "ok"
            && e["detail"]["connector"] == "everything"),
        "{subs:?}"
    );
    assert!(
        subs.iter()
            .any(|e| e["agent"] == "bob" && e["outcome"] == "denied"),
        "{subs:?}"
    );
    let forwarded = events(&audit, "notification");
    assert!(
        forwarded
            .iter()
            .any(|e| e["method"] == "notifications/resources/updated"
                && e["detail"]["uri"] == uri
                && e["detail"]["sessions"] == 1),
        "{forwarded:?}"
    );
}
