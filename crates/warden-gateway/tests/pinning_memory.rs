//! Tool pinning of a gateway embedded without `with_pins` (pins in memory): the in-repo
//! rug-pull server (`warden-cli/tests/fixtures/pinning/rugpull_server.py`, standard library
//! only) as a real stdio upstream, driven through `Gateway::handle`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use warden_core::Inventory;
use warden_gateway::{EntitlementDecider, Gateway, GatewayOptions, Principal};
use warden_store::{Durability, Store};

fn server() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../warden-cli/tests/fixtures/pinning/rugpull_server.py")
        .canonicalize()
        .unwrap()
        .display()
        .to_string()
}

fn names(v: &Value) -> Vec<String> {
    v["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_pins_quarantine_a_changed_tool_and_unapproved_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let flag = tmp.path().join("flag");
    let yaml = format!(
        r#"
humans: [{{ id: olivia@example.com }}]
agents:
  - {{ id: alpha, owner: olivia@example.com, uses: [dict.lookup, dict.define, manual.define] }}
connectors:
  - id: dict
    mcp: {{ command: python3, args: ["{server}", rugpull, "{flag}"] }}
    pin_on_first_sight: true
    tools:
      lookup: {{ effects: [read] }}
      define: {{ effects: [read] }}
  - id: manual
    mcp: {{ command: python3, args: ["{server}", rugpull] }}
    tools:
      define: {{ effects: [read] }}
"#,
        server = server(),
        flag = flag.display()
    );
    let mut inv = Inventory::from_manifests([("inventory.yaml", yaml.as_str())]).unwrap();
    // Upstreams start in the inventory directory.
    inv.root = tmp.path().to_path_buf();
    let inv = Arc::new(inv);
    let store = Store::open(&tmp.path().join("w.db"), Durability::Normal)
        .await
        .unwrap();
    let writer = store.audit_writer().await.unwrap();
    let gw = Gateway::new(
        inv.clone(),
        Arc::new(EntitlementDecider::new(inv.clone())),
        writer,
        GatewayOptions::default(),
    );
    let who = Principal::direct(&inv, "alpha", None);
    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"});
    let call = |tool: &str| {
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
               "params": {"name": tool, "arguments": {"word": "w"}}})
    };

    // A call before any list still checks the pin (first sight: pinned in memory).
    let v = gw
        .handle(&who, None, call("dict.lookup"), None)
        .await
        .unwrap();
    assert_eq!(v["result"]["isError"], json!(null), "{v}");
    let v = gw.handle(&who, None, list.clone(), None).await.unwrap();
    assert_eq!(names(&v), vec!["dict.define", "dict.lookup"], "{v}");
    // manual has no pin_on_first_sight: held back.
    let v = gw
        .handle(&who, None, call("manual.define"), None)
        .await
        .unwrap();
    assert_eq!(v["result"]["isError"], true, "{v}");
    let text = v["result"]["content"][0]["text"].as_str().unwrap();
    assert!(
        text.contains("manual.define") && text.contains("never approved"),
        "{text}"
    );

    // The description changes; the server says so; the gateway hides the tool.
    std::fs::write(&flag, "x").unwrap();
    let start = Instant::now();
    loop {
        let v = gw.handle(&who, None, list.clone(), None).await.unwrap();
        if names(&v) == vec!["dict.define"] {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "still served: {v}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let v = gw
        .handle(&who, None, call("dict.lookup"), None)
        .await
        .unwrap();
    assert_eq!(v["result"]["isError"], true, "{v}");
    let text = v["result"]["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("changed since it was approved"), "{text}");
    assert_eq!(
        v["result"]["_meta"]["warden.dev/decision"]["policies"],
        json!(["tool-pinning"])
    );
    // The pins were never written to the store.
    assert!(store.tool_pins(None).await.unwrap().is_empty());
    gw.shutdown().await;
}

/// An upstream that announces a change and then fails `tools/list` (while `tools/call` still
/// works) does not get calls through on the old, checked list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_refetch_after_a_change_denies_calls_instead_of_using_the_old_list() {
    let tmp = tempfile::tempdir().unwrap();
    let flag = tmp.path().join("flag");
    let yaml = format!(
        r#"
humans: [{{ id: olivia@example.com }}]
agents:
  - {{ id: alpha, owner: olivia@example.com, uses: [dict.lookup] }}
connectors:
  - id: dict
    mcp: {{ command: python3, args: ["{server}", rugpull, "{flag}"] }}
    pin_on_first_sight: true
    tools:
      lookup: {{ effects: [read] }}
"#,
        server = server(),
        flag = flag.display()
    );
    let mut inv = Inventory::from_manifests([("inventory.yaml", yaml.as_str())]).unwrap();
    inv.root = tmp.path().to_path_buf();
    let inv = Arc::new(inv);
    let store = Store::open(&tmp.path().join("w.db"), Durability::Normal)
        .await
        .unwrap();
    let gw = Gateway::new(
        inv.clone(),
        Arc::new(EntitlementDecider::new(inv.clone())),
        store.audit_writer().await.unwrap(),
        GatewayOptions::default(),
    );
    let who = Principal::direct(&inv, "alpha", None);
    let call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                      "params": {"name": "dict.lookup", "arguments": {"word": "w"}}});
    let v = gw.handle(&who, None, call.clone(), None).await.unwrap();
    assert_eq!(v["result"]["isError"], json!(null), "{v}");

    std::fs::write(format!("{}.listfail", flag.display()), "x").unwrap();
    std::fs::write(&flag, "x").unwrap();
    // Wait (bounded) until the gateway has seen the notification: a call is denied.
    let start = Instant::now();
    let denied = loop {
        let v = gw.handle(&who, None, call.clone(), None).await.unwrap();
        if v["result"]["isError"] == true {
            break v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "still forwarded: {v}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let text = denied["result"]["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("cannot verify"), "{text}");
    // And again: the old list is not used as a fallback.
    for _ in 0..3 {
        let v = gw.handle(&who, None, call.clone(), None).await.unwrap();
        assert_eq!(v["result"]["isError"], true, "{v}");
    }
    gw.shutdown().await;
}
