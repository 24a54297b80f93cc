//! Minimum cuts against a brute-force oracle, the IAM import on hand-written and third-party
//! exports, and the OpenGraph export shape.

use std::collections::HashSet;
use std::path::Path;

use serde_json::Value;
use warden_core::Inventory;
use warden_graph::iam::{IamExport, add_iam};
use warden_graph::{EdgeKind, EntitlementPolicy, GraphBuilder, NodeKind, Remedy, View};

/// Tiny deterministic generator (no dependency, reproducible failures).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn min_cut_matches_brute_force_on_random_graphs() {
    let mut rng = Lcg(7);
    for round in 0..60 {
        // Sources are untrusted inputs, middle nodes are agents joined by handoffs (changeable)
        // or by memory loads from resources (unchangeable resource→resource access).
        let mut b = GraphBuilder::new();
        let s = b.intern_source("t");
        let n_agents = 3 + rng.below(4) as usize;
        let src = b.node("src", NodeKind::UntrustedSource, "src");
        let dst = b.node("resource:dst", NodeKind::Resource, "dst");
        let agents: Vec<u32> = (0..n_agents)
            .map(|i| b.node(format!("agent:a{i}"), NodeKind::Agent, &format!("a{i}")))
            .collect();
        for &a in &agents {
            if rng.below(2) == 0 {
                b.edge(src, a, EdgeKind::HandsOffTo, s);
            }
            if rng.below(3) == 0 {
                b.edge(a, dst, EdgeKind::HandsOffTo, s);
            }
        }
        for i in 0..n_agents {
            for j in 0..n_agents {
                if i != j && rng.below(3) == 0 {
                    let kind = if rng.below(4) == 0 {
                        EdgeKind::RunsAs // unchangeable
                    } else {
                        EdgeKind::HandsOffTo
                    };
                    b.edge(agents[i], agents[j], kind, s);
                }
            }
        }
        let g = b.finish();
        let v = View::new(&g);
        let all = |_: u32| true;
        let cut = v.min_cut(&[src], &[dst], &all);
        // Oracle: smallest subset of changeable edges whose removal disconnects src from dst.
        let changeable: Vec<u32> = (0..g.edge_count() as u32)
            .filter(|&e| g.remedy(e).is_some())
            .collect();
        let mut best: Option<usize> = None;
        for mask in 0u32..(1u32 << changeable.len().min(16)) {
            let k = mask.count_ones() as usize;
            if best.is_some_and(|b| k >= b) {
                continue;
            }
            let mut view = View::new(&g);
            view.block(
                changeable
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| mask & (1 << i) != 0)
                    .map(|(_, &e)| e),
            );
            if !view.reach(&[src], &all)[dst as usize] {
                best = Some(k);
            }
        }
        if changeable.len() > 16 {
            continue; // oracle too slow; skip
        }
        match (cut, best) {
            (Some(c), Some(b)) => {
                assert_eq!(c.len(), b, "round {round}: cut {c:?}");
                let after = View::with_remedies(&g, &c);
                assert!(!after.reach(&[src], &all)[dst as usize], "round {round}");
            }
            (None, None) => {}
            (c, b) => panic!("round {round}: min_cut {c:?} vs oracle {b:?}"),
        }
    }
}

#[test]
fn gating_a_tool_counts_as_one_edit_for_many_agents() {
    let yaml = r#"
humans: [{ id: h }]
resources:
  - { id: inbox, kind: untrusted_source }
  - { id: sink, kind: external_sink }
connectors:
  - id: mail
    mcp: { url: "http://127.0.0.1:1/mcp" }
    tools: { read: { effects: [read], untrusted_output: true, resources: [inbox] } }
  - id: chat
    mcp: { url: "http://127.0.0.1:1/mcp" }
    tools: { post: { effects: [external_send], resources: [sink] } }
agents:
  - { id: a1, owner: h, uses: [mail.read, chat.post] }
  - { id: a2, owner: h, uses: [mail.read, chat.post] }
  - { id: a3, owner: h, uses: [mail.read, chat.post] }
"#;
    let inv = Inventory::from_manifests([("o.yaml", yaml)]).unwrap();
    let g = warden_graph::build(&inv, &EntitlementPolicy);
    let v = View::new(&g);
    let src = g.node_index("resource:inbox").unwrap();
    let sink = g.node_index("resource:sink").unwrap();
    let all = |_: u32| true;
    assert_eq!(v.count_paths(&[src], &[sink], &all, 10_000), (3, true));
    let cut = v.min_cut(&[src], &[sink], &all).unwrap();
    assert_eq!(
        cut,
        vec![Remedy::GateTool {
            tool: "chat.post".into()
        }]
    );
    let after = View::with_remedies(&g, &cut);
    assert_eq!(after.count_paths(&[src], &[sink], &all, 10_000).0, 0);
}

fn iam_graph(json: &str) -> warden_graph::Graph {
    let export = IamExport::parse(json).expect("parses");
    let mut b = GraphBuilder::new();
    add_iam(&mut b, &export, "iam.json");
    b.finish()
}

fn has_edge(g: &warden_graph::Graph, from: &str, kind: EdgeKind, to: &str) -> bool {
    let (Some(f), Some(t)) = (g.node_index(from), g.node_index(to)) else {
        return false;
    };
    g.out(f)
        .iter()
        .any(|&e| g.edge(e).kind == kind && g.edge(e).to == t)
}

#[test]
fn iam_escalation_edges_from_a_hand_written_export() {
    let json = r#"{
      "UserDetailList": [
        {"UserName": "dev", "Arn": "arn:aws:iam::1:user/dev", "GroupList": [],
         "UserPolicyList": [{"PolicyName": "p", "PolicyDocument": {"Statement": [
            {"Effect": "Allow", "Action": "iam:CreateAccessKey", "Resource": "arn:aws:iam::1:user/ops"},
            {"Effect": "Allow", "Action": "iam:UpdateAssumeRolePolicy", "Resource": "arn:aws:iam::1:role/locked"}]}}],
         "AttachedManagedPolicies": []},
        {"UserName": "ops", "Arn": "arn:aws:iam::1:user/ops", "GroupList": [], "UserPolicyList": [], "AttachedManagedPolicies": []},
        {"UserName": "nobody", "Arn": "arn:aws:iam::1:user/nobody", "GroupList": [], "UserPolicyList": [], "AttachedManagedPolicies": []}
      ],
      "GroupDetailList": [],
      "RoleDetailList": [
        {"RoleName": "builder", "Arn": "arn:aws:iam::1:role/builder",
         "AssumeRolePolicyDocument": {"Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]},
         "RolePolicyList": [{"PolicyName": "q", "PolicyDocument": "%7B%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%5B%22iam%3APassRole%22%2C%22lambda%3ACreateFunction%22%2C%22lambda%3AInvokeFunction%22%5D%2C%22Resource%22%3A%22%2A%22%7D%5D%7D"}],
         "AttachedManagedPolicies": []},
        {"RoleName": "lambda-admin", "Arn": "arn:aws:iam::1:role/lambda-admin",
         "AssumeRolePolicyDocument": {"Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]},
         "RolePolicyList": [], "AttachedManagedPolicies": [{"PolicyName": "AdministratorAccess", "PolicyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}]},
        {"RoleName": "rooted", "Arn": "arn:aws:iam::1:role/rooted",
         "AssumeRolePolicyDocument": {"Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::1:root"}, "Action": "sts:AssumeRole"}]},
         "RolePolicyList": [], "AttachedManagedPolicies": []},
        {"RoleName": "locked", "Arn": "arn:aws:iam::1:role/locked",
         "AssumeRolePolicyDocument": {"Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::1:user/ops"}, "Action": "sts:AssumeRole"}]},
         "RolePolicyList": [], "AttachedManagedPolicies": []}
      ],
      "Policies": []
    }"#;
    let g = iam_graph(json);
    let id = |s: &str| format!("iam:arn:aws:iam::1:{s}");
    assert!(has_edge(
        &g,
        &id("role/builder"),
        EdgeKind::CanPassRole,
        &id("role/lambda-admin")
    ));
    assert!(
        !has_edge(
            &g,
            &id("role/builder"),
            EdgeKind::CanPassRole,
            &id("role/rooted")
        ),
        "rooted trusts no service"
    );
    assert!(has_edge(
        &g,
        &id("user/dev"),
        EdgeKind::CanCreateAccessKey,
        &id("user/ops")
    ));
    assert!(!has_edge(
        &g,
        &id("user/dev"),
        EdgeKind::CanCreateAccessKey,
        &id("user/nobody")
    ));
    assert!(has_edge(
        &g,
        &id("user/dev"),
        EdgeKind::CanUpdateTrust,
        &id("role/locked")
    ));
    assert!(
        has_edge(&g, &id("user/ops"), EdgeKind::CanAssume, &id("role/locked")),
        "named in trust"
    );
    // Account-root trust needs the principal's own sts:AssumeRole permission: nobody lacks it.
    assert!(!has_edge(
        &g,
        &id("user/nobody"),
        EdgeKind::CanAssume,
        &id("role/rooted")
    ));
    assert!(
        g.node(g.node_index(&id("role/lambda-admin")).unwrap())
            .attrs
            .admin
    );
    assert!(
        !g.node(g.node_index(&id("role/builder")).unwrap())
            .attrs
            .admin
    );
}

#[test]
fn iam_import_of_the_cloudsplaining_example() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/aws-iam/example-authorization-details.json");
    let export = IamExport::load(&path).expect("loads");
    assert_eq!(export.principals.len(), 44 + 5 + 78);
    let mut b = GraphBuilder::new();
    add_iam(&mut b, &export, "example.json");
    let g = b.finish();
    let node = |name: &str| {
        g.nodes
            .iter()
            .find(|n| n.label == name)
            .unwrap_or_else(|| panic!("{name} imported"))
    };
    // The fixture names its privilege-escalation principals after the technique they carry.
    for admin in [
        "privesc1-CreateNewPolicyVersion-user",
        "privesc7-AttachUserPolicy-user",
        "privesc10-PutUserPolicy-user",
        "privesc-sre-role",
        "OrganizationAccountAccessRole",
    ] {
        assert!(node(admin).attrs.admin, "{admin} is admin-equivalent");
    }
    assert!(
        !node("fp4-nonExploitableResourceConstraint-user")
            .attrs
            .admin
    );
    let ak = g
        .node_index(&node("privesc4-CreateAccessKey-user").id)
        .unwrap();
    assert!(
        g.out(ak)
            .iter()
            .any(|&e| g.edge(e).kind == EdgeKind::CanCreateAccessKey)
    );
    let ut = g
        .node_index(&node("privesc14-UpdatingAssumeRolePolicy-user").id)
        .unwrap();
    assert!(
        g.out(ut)
            .iter()
            .any(|&e| g.edge(e).kind == EdgeKind::CanUpdateTrust)
    );
    // Escalation findings exist for non-admin principals with those edges.
    let fs = warden_graph::analyse(&g);
    assert!(
        fs.iter()
            .any(|f| f.finding.rule_id == "graph.identity-escalation"
                && f.finding.message.contains("privesc4-CreateAccessKey-user"))
    );
}

#[test]
fn iam_garbage_is_a_clear_error() {
    assert!(IamExport::parse("[1,2]").is_err());
    let e = IamExport::parse(r#"{"Users": []}"#).unwrap_err();
    assert!(e.contains("RoleDetailList"), "{e}");
    assert!(IamExport::parse("{not json").is_err());
}

fn primitive(v: &Value) -> bool {
    matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_))
}

#[test]
fn opengraph_export_has_the_documented_shape() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/acme");
    let inv = Inventory::load(&dir).expect("acme loads");
    let g = warden_graph::build_with_iam(
        &inv,
        &EntitlementPolicy,
        Some(&dir.join("iam/authorization-details.json")),
    )
    .unwrap();
    let og = warden_graph::export::to_opengraph(&g);
    let text = serde_json::to_string(&og).unwrap();
    let og: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(og["metadata"]["source_kind"], "Warden");
    let nodes = og["graph"]["nodes"].as_array().unwrap();
    let edges = og["graph"]["edges"].as_array().unwrap();
    assert_eq!(nodes.len(), g.node_count());
    assert_eq!(edges.len(), g.edge_count());
    let mut ids = HashSet::new();
    for n in nodes {
        let id = n["id"].as_str().expect("string id");
        assert!(ids.insert(id.to_string()), "unique id {id}");
        let kinds = n["kinds"].as_array().unwrap();
        assert!(!kinds.is_empty() && kinds.iter().all(Value::is_string));
        for (k, v) in n["properties"].as_object().unwrap() {
            let ok = primitive(v) || v.as_array().is_some_and(|a| a.iter().all(primitive));
            assert!(ok, "property {k} of {id} is not a primitive: {v}");
        }
    }
    for e in edges {
        assert!(ids.contains(e["start"]["value"].as_str().unwrap()));
        assert!(ids.contains(e["end"]["value"].as_str().unwrap()));
        assert_eq!(e["start"]["match_by"], "id");
        assert!(e["kind"].as_str().unwrap().starts_with("Warden"));
        assert!(e["properties"].as_object().unwrap().values().all(primitive));
    }
    assert!(ids.contains("agent:support-triage"));
}
