"""Peers' indicators as a snapshot source: `intel build` reads the imported records, lookups and
decisions show which peer said so with which confidence, local evidence is never overridden
(flags unchanged, disagreement said in the evidence), expired indicators are dropped and counted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from geowarden.intel.build import build_snapshot
from geowarden.intel.snapshot import Snapshot
from geowarden.intel.sources.base import SourceKind
from geowarden.intel.sources.shared import load_peer, note_of
from geowarden.model import Action, Facts
from geowarden.policy.allowlist import EgressRanges
from geowarden.policy.engine import PolicyEngine
from geowarden.warden import Warden
from helpers import source, tiny_sources

LATER = "2099-01-01T00:00:00+00:00"
B = {"label": "shared-indicator", "peer": "provider-b"}
RECORDS: list[dict[str, Any]] = [
    {**B, "network": "5.9.0.0/24", "confidence": 80, "valid_until": LATER},
    {**B, "network": "5.9.0.0/28", "confidence": 35, "valid_until": None},
    {**B, "asn": 64500, "confidence": 60, "valid_until": LATER},
    {**B, "network": "5.7.0.0/24", "confidence": 90, "valid_until": LATER},
    {**B, "network": "5.10.0.0/24", "confidence": 90, "valid_until": LATER},
    {**B, "network": "5.8.0.0/24", "confidence": 90, "valid_until": "2001-01-01T00:00:00+00:00"},
    {**B, "network": "not a network", "confidence": 90},
]


def _peer_file(tmp_path: Path, records: list[dict[str, Any]], peer: str = "provider-b") -> Path:
    path = tmp_path / f"{peer}.json"
    path.write_text(json.dumps(records))
    return path


def _sources() -> list[Any]:
    access = source("dbip-asn", SourceKind.ASN, [("5.10.0.0/16", (64601, "Example Broadband Telecom"))])
    return [s for s in tiny_sources() if s.meta.name != "dbip-asn"] + [
        access,
        source("iptoasn-asn", SourceKind.ASN, [("5.6.0.0/16", (64500, "Example")), ("8.8.8.0/24", (15169, "Google"))]),
    ]


def test_the_build_labels_peers_indicators_without_touching_local_flags(tmp_path: Path) -> None:
    src, expired = load_peer(_peer_file(tmp_path, RECORDS))
    assert expired == 1 and src.skipped == 1
    assert src.meta.notes is not None and "1 expired indicators dropped at build" in src.meta.notes
    with_peer = Snapshot.open(build_snapshot([*_sources(), src], tmp_path / "a"))
    without = Snapshot.open(build_snapshot(_sources(), tmp_path / "b"))

    rec = with_peer.lookup("5.9.0.1")  # inside the /28 (35) and the /24 (80): the surest wins
    assert rec.shared == {"provider-b": 0.8}
    assert rec.sources["labels"]["shared-indicator"] == ["shared:provider-b"]
    assert rec.to_dict()["shared"] == {"provider-b": 0.8}
    assert with_peer.lookup("5.9.0.200").shared == {"provider-b": 0.8}
    assert with_peer.lookup("5.6.1.1").shared == {"provider-b": 0.6}  # by ASN 64500
    assert with_peer.lookup("5.8.0.1").shared == {}  # expired: dropped
    assert with_peer.lookup("8.8.8.8").shared == {}
    [meta] = [s for s in with_peer.meta["sources"] if s["name"] == "shared:provider-b"]
    assert meta["entries"] == 5 and "expired" in meta["notes"]

    # the local answer (flags, country, provider) is the same with or without the peer
    ips = [f"5.{b}.{c}.{d}" for b in (6, 7, 8, 9, 10) for c in (0, 1) for d in (1, 200)] + ["8.8.8.8", "1.2.4.8"]
    a, b = with_peer.lookup_many(ips), without.lookup_many(ips)
    assert np.array_equal(a.flags, b.flags) and np.array_equal(a.country, b.country)
    assert list(a.provider) == list(b.provider)


def test_evidence_names_the_peer_and_where_local_sources_disagree(tmp_path: Path) -> None:
    src, _ = load_peer(_peer_file(tmp_path, RECORDS))
    warden = Warden(Snapshot.open(build_snapshot([*_sources(), src], tmp_path / "s")))

    d = warden.decide(Facts(ip="5.9.0.1"))
    [ev] = [e for e in d.evidence if e.code == "IP_SHARED_INDICATOR"]
    assert ev.value == {"peers": {"provider-b": 0.8}, "local": []} and ev.source == "shared:provider-b"
    assert "provider-b (confidence 0.8)" in ev.detail
    assert d.action == Action.CHALLENGE and "shared-indicator" in d.rules

    relay = warden.decide(Facts(ip="5.7.0.1"))  # a relay locally
    [ev] = [e for e in relay.evidence if e.code == "IP_SHARED_INDICATOR"]
    assert ev.value["local"] and "relay" in ev.detail and "local sources disagree" in ev.detail
    assert relay.action == Action.ALLOW and "shared-indicator-weak" in relay.rules

    access = warden.decide(Facts(ip="5.10.0.1"))  # an access network no local list labels
    [ev] = [e for e in access.evidence if e.code == "IP_SHARED_INDICATOR"]
    assert "access network" in ev.detail and access.action == Action.ALLOW

    hosted = warden.decide(Facts(ip="5.6.1.1"))  # hosting locally too: the peer agrees
    [ev] = [e for e in hosted.evidence if e.code == "IP_SHARED_INDICATOR"]
    assert "local sources agree: hosting" in ev.detail and hosted.action == Action.CHALLENGE


def test_registered_egress_is_said_in_the_evidence(tmp_path: Path) -> None:
    src, _ = load_peer(_peer_file(tmp_path, RECORDS))
    policy = PolicyEngine.load(egress=EgressRanges({"acct-1": ["5.9.0.0/24"]}))
    warden = Warden(Snapshot.open(build_snapshot([*_sources(), src], tmp_path / "s")), policy)
    d = warden.decide(Facts(ip="5.9.0.1", account_id="acct-1"))
    [ev] = [e for e in d.evidence if e.code == "IP_SHARED_INDICATOR"]
    assert ev.value["local"] == ["the account's registered egress"] and "registered egress" in ev.detail
    assert d.action == Action.ALLOW
    other = warden.decide(Facts(ip="5.9.0.1", account_id="acct-2"))
    assert other.action == Action.CHALLENGE


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GEOWARDEN_")} | {"GEOWARDEN_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "geowarden", *args], env=env, capture_output=True, text=True,
                          timeout=300, check=False)  # fmt: skip


def test_export_import_build_lookup_round_trip(tmp_path: Path) -> None:
    findings = tmp_path / "findings.json"
    findings.write_text(json.dumps([
        {"kind": "infrastructure", "subject": "7.7.7.0/24", "score": 0.85, "members": [], "evidence": {"accounts": 12}},
    ]))  # fmt: skip
    bundle = tmp_path / "bundle.json"
    p = _cli(tmp_path / "a", "indicators", "export", "--findings", str(findings), "--out", str(bundle))
    assert p.returncode == 0, p.stderr
    home = tmp_path / "b"
    p = _cli(home, "indicators", "import", str(bundle), "--peer", "provider-a")
    assert p.returncode == 0, p.stderr
    data = tmp_path / "data" / "anonymizers" / "x4bnet"
    data.mkdir(parents=True)
    (data / "output_vpn_ipv4.txt").write_text("9.9.9.0/24\n")
    p = _cli(home, "intel", "build", "--from", str(tmp_path / "data"), "--json", "--quiet")
    assert p.returncode == 0, p.stderr
    info = json.loads(p.stdout)
    assert "indicators shared by 1 peer" in info["note"]
    assert any(s["name"] == "shared:provider-a" for s in info["sources"])
    p = _cli(home, "ip", "7.7.7.7", "--json")
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    rec = doc[0] if isinstance(doc, list) else doc
    assert rec["shared"] == {"provider-a": 0.8}
    assert rec["sources"]["labels"]["shared-indicator"] == ["shared:provider-a"]
    p = _cli(home, "check", "--ip", "7.7.7.7", "--json")
    decision = json.loads(p.stdout)
    assert decision["action"] == "challenge" and "IP_SHARED_INDICATOR" in [r["code"] for r in decision["reasons"]]
    p = _cli(home, "intel", "build", "--from", str(tmp_path / "data"), "--exclude", "shared:*", "--json", "--quiet")
    assert p.returncode == 0 and "shared" not in json.loads(p.stdout)["note"]


def test_the_build_note_counts_peers_and_expired_indicators(tmp_path: Path) -> None:
    one = load_peer(_peer_file(tmp_path, RECORDS))
    two = load_peer(_peer_file(tmp_path, RECORDS[:2], peer="provider-c"))
    assert note_of([]) == ""
    assert note_of([one]) == "; indicators shared by 1 peer (1 expired indicators dropped)"
    assert note_of([one, two]) == "; indicators shared by 2 peers (1 expired indicators dropped)"
    assert note_of([two]) == "; indicators shared by 1 peer"


def test_a_broken_peer_file_fails_the_build_in_one_line(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "shared-indicators").mkdir(parents=True)
    (home / "shared-indicators" / "p.json").write_text('{"not": "a list"}')
    data = tmp_path / "data" / "anonymizers" / "x4bnet"
    data.mkdir(parents=True)
    (data / "output_vpn_ipv4.txt").write_text("9.9.9.0/24\n")
    p = _cli(home, "intel", "build", "--from", str(tmp_path / "data"), "--quiet")
    assert p.returncode != 0
    [line] = p.stderr.strip().splitlines()
    assert "p.json" in line and "not a shared-indicators file" in line
