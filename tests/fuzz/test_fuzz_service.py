"""The service in process (FastAPI through httpx's ASGI transport): the headers the adapters read
(forwarding headers, tokens, the edge's fact headers) and damaged bodies. The rule: a 4xx or a
decision, never a 5xx, and the service keeps serving."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fuzz.fuzzkit import MET
from geowarden.intel.snapshot import Snapshot
from geowarden.service.app import build_service, create_app
from geowarden.service.auth import TokenStore
from geowarden.service.fastpath import DecideFastPath
from geowarden.settings import Settings


class App:
    def __init__(self, app: Any, token: str) -> None:
        self.app = app
        self.token = token
        self.loop = asyncio.new_event_loop()

    def request(self, method: str, path: str, headers: list[tuple[bytes, bytes]], **kw: Any) -> httpx.Response:
        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app, client=("10.0.0.1", 4242))
            async with httpx.AsyncClient(transport=transport, base_url="http://gw") as c:
                return await c.request(method, path, headers=headers, **kw)

        return self.loop.run_until_complete(go())


@pytest.fixture(scope="module")
def app(tiny_snapshot: Snapshot, tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    home = tmp_path_factory.mktemp("svc-home")
    token = TokenStore(home / "tokens.json").create(["admin"])
    settings = Settings(home=home, snapshot=Path(tiny_snapshot.path), trusted_proxies="10.0.0.0/8")
    service = build_service(settings)
    a = App(DecideFastPath(create_app(service), service), token)
    yield a
    service.audit.close()
    a.loop.close()


READ = [
    "forwarded", "x-forwarded-for", "x-envoy-external-address", "authorization", "x-geowarden-token", "cookie",
    "x-geowarden-account", "x-geowarden-api-key-id", "accept-language", "x-client-timezone", "user-agent",
    "x-geowarden-allow", "x-geowarden-rtt-ms", "content-type",
]  # fmt: skip
header_value = st.one_of(
    st.binary(max_size=60).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"")),
    st.sampled_from(
        [b"for=1.2.4.8", b'for="[2400:3200::1]:443", for=10.0.0.2', b"for=unknown;proto=https", b"1.2.4.8, 10.0.0.9",
         b"::ffff:1.2.4.8", b"Bearer ", b"Bearer gwt_\x00", b"gwt_" + b"A" * 5000, b"gw_session=\xff\xfe",
         b"zh-CN,zh;q=0.9;q=NaN", b"Asia/Shanghai\x00", b"1e309", b"-5", b"NaN", b"application/json; charset=latin-9"]
    ),
)  # fmt: skip
headers = st.lists(st.tuples(st.sampled_from(READ).map(str.encode), header_value), max_size=6)


def _ok(r: httpx.Response) -> None:
    assert r.status_code < 500, (r.status_code, r.text[:500])


def _healthy(app: App) -> None:
    assert app.request("GET", "/healthz", []).status_code == 200


@given(h=headers, use_token=st.booleans(), path=st.sampled_from(["/auth_request", "/ext_authz/v1/chat"]))
def test_edge_adapters_read_any_headers(app: App, h: list[tuple[bytes, bytes]], use_token: bool, path: str) -> None:
    MET["service edge headers"] += 1
    if use_token:
        h = [(b"x-geowarden-token", app.token.encode()), *h]
    _ok(app.request("GET", path, h))
    _healthy(app)


BODIES = [
    {"ip": "1.2.4.8"},
    {"ip": "1.2.\x003.4"},
    {"ip": 12},
    {"ip": ["1.2.4.8"]},
    {"rtt": [[52.5, 13.4, -5]]},
    {"rtt": [[1e308, 13.4, 5]]},
    {"rtt_tcp_ms": [-1, 1e300]},
    {"timestamp": -1e12},
    {"timestamp": 1e20},
    {"input_tokens": -5},
    {"phone": "\x00"},
    {"unknown": 1},
]


@given(
    body=st.one_of(
        st.sampled_from(BODIES).map(lambda b: json.dumps(b).encode()),
        st.just(b'{"ip": NaN}'),
        st.just(b'{"ip": "1.2.4.8", "ip": 5}'),
        st.just(b"[" * 100_000),
        st.just(b'{"account_id": {"a": ' + b"[" * 3000 + b"]" * 3000 + b"}}"),  # nested deeper than any parser goes
        st.binary(max_size=80),
        st.just(b"\xef\xbb\xbf" + json.dumps({"ip": "1.2.4.8"}).encode()),
    ),
    h=headers,
    path=st.sampled_from(["/v1/decide", "/v1/signup", "/v1/screen"]),
)
def test_bodies_and_headers(app: App, body: bytes, h: list[tuple[bytes, bytes]], path: str) -> None:
    MET["service bodies"] += 1
    h = [(b"authorization", b"Bearer " + app.token.encode()), (b"content-type", b"application/json"), *h]
    _ok(app.request("POST", path, h, content=body))
    _healthy(app)


def test_a_body_with_nan_is_a_422_that_does_not_echo_the_value(app: App) -> None:
    """Regression: FastAPI's own 422 echoed the input, and could not write NaN (a 500)."""
    h = [(b"authorization", b"Bearer " + app.token.encode()), (b"content-type", b"application/json")]
    r = app.request("POST", "/v1/decide", h, content=b'{"ip": NaN, "phone": 5}')
    assert r.status_code == 422
    assert {d["loc"][-1] for d in r.json()["detail"]} == {"ip", "phone"}
    assert all("input" not in d for d in r.json()["detail"])
