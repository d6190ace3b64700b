"""Review and appeal integrity (issue 19, items 1 and 2): the review state machine, token
revocation, appeals deduplicated and shown first, the queue paged. In process, through the stack a
server runs."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from geowarden.audit.review import IssuedToken, ReviewConflictError
from geowarden.audit.verify import verify_database
from geowarden.intel.snapshot import Snapshot
from geowarden.service.app import asgi_stack, build_service, create_app
from geowarden.service.auth import TokenStore
from geowarden.settings import Settings
from service.test_limits import App


@pytest.fixture
def app(tiny_snapshot: Snapshot, tmp_path: Path) -> Iterator[App]:
    store = TokenStore(tmp_path / "tokens.json")
    tokens = {s: store.create([s]) for s in ("decide", "review", "admin")}
    service = build_service(Settings(home=tmp_path, snapshot=Path(tiny_snapshot.path)))
    a = App(asgi_stack(create_app(service), service), service, tokens)
    yield a
    service.audit.close()
    a.loop.close()


def held(app: App, account: str) -> str:
    d = app.request("POST", "/v1/decide", json={"ip": "10.9.9.9", "account_id": account}).json()
    assert d["action"] == "review"
    return str(d["decision_id"])


def test_a_verdict_is_final_until_an_admin_reopens_it_which_revokes_the_token(app: App) -> None:
    did = held(app, "acct-rev")
    body = {"verdict": "overturn", "note": "NAT", "issue_token_days": 7, "token_clears": ["restricted"]}
    r = app.request("POST", f"/v1/review/{did}", scope="review", json=body)
    assert r.status_code == 200, r.text
    token, token_id = r.json()["allow_token"], r.json()["token_id"]
    for verdict in ("confirm", "overturn"):  # the flip of the issue: now refused
        r = app.request("POST", f"/v1/review/{did}", scope="review", json={"verdict": verdict})
        assert r.status_code == 409, r.text
    d = app.request("POST", "/v1/decide", json={"ip": "1.2.4.8", "account_id": "acct-rev", "allow_token": token})
    assert d.json()["action"] == "allow"
    assert [(e["code"], e["value"]) for e in d.json()["reasons"]] == [("ALLOWLISTED", token_id)]

    r = app.request("POST", f"/v1/review/{did}", scope="review", json={"verdict": "reopen"})
    assert r.status_code == 403  # reviewers cannot reopen
    r = app.request("POST", f"/v1/review/{did}", scope="admin", json={"verdict": "reopen", "note": "wrong"})
    assert r.status_code == 200 and r.json()["review"] == "queued"
    d = app.request("POST", "/v1/decide", json={"ip": "1.2.4.8", "account_id": "acct-rev", "allow_token": token})
    assert d.json()["action"] == "block"
    assert "ALLOWLIST_REVOKED" in [e["code"] for e in d.json()["evidence"]]
    r = app.request("POST", f"/v1/review/{did}", scope="review", json={"verdict": "confirm"})
    assert r.status_code == 200 and r.json()["review"] == "confirmed"
    events = [e["event"] for e in app.service.audit.events(did)]
    assert events == ["queued", "overturn", "reopen", "revoke", "confirm"]
    assert app.service.reviews.appeal(did, "please look again")
    # Every review event, appeal included, is chained in its own transaction: the log verifies.
    report = verify_database(app.service.audit.engine, app.service.audit.chain_key.public)
    assert report.ok, report.problems
    assert report.found["e"] == len(app.service.audit.events(did))


def test_a_token_does_not_clear_tor_or_a_restricted_country_unless_chosen(app: App) -> None:
    did = held(app, "acct-plain")
    r = app.request("POST", f"/v1/review/{did}", scope="review", json={"verdict": "overturn", "issue_token_days": 1})
    token = r.json()["allow_token"]
    d = app.request("POST", "/v1/decide", json={"ip": "1.2.4.8", "account_id": "acct-plain", "allow_token": token})
    assert d.json()["action"] == "block"
    assert "ALLOWLISTED" in [e["code"] for e in d.json()["evidence"]]


def test_a_decision_not_open_cannot_be_confirmed(app: App) -> None:
    d = app.request("POST", "/v1/decide", json={"ip": "8.8.8.8"}).json()
    r = app.request("POST", f"/v1/review/{d['decision_id']}", scope="review", json={"verdict": "confirm"})
    assert r.status_code == 409


def test_two_reviewers_at_once_one_wins_and_only_its_token_exists(app: App) -> None:
    did = held(app, "acct-race")
    book = app.service.reviews
    results: list[str] = []
    barrier = threading.Barrier(2)

    def act(verdict: str, tid: str) -> None:
        token = IssuedToken(tid, "account:acct-race", time.time(), time.time() + 60, ())
        barrier.wait()
        try:
            results.append(book.review(did, verdict, actor=tid, token=token))  # type: ignore[arg-type]
        except ReviewConflictError:
            results.append("conflict")

    threads = [threading.Thread(target=act, args=(v, f"t-{v}")) for v in ("confirm", "overturn")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 2 and results.count("conflict") == 1
    winner = next(r for r in results if r != "conflict")
    loser = "t-overturn" if winner == "confirmed" else "t-confirm"
    assert not book.is_revoked(loser)  # never recorded ...
    with app.service.audit.engine.connect() as conn:
        import sqlalchemy as sa

        from geowarden.audit.schema import allow_tokens

        ids = set(conn.execute(sa.select(allow_tokens.c.token_id)).scalars())
    assert loser not in ids and len(ids) == 1  # ... only the winner's token exists


def test_appeals_are_deduplicated_shown_first_and_the_queue_pages(app: App) -> None:
    blocked = app.request("POST", "/v1/decide", json={"ip": "1.2.4.8", "account_id": "acct-app"}).json()
    assert blocked["action"] == "block"
    ref = blocked["appeal_url"].rsplit("/", 1)[1]
    for i in range(111):  # newer decisions held for review push the appealed one past the first page
        held(app, f"acct-{i}")
    r = app.request("POST", "/v1/appeals", scope=None, json={"ref": ref, "message": "I live in Berlin"})
    assert r.status_code == 200
    again = app.request("POST", "/v1/appeals", scope=None, json={"ref": ref, "message": "again"})
    assert again.status_code == 409

    page = app.request("GET", "/v1/review", scope="review")
    assert page.headers["x-total-count"] == "112"
    first = page.json()[0]
    assert first["decision_id"] == blocked["decision_id"]
    assert first["appealed"] is True and first["appeal"]["message"] == "I live in Berlin"
    assert len(page.json()) == 100
    rest = app.request("GET", "/v1/review", scope="review", params={"offset": 100}).json()
    assert len(rest) == 12
    ids = [q["decision_id"] for q in page.json() + rest]
    assert len(set(ids)) == 112
    only = app.request("GET", "/v1/review", scope="review", params={"appealed": "true"}).json()
    assert [q["decision_id"] for q in only] == [blocked["decision_id"]]
    none = app.request("GET", "/v1/review", scope="review", params={"appealed": "false", "limit": 1000})
    assert none.headers["x-total-count"] == "111"
    events = [e["event"] for e in app.service.audit.events(blocked["decision_id"])]
    assert events.count("appeal") == 1
