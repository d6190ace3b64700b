"""Tunnel detection: edge TCP RTT vs application RTT, with honest last-mile jitter."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from latency_data import WN

from geowarden.latency.tunnel import DEFAULT_CONFIG, TunnelConfig, tunnel_gap


@pytest.mark.parametrize(
    ("tcp", "app", "tunnel"),
    [
        ([20.0, 22.0, 25.0], [23.0, 26.0, 30.0, 24.0, 28.0], False),  # wired client, app overhead of a few ms
        ([2.0, 2.1, 2.2], [60.0, 61.0, 65.0], True),  # proxy next to the edge, client 60 ms behind it
        ([35.0, 60.0, 48.0], [52.0, 70.0, 90.0, 55.0, 61.0], False),  # Starlink: jittery on both sides
        ([42.0, 95.0, 61.0], [88.0, 140.0, 77.0, 69.0, 120.0], False),  # LTE with spikes
        ([600.0], [640.0, 650.0, 700.0], False),  # geostationary satellite: the gap scales with the path
        ([600.0], [900.0, 910.0, 905.0], True),  # ... but not without limit
        ([1.0], [30.0, 31.0, 29.5], True),  # same-city proxy, client ~30 ms behind it
    ],
)
def test_gap_cases(tcp: list[float], app: list[float], tunnel: bool) -> None:
    res = tunnel_gap(tcp, app)
    assert res.sufficient
    assert res.tunnel is tunnel
    assert res.gap_ms == pytest.approx(min(app) - min(tcp))


def test_too_few_samples_is_insufficient() -> None:
    for tcp, app in (([], [50.0, 51.0, 52.0]), ([2.0], [50.0, 51.0]), ([2.0], [])):
        res = tunnel_gap(tcp, app)
        assert not res.sufficient and not res.tunnel
        assert math.isnan(res.gap_ms)
        assert res.to_dict()["gap_ms"] is None


def test_invalid_samples_are_dropped() -> None:
    res = tunnel_gap([2.0, float("nan"), -1.0, 0.0], [60.0, float("inf"), 61.0, 62.0, -5.0])
    assert res.sufficient and res.n_tcp == 1 and res.n_app == 3 and res.tunnel


def test_threshold_formula() -> None:
    cfg = TunnelConfig(abs_ms=10.0, rel=0.5, spread_factor=1.0)
    # tcp min 40, median 50: max(10, 20) + 1 * 10 = 30
    assert tunnel_gap([40.0, 50.0, 60.0], [100.0, 100.0, 100.0], cfg).threshold_ms == pytest.approx(30.0)
    assert tunnel_gap([40.0, 50.0, 60.0], [69.0, 80.0, 90.0], cfg).tunnel is False  # gap 29
    assert tunnel_gap([40.0, 50.0, 60.0], [71.0, 80.0, 90.0], cfg).tunnel is True  # gap 31


_ms = st.floats(0.5, 700.0)


@settings(max_examples=200, deadline=None)
@given(st.lists(_ms, min_size=1, max_size=6), st.lists(_ms, min_size=3, max_size=10), st.floats(0.0, 300.0))
def test_more_application_delay_never_clears_a_tunnel(tcp: list[float], app: list[float], extra: float) -> None:
    before = tunnel_gap(tcp, app)
    after = tunnel_gap(tcp, [a + extra for a in app])
    if before.tunnel:
        assert after.tunnel


@settings(max_examples=200, deadline=None)
@given(st.lists(_ms, min_size=1, max_size=6), st.lists(st.floats(0.0, 20.0), min_size=3, max_size=10))
def test_application_overhead_below_the_floor_is_never_a_tunnel(tcp: list[float], overhead: list[float]) -> None:
    """Honest: the application RTT is a TCP RTT plus under ``abs_ms`` of processing."""
    base = min(tcp)
    app = [base + o for o in overhead]
    assert overhead and max(overhead) < DEFAULT_CONFIG.abs_ms
    assert not tunnel_gap(tcp, app).tunnel


def test_simulated_tunnel_from_real_pings(wn: WN) -> None:
    """A client in Moscow behind a proxy in Frankfurt, talking to a PoP in Dusseldorf: the edge
    sees the Frankfurt-Dusseldorf RTT, the application sees Moscow too. The same client without
    the proxy (straight to Dusseldorf) is not flagged."""
    m, f, d = wn.idx("Moscow"), wn.idx("Frankfurt"), wn.idx("Dusseldorf")
    edge_leg = float(min(wn.rtt[f, d], wn.rtt[d, f]))
    far_leg = float(min(wn.rtt[m, f], wn.rtt[f, m]))
    direct = float(min(wn.rtt[m, d], wn.rtt[d, m]))
    assert far_leg > 40.0 and edge_leg < 20.0
    wifi = [1.5, 4.0, 2.2, 9.0, 3.1]  # last-mile jitter of the client
    overhead = [0.8, 1.2, 2.5, 0.9, 1.1]
    tcp = [edge_leg + 0.05, edge_leg + 0.1, edge_leg + 0.07]
    app = [edge_leg + far_leg + j + o for j, o in zip(wifi, overhead, strict=True)]
    assert tunnel_gap(tcp, app).tunnel
    honest_tcp = [direct + j for j in wifi[:3]]
    honest_app = [direct + j + o for j, o in zip(reversed(wifi), overhead, strict=True)]
    assert not tunnel_gap(honest_tcp, honest_app).tunnel
