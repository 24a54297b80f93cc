"""Reads the support inbox through the Warden gateway (MCP connector `mail`)."""

import json
import os
import urllib.request

GATEWAY = os.environ.get("WARDEN_GATEWAY_URL", "http://127.0.0.1:8080/mcp")
TOKEN = os.environ.get("WARDEN_AGENT_TOKEN", "")


def fetch_unread(limit: int = 20) -> list[dict]:
    body = json.dumps({
        "jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "mail.read_inbox", "arguments": {"limit": limit}},
    }).encode()
    req = urllib.request.Request(GATEWAY, data=body, headers={
        "Authorization": f"Bearer {TOKEN}",
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
    })
    with urllib.request.urlopen(req, timeout=30) as resp:
        result = json.load(resp)["result"]
    return json.loads(result["content"][0]["text"])
