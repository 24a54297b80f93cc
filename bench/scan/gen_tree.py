#!/usr/bin/env python3
"""Generates a tree of mixed agent-repository source (Python, TypeScript, JSON, YAML,
Markdown, .env) of about SIZE_MB megabytes for the scanner benchmark, with a few planted
secrets (about one file in 300). Layout: OUT/small/part-NN/… (the first eighth) and OUT/rest/part-NN/…, so that
OUT/small is a smaller tree of the same mix (flat-memory comparison, detect-secrets).

Usage: gen_tree.py OUT SIZE_MB [--parts N]
"""

import argparse
import os
import random
import string

WORDS = ("agent tool call result message token context session handoff approval policy "
         "model prompt response user request config client server retry timeout cache key "
         "secret store index vector embed query document chunk stream event audit trace").split()


def ident(rng):
    return "_".join(rng.choice(WORDS) for _ in range(rng.randint(1, 3)))


def py_block(rng):
    name = ident(rng)
    return (f"\n\ndef {name}(self, {ident(rng)}: str, {ident(rng)}: int = {rng.randint(0, 99)}) -> dict:\n"
            f"    \"\"\"Handle the {rng.choice(WORDS)} {rng.choice(WORDS)} for the current {rng.choice(WORDS)}.\"\"\"\n"
            f"    {ident(rng)} = self.{ident(rng)}.get({ident(rng)!r}, {{}})\n"
            f"    if not {ident(rng)}:\n        raise ValueError(\"missing {rng.choice(WORDS)}\")\n"
            f"    api_key = os.environ.get(\"{ident(rng).upper()}_API_KEY\")\n"
            f"    return {{\"{rng.choice(WORDS)}\": {ident(rng)}, \"token_count\": len({ident(rng)})}}\n")


def ts_block(rng):
    return (f"\nexport async function {ident(rng).replace('_', '')}({ident(rng)}: string): Promise<Record<string, unknown>> {{\n"
            f"  const {ident(rng)} = await fetch(`${{baseUrl}}/{rng.choice(WORDS)}`, {{ headers: {{ Authorization: `Bearer ${{process.env.API_TOKEN}}` }} }});\n"
            f"  const secretName = \"{rng.choice(WORDS)}-{rng.randint(0, 999)}\";\n"
            f"  return {{ {rng.choice(WORDS)}: {rng.randint(0, 10**6)}, key: secretName }};\n}}\n")


def json_block(rng):
    return (f'  "{ident(rng)}": {{"version": "{rng.randint(0, 9)}.{rng.randint(0, 30)}.{rng.randint(0, 9)}", '
            f'"integrity": "sha512-{"".join(rng.choice(string.ascii_letters + string.digits + "+/") for _ in range(86))}==", '
            f'"resolved": "https://registry.example/{rng.choice(WORDS)}/-/{rng.choice(WORDS)}.tgz"}},\n')


def md_block(rng):
    return "\n" + " ".join(rng.choice(WORDS) for _ in range(rng.randint(40, 120))) + ".\n"


def yaml_block(rng):
    return (f"- id: {ident(rng)}\n  owner: {rng.choice(WORDS)}@acme.example\n  token: ${{env:{ident(rng).upper()}}}\n"
            f"  model: claude-sonnet-4-5\n  retries: {rng.randint(0, 5)}\n")


KINDS = [("py", py_block, 0.35), ("ts", ts_block, 0.25), ("json", json_block, 0.15), ("md", md_block, 0.15),
         ("yaml", yaml_block, 0.1)]


def secret(rng):
    al = string.ascii_letters + string.digits
    return rng.choice([
        "ghp_" + "".join(rng.choice(al) for _ in range(36)),
        "sk-ant-api03-" + "".join(rng.choice(al) for _ in range(93)) + "AA",
        "AKIA" + "".join(rng.choice(string.ascii_uppercase + "234567") for _ in range(16)),
    ])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("size_mb", type=int)
    ap.add_argument("--parts", type=int, default=32)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    # A pool of bodies per kind, reused with a unique header, keeps generation fast.
    pool = {}
    for ext, block, _ in KINDS:
        bodies = []
        for _ in range(40):
            target = rng.randint(2_000, 64_000)
            parts = []
            n = 0
            while n < target:
                b = block(rng)
                parts.append(b)
                n += len(b)
            bodies.append("".join(parts))
        pool[ext] = bodies
    total = a.size_mb * 1024 * 1024
    per_part = total // a.parts
    written = files = planted = 0
    for p in range(a.parts):
        part_bytes = 0
        group = "small" if p < max(1, a.parts // 8) else "rest"
        d = os.path.join(a.out, group, f"part-{p:02d}")
        i = 0
        while part_bytes < per_part:
            r = rng.random()
            acc = 0.0
            for ext, _, w in KINDS:
                acc += w
                if r <= acc:
                    break
            sub = os.path.join(d, f"pkg{i // 200:03d}")
            if i % 200 == 0:
                os.makedirs(sub, exist_ok=True)
            header = f"# file {p}-{i} {rng.random()}\n" if ext in ("py", "yaml", "md") else f"// file {p}-{i} {rng.random()}\n"
            if ext == "json":
                header = "{\n"
            body = rng.choice(pool[ext])
            if rng.random() < 1 / 300:
                body = body + f"\nleaked = \"{secret(rng)}\"\n"
                planted += 1
            text = header + body + ("}\n" if ext == "json" else "")
            with open(os.path.join(sub, f"f{i:05d}.{ext}"), "w") as fh:
                fh.write(text)
            part_bytes += len(text)
            i += 1
            files += 1
        written += part_bytes
    print(f"wrote {files} files, {written / 1e6:.0f} MB, {planted} planted secrets under {a.out}")


if __name__ == "__main__":
    main()
