"""The latency signal wired into the Warden and the default policy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from geowarden.intel.snapshot import Snapshot
from geowarden.model import Action, Facts, RTTSample
from geowarden.policy.engine import PolicyEngine
from geowarden.warden import Warden

FRANKFURT = RTTSample(lat=50.11, lon=8.68, ms=3.0)
NEAR_FRANKFURT = (FRANKFURT, RTTSample(lat=48.86, lon=2.35, ms=9.0), RTTSample(lat=52.37, lon=4.90, ms=7.0))
BEIJING = RTTSample(lat=39.90, lon=116.40, ms=2.0)


def test_an_address_the_round_trips_rule_out_is_challenged(tiny_snapshot: Snapshot) -> None:
    w = Warden(tiny_snapshot, PolicyEngine.load())
    d = w.decide(Facts(ip="8.8.8.8", rtt=NEAR_FRANKFURT))  # US address, 3 ms from Frankfurt
    assert d.action == Action.CHALLENGE
    assert [e.code for e in d.reasons] == ["RTT_TOO_FAR_FROM_CLAIMED"]
    region = next(e for e in d.evidence if e.code == "RTT_REGION")
    assert "DE" in region.value["countries"]


def test_one_landmark_is_inconclusive_and_no_evidence(tiny_snapshot: Snapshot) -> None:
    """One landmark cannot be outvoted if its listed location is wrong: the claim is not refuted."""
    w = Warden(tiny_snapshot, PolicyEngine.load())
    d = w.decide(Facts(ip="8.8.8.8", rtt=(FRANKFURT,)))
    assert d.action == Action.ALLOW
    inc = next(e for e in d.evidence if e.code == "RTT_INCONCLUSIVE")
    assert inc.value["why"] == "too few landmarks" and inc.value["claimed"] == "US"
    assert "RTT_TOO_FAR_FROM_CLAIMED" not in [e.code for e in d.evidence]


def test_round_trips_that_only_fit_china_block(tiny_snapshot: Snapshot) -> None:
    w = Warden(tiny_snapshot, PolicyEngine.load())
    d = w.decide(Facts(ip="5.1.2.3", rtt=(BEIJING,)))  # a German address, 2 ms from Beijing
    assert d.action == Action.BLOCK
    assert "RTT_REGION" in [e.code for e in d.reasons]


def test_no_measurement_no_latency_evidence(tiny_snapshot: Snapshot) -> None:
    d = Warden(tiny_snapshot, PolicyEngine.load()).decide(Facts(ip="5.1.2.3"))
    assert not [e for e in d.evidence if e.signal == "rtt"]


def test_verify_location_command(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GEOWARDEN_")} | {"GEOWARDEN_HOME": str(tmp_path)}

    def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "geowarden", "verify-location", *args],
            input=stdin, capture_output=True, text=True, env=env, check=False,
        )  # fmt: skip

    p = run("--claimed", "AU", "--rtt", "50.11,8.68=3", "--rtt", "48.86,2.35=9", "--rtt", "52.37,4.90=7", "--json")
    assert p.returncode == 0, p.stderr
    (r,) = json.loads(p.stdout)
    assert r["feasible"] is False and r["violation_km"] > 10_000 and r["confidence"] > 0.9
    assert "DE" in r["region"]["countries"]
    three = "[[50.11, 8.68, 3], [48.86, 2.35, 9], [52.37, 4.90, 7]]"
    lines = (
        f'{{"claimed": "DE", "rtt": {three}}}\n'
        "not json\n"
        f'{{"claimed": [35.68, 139.69], "rtt": {three}}}\n'
        '{"claimed": [35.68, 139.69], "rtt": [[50.11, 8.68, 3]]}\n'
        '{"claimed": "DE", "rtt": [[50.11, 8.68, -3]]}\n'
        '{"claimed": "DE", "rtt": [[50.11, 8.68, NaN]]}\n'
        '{"claimed": "DE", "rtt": [[50.11, 8.68, 25000]]}\n'
        '{"claimed": "DE", "rtt": [[50.11, 8.68, 3], [50.11, 8.68, 4]]}\n'
        '{"claimed": "DE", "rtt": [[50.11, 188.68, 3]]}\n'
        '{"claimed": "XX", "rtt": [[50.11, 8.68, 3]]}\n'
    )
    p = run("--file", "-", "--json", stdin=lines)
    assert p.returncode == 3
    out = json.loads(p.stdout)
    assert [x["feasible"] for x in out] == [True, False, None]  # one landmark: inconclusive
    assert out[2]["inconclusive"] == "too few landmarks" and out[2]["reasons"][0] == "RTT_INCONCLUSIVE"
    errors = p.stderr.strip().splitlines()
    assert [e.split(": ")[1] for e in errors] == [f"stdin line {n}" for n in (2, 5, 6, 7, 8, 9, 10)]
    for text in ("not valid JSON", "not positive", "not finite", "above 10,000 ms", "repeats the landmark",
                 "longitude 188.68", "unknown country code"):  # fmt: skip
        assert text in p.stderr
    assert "Traceback" not in p.stderr
    p = run("--claimed", "DE")
    assert p.returncode == 2
    assert "--rtt" in p.stderr
