//! `warden gateway stdio`: the Python `mcp` SDK's stdio client launches Warden in place of
//! a server, as a desktop client's configuration would.

mod gateway_support;

use std::process::Command;

use gateway_support::*;
use serde_json::{Value, json};

#[test]
fn python_stdio_client_through_warden_gateway_stdio() {
    require_deps();
    let tmp = tempfile::tempdir().unwrap();
    write_inventory(tmp.path(), None, "");
    let db = tmp.path().join("warden.db");
    let steps = json!([
        {"call": "everything.echo", "args": {"message": "over stdio"}},
        {"call": "files.write_file", "args": {"path": "/tmp/nope", "content": "x"}},
        {"call": "testkit.slow", "args": {"steps": 2}, "progress": true},
    ]);
    let out = Command::new(python())
        .args([
            fixture("mcp_client.py"),
            "stdio".into(),
            steps.to_string(),
            "--".into(),
            WARDEN.into(),
            "gateway".into(),
            "stdio".into(),
            "--agent".into(),
            "alpha".into(),
            tmp.path().display().to_string(),
            "--db".into(),
            db.display().to_string(),
        ])
        .env("PATH", path_env())
        .env("WARDEN_TEST_UPSTREAM_SECRET", "from-the-desktop-config")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().last().unwrap()).unwrap();
    let tools: Vec<&str> = v["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        tools.contains(&"everything.echo") && !tools.contains(&"files.write_file"),
        "{tools:?}"
    );
    assert!(
        v["calls"][0]["text"]
            .as_str()
            .unwrap()
            .contains("over stdio"),
        "{v}"
    );
    assert_eq!(v["calls"][1]["isError"], true);
    assert!(
        v["calls"][1]["text"]
            .as_str()
            .unwrap()
            .contains("Warden denied"),
        "{v}"
    );
    assert_eq!(
        v["calls"][2]["progress"].as_array().unwrap().len(),
        2,
        "{v}"
    );
    let audit = audit_export(tmp.path(), &db);
    let decisions: Vec<&Value> = audit
        .iter()
        .filter(|r| r["event"]["kind"] == "decision")
        .collect();
    assert_eq!(decisions.len(), 3);
    assert!(decisions.iter().all(|d| d["event"]["agent"] == "alpha"));
    let verify = warden(&[
        "audit",
        "verify",
        tmp.path().to_str().unwrap(),
        "--db",
        db.to_str().unwrap(),
    ]);
    assert!(verify.status.success());
}
