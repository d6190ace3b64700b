"""An operator's calibration end to end: a mesh of real WonderNetwork pings in, ``geowarden latency
calibrate`` out, ``verify-location --calibration`` and the Warden's rtt signal using it.

The constructed case: the mesh is 18 western European servers; the client is the Moscow server
(never in the mesh) with its real pings to them, claiming the Paris landmark's position
(2,486 km away). Every physical disc holds Paris, so without a calibration the claim passes; the
calibrated speeds and the expected-RTT ceiling together refute it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from latency_data import WN

from geowarden.errors import ConfigError, InputError
from geowarden.intel.snapshot import Snapshot
from geowarden.latency.calibration import Mesh, MeshHeaderError, MeshParser, MeshRow, calibrate, load, save
from geowarden.latency.model import Calibration
from geowarden.latency.verify import ClaimedPoint, verify
from geowarden.model import Facts
from geowarden.settings import Settings
from geowarden.signals.rtt import LatencySignal
from geowarden.warden import Warden, configured_signals
from helpers import require_shared

MESH = ["Frankfurt", "Rotterdam", "Paris", "London", "Brussels", "Zurich", "Munich", "Dusseldorf", "Hamburg",
        "Copenhagen", "Strasbourg", "Lyon", "Warsaw", "Stockholm", "Oslo", "Nuremberg", "Antwerp", "Basel"]  # fmt: skip
CLIENT, CLAIM = "Moscow", "Paris"


def write_mesh(wn: WN, path: Path) -> int:
    """The real min RTTs between the mesh servers, both directions, as the documented CSV."""
    lines = ["a_lat,a_lon,b_lat,b_lon,rtt_ms,a_name,b_name"]
    for a in MESH:
        for b in MESH:
            i, j = wn.idx(a), wn.idx(b)
            if a != b and np.isfinite(wn.rtt[i, j]):
                lines.append(f"{wn.lat[i]},{wn.lon[i]},{wn.lat[j]},{wn.lon[j]},{wn.rtt[i, j]},{a},{b}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(lines) - 1


def mesh_of(wn: WN) -> Mesh:
    """The same mesh built in memory, one row a pair."""
    mesh = Mesh()
    for k, a in enumerate(MESH):
        for b in MESH[k + 1 :]:
            i, j = wn.idx(a), wn.idx(b)
            mesh.add(MeshRow(wn.lat[i], wn.lon[i], wn.lat[j], wn.lon[j], float(np.fmin(wn.rtt[i, j], wn.rtt[j, i]))))
    return mesh


def run(home: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("GEOWARDEN_")} | {"GEOWARDEN_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "geowarden", *args],
        capture_output=True, text=True, env=base | (env or {}), check=False, timeout=300,
    )  # fmt: skip


def claim_args(wn: WN, claim: str = CLAIM) -> list[str]:
    lat, lon = wn.point(claim)
    args = ["verify-location", "--claimed", f"{lat},{lon}", "--json"]
    for s in wn.samples(CLIENT, MESH):
        args += ["--rtt", f"{s.lat},{s.lon}={s.ms}"]
    return args


def test_calibrate_then_verify_location_catches_the_false_claim(wn: WN, tmp_path: Path) -> None:
    mesh = tmp_path / "mesh.csv"
    rows = write_mesh(wn, mesh)
    home = tmp_path / "home"
    p = run(home, "latency", "calibrate", "--mesh", str(mesh), "--out", str(tmp_path / "cal.json"), "--json")
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["mesh"] == {"rows": rows, "pairs": rows // 2, "landmarks": len(MESH)}
    assert doc["landmarks"] == len(MESH) and doc["calibrated"] == len(MESH) and doc["inconsistent"] == []
    assert doc["ceiling"] is True and doc["in_use"] is False and doc["bad_rows"] == 0
    assert 100.0 < doc["median_speed_km_per_ms"] < 199.9
    # without a calibration every disc holds Paris: the claim passes
    (plain,) = json.loads(run(home, *claim_args(wn)).stdout)
    assert plain["feasible"] is True
    # with it the claim is refuted; the client's own position is not
    p = run(home, *claim_args(wn), "--calibration", str(tmp_path / "cal.json"))
    assert p.returncode == 0, p.stderr
    (cal,) = json.loads(p.stdout)
    assert cal["feasible"] is False and cal["violation_km"] > 0.0 and cal["reasons"][0] == "RTT_TOO_FAR_FROM_CLAIMED"
    (honest,) = json.loads(run(home, *claim_args(wn, CLIENT), "--calibration", str(tmp_path / "cal.json")).stdout)
    assert honest["feasible"] is not False  # never rejected (far from every landmark: may be inconclusive)


def test_the_default_calibration_is_used_until_switched_off(wn: WN, tmp_path: Path) -> None:
    mesh = tmp_path / "mesh.jsonl"  # the same mesh as JSON Lines, without names
    write_mesh(wn, tmp_path / "m.csv")
    rows = []
    for line in (tmp_path / "m.csv").read_text().splitlines()[1:]:
        a_lat, a_lon, b_lat, b_lon, ms, _, _ = line.split(",")
        rows.append(json.dumps({"a_lat": float(a_lat), "a_lon": float(a_lon), "b_lat": float(b_lat),
                                "b_lon": float(b_lon), "rtt_ms": float(ms)}))  # fmt: skip
    mesh.write_text("\n".join(rows) + "\n")
    home = tmp_path / "home"
    p = run(home, "latency", "calibrate", "--mesh", str(mesh))
    assert p.returncode == 0, p.stderr
    assert (home / "latency" / "calibration.json").is_file() and "the rtt signal uses it" in p.stdout
    (used,) = json.loads(run(home, *claim_args(wn)).stdout)
    (off,) = json.loads(run(home, *claim_args(wn), "--no-calibration").stdout)
    assert (used["feasible"], off["feasible"]) == (False, True)
    info = json.loads(run(home, "latency", "info", "--json").stdout)
    assert info["in_use"] is True and info["landmarks"] == len(MESH) and info["ceiling"] is True
    assert json.loads(run(tmp_path / "empty-home", "latency", "info", "--json").stdout) == {"file": None}


def test_bad_mesh_rows_are_reported_with_file_and_line(tmp_path: Path) -> None:
    mesh = tmp_path / "mesh.csv"
    good = [f"50.11,8.68,{48 + k * 0.5},{2 + k},{5 + k}" for k in range(3)]
    mesh.write_text(
        "a_lat,a_lon,b_lat,b_lon,rtt_ms\n" + "\n".join(good) + "\n"
        "50.11,8.68,52.37,4.90,fast\n"  # line 5
        "91,8.68,52.37,4.90,3\n"
        "50.11,8.68,50.11,8.68,3\n"
        "50.11,8.68,52.37,4.90,-1\n"
        "50.11,8.68\n"
        "50.11,8.68,52.37,4.90,25000\n"
    )
    p = run(tmp_path, "latency", "calibrate", "--mesh", str(mesh), "--out", str(tmp_path / "cal.json"))
    assert p.returncode == 3 and "Traceback" not in p.stderr
    lines = p.stderr.strip().splitlines()
    assert [x.split(": ")[1] for x in lines[:-1]] == [f"{mesh} line {n}" for n in range(5, 11)]
    for text in ("not a number: 'fast'", "a_lat 91 is outside", "same landmark", "not positive",
                 "expected at least 5", "above 10,000 ms"):  # fmt: skip
        assert text in p.stderr
    assert "no calibration written: 6 bad row(s)" in lines[-1] and not (tmp_path / "cal.json").exists()
    p = run(tmp_path, "latency", "calibrate", "--mesh", str(mesh), "--out", str(tmp_path / "cal.json"), "--skip-bad")
    assert p.returncode == 3 and (tmp_path / "cal.json").is_file()
    assert load(tmp_path / "cal.json").landmarks  # the good rows' landmarks
    mesh.write_text("lat,lon,rtt\n1,2,3\n")
    p = run(tmp_path, "latency", "calibrate", "--mesh", str(mesh))
    assert p.returncode == 3 and p.stderr.count("\n") == 1 and "the header must name" in p.stderr


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("", "not valid JSON"),
        ("{", "not valid JSON"),
        ("[]", "expected a JSON object"),
        ('{"landmarks": 3}', "no 'landmarks' list"),
        ('{"format": "other", "landmarks": []}', "format is 'other'"),
        ('{"version": 2, "landmarks": []}', "newer than this geowarden reads"),
        ('{"landmarks": [{"lat": 95, "lon": 2, "speed_km_per_ms": 100}]}', "outside the globe"),
        ('{"landmarks": [{"lat": 5, "lon": 2}]}', "speed_km_per_ms must be a number"),
        ('{"landmarks": [{"lat": 5, "lon": 2, "speed_km_per_ms": 500}], "default": {"slack_km": -1}}', "slack"),
        ('{"landmarks": [], "ceiling": {"edges_km": [0, 1], "ms": [1]}}', "one RTT per distance edge"),
        ('{"landmarks": [], "ceiling": {"edges_km": [0], "ms": [-4]}}', "must be >= 0"),
        ('{"landmarks": [], "margin": NaN}', "not valid JSON"),
        ('{"landmarks": [], "margin": 1e400}', "not a finite number"),
    ],
)
def test_a_corrupt_calibration_is_refused_in_one_line(tmp_path: Path, content: str, reason: str) -> None:
    bad = tmp_path / "cal.json"
    bad.write_text(content)
    with pytest.raises(ConfigError, match=reason) as e:
        load(bad)
    assert "\n" not in e.value.message and str(bad) in e.value.message


def test_verify_location_refuses_an_unusable_calibration(tmp_path: Path) -> None:
    (tmp_path / "cal.json").write_text('{"landmarks": [{"lat": 5}]}')
    args = ["verify-location", "--claimed", "DE", "--rtt", "50.11,8.68=3"]
    for path, reason in ((tmp_path / "cal.json", "not a usable calibration"), (tmp_path / "none.json", "cannot read")):
        p = run(tmp_path, *args, "--calibration", str(path))
        assert p.returncode == 2 and p.stdout == ""
        assert p.stderr.count("\n") == 1 and reason in p.stderr and "Traceback" not in p.stderr
    p = run(tmp_path, *args, "--calibration", str(tmp_path / "cal.json"), "--no-calibration")
    assert p.returncode == 2 and "not both" in p.stderr


def test_mesh_parser_and_mesh() -> None:
    parser, mesh = MeshParser(), Mesh()
    assert parser.parse("A_LAT, a_lon ,b_lat,b_lon,rtt_ms,b_name,a_name", 1) is None  # any order, any case
    row = parser.parse('50.11,8.68,52.37,4.90,6.8,"ams, NL",fra', 2)
    assert row == MeshRow(50.11, 8.68, 52.37, 4.90, 6.8, "fra", "ams, NL")
    assert row is not None
    mesh.add(row, 2)
    mesh.add(MeshRow(52.3701, 4.9001, 50.11, 8.68, 5.9), 3)  # the same pair, the other way, faster
    mesh.add(MeshRow(50.11, 8.68, 52.37, 4.90, 7.5), 4)
    assert (mesh.n, mesh.pairs, mesh.rows) == (2, 1, 3) and mesh.names == ["fra", "ams, NL"]
    assert mesh.matrix()[0, 1] == mesh.matrix()[1, 0] == 5.9
    with pytest.raises(InputError, match=r"'fra' is at .* on line 2"):
        mesh.add(MeshRow(50.2, 8.68, 52.37, 4.90, 7.5, "fra"), 5)
    assert mesh.rows == 3
    with pytest.raises(InputError, match="a calibration needs measured pairs"):
        calibrate(Mesh())
    headerless = MeshParser()
    assert headerless.parse("50.11,8.68,52.37,4.90,6.8", 1) == MeshRow(50.11, 8.68, 52.37, 4.90, 6.8)
    with pytest.raises(MeshHeaderError, match="missing: rtt_ms"):
        MeshParser().parse("a_lat,a_lon,b_lat,b_lon,ms", 1)
    with pytest.raises(InputError, match="line 3: rtt_ms is missing"):
        MeshParser().parse('{"a_lat": 1, "a_lon": 2, "b_lat": 3, "b_lon": 4}', 3)


def test_a_saved_calibration_loads_back_the_same(wn: WN, tmp_path: Path) -> None:
    mesh = Mesh()
    parser = MeshParser()
    write_mesh(wn, tmp_path / "mesh.csv")
    for n, line in enumerate((tmp_path / "mesh.csv").read_text().splitlines(), 1):
        row = parser.parse(line, n)
        if row is not None:
            mesh.add(row, n)
    cal = calibrate(mesh)
    save(cal, tmp_path / "sub" / "cal.json", mesh)
    back = load(tmp_path / "sub" / "cal.json")
    assert [lm.name for lm in back.landmarks] == MESH
    for a, b in zip(cal.landmarks, back.landmarks, strict=True):
        assert b.bound.speed_km_per_ms == pytest.approx(a.bound.speed_km_per_ms, abs=1e-3)
    assert back.ceiling is not None and cal.ceiling is not None and back.ceiling.edges_km == cal.ceiling.edges_km


def test_the_warden_picks_up_the_configured_calibration(wn: WN, tiny_snapshot: Snapshot, tmp_path: Path) -> None:
    mesh = mesh_of(wn)
    home = tmp_path / "home"
    save(calibrate(mesh), home / "latency" / "calibration.json", mesh)
    facts = Facts(rtt=wn.samples(CLIENT, MESH), claimed=wn.point(CLAIM))

    def too_far(settings: Settings) -> bool:
        d = Warden.open(settings, snapshot=tiny_snapshot.path).decide(facts)
        return "RTT_TOO_FAR_FROM_CLAIMED" in [e.code for e in d.evidence]

    # the default location under GEOWARDEN_HOME
    assert (
        Settings.from_env({"GEOWARDEN_HOME": str(home)}).latency_calibration_file
        == home / "latency" / "calibration.json"
    )
    assert too_far(Settings(home=home))
    # none there: exactly as before
    assert not too_far(Settings(home=tmp_path / "other"))
    assert Settings(home=tmp_path / "other").latency_calibration_file is None
    # GEOWARDEN_LATENCY_CALIBRATION points elsewhere
    moved = tmp_path / "elsewhere.json"
    (home / "latency" / "calibration.json").rename(moved)
    env = {"GEOWARDEN_HOME": str(home), "GEOWARDEN_LATENCY_CALIBRATION": str(moved)}
    assert too_far(Settings.from_env(env))
    rtt = next(s for s in configured_signals(Settings.from_env(env)) if s.name == "rtt")
    assert isinstance(rtt, LatencySignal) and rtt.calibration is not None and len(rtt.calibration.landmarks) == 18
    # a configured file that cannot be used stops the Warden from opening, in one line
    moved.write_text("{")
    with pytest.raises(ConfigError, match=r"GEOWARDEN_LATENCY_CALIBRATION: latency calibration .* not valid JSON") as e:
        Warden.open(Settings.from_env(env), snapshot=tiny_snapshot.path)
    assert "\n" not in e.value.message
    p = run(home, "check", "--ip", "8.8.8.8", env={"GEOWARDEN_LATENCY_CALIBRATION": str(moved)})
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "GEOWARDEN_LATENCY_CALIBRATION" in p.stderr
    # unless the rtt signal is switched off: then it is not read at all
    off = Settings.from_env(env | {"GEOWARDEN_SIGNALS_OFF": "rtt"})
    assert "rtt" not in [s.name for s in configured_signals(off)]


def test_the_case_needs_both_the_speeds_and_the_ceiling(wn: WN) -> None:
    """What docs/latency.md says of the constructed case: neither part of the calibration alone
    refutes the claim, together they do."""
    mesh = mesh_of(wn)
    cal = calibrate(mesh)
    samples, claim = wn.samples(CLIENT, MESH), ClaimedPoint(*wn.point(CLAIM))
    speeds_only, ceiling_only = dataclasses.replace(cal, ceiling=None), Calibration(ceiling=cal.ceiling)
    answers = [
        verify(samples, claim, calibration=c, with_region=False).feasible
        for c in (None, speeds_only, ceiling_only, cal)
    ]
    assert answers == [True, None, True, False]


def test_the_wondernetwork_script_writes_the_documented_format(tmp_path: Path) -> None:
    data = require_shared() / "latency" / "wondernetwork"
    script = Path(__file__).resolve().parents[2] / "scripts" / "wondernetwork_mesh.py"
    p = subprocess.run(
        [sys.executable, str(script), "--data", str(data), "--only", "Paris,London,Frankfurt"],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    parser, mesh = MeshParser(), Mesh()
    for n, line in enumerate(p.stdout.splitlines(), 1):
        row = parser.parse(line, n)
        if row is not None:
            mesh.add(row, n)
    assert (mesh.n, mesh.pairs) == (3, 3) and sorted(mesh.names) == ["Frankfurt", "London", "Paris"]
