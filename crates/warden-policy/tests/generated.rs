//! Sliced and unsliced decisions agree: on every acme suite request (with variations) and on
//! a large random sample of the generated organisation.

use std::path::PathBuf;

use serde_json::json;
use warden_core::{Inventory, ToolRef};
use warden_policy::generate::{OrgSpec, Rng, generate_org, tool_name};
use warden_policy::{PolicyEngine, Request, SessionState, UtcTime};

#[test]
fn sliced_and_unsliced_agree_on_generated_org() {
    let spec = OrgSpec {
        agents: 200,
        connectors: 20,
        tools_per_connector: 25,
        policies: 400,
        uses_per_agent: 30,
        seed: 11,
    };
    let inv = generate_org(&spec);
    let engine = PolicyEngine::load(&inv).unwrap_or_else(|e| panic!("{e}"));
    let mut rng = Rng::new(99);
    let ntools = spec.connectors * spec.tools_per_connector;
    let (mut allow, mut deny, mut approval) = (0, 0, 0);
    for i in 0..4_000 {
        let agent = format!("a{}", rng.below(spec.agents));
        // Half the requests on tools the agent is entitled to, so permits get exercised.
        let tool = if i % 2 == 0 {
            let a = inv.agents.get(&agent).unwrap();
            let ts = inv.entitled_tools(a);
            ts[rng.below(ts.len())].clone()
        } else {
            let t = rng.below(ntools);
            ToolRef::parse(&tool_name(
                t / spec.tools_per_connector,
                t % spec.tools_per_connector,
            ))
            .unwrap()
        };
        let mut args = json!({ "amount": rng.below(100_001) });
        if rng.chance(50) {
            args["target"] = json!(if rng.chance(50) { "ext-1" } else { "int-1" });
        }
        if rng.chance(50) {
            args["dry_run"] = json!(rng.chance(50));
        }
        let req = Request {
            agent,
            delegation_chain: (0..rng.below(4)).map(|d| format!("a{d}")).collect(),
            root_human: None,
            tool,
            args,
            session: SessionState {
                tainted: rng.chance(50),
                taint_sources: vec![],
            },
            time: UtcTime::from_unix(1_767_614_400 + rng.below(7 * 86_400) as i64),
        };
        let a = engine.decide(&req);
        let b = engine.decide_unsliced(&req);
        assert_eq!(a, b, "request {i}: {req:?}");
        match a.outcome.as_str() {
            "allow" => allow += 1,
            "deny" => deny += 1,
            _ => approval += 1,
        }
        // could_allow is sound: an allowed or approval-needing request is never `Never`.
        if !a.is_deny() {
            assert!(
                engine.could_allow(&req.agent, &req.tool).is_possible(),
                "could_allow said Never for {req:?} which got {a:?}"
            );
        }
    }
    // The sample exercises every outcome, or the agreement above proves little.
    assert!(
        allow > 100 && deny > 100 && approval > 40,
        "{allow} {deny} {approval}"
    );
}

#[test]
fn sliced_and_unsliced_agree_on_acme_suite_and_variations() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/acme");
    let inv = Inventory::load(&dir).unwrap();
    let engine = PolicyEngine::load(&inv).unwrap();
    let agents: Vec<String> = inv.agents.keys().cloned().collect();
    let tools: Vec<ToolRef> = inv.all_tools().map(|(r, _, _)| r).collect();
    let mut n = 0;
    for agent in &agents {
        for tool in &tools {
            for amount in [1, 500, 501, 5000, 5001] {
                for tainted in [false, true] {
                    for (depth, hour) in [(0, 9), (2, 15), (0, 15)] {
                        let req = Request {
                            agent: agent.clone(),
                            delegation_chain: (0..depth).map(|d| format!("x{d}")).collect(),
                            root_human: None,
                            tool: tool.clone(),
                            args: json!({"amount": amount, "charge_id": "c", "to": "a", "subject": "s",
                                "body": "b", "channel": "c", "text": "t", "command": "ls", "path": "p",
                                "content": "c", "url": "u", "sql": "q", "symbol": "S", "side": "buy",
                                "quantity": 1, "ticket_id": "t", "customer_id": "c"}),
                            session: SessionState {
                                tainted,
                                taint_sources: vec![],
                            },
                            time: UtcTime::from_unix(1_767_571_200 + hour * 3600),
                        };
                        let a = engine.decide(&req);
                        assert_eq!(a, engine.decide_unsliced(&req), "{req:?}");
                        if !a.is_deny() {
                            assert!(engine.could_allow(agent, tool).is_possible());
                        }
                        n += 1;
                    }
                }
            }
        }
    }
    assert!(n > 1000);
}
