from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from geowarden.errors import SourceError
from geowarden.intel.build import build_snapshot, flatten
from geowarden.intel.snapshot import Snapshot
from geowarden.intel.sources.base import SourceData, SourceKind
from helpers import source

ranges = st.lists(st.tuples(st.integers(0, 60), st.integers(1, 20)), min_size=1, max_size=12)


@given(ranges)
def test_flatten_gives_disjoint_ranges_where_the_innermost_wins(spans: list[tuple[int, int]]) -> None:
    # Only properly nested or disjoint ranges have a single "innermost" answer; build them so.
    s = np.array([a for a, _ in spans], dtype=np.int64)
    e = s + np.array([n for _, n in spans], dtype=np.int64)
    v = np.arange(len(s), dtype=np.int64)
    fs, fe, fv = flatten(s, e, v)
    assert (fs[1:] >= fe[:-1]).all(), "output must be disjoint and sorted"
    covered = set()
    for a, b in zip(s.tolist(), e.tolist(), strict=True):
        covered.update(range(a, b))
    out = {}
    for a, b, val in zip(fs.tolist(), fe.tolist(), fv.tolist(), strict=True):
        for x in range(a, b):
            out[x] = val
    assert set(out) == covered, "flattening must neither lose nor invent coverage"
    for x, val in out.items():
        holders = [i for i in range(len(s)) if s[i] <= x < e[i]]
        assert val in holders
        # The answer comes from a range that starts no earlier than every other holder.
        assert s[val] == max(s[i] for i in holders)


def test_nested_ranges_answer_with_the_innermost(tiny_snapshot: Snapshot) -> None:
    assert tiny_snapshot.lookup("5.3.2.1").provider == "Amazon AWS"
    assert tiny_snapshot.lookup("5.3.1.1").provider == "AWS eu"


def test_a_geofeed_overrides_the_vote_and_settles_it(tiny_snapshot: Snapshot) -> None:
    rec = tiny_snapshot.lookup("5.5.5.5")
    assert rec.country == "FR"
    assert not rec.disagreement and not rec.contested  # the operator's own statement settles it
    assert rec.sources["country"] == {"dbip-country": "DE", "geofeed": "FR"}  # the other answer is kept


def _world(*extra: SourceData) -> list[SourceData]:
    return [
        source("dbip-country", SourceKind.COUNTRY, [("7.0.0.0/16", "HK"), ("8.0.0.0/16", "CN"), ("9.0.0.0/16", "CN")]),
        source("iptoasn-country", SourceKind.COUNTRY, [("7.0.0.0/16", "US"), ("9.0.0.0/16", "CN")]),
        source("ipverse-rir", SourceKind.COUNTRY, [("7.0.0.0/16", "US"), ("8.0.0.0/16", "SG"), ("9.0.0.0/16", "SG")]),
        *extra,
    ]


def test_a_provider_region_outvotes_routing_and_registry(tmp_path: Path) -> None:
    region = source("provider-region", SourceKind.COUNTRY, [("7.0.0.0/20", "HK")])
    snap = Snapshot.open(build_snapshot(_world(region), tmp_path))
    vm = snap.lookup("7.0.1.1")
    assert vm.country == "HK" and not vm.disagreement
    assert vm.sources["country"]["provider-region"] == "HK"
    outside = snap.lookup("7.0.200.1")  # the rest of the /16: routing and registry (US) outvote geolocation
    assert outside.country == "US" and outside.disagreement and not outside.contested


def test_an_answer_no_majority_settles_is_contested(tmp_path: Path) -> None:
    snap = Snapshot.open(build_snapshot(_world(), tmp_path))
    one_to_one = snap.lookup("8.0.0.1")  # geolocated CN, registered SG, no routing answer
    assert one_to_one.country == "CN" and one_to_one.disagreement and one_to_one.contested
    two_to_one = snap.lookup("9.0.0.1")  # geolocation and routing CN, registry SG: a majority
    assert two_to_one.country == "CN" and two_to_one.disagreement and not two_to_one.contested


def test_a_relay_egress_is_not_a_vpn_or_hosting_address(tmp_path: Path) -> None:
    relay = source("ipranges-apple-proxy", SourceKind.LABEL, [("7.0.0.0/24", ("relay", "Apple iCloud Private Relay"))])
    vpn = source("x4bnet-vpn", SourceKind.LABEL, [("7.0.0.0/22", ("vpn", "X4BNet VPN list"))])
    dc = source("x4bnet-datacenter", SourceKind.LABEL, [("7.0.0.0/22", ("hosting", "X4BNet datacenter list"))])
    snap = Snapshot.open(build_snapshot(_world(relay, vpn, dc), tmp_path))
    rec = snap.lookup("7.0.0.9")
    assert rec.relay and not rec.vpn and not rec.hosting
    assert rec.sources["labels"]["vpn"] == ["x4bnet-vpn"]  # who said so is kept as evidence
    beside = snap.lookup("7.0.2.9")  # the VPN list's other addresses stay VPN
    assert beside.vpn and beside.hosting and not beside.relay


def test_majority_beats_a_single_geolocation_answer(tiny_snapshot: Snapshot) -> None:
    rec = tiny_snapshot.lookup("6.6.6.6")
    assert rec.country == "SG"
    assert rec.disagreement
    assert rec.sources["country"]["dbip-country"] == "CN"


def test_asn_labels_apply_through_the_asn_column(tiny_snapshot: Snapshot) -> None:
    rec = tiny_snapshot.lookup("5.6.7.8")
    assert (rec.asn, rec.hosting, rec.provider) == (64500, True, "Example Cloud")
    assert rec.sources["labels"] == {"hosting": ["x4bnet-hosting-asn"]}


def test_duplicate_or_empty_sources_are_refused(tmp_path: Path) -> None:
    a = source("aws", SourceKind.LABEL, [("1.0.0.0/8", ("hosting", "x"))])
    with pytest.raises(SourceError, match="duplicate"):
        build_snapshot([a, a], tmp_path)
    with pytest.raises(SourceError, match="no usable source"):
        build_snapshot([source("aws", SourceKind.LABEL, [])], tmp_path)


def test_unknown_label_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="unknown label"):
        build_snapshot([source("odd", SourceKind.LABEL, [("1.0.0.0/8", ("residential", "x"))])], tmp_path)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".building")]


def test_identical_input_gives_the_same_snapshot_id(tmp_path: Path) -> None:
    src = [source("dbip-country", SourceKind.COUNTRY, [("1.0.0.0/8", "AU")])]
    first = build_snapshot(src, tmp_path)
    assert build_snapshot(src, tmp_path) == first
    other = build_snapshot([source("dbip-country", SourceKind.COUNTRY, [("1.0.0.0/8", "NZ")])], tmp_path)
    assert other != first


def test_a_relay_user_is_placed_where_apple_says_and_is_no_vpn(tmp_path: Path) -> None:
    from geowarden.intel.sources import discover

    (tmp_path / "cloud").mkdir()
    (tmp_path / "cloud" / "egress-ip-ranges.csv").write_text("7.0.0.0/24,GB,GB-EN,London,\n")
    vpn = source("x4bnet-vpn", SourceKind.LABEL, [("7.0.0.0/22", ("vpn", "X4BNet VPN list"))])
    snap = Snapshot.open(build_snapshot([*_world(vpn), *discover(tmp_path)], tmp_path / "out"))
    rec = snap.lookup("7.0.0.9")
    assert rec.country == "GB" and rec.relay and not rec.vpn and not rec.disagreement
