from __future__ import annotations

from collections.abc import Set
from dataclasses import dataclass

import pytest

from geowarden.policy import default_restricted
from geowarden.signals import client
from geowarden.signals.codes import CODES
from helpers import facts

RESTRICTED = frozenset(default_restricted())


@dataclass(frozen=True)
class Ctx:
    restricted: Set[str] = RESTRICTED
    ip_country: str | None = None


# zone, countries that use it, restricted
ZONES = [
    ("Asia/Shanghai", ["CN"], True),
    ("Asia/Urumqi", ["CN"], True),
    ("PRC", ["CN"], True),  # a backward link
    ("Asia/Chongqing", ["CN"], True),
    ("Asia/Hong_Kong", ["HK"], True),
    ("Hongkong", ["HK"], True),
    ("Asia/Macau", ["MO"], True),
    ("Europe/Moscow", ["RU"], True),
    ("W-SU", ["RU"], True),
    ("Europe/Kaliningrad", ["RU"], True),
    ("Asia/Vladivostok", ["RU"], True),
    ("Europe/Minsk", ["BY"], True),
    ("Asia/Tehran", ["IR"], True),
    ("Iran", ["IR"], True),
    ("Asia/Pyongyang", ["KP"], True),
    ("America/Havana", ["CU"], True),
    ("Asia/Damascus", ["SY"], True),
    ("Europe/Simferopol", ["RU", "UA"], True),  # Crimea and Sevastopol (UA-43, UA-40)
    ("Asia/Almaty", ["KZ"], False),
    ("Asia/Singapore", ["AQ", "MY", "SG"], False),
    ("Asia/Tokyo", ["AU", "JP"], False),  # zone1970.tab: also the Eyre Bird Observatory
    ("Europe/Berlin", ["DE", "DK", "NO", "SE", "SJ"], False),
    ("America/New_York", ["US"], False),
    ("Europe/Kyiv", ["UA"], False),
    ("Asia/Taipei", ["TW"], False),
]


@pytest.mark.parametrize(("zone", "countries", "restricted"), ZONES)
def test_time_zones(zone: str, countries: list[str], restricted: bool) -> None:
    ev = {e.code: e for e in client.evaluate(facts(timezone=zone), Ctx())}
    assert ev["TZ_COUNTRY"].value == countries
    assert ("TZ_RESTRICTED" in ev) == restricted
    assert set(ev) <= set(CODES)
    if restricted:
        assert ev["TZ_RESTRICTED"].confidence <= 0.5


def test_crimea_is_its_own_jurisdiction() -> None:
    ev = {e.code: e for e in client.evaluate(facts(timezone="Europe/Simferopol"), Ctx())}
    assert ev["TZ_RESTRICTED"].value == ["UA-43", "UA-40"]
    only_countries = frozenset({"CN", "RU"})
    ev = {e.code: e for e in client.evaluate(facts(timezone="Europe/Simferopol"), Ctx(restricted=only_countries))}
    assert "TZ_RESTRICTED" not in ev


@pytest.mark.parametrize(
    ("zone", "ip", "mismatch"),
    [
        ("Asia/Shanghai", "US", True),
        ("Asia/Shanghai", "CN", False),
        ("Europe/Copenhagen", "DE", False),  # a link to Europe/Berlin, which DE uses
        ("Europe/Berlin", "DK", False),
        ("America/New_York", "DE", True),
        ("Asia/Singapore", "MY", False),
        ("Europe/Simferopol", "UA", False),
        ("Asia/Tokyo", None, False),
    ],
)
def test_mismatch_with_the_address(zone: str, ip: str | None, mismatch: bool) -> None:
    ev = {e.code: e for e in client.evaluate(facts(timezone=zone), Ctx(ip_country=ip))}
    assert ("TZ_COUNTRY_MISMATCH" in ev) == mismatch
    if mismatch:
        assert ev["TZ_COUNTRY_MISMATCH"].value["ip"] == ip
        assert ev["TZ_COUNTRY_MISMATCH"].confidence <= 0.3


@pytest.mark.parametrize("zone", ["UTC", "Etc/UTC", "Etc/GMT+5", "GMT"])
def test_zones_without_a_country_say_nothing(zone: str) -> None:
    assert client.evaluate(facts(timezone=zone), Ctx(ip_country="US")) == []


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "Asia/Beijing", "", "+08:00", "x" * 200])
def test_invalid_zones(zone: str) -> None:
    (ev,) = client.evaluate(facts(timezone=zone), Ctx())
    assert ev.code == "TZ_INVALID"
    assert len(ev.value) <= 64


def test_zone_names_are_matched_without_case() -> None:
    ev = {e.code: e for e in client.evaluate(facts(timezone="asia/shanghai"), Ctx())}
    assert "TZ_RESTRICTED" in ev


def test_the_tz_database_is_found() -> None:
    table = client.zones()
    assert table.source
    assert len(table.known) > 500
    assert "Asia/Shanghai" in table.countries


# header, (tag, language, region) of the primary, restricted region (or None) and primary?, mismatch vs US
HEADERS = [
    ("zh-CN,zh;q=0.9,en;q=0.8", ("zh-CN", "zh", "CN"), ("CN", True), True),
    ("ru-RU,ru;q=0.9", ("ru-RU", "ru", "RU"), ("RU", True), True),
    ("fa-IR", ("fa-IR", "fa", "IR"), ("IR", True), True),
    ("zh-HK;q=0.8, en-US", ("en-US", "en", "US"), ("HK", False), False),
    ("en-US,en;q=0.9,ru-RU;q=0.5", ("en-US", "en", "US"), ("RU", False), False),
    ("zh-Hans-CN", ("zh-Hans-CN", "zh", "CN"), ("CN", True), True),
    ("zh_CN", ("zh-CN", "zh", "CN"), ("CN", True), True),
    ("zh-TW,zh;q=0.9", ("zh-TW", "zh", "TW"), None, True),
    ("ru", ("ru", "ru", ""), None, False),  # a language is not a place
    ("kk-KZ", ("kk-KZ", "kk", "KZ"), None, True),
    ("de-DE,de;q=0.9", ("de-DE", "de", "DE"), None, True),
    ("ja-JP", ("ja-JP", "ja", "JP"), None, True),
    ("en-SG", ("en-SG", "en", "SG"), None, True),
    ("es-419,es;q=0.9", ("es-419", "es", ""), None, False),  # a UN M.49 area, not a country
    ("*", None, None, False),
    ("zh-CN;q=0", None, None, False),
    ("!!!, ;;;", None, None, False),
]


@pytest.mark.parametrize(("header", "primary", "restricted", "mismatch"), HEADERS)
def test_accept_language(
    header: str, primary: tuple[str, str, str] | None, restricted: tuple[str, bool] | None, mismatch: bool
) -> None:
    ev = {e.code: e for e in client.evaluate(facts(accept_language=header), Ctx(ip_country="US"))}
    if primary is None:
        assert ev == {}
        return
    assert ev["LANG_PRIMARY"].value == dict(zip(("tag", "language", "region"), primary, strict=True))
    if restricted is None:
        assert "LANG_RESTRICTED_REGION" not in ev
    else:
        region, is_primary = restricted
        hit = ev["LANG_RESTRICTED_REGION"]
        assert hit.value["region"] == region and hit.value["primary"] is is_primary
        assert hit.confidence == (client.LANG_RESTRICTED_PRIMARY if is_primary else client.LANG_RESTRICTED_SECONDARY)
        assert hit.confidence <= 0.4
    assert ("LANG_COUNTRY_MISMATCH" in ev) == mismatch


def test_a_huge_header_is_cut() -> None:
    header = ",".join(["en-US"] * 5000) + ",zh-CN"
    tags = client.parse_accept_language(header)
    assert len(tags) <= client.MAX_TAGS


def test_no_client_facts_no_evidence() -> None:
    assert client.evaluate(facts(), Ctx()) == []
