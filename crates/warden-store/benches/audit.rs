//! In-process costs of the audit trail: `cargo bench -p warden-store --bench audit`.
//!
//! - `hash_record`: canonical JSON + sha256 of a typical `decision` event (per record);
//! - `redact_args`: credential redaction of typical tool arguments;
//! - `append_one_*`: one append committed to the store and awaited (writers without a
//!   journal), SQLite WAL with synchronous NORMAL and FULL;
//! - `journal_append_*`: one append made durable in the audit journal (what a gateway's
//!   `tools/call` waits for before it is forwarded), `normal` (write) and `full` (fdatasync);
//! - `append_64_concurrent_normal`: 64 callers appending at once (group commit: one
//!   transaction for the batch), time for all 64.

use serde_json::json;
use warden_store::audit::{GENESIS, chain_hash, record_text};
use warden_store::redact::redact_value;
use warden_store::{AuditEvent, AuditWriter, Durability, Store};

fn main() {
    divan::main();
}

fn event() -> AuditEvent {
    let mut ev = AuditEvent::now("decision");
    ev.agent = Some("refund-agent".into());
    ev.root_human = Some("dave@acme.example".into());
    ev.session = Some("9f1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e".into());
    ev.request = Some("6e37fcc6-42".into());
    ev.method = Some("tools/call".into());
    ev.tool = Some("payments.issue_refund".into());
    ev.args_digest = Some("ab".repeat(32));
    ev.args = Some(json!({"charge_id": "ch_123", "amount": 120, "reason": "broken blender"}));
    ev.decision = Some("allow".into());
    ev.policies = vec!["inventory.entitlement".into()];
    ev.reasons = vec!["the agent is entitled to this tool".into()];
    ev
}

#[divan::bench]
fn hash_record(b: divan::Bencher) {
    let v = serde_json::to_value(event()).unwrap();
    b.bench(|| chain_hash(GENESIS, &record_text(divan::black_box(42), &v)));
}

#[divan::bench]
fn redact_args(b: divan::Bencher) {
    let args = json!({"to": "customer@example.com", "subject": "Your refund", "body": "Hello Ana, your refund of 120 EUR is on its way.",
                      "headers": {"Authorization": "Bearer abcdefghijklmnop"}, "api_key": "k"});
    b.bench(|| redact_value(divan::black_box(&args)));
}

fn setup(d: Durability) -> (tokio::runtime::Runtime, tempfile::TempDir, AuditWriter) {
    setup_with(d, false)
}

fn setup_with(
    d: Durability,
    journaled: bool,
) -> (tokio::runtime::Runtime, tempfile::TempDir, AuditWriter) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let w = rt.block_on(async {
        let s = Store::open(&dir.path().join("b.db"), d).await.unwrap();
        if journaled {
            s.journaled_audit_writer(&dir.path().join("journal"))
                .await
                .unwrap()
                .0
        } else {
            s.audit_writer().await.unwrap()
        }
    });
    (rt, dir, w)
}

#[divan::bench(sample_count = 200)]
fn append_one_normal(b: divan::Bencher) {
    let (rt, _d, w) = setup(Durability::Normal);
    let ev = event();
    b.bench(|| rt.block_on(w.append(&ev)).unwrap());
}

#[divan::bench(sample_count = 100)]
fn append_one_full(b: divan::Bencher) {
    let (rt, _d, w) = setup(Durability::Full);
    let ev = event();
    b.bench(|| rt.block_on(w.append(&ev)).unwrap());
}

#[divan::bench(sample_count = 100)]
fn append_64_concurrent_normal(b: divan::Bencher) {
    let (rt, _d, w) = setup(Durability::Normal);
    let ev = event();
    b.bench(|| {
        rt.block_on(async {
            let mut set = tokio::task::JoinSet::new();
            for _ in 0..64 {
                let (w, ev) = (w.clone(), ev.clone());
                set.spawn(async move { w.append(&ev).await.unwrap() });
            }
            while set.join_next().await.is_some() {}
        })
    });
}

#[divan::bench(sample_count = 2000)]
fn journal_append_normal(b: divan::Bencher) {
    let (rt, _d, w) = setup_with(Durability::Normal, true);
    let ev = event();
    b.bench(|| rt.block_on(w.append(&ev)).unwrap());
}

#[divan::bench(sample_count = 200)]
fn journal_append_full(b: divan::Bencher) {
    let (rt, _d, w) = setup_with(Durability::Full, true);
    let ev = event();
    b.bench(|| rt.block_on(w.append(&ev)).unwrap());
}
