"""STIX 2.1 indicator sharing: findings out as a bundle and back in as shared indicators (round
trip), TLP and validity kept, nothing internal exported, bad bundles refused in one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import stix2

from geowarden.sharing.stix import MAX_BUNDLE_BYTES, export_bundle, import_bundle

FINDINGS = [
    {"kind": "infrastructure", "subject": "AS4134", "score": 0.91, "members": [],
     "evidence": {"network": "asn", "accounts": 40, "restricted_share": 0.7, "example_accounts": ["acct-secret"]}},
    {"kind": "infrastructure", "subject": "203.0.113.0/24", "score": 0.55, "members": [], "evidence": {"accounts": 9}},
    {"kind": "infrastructure", "subject": "2001:db8::/48", "score": 0.4, "members": [], "evidence": {}},
    {"kind": "key_sharing", "subject": "key-internal-7", "score": 0.99, "members": ["acct-1"], "evidence": {}},
]  # fmt: skip


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GEOWARDEN_")} | {"GEOWARDEN_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "geowarden", *args], env=env, capture_output=True, text=True,
                          timeout=120, check=False)  # fmt: skip


def test_round_trip(tmp_path: Path) -> None:
    bundle, skipped = export_bundle(FINDINGS, producer="Provider A", tlp="green", valid_days=10)
    assert skipped == {"key_sharing: not a network": 1}
    text = bundle.serialize()
    for internal in ("acct-secret", "key-internal-7", "acct-1"):
        assert internal not in text
    path = tmp_path / "b.json"
    path.write_text(text)
    records, skipped = import_bundle(path, peer="provider-a")
    assert skipped == {}
    got = {(r.get("asn"), r.get("network"), r["confidence"], r["tlp"], r["peer"], r["label"]) for r in records}
    assert got == {
        (4134, None, 91, "green", "provider-a", "shared-indicator"),
        (None, "203.0.113.0/24", 55, "green", "provider-a", "shared-indicator"),
        (None, "2001:db8::/48", 40, "green", "provider-a", "shared-indicator"),
    }
    assert all(r["valid_until"] for r in records)
    [asn] = [o for o in bundle.objects if o.type == "indicator" and "4134" in o.pattern]
    assert asn.description == "geowarden infrastructure finding: accounts 40, restricted_share 0.7"


def test_expired_and_unsupported_indicators_are_counted(tmp_path: Path) -> None:
    past = datetime.now(UTC) - timedelta(days=40)
    old, _ = export_bundle(FINDINGS[:1], producer="P", valid_days=1, now=past)
    other = stix2.Indicator(pattern="[domain-name:value = 'example.com']", pattern_type="stix",
                            valid_from=datetime.now(UTC))  # fmt: skip
    path = tmp_path / "b.json"
    path.write_text(stix2.Bundle(objects=[*old.objects, other]).serialize())
    records, skipped = import_bundle(path, peer="p")
    assert records == [] and skipped == {"expired": 1, "pattern not a single network or ASN": 1}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not a valid STIX 2.1 bundle"),
        ('{"type": "bundle", "id": "bundle--x", "objects": []}', "not a valid STIX 2.1 bundle"),
        ('{"type": "identity", "id": "identity--2d1c6ab3-5e4e-48ac-a32b-f0c01c2836a8", "spec_version": "2.1", '
         '"created": "2026-01-01T00:00:00Z", "modified": "2026-01-01T00:00:00Z", "name": "x"}',
         "not a STIX bundle (a single identity)"),
    ],
)  # fmt: skip
def test_a_malformed_bundle_is_refused_in_one_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    p = _cli(tmp_path, "indicators", "import", str(path), "--peer", "p")
    assert p.returncode == 3, p.stderr
    [line] = p.stderr.strip().splitlines()
    assert message in line


def test_an_oversized_bundle_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    with path.open("wb") as fh:
        fh.truncate(MAX_BUNDLE_BYTES + 1)
    p = _cli(tmp_path, "indicators", "import", str(path), "--peer", "p")
    assert p.returncode == 3
    assert "more than a bundle may be" in p.stderr and len(p.stderr.strip().splitlines()) == 1


def test_the_commands(tmp_path: Path) -> None:
    findings = tmp_path / "findings.json"
    findings.write_text(json.dumps(FINDINGS))
    bundle = tmp_path / "out.json"
    p = _cli(tmp_path, "indicators", "export", "--findings", str(findings), "--out", str(bundle), "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["indicators"] == 3
    p = _cli(tmp_path / "home", "indicators", "import", str(bundle), "--peer", "peer-b", "--json")
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["indicators"] == 3 and Path(doc["out"]) == tmp_path / "home" / "shared-indicators" / "peer-b.json"
    assert len(json.loads(Path(doc["out"]).read_text())) == 3
    p = _cli(tmp_path, "indicators", "import", str(bundle), "--peer", "../etc")
    assert p.returncode == 2 and "--peer" in p.stderr
