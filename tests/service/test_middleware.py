"""The ASGI middleware protecting an ordinary Starlette app, in process."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from geowarden.intel.snapshot import Snapshot
from geowarden.model import Decision, Facts
from geowarden.policy.engine import PolicyEngine
from geowarden.service.middleware import GeowardenMiddleware
from geowarden.warden import Warden


def get(app: Starlette, path: str, *, client: tuple[str, int], headers: dict[str, str] | None = None) -> httpx.Response:
    """One request through the ASGI app, from the given peer (no network, no test client)."""

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=client)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as c:
            return await c.get(path, headers=headers or {})

    return asyncio.run(go())


def make_app(snapshot: Snapshot, trusted: str, seen: list[Decision]) -> Starlette:
    async def chat(request: Request) -> JSONResponse:
        d = request.scope["state"]["geowarden"]
        return JSONResponse({"ok": True, "action": d.action.value})

    app = Starlette(routes=[Route("/v1/chat", chat), Route("/healthz", lambda r: JSONResponse({"ok": True}))])
    app.add_middleware(
        GeowardenMiddleware,
        warden=Warden(snapshot, PolicyEngine.load()),
        trusted_proxies=trusted,
        on_decision=lambda d, f: seen.append(d),
        appeal_url=lambda d: f"https://ai.example/appeal/{d.decision_id}",
    )
    return app


CASES = [
    ("1.2.4.8", 403, "block"),
    ("8.8.8.8", 200, "allow"),
    ("5.2.0.1", 200, "challenge"),  # passes; the app sees the decision and steps up
    ("10.0.0.1", 403, "review"),
]


@pytest.mark.parametrize(("xff", "status", "action"), CASES)
def test_requests_are_decided_before_the_app(tiny_snapshot: Snapshot, xff: str, status: int, action: str) -> None:
    seen: list[Decision] = []
    app = make_app(tiny_snapshot, "203.0.113.0/24", seen)  # the peer below is a trusted edge
    r = get(app, "/v1/chat", client=("203.0.113.1", 1234), headers={"x-forwarded-for": xff})
    assert r.status_code == status
    assert r.headers["x-geowarden-action"] == action
    if status == 403:
        assert r.json()["message"]
        assert r.json()["appeal_url"].startswith("https://ai.example/appeal/")
    else:
        assert r.json() == {"ok": True, "action": action}
    assert seen[-1].action.value == action


def test_untrusted_forwarding_headers_are_ignored(tiny_snapshot: Snapshot) -> None:
    seen: list[Decision] = []
    app = make_app(tiny_snapshot, "10.0.0.0/8", seen)
    r = get(app, "/v1/chat", client=("8.8.8.8", 1234), headers={"x-forwarded-for": "1.2.4.8"})
    assert r.status_code == 200  # decided on 8.8.8.8, the peer, not the forged header


def test_exempt_paths_are_not_decided(tiny_snapshot: Snapshot) -> None:
    seen: list[Decision] = []
    assert get(make_app(tiny_snapshot, "", seen), "/healthz", client=("1.2.4.8", 1)).status_code == 200
    assert seen == []


def test_facts_hook(tiny_snapshot: Snapshot) -> None:
    seen: list[Decision] = []

    def facts(_scope: object, headers: dict[str, str], ip: str | None) -> Facts:
        return Facts(ip=headers.get("x-real-client", ip))

    app = Starlette(routes=[Route("/x", lambda r: JSONResponse({}))])
    app.add_middleware(
        GeowardenMiddleware, warden=Warden(tiny_snapshot), facts_from=facts, on_decision=lambda d, f: seen.append(d)
    )
    assert get(app, "/x", client=("8.8.8.8", 1), headers={"x-real-client": "1.2.4.8"}).status_code == 403


TUNNEL_HEADERS = {"x-forwarded-for": "8.8.8.8", "x-geowarden-rtt-us": "2000", "x-geowarden-app-rtt-ms": "80,82.5,85"}


def test_the_edge_rtt_header_reaches_the_tunnel_check(tiny_snapshot: Snapshot) -> None:
    """nginx's $tcpinfo_rtt (2 ms, in microseconds) against application RTTs of ~80 ms: TCP ends at a relay."""
    seen: list[Decision] = []
    app = make_app(tiny_snapshot, "203.0.113.0/24", seen)
    r = get(app, "/v1/chat", client=("203.0.113.1", 1234), headers=TUNNEL_HEADERS)
    assert (r.status_code, r.json()["action"]) == (200, "challenge")
    gap = next(e for e in seen[-1].evidence if e.code == "RTT_TUNNEL_GAP")
    assert gap.value["tcp_min_ms"] == 2.0 and gap.value["app_min_ms"] == 80.0
    # the edge's TCP RTT alone (no application RTTs) is no tunnel measurement: no latency evidence at all
    get(
        app,
        "/v1/chat",
        client=("203.0.113.1", 1234),
        headers={"x-forwarded-for": "8.8.8.8", "x-geowarden-rtt-us": "2000"},
    )
    assert [e.code for e in seen[-1].evidence if e.signal == "rtt"] == []


def test_rtt_headers_from_an_untrusted_peer_are_ignored(tiny_snapshot: Snapshot) -> None:
    seen: list[Decision] = []
    app = make_app(tiny_snapshot, "203.0.113.0/24", seen)
    get(app, "/v1/chat", client=("198.51.100.7", 1234), headers=TUNNEL_HEADERS)  # the client itself
    assert [e.code for e in seen[-1].evidence if e.signal == "rtt"] == []


@pytest.mark.parametrize("value", ["", "0", "-5", "nan", "inf", "abc", "2000,x", "99999999999"])
def test_malformed_rtt_headers_are_not_measurements(value: str) -> None:
    from geowarden.service.middleware import edge_rtts

    tcp, _ = edge_rtts({"x-geowarden-rtt-us": value})
    assert tcp == ((2.0,) if value == "2000,x" else ())
