"""Latency location verification: what the speed of light says about where a client can be.

- ``model``: distance bounds from RTTs (2/3 c, per-landmark calibration, inconsistent landmarks);
- ``ceiling``: the expected-RTT ceiling (how slowly honest clients near a landmark answer it);
- ``rule``: the evidence-weighted decision (true, false, or null: inconclusive);
- ``verify``: is a claimed point or country inside the feasible region of the RTT discs;
- ``tunnel``: the gap between the edge TCP RTT and an application-level RTT;
- ``calibration``: an operator's calibration: a mesh file in, a calibration file out, and back;
- ``cli``: the core of ``geowarden verify-location``; the evidence for a decision is the
  ``rtt`` signal's (``geowarden.signals.rtt``).

See docs/latency.md for the model, its calibration on real pings and its limits.
"""

from __future__ import annotations
