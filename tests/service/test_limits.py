"""Input limits and input validation at the service's edge (issue 19, items 4, 5, 12 and 14).

In process, through the stack a server runs (``asgi_stack``: limits, the decide fast path, the
FastAPI app), over httpx's ASGI transport or raw ASGI messages.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from geowarden.intel.snapshot import Snapshot
from geowarden.service.app import asgi_stack, build_service, create_app
from geowarden.service.auth import TokenStore
from geowarden.service.core import Service
from geowarden.settings import Settings

EDGE = ("10.0.0.1", 4242)  # a trusted proxy in these tests


class App:
    def __init__(self, app: Any, service: Service, tokens: dict[str, str]) -> None:
        self.app = app
        self.service = service
        self.tokens = tokens
        self.loop = asyncio.new_event_loop()

    def request(self, method: str, path: str, *, scope: str | None = "decide", **kw: Any) -> httpx.Response:
        headers = dict(kw.pop("headers", {}))
        if scope:
            headers.setdefault("authorization", f"Bearer {self.tokens[scope]}")

        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app, client=EDGE)
            async with httpx.AsyncClient(transport=transport, base_url="http://gw") as c:
                return await c.request(method, path, headers=headers, **kw)

        return self.loop.run_until_complete(go())


@pytest.fixture(scope="module")
def app(tiny_snapshot: Snapshot, tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    home = tmp_path_factory.mktemp("limits-home")
    store = TokenStore(home / "tokens.json")
    tokens = {s: store.create([s]) for s in ("decide", "review", "admin")}
    settings = Settings(home=home, snapshot=Path(tiny_snapshot.path), trusted_proxies="10.0.0.0/8")
    service = build_service(settings)
    a = App(asgi_stack(create_app(service), service), service, tokens)
    yield a
    service.audit.close()
    a.loop.close()


BAD_IPS = ["not-an-ip", "999.1.1.1", "1.2.4.8/24", "1.2.4.8 ", "", "::g", "1.2.4"]


@pytest.mark.parametrize("path", ["/v1/decide", "/v1/signup"])
@pytest.mark.parametrize("ip", [x for x in BAD_IPS if x != "1.2.4.8 "])
def test_a_malformed_ip_is_a_422_and_never_queued(app: App, path: str, ip: str) -> None:
    before = len(app.service.audit.recent(review="queued", limit=1000))
    r = app.request("POST", path, json={"ip": ip, "account_id": "a-1"})
    assert r.status_code == 422, r.text
    assert [d["loc"] for d in r.json()["detail"]] == [["body", "ip"]]
    assert ip not in json.dumps(r.json()) or ip == ""
    assert len(app.service.audit.recent(review="queued", limit=1000)) == before


@pytest.mark.parametrize("path", ["/v1/decide", "/v1/signup"])
def test_a_good_ip_is_decided_in_its_normal_form(app: App, path: str) -> None:
    r = app.request("POST", path, json={"ip": " 2001:DB8::1 "})
    assert r.status_code == 200
    rec = app.service.audit.get(r.json()["decision_id"])
    assert rec is not None and rec.ip == "2001:db8::1"


def test_the_edge_denies_a_malformed_forwarded_address_without_queueing(
    app: App, caplog: pytest.LogCaptureFixture
) -> None:
    before = len(app.service.audit.recent(review="queued", limit=1000))
    headers = {"x-geowarden-token": app.tokens["decide"], "x-envoy-external-address": "not-an-ip"}
    r = app.request("GET", "/ext_authz/v1/chat", scope=None, headers=headers)
    assert r.status_code == 403
    assert r.headers["x-geowarden-action"] == "block"
    assert len(app.service.audit.recent(review="queued", limit=1000)) == before
    assert any("not an IP address" in rec.getMessage() for rec in caplog.records)


@pytest.mark.parametrize("xff", ["1.2.4.8:5555", "[2400:3200::1]:443"])
def test_a_forwarded_address_with_a_port_is_read(app: App, xff: str) -> None:
    headers = {"x-geowarden-token": app.tokens["decide"], "x-forwarded-for": xff}
    r = app.request("GET", "/auth_request", scope=None, headers=headers)
    rec = app.service.audit.get(r.headers["x-geowarden-decision"])
    assert rec is not None and rec.ip == xff.rsplit(":", 1)[0].strip("[]")


def test_a_body_over_the_limit_is_a_413_before_it_is_read(app: App) -> None:
    body = b'{"ip": "1.2.4.8", "user_agent": "' + b"x" * (70 * 1024) + b'"}'
    r = app.request("POST", "/v1/decide", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert len(r.content) < 200


def test_a_chunked_body_is_stopped_soon_after_the_limit(app: App) -> None:
    """Raw ASGI: count how much of an endless chunked body the service pulls."""
    pulled = 0
    chunk = b"x" * 8192
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        pulled += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": pulled < 200 * 1024 * 1024}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/decide",
        "headers": [
            (b"authorization", f"Bearer {app.tokens['decide']}".encode()),
            (b"content-type", b"application/json"),
            (b"transfer-encoding", b"chunked"),
        ],
        "client": EDGE,
        "query_string": b"",
        "root_path": "",
        "scheme": "http",
        "server": ("gw", 80),
        "http_version": "1.1",
    }
    app.loop.run_until_complete(app.app(scope, receive, send))
    assert sent[0]["status"] == 413
    assert pulled <= 64 * 1024 + len(chunk)


def test_a_declared_length_over_the_limit_is_refused_unread(app: App) -> None:
    pulled = 0

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        pulled += 1
        return {"type": "http.request", "body": b"x" * 8192, "more_body": True}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    for path in ("/v1/decide", "/v1/signup"):
        scope = {
            "type": "http", "method": "POST", "path": path, "query_string": b"", "root_path": "", "scheme": "http",
            "headers": [(b"authorization", f"Bearer {app.tokens['decide']}".encode()),
                        (b"content-type", b"application/json"), (b"content-length", b"50000000")],
            "client": EDGE, "server": ("gw", 80), "http_version": "1.1",
        }  # fmt: skip
        app.loop.run_until_complete(app.app(scope, receive, send))
    assert [m["status"] for m in sent if m["type"] == "http.response.start"] == [413, 413]
    assert pulled == 0


@pytest.mark.parametrize("path", ["/v1/decide", "/v1/signup"])
def test_a_long_field_is_a_short_422(app: App, path: str) -> None:
    big = "y" * 60_000
    r = app.request("POST", path, json={"user_agent": big})
    assert r.status_code == 422
    assert len(r.content) < 500 and "yyyy" not in r.text


def test_an_unknown_long_key_is_not_echoed_in_full(app: App) -> None:
    r = app.request("POST", "/v1/decide", json={"k" * 30_000: 1})
    assert r.status_code == 422
    assert len(r.content) < 500


@pytest.mark.parametrize("body", [b'{"ip": "1.2.4.8"', b"[" * 50_000, b'{"a": ' + b"[" * 3000 + b"]" * 3000 + b"}"])
def test_json_that_does_not_parse_or_nests_too_deep_is_a_short_4xx(app: App, body: bytes) -> None:
    r = app.request("POST", "/v1/decide", content=body, headers={"content-type": "application/json"})
    assert r.status_code in (400, 422), r.text[:300]
    assert len(r.content) < 500


def test_malformed_json_is_a_400_as_documented(app: App) -> None:
    r = app.request("POST", "/v1/decide", content=b'{"ip": ', headers={"content-type": "application/json"})
    assert r.status_code == 400
    doc = app.request("GET", "/openapi.json").json()
    assert "400" in doc["paths"]["/v1/decide"]["post"]["responses"]


@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded", None])
def test_a_body_not_sent_as_json_is_a_415(app: App, ctype: str | None) -> None:
    headers = {"content-type": ctype} if ctype else {}
    r = app.request("POST", "/v1/decide", content=b'{"ip": "1.2.4.8"}', headers=headers)
    assert r.status_code == 415


def test_a_token_without_the_scope_is_a_403_and_no_token_a_401_with_a_challenge(app: App) -> None:
    r = app.request("GET", "/v1/review", scope="decide")
    assert r.status_code == 403
    r = app.request("GET", "/v1/review", scope=None)
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer")
    r = app.request("GET", "/auth_request", scope=None)
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
