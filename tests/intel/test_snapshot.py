from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geowarden.errors import AddressError, SnapshotError
from geowarden.intel.snapshot import Snapshot

CASES = [
    # ip, country, asn, flags set
    ("1.2.4.8", "CN", None, set()),
    ("8.8.8.8", "US", 15169, set()),
    ("5.1.1.1", "DE", None, {"tor"}),
    ("5.2.0.9", "DE", None, {"vpn"}),
    ("5.4.0.1", "DE", None, {"proxy"}),
    ("5.7.0.1", "DE", None, {"relay"}),
    ("2400:3200::1", "CN", None, set()),
    ("2a00::1", "NL", None, {"tor"}),
    ("::ffff:8.8.8.8", "US", 15169, set()),
    ("9.9.9.9", None, None, set()),
    ("10.1.2.3", None, None, {"reserved"}),
    ("fe80::1", None, None, {"reserved"}),
]


@pytest.mark.parametrize(("ip", "country", "asn", "flags"), CASES)
def test_lookup(tiny_snapshot: Snapshot, ip: str, country: str | None, asn: int | None, flags: set[str]) -> None:
    rec = tiny_snapshot.lookup(ip)
    assert (rec.country, rec.asn) == (country, asn)
    got = {f for f in ("hosting", "vpn", "tor", "proxy", "relay", "reserved") if getattr(rec, f)}
    assert got == flags


def test_batch_answers_match_single_lookups(tiny_snapshot: Snapshot) -> None:
    ips = [ip for ip, *_ in CASES] + ["not-an-ip"]
    batch = tiny_snapshot.lookup_many(ips)
    assert batch.errors and batch.errors[0][0] == len(ips) - 1
    for i, ip in enumerate(ips[:-1]):
        rec = tiny_snapshot.lookup(ip)
        assert (batch.country[i] or None) == rec.country
        assert (int(batch.asn[i]) or None) == rec.asn
        assert bool(batch.flag("tor")[i]) == rec.tor
    assert not batch.valid[-1]


def test_packed_ipv4_batches(tiny_snapshot: Snapshot) -> None:
    batch = tiny_snapshot.lookup_many(np.array([0x01020408, 0x08080808, 0x09090909], dtype=np.uint32))
    assert batch.country.tolist() == ["CN", "US", ""]


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.ip_addresses().map(str), min_size=1, max_size=50))
def test_batch_and_single_agree_on_the_real_snapshot(full_snapshot: Snapshot, ips: list[str]) -> None:
    batch = full_snapshot.lookup_many(ips)
    for i, ip in enumerate(ips):
        rec = full_snapshot.lookup(ip)
        assert (batch.country[i] or None, int(batch.asn[i]) or None) == (rec.country, rec.asn)
        assert bool(batch.flag("hosting")[i]) == rec.hosting


def test_malformed_address_raises(tiny_snapshot: Snapshot) -> None:
    with pytest.raises(AddressError):
        tiny_snapshot.lookup("1.2.3.999")


def test_missing_or_corrupt_snapshots_fail_with_one_line(tiny_snapshot: Snapshot, tmp_path: Path) -> None:
    with pytest.raises(SnapshotError, match=r"no meta\.json"):
        Snapshot.open(tmp_path)
    bad = tmp_path / "copy"
    shutil.copytree(tiny_snapshot.path, bad)
    meta = json.loads((bad / "meta.json").read_text())
    meta["format"] = 999
    (bad / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(SnapshotError, match=r"format 999"):
        Snapshot.open(bad)
    meta["format"] = tiny_snapshot.meta["format"]
    (bad / "meta.json").write_text(json.dumps(meta))
    (bad / "v4_rows.npy").unlink()
    with pytest.raises(SnapshotError, match=r"missing v4_rows"):
        Snapshot.open(bad)
    (bad / "v4_starts.npy").write_bytes(b"garbage")
    with pytest.raises(SnapshotError, match="corrupt"):
        Snapshot.open(bad)
