//! Every governance check, each with a manifest that trips it and one that does not.

use std::collections::BTreeSet;

use warden_core::check::{check, check_with};
use warden_core::{CoreError, Finding, Inventory, Severity};

/// A small, clean organisation the tests mutate.
const BASE: &str = r#"
groups:
  - { id: leads }
  - { id: ops }
humans:
  - { id: alice, groups: [leads] }
  - { id: bob, groups: [leads] }
  - { id: olga, groups: [ops] }
identities:
  - { id: svc, kind: service_account, access: [db] }
resources:
  - { id: db, sensitivity: restricted }
connectors:
  - id: crm
    mcp: { command: "python3", args: ["crm.py"] }
    tools:
      read: { effects: [read] }
      delete: { effects: [write], irreversible: true }
approvals:
  - id: deletes
    when: { irreversible: true }
    approvers: [group:leads]
agents:
  - id: helper
    owner: olga
    runs_as: svc
    uses: [crm.read, crm.delete]
"#;

fn load(extra: &str) -> Inventory {
    Inventory::from_manifests([("base.yaml", BASE), ("extra.yaml", extra)]).expect("loads")
}

fn rules(findings: &[Finding]) -> Vec<&str> {
    findings.iter().map(|f| f.rule_id.as_str()).collect()
}

fn with_rule<'a>(findings: &'a [Finding], rule: &str) -> Vec<&'a Finding> {
    findings.iter().filter(|f| f.rule_id == rule).collect()
}

#[test]
fn base_organisation_is_clean() {
    let f = check(&load(""));
    assert!(f.is_empty(), "unexpected findings: {f:#?}");
}

#[test]
fn agent_without_owner_is_orphaned() {
    let f = check(&load("agents:\n  - id: stray\n    uses: [crm.read]\n"));
    let hits = with_rule(&f, "check.orphaned-agent");
    assert_eq!(hits.len(), 1, "{f:#?}");
    assert_eq!(hits[0].subject.as_deref(), Some("stray"));
    assert_eq!(hits[0].severity, Severity::High);
    let loc = hits[0].location.as_ref().unwrap();
    assert_eq!(loc.file.to_str(), Some("extra.yaml"));
    assert_eq!(loc.line, 2);
}

#[test]
fn agent_owned_by_unknown_human_is_orphaned() {
    let f = check(&load("agents:\n  - id: stray\n    owner: mallory\n"));
    let hits = with_rule(&f, "check.orphaned-agent");
    assert_eq!(hits.len(), 1);
    assert!(hits[0].message.contains("mallory"));
    assert_eq!(hits[0].location.as_ref().unwrap().line, 3);
}

#[test]
fn agent_with_known_owner_is_not_orphaned() {
    let f = check(&load("agents:\n  - id: fine\n    owner: bob\n"));
    assert!(with_rule(&f, "check.orphaned-agent").is_empty(), "{f:#?}");
}

#[test]
fn ungated_high_risk_tools_are_reported() {
    let extra = r#"
connectors:
  - id: mail
    mcp: { url: "http://127.0.0.1:9100/mcp" }
    tools:
      send: { effects: [external_send] }
      shell: { effects: [code_exec] }
      refund: { effects: [write, privileged], irreversible: true }
      read: { effects: [read] }
"#;
    let f = check(&load(extra));
    let hits = with_rule(&f, "check.ungated-irreversible-action");
    let subjects: BTreeSet<&str> = hits.iter().filter_map(|f| f.subject.as_deref()).collect();
    assert_eq!(
        subjects,
        BTreeSet::from(["mail.send", "mail.shell"]),
        "irreversible refund is covered by the `deletes` rule; read is harmless: {f:#?}"
    );
}

#[test]
fn irreversible_tool_without_any_rule_is_critical_when_privileged() {
    let inv = Inventory::from_manifests([(
        "a.yaml",
        r#"
connectors:
  - id: pay
    mcp: { command: "python3", args: ["pay.py"] }
    tools:
      refund: { effects: [write, privileged], irreversible: true }
"#,
    )])
    .unwrap();
    let f = check(&inv);
    let hits = with_rule(&f, "check.ungated-irreversible-action");
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].severity, Severity::Critical);
    // A Cedar @approval policy covering the tool counts as a gate.
    let gated = BTreeSet::from(["pay.refund".to_string()]);
    assert!(
        with_rule(
            &check_with(&inv, &gated),
            "check.ungated-irreversible-action"
        )
        .is_empty()
    );
}

#[test]
fn approval_rule_by_tool_name_covers_the_tool() {
    let extra = r#"
connectors:
  - id: mail
    mcp: { url: "http://127.0.0.1:9100/mcp" }
    tools:
      send: { effects: [external_send] }
approvals:
  - id: mail-out
    when: { tools: [mail.send] }
    approvers: [group:leads]
"#;
    let f = check(&load(extra));
    assert!(
        with_rule(&f, "check.ungated-irreversible-action").is_empty(),
        "{f:#?}"
    );
}

#[test]
fn handoff_without_allow_list_or_ttl() {
    let extra = r#"
agents:
  - id: second
    owner: bob
    handoffs:
      - to: helper
"#;
    let f = check(&load(extra));
    assert_eq!(with_rule(&f, "check.handoff-unbounded-context").len(), 1);
    assert_eq!(with_rule(&f, "check.handoff-no-ttl").len(), 1);
    assert_eq!(
        with_rule(&f, "check.handoff-no-ttl")[0]
            .location
            .as_ref()
            .unwrap()
            .line,
        6
    );
}

#[test]
fn bounded_handoff_is_clean_and_bad_ttl_is_reported() {
    let good = "agents:\n  - id: second\n    owner: bob\n    handoffs:\n      - { to: helper, context: [ticket_id], ttl: 15m }\n";
    let f = check(&load(good));
    assert!(
        !rules(&f).iter().any(|r| r.starts_with("check.handoff")),
        "{f:#?}"
    );

    let bad = "handoffs:\n  - { from: helper, to: helper, context: [], ttl: soon }\n";
    let f = check(&load(bad));
    assert_eq!(with_rule(&f, "check.invalid-duration").len(), 1, "{f:#?}");
}

#[test]
fn dangling_entitlements() {
    let extra = r#"
agents:
  - id: greedy
    owner: bob
    uses: [crm.read, crm.export_all, billing.charge, nodot]
"#;
    let f = check(&load(extra));
    let hits = with_rule(&f, "check.dangling-entitlement");
    assert_eq!(hits.len(), 3, "{f:#?}");
    let msgs: Vec<&str> = hits.iter().map(|h| h.message.as_str()).collect();
    assert!(msgs.iter().any(|m| m.contains("has no tool `export_all`")));
    assert!(
        msgs.iter()
            .any(|m| m.contains("connector `billing` does not exist"))
    );
    assert!(msgs.iter().any(|m| m.contains("not of the form")));
}

#[test]
fn wildcard_entitlement_is_not_dangling() {
    let f = check(&load(
        "agents:\n  - id: all\n    owner: bob\n    uses: [crm.*]\n",
    ));
    assert!(
        with_rule(&f, "check.dangling-entitlement").is_empty(),
        "{f:#?}"
    );
}

#[test]
fn other_dangling_references() {
    let extra = r#"
agents:
  - id: lost
    owner: bob
    runs_as: nobody
    reads: [no-such-memory]
"#;
    let f = check(&load(extra));
    assert_eq!(with_rule(&f, "check.dangling-reference").len(), 2, "{f:#?}");
}

#[test]
fn owner_among_approvers_with_separation_of_duties() {
    // alice owns an agent that deletes, and alice is a lead: SoD conflict (bob remains: medium).
    let extra = "agents:\n  - id: alices\n    owner: alice\n    uses: [crm.delete]\n";
    let f = check(&load(extra));
    let hits = with_rule(&f, "check.sod-owner-approver");
    assert_eq!(hits.len(), 1, "{f:#?}");
    assert_eq!(hits[0].severity, Severity::Medium);
    assert!(hits[0].message.contains("alice"));
}

#[test]
fn owner_as_only_approver_makes_approval_impossible() {
    let inv = Inventory::from_manifests([(
        "a.yaml",
        r#"
groups: [{ id: solo }]
humans: [{ id: alice, groups: [solo] }]
connectors:
  - id: crm
    mcp: { command: "python3", args: ["crm.py"] }
    tools: { delete: { effects: [write], irreversible: true } }
approvals:
  - { id: deletes, when: { irreversible: true }, approvers: [group:solo] }
agents:
  - { id: a, owner: alice, uses: [crm.delete] }
"#,
    )])
    .unwrap();
    let f = check(&inv);
    let hits = with_rule(&f, "check.sod-owner-approver");
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].severity, Severity::High);
}

#[test]
fn no_sod_conflict_without_separation_of_duties() {
    let extra = r#"
approvals:
  - id: relaxed
    when: { tools: [crm.read] }
    approvers: [group:leads]
    separation_of_duties: false
agents:
  - { id: alices, owner: alice, uses: [crm.read] }
"#;
    let f = check(&load(extra));
    assert!(
        with_rule(&f, "check.sod-owner-approver").is_empty(),
        "{f:#?}"
    );
}

#[test]
fn approval_rule_without_humans() {
    let extra = "groups: [{ id: empty }]\napprovals:\n  - { id: nobody, when: { effects: [write] }, approvers: [group:empty] }\n";
    let f = check(&load(extra));
    assert_eq!(
        with_rule(&f, "check.approval-without-approvers").len(),
        1,
        "{f:#?}"
    );
}

#[test]
fn unpinned_and_plain_http_connectors() {
    let extra = r#"
connectors:
  - id: shell
    mcp: { command: npx, args: ["-y", "@acme-labs/shell-mcp"] }
  - id: pinned
    mcp: { command: npx, args: ["-y", "@acme-labs/shell-mcp@1.0.3"] }
  - id: remote
    mcp: { url: "http://mcp.vendor.example/mcp" }
"#;
    let f = check(&load(extra));
    let unpinned = with_rule(&f, "check.unpinned-mcp-server");
    assert_eq!(unpinned.len(), 1);
    assert_eq!(unpinned[0].subject.as_deref(), Some("shell"));
    let http = with_rule(&f, "check.insecure-transport");
    assert_eq!(http.len(), 1);
    assert_eq!(http[0].subject.as_deref(), Some("remote"));
}

#[test]
fn unknown_field_names_file_line_column() {
    let err = Inventory::from_manifests([("typo.yaml", "agents:\n  - id: a\n    ownr: x\n")])
        .unwrap_err();
    let CoreError::Manifest {
        location, message, ..
    } = &err
    else {
        panic!("expected a manifest error, got {err:?}");
    };
    assert_eq!(location.file.to_str(), Some("typo.yaml"));
    assert_eq!((location.line, location.column), (3, 5));
    assert!(message.contains("unknown field `ownr`"), "{message}");
    assert!(err.to_string().starts_with("typo.yaml:3:5:"), "{err}");
}

#[test]
fn type_error_names_file_line_column() {
    let err = Inventory::from_manifests([(
        "t.yaml",
        "connectors:\n  - id: c\n    tools:\n      x: { effects: [teleport] }\n",
    )])
    .unwrap_err();
    let loc = err.location().expect("has a location");
    assert_eq!(loc.line, 4);
    assert!(err.to_string().contains("teleport"), "{err}");
}

#[test]
fn duplicate_ids_across_files_are_errors() {
    let err = Inventory::from_manifests([
        ("a.yaml", "agents: [{ id: x, owner: o }]\n"),
        ("b.yaml", "agents: [{ id: x, owner: o }]\n"),
    ])
    .unwrap_err();
    assert!(matches!(err, CoreError::Duplicate { .. }), "{err:?}");
    assert!(err.to_string().contains("b.yaml:1"), "{err}");
}

#[test]
fn connector_ids_with_dots_are_rejected() {
    let err =
        Inventory::from_manifests([("a.yaml", "connectors: [{ id: a.b, mcp: { command: x } }]\n")])
            .unwrap_err();
    assert!(matches!(err, CoreError::InvalidId { .. }), "{err:?}");
}

#[test]
fn load_reads_manifests_and_policies_from_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("org.yaml"), "humans: [{ id: a }]\n").unwrap();
    std::fs::create_dir_all(dir.path().join("inventory/team")).unwrap();
    std::fs::write(
        dir.path().join("inventory/team/agents.yml"),
        "agents: [{ id: x, owner: a }]\n",
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("policies")).unwrap();
    std::fs::write(
        dir.path().join("policies/p.cedar"),
        "permit(principal, action, resource);",
    )
    .unwrap();
    // Not manifests: test cases and agent code.
    std::fs::create_dir(dir.path().join("tests")).unwrap();
    std::fs::write(dir.path().join("tests/t.yaml"), "cases: []\n").unwrap();
    std::fs::create_dir(dir.path().join("agents")).unwrap();
    std::fs::write(dir.path().join("agents/config.yaml"), "whatever: 1\n").unwrap();

    let inv = Inventory::load(dir.path()).expect("loads");
    assert_eq!(inv.manifest_files.len(), 2);
    assert!(inv.agents.contains_key("x"));
    assert_eq!(inv.policies.len(), 1);
    assert!(check(&inv).is_empty());
}

#[test]
fn handoff_passing_credentials_is_reported() {
    let extra = "agents:\n  - id: second\n    owner: bob\n    handoffs:\n      - { to: helper, context: [ticket_id, crm_api_token], ttl: 5m }\n";
    let f = check(&load(extra));
    let hits = with_rule(&f, "check.handoff-credential-in-context");
    assert_eq!(hits.len(), 1, "{f:#?}");
    assert!(hits[0].message.contains("crm_api_token"));
}

#[test]
fn handoff_depth_over_the_organisation_limit() {
    let over = "settings: { max_delegation_depth: 2 }\nagents:\n  - id: second\n    owner: bob\n    handoffs:\n      - { to: helper, context: [k], ttl: 5m, max_depth: 3 }\n";
    assert_eq!(
        with_rule(&check(&load(over)), "check.handoff-depth-over-limit").len(),
        1
    );
    let within = over.replace("max_depth: 3", "max_depth: 2");
    assert!(with_rule(&check(&load(&within)), "check.handoff-depth-over-limit").is_empty());
}

#[test]
fn connector_named_warden_is_reserved() {
    let inv = load(
        "connectors:\n  - id: warden\n    mcp: { command: python3, args: [w.py] }\n    tools: { handoff: { effects: [read] } }\n",
    );
    let f = check(&inv);
    let hits = with_rule(&f, "check.reserved-connector-id");
    assert_eq!(hits.len(), 1, "{:?}", rules(&f));
    assert_eq!(hits[0].severity, Severity::High);
    assert!(with_rule(&check(&load("")), "check.reserved-connector-id").is_empty());
}
