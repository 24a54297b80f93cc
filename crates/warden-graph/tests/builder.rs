//! The builder merges duplicate edges whatever a node's out-degree (few edges: walked; many:
//! hashed), keeps the first edge's index, and formats sources only when asked.

use warden_graph::{EdgeKind, GraphBuilder, NodeKind};

#[test]
fn duplicate_edges_merge_below_and_above_the_scan_limit() {
    for fan_out in [3usize, 63, 64, 65, 500] {
        let mut b = GraphBuilder::new();
        let s = b.intern_source("t.yaml");
        let hub = b.node("agent:hub", NodeKind::Agent, "hub");
        let tools: Vec<u32> = (0..fan_out)
            .map(|i| b.node(format!("tool:c.t{i}"), NodeKind::Tool, &format!("c.t{i}")))
            .collect();
        let first: Vec<u32> = tools
            .iter()
            .map(|&t| b.edge(hub, t, EdgeKind::CanInvoke, s))
            .collect();
        // Every edge again (and in reverse order), plus a different kind to the same node.
        for (k, &t) in tools.iter().enumerate().rev() {
            assert_eq!(
                b.edge(hub, t, EdgeKind::CanInvoke, s),
                first[k],
                "fan-out {fan_out}: duplicate of edge {k} got a new index"
            );
        }
        let other = b.edge(hub, tools[0], EdgeKind::WritesTo, s);
        assert!(!first.contains(&other));
        // Same endpoints, different carrier tool: a distinct Influences edge.
        let u = b.node("resource:inbox", NodeKind::UntrustedSource, "inbox");
        let via1 = b.edge_via(u, hub, EdgeKind::Influences, Some(tools[0]), s);
        let via2 = b.edge_via(u, hub, EdgeKind::Influences, Some(tools[fan_out - 1]), s);
        assert_eq!(via1 == via2, fan_out == 1);
        assert_eq!(
            b.edge_via(u, hub, EdgeKind::Influences, Some(tools[0]), s),
            via1
        );
        let g = b.finish();
        assert_eq!(g.edge_count(), fan_out + 1 + 2, "fan-out {fan_out}");
        assert_eq!(g.out(hub).len(), fan_out + 1);
    }
}

#[test]
fn sources_format_file_line_and_column() {
    let mut b = GraphBuilder::new();
    let whole = b.intern_source("iam.json");
    let f = b.sources_mut().file("team.yaml");
    let at = b.sources_mut().loc(f, 12, 5);
    let line_only = b.sources_mut().loc(f, 7, 0);
    let a = b.node("agent:a", NodeKind::Agent, "a");
    let c = b.node("tool:c.t", NodeKind::Tool, "c.t");
    b.node_mut(a).source = Some(at);
    let e1 = b.edge(a, c, EdgeKind::CanInvoke, at);
    let e2 = b.edge(c, a, EdgeKind::HandsOffTo, whole);
    let e3 = b.edge(a, a, EdgeKind::HandsOffTo, line_only);
    let g = b.finish();
    assert_eq!(g.source_of(e1), "team.yaml:12:5");
    assert_eq!(g.source_of(e2), "iam.json");
    assert_eq!(g.source_of(e3), "team.yaml:7");
    assert_eq!(g.node_source(a).as_deref(), Some("team.yaml:12:5"));
    assert_eq!(g.node_source(c), None);
}
