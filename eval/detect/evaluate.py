#!/usr/bin/env python3
"""Evaluates warden-detect through the `warden` binary and prints precision, recall and
false-positive rate tables.

    cargo build -p warden-cli            # once
    python3 eval/detect/evaluate.py      # WARDEN_BIN overrides target/debug/warden

1. Injection: eval/detect/data/outputs-eval.jsonl (gen_outputs.py --split eval --seed 7)
   through `warden inspect text --jsonl`; label 1 counts as detected when the verdict is
   `injection`. Also per shape, family and obfuscation, and a threshold sweep.
2. Tool poisoning: eval/detect/data/real-tools.json (real servers, all must be clean) and
   eval/detect/data/poisoned-tools.json (gen_tools.py) through `warden inspect tools`.
"""
import collections, json, os, subprocess, sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DATA = os.path.join(ROOT, "eval", "detect", "data")


def warden():
    b = os.environ.get("WARDEN_BIN") or os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "debug", "warden")
    if not os.path.exists(b):
        sys.exit(f"{b} not found: run `cargo build -p warden-cli` or set WARDEN_BIN")
    return b


def prf(tp, fp, fn, tn):
    p = tp / (tp + fp) if tp + fp else 1.0
    r = tp / (tp + fn) if tp + fn else 1.0
    fpr = fp / (fp + tn) if fp + tn else 0.0
    return p, r, fpr


def injection(bin_):
    path = os.path.join(DATA, "outputs-eval.jsonl")
    docs = [json.loads(l) for l in open(path, encoding="utf-8")]
    out = subprocess.run([bin_, "inspect", "text", "--jsonl", path, "--format", "json", "--fail-on", "never",
                          "--threshold", "0.5"], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"warden inspect failed ({out.returncode}): {out.stderr}")
    res = [json.loads(l) for l in out.stdout.splitlines()]
    assert len(res) == len(docs), "one verdict per line"
    print(f"\n== Prompt injection in tool outputs ({len(docs)} documents: "
          f"{sum(d['label'] for d in docs)} injected, {sum(1 - d['label'] for d in docs)} clean)")
    print(f"{'threshold':>9} {'precision':>9} {'recall':>7} {'FPR':>7} {'TP':>5} {'FP':>5} {'FN':>5} {'TN':>5}")
    for th in [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]:
        tp = sum(1 for d, r in zip(docs, res) if d["label"] == 1 and r["score"] >= th)
        fp = sum(1 for d, r in zip(docs, res) if d["label"] == 0 and r["score"] >= th)
        fn = sum(1 for d, r in zip(docs, res) if d["label"] == 1 and r["score"] < th)
        tn = sum(1 for d, r in zip(docs, res) if d["label"] == 0 and r["score"] < th)
        p, rc, fpr = prf(tp, fp, fn, tn)
        mark = "  <- default" if th == 0.5 else ""
        print(f"{th:>9.2f} {p:>9.3f} {rc:>7.3f} {fpr:>7.3%} {tp:>5} {fp:>5} {fn:>5} {tn:>5}{mark}")
    for key in ["shape", "family", "obfuscation"]:
        print(f"\n-- by {key} (verdict `injection` at the default threshold)")
        print(f"{key:>14} {'recall':>7} {'n+':>5} {'FPR':>7} {'n-':>5}")
        groups = collections.defaultdict(list)
        for d, r in zip(docs, res):
            groups[d.get(key, "-")].append((d, r))
        for g, items in sorted(groups.items()):
            pos = [r for d, r in items if d["label"] == 1]
            neg = [r for d, r in items if d["label"] == 0]
            rec = sum(r["verdict"] == "injection" for r in pos) / len(pos) if pos else float("nan")
            fpr = sum(r["verdict"] == "injection" for r in neg) / len(neg) if neg else float("nan")
            print(f"{g:>14} {rec:>7.3f} {len(pos):>5} {fpr:>7.3%} {len(neg):>5}")
    fps = [(d, r) for d, r in zip(docs, res) if d["label"] == 0 and r["verdict"] == "injection"]
    fns = [(d, r) for d, r in zip(docs, res) if d["label"] == 1 and r["verdict"] != "injection"]
    if "-v" in sys.argv:
        for d, r in fps[:15]:
            print("FP", d["id"], d["shape"], r["score"], [e["rule"] + ":" + e["snippet"][:80] for e in r["evidence"][:2]])
        for d, r in fns[:25]:
            s, e = d["span"]
            print("FN", d["id"], d["shape"], d["family"], d.get("obfuscation"), r["score"], d["text"].encode()[s:e].decode()[:120])


def tools(bin_):
    print("\n== Tool poisoning in tool definitions")
    rows = []
    for name, expect in [("real-tools.json", "clean"), ("poisoned-tools.json", "poisoned")]:
        path = os.path.join(DATA, name)
        out = subprocess.run([bin_, "inspect", "tools", path, "--format", "json", "--fail-on", "critical"],
                             capture_output=True, text=True)
        if out.returncode not in (0, 1):
            sys.exit(f"warden inspect tools {name} failed: {out.stderr}")
        doc = json.loads(out.stdout)
        verdicts = collections.Counter(t["verdict"] for t in doc["tools"])
        rows.append((name, expect, len(doc["tools"]), verdicts))
        if "-v" in sys.argv and expect == "poisoned":
            for t in doc["tools"]:
                if t["verdict"] != "poisoned":
                    print("MISS", t["connector"], t["name"], t["score"])
        if "-v" in sys.argv and expect == "clean":
            for t in doc["tools"]:
                if t["verdict"] != "clean":
                    print("FP", t["connector"], t["name"], t["score"], [e["rule"] for e in t["evidence"]])
    (rn, _, rtotal, rv), (pn, _, ptotal, pv) = rows
    tp, fn = pv["poisoned"], ptotal - pv["poisoned"]
    fp, tn = rv["poisoned"], rtotal - rv["poisoned"]
    p, r, fpr = prf(tp, fp, fn, tn)
    print(f"{'set':>22} {'tools':>6} {'poisoned':>9} {'suspicious':>10} {'clean':>6}")
    for name, _, total, v in rows:
        print(f"{name:>22} {total:>6} {v['poisoned']:>9} {v['suspicious']:>10} {v['clean']:>6}")
    print(f"precision {p:.3f}  recall {r:.3f}  FPR {fpr:.3%}  (real servers' tools flagged poisoned: {fp}, suspicious: {rv['suspicious']})")


if __name__ == "__main__":
    b = warden()
    injection(b)
    tools(b)
