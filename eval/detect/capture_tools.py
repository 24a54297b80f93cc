#!/usr/bin/env python3
"""Captures the `tools/list` output of real MCP servers from npm and PyPI (installed by
scripts/deps.d/60-detect.sh) over stdio, with a minimal JSON-RPC client, and writes
eval/detect/data/real-tools.json: {"servers": {name: {"package": ..., "tools": [...]}}}.

These definitions are the benign half of the tool-poisoning evaluation and the base that
gen_tools.py poisons. Run from the repository root: python3 eval/detect/capture_tools.py
"""
import json, os, subprocess, sys, tempfile, threading, queue

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEPS = os.path.join(ROOT, "target", "deps", "detect")
BIN = os.path.join(DEPS, "node_modules", ".bin")
VENV = os.path.join(DEPS, "venv", "bin")


def servers(tmp):
    repo = os.path.join(tmp, "repo")
    os.makedirs(repo)
    subprocess.run(["git", "init", "-q", repo], check=True)
    return {
        "everything": ("npm @modelcontextprotocol/server-everything@2026.8.31",
                       [os.path.join(BIN, "mcp-server-everything")], {}),
        "filesystem": ("npm @modelcontextprotocol/server-filesystem@2026.8.31",
                       [os.path.join(BIN, "mcp-server-filesystem"), tmp], {}),
        "memory": ("npm @modelcontextprotocol/server-memory@2026.8.31",
                   [os.path.join(BIN, "mcp-server-memory")],
                   {"MEMORY_FILE_PATH": os.path.join(tmp, "memory.jsonl")}),
        "sequential-thinking": ("npm @modelcontextprotocol/server-sequential-thinking@2026.8.31",
                                [os.path.join(BIN, "mcp-server-sequential-thinking")], {}),
        "fetch": ("PyPI mcp-server-fetch==2026.10.24", [os.path.join(VENV, "mcp-server-fetch")], {}),
        "git": ("PyPI mcp-server-git==2026.10.19",
                [os.path.join(VENV, "mcp-server-git"), "--repository", repo], {}),
        "time": ("PyPI mcp-server-time==2026.10.19",
                 [os.path.join(VENV, "mcp-server-time"), "--local-timezone", "UTC"], {}),
    }


def rpc_session(cmd, env):
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, env={**os.environ, **env}, text=True)
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(l) for l in p.stdout], daemon=True).start()

    def send(msg):
        p.stdin.write(json.dumps(msg) + "\n")
        p.stdin.flush()

    def wait(id_):
        while True:
            line = lines.get(timeout=60)  # bounded: a server that never answers fails the capture
            try:
                msg = json.loads(line)
            except ValueError:
                continue  # some servers print banners on stdout
            if msg.get("id") == id_:
                if "error" in msg:
                    raise RuntimeError(msg["error"])
                return msg["result"]

    send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "warden-eval-capture", "version": "0"}}})
    init = wait(1)
    send({"jsonrpc": "2.0", "method": "notifications/initialized"})
    tools, cursor, n = [], None, 2
    while True:
        params = {"cursor": cursor} if cursor else {}
        send({"jsonrpc": "2.0", "id": n, "method": "tools/list", "params": params})
        res = wait(n)
        tools += res.get("tools", [])
        cursor = res.get("nextCursor")
        n += 1
        if not cursor or n > 50:
            break
    p.stdin.close()
    p.terminate()
    p.wait(timeout=10)
    return init.get("serverInfo", {}), tools


def main():
    out = {"provenance": "tools/list captured over stdio by eval/detect/capture_tools.py", "servers": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (pkg, cmd, env) in servers(tmp).items():
            if not os.path.exists(cmd[0]):
                sys.exit(f"{cmd[0]} missing: run scripts/deps.d/60-detect.sh first")
            info, tools = rpc_session(cmd, env)
            print(f"{name}: {len(tools)} tools ({info.get('name')} {info.get('version')})", file=sys.stderr)
            out["servers"][name] = {"package": pkg, "serverInfo": info, "tools": tools}
    path = os.path.join(ROOT, "eval", "detect", "data", "real-tools.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
