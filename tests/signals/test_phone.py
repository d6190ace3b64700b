from __future__ import annotations

import json
import logging
from collections.abc import Set
from dataclasses import dataclass

import httpx
import pytest

from geowarden.policy import default_restricted
from geowarden.signals import phone
from geowarden.signals.codes import CODES
from helpers import facts

RESTRICTED = frozenset(default_restricted())


@dataclass(frozen=True)
class Ctx:
    restricted: Set[str] = RESTRICTED
    ip_country: str | None = None


# number, country, type, restricted
NUMBERS = [
    ("+86 138 0013 8000", "CN", "mobile", True),
    ("+86 10 6552 9988", "CN", "fixed_line", True),
    ("+852 9123 4567", "HK", "mobile", True),
    ("+852 2123 4567", "HK", "fixed_line", True),
    ("+7 495 123 45 67", "RU", "fixed_line", True),  # Moscow
    ("+7 727 250 00 00", "KZ", "fixed_line", False),  # Almaty: +7 is not only Russia
    ("+7 701 123 4567", "KZ", "mobile", False),
    ("+98 912 123 4567", "IR", "mobile", True),
    ("+98 21 1234 5678", "IR", "fixed_line", True),
    ("+850 2 381 5926", "KP", "fixed_line", True),
    ("+1 650 253 0000", "US", "fixed_line_or_mobile", False),  # NANP: no mobile/fixed split offline
    ("+1 800 555 0199", "US", "toll_free", False),
    ("+49 30 123456", "DE", "fixed_line", False),
    ("+49 151 23456789", "DE", "mobile", False),
    ("+81 90 1234 5678", "JP", "mobile", False),
    ("+81 50 1234 5678", "JP", "voip", False),  # Japanese 050 IP-phone numbers
    ("+65 8123 4567", "SG", "mobile", False),
    ("+65 6123 4567", "SG", "fixed_line", False),
    ("0086 138 0013 8000", "CN", "mobile", True),  # 00 is read as +
]


@pytest.mark.parametrize(("number", "country", "kind", "restricted"), NUMBERS)
def test_real_numbers(number: str, country: str, kind: str, restricted: bool) -> None:
    ev = {e.code: e for e in phone.evaluate(facts(phone=number), Ctx())}
    assert ev["PHONE_COUNTRY"].value == country
    assert ev["PHONE_TYPE"].value["type"] == kind
    assert ("PHONE_COUNTRY_RESTRICTED" in ev) == restricted
    assert ("PHONE_VOIP" in ev) == (kind in phone.VOIP_TYPES)
    assert set(ev) <= set(CODES)
    digits = "".join(c for c in number if c.isdigit())
    for e in ev.values():
        assert digits[-7:] not in json.dumps(e.to_dict()), "no part of the subscriber number in evidence"


def test_region_of_the_number_never_the_calling_code() -> None:
    assert phone.parse("+7 727 250 00 00").country == "KZ"
    assert phone.parse("+7 495 123 45 67").country == "RU"
    assert phone.parse("+1 416 555 0123").country == "CA"


def test_original_carrier_where_known() -> None:
    (t,) = [e for e in phone.evaluate(facts(phone="+8613800138000"), Ctx()) if e.code == "PHONE_TYPE"]
    assert t.value == {"type": "mobile", "carrier": "China Mobile"}
    assert t.source == "libphonenumber"


@pytest.mark.parametrize(
    ("number", "kind"),
    [("+44 56 1234 5678", "voip"), ("+44 70 1234 5678", "personal"), ("+81 50 1234 5678", "voip")],
)
def test_voip_and_personal_numbers(number: str, kind: str) -> None:
    ev = {e.code: e for e in phone.evaluate(facts(phone=number), Ctx())}
    assert ev["PHONE_VOIP"].value == kind
    assert ev["PHONE_VOIP"].confidence == phone.VOIP_TYPES[kind]


@pytest.mark.parametrize(
    ("number", "reason"),
    [
        ("8613800138000", "international format"),
        ("+44 7700 900123", "not a valid number"),  # Ofcom's drama range
        ("not a number", "international format"),
        ("+" + "1" * 60, "too long"),
        ("+999 123", "not"),
    ],
)
def test_invalid_numbers(number: str, reason: str) -> None:
    (ev,) = phone.evaluate(facts(phone=number), Ctx())
    assert ev.code == "PHONE_INVALID"
    assert reason in ev.detail
    assert ev.value is None


def test_country_mismatch_with_the_address() -> None:
    ev = {e.code: e for e in phone.evaluate(facts(phone="+8613800138000"), Ctx(ip_country="US"))}
    assert ev["PHONE_COUNTRY_MISMATCH"].value == {"phone": "CN", "ip": "US"}
    assert ev["PHONE_COUNTRY_MISMATCH"].confidence <= 0.3
    same = {e.code for e in phone.evaluate(facts(phone="+49 30 123456"), Ctx(ip_country="DE"))}
    assert "PHONE_COUNTRY_MISMATCH" not in same
    unknown = {e.code for e in phone.evaluate(facts(phone="+49 30 123456"), Ctx(ip_country=None))}
    assert "PHONE_COUNTRY_MISMATCH" not in unknown


def test_restricted_follows_the_policy() -> None:
    codes = {e.code for e in phone.evaluate(facts(phone="+8613800138000"), Ctx(restricted=frozenset({"RU"})))}
    assert "PHONE_COUNTRY_RESTRICTED" not in codes


def test_no_phone_no_evidence() -> None:
    assert phone.evaluate(facts(), Ctx()) == []


def test_parsing_is_cached_on_the_normalised_text() -> None:
    phone.parse("+49 30 1234567")
    before = phone._parse.cache_info().hits
    assert phone.parse("+49-30-1234567") == phone.parse("+49 (30) 1234567")
    assert phone._parse.cache_info().hits >= before + 2


def test_the_number_stays_out_of_reprs() -> None:
    info = phone.parse("+8613800138000")
    assert "13800138000" not in repr(info)
    assert info.masked == "+86 ***"
    assert phone.mask("+8613800138000") == "+86 ***"
    assert phone.mask("garbage") == "+***"


# -- live line type ----------------------------------------------------------------------------


def twilio(handler: object) -> phone.TwilioLookup:
    client = httpx.Client(transport=httpx.MockTransport(handler))  # type: ignore[arg-type]
    return phone.TwilioLookup("ACtest", "secret-token", client=client)


def lti(kind: str, carrier: str | None = "Bandwidth") -> dict[str, object]:
    return {
        "calling_country_code": "1",
        "country_code": "US",
        "valid": True,
        "line_type_intelligence": {
            "carrier_name": carrier,
            "error_code": None,
            "mobile_country_code": "313",
            "mobile_network_code": "981",
            "type": kind,
        },
    }


def test_twilio_lookup_request_and_answer() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=lti("nonFixedVoip"))

    got = twilio(handler).line_type("+16502530000")
    assert got == phone.LineType(type="voip", carrier="Bandwidth", mobile_country_code="313")
    (req,) = seen
    assert req.url.host == "lookups.twilio.com"
    assert req.url.raw_path.decode().startswith("/v2/PhoneNumbers/%2B16502530000")
    assert req.url.params["Fields"] == "line_type_intelligence"
    assert req.headers["authorization"].startswith("Basic ")


def test_live_voip_turns_an_ambiguous_us_number_into_voip() -> None:
    sig = phone.PhoneSignal(twilio(lambda r: httpx.Response(200, json=lti("nonFixedVoip"))))
    ev = {e.code: e for e in sig.evaluate(facts(phone="+1 650 253 0000"), Ctx(ip_country="US"))}
    assert ev["PHONE_TYPE"].value == {"type": "voip", "carrier": "Bandwidth"}
    assert ev["PHONE_TYPE"].source == "twilio-lookup"
    assert ev["PHONE_VOIP"].confidence == 0.8


def test_a_failing_provider_keeps_the_offline_evidence(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    sig = phone.PhoneSignal(twilio(lambda r: httpx.Response(503, text="+16502530000 unavailable")))
    ev = sig.evaluate(facts(phone="+1 650 253 0000"), Ctx())
    codes = [e.code for e in ev]
    assert "PHONE_COUNTRY" in codes and "PHONE_TYPE" in codes
    (down,) = [e for e in ev if e.code == "SIGNAL_UNAVAILABLE"]
    assert down.value == phone.LOOKUP_UNAVAILABLE
    assert "PhoneLookupError" in down.detail
    assert "6502530000" not in caplog.text
    assert "6502530000" not in json.dumps([e.to_dict() for e in ev])


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(401, json={"message": "Authenticate"}),
        httpx.Response(200, text="not json"),
        httpx.Response(200, json={"line_type_intelligence": {"error_code": 60600, "type": None}}),
        httpx.Response(200, json={"phone_number": "+16502530000"}),
    ],
)
def test_twilio_errors_never_carry_the_number(response: httpx.Response) -> None:
    with pytest.raises(phone.PhoneLookupError) as exc:
        twilio(lambda r: response).line_type("+16502530000")
    assert "6502530000" not in str(exc.value)


def test_twilio_transport_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused for " + str(request.url))

    with pytest.raises(phone.PhoneLookupError) as exc:
        twilio(handler).line_type("+16502530000")
    assert "6502530000" not in str(exc.value)
    assert exc.value.__cause__ is None and exc.value.__suppress_context__


def test_httpx_request_log_lines_are_redacted(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    twilio(lambda r: httpx.Response(200, json=lti("mobile"))).line_type("+16502530000")
    assert "PhoneNumbers/REDACTED" in caplog.text
    assert "6502530000" not in caplog.text


def test_cached_line_types_expire_and_do_not_cache_failures() -> None:
    calls: list[str] = []
    now = [0.0]

    class Flaky:
        name = "flaky"
        fail = True

        def line_type(self, e164: str) -> phone.LineType:
            calls.append(e164)
            if self.fail:
                self.fail = False
                raise phone.PhoneLookupError("down")
            return phone.LineType(type="mobile")

    cache = phone.CachedLineTypes(Flaky(), ttl_s=10, clock=lambda: now[0])
    with pytest.raises(phone.PhoneLookupError):
        cache.line_type("+1")
    assert cache.line_type("+1").type == "mobile"
    assert cache.line_type("+1").type == "mobile"
    assert len(calls) == 2
    now[0] = 11.0
    cache.line_type("+1")
    assert len(calls) == 3
    assert cache.name == "flaky"


def test_no_network_unless_a_provider_is_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*_a: object, **_k: object) -> None:
        raise AssertionError("network used")

    monkeypatch.setattr(httpx.Client, "send", boom)
    monkeypatch.setattr(httpx, "get", boom)
    assert phone.evaluate(facts(phone="+1 650 253 0000"), Ctx())
    assert phone.PhoneSignal().evaluate(facts(phone="+1 650 253 0000"), Ctx())
