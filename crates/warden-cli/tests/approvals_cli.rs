//! `warden approvals …` and `warden console login-token` against a real SQLite store and
//! the example organisation (examples/acme): eligibility, separation of duties, the
//! two-person rule, deny, refusals and the audit chain.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};
use warden_approval::{NewRequest, ops};
use warden_store::time::now_ms;
use warden_store::{Durability, Store};

const WARDEN: &str = env!("CARGO_BIN_EXE_warden");

fn acme() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/acme")
        .canonicalize()
        .unwrap()
}

fn warden(db: &Path, args: &[&str]) -> Output {
    let out = Command::new(WARDEN)
        .args(args)
        .arg(acme())
        .arg("--db")
        .arg(db)
        .output()
        .unwrap();
    eprintln!(
        "warden {args:?} -> {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn json_of(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).expect("JSON on stdout")
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A pending request as the gateway would store it, created through the library.
fn seed(
    db: &Path,
    agent: &str,
    owner: &str,
    tool: &str,
    args: Value,
    approvers: &[&str],
    required: u32,
) -> String {
    rt().block_on(async {
        let st = Store::open(db, Durability::Full).await.unwrap();
        let r = ops::open(
            &st,
            NewRequest {
                agent: agent.into(),
                owner: Some(owner.into()),
                root_human: Some(owner.into()),
                tool: tool.into(),
                effects: vec!["write".into(), "privileged".into()],
                irreversible: true,
                display_args: warden_store::redact::redact_value(&args),
                args,
                policies: vec!["inventory.approval.treasury-trades".into()],
                reasons: vec!["trades need two finance leads".into()],
                approvers: approvers.iter().map(|s| s.to_string()).collect(),
                approvals_required: required,
                separation_of_duties: true,
                ttl_ms: 600_000,
                ..Default::default()
            },
            now_ms(),
        )
        .await
        .unwrap();
        st.audit_approval(&r, "requested", None, None)
            .await
            .unwrap();
        st.close().await;
        r.id
    })
}

#[test]
fn two_person_rule_with_separation_of_duties_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("w.db");
    let id = seed(
        &db,
        "treasury-agent",
        "frank@acme.example",
        "market.place_order",
        json!({"symbol": "MMF-EUR", "side": "buy", "quantity": 250000, "api_key": "sk_live_abcdefghijklmnopqrstuvwx"}),
        &["group:finance-leads"],
        2,
    );

    let o = warden(&db, &["approvals", "list", "--format", "json"]);
    assert_eq!(o.status.code(), Some(0));
    let v = json_of(&o);
    assert_eq!(v["summary"]["pending"], 1);
    assert_eq!(v["approvals"][0]["id"], id.as_str());
    assert!(
        !String::from_utf8_lossy(&o.stdout).contains("sk_live"),
        "secret in list output"
    );

    let o = warden(&db, &["approvals", "show", &id, "--format", "json"]);
    assert_eq!(o.status.code(), Some(0));
    let v = json_of(&o);
    // finance-leads are bob, carol and frank; frank owns the agent.
    assert_eq!(
        v["eligible_approvers"],
        json!(["bob@acme.example", "carol@acme.example"])
    );
    assert_eq!(v["display_args"]["api_key"], "[REDACTED]");
    assert!(v.get("args").is_none());

    // The owner may not approve his own agent's trade.
    let o = warden(
        &db,
        &[
            "approvals",
            "approve",
            &id,
            "--as",
            "frank@acme.example",
            "--reason",
            "my trade",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("separation of duties"));
    // A support lead is not an approver.
    let o = warden(
        &db,
        &[
            "approvals",
            "approve",
            &id,
            "--as",
            "alice@acme.example",
            "--reason",
            "ok",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a member"));

    let o = warden(
        &db,
        &[
            "approvals",
            "approve",
            &id,
            "--as",
            "bob@acme.example",
            "--reason",
            "within mandate",
            "--format",
            "json",
        ],
    );
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        json_of(&o)["approval"]["status"],
        "pending",
        "one of two approvals"
    );
    // The same person does not count twice.
    let o = warden(
        &db,
        &[
            "approvals",
            "approve",
            &id,
            "--as",
            "bob@acme.example",
            "--reason",
            "again",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    let o = warden(
        &db,
        &[
            "approvals",
            "approve",
            &id,
            "--as",
            "carol@acme.example",
            "--reason",
            "checked the quote",
            "--format",
            "json",
        ],
    );
    assert_eq!(o.status.code(), Some(0));
    let v = json_of(&o);
    assert_eq!(v["approval"]["status"], "approved");
    assert_eq!(v["approval"]["votes"].as_array().unwrap().len(), 2);

    let o = warden(
        &db,
        &[
            "approvals",
            "list",
            "--status",
            "approved",
            "--format",
            "json",
        ],
    );
    assert_eq!(json_of(&o)["approvals"][0]["id"], id.as_str());

    // Every answer and refusal is in the audit chain, which verifies.
    let o = warden(&db, &["audit", "export", "--format", "jsonl"]);
    assert_eq!(o.status.code(), Some(0));
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    let outcomes: Vec<(String, String)> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|r| r.get("event").cloned().unwrap_or(r))
        .filter(|e| e["kind"] == "approval")
        .map(|e| {
            (
                e["outcome"].as_str().unwrap_or("").to_string(),
                e["detail"]["human"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = [
        ("requested", ""),
        ("refused", "frank@acme.example"),
        ("refused", "alice@acme.example"),
        ("pending", "bob@acme.example"),
        ("refused", "bob@acme.example"),
        ("approved", "carol@acme.example"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(outcomes, want);
    assert!(!text.contains("sk_live"));
    let o = warden(&db, &["audit", "verify"]);
    assert_eq!(o.status.code(), Some(0));
}

#[test]
fn deny_names_who_and_why_and_bad_input_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("w.db");
    let id = seed(
        &db,
        "refund-agent",
        "dave@acme.example",
        "payments.issue_refund",
        json!({"charge_id": "ch_1", "amount": 900}),
        &["group:finance-leads"],
        1,
    );
    let o = warden(
        &db,
        &[
            "approvals",
            "deny",
            &id,
            "--as",
            "carol@acme.example",
            "--reason",
            "duplicate of ch_0",
        ],
    );
    assert_eq!(o.status.code(), Some(0));
    let o = warden(&db, &["approvals", "show", &id]);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&o.stdout)
            .contains("denied by carol@acme.example: duplicate of ch_0")
    );
    // Answering a denied request is refused.
    let o = warden(
        &db,
        &[
            "approvals",
            "approve",
            &id,
            "--as",
            "bob@acme.example",
            "--reason",
            "ok",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    // Unusable input.
    assert_eq!(
        warden(&db, &["approvals", "show", "apr_nope"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        warden(
            &db,
            &[
                "approvals",
                "approve",
                "apr_nope",
                "--as",
                "bob@acme.example",
                "--reason",
                "x"
            ]
        )
        .status
        .code(),
        Some(2)
    );
    assert_eq!(
        warden(
            &db,
            &[
                "approvals",
                "approve",
                &id,
                "--as",
                "nobody@acme.example",
                "--reason",
                "x"
            ]
        )
        .status
        .code(),
        Some(2)
    );
    assert_eq!(
        warden(
            &db,
            &[
                "approvals",
                "approve",
                &id,
                "--as",
                "bob@acme.example",
                "--reason",
                " "
            ]
        )
        .status
        .code(),
        Some(2)
    );
    assert_eq!(
        warden(&db, &["approvals", "list", "--status", "bogus"])
            .status
            .code(),
        Some(2)
    );
    // No store at all: exit 2, nothing created.
    let missing = dir.path().join("none.db");
    assert_eq!(
        warden(&missing, &["approvals", "list"]).status.code(),
        Some(2)
    );
    assert!(!missing.exists());
}

#[test]
fn console_login_token_is_printed_once_and_redeems_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("w.db");
    let o = warden(
        &db,
        &[
            "console",
            "login-token",
            "--as",
            "bob@acme.example",
            "--format",
            "json",
        ],
    );
    assert_eq!(o.status.code(), Some(0));
    let v = json_of(&o);
    let token = v["token"].as_str().unwrap().to_string();
    assert!(
        v["login_url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/console/login?token={token}"))
    );
    assert_eq!(
        warden(
            &db,
            &["console", "login-token", "--as", "mallory@acme.example"]
        )
        .status
        .code(),
        Some(2)
    );
    rt().block_on(async {
        let st = Store::open(&db, Durability::Full).await.unwrap();
        assert_eq!(
            st.redeem_console_login(&token).await.unwrap().as_deref(),
            Some("bob@acme.example")
        );
        assert_eq!(st.redeem_console_login(&token).await.unwrap(), None);
    });
}

#[test]
fn approver_tokens_are_listed_without_secrets_and_revocable() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("w.db");
    let o = warden(
        &db,
        &[
            "approvals",
            "approver-token",
            "--as",
            "bob@acme.example",
            "--format",
            "json",
        ],
    );
    assert_eq!(o.status.code(), Some(0));
    let issued = json_of(&o);
    let (id, token) = (
        issued["id"].as_str().unwrap().to_string(),
        issued["token"].as_str().unwrap().to_string(),
    );
    let listed = warden(&db, &["approvals", "approver-tokens", "--format", "json"]);
    assert_eq!(listed.status.code(), Some(0));
    let v = json_of(&listed);
    assert_eq!(v["approver_tokens"][0]["id"], id.as_str());
    assert_eq!(v["approver_tokens"][0]["human"], "bob@acme.example");
    assert_eq!(v["approver_tokens"][0]["revoked_at"], Value::Null);
    assert!(
        !String::from_utf8_lossy(&listed.stdout).contains(&token),
        "the secret is never listed"
    );
    rt().block_on(async {
        let st = Store::open(&db, Durability::Full).await.unwrap();
        assert!(st.lookup_approver_token(&token).await.unwrap().is_some());
    });

    let o = warden(&db, &["approvals", "revoke-approver-token", &id]);
    assert_eq!(o.status.code(), Some(0));
    rt().block_on(async {
        let st = Store::open(&db, Durability::Full).await.unwrap();
        assert_eq!(
            st.lookup_approver_token(&token).await.unwrap(),
            None,
            "a revoked token is refused"
        );
        let audit = st.audit_tail(1).await.unwrap();
        assert_eq!(audit[0].event["outcome"], "revoked");
        assert_eq!(audit[0].event["detail"]["token_id"], id.as_str());
    });
    let v = json_of(&warden(
        &db,
        &["approvals", "approver-tokens", "--format", "json"],
    ));
    assert!(v["approver_tokens"][0]["revoked_at"].is_string());
    assert_eq!(
        warden(&db, &["approvals", "revoke-approver-token", "nope"])
            .status
            .code(),
        Some(2)
    );
}
