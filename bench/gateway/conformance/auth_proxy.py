#!/usr/bin/env python3
"""Loopback proxy that adds `Authorization: Bearer $WARDEN_TOKEN` to every request, so a
client without a header option (the MCP conformance suite) can reach `warden up`.

    WARDEN_TOKEN=... auth_proxy.py LISTEN_PORT UPSTREAM_URL
"""
import os
import sys

import httpx2 as httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

PORT, UPSTREAM = int(sys.argv[1]), sys.argv[2]
TOKEN = os.environ["WARDEN_TOKEN"]
client = httpx.AsyncClient(timeout=None)


async def relay(request: Request):
    headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
    headers["authorization"] = f"Bearer {TOKEN}"
    req = client.build_request(request.method, UPSTREAM, headers=headers, content=await request.body())
    resp = await client.send(req, stream=True)
    out_headers = {k: v for k, v in resp.headers.items() if k.lower() not in ("content-length", "transfer-encoding", "connection")}
    return StreamingResponse(resp.aiter_raw(), status_code=resp.status_code, headers=out_headers, background=None)


app = Starlette(routes=[Route("/mcp", relay, methods=["GET", "POST", "DELETE"])])
uvicorn.run(app, host="127.0.0.1", port=PORT, log_level="warning")
