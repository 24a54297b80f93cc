//! `warden up --db postgres://…`: the same gateway with PostgreSQL as the store (the setup
//! for several replicas), with tokens issued and the trail verified through the same URL.

mod gateway_support;

use std::process::Command;

use gateway_support::*;
use serde_json::json;

#[test]
fn warden_up_with_a_postgres_store_decides_audits_and_verifies() {
    require_deps();
    let admin = std::env::var("WARDEN_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://warden:warden@127.0.0.1:5432/postgres".into());
    let name = format!("warden_t_cli_{}", std::process::id());
    let created = Command::new("psql")
        .args([
            admin.as_str(),
            "-q",
            "-c",
            &format!("DROP DATABASE IF EXISTS {name}"),
            "-c",
            &format!("CREATE DATABASE {name}"),
        ])
        .output()
        .expect("psql (PostgreSQL client) is installed by scripts/deps.d/40-gateway.sh");
    assert!(
        created.status.success(),
        "PostgreSQL not reachable at {admin}: {}; run scripts/deps.d/40-gateway.sh",
        String::from_utf8_lossy(&created.stderr)
    );
    let url = format!("{}/{name}", admin.rsplit_once('/').unwrap().0);

    let tmp = tempfile::tempdir().unwrap();
    write_inventory(tmp.path(), None, "");
    let w = Warden::start(tmp.path(), &["--db", &url]);
    let dir = tmp.path().to_str().unwrap();
    let out = warden(&["token", "issue", "--agent", "alpha", dir, "--db", &url]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let mut a = Mcp::connect(w.addr, &token);
    let v = a.call("everything.echo", json!({"message": "stored in postgres"}));
    assert!(result_text(&v).contains("stored in postgres"), "{v}");
    let v = a.call(
        "files.write_file",
        json!({"path": "/tmp/x", "content": "y"}),
    );
    assert_eq!(v["result"]["isError"], true);
    assert!(w.terminate().success());

    let out = warden(&["audit", "export", dir, "--db", &url]);
    let trail = String::from_utf8(out.stdout).unwrap();
    assert!(
        trail.contains("\"decision\":\"deny\"") && trail.contains("\"decision\":\"allow\""),
        "{trail}"
    );
    let out = warden(&["audit", "verify", dir, "--db", &url]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // Tampering is caught on PostgreSQL as well.
    let t = Command::new("psql")
        .args([url.as_str(), "-qc", "UPDATE audit SET record = replace(record, 'stored in postgres', 'nothing to see') WHERE record LIKE '%stored in postgres%'"])
        .output()
        .unwrap();
    assert!(t.status.success());
    let out = warden(&["audit", "verify", dir, "--db", &url]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("modified"));
    let _ = Command::new("psql")
        .args([
            admin.as_str(),
            "-qc",
            &format!("DROP DATABASE IF EXISTS {name}"),
        ])
        .output();
}
