//! Scale benchmark: a generated organisation (default 2,000 teams ≈ 100k agents, 1M nodes,
//! 5M edges). Measures building the graph from a loaded inventory and computing all findings.
//! `WARDEN_GRAPH_TEAMS` changes the size. Peak RSS is printed at the end.
//!
//! Run: `cargo bench -p warden-graph --bench scale` (release build).

use std::sync::OnceLock;

use warden_core::Inventory;
use warden_graph::generate::{OrgShape, manifests};
use warden_graph::{EntitlementPolicy, Graph, Options, View, build, findings};

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
    bencher.bench(|| build(inv, &EntitlementPolicy));
}

#[divan::bench(sample_count = 1, sample_size = 1)]
fn all_findings(bencher: divan::Bencher) {
    let g = graph();
    bencher.bench(|| {
        let fs = findings(&View::new(g), &Options::default());
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
