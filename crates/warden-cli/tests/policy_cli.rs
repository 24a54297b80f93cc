//! `warden policy …` and the policy side of `warden check`, as a user runs them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn warden(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(args)
        .output()
        .expect("warden runs")
}

fn acme() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/acme")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

/// A copy of the example organisation to modify.
fn acme_copy() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    copy_dir(&acme(), t.path());
    t
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn policy_test_passes_on_the_example_org() {
    let out = warden(&["policy", "test", acme().to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let text = stdout(&out);
    assert!(text.contains("refund over the limit needs a finance lead"));
    assert!(!text.contains("FAIL"));
    let out = warden(&[
        "policy",
        "test",
        acme().to_str().unwrap(),
        "--format",
        "json",
    ]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["summary"]["failed"], 0);
    assert!(doc["summary"]["total"].as_u64().unwrap() >= 14);
}

#[test]
fn a_wrong_expectation_fails_the_suite_with_exit_1() {
    let t = acme_copy();
    let suite = t.path().join("tests/policy-suite.yaml");
    let text = std::fs::read_to_string(&suite).unwrap();
    // The refund under the limit is allowed; claim it is denied.
    let text = text.replacen(
        "args: { charge_id: ch_123, amount: 120 }\n    expect: allow",
        "args: { charge_id: ch_123, amount: 120 }\n    expect: deny",
        1,
    );
    std::fs::write(&suite, text).unwrap();
    let out = warden(&["policy", "test", t.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).contains("FAIL"));
    assert!(stdout(&out).contains("expected deny, got allow"));
}

#[test]
fn decide_json_names_approvers_and_policies_with_lines() {
    let out = warden(&[
        "policy",
        "decide",
        acme().to_str().unwrap(),
        "--agent",
        "refund-agent",
        "--tool",
        "payments.issue_refund",
        "--args",
        r#"{"charge_id":"ch_1","amount":900}"#,
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let d: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(d["outcome"], "needs_approval");
    assert_eq!(d["approvers"], serde_json::json!(["group:finance-leads"]));
    assert_eq!(d["ttl_seconds"], 1800);
    let p = d["policies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "refunds-over-limit")
        .expect("refunds-over-limit determines the decision");
    assert!(p["file"].as_str().unwrap().ends_with("refunds.cedar"));
    // The policy's first line (its `@id`) in examples/acme/policies/refunds.cedar.
    let src = std::fs::read_to_string(acme().join("policies/refunds.cedar")).unwrap();
    let line = src
        .lines()
        .position(|l| l.contains("@id(\"refunds-over-limit\")"))
        .unwrap()
        + 1;
    assert_eq!(p["line"], line as u64);
}

#[test]
fn decide_tainted_and_time_flags_change_the_outcome() {
    let dir = acme();
    let run = |extra: &[&str]| {
        let mut a = vec![
            "policy",
            "decide",
            dir.to_str().unwrap(),
            "--format",
            "json",
        ];
        a.extend_from_slice(extra);
        let out = warden(&a);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let d: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        d["outcome"].as_str().unwrap().to_string()
    };
    let slack = [
        "--agent",
        "support-triage",
        "--tool",
        "slack.post_message",
        "--args",
        r##"{"channel":"#x","text":"hi"}"##,
    ];
    assert_eq!(run(&slack), "allow");
    let mut tainted = slack.to_vec();
    tainted.push("--tainted");
    assert_eq!(run(&tainted), "needs_approval");
    let order = [
        "--agent",
        "treasury-agent",
        "--tool",
        "market.place_order",
        "--args",
        r#"{"symbol":"A","side":"buy","quantity":1}"#,
    ];
    let mut sat = order.to_vec();
    sat.extend_from_slice(&["--time", "2026-11-21T15:00:00Z"]);
    assert_eq!(run(&sat), "deny");
    let mut mon = order.to_vec();
    mon.extend_from_slice(&["--time", "2026-11-23T15:00:00Z"]);
    assert_eq!(run(&mon), "needs_approval");
}

#[test]
fn decide_rejects_bad_input_with_exit_2() {
    let dir = acme();
    for args in [
        vec!["--agent", "refund-agent", "--tool", "nodot"],
        vec![
            "--agent",
            "refund-agent",
            "--tool",
            "payments.issue_refund",
            "--args",
            "{not json",
        ],
        vec![
            "--agent",
            "refund-agent",
            "--tool",
            "payments.issue_refund",
            "--time",
            "tomorrow",
        ],
    ] {
        let mut a = vec!["policy", "decide", dir.to_str().unwrap()];
        a.extend(args.iter());
        let out = warden(&a);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(stderr(&out).contains("error:"));
    }
}

#[test]
fn broken_policy_fails_validation_and_check_with_file_and_line() {
    let t = acme_copy();
    std::fs::write(
        t.path().join("policies/broken.cedar"),
        "// a typo in an attribute name\n@id(\"typo\")\nforbid (principal, action, resource is Tool)\nwhen { resource.irreversable };\n",
    )
    .unwrap();
    let dir = t.path().to_str().unwrap();
    let out = warden(&["policy", "validate", dir]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("broken.cedar:4:"), "{err}");
    assert!(err.contains("irreversable"), "{err}");

    let out = warden(&["check", dir]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(stderr(&out).contains("broken.cedar:4:"));

    let out = warden(&["check", dir, "--format", "json"]);
    assert_eq!(out.status.code(), Some(2));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["errors"][0]["location"]["line"], 4);
    assert_eq!(doc["errors"][0]["policy"], "typo");
}

#[test]
fn check_counts_approval_annotated_policies_as_gates() {
    let out = warden(&["check", acme().to_str().unwrap(), "--format", "json"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ungated: Vec<&str> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule_id"] == "check.ungated-irreversible-action")
        .map(|f| f["subject"].as_str().unwrap())
        .collect();
    // refunds.cedar gates refunds with @approval; nothing gates crm.delete_customer.
    assert!(!ungated.contains(&"payments.issue_refund"), "{ungated:?}");
    assert!(ungated.contains(&"crm.delete_customer"), "{ungated:?}");

    // Without the policy files, the refund tool is ungated again.
    let t = acme_copy();
    std::fs::remove_dir_all(t.path().join("policies")).unwrap();
    let out = warden(&["check", t.path().to_str().unwrap(), "--format", "json"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(doc["findings"].as_array().unwrap().iter().any(|f| {
        f["rule_id"] == "check.ungated-irreversible-action"
            && f["subject"] == "payments.issue_refund"
    }));
}

#[test]
fn schema_lists_entity_types_and_tool_actions() {
    let out = warden(&["policy", "schema", acme().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let s = stdout(&out);
    for needle in [
        "entity Agent",
        "entity Tool in [Connector]",
        r#"action "payments.issue_refund" in ["write", "privileged", "irreversible"]"#,
        r#""amount": Long"#,
        r#"action "handoff""#,
    ] {
        assert!(s.contains(needle), "missing {needle}");
    }
}

#[test]
fn diff_shows_what_a_policy_change_does() {
    let t = tempfile::tempdir().unwrap();
    let src = acme().join("policies");
    for e in std::fs::read_dir(&src).unwrap() {
        let p = e.unwrap().path();
        let text = std::fs::read_to_string(&p).unwrap();
        // Drop the rule of two, raise the unattended refund limit.
        if p.file_name().unwrap() == "rule-of-two.cedar" {
            continue;
        }
        let text = text.replace("context.args.amount > 500", "context.args.amount > 2000");
        std::fs::write(t.path().join(p.file_name().unwrap()), text).unwrap();
    }
    let out = warden(&[
        "policy",
        "diff",
        acme().to_str().unwrap(),
        "--against",
        t.path().to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let changes = doc["changes"].as_array().unwrap();
    let has = |a: &str, t: &str| changes.iter().any(|c| c["agent"] == a && c["tool"] == t);
    assert!(has("refund-agent", "payments.issue_refund"));
    assert!(has("support-triage", "slack.post_message"));
    assert!(!has("coding-agent", "repo.read_file"));
    let slack = changes
        .iter()
        .find(|c| c["tool"] == "slack.post_message" && c["agent"] == "support-triage")
        .unwrap();
    assert_eq!(slack["before"]["outcome"], "depends");
    assert_eq!(slack["after"]["outcome"], "allow");
    // --fail-on-change turns changes into exit 1; identical policies exit 0.
    let out = warden(&[
        "policy",
        "diff",
        acme().to_str().unwrap(),
        "--against",
        t.path().to_str().unwrap(),
        "--fail-on-change",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let out = warden(&[
        "policy",
        "diff",
        acme().to_str().unwrap(),
        "--against",
        acme().to_str().unwrap(),
        "--fail-on-change",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}
