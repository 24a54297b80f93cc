#!/usr/bin/env python3
"""Scores `warden scan --secrets-only` on a set written by generate.py.

Prints precision and recall per rule and overall, and lists misses and false alarms.
Usage: eval.py SET_DIR WARDEN_BINARY
"""

import collections
import json
import os
import subprocess
import sys


def main():
    set_dir, warden = sys.argv[1], sys.argv[2]
    labels = json.load(open(os.path.join(set_dir, "labels.json")))
    samples = os.path.join(set_dir, "samples")
    proc = subprocess.run(
        [warden, "scan", samples, "--secrets-only", "--no-ignore", "--no-progress", "--format", "json", "--fail-on", "critical"],
        capture_output=True, text=True,
    )
    if proc.returncode not in (0, 1):
        sys.exit(f"warden scan failed ({proc.returncode}): {proc.stderr}")
    report = json.loads(proc.stdout)
    predicted = collections.defaultdict(set)
    for f in report["findings"]:
        if f["rule_id"].startswith("scan.secret."):
            predicted[os.path.basename(f["location"]["file"])].add(f["rule_id"])
    rules = sorted({l for l in labels.values() if l} | {r for p in predicted.values() for r in p})
    tp, fp, fn = collections.Counter(), collections.Counter(), collections.Counter()
    misses, alarms = [], []
    for name, label in labels.items():
        pred = predicted.get(name, set())
        if label:
            if label in pred:
                tp[label] += 1
            else:
                fn[label] += 1
                misses.append((name, label, sorted(pred)))
        for r in pred:
            if r != label:
                fp[r] += 1
                alarms.append((name, label, r))
    ratio = lambda a, b: a / b if b else 1.0
    print(f"{'rule':34} {'TP':>5} {'FP':>5} {'FN':>5} {'precision':>10} {'recall':>8}")
    for r in rules:
        print(f"{r:34} {tp[r]:5} {fp[r]:5} {fn[r]:5} {ratio(tp[r], tp[r] + fp[r]):10.3f} {ratio(tp[r], tp[r] + fn[r]):8.3f}")
    T, F, N = sum(tp.values()), sum(fp.values()), sum(fn.values())
    print(f"{'OVERALL':34} {T:5} {F:5} {N:5} {ratio(T, T + F):10.3f} {ratio(T, T + N):8.3f}")
    decoys = sum(1 for l in labels.values() if not l)
    print(f"samples: {len(labels)} ({len(labels) - decoys} secrets, {decoys} decoys)")
    for name, label, pred in misses[:15]:
        print(f"  missed {name}: expected {label}, got {pred or 'nothing'}")
    for name, label, r in alarms[:15]:
        print(f"  false alarm {name}: {r} (label {label})")


if __name__ == "__main__":
    main()
