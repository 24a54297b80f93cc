//! `warden check` as a user runs it: exit codes, JSON shape, file:line in findings and errors.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn warden(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(args)
        .output()
        .expect("warden runs")
}

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/acme")
}

#[test]
fn example_org_reports_orphan_and_ungated_irreversible_action_with_file_and_line() {
    let dir = example();
    let out = warden(&["check", dir.to_str().unwrap(), "--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "high findings fail by default");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    let findings = doc["findings"].as_array().expect("findings array");
    let find = |rule: &str, subject: &str| {
        findings
            .iter()
            .find(|f| f["rule_id"] == rule && f["subject"] == subject)
            .unwrap_or_else(|| panic!("no {rule} for {subject} in {findings:#?}"))
    };
    let orphan = find("check.orphaned-agent", "legacy-reporting-bot");
    assert!(
        orphan["location"]["file"]
            .as_str()
            .unwrap()
            .ends_with("agents.yaml")
    );
    assert!(orphan["location"]["line"].as_u64().unwrap() > 0);
    let ungated = find("check.ungated-irreversible-action", "crm.delete_customer");
    assert!(
        ungated["location"]["file"]
            .as_str()
            .unwrap()
            .ends_with("connectors.yaml")
    );
    assert!(ungated["location"]["line"].as_u64().unwrap() > 0);
    assert!(!ungated["fix"].as_str().unwrap().is_empty());
    assert_eq!(
        doc["summary"]["total"].as_u64().unwrap() as usize,
        findings.len()
    );
}

#[test]
fn fail_on_threshold_sets_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    // Only a medium finding: a handoff without TTL.
    std::fs::write(
        dir.path().join("org.yaml"),
        "humans: [{ id: a }]\nagents:\n  - { id: x, owner: a, handoffs: [{ to: y, context: [k] }] }\n  - { id: y, owner: a }\n",
    )
    .unwrap();
    let d = dir.path().to_str().unwrap();
    assert_eq!(warden(&["check", d]).status.code(), Some(0));
    assert_eq!(
        warden(&["check", d, "--fail-on", "medium"]).status.code(),
        Some(1)
    );
    assert_eq!(
        warden(&["check", d, "--fail-on", "bogus"]).status.code(),
        Some(2)
    );
}

#[test]
fn clean_inventory_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("org.yaml"),
        "humans: [{ id: a }]\nagents: [{ id: x, owner: a }]\n",
    )
    .unwrap();
    let out = warden(&["check", dir.path().to_str().unwrap(), "--format", "json"]);
    assert_eq!(out.status.code(), Some(0));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["findings"].as_array().unwrap().len(), 0);
}

#[test]
fn typo_in_manifest_exits_two_naming_file_line_column() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("agents.yaml");
    std::fs::write(&file, "agents:\n  - id: a\n    ownr: alice\n").unwrap();
    let out = warden(&["check", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let expected = format!("{}:3:5", file.display());
    assert!(
        err.contains(&expected),
        "stderr should name {expected}: {err}"
    );
    assert!(err.contains("ownr"), "{err}");

    let out = warden(&["check", dir.path().to_str().unwrap(), "--format", "json"]);
    assert_eq!(out.status.code(), Some(2));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["error"]["location"]["line"], 3);
    assert_eq!(doc["error"]["location"]["column"], 5);
}

#[test]
fn missing_directory_is_unusable_input() {
    let out = warden(&["check", "/nonexistent/warden-inventory"]);
    assert_eq!(out.status.code(), Some(2));
}
