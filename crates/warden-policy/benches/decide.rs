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

fn cycle(set: &'static (PolicyEngine, Vec<Request>), sliced: bool) -> impl FnMut() {
    let mut i = 0;
    move || {
        let r = &set.1[i % set.1.len()];
        i += 1;
        let d = if sliced {
            set.0.decide(r)
        } else {
            set.0.decide_unsliced(r)
        };
        divan::black_box(d);
    }
}

#[divan::bench(sample_count = 2000)]
fn acme_sliced(b: divan::Bencher) {
    LazyLock::force(&ACME);
    let f = cycle(&ACME, true);
    b.bench_local(f);
}

#[divan::bench(sample_count = 2000)]
fn acme_gateway(b: divan::Bencher) {
    LazyLock::force(&ACME);
    let reqs = &ACME.1;
    let mut i = 0;
    b.bench_local(move || {
        let r = &reqs[i % reqs.len()];
        i += 1;
        match ACME.0.decide_reused(&r.agent, &r.tool, &r.args) {
            Some(d) => {
                divan::black_box(d);
            }
            None => {
                divan::black_box(ACME.0.decide(r));
            }
        }
    });
}

#[divan::bench(sample_count = 2000)]
fn acme_unsliced(b: divan::Bencher) {
    LazyLock::force(&ACME);
    let f = cycle(&ACME, false);
    b.bench_local(f);
}

#[divan::bench(sample_count = 2000)]
fn large_sliced(b: divan::Bencher) {
    LazyLock::force(&LARGE);
    let f = cycle(&LARGE, true);
    b.bench_local(f);
}

#[divan::bench(sample_count = 100, sample_size = 1)]
fn large_unsliced(b: divan::Bencher) {
    LazyLock::force(&LARGE);
    let f = cycle(&LARGE, false);
    b.bench_local(f);
}

#[divan::bench(sample_count = 200)]
fn large_could_allow(b: divan::Bencher) {
    LazyLock::force(&LARGE);
    let reqs = &LARGE.1;
    let mut i = 0;
    b.bench_local(move || {
        let r = &reqs[i % reqs.len()];
        i += 1;
        divan::black_box(LARGE.0.could_allow(&r.agent, &r.tool));
    });
}
