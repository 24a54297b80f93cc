#!/usr/bin/env python3
"""The resources the MCP conformance suite's resource scenarios read (`test://static-text`,
`test://static-binary`, `test://template/{id}/data`) and subscribe to
(`test://watched-resource`, with `resources/subscribe` and `unsubscribe` handlers), served
over stdio with the PyPI `mcp` SDK so that `run.sh` can check the gateway's resource relay
against the suite. Tools and
prompts of the suite's fixture are not here: behind the gateway their names would be
`<connector>.<name>`, which the suite cannot be told.
"""

import base64
import json

import mcp_types as types
from mcp.server.mcpserver import MCPServer

# A 1x1 transparent PNG.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)

app = MCPServer("conformance-fixture", version="1.0.0")


@app.resource("test://static-text", mime_type="text/plain", description="Static text")
def static_text() -> str:
    return "This is the content of the static text resource."


@app.resource("test://static-binary", mime_type="image/png", description="Static binary")
def static_binary() -> bytes:
    return PNG


@app.resource("test://template/{id}/data", mime_type="application/json", description="Template")
def template(id: str) -> str:
    return json.dumps({"id": id, "templateTest": True, "data": f"Data for ID: {id}"})


@app.resource("test://watched-resource", mime_type="text/plain", description="Subscribed to by the suite")
def watched() -> str:
    return "Watched resource content."


async def on_subscription(_ctx, _params):
    return types.EmptyResult()


app._lowlevel_server.add_request_handler("resources/subscribe", types.SubscribeRequestParams, on_subscription)
app._lowlevel_server.add_request_handler("resources/unsubscribe", types.UnsubscribeRequestParams, on_subscription)


@app.tool(description="Unused: the agent needs one tool on a connector to reach its resources")
def fixture_ping() -> str:
    return "pong"


if __name__ == "__main__":
    app.run()
