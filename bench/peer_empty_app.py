"""The peer of bench_service.py: an empty FastAPI endpoint on the same server stack.

``POST /v1/decide`` answers ``{}`` without reading the body: what FastAPI on uvicorn (uvloop,
httptools, the same workers and options as ``geowarden serve``) costs with no work at all. The
decision service's throughput is reported as a share of this one, measured in the same run.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import Response

app = FastAPI()


@app.post("/v1/decide")
async def decide() -> Response:
    """Nothing: the cost of the framework and the server alone."""
    return Response(b"{}", media_type="application/json")
