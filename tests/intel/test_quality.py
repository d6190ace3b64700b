"""The spine's "done when", checked on snapshots built from real data.

The full evaluation with its held-out split is ``scripts/eval_intel.py`` (docs/intel-quality.md);
these tests keep its headline figures from regressing.
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from geowarden.intel.snapshot import Snapshot
from geowarden.intel.sources.base import V4_BASE
from geowarden.intel.sources.ranges import consumer_isp_reference
from geowarden.policy import default_restricted
from helpers import require_shared

pytestmark = pytest.mark.slow  # builds the full and the default snapshot

RESTRICTED = default_restricted()

KNOWN = [
    # ip, country, asn (None: not checked)
    ("1.2.4.8", "CN", None),
    ("8.8.8.8", "US", 15169),
    ("2400:3200::1", "CN", None),
    ("175.45.176.1", "KP", None),
]


@pytest.mark.parametrize(("ip", "country", "asn"), KNOWN)
def test_known_addresses_on_the_full_snapshot(full_snapshot: Snapshot, ip: str, country: str, asn: int | None) -> None:
    rec = full_snapshot.lookup(ip)
    assert rec.country == country
    if asn is not None:
        assert rec.asn == asn


@pytest.mark.parametrize(("ip", "country", "asn"), KNOWN)
def test_known_addresses_on_the_default_snapshot(
    default_snapshot_path: Path, ip: str, country: str, asn: int | None
) -> None:
    assert Snapshot.open(default_snapshot_path).lookup(ip).country == country


def test_every_current_tor_exit_is_tor(full_snapshot: Snapshot) -> None:
    data = require_shared()
    (path,) = sorted((data / "anonymizers" / "tor").glob("exit-nodes-*.txt"))[-1:]
    exits = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    batch = full_snapshot.lookup_many(exits)
    assert not batch.errors
    assert batch.flag("tor").all()


def test_aws_ranges_are_hosting(full_snapshot: Snapshot) -> None:
    data = require_shared()
    doc = json.loads((data / "cloud" / "aws-ip-ranges.json").read_text())
    ips = [p["ip_prefix"].split("/")[0] for p in doc["prefixes"]] + [
        p["ipv6_prefix"].split("/")[0] for p in doc["ipv6_prefixes"]
    ]
    batch = full_snapshot.lookup_many(ips)
    assert batch.flag("hosting").all()
    assert "Amazon AWS" in set(batch.provider.tolist())


def test_consumer_isp_addresses_are_not_flagged(full_snapshot: Snapshot) -> None:
    """Starlink's published ranges are home internet: never hosting, VPN, proxy or Tor."""
    ref = consumer_isp_reference(require_shared())
    rng = np.random.default_rng(7)
    picks = rng.integers(0, len(ref.first), size=5000)
    ips = []
    for i in picks.tolist():
        first, last = ref.first[i], ref.last[i]
        key = first + int(rng.integers(0, min(last - first, 1 << 62) + 1))
        if V4_BASE <= key <= V4_BASE + 0xFFFF_FFFF:
            ips.append(".".join(str((key - V4_BASE) >> s & 255) for s in (24, 16, 8, 0)))
        else:
            ips.append(str(ipaddress.IPv6Address(key)))
    batch = full_snapshot.lookup_many(ips)
    flagged = batch.flag("hosting") | batch.flag("vpn") | batch.flag("proxy") | batch.flag("tor")
    assert flagged.mean() <= 0.005


def test_fusion_corrects_single_source_placements(full_snapshot: Snapshot) -> None:
    """Where routing and registry agree on a country, the fused answer follows them even where
    DB-IP says otherwise (by construction of the vote; the held-out figures are in the docs)."""
    rng = np.random.default_rng(11)
    v4 = rng.integers(0x0100_0000, 0xE000_0000, size=300_000, dtype=np.uint64).astype(np.uint32)
    batch = full_snapshot.lookup_many(v4)
    table = full_snapshot.country_table
    routing = table[full_snapshot.row_columns["cc:iptoasn-country"][batch.rows]]
    registry = table[full_snapshot.row_columns["cc:ipverse-rir"][batch.rows]]
    dbip = table[full_snapshot.row_columns["cc:dbip-country"][batch.rows]]
    agree = (routing == registry) & (routing != "")
    restricted = np.isin(routing, sorted(RESTRICTED))
    assert (batch.country[agree & restricted] == routing[agree & restricted]).mean() >= 0.995
    assert np.isin(batch.country[agree & ~restricted], sorted(RESTRICTED)).mean() <= 0.005
    # ... and DB-IP alone does place some of those elsewhere: the fusion is doing work.
    assert np.isin(dbip[agree & ~restricted], sorted(RESTRICTED)).any()
    # Sources that disagree are flagged, except where a provider's own statement (geofeed or cloud
    # region) settles the question.
    statement = np.zeros(len(batch), dtype=bool)
    for name in ("geofeed", "provider-region"):
        statement |= full_snapshot.row_columns[f"cc:{name}"][batch.rows] != 0
    split = agree & (dbip != routing) & (dbip != "")
    assert batch.flag("disagree")[split & ~statement].all()
    assert not batch.flag("disagree")[split & statement].any()


def test_a_fresh_home_builds_the_default_snapshot_and_decides(tmp_path: Path) -> None:
    """`pip install` then `geowarden check --ip 1.2.4.8` works offline with no snapshot present."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GEOWARDEN_")}
    env["GEOWARDEN_HOME"] = str(tmp_path / "home")

    def check(ip: str) -> dict[str, object]:
        p = subprocess.run(
            [sys.executable, "-m", "geowarden", "check", "--ip", ip, "--json"],
            capture_output=True, text=True, env=env, timeout=600, check=False,
        )  # fmt: skip
        assert p.returncode == 0, p.stderr
        doc: dict[str, object] = json.loads(p.stdout)
        return doc

    blocked = check("1.2.4.8")
    assert blocked["action"] == "block"
    assert [r["code"] for r in blocked["reasons"]] == ["IP_COUNTRY_RESTRICTED"]  # type: ignore[attr-defined]
    assert check("8.8.8.8")["action"] != "block"
    assert (tmp_path / "home" / "intel" / "CURRENT").is_file()


def test_a_cloud_region_places_the_vm_where_the_provider_says(full_snapshot: Snapshot) -> None:
    for ip in ("18.162.0.1", "34.96.128.1"):  # AWS ap-east-1, Google Cloud asia-east2: Hong Kong
        rec = full_snapshot.lookup(ip)
        assert rec.country == "HK" and rec.sources["country"]["provider-region"] == "HK"
        assert not rec.disagreement  # the provider's statement settles it
        assert rec.sources["country"]["ipverse-rir"] == "US"  # although the registry says US


def test_private_relay_is_a_relay_not_a_vpn(full_snapshot: Snapshot) -> None:
    rec = full_snapshot.lookup("172.224.226.10")
    assert rec.relay and not rec.vpn and not rec.hosting
    assert "vpn" in rec.sources["labels"]  # the list that calls it a VPN is still named


def test_a_vpn_brands_own_network_is_labelled(full_snapshot: Snapshot) -> None:
    verdicts = full_snapshot.meta.get("classified", {})
    vpn_named = [v for v in verdicts.values() if v["rule"] == "vpn-name"]
    assert vpn_named and all(v["label"] == "vpn" for v in vpn_named)
