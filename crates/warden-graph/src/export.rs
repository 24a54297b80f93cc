//! Exports: Warden's own JSON, Graphviz DOT, and BloodHound CE OpenGraph JSON.

use serde_json::{Map, Value, json};

use crate::graph::Graph;

fn edge_json(g: &Graph, e: u32) -> Value {
    let ed = g.edge(e);
    let mut o = json!({
        "id": g.edge_id(e),
        "from": g.node(ed.from).id,
        "to": g.node(ed.to).id,
        "kind": ed.kind.as_str(),
        "traversable": ed.kind.traversable() && ed.gate.is_none(),
        "changeable": g.remedy(e).is_some(),
        "source": g.source_of(e),
    });
    if let Some(gate) = ed.gate {
        o["gated_by"] = json!(g.node(gate).id);
    }
    if let Some(t) = ed.via {
        o["via"] = json!(g.node(t).id);
    }
    o
}

fn node_json(g: &Graph, n: u32) -> Value {
    let mut v = serde_json::to_value(g.node(n)).unwrap_or(Value::Null);
    if let (Some(src), Value::Object(o)) = (g.node_source(n), &mut v) {
        o.insert("source".into(), json!(src));
    }
    v
}

/// `{"nodes": [...], "edges": [...]}` with every attribute, in id order.
pub fn to_json(g: &Graph) -> Value {
    let mut nodes: Vec<u32> = (0..g.node_count() as u32).collect();
    nodes.sort_by(|&a, &b| g.node(a).id.cmp(&g.node(b).id));
    let mut edges: Vec<u32> = (0..g.edge_count() as u32).collect();
    let ids: Vec<String> = edges.iter().map(|&e| g.edge_id(e)).collect();
    edges.sort_by(|&a, &b| ids[a as usize].cmp(&ids[b as usize]));
    json!({
        "nodes": nodes.iter().map(|&n| node_json(g, n)).collect::<Vec<_>>(),
        "edges": edges.iter().map(|&e| edge_json(g, e)).collect::<Vec<_>>(),
        "summary": {"nodes": g.node_count(), "edges": g.edge_count()},
    })
}

fn dot_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Graphviz DOT; non-traversable edges dashed, gated invocations labelled with their gate.
pub fn to_dot(g: &Graph) -> String {
    let mut s = String::from("digraph warden {\n  rankdir=LR;\n  node [fontname=\"Helvetica\"];\n");
    let mut nodes: Vec<u32> = (0..g.node_count() as u32).collect();
    nodes.sort_by(|&a, &b| g.node(a).id.cmp(&g.node(b).id));
    for n in nodes {
        let node = g.node(n);
        let shape = match node.kind.as_str() {
            "agent" => "box",
            "tool" => "ellipse",
            "identity" => "hexagon",
            "untrusted_source" => "invtriangle",
            "external_sink" => "triangle",
            "approval_gate" => "octagon",
            "memory_store" => "cylinder",
            "resource" | "governance" => "cylinder",
            _ => "plaintext",
        };
        let color = if node.attrs.tier_zero || node.attrs.admin {
            ", color=red"
        } else if node.kind.as_str() == "untrusted_source" {
            ", color=orange"
        } else {
            ""
        };
        s.push_str(&format!(
            "  \"{}\" [label=\"{}\\n({})\", shape={shape}{color}];\n",
            dot_escape(&node.id),
            dot_escape(&node.label),
            node.kind.as_str()
        ));
    }
    for e in 0..g.edge_count() as u32 {
        let ed = g.edge(e);
        let mut label = ed.kind.as_str().to_string();
        if let Some(t) = ed.via {
            label.push_str(&format!(" via {}", g.node(t).label));
        }
        if let Some(gate) = ed.gate {
            label.push_str(&format!(" [{}]", g.node(gate).label));
        }
        let style = if ed.kind.traversable() && ed.gate.is_none() {
            ""
        } else {
            ", style=dashed"
        };
        s.push_str(&format!(
            "  \"{}\" -> \"{}\" [label=\"{}\"{style}];\n",
            dot_escape(&g.node(ed.from).id),
            dot_escape(&g.node(ed.to).id),
            dot_escape(&label)
        ));
    }
    s.push_str("}\n");
    s
}

/// BloodHound CE OpenGraph: `{"metadata": {"source_kind": "Warden"}, "graph": {"nodes":
/// [{"id", "kinds", "properties"}], "edges": [{"start": {"value", "match_by"}, "end": {...},
/// "kind", "properties"}]}}`. Property values are strings, numbers or booleans only.
pub fn to_opengraph(g: &Graph) -> Value {
    let nodes: Vec<Value> = (0..g.node_count() as u32)
        .map(|n| {
            let node = g.node(n);
            let mut p = Map::new();
            p.insert("name".into(), json!(node.label));
            p.insert("displayname".into(), json!(node.label));
            p.insert("warden_kind".into(), json!(node.kind.as_str()));
            if let Some(s) = node.attrs.sensitivity {
                p.insert("sensitivity".into(), json!(s.as_str()));
            }
            p.insert("tier_zero".into(), json!(node.attrs.tier_zero));
            if node.attrs.admin {
                p.insert("admin".into(), json!(true));
            }
            if !node.attrs.effects.is_empty() {
                p.insert(
                    "effects".into(),
                    json!(
                        node.attrs
                            .effects
                            .iter()
                            .map(|e| e.as_str())
                            .collect::<Vec<_>>()
                    ),
                );
            }
            if node.attrs.irreversible {
                p.insert("irreversible".into(), json!(true));
            }
            if node.attrs.untrusted_output {
                p.insert("untrusted_output".into(), json!(true));
            }
            if node.attrs.orphaned {
                p.insert("orphaned".into(), json!(true));
            }
            if let Some(src) = g.node_source(n) {
                p.insert("source".into(), json!(src));
            }
            for (k, v) in &node.attrs.props {
                p.entry(k.clone()).or_insert_with(|| json!(v));
            }
            json!({"id": node.id, "kinds": [node.kind.opengraph_kind()], "properties": p})
        })
        .collect();
    let edges: Vec<Value> = (0..g.edge_count() as u32)
        .map(|e| {
            let ed = g.edge(e);
            let mut p = Map::new();
            p.insert(
                "traversable".into(),
                json!(ed.kind.traversable() && ed.gate.is_none()),
            );
            p.insert("changeable".into(), json!(g.remedy(e).is_some()));
            p.insert("source".into(), json!(g.source_of(e)));
            if let Some(gate) = ed.gate {
                p.insert("gated_by".into(), json!(g.node(gate).id));
            }
            if let Some(t) = ed.via {
                p.insert("via".into(), json!(g.node(t).id));
            }
            json!({
                "start": {"value": g.node(ed.from).id, "match_by": "id"},
                "end": {"value": g.node(ed.to).id, "match_by": "id"},
                "kind": format!("Warden{}", ed.kind.as_str()),
                "properties": p,
            })
        })
        .collect();
    json!({
        "metadata": {"source_kind": "Warden"},
        "graph": {"nodes": nodes, "edges": edges},
    })
}
