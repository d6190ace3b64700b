"""The edge locations (latency/pops.py) are where the simulated world puts its pops."""

from __future__ import annotations

from geowarden.latency.pops import POPS, pop_location
from geowarden.simulate import world


def test_pops_are_the_simulated_cities() -> None:
    cities = {name: (lat, lon) for _id, name, _cc, lat, lon in world.CITIES}
    assert {code: pop.city for code, pop in POPS.items()} == world.POPS
    for code, pop in POPS.items():
        assert pop_location(code) == cities[pop.city] == (pop.lat, pop.lon)
    assert pop_location("nope") is None
