"""What the chain and evidence-package tests share: an empty audit database on each back end
(the ``url`` fixture lives in conftest.py) and a log filled over several days."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from geowarden.audit.schema import sqlite_url
from geowarden.audit.store import AuditLog
from geowarden.model import Action, Decision, Evidence, Facts
from helpers import require

PG_URL = os.environ.get("GEOWARDEN_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
KEY = b"k" * 32
DAY = 86400.0


def _pg_available() -> bool:
    eng = sa.create_engine(PG_URL)
    try:
        with eng.connect() as conn:
            conn.execute(sa.text("select 1"))
        return True
    except Exception:
        return False
    finally:
        eng.dispose()


def url_fixture(request: Any, tmp_path: Path) -> Iterator[str]:
    """An empty audit database on each back end (PostgreSQL: a throwaway schema)."""
    if request.param == "sqlite":
        yield sqlite_url(tmp_path / "audit.db")
        return
    require(_pg_available(), f"PostgreSQL not reachable at {PG_URL}")
    schema = "chain_" + uuid.uuid4().hex[:10]
    eng = sa.create_engine(PG_URL)
    with eng.begin() as conn:
        conn.execute(sa.text(f"create schema {schema}"))
    yield PG_URL + f"?options=-csearch_path%3D{schema}"
    with eng.begin() as conn:
        conn.execute(sa.text(f"drop schema {schema} cascade"))
    eng.dispose()


def decision(action: Action = Action.BLOCK) -> Decision:
    ev = (Evidence(signal="ip", code="IP_COUNTRY", value="CN"), Evidence(signal="ip", code="IP_VPN", value=True))
    return Decision(
        action=action, score=0.75, reasons=ev[1:], policy_version="p-1", decision_id=uuid.uuid4().hex,
        elapsed_us=12.5, rules=("r",), evidence=ev,
    )  # fmt: skip


def filled(url: str, *, days: int = 3, per_day: int = 40) -> tuple[AuditLog, list[str]]:
    """A log with ``per_day`` decisions on each of ``days`` days (the last one today), every
    fifth sent to review and one of those overturned: several segments, decisions and events."""
    log = AuditLog(url, key=KEY)
    ids: list[str] = []
    now = time.time()
    futures = []
    for day in range(days):
        for i in range(per_day):
            d = decision(Action.REVIEW if i % 5 == 0 else Action.BLOCK)
            ts = now - (days - 1 - day) * DAY + i * 0.001
            futures.append(log.submit(d, Facts(ip="1.2.4.8", account_id=f"a{i % 7}", api_key_id="k1"), ts=ts))
            ids.append(d.decision_id)
    for f in futures:
        f.result(timeout=30)
    log.add_event(ids[-5], actor="reviewer", event="overturn", note="corporate NAT", review="overturned")
    return log, ids
