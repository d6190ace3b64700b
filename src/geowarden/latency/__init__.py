"""Latency location verification: what the speed of light says about where a client can be.

- ``model``: distance bounds from RTTs (2/3 c, per-landmark calibration, inconsistent landmarks);
- ``verify``: is a claimed point or country inside the feasible region of the RTT discs;
- ``tunnel``: the gap between the edge TCP RTT and an application-level RTT;
- ``signal``: the evidence for a decision; ``cli``: the core of ``geowarden verify-location``.

See docs/latency.md for the model, its calibration on real pings and its limits.
"""

from __future__ import annotations

#: Evidence codes of the latency signal, with their one-line meanings (merged into signals.codes).
CODES: dict[str, tuple[str, str]] = {
    "RTT_TOO_FAR_FROM_CLAIMED": (
        "rtt",
        "Measured round-trip times make the claimed location physically impossible: it lies outside "
        "the region the speed of light allows (value: the claim and violation_km).",
    ),
    "RTT_REGION": (
        "rtt",
        "Where the client can physically be, given the round-trip times (countries, largest cities, "
        "centroid); informational.",
    ),
    "RTT_TUNNEL_GAP": (
        "rtt",
        "Application-level RTTs consistently exceed the edge TCP RTT beyond last-mile jitter: TCP "
        "terminates at a relay (proxy or tunnel) nearer the edge than the client.",
    ),
    "RTT_INSUFFICIENT": (
        "rtt",
        "RTT measurements were given but too few were usable to verify a location or a tunnel.",
    ),
}

__all__ = ["CODES"]
