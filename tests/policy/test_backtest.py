"""Backtest on a small log against the tiny world, compared with a hand-computed expectation."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from geowarden.errors import ConfigError
from geowarden.events import EventReader
from geowarden.intel.snapshot import Snapshot
from geowarden.policy.backtest import backtest
from geowarden.policy.engine import DEFAULT_POLICY, PolicyEngine
from geowarden.warden import Warden

# In the tiny world (tests/helpers.py): 1.2.4.8 CN, 5.1.1.1 Tor, 5.2.0.x VPN, 5.3.x hosting,
# 5.7.0.x relay, 8.8.8.8 US, 10.x private.
EVENTS = [
    {"ts": "2026-11-01T10:00:00Z", "request_id": "r1", "account_id": "a1", "api_key_id": "k1", "ip": "8.8.8.8"},
    {"ts": 1793527200000, "request_id": "r2", "account_id": "a1", "api_key_id": "k1", "ip": "5.3.0.9"},
    {"ts": "2026-11-01T10:00:02Z", "request_id": "r3", "account_id": "a2", "api_key_id": "k2", "ip": "5.3.1.1"},
    {"ts": "2026-11-01T10:00:03Z", "request_id": "r4", "account_id": "a2", "api_key_id": "k2", "ip": "5.1.1.1"},
    {"ts": "2026-11-01T10:00:04Z", "request_id": "r5", "account_id": "a3", "api_key_id": "k3", "ip": "1.2.4.8"},
    {"ts": "2026-11-01T10:00:05Z", "request_id": "r6", "account_id": "a3", "api_key_id": "k3", "ip": "5.2.0.7",
     "model": "big", "unknown_column": 1},
    {"ts": "2026-11-01T10:00:06Z", "request_id": "r7", "account_id": "a4", "api_key_id": "k4", "ip": "5.7.0.2"},
]  # fmt: skip
BAD_LINES = [
    '{"ts": "2026-11-01T10:00:07Z", "request_id": "r8", "account_id": "a4", "api_key_id": "k4", "ip": "999.1.1.1"}',
    "{not json",
    '{"ts": "yesterday", "request_id": "r9", "account_id": "a4", "api_key_id": "k4", "ip": "8.8.8.8"}',
    '{"request_id": "r10", "account_id": "a4", "api_key_id": "k4", "ip": "8.8.8.8"}',
]


def write_log(path: Path) -> Path:
    lines = [json.dumps(e) for e in EVENTS[:3]] + BAD_LINES[:2] + [json.dumps(e) for e in EVENTS[3:]] + BAD_LINES[2:]
    with gzip.open(path, "wt") as fh:
        fh.write("\n".join(lines) + "\n")
    return path


def candidate(tmp_path: Path) -> Path:
    """Hosting blocks instead of challenging; the Tor rule is gone."""
    text = DEFAULT_POLICY.read_text()
    text = text.replace(
        "action: challenge\n    weight: 0.5\n    reasons: [IP_HOSTING]",
        "action: block\n    weight: 0.5\n    reasons: [IP_HOSTING]",
    )
    start = text.index("  - name: tor\n")
    end = text.index("  - name: restricted-country-disputed")
    text = text[:start] + text[end:]
    path = tmp_path / "candidate.yaml"
    path.write_text(text)
    return path


def test_backtest_matches_the_hand_computed_diff(tiny_snapshot: Snapshot, tmp_path: Path) -> None:
    old = PolicyEngine.load()
    new = PolicyEngine.load(candidate(tmp_path))
    warden = Warden(tiny_snapshot, old)
    reader = EventReader([write_log(tmp_path / "log.jsonl.gz")])
    report = backtest(reader, old, new, warden.evidence).to_dict()
    # By hand: r1 allow->allow; r2, r3 hosting challenge->block; r4 Tor block->allow (5.x is DE);
    # r5 CN block->block; r6 VPN review->review (its key k3 was used from CN a second before: the
    # behaviour signal's KEY_CONCURRENT_DISTANT); r7 relay allow->allow.
    assert report["events"] == 7
    assert report["old_actions"] == {"allow": 2, "block": 2, "challenge": 2, "review": 1}
    assert report["new_actions"] == {"allow": 3, "block": 3, "review": 1}
    assert report["transitions"] == [
        {"from": "block", "to": "allow", "n": 1},
        {"from": "challenge", "to": "block", "n": 2},
    ]
    assert report["changed"] == 3
    assert report["rules_removed"] == {"tor": 1}
    assert [e["request_id"] for e in report["examples"]] == ["r4", "r2", "r3"]
    # The malformed rows are reported with line numbers and counted, never silently dropped.
    assert reader.skipped == 4
    assert [(p.line, p.reason) for p in reader.problems] == [
        (4, "ip is not an IP address"),
        (5, "not JSON"),
        (10, "ts is neither ISO 8601 nor epoch milliseconds"),
        (11, "missing ts"),
    ]


def test_a_missing_log_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such log file"):
        EventReader([tmp_path / "nope.jsonl"])


def test_backtest_command(tiny_snapshot: Snapshot, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GEOWARDEN_")}
    env |= {"GEOWARDEN_HOME": str(tmp_path / "home"), "GEOWARDEN_SNAPSHOT": str(tiny_snapshot.path)}
    log = write_log(tmp_path / "log.jsonl.gz")
    args = ["policy", "backtest", str(log), "--policy", str(candidate(tmp_path)), "--json"]
    p = subprocess.run([sys.executable, "-m", "geowarden", *args], capture_output=True, text=True, env=env, check=False)
    assert p.returncode == 3, p.stderr  # the four malformed rows, each reported with its line
    doc = json.loads(p.stdout)
    assert (doc["events"], doc["changed"], doc["skipped"]) == (7, 3, 4)
    assert "log.jsonl.gz line 5: not JSON" in p.stderr
