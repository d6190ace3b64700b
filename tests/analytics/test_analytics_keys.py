"""Shared and resold keys (analytics/keys.py): the planted keys are found, the honest heavy users
(a team behind a gateway, a 24/7 cloud job, a two-region job, a traveller, a global company, one
person in China, a VPN that changes exit) are not; the score's parts behave as documented."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from analytics_world import LogWriter, keys_scenario

from geowarden.analytics import keys
from geowarden.analytics.findings import AnalysisContext, Finding
from geowarden.analytics.run import AnalysisResult, analyze
from geowarden.intel.snapshot import Snapshot
from geowarden.policy import default_restricted


@pytest.fixture(scope="module")
def result(world_snapshot: Snapshot, tmp_path_factory: pytest.TempPathFactory) -> AnalysisResult:
    path = LogWriter().jsonl(tmp_path_factory.mktemp("keys") / "keys.jsonl", keys_scenario().events)
    return analyze([path], snapshot=world_snapshot)


def shared(result: AnalysisResult) -> dict[str, Finding]:
    return {f.subject: f for f in result.findings if f.kind == "key_shared"}


def test_planted_found_and_honest_not(result: AnalysisResult) -> None:
    truth = keys_scenario()
    found = set(shared(result))
    tp = len(found & truth.planted)
    precision = tp / len(found) if found else 0.0
    recall = tp / len(truth.planted)
    print(f"key_shared: precision {precision:.2f}, recall {recall:.2f}, found {sorted(found)}")
    assert recall == 1.0
    assert precision == 1.0
    assert not found & truth.honest


def test_evidence_holds_the_numbers(result: AnalysisResult) -> None:
    f = shared(result)["k-resold"]
    ev = f.evidence
    assert 0.5 <= f.score <= 1
    assert ev["max_countries_at_once"] == 4
    assert {c["country"] for c in ev["top_countries"]} == {"CN", "US", "SG", "JP"}
    assert ev["restricted_share"] == pytest.approx(0.25, abs=0.01)
    assert ev["mixed_buckets"] >= 6  # China and elsewhere within the same five minutes
    assert ev["owner_accounts"] == ["acct-resold"]
    relay = shared(result)["k-relay"].evidence
    assert relay["restricted_share"] == 0  # no Chinese address at all ...
    assert relay["restricted_client_share"] > 0.5  # ... but the clients behind the relays look Chinese
    assert relay["anonymised_share"] == 1.0


def test_threshold_from_settings(world_snapshot: Snapshot, tmp_path: Path) -> None:
    path = LogWriter().jsonl(tmp_path / "k.jsonl", keys_scenario().events)
    strict = analyze([path], snapshot=world_snapshot, settings={"keys": {"min_score": 0.79}})
    assert set(shared(strict)) == {"k-relay"}  # k-resold scores 0.78
    busy = analyze([path], snapshot=world_snapshot, settings={"keys": {"min_events": 1000}})
    assert shared(busy) == {}  # no key has a thousand requests


def ctx(**settings: Any) -> AnalysisContext:
    return AnalysisContext(None, None, "duckdb", default_restricted(), {"keys": settings})


def counts(**kw: Any) -> dict[str, Any]:
    """A candidate key's counts: a busy key in four countries at once, every bucket, on three
    networks (spread and concurrency full, networks and relay nil: sharing 1 - 0.5 * 0.5)."""
    base = {
        "key": "k", "events": 1000, "accounts": 1, "prefixes": 20, "asns": 3, "countries": 4,
        "restricted": 0, "anon": 0, "client_restricted": 0, "hours": 12, "first_ms": 0, "last_ms": 1,
        "busy": 100, "concurrent": 100, "mixed": 0, "max_at_once": 4,
    }  # fmt: skip
    return {**base, **kw}


# (case, counts, expected score, or None when below min_score)
SCORES = [
    ("shared, nothing restricted: at most the floor", counts(), None),
    ("shared, 10 % from restricted countries", counts(restricted=100), 0.75),
    ("shared, restricted-looking clients on half", counts(client_restricted=500), 0.75),
    ("one concurrent bucket is a VPN reconnecting", counts(restricted=100, concurrent=1, busy=100), None),
    ("two prefixes: one job in two regions", counts(client_restricted=900, prefixes=2), None),
    ("two prefixes, but China and elsewhere at once", counts(restricted=100, prefixes=2, mixed=6), 0.75),
    ("half the exposure", counts(restricted=25), 0.75 * (0.35 + 0.65 * 0.5)),
    ("many networks", counts(restricted=100, asns=20), 1 - 0.25 * 0.6),
]


@pytest.mark.parametrize(("case", "row", "expected"), SCORES, ids=[c[0] for c in SCORES])
def test_score_parts(case: str, row: dict[str, Any], expected: float | None) -> None:
    f = keys.score_key(ctx(), row, [("US", 500), ("CN", 100)], ["a1"])
    if expected is None:
        assert f is None, case
    else:
        assert f is not None, case
        assert f.score == pytest.approx(expected, abs=1e-4), case


def test_relay_shape_raises_sharing() -> None:
    plain = keys.score_key(ctx(min_score=0), counts(restricted=100, concurrent=3, prefixes=5), [], [])
    relayed = keys.score_key(
        ctx(min_score=0), counts(restricted=100, concurrent=3, prefixes=5, anon=1000, hours=24), [], []
    )
    assert plain is not None and relayed is not None
    assert relayed.score > plain.score
    assert relayed.evidence["components"]["relay"] == 1.0


def test_every_default_is_a_number() -> None:
    assert all(isinstance(v, (int, float)) for v in keys.DEFAULTS.values())
    assert set(keys.WEIGHTS) == {"spread", "concurrency", "networks", "relay"}


def test_events_without_client_flags(world_snapshot: Snapshot, tmp_path: Path) -> None:
    """An events table built another way (no ``client_restricted``): the flag is computed from
    the time zones and languages, and the findings are the same."""
    from geowarden.analytics.backends import DuckDBEngine
    from geowarden.analytics.load import load

    path = LogWriter().jsonl(tmp_path / "k.jsonl", keys_scenario().events)
    engine = DuckDBEngine()
    try:
        loaded = load(engine, [path], world_snapshot, default_restricted())
        full = AnalysisContext(loaded.events, None, "duckdb", default_restricted())
        bare = AnalysisContext(loaded.events.drop("client_restricted"), None, "duckdb", default_restricted())
        assert "client_restricted" not in bare.events.columns
        assert [f.to_dict() for f in keys.run(bare)] == [f.to_dict() for f in keys.run(full)]
    finally:
        engine.close()
