"""Screening wired into the Warden, the default policy, the CLI and the service."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from geowarden.intel.snapshot import Snapshot
from geowarden.model import Action, Facts
from geowarden.policy.engine import PolicyEngine
from geowarden.screening.cli import clear_cache
from geowarden.settings import Settings
from geowarden.warden import Warden, configured_signals
from helpers import FIXTURES


@pytest.fixture
def lists() -> Path:
    clear_cache()
    return FIXTURES / "sanctions"


def warden_with(snapshot: Snapshot, lists: Path | None, home: Path) -> Warden:
    """A Warden whose screening signal reads ``lists`` (as ``GEOWARDEN_SCREENING_DATA`` would give)."""
    settings = Settings(home=home, screening_data=lists)
    return Warden(snapshot, PolicyEngine.load(), signals=configured_signals(settings))


def test_a_listed_organisation_is_blocked_at_signup(tiny_snapshot: Snapshot, lists: Path, tmp_path: Path) -> None:
    w = warden_with(tiny_snapshot, lists, tmp_path)
    d = w.decide(Facts(ip="8.8.8.8", org_name="Rosoboronexport"))
    assert d.action == Action.BLOCK
    assert "ORG_LISTED" in [e.code for e in d.reasons]
    clean = w.decide(Facts(ip="8.8.8.8", org_name="Acme Bakery GmbH"))
    assert clean.action == Action.ALLOW


def test_majority_restricted_ownership_blocks(tiny_snapshot: Snapshot, lists: Path, tmp_path: Path) -> None:
    w = warden_with(tiny_snapshot, lists, tmp_path)
    owners = ("Rosoboronexport:30:RU", "Beijing Holding Co:30:CN", "Alice Smith:40:GB")
    d = w.decide(Facts(ip="8.8.8.8", org_name="Front Trading Ltd", org_owners=owners))
    assert d.action == Action.BLOCK
    assert "ORG_OWNED_BY_RESTRICTED" in [e.code for e in d.reasons] + [e.code for e in d.evidence]


def test_without_lists_screening_fails_open(tiny_snapshot: Snapshot, tmp_path: Path) -> None:
    clear_cache()
    d = warden_with(tiny_snapshot, None, tmp_path).decide(Facts(ip="8.8.8.8", org_name="Rosoboronexport"))
    assert "SCREENING_UNAVAILABLE" in [e.code for e in d.evidence]
    assert d.action == Action.ALLOW


def test_screen_command(lists: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GEOWARDEN_")}
    env |= {"GEOWARDEN_HOME": str(tmp_path), "GEOWARDEN_SCREENING_DATA": str(lists)}
    p = subprocess.run(
        [sys.executable, "-m", "geowarden", "screen", "Рособоронэкспорт", "Acme Bakery GmbH", "--json"],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    first, second = json.loads(p.stdout)
    assert first["verdict"] == "match" and first["matches"][0]["score"] >= 0.91
    assert {"name", "list", "score", "entity_id", "explanation", "verdict"} <= first["matches"][0].keys()
    assert second["verdict"] == "none" and second["matches"] == []


def test_screen_command_reports_a_bad_name_and_answers_the_rest(lists: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GEOWARDEN_")}
    env |= {"GEOWARDEN_HOME": str(tmp_path), "GEOWARDEN_SCREENING_DATA": str(lists)}
    names = tmp_path / "names.txt"
    names.write_text("Rosoboronexport\n" + "x" * 10_000 + "\nAcme \x07 Bakery\nAcme Bakery GmbH\n", encoding="utf-8")
    p = subprocess.run(
        [sys.executable, "-m", "geowarden", "screen", "--file", str(names)],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    assert p.returncode == 3, p.stderr
    assert "Traceback" not in p.stderr
    lines = p.stdout.splitlines()
    assert lines[0].startswith("Rosoboronexport: match")
    assert "name 2: not screened: name longer than" in p.stdout and "name 3: not screened: control" in p.stdout
    assert "Acme Bakery GmbH: none" in p.stdout
