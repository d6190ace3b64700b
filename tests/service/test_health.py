"""/healthz tells the truth (issue 19, item 7): ``degraded`` naming what is down, and 503 when a
dependency that fails closed is down. Real unreachable back ends: a Redis port nobody listens on,
a PostgreSQL address nobody answers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from geowarden.intel.snapshot import Snapshot
from geowarden.policy.engine import DEFAULT_POLICY
from geowarden.service.app import asgi_stack, build_service, create_app
from geowarden.service.auth import TokenStore
from geowarden.settings import Settings
from redis_support import free_port
from service.test_limits import App

DEAD_REDIS = f"redis://127.0.0.1:{free_port()}/0"


def _app(tiny_snapshot: Snapshot, home: Path, **kw: object) -> App:
    store = TokenStore(home / "tokens.json")
    tokens = {s: store.create([s]) for s in ("decide", "review", "admin")}
    service = build_service(Settings(home=home, snapshot=Path(tiny_snapshot.path), **kw))  # type: ignore[arg-type]
    return App(asgi_stack(create_app(service), service), service, tokens)


@pytest.fixture
def healthy(tiny_snapshot: Snapshot, tmp_path: Path) -> Iterator[App]:
    a = _app(tiny_snapshot, tmp_path)
    yield a
    a.service.audit.close()
    a.loop.close()


def test_ok_when_everything_answers(healthy: App) -> None:
    r = healthy.request("GET", "/healthz", scope=None)
    assert r.status_code == 200
    assert r.json()["status"] == "ok" and r.json()["down"] == []


def test_state_down_failing_open_is_degraded_200(tiny_snapshot: Snapshot, tmp_path: Path) -> None:
    a = _app(tiny_snapshot, tmp_path, state_url=DEAD_REDIS)
    try:
        r = a.request("GET", "/healthz", scope=None)
        assert r.status_code == 200
        assert r.json()["status"] == "degraded"
        assert [(d["dependency"], d["fail_mode"]) for d in r.json()["down"]] == [("state", "open")]
    finally:
        a.service.audit.close()
        a.loop.close()


def test_state_down_failing_closed_is_503(tiny_snapshot: Snapshot, tmp_path: Path) -> None:
    policy = tmp_path / "closed.yaml"
    text = DEFAULT_POLICY.read_text(encoding="utf-8")
    assert "fail_modes: {ip: review, policy: review, key: open, default: open}" in text
    policy.write_text(text.replace("key: open", "key: closed"), encoding="utf-8")
    a = _app(tiny_snapshot, tmp_path, state_url=DEAD_REDIS, policy=policy)
    try:
        r = a.request("GET", "/healthz", scope=None)
        assert r.status_code == 503
        assert r.json()["status"] == "degraded"
        assert r.json()["down"][0]["dependency"] == "state" and r.json()["down"][0]["fail_mode"] == "closed"
    finally:
        a.service.audit.close()
        a.loop.close()


def test_audit_database_down_is_503(healthy: App) -> None:
    live = healthy.service.audit.engine
    dead = sa.create_engine(
        f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/x", connect_args={"connect_timeout": 1}
    )
    healthy.service.audit.engine = dead
    try:
        r = healthy.request("GET", "/healthz", scope=None)
    finally:
        healthy.service.audit.engine = live
        dead.dispose()
    assert r.status_code == 503
    assert [d["dependency"] for d in r.json()["down"]] == ["audit"]


@pytest.mark.parametrize("path", ["/v1/decide", "/v1/signup"])  # the fast path and FastAPI's
def test_a_decision_the_audit_log_cannot_keep_is_a_503_never_acknowledged(healthy: App, path: str) -> None:
    live = healthy.service.audit.engine
    dead = sa.create_engine(
        f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/x", connect_args={"connect_timeout": 1}
    )
    healthy.service.audit.engine = dead
    try:
        r = healthy.request("POST", path, json={"ip": "8.8.8.8"})
    finally:
        healthy.service.audit.engine = live
        dead.dispose()
    assert r.status_code == 503
    assert r.json() == {"detail": "the audit log cannot be written: the decision was not acknowledged"}
    assert healthy.request("POST", path, json={"ip": "8.8.8.8"}).status_code == 200  # back once it answers
