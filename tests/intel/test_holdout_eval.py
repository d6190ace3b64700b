"""The held-out evaluation takes providers out the way its report says (scripts/eval_intel_holdout.py)."""

from __future__ import annotations

import sys

from geowarden.intel.sources.base import SourceKind
from helpers import REPO, source

sys.path.insert(0, str(REPO / "scripts"))
import eval_intel_holdout as ev


def _world() -> list:  # type: ignore[type-arg]
    asn_list = source("x4bnet-hosting-asn", SourceKind.ASN_LABEL, [])
    asn_list.asn_labels.update({64500: ("hosting", "Example Cloud"), 64600: ("hosting", "Other Cloud")})
    vpn_asns = source("x4bnet-vpn-asn", SourceKind.ASN_LABEL, [])
    vpn_asns.asn_labels[64700] = ("vpn", "ExampleVPN")
    return [
        source("ipranges-examplecloud", SourceKind.LABEL, [("5.0.0.0/20", ("hosting", "Example Cloud"))]),
        source(
            "x4bnet-datacenter",
            SourceKind.LABEL,
            [("5.0.0.0/16", ("hosting", "X4BNet")), ("6.0.0.0/24", ("hosting", "X4BNet"))],
        ),
        source("x4bnet-vpn", SourceKind.LABEL, [("7.0.0.0/24", ("vpn", "X4BNet")), ("7.0.0.0/16", ("vpn", "X4BNet"))]),
        source("vpn-exits", SourceKind.LABEL, [("7.0.0.1", ("vpn", "examplevpn")), ("8.0.0.1", ("vpn", "othervpn"))]),
        asn_list,
        vpn_asns,
    ]


def _names(srcs: list) -> dict:  # type: ignore[type-arg]
    return {s.meta.name: s for s in srcs}


def test_own_lists_out_keeps_the_generic_lists() -> None:
    cloud = ev.Provider(
        "examplecloud", "hosting", ("ipranges-examplecloud",), ["5.0.0.1"], [(0xFFFF_0500_0000, 0xFFFF_0500_0FFF)]
    )
    kept = _names(ev.hold_out(_world(), [cloud], {"examplecloud": {64500}}, erase=False))
    assert "ipranges-examplecloud" not in kept
    assert len(kept["x4bnet-datacenter"]) == 2 and 64500 in kept["x4bnet-hosting-asn"].asn_labels


def test_unknown_to_every_list_erases_overlaps_and_own_asns() -> None:
    cloud = ev.Provider(
        "examplecloud", "hosting", ("ipranges-examplecloud",), ["5.0.0.1"], [(0xFFFF_0500_0000, 0xFFFF_0500_0FFF)]
    )
    kept = _names(ev.hold_out(_world(), [cloud], {"examplecloud": {64500}}, erase=True))
    assert len(kept["x4bnet-datacenter"]) == 1  # the /16 over its ranges is gone, 6.0.0.0/24 stays
    assert set(kept["x4bnet-hosting-asn"].asn_labels) == {64600}


def test_a_vpn_loses_its_exits_small_ranges_and_vpn_asns_only() -> None:
    exit_key = 0xFFFF_0700_0001
    vpn = ev.Provider("examplevpn", "vpn", (), ["7.0.0.1"], [(exit_key, exit_key)], exits={exit_key})
    kept = _names(ev.hold_out(_world(), [vpn], {"examplevpn": {64700, 64500}}, erase=True))
    assert kept["vpn-exits"].values == [("vpn", "othervpn")]
    assert len(kept["x4bnet-vpn"]) == 1  # the /24 holding the exit goes, the /16 stays
    assert 64700 not in kept["x4bnet-vpn-asn"].asn_labels
    assert 64500 in kept["x4bnet-hosting-asn"].asn_labels  # hosting networks under a VPN stay listed


def test_halves_are_stable_and_split_by_name() -> None:
    a = ev.Provider("examplevpn", "vpn", (), [], [])
    assert a.half == ev.Provider("examplevpn", "hosting", ("x",), ["1.1.1.1"], []).half
    halves = {ev.Provider(f"p{i}", "vpn", (), [], []).half for i in range(20)}
    assert halves == {"A", "B"}
