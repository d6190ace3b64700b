"""Edge locations (pops): where an ``rtt_ms`` in the API logs was measured from.

An event's ``pop`` names the edge that took the request; its ``rtt_ms`` (the TCP handshake
round trip measured there) is then one landmark measurement from the pop's coordinates. The
table holds the simulator's ten pops (IATA codes of the metro area; coordinates of the
WonderNetwork ping server the simulated world places there). An unknown code gives no sample.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PoP:
    code: str
    city: str
    lat: float
    lon: float


POPS: dict[str, PoP] = {
    p.code: p
    for p in (
        PoP("iad", "Washington", 38.9694, -77.3864),
        PoP("sjc", "SanJose", 37.3542, -121.9542),
        PoP("dfw", "Dallas", 32.7828, -96.8039),
        PoP("lhr", "London", 51.5171, -0.1062),
        PoP("fra", "Frankfurt", 50.1167, 8.6833),
        PoP("nrt", "Tokyo", 35.6833, 139.7667),
        PoP("sin", "Singapore", 1.3667, 103.75),
        PoP("bom", "Pune", 18.5236, 73.8478),
        PoP("syd", "Sydney", -33.8683, 151.2086),
        PoP("gru", "SaoPaulo", -23.55, -46.6333),
    )
}


def pop_location(code: str) -> tuple[float, float] | None:
    """(lat, lon) of a pop code, or None for a code not in the table."""
    pop = POPS.get(code)
    return None if pop is None else (pop.lat, pop.lon)
