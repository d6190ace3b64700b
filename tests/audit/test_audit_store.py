"""One contract suite over both audit back ends: SQLite (WAL) and a real PostgreSQL server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from geowarden.audit.schema import sqlite_url
from geowarden.audit.store import AuditLog
from geowarden.intel.snapshot import Snapshot
from geowarden.model import Action, Decision, Evidence, Facts
from helpers import require

PG_URL = os.environ.get("GEOWARDEN_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


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


def _fresh_pg_schema() -> str:
    """A throwaway schema per test so runs never see each other's rows."""
    schema = "t_" + uuid.uuid4().hex[:10]
    eng = sa.create_engine(PG_URL)
    with eng.begin() as conn:
        conn.execute(sa.text(f"create schema {schema}"))
    eng.dispose()
    return schema


@pytest.fixture(params=["sqlite", "postgresql"])
def audit(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AuditLog]:
    if request.param == "sqlite":
        log = AuditLog(sqlite_url(tmp_path / "audit.db"), key=b"k" * 32)
    else:
        require(_pg_available(), f"PostgreSQL not reachable at {PG_URL}")
        schema = _fresh_pg_schema()
        log = AuditLog(PG_URL + f"?options=-csearch_path%3D{schema}", key=b"k" * 32)
    yield log
    log.close()
    if request.param == "postgresql":
        _drop_schema(schema)


def _drop_schema(schema: str) -> None:
    eng = sa.create_engine(PG_URL)
    with eng.begin() as conn:
        conn.execute(sa.text(f"drop schema {schema} cascade"))
    eng.dispose()


def decision(action: Action = Action.BLOCK, code: str = "IP_COUNTRY_RESTRICTED", did: str | None = None) -> Decision:
    ev = (Evidence(signal="ip", code="IP_COUNTRY", value="CN"), Evidence(signal="ip", code=code, value="CN"))
    return Decision(
        action=action, score=1.0, reasons=ev[1:], policy_version="p-1", decision_id=did or uuid.uuid4().hex,
        elapsed_us=12.5, rules=("restricted-country",), evidence=ev,
    )  # fmt: skip


def test_append_and_read_back(audit: AuditLog) -> None:
    d = decision()
    audit.append(d, Facts(ip="1.2.4.8", account_id="a1", api_key_id="k1"))
    rec = audit.get(d.decision_id)
    assert rec is not None
    assert (rec.action, rec.country, rec.account_id, rec.reasons) == ("block", "CN", "a1", ["IP_COUNTRY_RESTRICTED"])
    assert rec.evidence[1]["code"] == "IP_COUNTRY_RESTRICTED"
    assert rec.policy_version == "p-1"
    assert audit.count() == 1


def test_personal_data_is_stored_only_as_keyed_hashes(audit: AuditLog) -> None:
    d = decision()
    facts = Facts(
        ip="1.2.4.8", phone="+8613800138000", email="Someone@QQ.com", card_bin="62220200", allow_token="gwa1.x.y"
    )
    audit.append(d, facts)
    rec = audit.get(d.decision_id)
    assert rec is not None
    stored = str(rec.to_dict())
    for raw in ("13800138000", "someone", "QQ.com", "62220200", "gwa1.x.y"):
        assert raw.lower() not in stored.lower()
    assert rec.facts["phone"] == audit.keyed_hash("+8613800138000")
    assert rec.facts["email"] == audit.keyed_hash("someone@qq.com")  # the same person, however written
    assert rec.facts["allow_token_presented"] is True


def test_review_queue_and_trail(audit: AuditLog) -> None:
    d = decision(Action.REVIEW, "IP_PRIVATE_OR_RESERVED")
    audit.append(d, Facts(ip="10.0.0.1"))
    assert [r.decision_id for r in audit.recent(review="queued")] == [d.decision_id]
    audit.add_event(d.decision_id, actor="reviewer-1", event="overturn", note="corporate NAT", review="overturned")
    assert audit.recent(review="queued") == []
    rec = audit.get(d.decision_id)
    assert rec is not None and rec.review == "overturned"
    assert [e["event"] for e in audit.events(d.decision_id)] == ["queued", "overturn"]
    with pytest.raises(KeyError):
        audit.add_event("nope", actor="x", event="confirm")


def test_counts_for_the_dashboard(audit: AuditLog) -> None:
    for action, code in [(Action.BLOCK, "IP_COUNTRY_RESTRICTED")] * 3 + [(Action.CHALLENGE, "IP_VPN")] * 2:
        audit.submit(decision(action, code), Facts(ip="1.2.4.8"))
    audit.append(decision(Action.ALLOW, "IP_COUNTRY"), Facts(ip="8.8.8.8"))
    c = audit.counts()
    assert c["by_action"] == {"block": 3, "challenge": 2, "allow": 1}
    assert c["by_reason"]["IP_COUNTRY_RESTRICTED"] == 3
    assert next(iter(c["by_reason"])) == "IP_COUNTRY_RESTRICTED"  # most frequent first
    assert c["by_country"]["CN"]["block"] == 3
    assert sum(p["n"] for p in c["series"]) == 6
    hour = int(time.time() // 3600) * 3600
    assert {p["hour"] for p in c["series"]} <= {hour, hour - 3600}  # whole hours, never rounded up
    assert {(p["reason"], p["n"]) for p in c["reason_series"]} == {
        ("IP_COUNTRY_RESTRICTED", 3), ("IP_VPN", 2), ("IP_COUNTRY", 1),
    }  # fmt: skip
    assert c["by_asn"] == []  # no decision carries an ASN yet
    assert audit.counts(since=time.time() + 60)["by_action"] == {}

    # Top networks: by the asn column, with the org name from the latest decision's evidence.
    asn_ev = Evidence(signal="ip", code="IP_ASN", value={"asn": 15169, "org": "Google LLC"})

    def asn_decision(action: Action) -> Decision:
        return Decision(
            action=action, score=0.0, reasons=(), policy_version="p-1", decision_id=uuid.uuid4().hex, elapsed_us=1.0,
            evidence=(asn_ev,),
        )  # fmt: skip

    google = [asn_decision(a) for a in (Action.ALLOW, Action.ALLOW, Action.BLOCK)]
    for d in google:
        audit.append(d, Facts(ip="8.8.8.8"))
    other = decision(Action.BLOCK)
    audit.append(other, Facts(ip="1.2.4.8"))
    from geowarden.audit.schema import decisions

    with audit.engine.begin() as conn:
        ids = [d.decision_id for d in google]
        conn.execute(decisions.update().where(decisions.c.decision_id.in_(ids)).values(asn=15169))
        conn.execute(decisions.update().where(decisions.c.decision_id == other.decision_id).values(asn=4134))
    c = audit.counts()
    assert c["by_asn"] == [
        {"asn": 15169, "org": "Google LLC", "n": 3, "by_action": {"allow": 2, "block": 1}},
        {"asn": 4134, "org": None, "n": 1, "by_action": {"block": 1}},
    ]
    assert [a["asn"] for a in audit.counts(top_asns=1)["by_asn"]] == [15169]
    assert len({p["reason"] for p in audit.counts(top_reasons=1)["reason_series"]}) == 1


def test_retention_prunes_old_decisions(audit: AuditLog) -> None:
    audit.retention_days = 30
    old, new = decision(did="o" * 32), decision(did="n" * 32)
    audit.append(old, Facts(ip="1.2.4.8"), ts=time.time() - 40 * 86400)
    audit.append(new, Facts(ip="1.2.4.8"))
    assert audit.prune() == 1
    assert audit.get(old.decision_id) is None
    assert audit.get(new.decision_id) is not None


def test_many_concurrent_writers_are_group_committed(audit: AuditLog) -> None:
    futures = [audit.submit(decision(), Facts(ip="1.2.4.8")) for _ in range(500)]
    for f in futures:
        f.result(timeout=30)
    assert audit.count() == 500


def test_the_password_never_shows() -> None:
    log_repr = repr(AuditLog.__new__(AuditLog)) if False else None  # noqa: F841 - constructing needs a DB
    from geowarden.audit.schema import safe_url

    assert "s3cret" not in safe_url("postgresql+psycopg://u:s3cret@db/x")


KILLER = """
import sys, time, uuid
from geowarden.audit.store import AuditLog
from geowarden.model import Action, Decision, Evidence, Facts
log = AuditLog(sys.argv[1], key=b"k" * 32)
ev = (Evidence(signal="ip", code="IP_COUNTRY", value="CN"),)
n = 0
while True:
    d = Decision(action=Action.BLOCK, score=1.0, reasons=ev, policy_version="p", decision_id=uuid.uuid4().hex,
                 elapsed_us=1.0, evidence=ev)
    log.append(d, Facts(ip="1.2.4.8"))
    print(d.decision_id, flush=True)   # acknowledged only after the commit
    n += 1
"""


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_kill_9_loses_no_acknowledged_decision(backend: str, tmp_path: Path) -> None:
    if backend == "sqlite":
        url = sqlite_url(tmp_path / "audit.db")
    else:
        require(_pg_available(), f"PostgreSQL not reachable at {PG_URL}")
        schema = _fresh_pg_schema()
        url = PG_URL + f"?options=-csearch_path%3D{schema}"
    proc = subprocess.Popen([sys.executable, "-c", KILLER, url], stdout=subprocess.PIPE, text=True)
    acked: list[str] = []
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while len(acked) < 300 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        acked.append(line.strip())
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    proc.stdout.close()
    assert len(acked) >= 300, "the writer did not get going"
    log = AuditLog(url, key=b"k" * 32)
    try:
        missing = [d for d in acked if log.get(d) is None]
        assert missing == []
    finally:
        log.close()
        if backend == "postgresql":
            _drop_schema(schema)


# -- retention: the service's background task and `geowarden audit prune` ---------------------------


def _aged(audit: AuditLog, days: float) -> tuple[Decision, Decision]:
    """Two decisions, the first stamped ``days`` in the past (so chained in that day's segment),
    with a review event of its own day, the second now."""
    old, new = decision(Action.REVIEW), decision()
    audit.append(old, Facts(ip="1.2.4.8"), ts=time.time() - days * 86400)
    audit.append(new, Facts(ip="1.2.4.8"))
    return old, new


def test_retention_task_prunes_at_start_and_keeps_running(audit: AuditLog) -> None:
    from geowarden.audit.retention import RetentionTask

    audit.retention_days = 30
    old, new = _aged(audit, 40)
    task = RetentionTask(audit, every=0.05).start()
    try:
        assert task.wait()
        assert audit.get(old.decision_id) is None and audit.events(old.decision_id) == []
        assert audit.get(new.decision_id) is not None
        assert task.wait()  # and again, on its period
        assert task.passes >= 2 and task.deleted == 1
    finally:
        task.stop()


def test_retention_task_summarises_the_days_that_closed(audit: AuditLog) -> None:
    """Each pass makes the daily summaries of the last closed days, so a report reads them."""
    import sqlalchemy as sa

    from geowarden.audit.retention import RetentionTask

    audit.retention_days = 30
    _aged(audit, 2)  # a decision two days ago: its day is closed
    task = RetentionTask(audit, every=0.05).start()
    try:
        assert task.wait()
        with audit.engine.connect() as conn:
            days = {int(d): int(n) for d, n in conn.execute(sa.text("select day, n from audit_days"))}
        two_days_ago = int((time.time() - 2 * 86400) // 86400)
        assert days.get(two_days_ago) == 1 and task.summarised >= 1
        assert int(time.time() // 86400) not in days  # today is still open
    finally:
        task.stop()


def test_retention_task_needs_a_period(tmp_path: Path) -> None:
    from geowarden.audit.retention import RetentionTask

    log = AuditLog(sqlite_url(tmp_path / "audit.db"), key=b"k" * 32)
    with pytest.raises(ValueError, match="retention"):
        RetentionTask(log)
    log.close()


def _cli(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("GEOWARDEN_")} | {"GEOWARDEN_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "geowarden", *args], env=base | env, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip


def test_audit_prune_command(audit: AuditLog, tmp_path: Path) -> None:
    old, new = _aged(audit, 40)
    home = tmp_path / "home"
    p = _cli(home, "audit", "prune", "--json", GEOWARDEN_AUDIT_URL=audit.url, GEOWARDEN_AUDIT_RETENTION_DAYS="50")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["deleted"] == 0  # 40 days old is within 50
    p = _cli(home, "audit", "prune", "--older-than", "30", "--json", GEOWARDEN_AUDIT_URL=audit.url)
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["deleted"] == 1 and doc["older_than_days"] == 30 and doc["cutoff"].endswith("+00:00")
    assert audit.get(old.decision_id) is None and audit.get(new.decision_id) is not None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "give --older-than DAYS or set GEOWARDEN_AUDIT_RETENTION_DAYS"),
        (("--older-than", "0"), "--older-than must be a positive number of days, not 0"),
    ],
)
def test_audit_prune_needs_a_period(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    p = _cli(tmp_path, "audit", "prune", *args)
    assert p.returncode == 2
    assert p.stderr.strip().splitlines() == [f"geowarden: error: {message}"]


def test_the_service_prunes_when_retention_is_set(
    audit: AuditLog, tmp_path: Path, tiny_snapshot: Snapshot, monkeypatch: pytest.MonkeyPatch
) -> None:
    import logging

    from geowarden.service.app import create_app_from_env

    old, new = _aged(audit, 40)
    for k in [k for k in os.environ if k.startswith("GEOWARDEN_")]:
        monkeypatch.delenv(k)
    monkeypatch.setenv("GEOWARDEN_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GEOWARDEN_SNAPSHOT", str(tiny_snapshot.path))
    monkeypatch.setenv("GEOWARDEN_AUDIT_URL", audit.url)
    monkeypatch.setenv("GEOWARDEN_AUDIT_RETENTION_DAYS", "30")
    logger = logging.getLogger("geowarden")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    app = create_app_from_env()
    try:
        task = app.app.state.retention
        assert task is not None and task.wait()
        assert audit.get(old.decision_id) is None and audit.get(new.decision_id) is not None
    finally:
        task.stop()
        app.service.audit.close()
        logger.handlers[:], logger.level, logger.propagate = saved
    monkeypatch.delenv("GEOWARDEN_AUDIT_RETENTION_DAYS")
    app = create_app_from_env()
    assert app.app.state.retention is None  # without the setting nothing is pruned
    app.service.audit.close()
    logger.handlers[:], logger.level, logger.propagate = saved
