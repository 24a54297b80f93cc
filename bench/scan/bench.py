#!/usr/bin/env python3
"""Runs warden, detect-secrets and rg (same keyword set) over the same trees in one run and
prints a table: wall time, throughput, CPU time / wall (cores used), peak RSS.

Usage: bench.py --warden BIN --detect-secrets BIN --keywords FILE TREE:LABEL[:ds] ...
A tree tagged `:ds` is also scanned by detect-secrets (it is too slow for the 1 GB tree;
its throughput on the smaller trees is what the speed ratio uses).
"""

import argparse
import os
import statistics
import subprocess
import time


def tree_bytes(path):
    total = files = 0
    for root, _, names in os.walk(path):
        for n in names:
            try:
                total += os.path.getsize(os.path.join(root, n))
                files += 1
            except OSError:
                pass
    return total, files


def run(cmd, reps):
    walls, cpus, rss = [], [], []
    for _ in range(reps):
        t0 = time.monotonic()
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.monotonic() - t0
        code = os.waitstatus_to_exitcode(status)
        err = p.stderr.read().decode(errors="replace")
        p.stderr.close()
        if code not in (0, 1):
            raise SystemExit(f"{cmd[0]} failed ({code}): {err[:2000]}")
        walls.append(wall)
        cpus.append(ru.ru_utime + ru.ru_stime)
        rss.append(ru.ru_maxrss / 1024)
    i = walls.index(statistics.median(walls)) if reps % 2 else 0
    return walls[i], cpus[i], max(rss)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--warden", required=True)
    ap.add_argument("--detect-secrets", required=True)
    ap.add_argument("--keywords", required=True)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("trees", nargs="+")
    a = ap.parse_args()
    rows = []
    for spec in a.trees:
        parts = spec.split(":")
        path, label, with_ds = parts[0], parts[1], len(parts) > 2 and parts[2] == "ds"
        size, files = tree_bytes(path)
        # Warm the page cache so every tool reads from memory.
        subprocess.run(["rg", "-uuu", "-c", "zzzqqq_no_match", path], stdout=subprocess.DEVNULL)
        tools = [
            ("rg (keyword floor)", ["rg", "-uuu", "-i", "-F", "-c", "-f", a.keywords, path], a.reps),
            ("warden scan --secrets-only", [a.warden, "scan", path, "--secrets-only", "--no-ignore", "--no-progress",
                                            "--format", "json", "--fail-on", "critical"], a.reps),
            ("warden scan (all rules+BOM)", [a.warden, "scan", path, "--no-ignore", "--no-progress", "--format", "json",
                                             "--fail-on", "critical"], a.reps),
        ]
        if with_ds:
            tools.append(("detect-secrets scan", [a.detect_secrets, "scan", "--all-files", path], 1))
        results = {}
        for name, cmd, reps in tools:
            wall, cpu, rss = run(cmd, reps)
            results[name] = wall
            rows.append((label, f"{size / 1e6:.0f} MB / {files} files", name, wall, size / 1e6 / wall, cpu / wall, rss))
        rg = results["rg (keyword floor)"]
        w = results["warden scan --secrets-only"]
        line = f"  {label}: warden/rg = {w / rg:.2f}x"
        if "detect-secrets scan" in results:
            line += f", detect-secrets/warden = {results['detect-secrets scan'] / w:.1f}x"
        rows.append(("__note__", line))
    print(f"{'tree':18} {'size':24} {'tool':30} {'wall s':>8} {'MB/s':>8} {'cores':>6} {'peak RSS MB':>12}")
    notes = []
    for r in rows:
        if r[0] == "__note__":
            notes.append(r[1])
            continue
        label, size, name, wall, tput, cores, rss = r
        print(f"{label:18} {size:24} {name:30} {wall:8.2f} {tput:8.1f} {cores:6.2f} {rss:12.1f}")
    print("ratios (wall time, same tree):")
    print("\n".join(notes))


if __name__ == "__main__":
    main()
