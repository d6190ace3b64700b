"""The latency signal: evidence from Facts.rtt (and the tunnel measurements rtt_tcp_ms/rtt_app_ms)."""

from __future__ import annotations

from dataclasses import dataclass

from latency_data import WN

from geowarden.latency.verify import ClaimedCountry, ClaimedPoint
from geowarden.model import Facts, RTTSample
from geowarden.signals.codes import CODES as CENTRAL
from geowarden.signals.rtt import CODES, claimed_from_value, evaluate


@dataclass(frozen=True)
class Ctx:
    restricted: frozenset[str]


POPS = ["Frankfurt", "Paris", "London", "Warsaw", "Stockholm", "Moscow", "Manhattan", "Tokyo", "Singapore", "Sydney"]


def _codes(evidence: list) -> list[str]:  # type: ignore[type-arg]
    return [e.code for e in evidence]


def test_codes_table() -> None:
    assert set(CODES) == {
        "RTT_TOO_FAR_FROM_CLAIMED", "RTT_REGION", "RTT_TUNNEL_GAP", "RTT_INSUFFICIENT", "RTT_INCONCLUSIVE",
    }  # fmt: skip
    assert all(signal == "rtt" and meaning.endswith(".") for signal, meaning in CODES.values())
    assert not set(CODES) & (set(CENTRAL) - set(CODES))  # no clash with the codes of other signals


def test_no_measurement_no_evidence() -> None:
    assert evaluate(Facts(ip="1.2.3.4"), None, "DE") == []


def test_true_ip_country_gives_only_the_region(wn: WN) -> None:
    facts = Facts(rtt=wn.samples("Munich", POPS))
    ev = evaluate(facts, Ctx(frozenset({"IR", "CN"})), "DE")
    assert _codes(ev) == ["RTT_REGION"]
    value = ev[0].value
    assert "DE" in value["countries"] and value["restricted"] == [] and value["consistent"] is True
    assert ev[0].signal == "rtt" and ev[0].detail


def test_vpn_exit_country_far_from_the_client_is_refuted(wn: WN) -> None:
    """The RTTs are a Moscow client's (PoPs in Europe, America, Asia, none in Russia); the IP says
    US (a VPN exit) and the user declared a point in Sydney."""
    facts = Facts(rtt=wn.samples("Moscow", [p for p in POPS if p != "Moscow"]), claimed=(-33.87, 151.21))
    ev = evaluate(facts, Ctx(frozenset({"RU"})), "US")
    assert _codes(ev) == ["RTT_TOO_FAR_FROM_CLAIMED", "RTT_TOO_FAR_FROM_CLAIMED", "RTT_REGION"]
    ip, declared, region = ev
    assert ip.value["claimed"] == "US" and ip.value["source"] == "ip" and ip.value["violation_km"] > 500
    assert declared.value["source"] == "declared" and declared.value["violation_km"] > 10_000
    assert 0.6 <= ip.confidence <= 0.99 and declared.confidence == 0.99
    assert "RU" in region.value["countries"] and region.value["restricted"] == ["RU"]


def test_unusable_samples_are_insufficient() -> None:
    ev = evaluate(Facts(rtt=(RTTSample(lat=0.0, lon=0.0, ms=0.0),)), None, "DE")
    assert _codes(ev) == ["RTT_INSUFFICIENT"] and ev[0].value["what"] == "location"


def test_tunnel_evidence() -> None:
    tunnel = Facts(rtt_tcp_ms=(2.0, 2.1, 2.3), rtt_app_ms=(80.0, 82.0, 85.0))
    ev = evaluate(tunnel)
    assert _codes(ev) == ["RTT_TUNNEL_GAP"] and ev[0].value["gap_ms"] == 78.0
    honest = Facts(rtt_tcp_ms=(30.0, 35.0), rtt_app_ms=(33.0, 38.0, 41.0))
    assert evaluate(honest) == []
    few = Facts(rtt_tcp_ms=(30.0,), rtt_app_ms=(33.0,))
    ev = evaluate(few)
    assert _codes(ev) == ["RTT_INSUFFICIENT"] and ev[0].value["what"] == "tunnel"


def test_claimed_values() -> None:
    assert claimed_from_value("de") == ClaimedCountry("DE")
    assert claimed_from_value([10, 20.5]) == ClaimedPoint(10.0, 20.5)
    for bad in ("DEU", [True, 1], [1, 2, 3], [95, 0], None, 7):
        assert claimed_from_value(bad) is None
    # an unknown or malformed claim is skipped, not an error
    facts = Facts(rtt=(RTTSample(lat=50.1, lon=8.7, ms=3.0),), claimed="ZZ")
    assert _codes(evaluate(facts, None, "QQ")) == ["RTT_REGION"]


def test_one_edge_rtt_region_is_remembered_and_only_ever_wider() -> None:
    """A single RTT's region comes from the cache, computed for the RTT rounded up to the step: the
    same region object for RTTs in one step, and never fewer countries than the exact RTT's."""
    from geowarden.latency.verify import DEFAULT_TOLERANCE, discs, region
    from geowarden.signals import rtt

    rtt._REGIONS.clear()
    frankfurt = (50.11, 8.68)

    def reg(ms: float) -> dict:  # type: ignore[type-arg]
        sample = RTTSample(lat=frankfurt[0], lon=frankfurt[1], ms=ms)
        [e] = [e for e in evaluate(Facts(rtt=(sample,))) if e.code == "RTT_REGION"]
        return e.value  # type: ignore[no-any-return]

    a, b = reg(7.1), reg(7.4)  # one step (7.0, 7.5]
    assert a == b and len(rtt._REGIONS) == 1
    reg(7.6)
    assert len(rtt._REGIONS) == 2
    for ms in (3.2, 7.1, 18.3, 41.05):
        exact = region(discs((RTTSample(lat=frankfurt[0], lon=frankfurt[1], ms=ms),)), DEFAULT_TOLERANCE)
        assert set(exact["countries"]) <= set(reg(ms)["countries"])
    assert len(rtt._REGIONS) == 5  # 3.5, 7.5, 8.0, 18.5 and 41.5 ms
    # several landmarks are never cached
    evaluate(Facts(rtt=(RTTSample(lat=50.11, lon=8.68, ms=9.0), RTTSample(lat=48.86, lon=2.35, ms=12.0))))
    assert len(rtt._REGIONS) == 5
