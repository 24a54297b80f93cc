//! `warden graph`, `warden graph paths` and `warden findings` on the example organisation.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn acme() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/acme")
}

fn iam() -> PathBuf {
    acme().join("iam/authorization-details.json")
}

fn warden(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(args)
        .output()
        .expect("warden runs")
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn findings_json(dir: &Path) -> (Option<i32>, Value) {
    let out = warden(&[
        "findings",
        dir.to_str().unwrap(),
        "--iam",
        iam().to_str().unwrap(),
        "--format",
        "json",
    ]);
    (out.status.code(), json_of(&out))
}

fn by<'a>(doc: &'a Value, rule: &str, subject: &str) -> Option<&'a Value> {
    doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule_id"] == rule && f["subject"] == subject)
}

#[test]
fn findings_on_acme_report_trifecta_escalation_and_orphan() {
    let (code, doc) = findings_json(&acme());
    assert_eq!(code, Some(1), "critical findings fail the run");
    let t = by(&doc, "graph.lethal-trifecta", "agent:support-triage").expect("trifecta");
    let ev: Vec<&str> = t["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    let ev = ev.join("\n");
    assert!(
        ev.contains("resource:support-inbox -Influences[mail.read_inbox]-> agent:support-triage"),
        "{ev}"
    );
    assert!(
        ev.contains("tool:crm.lookup_customer -HasAccessTo-> resource:crm-db"),
        "{ev}"
    );
    assert!(ev.contains("agent:support-triage -CanInvoke-> tool:slack.post_message -CanSendTo-> resource:slack-shared-channels"), "{ev}");
    let rem = &t["remediation"];
    assert_eq!(rem["cut_found"], true);
    assert!(!rem["cut"].as_array().unwrap().is_empty());
    assert!(rem["paths_before"].as_u64().unwrap() >= 1);
    assert_eq!(rem["paths_after"], 0);

    let e = by(
        &doc,
        "graph.identity-escalation",
        "identity:svc-legacy-reporting",
    )
    .expect("escalation");
    let ev = e["evidence"].to_string();
    assert!(ev.contains("-CanAssume-> identity:aws-admin"), "{ev}");
    assert!(
        ev.contains("-CanPassRole-> iam:arn:aws:iam::111122223333:role/acme-deploy-lambda"),
        "{ev}"
    );
    assert!(
        ev.contains("authorization-details.json"),
        "edge source named: {ev}"
    );
    assert_eq!(e["remediation"]["paths_after"], 0);

    assert!(
        by(
            &doc,
            "graph.orphaned-agent-privileged-reach",
            "agent:legacy-reporting-bot"
        )
        .is_some()
    );
    assert!(
        by(&doc, "check.orphaned-agent", "legacy-reporting-bot").is_some(),
        "check findings included"
    );
    assert!(
        by(
            &doc,
            "graph.memory-poisoning",
            "agent:support-triage->resource:support-memory"
        )
        .is_some()
    );
    assert!(
        by(
            &doc,
            "graph.confused-deputy",
            "agent:support-triage->agent:refund-agent"
        )
        .is_some()
    );
    assert_eq!(
        doc["summary"]["total"].as_u64().unwrap() as usize,
        doc["findings"].as_array().unwrap().len()
    );
}

/// Applies the proposed trifecta cut to a copy of the inventory (a gate becomes an approval
/// rule, a revoked entitlement leaves `uses`) and re-runs: the trifecta is gone.
#[test]
fn applying_the_proposed_cut_to_the_files_removes_the_trifecta() {
    let (_, doc) = findings_json(&acme());
    let t = by(&doc, "graph.lethal-trifecta", "agent:support-triage").expect("trifecta");
    let cut = t["remediation"]["cut"].as_array().unwrap().clone();

    let tmp = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(acme()).unwrap() {
        let p = entry.unwrap().path();
        if p.is_file() {
            std::fs::copy(&p, tmp.path().join(p.file_name().unwrap())).unwrap();
        }
    }
    let approvals = tmp.path().join("approvals.yaml");
    let agents = tmp.path().join("agents.yaml");
    for (i, r) in cut.iter().enumerate() {
        match r["action"].as_str().unwrap() {
            "gate_tool" => {
                let tool = r["tool"].as_str().unwrap();
                let mut text = std::fs::read_to_string(&approvals).unwrap();
                let rule = format!(
                    "  - id: proposed-gate-{i}\n    when: {{ tools: [{tool}] }}\n    approvers: [group:support-leads]\n    expires: 30m\n"
                );
                text = text.replacen("approvals:\n", &format!("approvals:\n{rule}"), 1);
                std::fs::write(&approvals, text).unwrap();
            }
            "revoke_entitlement" => {
                let tool = r["tool"].as_str().unwrap();
                let text = std::fs::read_to_string(&agents).unwrap();
                let lines: Vec<&str> = text
                    .lines()
                    .filter(|l| {
                        l.trim() != format!("- {tool}").as_str()
                            && !l.trim().starts_with(&format!("- {tool} "))
                    })
                    .collect();
                std::fs::write(&agents, lines.join("\n") + "\n").unwrap();
            }
            other => panic!("cut action {other} not applied by this test"),
        }
    }
    let (_, after) = findings_json(tmp.path());
    assert!(
        by(&after, "graph.lethal-trifecta", "agent:support-triage").is_none(),
        "cut {cut:?} applied"
    );
    // Unrelated findings stay.
    assert!(
        by(
            &after,
            "graph.identity-escalation",
            "identity:svc-legacy-reporting"
        )
        .is_some()
    );
}

#[test]
fn graph_exports_json_dot_and_opengraph() {
    let dir = acme();
    let d = dir.to_str().unwrap();
    let out = warden(&["graph", d, "--format", "json"]);
    assert_eq!(out.status.code(), Some(0));
    let g = json_of(&out);
    let nodes = g["nodes"].as_array().unwrap();
    assert!(
        nodes
            .iter()
            .any(|n| n["id"] == "agent:support-triage" && n["kind"] == "agent")
    );
    assert!(
        g["edges"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "CanInvoke"
                && e["from"] == "agent:outreach-agent"
                && e["to"] == "tool:mail.send_email"
                && e["gated_by"] == "gate:outbound-email"
                && e["traversable"] == false)
    );

    let out = warden(&["graph", d, "--format", "dot"]);
    let dot = String::from_utf8(out.stdout).unwrap();
    assert!(dot.starts_with("digraph warden {") && dot.trim_end().ends_with('}'));
    assert!(dot.contains("\"agent:support-triage\" -> \"tool:slack.post_message\""));

    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("og.json");
    let out = warden(&[
        "graph",
        d,
        "--iam",
        iam().to_str().unwrap(),
        "--format",
        "opengraph",
        "-o",
        file.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let og: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(og["metadata"]["source_kind"], "Warden");
    let ids: std::collections::HashSet<&str> = og["graph"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap())
        .collect();
    for e in og["graph"]["edges"].as_array().unwrap() {
        assert!(ids.contains(e["start"]["value"].as_str().unwrap()));
        assert!(ids.contains(e["end"]["value"].as_str().unwrap()));
    }
    assert!(ids.contains("iam:arn:aws:iam::111122223333:role/acme-deploy-lambda"));
}

#[test]
fn graph_paths_counts_shows_and_cuts() {
    let out = warden(&[
        "graph",
        "paths",
        acme().to_str().unwrap(),
        "--from",
        "resource:support-inbox",
        "--to",
        "resource:payments-ledger",
        "--format",
        "json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let p = json_of(&out);
    assert!(p["paths"].as_u64().unwrap() >= 1);
    assert!(
        p["shortest_rendered"]
            .as_str()
            .unwrap()
            .starts_with("resource:support-inbox -")
    );
    assert!(!p["cut"].as_array().unwrap().is_empty());
    assert_eq!(p["paths_after_cut"], 0);

    let out = warden(&[
        "graph",
        "paths",
        acme().to_str().unwrap(),
        "--from",
        "agent:nobody",
        "--to",
        "resource:crm-db",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no node `agent:nobody`"));
}

#[test]
fn findings_as_sarif() {
    let out = warden(&["findings", acme().to_str().unwrap(), "--format", "sarif"]);
    assert_eq!(out.status.code(), Some(1));
    let s = json_of(&out);
    assert_eq!(s["version"], "2.1.0");
    let results = s["runs"][0]["results"].as_array().unwrap();
    assert!(results.iter().any(|r| {
        r["ruleId"] == "graph.lethal-trifecta"
            && r["level"] == "error"
            && r["locations"][0]["physicalLocation"]["region"]["startLine"]
                .as_u64()
                .unwrap()
                > 0
    }));
    let rules = s["runs"][0]["tool"]["driver"]["rules"].as_array().unwrap();
    for r in results {
        assert!(rules.iter().any(|x| x["id"] == r["ruleId"]));
    }
}

#[test]
fn unusable_input_exits_2_with_a_clear_message() {
    let out = warden(&["findings", "/nonexistent/inventory"]);
    assert_eq!(out.status.code(), Some(2));

    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("iam.json");
    std::fs::write(&bad, "{\"Users\": []}").unwrap();
    let out = warden(&[
        "graph",
        acme().to_str().unwrap(),
        "--iam",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("iam.json") && err.contains("authorization-details"),
        "{err}"
    );

    let out = warden(&["findings", acme().to_str().unwrap(), "--fail-on", "bogus"]);
    assert_eq!(out.status.code(), Some(2));
}

/// `CanInvoke` edges come from the Cedar policies: forbidding the send removes the edge and
/// with it the trifecta, although the inventory still entitles the tool.
#[test]
fn a_cedar_forbid_removes_the_can_invoke_edge_and_the_trifecta() {
    let tmp = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(acme()).unwrap() {
        let p = entry.unwrap().path();
        if p.is_file() {
            std::fs::copy(&p, tmp.path().join(p.file_name().unwrap())).unwrap();
        }
    }
    let pol = tmp.path().join("policies");
    std::fs::create_dir(&pol).unwrap();
    for entry in std::fs::read_dir(acme().join("policies")).unwrap() {
        let p = entry.unwrap().path();
        std::fs::copy(&p, pol.join(p.file_name().unwrap())).unwrap();
    }
    let has_edge = |dir: &Path| {
        let out = warden(&["graph", dir.to_str().unwrap(), "--format", "json"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        json_of(&out)["edges"].as_array().unwrap().iter().any(|e| {
            e["kind"] == "CanInvoke"
                && e["from"] == "agent:support-triage"
                && e["to"] == "tool:slack.post_message"
        })
    };
    assert!(has_edge(tmp.path()));
    std::fs::write(
        pol.join("no-slack-for-triage.cedar"),
        "@id(\"no-slack-for-triage\")\n@reason(\"triage never posts to shared channels\")\nforbid (principal == Agent::\"support-triage\", action == Action::\"slack.post_message\", resource);\n",
    )
    .unwrap();
    assert!(!has_edge(tmp.path()), "forbidden tool has no edge");
    let (_, after) = findings_json(tmp.path());
    assert!(by(&after, "graph.lethal-trifecta", "agent:support-triage").is_none());
    assert!(
        by(
            &after,
            "graph.lethal-trifecta",
            "agent:legacy-reporting-bot"
        )
        .is_some()
    );
}

/// `--scan`: the scanner's findings join the report, and a secret in an agent's code becomes
/// a credential node that agent holds.
#[test]
fn findings_with_scan_include_scanner_results_and_credential_nodes() {
    let dir = acme();
    let d = dir.to_str().unwrap();
    let out = warden(&["findings", d, "--scan", d, "--format", "json"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = json_of(&out);
    let list = doc["findings"].as_array().unwrap();
    let secrets: Vec<&Value> = list
        .iter()
        .filter(|f| f["rule_id"].as_str().unwrap().starts_with("scan.secret."))
        .collect();
    assert!(!secrets.is_empty(), "acme's planted key is reported");
    assert!(list.iter().any(|f| f["rule_id"] == "graph.lethal-trifecta"));

    let out = warden(&["graph", d, "--scan", d, "--format", "json"]);
    let g = json_of(&out);
    let held: Vec<&Value> = g["edges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["kind"] == "HoldsCredential"
                && e["from"].as_str().unwrap().starts_with("agent:")
                && e["to"].as_str().unwrap().starts_with("credential:scan:")
        })
        .collect();
    assert!(
        !held.is_empty(),
        "a scanned secret in agent code is held by that agent"
    );
}

/// `--scan` on acme: the client config at the repository root becomes connector nodes — the
/// servers matching inventory connectors merge into them, `github` is undeclared and holds
/// the token written inline.
#[test]
fn scan_turns_acme_client_config_servers_into_connectors() {
    let dir = acme();
    let d = dir.to_str().unwrap();
    let out = warden(&["graph", d, "--scan", d, "--format", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let g = json_of(&out);
    let node = |id: &str| {
        g["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["id"] == id)
            .cloned()
    };
    let gh = node("connector:scan:.mcp.json:github").expect("undeclared server node");
    assert_eq!(gh["props"]["declared"], "false");
    assert_eq!(gh["props"]["client"], "claude-code");
    let shell = node("connector:shell").unwrap();
    assert_eq!(shell["props"]["client_configs"], ".mcp.json:shell");
    assert!(
        node("connector:scan:.mcp.json:shell").is_none(),
        "merged, not duplicated"
    );
    let edges = g["edges"].as_array().unwrap();
    assert!(edges.iter().any(|e| {
        e["from"] == "connector:scan:.mcp.json:github"
            && e["kind"] == "HoldsCredential"
            && e["to"]
                .as_str()
                .unwrap()
                .starts_with("credential:scan:.mcp.json:")
    }));

    let out = warden(&["findings", d, "--scan", d, "--format", "json"]);
    let doc = json_of(&out);
    let f = by(
        &doc,
        "graph.undeclared-connector",
        "connector:scan:.mcp.json:github",
    )
    .expect("undeclared connector finding");
    assert_eq!(f["severity"], "high");
    assert!(by(&doc, "graph.undeclared-connector", "connector:shell").is_none());
}

fn graph_scan_fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/graph-scan")
}

/// The token the fixture's `pay` connector reads from the environment; also hardcoded in
/// the fixture agent's code (fake).
const PAY_TOKEN: &str = "sk_live_Rv8T2mQxK4nW7pZc3LbY9hFd6GsJ";

fn scan_fixture_findings(pay_token: Option<&str>) -> Value {
    let dir = graph_scan_fixture();
    let d = dir.to_str().unwrap();
    let iam = dir.join("iam.json");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_warden"));
    cmd.args(["findings", d, "--iam", iam.to_str().unwrap(), "--scan", d])
        .args(["--format", "json"])
        .env_remove("GRAPH_SCAN_PAY_TOKEN");
    if let Some(t) = pay_token {
        cmd.env("GRAPH_SCAN_PAY_TOKEN", t);
    }
    let out = cmd.output().expect("warden runs");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    json_of(&out)
}

fn chains(doc: &Value) -> Vec<String> {
    doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule_id"] == "graph.credential-chain-escalation")
        .map(|f| f["message"].as_str().unwrap().to_string())
        .collect()
}

/// Scanned secrets authenticate as identities by fingerprint: an AWS key id listed in the
/// IAM export's `AccessKeyMetadata`, and a token equal to the value of an inventory
/// connector's `${env:…}` reference. Each opens a credential chain the cut closes; the
/// undeclared server in the agent's client config is used by that agent.
#[test]
fn scan_links_agent_code_secrets_and_client_configs_to_identities() {
    let doc = scan_fixture_findings(Some(PAY_TOKEN));
    let c = chains(&doc);
    let aws = c
        .iter()
        .find(|m| m.contains("settings.py:4") && m.contains("deploy-bot"))
        .unwrap_or_else(|| panic!("AWS key chain: {c:?}"));
    assert!(aws.contains("agent `helper`"));
    assert!(
        c.iter()
            .any(|m| m.contains("settings.py:5") && m.contains("svc-pay")),
        "payments token chain: {c:?}"
    );
    let f = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| {
            f["rule_id"] == "graph.credential-chain-escalation"
                && f["message"].as_str().unwrap().contains("settings.py:4")
        })
        .unwrap();
    let r = &f["remediation"];
    assert_eq!(r["cut_found"], true);
    assert_eq!(r["paths_after"], 0);
    assert_eq!(r["cut"][0]["action"], "remove_secret");
    assert_eq!(r["cut"][0]["secret"], "agents/helper/settings.py:4");
    let u = by(
        &doc,
        "graph.undeclared-connector",
        "connector:scan:agents/helper/.mcp.json:github",
    )
    .expect("undeclared server in the agent's config");
    let ev: Vec<&str> = u["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert!(
        ev.contains(&"path: agent:helper -Uses-> connector:scan:agents/helper/.mcp.json:github"),
        "{ev:?}"
    );
    assert_eq!(u["remediation"]["cut"][0]["action"], "remove_mcp_server");
    assert_eq!(u["remediation"]["cut"][0]["server"], "github");

    // Without the environment value there is nothing to compare the token with: only the
    // AWS key (and the agent's direct use of the payments server) link to identities.
    let doc = scan_fixture_findings(None);
    let c = chains(&doc);
    assert!(c.iter().any(|m| m.contains("settings.py:4")));
    assert!(
        !c.iter().any(|m| m.contains("settings.py:5")),
        "token not linked without its value: {c:?}"
    );
    // A different value in the environment does not link either.
    let doc = scan_fixture_findings(Some("sk_live_SomethingElseEntirely0123456"));
    assert!(!chains(&doc).iter().any(|m| m.contains("settings.py:5")));
}
