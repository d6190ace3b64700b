"""The documented edge recipes, replayed against the adapters (issue 19, items 9 and 10).

docs/service.md's nginx ``auth_request`` and Envoy ``ext_authz`` configurations are read from the
page itself; the test forwards a client's request the way each proxy would under that
configuration (headers set or passed, variables and command operators substituted) and checks
that the decision got the account, the key and the edge's TCP round trip: following the docs
must give per-key behaviour and the tunnel check.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from geowarden.intel.snapshot import Snapshot
from geowarden.service.app import asgi_stack, build_service, create_app
from geowarden.service.auth import TokenStore
from geowarden.settings import Settings
from service.test_limits import EDGE, App

DOC = Path(__file__).resolve().parents[2] / "docs" / "service.md"
CLIENT = "8.8.8.8"
#: What the client sends: its API's own headers, and an application-level RTT beacon.
CLIENT_HEADERS = {
    "x-account-id": "acct-edge",
    "x-api-key-id": "key-edge",
    "accept-language": "de-DE",
    "user-agent": "sdk/1.0",
    "x-geowarden-app-rtt-ms": "150,151,149",
}
TCP_RTT_US = "2000"  # the edge measures 2 ms to the client: 150 ms in the application is a tunnel


def block(lang: str) -> str:
    m = re.search(rf"```{lang}\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert m, f"no {lang} block in {DOC}"
    return m.group(1)


@pytest.fixture(scope="module")
def app(tiny_snapshot: Snapshot, tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    home = tmp_path_factory.mktemp("edge-home")
    store = TokenStore(home / "tokens.json")
    tokens = {s: store.create([s]) for s in ("decide", "review")}
    settings = Settings(home=home, snapshot=Path(tiny_snapshot.path), trusted_proxies=f"{EDGE[0]}/32")
    service = build_service(settings)
    a = App(asgi_stack(create_app(service), service), service, tokens)
    yield a
    service.audit.close()
    a.loop.close()


def nginx_forwarded(token: str) -> dict[str, str]:
    """The auth_request subrequest: the client's headers, then the recipe's proxy_set_header lines."""
    conf = block("nginx")
    location = conf[conf.index("location = /_geowarden") :]
    variables = {"$remote_addr": CLIENT, "$tcpinfo_rtt": TCP_RTT_US, "$request_uri": "/v1/chat"}
    out = dict(CLIENT_HEADERS)
    for name, raw in re.findall(r"proxy_set_header\s+(\S+)\s+(\"[^\"]*\"|\S+);", location):
        value = raw.strip('"').replace("gwt_…", token)
        for var, real in variables.items():
            value = value.replace(var, real)
        value = re.sub(r"\$http_(\w+)", lambda m: CLIENT_HEADERS.get(m.group(1).replace("_", "-"), ""), value)
        if value:
            out[name.lower()] = value
        else:
            out.pop(name.lower(), None)
    return out


def envoy_forwarded(token: str) -> dict[str, str]:
    """ext_authz: only the allowed headers, plus headers_to_add with command operators substituted."""
    doc = yaml.safe_load(block("yaml"))
    request = doc["http_filters"][0]["typed_config"]["http_service"]["authorization_request"]
    allowed = {p["exact"] for p in request["allowed_headers"]["patterns"]}
    out = {k: v for k, v in CLIENT_HEADERS.items() if k in allowed}
    ops = {"%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%": CLIENT, "%DOWNSTREAM_TCP_RTT_US%": TCP_RTT_US}
    for h in request["headers_to_add"]:
        value = str(h["value"]).replace("gwt_…", token)
        for op, real in ops.items():
            value = value.replace(op, real)
        value = re.sub(r"%REQ\(([^)]+)\)%", lambda m: CLIENT_HEADERS.get(m.group(1).lower(), ""), value)
        out[str(h["key"]).lower()] = value
    return out


@pytest.mark.parametrize(
    ("recipe", "path"), [(nginx_forwarded, "/auth_request"), (envoy_forwarded, "/ext_authz/v1/chat")]
)
def test_following_the_docs_gives_the_account_key_and_tcp_rtt(app: App, recipe: object, path: str) -> None:
    headers = recipe(app.tokens["decide"])  # type: ignore[operator]
    r = app.request("GET", path, scope=None, headers=headers)
    assert r.status_code in (200, 403), r.text
    rec = app.service.audit.get(r.headers["x-geowarden-decision"])
    assert rec is not None
    assert (rec.ip, rec.account_id, rec.api_key_id) == (CLIENT, "acct-edge", "key-edge")
    assert rec.facts["rtt_tcp_ms"] == [2.0]
    assert "RTT_TUNNEL_GAP" in [e["code"] for e in rec.evidence]


def test_a_denied_edge_request_carries_its_appeal_link(app: App) -> None:
    headers = {"x-geowarden-token": app.tokens["decide"], "x-forwarded-for": "1.2.4.8"}
    r = app.request("GET", "/auth_request", scope=None, headers=headers)
    assert r.status_code == 403
    assert r.headers["x-geowarden-appeal-url"] == r.json()["appeal_url"]
    assert "/appeal/" in r.headers["x-geowarden-appeal-url"]
