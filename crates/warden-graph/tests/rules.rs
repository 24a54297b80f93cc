//! Each rule on small hand-built organisations: it fires, its evidence is the path, and its
//! proposed cut removes the paths when the analysis is re-run with the cut applied.

use warden_core::Inventory;
use warden_graph::rules::keys;
use warden_graph::{
    EdgeKind, EntitlementPolicy, Graph, GraphBuilder, GraphFinding, NodeKind, Options, View, build,
    findings,
};

fn org(yaml: &str) -> Graph {
    let inv = Inventory::from_manifests([("org.yaml", yaml)]).expect("valid manifest");
    build(&inv, &EntitlementPolicy)
}

fn run(g: &Graph) -> Vec<GraphFinding> {
    findings(&View::new(g), &Options::default())
}

fn find<'a>(fs: &'a [GraphFinding], rule: &str, subject: &str) -> Option<&'a GraphFinding> {
    fs.iter()
        .find(|f| f.finding.rule_id == rule && f.finding.subject.as_deref() == Some(subject))
}

/// Applies a finding's cut and re-runs every rule: the finding must be gone and the
/// remediation must report zero remaining paths.
fn assert_cut_removes(g: &Graph, f: &GraphFinding) {
    let r = f.remediation.as_ref().expect("finding has a remediation");
    assert!(r.cut_found, "a cut exists for {}", f.finding.message);
    assert!(!r.cut.is_empty());
    assert!(r.paths_before > 0);
    assert_eq!(r.paths_after, 0, "cut {:?} leaves paths", r.cut);
    let after = findings(&View::with_remedies(g, &r.cut), &Options::default());
    let subject = f.finding.subject.clone().unwrap_or_default();
    assert!(
        !keys(&after).contains(&(f.finding.rule_id.clone(), subject.clone())),
        "{} on {subject} still reported after applying {:?}",
        f.finding.rule_id,
        r.cut
    );
}

const TRIFECTA: &str = r#"
humans: [{ id: alice }]
resources:
  - { id: inbox, kind: untrusted_source, sensitivity: public }
  - { id: crm-db, kind: datastore, sensitivity: restricted }
  - { id: partner-chat, kind: external_sink }
connectors:
  - id: mail
    mcp: { url: "http://127.0.0.1:1/mcp" }
    tools:
      read: { effects: [read], untrusted_output: true, resources: [inbox] }
  - id: crm
    mcp: { url: "http://127.0.0.1:1/mcp" }
    tools:
      lookup: { effects: [read], resources: [crm-db] }
  - id: chat
    mcp: { url: "http://127.0.0.1:1/mcp" }
    tools:
      post: { effects: [external_send], resources: [partner-chat] }
agents:
  - { id: triage, owner: alice, uses: [mail.read, crm.lookup, chat.post] }
"#;

#[test]
fn lethal_trifecta_fires_with_full_path_and_a_cut_that_removes_it() {
    let g = org(TRIFECTA);
    let fs = run(&g);
    let f = find(&fs, "graph.lethal-trifecta", "agent:triage").expect("trifecta reported");
    let ev = f.finding.evidence.join("\n");
    assert!(
        ev.contains("resource:inbox -Influences[mail.read]-> agent:triage"),
        "{ev}"
    );
    assert!(
        ev.contains("agent:triage -CanInvoke-> tool:crm.lookup -HasAccessTo-> resource:crm-db"),
        "{ev}"
    );
    assert!(
        ev.contains("agent:triage -CanInvoke-> tool:chat.post -CanSendTo-> resource:partner-chat"),
        "{ev}"
    );
    let r = f.remediation.as_ref().unwrap();
    assert_eq!(r.cut.len(), 1, "one edit suffices: {:?}", r.cut);
    assert_cut_removes(&g, f);
}

#[test]
fn gated_external_send_is_not_a_trifecta_and_shows_its_gate() {
    let yaml = format!(
        "{TRIFECTA}approvals:\n  - {{ id: outbound, when: {{ tools: [chat.post] }}, approvers: [human:alice] }}\n"
    );
    let g = org(&yaml);
    let fs = run(&g);
    assert!(find(&fs, "graph.lethal-trifecta", "agent:triage").is_none());
    let tool = g.node_index("tool:chat.post").unwrap();
    let gate = g.node_index("gate:outbound").expect("gate node");
    assert_eq!(g.node(gate).kind, NodeKind::ApprovalGate);
    let inv_edge = g
        .inc(tool)
        .iter()
        .copied()
        .find(|&e| g.edge(e).kind == EdgeKind::CanInvoke)
        .unwrap();
    assert_eq!(g.edge(inv_edge).gate, Some(gate));
    assert!(
        g.out(tool)
            .iter()
            .any(|&e| g.edge(e).kind == EdgeKind::GatedBy && g.edge(e).to == gate)
    );
}

#[test]
fn unentitled_tools_have_no_can_invoke_edge() {
    let g = org(TRIFECTA);
    let a = g.node_index("agent:triage").unwrap();
    let tools: Vec<&str> = g
        .out(a)
        .iter()
        .filter(|&&e| g.edge(e).kind == EdgeKind::CanInvoke)
        .map(|&e| g.node(g.edge(e).to).id.as_str())
        .collect();
    assert_eq!(tools.len(), 3);
    let g2 = org(&TRIFECTA.replace(
        "uses: [mail.read, crm.lookup, chat.post]",
        "uses: [mail.read, crm.lookup]",
    ));
    let a2 = g2.node_index("agent:triage").unwrap();
    assert!(
        !g2.out(a2)
            .iter()
            .any(|&e| g2.node(g2.edge(e).to).id == "tool:chat.post")
    );
    assert!(find(&run(&g2), "graph.lethal-trifecta", "agent:triage").is_none());
}

#[test]
fn trifecta_across_a_handoff_chain() {
    let yaml = TRIFECTA.replace(
        "  - { id: triage, owner: alice, uses: [mail.read, crm.lookup, chat.post] }",
        "  - { id: triage, owner: alice, uses: [mail.read, crm.lookup], handoffs: [{ to: notifier, context: [id], ttl: 5m }] }\n  - { id: notifier, owner: alice, uses: [chat.post] }",
    );
    let g = org(&yaml);
    let fs = run(&g);
    assert!(find(&fs, "graph.lethal-trifecta", "agent:triage").is_none());
    let f = find(&fs, "graph.lethal-trifecta", "agent:notifier").expect("chain trifecta");
    let ev = f.finding.evidence.join("\n");
    assert!(
        ev.contains("agent:triage -HandsOffTo-> agent:notifier"),
        "{ev}"
    );
    assert!(ev.contains("handoff chain: triage → notifier"), "{ev}");
    assert_cut_removes(&g, f);
}

const CODER: &str = r#"
humans: [{ id: grace }]
resources:
  - { id: web, kind: untrusted_source }
connectors:
  - id: fetch
    mcp: { url: "http://127.0.0.1:1/mcp" }
    tools: { get: { effects: [read], untrusted_output: true, resources: [web] } }
  - id: shell
    mcp: { url: "http://127.0.0.1:1/mcp" }
    tools: { run: { effects: [code_exec] } }
agents:
  - { id: coder, owner: grace, uses: [fetch.get, shell.run] }
"#;

#[test]
fn untrusted_input_to_code_exec_critical_when_ungated_medium_when_gated() {
    let g = org(CODER);
    let fs = run(&g);
    let f = find(&fs, "graph.untrusted-to-code-exec", "agent:coder").expect("fires");
    assert_eq!(f.finding.severity, warden_core::Severity::Critical);
    assert_cut_removes(&g, f);
    let gated = format!(
        "{CODER}approvals:\n  - {{ id: code, when: {{ effects: [code_exec] }}, approvers: [human:grace] }}\n"
    );
    let g2 = org(&gated);
    let fs2 = run(&g2);
    let f2 = find(&fs2, "graph.untrusted-to-code-exec", "agent:coder").expect("still reported");
    assert_eq!(f2.finding.severity, warden_core::Severity::Medium);
    assert!(f2.finding.message.contains("gate `code`"));
}

const IDENTITIES: &str = r#"
humans: [{ id: bob }]
resources:
  - { id: ledger, kind: api, sensitivity: restricted, tier_zero: true }
  - { id: reports, kind: datastore }
identities:
  - { id: svc-report, kind: role, access: [reports], can_assume: [svc-mid] }
  - { id: svc-mid, kind: role, can_assume: [admin] }
  - { id: admin, kind: role, admin: true, access: [ledger] }
  - { id: svc-other, kind: role, access: [reports] }
agents:
  - { id: reporter, owner: bob, runs_as: svc-report }
  - { id: ghost, runs_as: svc-report }
  - { id: owned, owner: bob, runs_as: svc-other }
"#;

#[test]
fn identity_escalation_through_a_chain_and_its_cut() {
    let g = org(IDENTITIES);
    let fs = run(&g);
    let f = find(&fs, "graph.identity-escalation", "identity:svc-report").expect("fires");
    assert_eq!(
        f.finding.severity,
        warden_core::Severity::Critical,
        "agents run as it"
    );
    let ev = f.finding.evidence.join("\n");
    assert!(
        ev.contains(
            "identity:svc-report -CanAssume-> identity:svc-mid -CanAssume-> identity:admin"
        ),
        "{ev}"
    );
    assert_cut_removes(&g, f);
    assert!(find(&fs, "graph.identity-escalation", "identity:svc-other").is_none());
}

#[test]
fn orphaned_agent_reaching_tier_zero_fires_owned_one_does_not() {
    let g = org(IDENTITIES);
    let fs = run(&g);
    let f = find(&fs, "graph.orphaned-agent-privileged-reach", "agent:ghost").expect("fires");
    assert!(f.finding.message.contains("ledger"));
    assert!(
        find(
            &fs,
            "graph.orphaned-agent-privileged-reach",
            "agent:reporter"
        )
        .is_none()
    );
    assert!(find(&fs, "graph.orphaned-agent-privileged-reach", "agent:owned").is_none());
    assert_cut_removes(&g, f);
}

#[test]
fn memory_poisoning_fires_and_cut_removes_it() {
    let yaml = r#"
humans: [{ id: a }]
resources:
  - { id: inbox, kind: untrusted_source }
  - { id: mem, kind: memory, sensitivity: confidential }
connectors:
  - id: mail
    mcp: { url: "http://127.0.0.1:1/mcp" }
    tools: { read: { effects: [read], untrusted_output: true, resources: [inbox] } }
agents:
  - { id: writer, owner: a, uses: [mail.read], writes: [mem] }
  - { id: loader, owner: a, reads: [mem] }
  - { id: clean, owner: a, writes: [mem] }
"#;
    let g = org(yaml);
    let fs = run(&g);
    let f = find(&fs, "graph.memory-poisoning", "agent:writer->resource:mem").expect("fires");
    assert!(
        f.finding
            .evidence
            .iter()
            .any(|e| e.contains("resource:mem -Loads-> agent:loader"))
    );
    assert!(find(&fs, "graph.memory-poisoning", "agent:clean->resource:mem").is_none());
    assert_cut_removes(&g, f);
}

#[test]
fn confused_deputy_and_delegation_cycle() {
    let yaml = r#"
humans: [{ id: a }]
resources:
  - { id: inbox, kind: untrusted_source }
connectors:
  - id: mail
    mcp: { url: "http://127.0.0.1:1/mcp" }
    tools: { read: { effects: [read], untrusted_output: true, resources: [inbox] } }
  - id: pay
    mcp: { url: "http://127.0.0.1:1/mcp" }
    tools: { refund: { effects: [write, privileged], irreversible: true } }
agents:
  - id: front
    owner: a
    uses: [mail.read]
    handoffs: [{ to: payer, context: [id], ttl: 5m }]
  - id: payer
    owner: a
    uses: [pay.refund]
    handoffs: [{ to: helper, context: [id], ttl: 5m }]
  - id: helper
    owner: a
    handoffs: [{ to: payer, context: [id], ttl: 5m }]
"#;
    let g = org(yaml);
    let fs = run(&g);
    let f = find(&fs, "graph.confused-deputy", "agent:front->agent:payer").expect("deputy");
    assert!(f.finding.message.contains("pay.refund"));
    assert_cut_removes(&g, f);
    let c = fs
        .iter()
        .find(|f| f.finding.rule_id == "graph.delegation-cycle")
        .expect("cycle");
    assert!(c.finding.message.contains("payer") && c.finding.message.contains("helper"));
    assert!(!c.finding.message.contains("front"));
}

#[test]
fn agent_that_can_write_governance_is_reported_reader_is_not() {
    let yaml = r#"
humans: [{ id: a }]
resources:
  - { id: warden-config, kind: governance, sensitivity: restricted, tier_zero: true }
connectors:
  - id: cfg
    mcp: { url: "http://127.0.0.1:1/mcp" }
    tools:
      edit: { effects: [write], resources: [warden-config] }
      view: { effects: [read], resources: [warden-config] }
agents:
  - { id: editor, owner: a, uses: [cfg.edit] }
  - { id: viewer, owner: a, uses: [cfg.view] }
"#;
    let g = org(yaml);
    let fs = run(&g);
    let f = find(&fs, "graph.agent-can-modify-governance", "agent:editor").expect("fires");
    assert_cut_removes(&g, f);
    assert!(find(&fs, "graph.agent-can-modify-governance", "agent:viewer").is_none());
}

#[test]
fn credential_chain_escalation_on_a_hand_built_graph() {
    let mut b = GraphBuilder::new();
    let s = b.intern_source("test");
    let agent = b.node("agent:bot", NodeKind::Agent, "bot");
    b.node_mut(agent)
        .attrs
        .props
        .insert("owner".into(), "x".into());
    let low = b.node("identity:low", NodeKind::Identity, "low");
    let high = b.node("identity:high", NodeKind::Identity, "high");
    b.node_mut(high).attrs.admin = true;
    let tool = b.node("tool:fs.read_file", NodeKind::Tool, "fs.read_file");
    let repo = b.node("resource:repo", NodeKind::Resource, "repo");
    let cred = b.node(
        "credential:repo/.env:AWS_KEY",
        NodeKind::Credential,
        "repo/.env:AWS_KEY",
    );
    b.edge(agent, low, EdgeKind::RunsAs, s);
    b.edge(agent, tool, EdgeKind::CanInvoke, s);
    b.edge(tool, repo, EdgeKind::HasAccessTo, s);
    b.edge(repo, cred, EdgeKind::HoldsCredential, s);
    b.edge(cred, high, EdgeKind::AuthenticatesAs, s);
    let g = b.finish();
    let fs = run(&g);
    let f = find(&fs, "graph.credential-chain-escalation", "agent:bot").expect("fires");
    assert!(
        f.finding.evidence[0]
            .contains("credential:repo/.env:AWS_KEY -AuthenticatesAs-> identity:high")
    );
    let r = f.remediation.as_ref().unwrap();
    assert_eq!(r.cut.len(), 1);
    assert_cut_removes(&g, f);
}

#[test]
fn tier_zero_exposed_from_untrusted_input() {
    let yaml = r#"
humans: [{ id: a }]
resources:
  - { id: inbox, kind: untrusted_source }
  - { id: ledger, kind: api, sensitivity: restricted, tier_zero: true }
connectors:
  - id: mail
    mcp: { url: "http://127.0.0.1:1/mcp" }
    tools: { read: { effects: [read], untrusted_output: true, resources: [inbox] } }
  - id: pay
    mcp: { url: "http://127.0.0.1:1/mcp" }
    tools: { get: { effects: [read], resources: [ledger] } }
agents:
  - { id: x, owner: a, uses: [mail.read, pay.get] }
"#;
    let g = org(yaml);
    let fs = run(&g);
    let f = find(&fs, "graph.tier-zero-exposed", "resource:ledger").expect("fires");
    assert_cut_removes(&g, f);
}

#[test]
fn node_and_edge_ids_are_stable_across_manifest_order() {
    let (a, b) = TRIFECTA.split_at(TRIFECTA.find("connectors:").unwrap());
    let one = Inventory::from_manifests([("a.yaml", a), ("b.yaml", b)]).unwrap();
    let two = Inventory::from_manifests([("b.yaml", b), ("a.yaml", a)]).unwrap();
    let (g1, g2) = (
        build(&one, &EntitlementPolicy),
        build(&two, &EntitlementPolicy),
    );
    let ids = |g: &Graph| {
        let mut n: Vec<String> = g.nodes.iter().map(|n| n.id.clone()).collect();
        let mut e: Vec<String> = (0..g.edge_count() as u32).map(|e| g.edge_id(e)).collect();
        n.sort();
        e.sort();
        (n, e)
    };
    assert_eq!(ids(&g1), ids(&g2));
    assert!(ids(&g1).0.contains(&"tool:mail.read".to_string()));
}

#[test]
fn edges_carry_their_source_location() {
    let g = org(TRIFECTA);
    let a = g.node_index("agent:triage").unwrap();
    let e = g
        .out(a)
        .iter()
        .copied()
        .find(|&e| g.node(g.edge(e).to).id == "tool:chat.post")
        .unwrap();
    // The `uses` entry that entitles the call: org.yaml line 21.
    assert!(
        g.source_of(e).starts_with("org.yaml:21:"),
        "{}",
        g.source_of(e)
    );
}

#[test]
fn generated_organisation_has_the_documented_shape_per_team() {
    use warden_graph::generate::{OrgShape, manifests};
    let docs = manifests(OrgShape { teams: 3 });
    let inv = Inventory::from_manifests(docs.iter().map(|(n, y)| (n.as_str(), y.as_str())))
        .expect("generated manifests parse");
    assert_eq!(inv.agents.len(), 3 * OrgShape::AGENTS_PER_TEAM);
    let g = build(&inv, &EntitlementPolicy);
    // ≈500 nodes and ≈2,500 edges per team (1M nodes / 5M edges at 2,000 teams).
    let per_team_nodes = g.node_count() / 3;
    let per_team_edges = g.edge_count() / 3;
    assert!(
        (400..=600).contains(&per_team_nodes),
        "{per_team_nodes} nodes per team"
    );
    assert!(
        (2000..=3000).contains(&per_team_edges),
        "{per_team_edges} edges per team"
    );
    let fs = run(&g);
    for rule in [
        "graph.rule-of-two",
        "graph.memory-poisoning",
        "graph.orphaned-agent-privileged-reach",
        "graph.identity-escalation",
    ] {
        assert!(
            fs.iter().any(|f| f.finding.rule_id == rule),
            "{rule} planted in the generated org"
        );
    }
}
