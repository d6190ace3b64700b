"""Shipped scenarios load; simulate writes logs the log reader reads, and labels."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from geowarden.errors import ConfigError
from geowarden.events import EventReader
from geowarden.intel.snapshot import Snapshot
from geowarden.simulate import load_scenario, scenario_names, simulate


def test_shipped_scenarios() -> None:
    assert {"baseline", "hard", "scale"} <= set(scenario_names())
    assert load_scenario("scale").events >= 10_000_000
    for name in ("baseline", "hard"):
        s = load_scenario(name)
        assert any(e.persona.should_allow for e in s.entries) and any(not e.persona.should_allow for e in s.entries)


@pytest.mark.parametrize("suffix", [".jsonl.gz", ".parquet"])
def test_simulate_writes_readable_logs_and_labels(tmp_path: Path, tiny_snapshot: Snapshot, suffix: str) -> None:
    if suffix == ".parquet":
        pytest.importorskip("pyarrow")
    out, labels = tmp_path / f"logs{suffix}", tmp_path / "labels.jsonl"
    summary = simulate("baseline", 2000, 5, out, labels, snapshot=tiny_snapshot)
    assert summary["events"] == 2000
    reader = EventReader([out])
    events = list(reader)
    assert len(events) == 2000 and reader.skipped == 0
    assert {"phone", "email", "card_bin", "billing_country", "rtt_app_ms"} <= set().union(*(e.extra for e in events))
    rows = [json.loads(x) for x in labels.read_text().splitlines()]
    assert {r["kind"] for r in rows} == {"account", "key"}
    assert all(set(r) >= {"subject", "kind", "persona", "should_allow"} for r in rows)
    ts = [e.ts for e in events]
    assert ts == sorted(ts)


def test_same_seed_same_file(tmp_path: Path, tiny_snapshot: Snapshot) -> None:
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    simulate("baseline", 300, 9, a, None, snapshot=tiny_snapshot)
    simulate("baseline", 300, 9, b, None, snapshot=tiny_snapshot)
    assert a.read_bytes() == b.read_bytes()


def test_bad_scenarios(tmp_path: Path, tiny_snapshot: Snapshot) -> None:
    with pytest.raises(ConfigError, match="unknown scenario"):
        load_scenario("nope")
    bad = tmp_path / "bad.yaml"
    bad.write_text("mix: [{persona: wizard, accounts: 1, share: 1}]\n")
    with pytest.raises(ConfigError, match="persona"):
        load_scenario(bad)
    bad.write_text("mix: [{persona: cn_vpn, accounts: 0, share: 1}]\n")
    with pytest.raises(ConfigError, match="accounts"):
        load_scenario(bad)
    with pytest.raises(ConfigError, match="no such directory"):
        simulate("baseline", 10, 1, tmp_path / "missing" / "x.jsonl", None, snapshot=tiny_snapshot)
