"""Tunnel detection: the edge's TCP RTT against an application-level RTT.

A proxy that terminates TCP (SOCKS, HTTP CONNECT, Shadowsocks/V2Ray-style relays, a TLS-splitting
middlebox) answers the edge's TCP handshake itself, so the edge sees the short RTT to the proxy.
An application-level RTT, a nonce that the client itself must echo (an HTTP/2 PING, a WebSocket
echo, a challenge in the SDK), travels the whole way, including the tunnel's far leg to the real
client. A large gap between the two, present in *every* application sample, is the tunnel.

Honest clients have a gap too: application scheduling (a browser's event loop, a busy phone) and
last-mile jitter (Wi-Fi, LTE, Starlink hand-overs) that the TCP and application samples do not
share equally. The threshold therefore has three parts, calibrated on simulated honest clients
built from real pings with last-mile jitter (``bench/eval_latency.py``):

    threshold = max(abs_ms, rel * tcp_min) + spread_factor * (tcp_median - tcp_min)

- ``abs_ms`` covers application overhead and the luck of the draw in the minima;
- ``rel * tcp_min`` scales with the path (a 600 ms geostationary link jitters by tens of ms);
- the TCP spread term: an honest client's TCP samples jitter like its application samples,
  while a proxy next to the edge gives steady TCP samples, so jitter seen on the TCP side buys
  the client room without helping a tunnel.

The gap is ``min(app) - min(tcp)``: minima, because jitter only ever adds delay.
A layer-3 VPN (WireGuard, IPsec, OpenVPN in tun mode) does *not* terminate TCP: its handshake
RTT already includes the far leg and this detector cannot see it (the RTT discs still contain
the VPN exit and the client's path; see docs/latency.md).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

TUNNEL_GAP = "RTT_TUNNEL_GAP"


@dataclass(frozen=True, slots=True)
class TunnelConfig:
    """Threshold parameters (defaults calibrated in ``bench/eval_latency.py``, docs/latency.md)."""

    abs_ms: float = 25.0
    rel: float = 0.2
    spread_factor: float = 2.0
    min_tcp: int = 1
    min_app: int = 3


DEFAULT_CONFIG = TunnelConfig()


@dataclass(frozen=True, slots=True)
class TunnelResult:
    """``tunnel`` is true when every application RTT exceeds the TCP RTT by more than the threshold.

    ``sufficient`` is false when there were too few valid samples to say anything; ``gap_ms`` and
    ``threshold_ms`` are then NaN and ``tunnel`` is false.
    """

    tunnel: bool
    sufficient: bool
    gap_ms: float
    threshold_ms: float
    tcp_min_ms: float
    app_min_ms: float
    n_tcp: int
    n_app: int

    @property
    def excess_ms(self) -> float:
        """How far past the threshold the gap is (negative: below it)."""
        return self.gap_ms - self.threshold_ms

    def to_dict(self) -> dict[str, Any]:
        def r(x: float) -> float | None:
            return None if math.isnan(x) else round(x, 2)

        return {
            "tunnel": self.tunnel,
            "sufficient": self.sufficient,
            "gap_ms": r(self.gap_ms),
            "threshold_ms": r(self.threshold_ms),
            "tcp_min_ms": r(self.tcp_min_ms),
            "app_min_ms": r(self.app_min_ms),
            "n_tcp": self.n_tcp,
            "n_app": self.n_app,
        }


def _valid(xs: Sequence[float]) -> list[float]:
    return [float(x) for x in xs if isinstance(x, int | float) and math.isfinite(x) and x > 0.0]


def tunnel_gap(
    tcp_rtts_ms: Sequence[float], app_rtts_ms: Sequence[float], config: TunnelConfig = DEFAULT_CONFIG
) -> TunnelResult:
    """Compare edge TCP RTTs with application RTTs of the same client (invalid samples are dropped)."""
    tcp, app = _valid(tcp_rtts_ms), _valid(app_rtts_ms)
    nan = math.nan
    if len(tcp) < config.min_tcp or len(app) < config.min_app:
        tmin = min(tcp) if tcp else nan
        amin = min(app) if app else nan
        return TunnelResult(False, False, nan, nan, tmin, amin, len(tcp), len(app))
    tcp_min, app_min = min(tcp), min(app)
    spread = statistics.median(tcp) - tcp_min
    threshold = max(config.abs_ms, config.rel * tcp_min) + config.spread_factor * spread
    gap = app_min - tcp_min
    return TunnelResult(gap > threshold, True, gap, threshold, tcp_min, app_min, len(tcp), len(app))
