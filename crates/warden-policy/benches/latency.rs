//! `cargo bench -p warden-policy --bench latency`: per-decision latency percentiles of
//! `decide` (each call timed on its own), printed as a table. Divan (`--bench decide`)
//! reports medians; this reports the tail the gateway's users feel.

use std::time::{Duration, Instant};

use warden_policy::{PolicyEngine, Request};

mod common;

/// (name, engine and requests, decisions to time, sliced)
type Row<'a> = (&'static str, &'a (PolicyEngine, Vec<Request>), usize, bool);

fn percentiles(engine: &PolicyEngine, reqs: &[Request], n: usize, sliced: bool) -> Vec<Duration> {
    // Warm up caches and the allocator.
    for r in reqs.iter().take(200) {
        std::hint::black_box(engine.decide(r));
    }
    let mut v = Vec::with_capacity(n);
    for i in 0..n {
        let r = &reqs[i % reqs.len()];
        let t = Instant::now();
        let d = if sliced {
            engine.decide(r)
        } else {
            engine.decide_unsliced(r)
        };
        v.push(t.elapsed());
        std::hint::black_box(d);
    }
    v.sort();
    v
}

fn main() {
    // `cargo bench` passes `--bench`; ignore arguments.
    let t0 = Instant::now();
    let acme = common::acme();
    let acme_load = t0.elapsed();
    let t0 = Instant::now();
    let large = common::large();
    let large_load = t0.elapsed();
    println!(
        "load: acme {:.1} ms, generated org (1,000 agents, 5,000 tools, 2,000 policies) {:.0} ms",
        acme_load.as_secs_f64() * 1e3,
        large_load.as_secs_f64() * 1e3
    );
    println!(
        "{:<28} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "case", "n", "p50 µs", "p90 µs", "p99 µs", "p99.9 µs", "max µs"
    );
    let rows: [Row; 4] = [
        ("acme sliced", &acme, 200_000, true),
        ("acme unsliced", &acme, 200_000, false),
        ("generated sliced", &large, 200_000, true),
        ("generated unsliced", &large, 2_000, false),
    ];
    for (name, (engine, reqs), n, sliced) in rows {
        let v = percentiles(engine, reqs, n, sliced);
        let p = |q: f64| v[((v.len() as f64 - 1.0) * q) as usize].as_secs_f64() * 1e6;
        println!(
            "{:<28} {:>9} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
            name,
            n,
            p(0.5),
            p(0.9),
            p(0.99),
            p(0.999),
            p(1.0)
        );
    }
}
