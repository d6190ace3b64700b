"""The core of ``geowarden verify-location``: argument and JSON Lines parsing, and the output shape."""

from __future__ import annotations

import json

import pytest
from latency_data import WN

from geowarden.errors import InputError
from geowarden.latency.cli import (
    claim_from_args,
    parse_claim_line,
    parse_claimed_arg,
    parse_rtt_arg,
    verify_claims,
)
from geowarden.latency.verify import Claim, ClaimedCountry, ClaimedPoint
from geowarden.model import RTTSample

KEYS = {"feasible", "confidence", "violation_km", "landmarks", "region", "reasons"}


@pytest.mark.parametrize(
    ("text", "lat", "lon", "ms"),
    [("50.11,8.68=3.2", 50.11, 8.68, 3.2), (" -33.87 , 151.21 = 280 ", -33.87, 151.21, 280.0), ("0,0=1", 0, 0, 1)],
)
def test_parse_rtt_arg(text: str, lat: float, lon: float, ms: float) -> None:
    assert parse_rtt_arg(text) == RTTSample(lat=lat, lon=lon, ms=ms)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("50.11,8.68", "LAT,LON=MS"),
        ("50.11=3", "LAT,LON=MS"),
        ("1,2,3=4", "LAT,LON=MS"),
        ("a,8=3", "latitude is not a number"),
        ("50,8=fast", "RTT is not a number"),
        ("50,8=nan", "not a finite number"),
        ("91,8=3", "latitude 91 is outside"),
        ("50,181=3", "longitude 181 is outside"),
        ("50,8=0", "not positive"),
        ("50,8=-2", "not positive"),
    ],
)
def test_parse_rtt_arg_rejects(text: str, reason: str) -> None:
    with pytest.raises(InputError, match=reason) as e:
        parse_rtt_arg(text)
    assert "\n" not in e.value.message


def test_parse_claimed_arg() -> None:
    assert parse_claimed_arg("de") == ClaimedCountry("DE")
    assert parse_claimed_arg(" AU ") == ClaimedCountry("AU")
    assert parse_claimed_arg("50.1,8.6") == ClaimedPoint(50.1, 8.6)
    for bad, reason in (("ZZ", "unknown country"), ("DEU", "2-letter"), ("1,2,3", "LAT,LON"), ("95,0", "latitude")):
        with pytest.raises(InputError, match=reason):
            parse_claimed_arg(bad)


def test_parse_claim_line() -> None:
    c = parse_claim_line('{"claimed": "au", "rtt": [[50.11, 8.68, 3], [48.85, 2.35, 9.5]]}', 1)
    assert c.claimed == ClaimedCountry("AU")
    assert c.rtt == (RTTSample(lat=50.11, lon=8.68, ms=3.0), RTTSample(lat=48.85, lon=2.35, ms=9.5))
    p = parse_claim_line('{"claimed": [52.5, 13.4], "rtt": [], "note": "extra keys are ignored"}', 2)
    assert p.claimed == ClaimedPoint(52.5, 13.4) and p.rtt == ()


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"rtt": []}', "missing 'claimed'"),
        ('{"claimed": "DE"}', "missing 'rtt'"),
        ('{"claimed": 49, "rtt": []}', "'claimed' must be"),
        ('{"claimed": [1, 2, 3], "rtt": []}', "'claimed' must be"),
        ('{"claimed": [true, 2], "rtt": []}', "'claimed' must be"),
        ('{"claimed": [95, 2], "rtt": []}', "latitude 95"),
        ('{"claimed": "ZZ", "rtt": []}', "unknown country code"),
        ('{"claimed": "DE", "rtt": {"a": 1}}', "'rtt' must be a list"),
        ('{"claimed": "DE", "rtt": [[1, 2]]}', r"'rtt'\[0\] must be"),
        ('{"claimed": "DE", "rtt": [[1, 2, 3], [1, 2, "3"]]}', r"'rtt'\[1\] must be"),
        ('{"claimed": "DE", "rtt": [[1, 2, 0]]}', r"'rtt'\[0\]: RTT 0 ms is not positive"),
        ('{"claimed": "DE", "rtt": [[1, 200, 3]]}', r"'rtt'\[0\]: longitude 200"),
    ],
)
def test_parse_claim_line_rejects_with_line_number(line: str, reason: str) -> None:
    with pytest.raises(InputError, match=reason) as e:
        parse_claim_line(line, 17)
    assert e.value.message.startswith("line 17: ")
    assert "\n" not in e.value.message


def test_error_messages_do_not_echo_long_input() -> None:
    secret = "x" * 500
    with pytest.raises(InputError) as e:
        parse_rtt_arg(f"{secret}=3")
    assert len(e.value.message) < 120


def test_verify_claims_shape_and_order(wn: WN) -> None:
    pops = ["Frankfurt", "Paris", "London", "Warsaw", "Stockholm", "Manhattan", "Tokyo", "Singapore"]
    samples = wn.samples("Munich", pops)
    claims = [
        Claim(ClaimedCountry("DE"), samples),
        Claim(ClaimedCountry("AU"), samples),
        Claim(ClaimedPoint(*wn.point("Munich")), samples),
        Claim(ClaimedCountry("DE"), ()),
    ]
    out = verify_claims(claims)
    assert [set(o) for o in out] == [KEYS] * 3 + [KEYS | {"inconclusive"}]
    assert [o["feasible"] for o in out] == [True, False, True, None]  # no sample: inconclusive, not true
    assert out[0]["reasons"] == ["RTT_REGION"] and out[0]["violation_km"] == 0.0
    assert out[1]["reasons"] == ["RTT_TOO_FAR_FROM_CLAIMED", "RTT_REGION"] and out[1]["violation_km"] > 10_000
    assert out[3]["reasons"] == ["RTT_INSUFFICIENT", "RTT_INCONCLUSIVE"]
    assert all(0.5 <= o["confidence"] <= 0.99 for o in out) and out[1]["confidence"] > 0.9
    assert "DE" in out[0]["region"]["countries"] and out[0]["region"]["centroid"] is not None
    json.dumps(out)  # JSON-ready as it is


def test_command_line_and_file_forms_agree() -> None:
    from_args = claim_from_args("AU", ["50.11,8.68=3", "48.85,2.35=9.5"])
    from_line = parse_claim_line('{"claimed": "AU", "rtt": [[50.11, 8.68, 3], [48.85, 2.35, 9.5]]}', 1)
    assert from_args == from_line
    assert verify_claims([from_args]) == verify_claims([from_line])


def test_unknown_country_in_a_built_claim_is_an_input_error() -> None:
    with pytest.raises(InputError, match="unknown country"):
        verify_claims([Claim(ClaimedCountry("QQ"), (RTTSample(lat=0.0, lon=0.0, ms=5.0),))])


def test_verify_each_reports_a_bad_claim_and_answers_the_rest() -> None:
    from geowarden.latency.cli import verify_each

    good = Claim(ClaimedCountry("DE"), (RTTSample(lat=50.11, lon=8.68, ms=3.0),))
    out = verify_each([good, Claim(ClaimedCountry("QQ"), good.rtt), good])
    assert isinstance(out[1], InputError) and "QQ" in out[1].message
    assert [o["feasible"] for o in (out[0], out[2]) if isinstance(o, dict)] == [True, True]
