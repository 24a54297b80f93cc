//! Handoff planning and delegation tokens through the public API.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use serde_json::{Map, Value, json};
use warden_core::Inventory;
use warden_handoff::delegation::{attenuate, issue, public_key_from_hex, verify};
use warden_handoff::{DelegationKeys, HandoffError, Provenance, plan_handoff, purge_expired};

const ORG: &str = r#"
humans: [{ id: alice }, { id: dave }]
connectors:
  - id: crm
    mcp: { command: python3 }
    tools: { read: { effects: [read] }, update: { effects: [write] } }
  - id: pay
    mcp: { command: python3 }
    tools: { refund: { effects: [write, privileged], irreversible: true } }
agents:
  - id: triage
    owner: alice
    uses: [crm.read, crm.update]
    handoffs:
      - { to: refund, context: [ticket_id, customer_id], ttl: 15m }
      - { to: loose }
  - id: refund
    owner: dave
    uses: [pay.refund, crm.read]
    handoffs:
      - { to: auditor, context: [ticket_id], ttl: 5m }
  - id: auditor
    owner: dave
    uses: [crm.read]
  - id: loose
    owner: dave
    uses: [crm.read]
"#;

fn inv() -> Inventory {
    Inventory::from_manifests([("org.yaml", ORG)]).unwrap()
}

fn payload(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

fn tools(inv: &Inventory, agent: &str) -> BTreeSet<String> {
    inv.entitled_tools(&inv.agents[agent])
        .into_iter()
        .map(|t| t.qualified())
        .collect()
}

#[test]
fn undeclared_keys_are_dropped_and_named() {
    let p = plan_handoff(
        &inv(),
        "triage",
        "refund",
        &payload(json!({"ticket_id": "T-1", "customer_id": "C-9", "full_transcript": "…", "api_key": "x"})),
        &Provenance::default(),
        1_000,
    )
    .unwrap();
    let kept: Vec<&str> = p.kept.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(kept, ["customer_id", "ticket_id"]);
    assert_eq!(p.dropped, ["api_key", "full_transcript"]);
    assert_eq!(p.ttl_secs, 900);
    assert!(
        p.kept
            .iter()
            .all(|e| e.expires_at == 1_900 && e.written_by == "triage")
    );
    assert!(!p.tainted);
}

#[test]
fn undeclared_handoff_is_refused() {
    let err = plan_handoff(
        &inv(),
        "auditor",
        "refund",
        &Map::new(),
        &Provenance::default(),
        0,
    )
    .unwrap_err();
    assert!(matches!(err, HandoffError::Undeclared { .. }), "{err}");
    let err = plan_handoff(
        &inv(),
        "triage",
        "ghost",
        &Map::new(),
        &Provenance::default(),
        0,
    )
    .unwrap_err();
    assert!(matches!(err, HandoffError::UnknownAgent(_)), "{err}");
}

#[test]
fn handoff_without_allow_list_lets_nothing_travel() {
    let p = plan_handoff(
        &inv(),
        "triage",
        "loose",
        &payload(json!({"ticket_id": "T-1"})),
        &Provenance::default(),
        0,
    )
    .unwrap();
    assert!(p.kept.is_empty());
    assert_eq!(p.dropped, ["ticket_id"]);
    assert_eq!(p.ttl_secs, warden_handoff::DEFAULT_TTL.as_secs());
}

#[test]
fn taint_travels_with_the_entries_that_carry_it() {
    let prov = Provenance {
        tainted_keys: BTreeSet::from(["customer_id".to_string()]),
        written_by: [(
            "customer_id".to_string(),
            "triage/mail.read_inbox".to_string(),
        )]
        .into(),
        session_tainted: false,
    };
    let p = plan_handoff(
        &inv(),
        "triage",
        "refund",
        &payload(json!({"ticket_id": "T-1", "customer_id": "C-9"})),
        &prov,
        0,
    )
    .unwrap();
    assert!(p.tainted, "one tainted entry taints the receiving session");
    let by_key = |k: &str| p.kept.iter().find(|e| e.key == k).unwrap();
    assert!(by_key("customer_id").tainted);
    assert_eq!(by_key("customer_id").written_by, "triage/mail.read_inbox");
    assert!(!by_key("ticket_id").tainted);

    let whole = Provenance {
        session_tainted: true,
        ..Default::default()
    };
    let p = plan_handoff(
        &inv(),
        "triage",
        "refund",
        &payload(json!({"ticket_id": "T"})),
        &whole,
        0,
    )
    .unwrap();
    assert!(p.kept.iter().all(|e| e.tainted));
}

#[test]
fn entries_expire_at_their_ttl() {
    let p = plan_handoff(
        &inv(),
        "refund",
        "auditor",
        &payload(json!({"ticket_id": "T-1"})),
        &Provenance::default(),
        100,
    )
    .unwrap();
    let mut entries = p.kept.clone();
    assert!(purge_expired(&mut entries, 100 + 299).is_empty());
    assert_eq!(entries.len(), 1);
    assert_eq!(purge_expired(&mut entries, 100 + 300), ["ticket_id"]);
    assert!(entries.is_empty());
}

fn later(secs: u64) -> SystemTime {
    SystemTime::now() + Duration::from_secs(secs)
}

#[test]
fn delegate_cannot_call_a_tool_the_delegator_could_not() {
    let inv = inv();
    let keys = DelegationKeys::generate();
    let t = issue(
        &keys,
        "task-1",
        "alice",
        "triage",
        &tools(&inv, "triage"),
        later(600),
        3,
    )
    .unwrap();
    // Offline attenuation: the public key is enough.
    let public = public_key_from_hex(&keys.public_hex()).unwrap();
    let t2 = attenuate(
        &t,
        &public,
        "triage",
        "refund",
        &tools(&inv, "refund"),
        later(600),
    )
    .unwrap();

    // refund alone may issue refunds, but triage (up the chain) may not: refused.
    let err = verify(&t2, &public, "refund", "pay.refund", SystemTime::now()).unwrap_err();
    assert!(
        matches!(err, HandoffError::ToolNotDelegated { .. }),
        "{err}"
    );
    // triage may update tickets, refund may not: refused as well (intersection, not union).
    let err = verify(&t2, &public, "refund", "crm.update", SystemTime::now()).unwrap_err();
    assert!(
        matches!(err, HandoffError::ToolNotDelegated { .. }),
        "{err}"
    );
    // both may read: allowed, with the whole chain and the root human.
    let claims = verify(&t2, &public, "refund", "crm.read", SystemTime::now()).unwrap();
    assert_eq!(claims.chain, ["triage", "refund"]);
    assert_eq!(claims.root_human, "alice");
    assert_eq!(claims.task_id, "task-1");
    assert_eq!(claims.depth, 1);
}

#[test]
fn token_is_bound_to_its_current_holder() {
    let inv = inv();
    let keys = DelegationKeys::generate();
    let t = issue(
        &keys,
        "t",
        "alice",
        "triage",
        &tools(&inv, "triage"),
        later(600),
        3,
    )
    .unwrap();
    let t2 = attenuate(
        &t,
        &keys.public_key(),
        "triage",
        "refund",
        &tools(&inv, "refund"),
        later(600),
    )
    .unwrap();
    let err = verify(
        &t2,
        &keys.public_key(),
        "triage",
        "crm.read",
        SystemTime::now(),
    )
    .unwrap_err();
    assert!(matches!(err, HandoffError::WrongHolder { .. }), "{err}");
    // Only the holder can pass it on.
    let err = attenuate(
        &t2,
        &keys.public_key(),
        "triage",
        "auditor",
        &tools(&inv, "auditor"),
        later(60),
    )
    .unwrap_err();
    assert!(matches!(err, HandoffError::WrongHolder { .. }), "{err}");
}

#[test]
fn chain_deeper_than_the_limit_is_refused() {
    let inv = inv();
    let keys = DelegationKeys::generate();
    let pk = keys.public_key();
    let t = issue(
        &keys,
        "t",
        "alice",
        "triage",
        &tools(&inv, "triage"),
        later(600),
        1,
    )
    .unwrap();
    let t = attenuate(
        &t,
        &pk,
        "triage",
        "refund",
        &tools(&inv, "refund"),
        later(600),
    )
    .unwrap();
    assert!(verify(&t, &pk, "refund", "crm.read", SystemTime::now()).is_ok());
    let t = attenuate(
        &t,
        &pk,
        "refund",
        "auditor",
        &tools(&inv, "auditor"),
        later(600),
    )
    .unwrap();
    let err = verify(&t, &pk, "auditor", "crm.read", SystemTime::now()).unwrap_err();
    assert!(
        matches!(err, HandoffError::TooDeep { depth: 2, max: 1 }),
        "{err}"
    );
}

#[test]
fn expired_token_is_refused() {
    let inv = inv();
    let keys = DelegationKeys::generate();
    let pk = keys.public_key();
    let t = issue(
        &keys,
        "t",
        "alice",
        "triage",
        &tools(&inv, "triage"),
        later(600),
        3,
    )
    .unwrap();
    // A shorter expiry on the handoff wins over the authority block's.
    let t2 = attenuate(
        &t,
        &pk,
        "triage",
        "refund",
        &tools(&inv, "refund"),
        later(60),
    )
    .unwrap();
    assert!(verify(&t2, &pk, "refund", "crm.read", later(30)).is_ok());
    let err = verify(&t2, &pk, "refund", "crm.read", later(120)).unwrap_err();
    assert!(matches!(err, HandoffError::Expired), "{err}");
    let err = verify(&t, &pk, "triage", "crm.read", later(1_200)).unwrap_err();
    assert!(matches!(err, HandoffError::Expired), "{err}");
}

#[test]
fn tampered_or_foreign_tokens_are_refused() {
    let inv = inv();
    let keys = DelegationKeys::generate();
    let pk = keys.public_key();
    let t = issue(
        &keys,
        "t",
        "alice",
        "triage",
        &tools(&inv, "triage"),
        later(600),
        3,
    )
    .unwrap();

    // Flip one character in the middle of the token.
    let mut bytes = t.clone().into_bytes();
    let mid = bytes.len() / 2;
    bytes[mid] = if bytes[mid] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(bytes).unwrap();
    assert!(matches!(
        verify(&tampered, &pk, "triage", "crm.read", SystemTime::now()),
        Err(HandoffError::InvalidToken(_))
    ));

    // Signed by another key.
    let other = DelegationKeys::generate();
    let forged = issue(
        &other,
        "t",
        "alice",
        "triage",
        &tools(&inv, "triage"),
        later(600),
        3,
    )
    .unwrap();
    assert!(matches!(
        verify(&forged, &pk, "triage", "crm.read", SystemTime::now()),
        Err(HandoffError::InvalidToken(_))
    ));

    // Keys survive a round trip through their hex form (the store keeps them so).
    let restored = DelegationKeys::from_private_hex(&keys.private_hex()).unwrap();
    assert_eq!(restored.public_hex(), keys.public_hex());
}

#[test]
fn verify_until_names_the_earliest_confirmed_expiry() {
    use warden_handoff::delegation::{unix_secs, verify_until};
    let inv = inv();
    let keys = DelegationKeys::generate();
    let pk = keys.public_key();
    let t = issue(
        &keys,
        "t",
        "alice",
        "triage",
        &tools(&inv, "triage"),
        later(600),
        3,
    )
    .unwrap();
    let short = later(60);
    let t2 = attenuate(&t, &pk, "triage", "refund", &tools(&inv, "refund"), short).unwrap();
    let now = SystemTime::now();
    let (claims, until) = verify_until(&t2, &pk, "refund", "crm.read", now).unwrap();
    assert_eq!(claims.chain, ["triage", "refund"]);
    // The handoff's shorter expiry wins over the authority block's.
    let until = until.expect("Warden-made tokens state their expiries");
    assert_eq!(until, unix_secs(short));
    // It really holds up to that second and not after it.
    let at = std::time::UNIX_EPOCH + Duration::from_secs(until as u64);
    assert!(verify(&t2, &pk, "refund", "crm.read", at).is_ok());
    let after = at + Duration::from_secs(1);
    assert!(matches!(
        verify(&t2, &pk, "refund", "crm.read", after),
        Err(HandoffError::Expired)
    ));
    // A refused call has no validity to cache.
    assert!(verify_until(&t2, &pk, "refund", "pay.refund", now).is_err());
}
