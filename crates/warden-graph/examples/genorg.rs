//! Writes a generated organisation's manifests to a directory, so the whole `warden`
//! pipeline (manifest loading, Cedar policies, graph, findings) can be run on it.
//!
//! `cargo run -p warden-graph --example genorg -- OUTDIR TEAMS`, then
//! `warden findings OUTDIR`.

use warden_graph::generate::{OrgShape, manifests};

fn main() {
    let mut args = std::env::args().skip(1);
    let out = std::path::PathBuf::from(args.next().expect("usage: genorg OUTDIR TEAMS"));
    let teams: usize = args.next().and_then(|t| t.parse().ok()).unwrap_or(1);
    std::fs::create_dir_all(&out).expect("create OUTDIR");
    for (name, yaml) in manifests(OrgShape { teams }) {
        std::fs::write(out.join(name), yaml).expect("write manifest");
    }
}
