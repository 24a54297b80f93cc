//! Reachability, shortest paths, path counting and minimum edge cuts.
//!
//! Every query runs on a [`View`]: the graph minus gated `CanInvoke` edges, non-traversable
//! edge kinds and an optional set of blocked edges (a proposed cut), so "re-run with the cut
//! applied" is the same query on a different view.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};

use crate::graph::{EdgeKind, Graph, NodeKind, Remedy};

/// The graph as attack paths see it.
#[derive(Debug, Clone)]
pub struct View<'g> {
    pub g: &'g Graph,
    blocked: HashSet<u32>,
}

impl<'g> View<'g> {
    pub fn new(g: &'g Graph) -> Self {
        View {
            g,
            blocked: HashSet::new(),
        }
    }

    /// The view with the edges these remedies remove taken away.
    pub fn with_remedies(g: &'g Graph, remedies: &[Remedy]) -> Self {
        let mut v = View::new(g);
        for r in remedies {
            v.blocked.extend(g.edges_removed_by(r));
        }
        v
    }

    pub fn block(&mut self, edges: impl IntoIterator<Item = u32>) {
        self.blocked.extend(edges);
    }

    /// Whether attack paths may use edge `e`.
    pub fn passable(&self, e: u32) -> bool {
        let ed = self.g.edge(e);
        ed.kind.traversable() && ed.gate.is_none() && !self.blocked.contains(&e)
    }

    /// Nodes reachable from `starts` over passable edges accepted by `filter`.
    pub fn reach(&self, starts: &[u32], filter: &dyn Fn(u32) -> bool) -> Vec<bool> {
        let mut seen = vec![false; self.g.node_count()];
        let mut q = VecDeque::new();
        for &s in starts {
            if !seen[s as usize] {
                seen[s as usize] = true;
                q.push_back(s);
            }
        }
        while let Some(n) = q.pop_front() {
            for &e in self.g.out(n) {
                if !self.passable(e) || !filter(e) {
                    continue;
                }
                let t = self.g.edge(e).to;
                if !seen[t as usize] {
                    seen[t as usize] = true;
                    q.push_back(t);
                }
            }
        }
        seen
    }

    /// Nodes from which one of `targets` is reachable.
    pub fn reach_back(&self, targets: &[u32], filter: &dyn Fn(u32) -> bool) -> Vec<bool> {
        let mut seen = vec![false; self.g.node_count()];
        let mut q = VecDeque::new();
        for &s in targets {
            if !seen[s as usize] {
                seen[s as usize] = true;
                q.push_back(s);
            }
        }
        while let Some(n) = q.pop_front() {
            for &e in self.g.inc(n) {
                if !self.passable(e) || !filter(e) {
                    continue;
                }
                let f = self.g.edge(e).from;
                if !seen[f as usize] {
                    seen[f as usize] = true;
                    q.push_back(f);
                }
            }
        }
        seen
    }

    /// Sparse backward search (for local questions on big graphs): the set of nodes from
    /// which `target` is reachable, visiting only those.
    pub fn ancestors(&self, target: u32, filter: &dyn Fn(u32) -> bool) -> HashSet<u32> {
        let mut seen = HashSet::new();
        seen.insert(target);
        let mut q = VecDeque::from([target]);
        while let Some(n) = q.pop_front() {
            for &e in self.g.inc(n) {
                if self.passable(e) && filter(e) {
                    let f = self.g.edge(e).from;
                    if seen.insert(f) {
                        q.push_back(f);
                    }
                }
            }
        }
        seen
    }

    /// Sparse forward search.
    pub fn descendants(&self, start: u32, filter: &dyn Fn(u32) -> bool) -> HashSet<u32> {
        self.descendants_of_all(&[start], filter)
    }

    /// Sparse forward search from several starts at once.
    pub fn descendants_of_all(&self, starts: &[u32], filter: &dyn Fn(u32) -> bool) -> HashSet<u32> {
        let mut seen: HashSet<u32> = starts.iter().copied().collect();
        let mut q: VecDeque<u32> = seen.iter().copied().collect();
        while let Some(n) = q.pop_front() {
            for &e in self.g.out(n) {
                if self.passable(e) && filter(e) {
                    let t = self.g.edge(e).to;
                    if seen.insert(t) {
                        q.push_back(t);
                    }
                }
            }
        }
        seen
    }

    /// A shortest path (edge indices) from any of `starts` to a node satisfying `is_target`.
    pub fn shortest_path(
        &self,
        starts: &[u32],
        is_target: &dyn Fn(u32) -> bool,
        filter: &dyn Fn(u32) -> bool,
    ) -> Option<Vec<u32>> {
        let mut parent: HashMap<u32, Option<u32>> = HashMap::new();
        let mut q = VecDeque::new();
        for &s in starts {
            if parent.insert(s, None).is_none() {
                if is_target(s) {
                    return Some(Vec::new());
                }
                q.push_back(s);
            }
        }
        while let Some(n) = q.pop_front() {
            for &e in self.g.out(n) {
                if !self.passable(e) || !filter(e) {
                    continue;
                }
                let t = self.g.edge(e).to;
                if parent.contains_key(&t) {
                    continue;
                }
                parent.insert(t, Some(e));
                if is_target(t) {
                    let mut path = vec![e];
                    let mut cur = n;
                    while let Some(Some(pe)) = parent.get(&cur) {
                        path.push(*pe);
                        cur = self.g.edge(*pe).from;
                    }
                    path.reverse();
                    return Some(path);
                }
                q.push_back(t);
            }
        }
        None
    }

    /// Nodes on some path from `sources` to `targets` (sparse: only those are visited).
    fn corridor(
        &self,
        sources: &[u32],
        targets: &[u32],
        filter: &dyn Fn(u32) -> bool,
    ) -> HashSet<u32> {
        let fwd = self.descendants_of_all(sources, filter);
        let mut both = HashSet::new();
        let mut q = VecDeque::new();
        for &t in targets {
            if fwd.contains(&t) && both.insert(t) {
                q.push_back(t);
            }
        }
        while let Some(n) = q.pop_front() {
            for &e in self.g.inc(n) {
                if self.passable(e) && filter(e) {
                    let f = self.g.edge(e).from;
                    if fwd.contains(&f) && both.insert(f) {
                        q.push_back(f);
                    }
                }
            }
        }
        both
    }

    /// Counts simple paths from `sources` to `targets` (a path ends at its first target).
    /// Stops after `budget` steps; the flag says whether the count is complete.
    pub fn count_paths(
        &self,
        sources: &[u32],
        targets: &[u32],
        filter: &dyn Fn(u32) -> bool,
        budget: usize,
    ) -> (usize, bool) {
        let corridor = self.corridor(sources, targets, filter);
        let tset: HashSet<u32> = targets.iter().copied().collect();
        let mut count = 0usize;
        let mut steps = 0usize;
        let mut on_path: HashSet<u32> = HashSet::new();
        // Iterative DFS: stack of (node, next out-edge position).
        for &s in sources {
            if !corridor.contains(&s) {
                continue;
            }
            if tset.contains(&s) {
                count += 1;
                continue;
            }
            let mut stack: Vec<(u32, usize)> = vec![(s, 0)];
            on_path.insert(s);
            while let Some(&mut (n, ref mut pos)) = stack.last_mut() {
                steps += 1;
                if steps > budget {
                    return (count, false);
                }
                let outs = self.g.out(n);
                if *pos >= outs.len() {
                    on_path.remove(&n);
                    stack.pop();
                    continue;
                }
                let e = outs[*pos];
                *pos += 1;
                if !self.passable(e) || !filter(e) {
                    continue;
                }
                let t = self.g.edge(e).to;
                if !corridor.contains(&t) || on_path.contains(&t) {
                    continue;
                }
                if tset.contains(&t) {
                    count += 1;
                    continue;
                }
                on_path.insert(t);
                stack.push((t, 0));
            }
        }
        (count, true)
    }

    /// A minimum cut, over the edges a human can change, separating `sources` from `targets`.
    ///
    /// Changeable edges ([`Graph::remedy`]) cost 1, every other edge is uncuttable; each tool
    /// reached through `CanInvoke` may instead be gated as a whole (cost 1). Returns `None`
    /// when no such cut exists (a path made only of unchangeable edges).
    pub fn min_cut(
        &self,
        sources: &[u32],
        targets: &[u32],
        filter: &dyn Fn(u32) -> bool,
    ) -> Option<Vec<Remedy>> {
        let corridor = self.corridor(sources, targets, filter);
        if corridor.is_empty() {
            return Some(Vec::new());
        }
        const INF: i64 = 1 << 40;
        let mut nodes: Vec<u32> = corridor.iter().copied().collect();
        nodes.sort_unstable();
        let local: HashMap<u32, usize> = nodes.iter().enumerate().map(|(i, &n)| (n, i)).collect();
        let mut net = FlowNet::new(nodes.len() + 2);
        let s = nodes.len();
        let t = nodes.len() + 1;
        // Label of each network arc that a cut may contain.
        let mut labels: HashMap<usize, Remedy> = HashMap::new();
        let mut gate_node: HashMap<u32, usize> = HashMap::new();
        for &n in &nodes {
            for &e in self.g.out(n) {
                if !self.passable(e) || !filter(e) {
                    continue;
                }
                let ed = self.g.edge(e);
                let Some(&to) = local.get(&ed.to) else {
                    continue;
                };
                let from = local[&n];
                let remedy = self.g.remedy(e);
                let cap = if remedy.is_some() { 1 } else { INF };
                let to = if ed.kind == EdgeKind::CanInvoke
                    && self.g.node(ed.to).kind == NodeKind::Tool
                {
                    *gate_node.entry(ed.to).or_insert_with(|| {
                        let gn = net.add_node();
                        let arc = net.add_arc(gn, to, 1);
                        labels.insert(
                            arc,
                            Remedy::GateTool {
                                tool: self.g.node(ed.to).label.clone(),
                            },
                        );
                        gn
                    })
                } else {
                    to
                };
                let arc = net.add_arc(from, to, cap);
                if let Some(r) = remedy {
                    labels.insert(arc, r);
                }
            }
        }
        for &x in sources {
            if let Some(&l) = local.get(&x) {
                net.add_arc(s, l, INF);
            }
        }
        for &x in targets {
            if let Some(&l) = local.get(&x) {
                net.add_arc(l, t, INF);
            }
        }
        let flow = net.max_flow(s, t, INF);
        if flow >= INF {
            return None;
        }
        let side = net.residual_reach(s);
        let mut out: BTreeSet<Remedy> = BTreeSet::new();
        for (arc, r) in &labels {
            let (u, v, cap) = net.arc(*arc);
            if side[u] && !side[v] && cap > 0 {
                out.insert(r.clone());
            }
        }
        Some(out.into_iter().collect())
    }
}

/// Dinic's maximum flow on a small network.
struct FlowNet {
    head: Vec<Vec<usize>>,
    to: Vec<usize>,
    cap: Vec<i64>,
    orig: Vec<i64>,
}

impl FlowNet {
    fn new(n: usize) -> Self {
        FlowNet {
            head: vec![Vec::new(); n],
            to: Vec::new(),
            cap: Vec::new(),
            orig: Vec::new(),
        }
    }
    fn add_node(&mut self) -> usize {
        self.head.push(Vec::new());
        self.head.len() - 1
    }
    fn add_arc(&mut self, u: usize, v: usize, c: i64) -> usize {
        let id = self.to.len();
        self.head[u].push(id);
        self.to.push(v);
        self.cap.push(c);
        self.orig.push(c);
        self.head[v].push(id + 1);
        self.to.push(u);
        self.cap.push(0);
        self.orig.push(0);
        id
    }
    fn arc(&self, a: usize) -> (usize, usize, i64) {
        (self.to[a ^ 1], self.to[a], self.orig[a])
    }
    fn bfs(&self, s: usize, level: &mut [i32]) {
        level.iter_mut().for_each(|l| *l = -1);
        level[s] = 0;
        let mut q = VecDeque::from([s]);
        while let Some(u) = q.pop_front() {
            for &a in &self.head[u] {
                let v = self.to[a];
                if self.cap[a] > 0 && level[v] < 0 {
                    level[v] = level[u] + 1;
                    q.push_back(v);
                }
            }
        }
    }
    fn dfs(&mut self, u: usize, t: usize, f: i64, level: &[i32], it: &mut [usize]) -> i64 {
        if u == t {
            return f;
        }
        while it[u] < self.head[u].len() {
            let a = self.head[u][it[u]];
            let v = self.to[a];
            if self.cap[a] > 0 && level[v] == level[u] + 1 {
                let d = self.dfs(v, t, f.min(self.cap[a]), level, it);
                if d > 0 {
                    self.cap[a] -= d;
                    self.cap[a ^ 1] += d;
                    return d;
                }
            }
            it[u] += 1;
        }
        0
    }
    fn max_flow(&mut self, s: usize, t: usize, limit: i64) -> i64 {
        let n = self.head.len();
        let mut flow = 0i64;
        let mut level = vec![-1i32; n];
        loop {
            self.bfs(s, &mut level);
            if level[t] < 0 {
                return flow;
            }
            let mut it = vec![0usize; n];
            loop {
                let f = self.dfs(s, t, i64::MAX, &level, &mut it);
                if f == 0 {
                    break;
                }
                flow += f;
                if flow >= limit {
                    return flow;
                }
            }
        }
    }
    fn residual_reach(&self, s: usize) -> Vec<bool> {
        let mut seen = vec![false; self.head.len()];
        seen[s] = true;
        let mut q = VecDeque::from([s]);
        while let Some(u) = q.pop_front() {
            for &a in &self.head[u] {
                let v = self.to[a];
                if self.cap[a] > 0 && !seen[v] {
                    seen[v] = true;
                    q.push_back(v);
                }
            }
        }
        seen
    }
}
