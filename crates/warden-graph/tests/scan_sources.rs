//! What `--scan` adds: MCP client-config servers as connectors (undeclared ones reported,
//! matching ones merged), and scanned secrets that authenticate as identities by fingerprint
//! (inventory credential values, IAM access key ids). Each rule fires, and each fix (the cut,
//! or the scanner no longer finding the thing) removes it.

use std::path::{Path, PathBuf};

use warden_core::Inventory;
use warden_graph::iam::{IamExport, add_iam};
use warden_graph::rules::keys;
use warden_graph::scan::add_scan;
use warden_graph::{
    EdgeKind, EntitlementPolicy, Graph, GraphBuilder, GraphFinding, Options, Remedy, ScanInput,
    ScannedCredential, ScannedServer, View, findings,
};

/// Stands in for the scanner's `sha256(rule \0 value)`: any function of both works for the
/// linking logic; the CLI test runs the real one end to end.
fn fp(rule: &str, value: &str) -> String {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut h = DefaultHasher::new();
    (rule, value).hash(&mut h);
    format!("{:016x}", h.finish())
}

const ORG: &str = r#"
humans:
  - { id: ann }
identities:
  - { id: svc-low, kind: service_account, access: [wiki] }
  - { id: svc-pay, kind: service_account, admin: true, access: [ledger] }
resources:
  - { id: wiki, kind: datastore, sensitivity: internal }
  - { id: ledger, kind: api, sensitivity: restricted, tier_zero: true }
connectors:
  - id: pay
    mcp: { command: npx, args: ["-y", "@acme/pay-mcp@1.2.0"], env: { PAY_KEY: "${file:secrets/pay_key}" } }
    runs_as: svc-pay
    resources: [ledger]
    tools:
      charge: { effects: [write, privileged] }
  - id: docs
    mcp: { url: "https://docs.example/mcp" }
    runs_as: svc-low
    resources: [wiki]
    tools:
      search: { effects: [read] }
agents:
  - id: helper
    owner: ann
    runs_as: svc-low
    uses: [docs.search]
    code: agents/helper
"#;

fn fixture_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/scan-org")
}

fn inventory() -> Inventory {
    let mut inv = Inventory::from_manifests([("org.yaml", ORG)]).expect("valid manifest");
    inv.root = fixture_root();
    inv
}

fn graph(
    inv: &Inventory,
    creds: &[ScannedCredential],
    servers: &[ScannedServer],
    iam: Option<&IamExport>,
) -> Graph {
    let mut b = GraphBuilder::new();
    warden_graph::build::add_inventory(&mut b, inv, &EntitlementPolicy);
    let nodes = iam.map(|e| add_iam(&mut b, e, "iam.json"));
    let scan = ScanInput {
        root: &inv.root,
        credentials: creds,
        servers,
        fingerprint: &fp,
    };
    let iam = iam.zip(nodes.as_deref());
    add_scan(&mut b, inv, &scan, iam);
    b.finish()
}

fn run(g: &Graph) -> Vec<GraphFinding> {
    findings(&View::new(g), &Options::default())
}

fn find<'a>(fs: &'a [GraphFinding], rule: &str, subject: &str) -> Option<&'a GraphFinding> {
    fs.iter()
        .find(|f| f.finding.rule_id == rule && f.finding.subject.as_deref() == Some(subject))
}

fn assert_cut_removes(g: &Graph, f: &GraphFinding) {
    let r = f.remediation.as_ref().expect("finding has a remediation");
    assert!(r.cut_found && !r.cut.is_empty(), "no cut: {r:?}");
    assert_eq!(r.paths_after, 0, "cut {:?} leaves paths", r.cut);
    let after = findings(&View::with_remedies(g, &r.cut), &Options::default());
    let subject = f.finding.subject.clone().unwrap_or_default();
    assert!(
        !keys(&after).contains(&(f.finding.rule_id.clone(), subject)),
        "{} still reported after applying {:?}",
        f.finding.rule_id,
        r.cut
    );
}

fn edge(g: &Graph, from: &str, kind: EdgeKind, to: &str) -> Option<u32> {
    let (f, t) = (g.node_index(from)?, g.node_index(to)?);
    g.out(f)
        .iter()
        .copied()
        .find(|&e| g.edge(e).kind == kind && g.edge(e).to == t)
}

fn server(file: &str, line: u64, name: &str) -> ScannedServer {
    ScannedServer {
        file: file.into(),
        line,
        name: name.into(),
        client: "claude-code".into(),
        transport: "stdio".into(),
        ..Default::default()
    }
}

#[test]
fn undeclared_server_in_agent_code_is_a_connector_the_agent_uses() {
    let inv = inventory();
    let mut gh = server("agents/helper/.mcp.json", 3, "github");
    gh.command = Some("npx".into());
    gh.args = vec!["-y".into(), "@modelcontextprotocol/server-github".into()];
    gh.env = vec![
        ("GITHUB_TOKEN".into(), "${GH_TOKEN}".into()),
        ("LOG_LEVEL".into(), "${LEVEL}".into()),
    ];
    // A literal secret inside the entry (line 6) and one in another file.
    let creds = vec![
        ScannedCredential {
            file: "agents/helper/.mcp.json".into(),
            line: 6,
            rule_id: "scan.secret.github".into(),
            fingerprint: None,
            identity: None,
        },
        ScannedCredential {
            file: "elsewhere/x.py".into(),
            line: 2,
            rule_id: "scan.secret.github".into(),
            fingerprint: None,
            identity: None,
        },
    ];
    let g = graph(&inv, &creds, std::slice::from_ref(&gh), None);
    let id = "connector:scan:agents/helper/.mcp.json:github";
    let uses = edge(&g, "agent:helper", EdgeKind::Uses, id).expect("helper uses the server");
    assert!(g.edge(uses).kind.traversable());
    assert_eq!(
        g.remedy(uses),
        Some(Remedy::RemoveMcpServer {
            agent: "helper".into(),
            server: "github".into(),
            config: fixture_root()
                .join("agents/helper/.mcp.json")
                .display()
                .to_string(),
        })
    );
    assert!(edge(&g, id, EdgeKind::HoldsCredential, "credential:env:GH_TOKEN").is_some());
    assert!(
        g.node_index("credential:env:LEVEL").is_none(),
        "not a credential-like key"
    );
    assert!(
        edge(
            &g,
            id,
            EdgeKind::HoldsCredential,
            "credential:scan:agents/helper/.mcp.json:6"
        )
        .is_some()
    );
    assert!(
        edge(
            &g,
            id,
            EdgeKind::HoldsCredential,
            "credential:scan:elsewhere/x.py:2"
        )
        .is_none()
    );
    let fs = run(&g);
    let f = find(&fs, "graph.undeclared-connector", id).expect("undeclared connector reported");
    assert_eq!(f.finding.severity, warden_core::Severity::High);
    assert!(
        f.finding
            .evidence
            .iter()
            .any(|e| e == &format!("path: agent:helper -Uses-> {id}")),
        "{:?}",
        f.finding.evidence
    );
    // The cut removes the agent's path to the server; the server itself stays undeclared
    // (and reported, without users) until it leaves the config or joins the inventory.
    let r = f.remediation.as_ref().expect("remediation");
    assert!(r.cut_found);
    assert_eq!(r.paths_after, 0);
    let after = findings(&View::with_remedies(&g, &r.cut), &Options::default());
    let still = find(&after, "graph.undeclared-connector", id).expect("still undeclared");
    assert!(still.remediation.is_none());
    assert!(
        !still
            .finding
            .evidence
            .iter()
            .any(|e| e.starts_with("path: "))
    );
    // The fix as the scanner sees it: the entry is gone from the config.
    let g = graph(&inv, &creds, &[], None);
    assert!(g.node_index(id).is_none());
    assert!(find(&run(&g), "graph.undeclared-connector", id).is_none());
}

#[test]
fn servers_matching_an_inventory_connector_merge_into_it() {
    let inv = inventory();
    let mut by_pkg = server("agents/helper/.mcp.json", 3, "payments");
    by_pkg.command = Some("/usr/bin/npx".into());
    by_pkg.args = vec!["-y".into(), "@acme/pay-mcp@1.2.0".into()];
    let mut by_url = server("agents/helper/.cursor/mcp.json", 2, "documentation");
    by_url.transport = "http".into();
    by_url.url = Some("https://docs.example/mcp/".into());
    let mut other_version = server("agents/helper/.mcp.json", 9, "pay-old");
    other_version.command = Some("npx".into());
    other_version.args = vec!["-y".into(), "@acme/pay-mcp@0.9.0".into()];
    let g = graph(&inv, &[], &[by_pkg, by_url, other_version], None);
    assert!(edge(&g, "agent:helper", EdgeKind::Uses, "connector:pay").is_some());
    assert!(edge(&g, "agent:helper", EdgeKind::Uses, "connector:docs").is_some());
    let pay = g.node(g.node_index("connector:pay").unwrap());
    assert_eq!(pay.attrs.props["matched_by"], "package");
    assert!(
        g.node_index("connector:scan:agents/helper/.mcp.json:payments")
            .is_none()
    );
    let fs = run(&g);
    let undeclared: Vec<_> = fs
        .iter()
        .filter(|f| f.finding.rule_id == "graph.undeclared-connector")
        .filter_map(|f| f.finding.subject.clone())
        .collect();
    assert_eq!(
        undeclared,
        vec!["connector:scan:agents/helper/.mcp.json:pay-old".to_string()],
        "only the unmatched version is undeclared"
    );
    // Running the payments server directly gives the agent the connector's credential, which
    // authenticates as the admin identity: a credential chain the cut (drop the entry) ends.
    let f = find(&fs, "graph.credential-chain-escalation", "agent:helper")
        .expect("reaching svc-pay through the server is reported");
    assert!(
        f.finding.message.contains("svc-pay"),
        "{}",
        f.finding.message
    );
    assert!(
        f.remediation
            .as_ref()
            .unwrap()
            .cut
            .iter()
            .all(|c| matches!(c, Remedy::RemoveMcpServer { server, .. } if server == "payments")),
        "{:?}",
        f.remediation
    );
    assert_cut_removes(&g, f);
}

fn secret_in_helper_code(fingerprint: String, rule: &str) -> ScannedCredential {
    ScannedCredential {
        file: "agents/helper/settings.py".into(),
        line: 4,
        rule_id: rule.into(),
        fingerprint: Some(fingerprint),
        identity: None,
    }
}

#[test]
fn scanned_secret_equal_to_an_inventory_credential_authenticates_as_its_identity() {
    let inv = inventory();
    let value = std::fs::read_to_string(fixture_root().join("secrets/pay_key")).unwrap();
    let rule = "scan.secret.generic";
    let cred = secret_in_helper_code(fp(rule, value.trim_end()), rule);
    let g = graph(&inv, std::slice::from_ref(&cred), &[], None);
    let cid = "credential:scan:agents/helper/settings.py:4";
    assert!(edge(&g, "agent:helper", EdgeKind::HoldsCredential, cid).is_some());
    assert!(edge(&g, cid, EdgeKind::AuthenticatesAs, "identity:svc-pay").is_some());
    let node = g.node(g.node_index(cid).unwrap());
    assert_eq!(
        node.attrs.props["same_secret_as"],
        "credential:file:secrets/pay_key"
    );
    let fs = run(&g);
    let f = find(&fs, "graph.credential-chain-escalation", "agent:helper")
        .expect("credential chain from the scanned secret");
    assert!(
        f.finding.message.contains("svc-pay"),
        "{}",
        f.finding.message
    );
    let r = f.remediation.as_ref().unwrap();
    assert_eq!(
        r.cut,
        vec![Remedy::RemoveSecret {
            agent: "helper".into(),
            secret: "agents/helper/settings.py:4".into()
        }]
    );
    assert_cut_removes(&g, f);
    // A different value: no link, no finding.
    let other = secret_in_helper_code(fp(rule, "something-else"), rule);
    let g = graph(&inv, &[other], &[], None);
    assert!(edge(&g, cid, EdgeKind::AuthenticatesAs, "identity:svc-pay").is_none());
    assert!(
        find(
            &run(&g),
            "graph.credential-chain-escalation",
            "agent:helper"
        )
        .is_none()
    );
}

const IAM: &str = r#"{
  "UserDetailList": [
    {"UserName": "deploy-bot", "Arn": "arn:aws:iam::111122223333:user/deploy-bot",
     "AttachedManagedPolicies": [{"PolicyName": "AdministratorAccess",
       "PolicyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}]},
    {"UserName": "reader", "Arn": "arn:aws:iam::111122223333:user/reader",
     "AccessKeyMetadata": [{"UserName": "reader", "AccessKeyId": "AKIAQ7RJ3KDN5XW2PLMB", "Status": "Active"}]}
  ],
  "GroupDetailList": [], "RoleDetailList": [], "Policies": [],
  "AccessKeyMetadata": [{"UserName": "deploy-bot", "AccessKeyId": "AKIA4HZW6TQ2NBVX7KLE", "Status": "Active"}]
}"#;

#[test]
fn scanned_aws_key_id_in_the_iam_export_authenticates_as_its_user() {
    let inv = inventory();
    let export = IamExport::parse(IAM).expect("export parses");
    let rule = "scan.secret.aws";
    let cred = secret_in_helper_code(fp(rule, "AKIA4HZW6TQ2NBVX7KLE"), rule);
    let g = graph(&inv, std::slice::from_ref(&cred), &[], Some(&export));
    let cid = "credential:scan:agents/helper/settings.py:4";
    let admin = "iam:arn:aws:iam::111122223333:user/deploy-bot";
    assert!(edge(&g, cid, EdgeKind::AuthenticatesAs, admin).is_some());
    assert!(
        edge(
            &g,
            cid,
            EdgeKind::AuthenticatesAs,
            "iam:arn:aws:iam::111122223333:user/reader"
        )
        .is_none()
    );
    let fs = run(&g);
    let f = find(&fs, "graph.credential-chain-escalation", "agent:helper")
        .expect("credential chain to the admin IAM user");
    assert!(
        f.finding.message.contains("deploy-bot"),
        "{}",
        f.finding.message
    );
    assert_cut_removes(&g, f);
    // The per-user key of a non-admin links too, but gains nothing: no finding.
    let cred = secret_in_helper_code(fp(rule, "AKIAQ7RJ3KDN5XW2PLMB"), rule);
    let g = graph(&inv, &[cred], &[], Some(&export));
    assert!(
        edge(
            &g,
            cid,
            EdgeKind::AuthenticatesAs,
            "iam:arn:aws:iam::111122223333:user/reader"
        )
        .is_some()
    );
    assert!(
        find(
            &run(&g),
            "graph.credential-chain-escalation",
            "agent:helper"
        )
        .is_none()
    );
    // Removing the key from the code (the scanner no longer reports it) removes the finding.
    let g = graph(&inv, &[], &[], Some(&export));
    assert!(
        find(
            &run(&g),
            "graph.credential-chain-escalation",
            "agent:helper"
        )
        .is_none()
    );
}
