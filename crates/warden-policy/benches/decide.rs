//! `cargo bench -p warden-policy --bench decide`: one `decide` on the example organisation
//! and on a generated organisation (1,000 agents, 5,000 tools, 2,000 policies), sliced
//! and unsliced (the whole policy set, for comparison); `acme_gateway` is what the gateway
//! runs per call: the reused decision of a context-free pair when there is one
//! (`decide_reused`), `decide` otherwise.

use std::sync::LazyLock;

use warden_policy::{PolicyEngine, Request};

mod common;

static ACME: LazyLock<(PolicyEngine, Vec<Request>)> = LazyLock::new(common::acme);
static LARGE: LazyLock<(PolicyEngine, Vec<Request>)> = LazyLock::new(common::large);

fn main() {
    divan::main();
}

/// Runs `run` on the set's requests in turn, one per iteration.
fn cycle(
    set: &'static (PolicyEngine, Vec<Request>),
    run: impl Fn(&PolicyEngine, &Request),
) -> impl FnMut() {
    let mut i = 0;
    move || {
        let r = &set.1[i % set.1.len()];
        i += 1;
        run(&set.0, r);
    }
}

fn sliced(e: &PolicyEngine, r: &Request) {
    divan::black_box(e.decide(r));
}

fn unsliced(e: &PolicyEngine, r: &Request) {
    divan::black_box(e.decide_unsliced(r));
}

#[divan::bench(sample_count = 2000)]
fn acme_sliced(b: divan::Bencher) {
    LazyLock::force(&ACME);
    b.bench_local(cycle(&ACME, sliced));
}

#[divan::bench(sample_count = 2000)]
fn acme_gateway(b: divan::Bencher) {
    LazyLock::force(&ACME);
    b.bench_local(cycle(&ACME, |e, r| {
        match e.decide_reused(&r.agent, &r.tool, &r.args) {
            Some(d) => {
                divan::black_box(d);
            }
            None => sliced(e, r),
        }
    }));
}

#[divan::bench(sample_count = 2000)]
fn acme_unsliced(b: divan::Bencher) {
    LazyLock::force(&ACME);
    b.bench_local(cycle(&ACME, unsliced));
}

#[divan::bench(sample_count = 2000)]
fn large_sliced(b: divan::Bencher) {
    LazyLock::force(&LARGE);
    b.bench_local(cycle(&LARGE, sliced));
}

#[divan::bench(sample_count = 100, sample_size = 1)]
fn large_unsliced(b: divan::Bencher) {
    LazyLock::force(&LARGE);
    b.bench_local(cycle(&LARGE, unsliced));
}

#[divan::bench(sample_count = 200)]
fn large_could_allow(b: divan::Bencher) {
    LazyLock::force(&LARGE);
    b.bench_local(cycle(&LARGE, |e, r| {
        divan::black_box(e.could_allow(&r.agent, &r.tool));
    }));
}
