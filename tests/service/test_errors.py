"""Every geowarden error answers with its own HTTP status, through the real FastAPI app."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI

import geowarden.errors
from geowarden.audit.review import ReviewConflictError
from geowarden.errors import (
    AddressError,
    AuthError,
    ConfigError,
    DownloadError,
    GeowardenError,
    InputError,
    NoSnapshotError,
    RateLimitError,
    SnapshotError,
    SourceError,
)
from geowarden.intel.snapshot import Snapshot
from geowarden.intel.update import _NotFoundError
from geowarden.latency.calibration import MeshHeaderError
from geowarden.service.app import build_service, create_app
from geowarden.settings import Settings
from geowarden.signals.otp import OtpDeliveryError, OtpError, OtpRateLimitError
from geowarden.signals.phone import PhoneLookupError
from geowarden.state.base import StateUnavailable

CASES: list[tuple[GeowardenError, int]] = [
    (GeowardenError("unexpected"), 500),
    (ConfigError("the policy does not load"), 500),
    (ConfigError("a bad argument", status=400), 400),
    (InputError("line 3: not a row"), 422),
    (AddressError("not an IP address"), 422),
    (MeshHeaderError("mesh.csv line 1: not a header or a row"), 422),
    (SourceError("list unreadable", file="un.xml"), 503),
    (DownloadError("aws: HTTP 500"), 503),
    (_NotFoundError("dbip: HTTP 404"), 503),
    (PhoneLookupError("twilio: HTTP 503"), 503),
    (SnapshotError("corrupt snapshot"), 503),
    (NoSnapshotError("no snapshot"), 503),
    (StateUnavailable("redis: timed out"), 503),
    (AuthError("a token with scope 'decide' is required"), 401),
    (ReviewConflictError("the review of this decision is confirmed"), 409),
    (RateLimitError("slow down", retry_after=2.5), 429),
    (OtpError("no sender configured"), 503),
    (OtpRateLimitError("too many codes for this number", 30.0), 429),
    (OtpDeliveryError("sms: HTTP 500"), 503),
]


class Client:
    """Requests to the ASGI app in process (no network)."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://app") as c:
                return await c.request(method, path, **kwargs)

        return asyncio.run(go())


@pytest.fixture(scope="module")
def client(tiny_snapshot: Snapshot, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    home = tmp_path_factory.mktemp("home")
    service = build_service(Settings(home=home, snapshot=Path(tiny_snapshot.path)))
    app: FastAPI = create_app(service)

    def fail(case: int) -> None:
        raise CASES[case][0]

    @app.get("/test/raise/{case}", dependencies=[Depends(fail)])
    async def raising(case: int) -> None:
        raise AssertionError(f"the dependency should have raised case {case}")

    yield Client(app)
    service.audit.close()


@pytest.mark.parametrize("case", range(len(CASES)), ids=[type(e).__name__ for e, _ in CASES])
def test_each_error_answers_with_its_status(client: Client, case: int) -> None:
    error, status = CASES[case]
    resp = client.request("GET", f"/test/raise/{case}")
    assert resp.status_code == status == error.status
    assert resp.json() == {"detail": error.message}
    if isinstance(error, RateLimitError):
        assert resp.headers["retry-after"] == str(int(-(-error.retry_after // 1)))
    else:
        assert "retry-after" not in resp.headers


def test_a_missing_token_is_an_auth_error(client: Client) -> None:
    resp = client.request("POST", "/v1/decide", json={"ip": "1.2.4.8"})
    assert resp.status_code == 401
    assert resp.json() == {"detail": "a token with scope 'decide' is required"}


def _subclasses(cls: type[GeowardenError]) -> set[type[GeowardenError]]:
    out = set(cls.__subclasses__())
    for sub in list(out):
        out |= _subclasses(sub)
    return out


def test_every_error_class_is_in_the_tree_and_in_this_table() -> None:
    known = {GeowardenError} | _subclasses(GeowardenError)
    tree = geowarden.errors.__doc__ or ""
    missing = sorted(c.__name__ for c in known if c.__module__.startswith("geowarden.") and c.__name__ not in tree)
    assert missing == [], "add them to the tree in geowarden/errors.py"
    tested = {type(e) for e, _ in CASES}
    assert sorted(c.__name__ for c in known - tested if c.__module__.startswith("geowarden.")) == []


def test_context_keeps_what_was_given_and_drops_none() -> None:
    err = SourceError("un.xml: line 3: not a list", file="un.xml", line=3, source=None)
    assert err.context == {"file": "un.xml", "line": 3}
    assert (err.status, err.code) == (503, 4)
