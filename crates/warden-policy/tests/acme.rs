use std::path::PathBuf;

use warden_core::Inventory;
use warden_policy::{PolicyEngine, suite};

fn acme() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/acme")
}

#[test]
fn acme_suite_passes() {
    let inv = Inventory::load(&acme()).unwrap();
    let engine = PolicyEngine::load(&inv).unwrap_or_else(|e| panic!("{e}"));
    let results = suite::run_dir(&engine, &acme()).unwrap();
    assert!(results.len() >= 14);
    for r in &results {
        assert!(r.passed, "{}: {:?} {:?}", r.name, r.mismatches, r.decision);
    }
}
