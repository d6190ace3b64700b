"""The baseline scenario end to end through Warden.decide: per-persona figures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from geowarden.errors import ConfigError, InputError
from geowarden.intel.snapshot import Snapshot
from geowarden.simulate import evaluate, simulate


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory, full_snapshot: Snapshot) -> dict[str, Any]:
    d = tmp_path_factory.mktemp("eval")
    simulate("baseline", 3000, 11, d / "logs.jsonl.gz", d / "labels.jsonl", snapshot=full_snapshot)
    return evaluate(d / "logs.jsonl.gz", d / "labels.jsonl", None, full_snapshot, chart=d / "eval.png")


def _row(report: dict[str, Any], name: str) -> dict[str, Any]:
    return next(r for r in report["personas"] if r["persona"] == name)


def test_every_persona_has_figures(report: dict[str, Any]) -> None:
    names = {r["persona"] for r in report["personas"]}
    assert {"local_residential", "cn_vpn", "key_reseller", "front_company"} <= names
    for r in report["personas"]:
        assert r["n"] > 0 and r["events"] > 0
        assert (r["false_positive_rate"] is None) != r["should_allow"]
        assert (r["recall"] is None) == r["should_allow"]
    assert report["skipped"] == 0 and report["unlabelled_events"] == 0
    assert Path(report["chart"]).stat().st_size > 10_000


def test_honest_locals_pass_and_vpn_users_are_stopped(report: dict[str, Any]) -> None:
    assert _row(report, "local_residential")["false_positive_rate"] <= 0.05
    assert _row(report, "local_mobile")["false_positive_rate"] <= 0.05
    cn = _row(report, "cn_vpn")
    assert cn["recall"] >= 0.8
    assert {x["code"] for x in cn["top_reasons"]} & {"IP_HOSTING", "IP_VPN", "TZ_RESTRICTED"}


def test_bad_labels(tmp_path: Path, full_snapshot: Snapshot) -> None:
    logs = tmp_path / "l.jsonl"
    simulate("baseline", 20, 1, logs, None, snapshot=full_snapshot)
    with pytest.raises(ConfigError, match="no such labels"):
        evaluate(logs, tmp_path / "none.jsonl", None, full_snapshot)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"subject": "a", "kind": "team", "persona": "x", "should_allow": true}\n')
    with pytest.raises(InputError, match="line 1"):
        evaluate(logs, bad, None, full_snapshot)


def test_simulate_and_eval_commands(tiny_snapshot: Snapshot, tmp_path: Path) -> None:
    import json
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("GEOWARDEN_")}
    env |= {"GEOWARDEN_HOME": str(tmp_path / "home"), "GEOWARDEN_SNAPSHOT": str(tiny_snapshot.path)}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "geowarden", *args], capture_output=True, text=True, env=env, check=False
        )

    logs, labels = tmp_path / "ev.jsonl.gz", tmp_path / "labels.jsonl"
    p = run(
        "simulate",
        "--scenario",
        "baseline",
        "--events",
        "2000",
        "--seed",
        "3",
        "--out",
        str(logs),
        "--labels",
        str(labels),
        "--json",
    )
    assert p.returncode == 0, p.stderr
    assert logs.is_file() and labels.is_file()
    first = json.loads(labels.read_text().splitlines()[0])
    assert {"subject", "kind", "persona", "should_allow"} <= first.keys()
    p = run("eval", str(logs), "--labels", str(labels), "--json")
    assert p.returncode == 0, p.stderr
    report = json.loads(p.stdout)
    personas = {r["persona"]: r for r in report["personas"]}
    assert {"local_residential", "cn_vpn"} <= personas.keys()
    assert {"persona", "n", "recall", "precision", "false_positive_rate", "top_reasons"} <= personas["cn_vpn"].keys()
    p = run("eval", str(logs))
    assert p.returncode == 2
    assert "--labels" in p.stderr
