//! Writes a ~100k-edge subgraph of a generated organisation for `bench/graph/compare.py`
//! and times the same path computations in-process.
//!
//! `cargo run --release -p warden-graph --example pathbench -- OUTDIR [TEAMS]`
//! writes `OUTDIR/edges.txt` (traversable edges, `from to` as integers), `OUTDIR/queries.json`
//! (sources and targets) and `OUTDIR/rust.json` (results and timings).

use std::io::Write;
use std::time::Instant;

use warden_core::Inventory;
use warden_graph::generate::{OrgShape, manifests};
use warden_graph::{EntitlementPolicy, NodeKind, View, build};

fn main() {
    let mut args = std::env::args().skip(1);
    let out = std::path::PathBuf::from(args.next().expect("usage: pathbench OUTDIR [TEAMS]"));
    let teams: usize = args.next().and_then(|t| t.parse().ok()).unwrap_or(49);
    std::fs::create_dir_all(&out).expect("create OUTDIR");
    let docs = manifests(OrgShape { teams });
    let inv = Inventory::from_manifests(docs.iter().map(|(n, y)| (n.as_str(), y.as_str())))
        .expect("generated manifests parse");
    let g = build(&inv, &EntitlementPolicy);
    let v = View::new(&g);
    let trav: Vec<u32> = (0..g.edge_count() as u32)
        .filter(|&e| v.passable(e))
        .collect();
    let mut f = std::io::BufWriter::new(std::fs::File::create(out.join("edges.txt")).unwrap());
    for &e in &trav {
        let ed = g.edge(e);
        writeln!(f, "{} {}", ed.from, ed.to).unwrap();
    }
    f.flush().unwrap();
    let sources: Vec<u32> = (0..g.node_count() as u32)
        .filter(|&n| g.node(n).kind == NodeKind::UntrustedSource)
        .collect();
    let targets: Vec<u32> = (0..g.node_count() as u32)
        .filter(|&n| g.node(n).attrs.tier_zero || g.node(n).attrs.admin)
        .collect();
    let all = |_: u32| true;

    // 1. Multi-source reachability from every untrusted source.
    let t = Instant::now();
    let reach = v.reach(&sources, &all);
    let reach_s = t.elapsed().as_secs_f64();
    let reach_count = reach.iter().filter(|&&r| r).count();

    // 2. Shortest path (hops) from each untrusted source to every tier-zero node it reaches.
    let t = Instant::now();
    let mut pairs = 0usize;
    let mut hop_sum = 0usize;
    let tset: std::collections::HashSet<u32> = targets.iter().copied().collect();
    for &s in &sources {
        // One BFS per source, like networkx single_source_shortest_path_length.
        let mut dist = vec![u32::MAX; g.node_count()];
        dist[s as usize] = 0;
        let mut q = std::collections::VecDeque::from([s]);
        while let Some(n) = q.pop_front() {
            for &e in g.out(n) {
                if !v.passable(e) {
                    continue;
                }
                let to = g.edge(e).to;
                if dist[to as usize] == u32::MAX {
                    dist[to as usize] = dist[n as usize] + 1;
                    q.push_back(to);
                }
            }
        }
        for &tg in &tset {
            if dist[tg as usize] != u32::MAX {
                pairs += 1;
                hop_sum += dist[tg as usize] as usize;
            }
        }
    }
    let sp_s = t.elapsed().as_secs_f64();

    // 3. One explicit path per (source, target) pair via the library's shortest_path.
    let t = Instant::now();
    let mut found = 0usize;
    for &s in &sources {
        for &tg in &targets {
            if v.shortest_path(&[s], &|n| n == tg, &all).is_some() {
                found += 1;
            }
        }
    }
    let paths_s = t.elapsed().as_secs_f64();

    // 4. Blast radius of every agent: nodes reachable from it (one BFS per agent).
    let agents: Vec<u32> = (0..g.node_count() as u32)
        .filter(|&n| g.node(n).kind == NodeKind::Agent)
        .collect();
    let t = Instant::now();
    let mut radius_sum = 0usize;
    for &a in &agents {
        radius_sum += v.descendants(a, &all).len() - 1;
    }
    let radius_s = t.elapsed().as_secs_f64();

    let q = serde_json::json!({"sources": sources, "targets": targets, "agents": agents});
    std::fs::write(out.join("queries.json"), q.to_string()).unwrap();
    let r = serde_json::json!({
        "nodes": g.node_count(), "edges": g.edge_count(), "traversable_edges": trav.len(),
        "reach_count": reach_count, "reach_s": reach_s,
        "pairs": pairs, "hop_sum": hop_sum, "sp_s": sp_s,
        "paths_found": found, "paths_s": paths_s,
        "radius_sum": radius_sum, "radius_s": radius_s,
    });
    std::fs::write(out.join("rust.json"), r.to_string()).unwrap();
    println!("{r}");
}
