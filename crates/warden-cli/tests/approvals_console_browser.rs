//! The approval console in real Chromium (playwright-core, Debian's chromium): an approver
//! logs in, sees the pending request appear without a reload, approves it with a reason,
//! and the waiting agent call completes; an outsider sees the request but the server
//! refuses their approval. Prerequisites: `scripts/deps.d/40-gateway.sh` and
//! `scripts/deps.d/60-approvals.sh` (CI runs both).

#[path = "gateway_support/mod.rs"]
mod gateway_support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use gateway_support::*;
use serde_json::{Value, json};

fn playwright_modules() -> std::path::PathBuf {
    repo_root().join("target/deps/approvals/node_modules")
}

fn login_token(w: &Warden, human: &str) -> String {
    let o = warden(&[
        "console",
        "login-token",
        "--as",
        human,
        "--format",
        "json",
        w.dir.to_str().unwrap(),
        "--db",
        w.db.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    v["token"].as_str().unwrap().to_string()
}

#[test]
fn approver_approves_in_chromium_and_the_waiting_call_completes() {
    require_deps();
    assert!(
        std::path::Path::new("/usr/bin/chromium").exists()
            && playwright_modules()
                .join("playwright-core/package.json")
                .exists(),
        "console browser test prerequisites missing (/usr/bin/chromium, {}): run `bash scripts/deps.d/60-approvals.sh` (CI does)",
        playwright_modules().display()
    );
    let dir = tempfile::tempdir().unwrap();
    write_inventory(dir.path(), None, "");
    std::fs::write(
        dir.path().join("approvals.yaml"),
        r#"
humans:
  - { id: approver@example.com, name: Avery Approver, groups: [ops-leads] }
  - { id: outsider@example.com, groups: [sales] }
groups:
  - { id: ops-leads }
  - { id: sales }
approvals:
  - id: echo-needs-a-lead
    when: { tools: [testkit.echo] }
    approvers: [group:ops-leads]
    expires: 10m
settings:
  approval_hold: 90s
"#,
    )
    .unwrap();
    let w = Warden::start(dir.path(), &[]);
    let agent_token = w.token("alpha");
    let base = format!("http://{}", w.addr);
    let shots = dir.path().join("shots");
    std::fs::create_dir_all(&shots).unwrap();

    let mut browser = Command::new("node")
        .arg(repo_root().join("tests/e2e/console/approve.cjs"))
        .args([
            base.as_str(),
            &login_token(&w, "approver@example.com"),
            &login_token(&w, "outsider@example.com"),
            shots.to_str().unwrap(),
        ])
        .env("NODE_PATH", playwright_modules())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(browser.stdout.take().unwrap()).lines();
    // The browser is logged in and showing an empty list: now the agent makes its call.
    let ready = lines.next().and_then(Result::ok).unwrap_or_default();
    if ready != "READY" {
        let out = browser.wait_with_output().unwrap();
        panic!(
            "browser did not start: {ready} {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let agent = Command::new(python())
        .args([
            fixture("mcp_client.py"),
            "http".into(),
            w.url(),
            agent_token,
            json!([{"call": "testkit.echo", "args": {"message": "send the weekly report"}}])
                .to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let result = lines.next().and_then(Result::ok).unwrap_or_default();
    let status = browser.wait().unwrap();
    let mut stderr = String::new();
    if let Some(mut e) = browser.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut stderr);
    }
    assert!(status.success(), "browser script failed: {stderr}");
    let seen: Value = serde_json::from_str(&result)
        .unwrap_or_else(|_| panic!("browser printed {result}; {stderr}"));

    assert_eq!(seen["whoami"], "approver@example.com");
    assert_eq!(seen["pending_before"], "0");
    assert_eq!(
        seen["reloaded"], false,
        "the request must appear without a reload: {seen}"
    );
    let card = seen["card_text"].as_str().unwrap();
    for want in [
        "alpha",
        "testkit.echo",
        "olivia@example.com",
        "send the weekly report",
    ] {
        assert!(card.contains(want), "card lacks {want}: {card}");
    }
    assert_eq!(seen["outsider_sees"], true);
    assert!(
        seen["outsider_warning"]
            .as_str()
            .unwrap()
            .contains("may not answer")
    );
    assert_eq!(
        seen["outsider_status"], 403,
        "the server refuses the outsider: {seen}"
    );
    assert!(
        seen["outsider_message"]
            .as_str()
            .unwrap()
            .contains("not a member")
    );
    assert!(
        seen["flash"]
            .as_str()
            .unwrap()
            .contains(seen["id"].as_str().unwrap())
    );

    let out = agent.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["calls"][0]["isError"], false, "{v}");
    assert!(
        v["calls"][0]["text"]
            .as_str()
            .unwrap()
            .contains("send the weekly report")
    );

    // The store agrees: approved by the approver via the console, then used once.
    let o = warden(&[
        "approvals",
        "show",
        seen["id"].as_str().unwrap(),
        "--format",
        "json",
        w.dir.to_str().unwrap(),
        "--db",
        w.db.to_str().unwrap(),
    ]);
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["status"], "consumed");
    assert_eq!(r["votes"][0]["human"], "approver@example.com");
    assert_eq!(r["votes"][0]["via"], "console");
    assert_eq!(r["votes"][0]["reason"], "customer verified by phone");
    assert!(shots.join("console-pending.png").exists());
    if let Ok(keep) = std::env::var("WARDEN_KEEP_SCREENSHOTS") {
        for f in ["console-pending.png", "console-approved.png"] {
            let _ = std::fs::copy(shots.join(f), std::path::Path::new(&keep).join(f));
        }
    }
    w.terminate();
}
