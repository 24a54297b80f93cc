//! `warden scan` and `warden bom` as a user runs them: exit codes, formats, baselines.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn warden(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(args)
        .output()
        .expect("run warden")
}

fn acme() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/acme")
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

const GH: &str = "ghp_R8x2Lq9Vt4Mn7Kp1Ws5Zc3Hb6Fd0Jg2Ya8Eu";

#[test]
fn scan_acme_finds_key_unpinned_server_and_shell_tool() {
    let acme = acme();
    let out = warden(&["scan", acme.to_str().unwrap(), "--format", "json"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = json(&out);
    let findings = doc["findings"].as_array().unwrap();
    let has = |rule: &str, file: &str| {
        findings
            .iter()
            .any(|f| f["rule_id"] == rule && f["location"]["file"] == file)
    };
    assert!(has(
        "scan.secret.anthropic",
        "agents/support-triage/agent.py"
    ));
    assert!(has("scan.mcp.unpinned-package", ".mcp.json"));
    assert!(has(
        "scan.code.shell-on-model-output",
        "agents/coding-agent/src/agent.ts"
    ));
    assert_eq!(
        doc["summary"]["total"].as_u64().unwrap() as usize,
        findings.len()
    );
    assert!(doc["stats"]["files_scanned"].as_u64().unwrap() > 10);

    // Text output: redacted secret, one block per finding, the summary line.
    let text = warden(&["scan", acme.to_str().unwrap(), "--no-progress"]);
    let stdout = String::from_utf8_lossy(&text.stdout);
    let source = std::fs::read_to_string(acme.join("agents/support-triage/agent.py")).unwrap();
    let key = source
        .split('"')
        .find(|s| s.starts_with("sk-ant-api03-"))
        .unwrap();
    assert!(!stdout.contains(key));
    assert!(stdout.contains("scan.secret.anthropic"));
    assert!(stdout.contains("scanned "));
}

#[test]
fn sarif_output_is_a_2_1_0_log() {
    let out = warden(&["scan", acme().to_str().unwrap(), "--format", "sarif"]);
    assert_eq!(out.status.code(), Some(1));
    let doc = json(&out);
    assert_eq!(doc["version"], "2.1.0");
    let results = doc["runs"][0]["results"].as_array().unwrap();
    assert!(
        results
            .iter()
            .any(|r| r["ruleId"] == "scan.secret.anthropic")
    );
}

#[test]
fn fail_on_threshold_and_baseline() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("app.py"), format!("token = \"{GH}\"\n")).unwrap();
    let p = d.to_str().unwrap();
    // A critical secret fails at the default threshold...
    assert_eq!(warden(&["scan", p]).status.code(), Some(1));
    // ...and an `info`-only tree passes.
    let clean = tempfile::tempdir().unwrap();
    std::fs::write(clean.path().join("ok.py"), "print('hello')\n").unwrap();
    assert_eq!(
        warden(&["scan", clean.path().to_str().unwrap()])
            .status
            .code(),
        Some(0)
    );

    let baseline = d.join("warden-baseline.json");
    let b = baseline.to_str().unwrap();
    let w = warden(&["scan", p, "--write-baseline", b]);
    assert_eq!(w.status.code(), Some(0));
    let with_base = warden(&["scan", p, "--baseline", b, "--format", "json"]);
    assert_eq!(with_base.status.code(), Some(0));
    let doc = json(&with_base);
    assert_eq!(doc["findings"].as_array().unwrap().len(), 0);
    assert_eq!(doc["baselined"], 1);
    // A new secret still fails CI.
    std::fs::write(
        d.join("new.env"),
        "STRIPE_KEY=sk_live_4eC39HqLyjWDarjtT1zdp7dcQ\n",
    )
    .unwrap();
    let again = warden(&["scan", p, "--baseline", b, "--format", "json"]);
    assert_eq!(again.status.code(), Some(1));
    let doc = json(&again);
    let rules: Vec<&str> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule_id"].as_str().unwrap())
        .collect();
    assert_eq!(rules, vec!["scan.secret.stripe"]);
}

#[test]
fn unusable_input_exits_2() {
    let out = warden(&["scan", "/nonexistent/warden-scan-test"]);
    assert_eq!(out.status.code(), Some(2));
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("baseline.json");
    std::fs::write(&bad, "{not json").unwrap();
    let out = warden(&[
        "scan",
        dir.path().to_str().unwrap(),
        "--baseline",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("baseline"));
}

#[test]
fn bom_command_and_scan_bom_file() {
    let out = warden(&["bom", acme().to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = json(&out);
    assert_eq!(doc["bomFormat"], "CycloneDX");
    assert_eq!(doc["specVersion"], "1.6");
    let components = doc["components"].as_array().unwrap();
    let named = |t: &str, n: &str| components.iter().any(|c| c["type"] == t && c["name"] == n);
    assert!(named("library", "langgraph"));
    assert!(named("library", "openai-agents"));
    assert!(named("machine-learning-model", "claude-sonnet-4-5"));
    assert!(named("machine-learning-model", "gpt-4.1"));
    let services = doc["services"].as_array().unwrap();
    assert!(services.iter().any(|s| s["name"] == "shell"));

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bom.json");
    let scan = warden(&[
        "scan",
        acme().to_str().unwrap(),
        "--bom",
        file.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(scan.status.code(), Some(1));
    let written: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(written["components"], doc["components"]);
}
