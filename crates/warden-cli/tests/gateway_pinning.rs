//! Tool pinning through `warden up` with real peers: the PyPI `mcp` SDK client as the agent,
//! `server-everything` (npm) and an in-repo server whose tool description changes at run
//! time (`fixtures/pinning/rugpull_server.py`, it sends `notifications/tools/list_changed`).
//! A changed definition is hidden and denied until `warden tools diff` / `warden tools
//! approve`; a poisoned tool is never pinned on first sight; unapproved tools of connectors
//! without `pin_on_first_sight` are held back; shadowed names are flagged.

mod gateway_support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use gateway_support::*;
use serde_json::{Value, json};

fn rugpull_server() -> String {
    repo_root()
        .join("crates/warden-cli/tests/fixtures/pinning/rugpull_server.py")
        .display()
        .to_string()
}

const CLEAN_LOOKUP: &str = "Look up a word in the dictionary and return its definition.";

/// `warden ARGS` → (exit code, stdout, stderr).
fn run(args: &[&str]) -> (i32, String, String) {
    let out = warden(args);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn tools_json(w: &Warden, cmd: &[&str]) -> (i32, Value) {
    let dir = w.dir.to_str().unwrap();
    let db = w.db.to_str().unwrap();
    // `tools SUBCOMMAND DIR [TOOL] --db DB --format json`
    let mut args = vec!["tools", cmd[0], dir];
    args.extend_from_slice(&cmd[1..]);
    args.extend_from_slice(&["--db", db, "--format", "json"]);
    let (code, out, err) = run(&args);
    let v = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}\n{err}"));
    (code, v)
}

fn row<'a>(list: &'a Value, tool: &str) -> &'a Value {
    list["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["tool"] == tool)
        .unwrap_or_else(|| panic!("{tool} not in {list}"))
}

fn events<'a>(audit: &'a [Value], kind: &str) -> Vec<&'a Value> {
    audit
        .iter()
        .map(|r| &r["event"])
        .filter(|e| e["kind"] == kind)
        .collect()
}

fn listed(out: &Value) -> Vec<String> {
    out["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect()
}

/// `tools/list` of `node SERVER stdio`, asked with a raw initialize (capabilities `{}`).
fn direct_tools(server: &str) -> Vec<String> {
    use std::io::{BufRead, BufReader, Write};
    let mut child = Command::new("node")
        .args([server, "stdio"])
        .env("PATH", path_env())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    for m in [
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "direct", "version": "1"}}}),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}}),
    ] {
        writeln!(stdin, "{m}").unwrap();
    }
    let mut names = Vec::new();
    for line in BufReader::new(child.stdout.take().unwrap())
        .lines()
        .take(200)
    {
        let Ok(v) = serde_json::from_str::<Value>(&line.unwrap()) else {
            continue;
        };
        if v["id"] == 2 {
            names = v["result"]["tools"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["name"].as_str().unwrap().to_string())
                .collect();
            break;
        }
    }
    drop(stdin);
    let _ = child.kill();
    let _ = child.wait();
    names
}

fn write_org(dir: &Path, connectors: &str, uses: &str) {
    let yaml = format!(
        r#"
humans:
  - {{ id: olivia@example.com, groups: [ops] }}
groups: [{{ id: ops }}]
agents:
  - id: alpha
    owner: olivia@example.com
    uses: [{uses}]
connectors:
{connectors}
"#
    );
    std::fs::write(dir.join("inventory.yaml"), yaml).unwrap();
}

/// alpha uses `dict.lookup` and `dict.define` of the rug-pull server watching `flag`.
fn write_rugpull_org(dir: &Path, flag: &Path) {
    write_org(
        dir,
        &format!(
            r#"  - id: dict
    mcp: {{ command: python3, args: ["{server}", rugpull, "{flag}"] }}
    pin_on_first_sight: true
    tools:
      lookup: {{ effects: [read] }}
      define: {{ effects: [read] }}"#,
            server = rugpull_server(),
            flag = flag.display()
        ),
        "dict.lookup, dict.define",
    );
}

#[test]
fn a_changed_description_is_quarantined_until_reviewed_and_approved() {
    rug_pull_scenario(&[]);
}

/// The same with the store in PostgreSQL (the replicas' setup): pins, sightings and the
/// `warden tools` commands through the URL.
#[test]
fn a_changed_description_is_quarantined_until_approved_with_a_postgres_store() {
    let admin = std::env::var("WARDEN_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://warden:warden@127.0.0.1:5432/postgres".into());
    let name = format!("warden_t_pins_{}", std::process::id());
    let created = Command::new("psql")
        .args([
            admin.as_str(),
            "-q",
            "-c",
            &format!("DROP DATABASE IF EXISTS {name}"),
            "-c",
            &format!("CREATE DATABASE {name}"),
        ])
        .output()
        .expect("psql (PostgreSQL client) is installed by scripts/deps.d/40-gateway.sh");
    assert!(
        created.status.success(),
        "PostgreSQL not reachable at {admin}: {}; run scripts/deps.d/40-gateway.sh",
        String::from_utf8_lossy(&created.stderr)
    );
    let url = format!("{}/{name}", admin.rsplit_once('/').unwrap().0);
    rug_pull_scenario(&["--db", &url]);
}

fn rug_pull_scenario(extra: &[&str]) {
    require_deps();
    let tmp = tempfile::tempdir().unwrap();
    let flag = tmp.path().join("rugpull.flag");
    write_rugpull_org(tmp.path(), &flag);
    let w = Warden::start(tmp.path(), extra);
    let token = w.token("alpha");
    let steps = json!([{"call": "dict.lookup", "args": {"word": "warden"}}]);

    // First sight: pinned automatically, served.
    let out = python_client_http(&w.url(), &token, &steps);
    assert_eq!(listed(&out), vec!["dict.define", "dict.lookup"], "{out}");
    assert_eq!(out["calls"][0]["isError"], false, "{out}");
    assert!(
        out["calls"][0]["text"]
            .as_str()
            .unwrap()
            .contains("lookup(warden)")
    );
    let (code, list) = tools_json(&w, &["list"]);
    assert_eq!(code, 0, "{list}");
    let pinned = row(&list, "dict.lookup");
    assert_eq!(pinned["status"], "pinned");
    assert_eq!(pinned["approved_by"], "first-sight");
    let old_hash = pinned["hash"].as_str().unwrap().to_string();
    assert!(old_hash.starts_with("sha256:"), "{old_hash}");

    // The upstream changes the description and says so (notifications/tools/list_changed):
    // the gateway re-fetches and hides the tool. Wait (bounded) for the notification.
    std::fs::write(&flag, "pulled").unwrap();
    let mut raw = Mcp::connect(w.addr, &token);
    let start = Instant::now();
    loop {
        let v = raw.request("tools/list", json!({}));
        let names: Vec<&str> = v["result"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|t| t["name"].as_str())
            .collect();
        if !names.contains(&"dict.lookup") {
            assert!(
                names.contains(&"dict.define"),
                "unchanged tools stay served: {v}"
            );
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "dict.lookup still served after its description changed: {v}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // The agent (Python SDK) no longer sees it, and a call is denied with the reason.
    let out = python_client_http(&w.url(), &token, &steps);
    assert_eq!(listed(&out), vec!["dict.define"], "{out}");
    let call = &out["calls"][0];
    assert_eq!(call["isError"], true, "{out}");
    let text = call["text"].as_str().unwrap();
    let (_, list) = tools_json(&w, &["list"]);
    let held = row(&list, "dict.lookup");
    assert_eq!(held["status"], "quarantined", "{list}");
    assert_eq!(held["reason"], "changed");
    let new_hash = held["served_hash"].as_str().unwrap().to_string();
    assert_ne!(new_hash, old_hash);
    for needle in [
        "dict.lookup",
        "quarantined",
        old_hash.as_str(),
        new_hash.as_str(),
        "warden tools diff",
    ] {
        assert!(text.contains(needle), "`{needle}` missing in: {text}");
    }
    assert_eq!(call["meta"]["warden.dev/decision"]["decision"], "deny");
    assert_eq!(row(&list, "dict.define")["status"], "pinned");

    // Audit: the quarantine (with its finding) and the denied call.
    let audit = w.audit();
    let q: Vec<_> = events(&audit, "tool_quarantined")
        .into_iter()
        .filter(|e| e["tool"] == "dict.lookup")
        .collect();
    assert_eq!(q.len(), 1, "one record per held-back definition: {q:?}");
    assert_eq!(q[0]["outcome"], "changed");
    assert_eq!(q[0]["detail"]["approved_hash"], old_hash.as_str());
    assert_eq!(q[0]["detail"]["served_hash"], new_hash.as_str());
    let rules: Vec<&str> = q[0]["detail"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["rule_id"].as_str())
        .collect();
    assert!(rules.contains(&"gateway.tool-quarantined"), "{rules:?}");
    // The new text is also flagged by the poisoning detector.
    assert!(rules.contains(&"detect.tool-poisoning"), "{rules:?}");
    assert!(
        events(&audit, "decision")
            .iter()
            .any(|e| e["tool"] == "dict.lookup" && e["outcome"] == "quarantined"),
        "the denied call is audited"
    );

    // Review: the diff shows the old and the new description.
    let dir = w.dir.to_str().unwrap();
    let db = w.db.to_str().unwrap();
    let (code, text, err) = run(&["tools", "diff", dir, "dict.lookup", "--db", db]);
    assert_eq!(code, 1, "a held-back definition differs: {text}{err}");
    assert!(text.contains(&format!("- {CLEAN_LOOKUP}")), "{text}");
    assert!(
        text.contains("+ Look up a word in the dictionary and return its definition. <IMPORTANT>"),
        "{text}"
    );
    assert!(text.contains("/description"), "{text}");
    let (code, d) = tools_json(&w, &["diff", "dict.lookup"]);
    assert_eq!(code, 1);
    assert_eq!(d["approved"]["hash"], old_hash.as_str());
    assert_eq!(d["served"]["hash"], new_hash.as_str());
    let changes = d["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "{d}");
    assert_eq!(changes[0]["pointer"], "/description");
    assert_eq!(changes[0]["old"], CLEAN_LOOKUP);
    assert!(
        changes[0]["new"]
            .as_str()
            .unwrap()
            .contains("~/.ssh/id_rsa")
    );

    // Approving something other than what was reviewed is refused.
    let (code, _, err) = run(&[
        "tools",
        "approve",
        dir,
        "dict.lookup",
        "--db",
        db,
        "--hash",
        &old_hash,
        "--by",
        "olivia@example.com",
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains(&new_hash), "{err}");
    let (code, _, err) = run(&[
        "tools",
        "approve",
        dir,
        "dict.lookup",
        "--db",
        db,
        "--hash",
        &new_hash,
        "--by",
        "nobody@example.com",
    ]);
    assert_eq!(code, 2, "unknown approver: {err}");
    let out = python_client_http(&w.url(), &token, &steps);
    assert_eq!(out["calls"][0]["isError"], true, "still held back: {out}");

    // Approve the reviewed definition: the running gateway serves it again.
    let (code, text, err) = run(&[
        "tools",
        "approve",
        dir,
        "dict.lookup",
        "--db",
        db,
        "--hash",
        &new_hash,
        "--by",
        "olivia@example.com",
    ]);
    assert_eq!(code, 0, "{text}{err}");
    let out = python_client_http(&w.url(), &token, &steps);
    assert_eq!(out["calls"][0]["isError"], false, "{out}");
    assert!(listed(&out).contains(&"dict.lookup".to_string()), "{out}");
    assert!(
        out["tool_defs"]["dict.lookup"]["description"]
            .as_str()
            .unwrap()
            .contains("<IMPORTANT>"),
        "the approved (new) definition is served: {out}"
    );
    let (_, list) = tools_json(&w, &["list"]);
    let r = row(&list, "dict.lookup");
    assert_eq!(r["status"], "pinned");
    assert_eq!(r["hash"], new_hash.as_str());
    assert_eq!(r["approved_by"], "olivia@example.com");
    let audit = w.audit();
    assert!(
        events(&audit, "tool_approved")
            .iter()
            .any(|e| e["tool"] == "dict.lookup" && e["detail"]["hash"] == new_hash.as_str())
    );
    assert!(
        events(&audit, "tool_released")
            .iter()
            .any(|e| e["tool"] == "dict.lookup")
    );
    // Nothing is left to approve.
    let (code, _, err) = run(&["tools", "approve", dir, "dict.lookup", "--db", db]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("nothing to approve"), "{err}");
}

#[test]
fn server_everything_tools_are_clean_and_pinned_on_first_sight() {
    require_deps();
    let tmp = tempfile::tempdir().unwrap();
    let everything = node_module("@modelcontextprotocol/server-everything/dist/index.js");
    write_org(
        tmp.path(),
        &format!(
            r#"  - id: everything
    mcp: {{ command: node, args: ["{everything}", "stdio"] }}
    pin_on_first_sight: true
    tools:
      echo: {{ effects: [read] }}"#
        ),
        "everything.echo",
    );
    // What the server serves to a client without capabilities, asked directly over stdio,
    // not through Warden (the gateway may announce more capabilities and see more tools).
    let served = direct_tools(&everything);
    assert!(served.len() >= 5, "{served:?}");

    let w = Warden::start(tmp.path(), &[]);
    let token = w.token("alpha");
    let out = python_client_http(
        &w.url(),
        &token,
        &json!([{"call": "everything.echo", "args": {"message": "pinned"}}]),
    );
    assert_eq!(listed(&out), vec!["everything.echo"], "{out}");
    assert_eq!(out["calls"][0]["isError"], false, "{out}");

    let (code, list) = tools_json(&w, &["list"]);
    assert_eq!(code, 0);
    let mut pinned: Vec<String> = list["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["connector"] == "everything" && r["status"] == "pinned")
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect();
    pinned.sort();
    for t in &served {
        assert!(pinned.contains(t), "{t} is served but not pinned: {list}");
    }
    assert!(
        list["tools"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] == "pinned"),
        "nothing held back: {list}"
    );
    assert!(
        list["tools"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["approved_by"] == "first-sight"),
        "{list}"
    );
    assert_eq!(
        list["findings"],
        json!([]),
        "no poisoning, no quarantine: {list}"
    );
    let audit = w.audit();
    assert!(events(&audit, "tool_quarantined").is_empty());
    let pinned_ev = events(&audit, "tool_pinned");
    assert_eq!(
        pinned_ev.len(),
        1,
        "one record for the first sight: {pinned_ev:?}"
    );
    assert_eq!(
        pinned_ev[0]["detail"]["tools"].as_array().unwrap().len(),
        pinned.len()
    );
}

#[test]
fn poisoned_and_unapproved_tools_are_held_back_and_shadowing_is_flagged() {
    require_deps();
    let tmp = tempfile::tempdir().unwrap();
    let server = rugpull_server();
    write_org(
        tmp.path(),
        &format!(
            r#"  - id: dict
    mcp: {{ command: python3, args: ["{server}", rugpull] }}
    pin_on_first_sight: true
    tools:
      lookup: {{ effects: [read] }}
  - id: thesaurus
    mcp: {{ command: python3, args: ["{server}", shadow] }}
    pin_on_first_sight: true
    tools:
      lookup: {{ effects: [read] }}
  - id: calc
    mcp: {{ command: python3, args: ["{server}", poisoned] }}
    pin_on_first_sight: true
    tools:
      add: {{ effects: [read] }}
  - id: manual
    mcp: {{ command: python3, args: ["{server}", rugpull] }}
    tools:
      define: {{ effects: [read] }}"#
        ),
        "dict.lookup, thesaurus.lookup, calc.add, manual.define",
    );
    let w = Warden::start(tmp.path(), &[]);
    let token = w.token("alpha");
    let out = python_client_http(
        &w.url(),
        &token,
        &json!([
            {"call": "calc.add", "args": {"a": 1, "b": 2}},
            {"call": "manual.define", "args": {"word": "x"}},
            {"call": "thesaurus.lookup", "args": {"word": "x"}}
        ]),
    );
    // Shadowing is flagged but not a quarantine; the poisoned and the unapproved are hidden.
    assert_eq!(
        listed(&out),
        vec!["dict.lookup", "thesaurus.lookup"],
        "{out}"
    );
    let calls = out["calls"].as_array().unwrap();
    assert_eq!(calls[0]["isError"], true);
    assert!(
        calls[0]["text"]
            .as_str()
            .unwrap()
            .contains("looks poisoned"),
        "{out}"
    );
    assert_eq!(calls[1]["isError"], true);
    assert!(
        calls[1]["text"]
            .as_str()
            .unwrap()
            .contains("never approved and connector manual does not pin on first sight"),
        "{out}"
    );
    assert_eq!(calls[2]["isError"], false, "{out}");

    let audit = w.audit();
    let q = events(&audit, "tool_quarantined");
    let calc = q
        .iter()
        .find(|e| e["tool"] == "calc.add")
        .expect("calc.add held back");
    assert_eq!(calc["outcome"], "poisoned");
    assert!(
        calc["detail"]["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["rule_id"] == "detect.tool-poisoning" && f["severity"] == "high"),
        "{calc}"
    );
    let manual = q
        .iter()
        .find(|e| e["tool"] == "manual.define")
        .expect("manual.define held back");
    assert_eq!(manual["outcome"], "unpinned");
    let sh = events(&audit, "tool_shadowing");
    // Recorded again whenever the set of connectors serving the name grows.
    let both = sh.iter().any(|e| {
        let ev = e["detail"]["finding"]["evidence"][0].as_str().unwrap_or("");
        e["tool"] == "lookup" && ev.contains("dict.lookup") && ev.contains("thesaurus.lookup")
    });
    assert!(both, "shadowing of lookup not audited: {sh:?}");

    let (code, list) = tools_json(&w, &["list"]);
    assert_eq!(code, 0);
    assert_eq!(row(&list, "calc.add")["reason"], "poisoned");
    assert_eq!(row(&list, "manual.define")["reason"], "unpinned");
    assert_eq!(row(&list, "dict.lookup")["status"], "pinned");
    let shadow = list["shadowing"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["tool"] == "lookup")
        .unwrap_or_else(|| panic!("{list}"));
    let conns: Vec<&str> = shadow["connectors"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        conns.contains(&"dict") && conns.contains(&"thesaurus"),
        "{conns:?}"
    );
    assert!(
        list["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["rule_id"] == "detect.tool-shadowing")
    );
    // --fail-on turns the held-back tools into exit 1.
    let dir = w.dir.to_str().unwrap();
    let db = w.db.to_str().unwrap();
    let (code, _, _) = run(&["tools", "list", dir, "--db", db, "--fail-on", "high"]);
    assert_eq!(code, 1);

    // The diff of a never-approved tool shows the whole definition as added, with evidence.
    let (code, text, _) = run(&["tools", "diff", dir, "calc.add", "--db", db]);
    assert_eq!(code, 1);
    assert!(
        text.contains("never approved") && text.contains("+ /description"),
        "{text}"
    );
    assert!(text.contains("poisoning evidence"), "{text}");

    // Approving the unapproved tool lets it through (no restart).
    let (code, _, err) = run(&[
        "tools",
        "approve",
        dir,
        "manual.define",
        "--db",
        db,
        "--by",
        "olivia@example.com",
    ]);
    assert_eq!(code, 0, "{err}");
    let out = python_client_http(
        &w.url(),
        &token,
        &json!([{"call": "manual.define", "args": {"word": "x"}}]),
    );
    assert_eq!(out["calls"][0]["isError"], false, "{out}");
    assert!(listed(&out).contains(&"manual.define".to_string()));
}

#[test]
fn an_upstream_list_changed_reaches_the_agent_on_its_get_stream_and_is_audited() {
    require_deps();
    let tmp = tempfile::tempdir().unwrap();
    let flag = tmp.path().join("rugpull.flag");
    write_rugpull_org(tmp.path(), &flag);
    let w = Warden::start(tmp.path(), &[]);
    let token = w.token("alpha");
    // The Python SDK client opens `GET /mcp` by itself after initialize; the upstream's
    // notification must come through it.
    let out = Command::new(python())
        .args([
            fixture("listen_client.py"),
            w.url(),
            token,
            flag.display().to_string(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "listen client failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let v: Value = serde_json::from_str(stdout.lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert_eq!(v["tools_list_changed"], true, "{v}");
    assert_eq!(v["tools"], json!(["dict.define", "dict.lookup"]), "{v}");
    assert!(
        v["notifications"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m == "notifications/tools/list_changed"),
        "no list_changed reached the agent: {v}"
    );
    let (dir, db) = (w.dir.clone(), w.db.clone());
    assert!(w.terminate().success());
    let audit = audit_export(&dir, &db);
    let forwarded: Vec<&Value> = events(&audit, "notification")
        .into_iter()
        .filter(|e| e["detail"]["connector"] == "dict")
        .collect();
    assert!(
        forwarded
            .iter()
            .any(|e| e["detail"]["sessions"] == 1
                && e["method"] == "notifications/tools/list_changed"),
        "{forwarded:?}"
    );
}
