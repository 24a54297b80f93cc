//! Scale benchmark: a generated organisation (default 2,000 teams ≈ 100k agents, 1M nodes,
//! 5M edges). Measures building the graph from a loaded inventory and computing all findings.
//! `WARDEN_GRAPH_TEAMS` changes the size. Peak RSS is printed at the end.
//!
//! Run: `cargo bench -p warden-graph --bench scale` (release build).

use std::sync::OnceLock;

use warden_core::Inventory;
use warden_graph::generate::{OrgShape, manifests};
use warden_graph::{EntitlementPolicy, Graph, Options, View, build, findings};

/// CPU seconds (user + system) this process has used: the machine is shared, so wall-clock
/// times alone overstate the cost when other jobs run.
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields 14 and 15 of /proc/PID/stat (utime, stime) in clock ticks (100 per second).
    (ticks(11) + ticks(12)) / 100.0
}

fn timed<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let (c, w) = (cpu_secs(), std::time::Instant::now());
    let out = f();
    eprintln!(
        "{what}: {:.2} s wall, {:.2} s CPU",
        w.elapsed().as_secs_f64(),
        cpu_secs() - c
    );
    out
}

fn teams() -> usize {
    std::env::var("WARDEN_GRAPH_TEAMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000)
}

fn inventory() -> &'static Inventory {
    static INV: OnceLock<Inventory> = OnceLock::new();
    INV.get_or_init(|| {
        let docs = manifests(OrgShape { teams: teams() });
        let t = std::time::Instant::now();
        let inv = Inventory::from_manifests(docs.iter().map(|(n, y)| (n.as_str(), y.as_str())))
            .expect("generated manifests parse");
        eprintln!(
            "parsed {} agents from {} manifests in {:.2?}",
            inv.agents.len(),
            docs.len(),
            t.elapsed()
        );
        inv
    })
}

fn graph() -> &'static Graph {
    static G: OnceLock<Graph> = OnceLock::new();
    G.get_or_init(|| {
        let g = build(inventory(), &EntitlementPolicy);
        eprintln!("graph: {} nodes, {} edges", g.node_count(), g.edge_count());
        g
    })
}

#[divan::bench(sample_count = 1, sample_size = 1)]
fn build_graph(bencher: divan::Bencher) {
    let inv = inventory();
    bencher.bench(|| timed("build", || build(inv, &EntitlementPolicy)));
}

#[divan::bench(sample_count = 1, sample_size = 1)]
fn all_findings(bencher: divan::Bencher) {
    let g = graph();
    bencher.bench(|| {
        let fs = timed("findings", || findings(&View::new(g), &Options::default()));
        eprintln!("{} findings", fs.len());
        fs
    });
}

fn main() {
    divan::main();
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        for l in status.lines().filter(|l| l.starts_with("VmHWM")) {
            eprintln!("peak memory: {}", l.trim_start_matches("VmHWM:").trim());
        }
    }
}
