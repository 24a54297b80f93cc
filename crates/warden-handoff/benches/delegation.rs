//! In-process costs of delegation tokens: `cargo bench -p warden-handoff --bench delegation`.
//!
//! `verify_*` runs on every `tools/call` of a delegated session (the gateway's hot path);
//! `issue_and_attenuate` once per handoff. Entitlement sets of 10 and 200 tools per agent,
//! chains of 1 and 3 handoffs.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use warden_handoff::DelegationKeys;
use warden_handoff::delegation::{attenuate, issue, verify};

fn main() {
    divan::main();
}

fn tools(n: usize) -> BTreeSet<String> {
    (0..n).map(|i| format!("conn{}.tool{i}", i % 7)).collect()
}

fn chain(keys: &DelegationKeys, n_tools: usize, hops: usize) -> String {
    let exp = SystemTime::now() + Duration::from_secs(3600);
    let set = tools(n_tools);
    let mut t = issue(keys, "task", "alice", "a0", &set, exp, 8).unwrap();
    for i in 0..hops {
        t = attenuate(
            &t,
            &keys.public_key(),
            &format!("a{i}"),
            &format!("a{}", i + 1),
            &set,
            exp,
        )
        .unwrap();
    }
    t
}

#[divan::bench(args = [(10, 1), (10, 3), (200, 1), (200, 3)])]
fn verify_allowed(bencher: divan::Bencher, (n_tools, hops): (usize, usize)) {
    let keys = DelegationKeys::generate();
    let t = chain(&keys, n_tools, hops);
    let pk = keys.public_key();
    let holder = format!("a{hops}");
    bencher.bench(|| verify(&t, &pk, &holder, "conn0.tool0", SystemTime::now()).unwrap());
}

#[divan::bench(args = [(10, 1), (200, 3)])]
fn verify_refused_tool(bencher: divan::Bencher, (n_tools, hops): (usize, usize)) {
    let keys = DelegationKeys::generate();
    let t = chain(&keys, n_tools, hops);
    let pk = keys.public_key();
    let holder = format!("a{hops}");
    bencher.bench(|| verify(&t, &pk, &holder, "other.tool", SystemTime::now()).unwrap_err());
}

#[divan::bench(args = [10, 200])]
fn issue_and_attenuate(bencher: divan::Bencher, n_tools: usize) {
    let keys = DelegationKeys::generate();
    bencher.bench(|| chain(&keys, n_tools, 1));
}
