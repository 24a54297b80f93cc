//! `warden up` on the example organisation (a copy of examples/acme): its in-house servers
//! (`servers/acme_mcp.py`, PyPI `mcp` SDK) behind the gateway, its Cedar policies deciding.

mod gateway_support;

use std::path::Path;

use gateway_support::*;
use serde_json::json;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let name = e.file_name();
        if name == ".warden" {
            continue;
        }
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(&name));
        } else {
            std::fs::copy(&p, to.join(&name)).unwrap();
        }
    }
}

#[test]
fn acme_refunds_are_decided_by_its_cedar_policies_through_the_gateway() {
    require_deps();
    let tmp = tempfile::tempdir().unwrap();
    let acme = tmp.path().join("acme");
    copy_dir(&repo_root().join("examples/acme"), &acme);
    std::fs::create_dir_all(acme.join("secrets")).unwrap();
    std::fs::write(acme.join("secrets/payments_api_key"), "pk_test_demo\n").unwrap();
    // Hold needs_approval calls for one second instead of two minutes.
    let approvals = std::fs::read_to_string(acme.join("approvals.yaml")).unwrap();
    assert!(approvals.contains("approval_hold: 120s"));
    std::fs::write(
        acme.join("approvals.yaml"),
        approvals.replace("approval_hold: 120s", "approval_hold: 1s"),
    )
    .unwrap();
    // SAFETY of the test: ACME_CRM_TOKEN is read by warden from its own environment.
    let w = {
        // SAFETY: single-threaded at this point of the test; the variable is only read by the child.
        unsafe { std::env::set_var("ACME_CRM_TOKEN", "crm-demo-token") };
        Warden::start(&acme, &[])
    };

    let triage = w.token("support-triage");
    let mut t = Mcp::connect(w.addr, &triage);
    let listed = t.request("tools/list", json!({}));
    let names: Vec<&str> = listed["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(
        names.contains(&"crm.read_ticket") && names.contains(&"crm.update_ticket"),
        "{names:?}"
    );
    assert!(
        !names.iter().any(|n| n.starts_with("payments.")),
        "triage must not see payments: {names:?}"
    );
    let v = t.call("crm.read_ticket", json!({"ticket_id": "T-1001"}));
    assert!(result_text(&v).contains("blender"), "{v}");
    let v = t.call(
        "payments.issue_refund",
        json!({"charge_id": "ch_123", "amount": 10}),
    );
    assert_eq!(v["result"]["isError"], true);
    assert!(
        result_text(&v).contains("Warden denied payments.issue_refund"),
        "{v}"
    );

    let refund = w.token("refund-agent");
    let mut r = Mcp::connect(w.addr, &refund);
    let v = r.call(
        "payments.issue_refund",
        json!({"charge_id": "ch_123", "amount": 120}),
    );
    assert_ne!(v["result"]["isError"], true, "{v}");
    assert!(result_text(&v).contains("\"refunded\": 120"), "{v}");
    // Over the limit: a finance lead must approve. The call waits for the (shortened) hold
    // time, then gets an error carrying the approval id; nothing reached the upstream.
    let v = r.call(
        "payments.issue_refund",
        json!({"charge_id": "ch_123", "amount": 900}),
    );
    assert_eq!(v["error"]["code"], -32012, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("approv"),
        "{v}"
    );
    let v = r.call("payments.get_charge", json!({"charge_id": "ch_123"}));
    assert!(
        result_text(&v).contains("\"refunded\": 120"),
        "the 900 refund must not have run: {v}"
    );
    let v = r.call(
        "payments.issue_refund",
        json!({"charge_id": "ch_123", "amount": 9000}),
    );
    assert_eq!(v["result"]["isError"], true, "{v}");
    assert!(result_text(&v).contains("refunds-hard-cap"), "{v}");

    let audit = w.audit();
    let decisions: Vec<_> = audit
        .iter()
        .map(|r| &r["event"])
        .filter(|e| e["kind"] == "decision" && e["tool"] == "payments.issue_refund")
        .collect();
    let outcomes: Vec<&str> = decisions
        .iter()
        .filter_map(|d| d["decision"].as_str())
        .collect();
    assert_eq!(
        outcomes,
        ["deny", "allow", "needs_approval", "deny"],
        "{decisions:?}"
    );
    assert!(w.terminate().success());
}
