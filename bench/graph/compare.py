#!/usr/bin/env python3
"""Compare warden-graph path computations with networkx on the same subgraph.

Usage: compare.py OUTDIR   (OUTDIR written by the `pathbench` example; see compare.sh)
Prints a table: the same three queries, their results (must agree) and timings.
"""
import json
import sys
import time
from collections import deque

import networkx as nx


def main():
    out = sys.argv[1]
    rust = json.load(open(f"{out}/rust.json"))
    q = json.load(open(f"{out}/queries.json"))
    t = time.perf_counter()
    g = nx.DiGraph()
    g.add_nodes_from(range(rust["nodes"]))
    with open(f"{out}/edges.txt") as f:
        g.add_edges_from((int(a), int(b)) for a, b in (line.split() for line in f))
    load_s = time.perf_counter() - t
    sources, targets = q["sources"], q["targets"]
    tset = set(targets)

    t = time.perf_counter()
    reach = set(sources)
    for s in sources:
        reach |= nx.descendants(g, s)
    reach_s = time.perf_counter() - t

    t = time.perf_counter()
    pairs = hop_sum = 0
    for s in sources:
        d = nx.single_source_shortest_path_length(g, s)
        for tg in tset:
            if tg in d:
                pairs += 1
                hop_sum += d[tg]
    sp_s = time.perf_counter() - t

    t = time.perf_counter()
    found = 0
    for s in sources:
        for tg in targets:
            try:
                nx.shortest_path(g, s, tg)
                found += 1
            except nx.NetworkXNoPath:
                pass
            except nx.NodeNotFound:
                pass
    paths_s = time.perf_counter() - t

    t = time.perf_counter()
    radius = sum(len(nx.descendants(g, a)) for a in q["agents"])
    radius_s = time.perf_counter() - t

    rows = [
        ("multi-source reachability", rust["reach_count"], len(reach), rust["reach_s"], reach_s),
        ("BFS hop distances (pairs/sum)", f'{rust["pairs"]}/{rust["hop_sum"]}', f"{pairs}/{hop_sum}", rust["sp_s"], sp_s),
        ("shortest path per pair", rust["paths_found"], found, rust["paths_s"], paths_s),
        ("blast radius of every agent (sum)", rust["radius_sum"], radius, rust["radius_s"], radius_s),
    ]
    print(f'graph: {rust["nodes"]} nodes, {rust["traversable_edges"]} traversable edges '
          f'({rust["edges"]} in all); {len(sources)} untrusted sources, {len(targets)} tier-zero targets; '
          f'networkx load {load_s:.2f} s (not in the table)')
    print(f'{"query":34} {"warden result":>16} {"networkx result":>16} {"warden s":>10} {"networkx s":>11} {"speed-up":>9}')
    ok = True
    for name, a, b, ta, tb in rows:
        same = str(a) == str(b)
        ok &= same
        print(f"{name:34} {str(a):>16} {str(b):>16} {ta:10.4f} {tb:11.4f} {tb / max(ta, 1e-9):8.1f}x" + ("" if same else "  MISMATCH"))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
