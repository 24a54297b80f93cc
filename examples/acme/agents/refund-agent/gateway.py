"""Minimal MCP tools/call client for the Warden gateway."""

import json
import os
import urllib.request

GATEWAY = os.environ.get("WARDEN_GATEWAY_URL", "http://127.0.0.1:8080/mcp")


def call_tool(name: str, arguments: dict) -> dict:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                       "params": {"name": name, "arguments": arguments}}).encode()
    req = urllib.request.Request(GATEWAY, data=body, headers={
        "Authorization": "Bearer " + os.environ["WARDEN_AGENT_TOKEN"],
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
    })
    with urllib.request.urlopen(req, timeout=120) as resp:
        return json.load(resp)["result"]
