"""Personas draw real addresses, cities and zones; seeded runs are reproducible."""

from __future__ import annotations

import numpy as np
import pytest

from geowarden.errors import ConfigError
from geowarden.intel.snapshot import Snapshot
from geowarden.simulate import blocks, personas, world


def _block(snap: Snapshot, kind: str, seed: int = 7, events: int = 500) -> blocks.Block:
    geo = world.load_geo()
    return blocks.generate(
        personas.PERSONAS[kind], 30, events, np.random.default_rng(seed), world.AddressSpace.of(snap), geo,
        world.city_zones(geo),
    )  # fmt: skip


def test_cn_vpn_addresses_are_never_in_cn_but_the_clock_is(full_snapshot: Snapshot) -> None:
    b = _block(full_snapshot, "cn_vpn")
    looked = full_snapshot.lookup_many(b.addresses)
    assert set(looked.country.tolist()).isdisjoint({"CN", "HK", "MO"})
    assert (looked.flag("vpn") | looked.flag("hosting")).all()
    assert "Asia/Shanghai" in b.client_tz and b.client_tz.count("Asia/Shanghai") > len(b.client_tz) // 2


def test_local_residential_addresses_are_placed_at_home_and_unlabelled(full_snapshot: Snapshot) -> None:
    b = _block(full_snapshot, "local_residential")
    looked = full_snapshot.lookup_many(b.addresses)
    assert [str(c) for c in looked.country] == b.client_country[: len(b.addresses)] or set(
        looked.country.tolist()
    ) <= set(personas.PERSONAS["local_residential"].origin)
    assert not (looked.flag("hosting") | looked.flag("vpn") | looked.flag("proxy") | looked.flag("tor")).any()


def test_corporate_gateway_and_cloud_exits_carry_their_labels(full_snapshot: Snapshot) -> None:
    looked = full_snapshot.lookup_many(_block(full_snapshot, "corporate_vpn").addresses)
    assert (looked.flag("proxy") | looked.flag("hosting")).all()


def test_rtts_are_real_pings_and_relays_add_a_leg(full_snapshot: Snapshot) -> None:
    geo = world.load_geo()
    sha, tyo = geo.city("Shanghai"), geo.city("Tokyo")
    assert 30 < geo.rtt[sha, tyo] < 150  # measured, not a model value
    b = _block(full_snapshot, "cn_vpn")
    assert (b.ev["rtt_app_ms"] > b.ev["rtt_ms"] + 10).mean() > 0.9  # the tunnel leg from China


def test_same_seed_same_block(tiny_snapshot: Snapshot) -> None:
    a, b = _block(tiny_snapshot, "expat", seed=3), _block(tiny_snapshot, "expat", seed=3)
    assert a.addresses == b.addresses and a.accounts == b.accounts
    assert np.array_equal(a.ev["ip"], b.ev["ip"])


def test_small_snapshot_falls_back_and_says_so(tiny_snapshot: Snapshot) -> None:
    space = world.AddressSpace.of(tiny_snapshot)
    ips = space.sample(world.Selector(countries=("JP",)), 10, np.random.default_rng(0))
    assert len(ips) == 10 and space.fallbacks


def test_bad_parameters_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="unknown parameter"):
        personas.PERSONAS["cn_vpn"].with_params({"nope": 1})
    with pytest.raises(ConfigError, match="unknown network"):
        personas.PERSONAS["cn_vpn"].with_params({"network": [{"via": "carrier-pigeon"}]})


def test_time_zones_are_iana() -> None:
    import zoneinfo

    for z in world.city_zones(world.load_geo()):
        zoneinfo.ZoneInfo(z)
