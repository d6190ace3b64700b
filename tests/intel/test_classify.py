"""The network classifier: rules from features, never a name alone on an access network."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from geowarden.intel import classify
from geowarden.intel.build import build_snapshot
from geowarden.intel.snapshot import Snapshot
from geowarden.intel.sources.base import SourceKind
from helpers import source


@pytest.mark.parametrize(
    ("org", "kind"),
    [
        ("Example Cable Communications, LLC", "access"),
        ("Northwind Mobile Telecom", "access"),
        ("Vodafone Example GmbH", "access"),  # a consumer carrier's brand
        ("Example Cloud Hosting Ltd", "hosting"),
        ("HostExample LLC", "hosting"),  # compounded: "Host..." begins a word
        ("GigaServers Pty", "hosting"),
        ("Example Data Center AB", "hosting"),
        ("ExampleVPN Ltd", "vpn"),
        ("Example Proxies LLC", "proxy"),
        ("Example Anonymi Etaireia", None),  # Greek "société anonyme", not an anonymiser
        ("Example Hosting Telecom", "access"),  # an access word wins over a hosting word
        ("Northwind Trading Co", None),
    ],
)
def test_name_kind(org: str, kind: str | None) -> None:
    assert classify.name_kind(org) == kind


def test_lists_covering_half_label_even_an_access_network() -> None:
    v = classify.judge("Example Cable Communications", size=4096, listed=0.6, countries=1)
    assert v is not None and (v.label, v.rule, v.confidence) == ("hosting", "listed", 0.9)


def test_an_access_network_is_never_labelled_by_name_or_spread() -> None:
    assert classify.judge("Example Mobile Hosting", size=1024, listed=0.2, countries=9) is None


def test_a_hosting_word_alone_does_not_label() -> None:
    # A big, one-country, unlisted network whose name happens to say "cloud".
    assert classify.judge("Example Cloud Corp", size=1 << 20, listed=0.0, countries=1) is None
    small = classify.judge("Example Cloud Corp", size=4096, listed=0.0, countries=1)
    assert small is not None and small.rule == "hosting-name" and small.confidence == 0.7


def test_spread_alone_is_a_weak_label_and_spread_with_listings_is_not() -> None:
    weak = classify.judge("Northwind Trading Co", size=8192, listed=0.0, countries=6)
    assert weak is not None and weak.rule == "spread" and weak.confidence < classify.ACT
    strong = classify.judge("Northwind Trading Co", size=8192, listed=0.01, countries=6)
    assert strong is not None and strong.rule == "spread-listed" and strong.confidence >= classify.ACT
    assert classify.judge("Northwind Trading Co", size=1 << 20, listed=0.0, countries=40) is None  # too big


def test_a_large_network_spread_thin_is_a_cloud_and_a_home_isp_is_not() -> None:
    cloud = classify.judge("Northwind Online Services", size=3e6, listed=0.0, countries=8, top=0.5)
    assert cloud is not None and cloud.rule == "spread-large" and cloud.confidence >= classify.ACT
    # A national ISP with a few blocks abroad: 98 % at home.
    assert classify.judge("Northwind Online", size=3e7, listed=0.0, countries=6, top=0.98) is None
    # A satellite operator spreads its users over many countries: an access network.
    assert (
        classify.judge("Space Exploration Technologies Corporation", size=9e5, listed=0.0, countries=14, top=0.35)
        is None
    )


def test_a_vpn_word_labels_vpn() -> None:
    v = classify.judge("ExampleVPN Ltd", size=1 << 20, listed=0.0, countries=1)
    assert v is not None and v.label == "vpn"


def test_asn_features_share_and_countries() -> None:
    asn = np.array([7, 7, 7, 9, 9], dtype=np.uint32)
    sizes = np.array([256, 256, 512, 1024, 1], dtype=np.float64)
    listed = np.array([True, False, False, False, True])
    geo = np.array([1, 2, 3, 1, 2], dtype=np.uint16)
    f = classify.asn_features(asn, sizes, listed, geo)
    assert f.asns.tolist() == [7, 9]
    assert f.sizes.tolist() == [1024, 1025]
    assert f.listed[0] == pytest.approx(0.25)
    # AS9's second country holds 1 of 1,025 addresses: under the 1 % threshold.
    assert f.countries.tolist() == [3, 1]
    assert f.top.tolist() == pytest.approx([0.5, 1024 / 1025])


def _asn_world() -> list:  # type: ignore[type-arg]
    spread = [(f"9.{i}.0.0/24", cc) for i, cc in enumerate(["DE", "NL", "US", "SG", "JP"])]
    return [
        source("dbip-country", SourceKind.COUNTRY, [*spread, ("9.50.0.0/16", "FR")]),
        source(
            "dbip-asn",
            SourceKind.ASN,
            [
                *((net, (64600, "Northwind Trading Co")) for net, _ in spread),
                ("9.50.0.0/16", (64700, "Example Fibre ISP")),
            ],
        ),
        source("x4bnet-datacenter", SourceKind.LABEL, [("9.60.0.0/24", ("hosting", "X4BNet datacenter list"))]),
    ]


def test_the_build_labels_a_spread_network_weakly_and_keeps_its_verdict(tmp_path: Path) -> None:
    snap = Snapshot.open(build_snapshot(_asn_world(), tmp_path))
    rec = snap.lookup("9.1.0.7")
    assert rec.hosting and rec.sources["labels"]["hosting"] == ["classified-asn"]
    assert rec.classified is not None and rec.classified["rule"] == "spread"
    assert rec.confidence["hosting"] == classify.WEAK
    assert not snap.lookup("9.50.1.1").hosting  # the one-country access network
    assert snap.meta["classified"]["64600"]["rule"] == "spread"
