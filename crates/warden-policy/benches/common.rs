//! Request sets shared by the benchmarks.

use std::path::PathBuf;

use serde_json::json;
use warden_core::{Inventory, ToolRef};
use warden_policy::generate::{OrgSpec, Rng, generate_org, tool_name};
use warden_policy::{PolicyEngine, Request, SessionState, UtcTime};

pub fn acme() -> (PolicyEngine, Vec<Request>) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/acme");
    let inv = Inventory::load(&dir).expect("examples/acme loads");
    let engine = PolicyEngine::load(&inv).expect("acme policies are valid");
    let t = |s: &str| ToolRef::parse(s).unwrap();
    let base = |agent: &str, tool: &str, args: serde_json::Value, tainted: bool| Request {
        agent: agent.into(),
        delegation_chain: vec![],
        root_human: None,
        tool: t(tool),
        args,
        session: SessionState {
            tainted,
            taint_sources: vec![],
        },
        time: UtcTime::from_unix(1_767_618_000),
    };
    let reqs = vec![
        base(
            "refund-agent",
            "payments.issue_refund",
            json!({"charge_id": "ch_1", "amount": 120}),
            false,
        ),
        base(
            "refund-agent",
            "payments.issue_refund",
            json!({"charge_id": "ch_1", "amount": 900}),
            false,
        ),
        base(
            "refund-agent",
            "payments.issue_refund",
            json!({"charge_id": "ch_1", "amount": 9000}),
            false,
        ),
        base(
            "support-triage",
            "payments.issue_refund",
            json!({"charge_id": "ch_1", "amount": 10}),
            false,
        ),
        base(
            "support-triage",
            "slack.post_message",
            json!({"channel": "#x", "text": "hi"}),
            true,
        ),
        base(
            "coding-agent",
            "repo.read_file",
            json!({"path": "README.md"}),
            false,
        ),
        base(
            "treasury-agent",
            "market.place_order",
            json!({"symbol": "ACME", "side": "buy", "quantity": 10}),
            false,
        ),
        base(
            "outreach-agent",
            "crm.delete_customer",
            json!({"customer_id": "c_1"}),
            false,
        ),
    ];
    (engine, reqs)
}

pub fn large() -> (PolicyEngine, Vec<Request>) {
    let spec = OrgSpec::large();
    let inv = generate_org(&spec);
    let engine = PolicyEngine::load(&inv).expect("generated policies are valid");
    let mut rng = Rng::new(5);
    let ntools = spec.connectors * spec.tools_per_connector;
    let reqs = (0..1_000)
        .map(|i| {
            let agent = format!("a{}", rng.below(spec.agents));
            let tool = if i % 2 == 0 {
                let ts = inv.entitled_tools(inv.agents.get(&agent).unwrap());
                ts[rng.below(ts.len())].clone()
            } else {
                let t = rng.below(ntools);
                ToolRef::parse(&tool_name(
                    t / spec.tools_per_connector,
                    t % spec.tools_per_connector,
                ))
                .unwrap()
            };
            Request {
                agent,
                delegation_chain: vec![],
                root_human: None,
                tool,
                args: json!({"amount": rng.below(100_001), "target": "ext-9", "dry_run": false}),
                session: SessionState {
                    tainted: rng.chance(50),
                    taint_sources: vec![],
                },
                time: UtcTime::from_unix(1_767_614_400 + rng.below(7 * 86_400) as i64),
            }
        })
        .collect();
    (engine, reqs)
}
