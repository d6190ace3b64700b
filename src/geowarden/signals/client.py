"""Client signals: the time zone and the languages a client reports, against the address.

- **Time zone** (an IANA name such as ``Asia/Shanghai``, reported by an SDK or a browser): which
  countries use it, from the IANA tz database's ``zone.tab`` and ``zone1970.tab`` and its links
  (``PRC`` is ``Asia/Shanghai``, ``W-SU`` is ``Europe/Moscow``). Read from the ``tzdata`` package
  (Apache-2.0; the tz data is public domain), else from the system's tz database. A zone used
  only in restricted jurisdictions (Asia/Shanghai, Asia/Urumqi, Europe/Moscow, Asia/Tehran,
  Asia/Pyongyang, Europe/Minsk, Asia/Hong_Kong, ...; Europe/Simferopol is Crimea and
  Sevastopol) is ``TZ_RESTRICTED``; a zone not used in the address's country is
  ``TZ_COUNTRY_MISMATCH``. ``UTC`` and ``Etc/*`` say nothing (servers and privacy settings).
- **Accept-Language**: the primary language (highest q) and its region (``zh-CN``, ``ru-RU``,
  ``fa-IR``). A region that is a restricted jurisdiction is ``LANG_RESTRICTED_REGION``; a primary
  region other than the address's country is ``LANG_COUNTRY_MISMATCH``.

With care: an expat, a traveller or a language learner is not an evader. These signals have low
confidences; they weigh little alone and count when other signals agree.
"""

from __future__ import annotations

import functools
import importlib.resources
import threading
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from geowarden.errors import SourceError
from geowarden.model import Evidence, Facts
from geowarden.signals.base import BaseSignal, Found, SignalContext, meanings

NAME = "client"

CODES: dict[str, tuple[str, str]] = {
    "TZ_COUNTRY": (
        NAME,
        "The countries that use the client-reported time zone (IANA zone.tab and zone1970.tab); informational.",
    ),
    "TZ_RESTRICTED": (
        NAME,
        "The client-reported time zone is used only in restricted jurisdictions (Asia/Shanghai, "
        "Europe/Moscow, Asia/Tehran, Asia/Pyongyang, ...). Weak alone: travellers keep their clocks.",
    ),
    "TZ_COUNTRY_MISMATCH": (
        NAME,
        "The client-reported time zone is not used in the address's country; value: {timezone, countries, "
        "ip}. Weak alone.",
    ),
    "TZ_INVALID": (NAME, "The client-reported time zone is not an IANA time zone name."),
    "LANG_PRIMARY": (
        NAME,
        "The client's primary language (highest q in Accept-Language); value: {tag, language, region}; informational.",
    ),
    "LANG_RESTRICTED_REGION": (
        NAME,
        "A language the client accepts is tagged with a restricted region (zh-CN, ru-RU, fa-IR, ...); "
        "confidence is higher when it is the primary one. Weak alone: it is a setting, not a place.",
    ),
    "LANG_COUNTRY_MISMATCH": (
        NAME,
        "The region of the client's primary language differs from the address's country; value: "
        "{region, ip}. Very weak alone (en-US is everybody's default).",
    ),
}

TZ_RESTRICTED_CONFIDENCE = 0.5
TZ_MISMATCH_CONFIDENCE = 0.3
LANG_RESTRICTED_PRIMARY = 0.4
LANG_RESTRICTED_SECONDARY = 0.15
LANG_MISMATCH_CONFIDENCE = 0.15
MAX_HEADER: Final = 512  # longer Accept-Language headers are cut here
MAX_TAGS: Final = 16

#: Zones that stand for a sub-national jurisdiction (ISO 3166-2) rather than their countries.
ZONE_JURISDICTIONS: Final[dict[str, tuple[str, ...]]] = {"Europe/Simferopol": ("UA-43", "UA-40")}


# -- the tz database -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ZoneTable:
    """Zone name -> the countries that use it (links resolved), and every known zone name."""

    countries: dict[str, tuple[str, ...]]
    known: frozenset[str]
    folded: dict[str, str]  # lower-case name -> canonical spelling
    source: str
    version: str

    def resolve(self, name: str) -> str | None:
        """The known spelling of a zone name (exact, else case-insensitive), or None."""
        if name in self.known:
            return name
        return self.folded.get(name.lower())


def _tz_files() -> Iterator[tuple[str, dict[str, str]]]:
    """(source name, {file name: text}) for the tzdata package, then each system tz directory."""
    names = ("zone.tab", "zone1970.tab", "tzdata.zi")
    try:
        root = importlib.resources.files("tzdata").joinpath("zoneinfo")
        files = {n: root.joinpath(n).read_text(encoding="utf-8") for n in names if root.joinpath(n).is_file()}
        if "zone1970.tab" in files:
            yield "tzdata package", files
    except (ModuleNotFoundError, OSError):
        pass
    for d in zoneinfo.TZPATH:
        base = Path(d)
        files = {n: (base / n).read_text(encoding="utf-8") for n in names if (base / n).is_file()}
        if "zone1970.tab" in files:
            yield f"system tz database {base}", files


def load_zones() -> ZoneTable:
    """Build the zone table from the first tz database found (see ``_tz_files``)."""
    for source, files in _tz_files():
        return _build(source, files)
    raise SourceError("no IANA tz database found (install the tzdata package)")


def _tab_rows(text: str) -> Iterator[tuple[list[str], str]]:
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) >= 3:
            yield parts[0].split(","), parts[2].strip()


def _build(source: str, files: dict[str, str]) -> ZoneTable:
    home: dict[str, str] = {}  # zone.tab: one country per zone (or link) name
    shared: dict[str, set[str]] = {}  # zone1970.tab: every country that uses a canonical zone
    for ccs, zone in _tab_rows(files.get("zone.tab", "")):
        home.setdefault(zone, ccs[0])
    for ccs, zone in _tab_rows(files["zone1970.tab"]):
        shared.setdefault(zone, set()).update(ccs)
    links: dict[str, str] = {}
    zones: set[str] = set()
    version = ""
    for line in files.get("tzdata.zi", "").splitlines():
        if line.startswith("Z "):
            zones.add(line.split()[1])
        elif line.startswith("L "):
            _, target, name = line.split()[:3]
            links[name] = target
        elif line.startswith("# version "):
            version = line.split()[-1]
    if not zones:  # no tzdata.zi: fall back to the names the runtime knows
        zones = set(zoneinfo.available_timezones())
    known = zones | set(links) | set(home) | set(shared)

    def final(name: str) -> str:
        seen = 0
        while name in links and seen < 8:
            name, seen = links[name], seen + 1
        return name

    countries: dict[str, tuple[str, ...]] = {}
    for name in known:
        canonical = final(name)
        users = set(shared.get(canonical, ()))
        if name in home:
            users.add(home[name])
        elif canonical in home and not users:
            users.add(home[canonical])
        if users:
            countries[name] = tuple(sorted(users))
    return ZoneTable(
        countries=countries,
        known=frozenset(known),
        folded={n.lower(): n for n in known},
        source=source,
        version=version,
    )


_ZONES: list[ZoneTable] = []
_LOCK = threading.Lock()


def zones() -> ZoneTable:
    """The zone table (built once, at the first time zone seen)."""
    if not _ZONES:
        with _LOCK:
            if not _ZONES:
                _ZONES.append(load_zones())
    return _ZONES[0]


# -- Accept-Language -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LanguageTag:
    tag: str  # normalised: zh-Hans-CN
    language: str  # zh
    region: str  # CN, "" when none (or a UN M.49 area such as 419)
    q: float


@functools.lru_cache(maxsize=4096)
def parse_accept_language(header: str) -> tuple[LanguageTag, ...]:
    """The language tags of an Accept-Language header, highest q first (stable), without ``*``
    and q=0; malformed items are skipped."""
    tags: list[LanguageTag] = []
    for item in header[:MAX_HEADER].split(",")[:MAX_TAGS]:
        text, _, params = item.strip().partition(";")
        q = 1.0
        for p in params.split(";"):
            k, _, v = p.strip().partition("=")
            if k.strip().lower() == "q":
                try:
                    q = float(v)
                except ValueError:
                    q = 0.0
        tag = _tag(text.strip(), q)
        if tag is not None and 0 < q <= 1:
            tags.append(tag)
    tags.sort(key=lambda t: -t.q)
    return tuple(tags)


def _tag(text: str, q: float) -> LanguageTag | None:
    parts = text.replace("_", "-").split("-")
    lang = parts[0].lower()
    if not (2 <= len(lang) <= 3 and lang.isascii() and lang.isalpha()):
        return None
    region, has_region, out = "", False, [lang]
    for sub in parts[1:]:
        if not (sub.isascii() and sub.isalnum() and 1 <= len(sub) <= 8):
            return None
        if len(sub) == 4 and sub.isalpha() and len(out) == 1:
            out.append(sub.title())  # script
        elif not has_region and len(sub) == 2 and sub.isalpha():
            region, has_region = sub.upper(), True
            out.append(region)
        elif not has_region and len(sub) == 3 and sub.isdigit():
            has_region = True  # a UN M.49 area (es-419): a region, but not a country
            out.append(sub)
        else:
            out.append(sub.lower())
    return LanguageTag("-".join(out), lang, region, q)


# -- the signal ------------------------------------------------------------------------------


def evaluate(facts: Facts, ctx: SignalContext) -> list[Evidence]:
    """Evidence about ``facts.timezone`` and ``facts.accept_language``; empty without them."""
    out: list[Evidence] = []
    if facts.timezone is not None:
        _timezone(facts.timezone, ctx, out)
    if facts.accept_language is not None:
        _languages(facts.accept_language, ctx, out)
    return out


def _timezone(raw: str, ctx: SignalContext, out: list[Evidence]) -> None:
    table = zones()
    name = table.resolve(raw.strip())
    if name is None:
        shown = raw.strip()[:64]
        out.append(
            Evidence(
                signal=NAME,
                code="TZ_INVALID",
                value=shown,
                confidence=1.0,
                detail=f"{shown!r} is not an IANA time zone name",
            )
        )
        return
    countries = table.countries.get(name)
    if not countries:  # UTC, Etc/GMT+5, ...: no country
        return
    out.append(
        Evidence(
            signal=NAME,
            code="TZ_COUNTRY",
            value=list(countries),
            confidence=1.0,
            detail=f"time zone {name} is used in {', '.join(countries)}",
            source=table.source,
        )
    )
    jurisdictions = ZONE_JURISDICTIONS.get(name, countries)
    restricted = ctx.restricted
    if all(j in restricted for j in jurisdictions):
        out.append(
            Evidence(
                signal=NAME,
                code="TZ_RESTRICTED",
                value=list(jurisdictions),
                confidence=TZ_RESTRICTED_CONFIDENCE,
                detail=f"time zone {name} is used only in restricted jurisdictions ({', '.join(jurisdictions)})",
            )
        )
    ip = ctx.ip_country
    if ip and ip not in countries:
        value: dict[str, Any] = {"timezone": name, "countries": list(countries), "ip": ip}
        out.append(
            Evidence(
                signal=NAME,
                code="TZ_COUNTRY_MISMATCH",
                value=value,
                confidence=TZ_MISMATCH_CONFIDENCE,
                detail=f"time zone {name} ({', '.join(countries)}) is not used in {ip}, where the address is",
            )
        )


def _languages(header: str, ctx: SignalContext, out: list[Evidence]) -> None:
    tags = parse_accept_language(header)
    if not tags:
        return
    primary = tags[0]
    out.append(
        Evidence(
            signal=NAME,
            code="LANG_PRIMARY",
            value={"tag": primary.tag, "language": primary.language, "region": primary.region},
            confidence=1.0,
            detail=f"primary language {primary.tag}",
        )
    )
    restricted = ctx.restricted
    hit = next((t for t in tags if t.region and t.region in restricted), None)
    if hit is not None:
        is_primary = hit is primary
        out.append(
            Evidence(
                signal=NAME,
                code="LANG_RESTRICTED_REGION",
                value={"tag": hit.tag, "region": hit.region, "primary": is_primary},
                confidence=LANG_RESTRICTED_PRIMARY if is_primary else LANG_RESTRICTED_SECONDARY,
                detail=f"{'primary' if is_primary else 'accepted'} language {hit.tag} is tagged with "
                f"restricted region {hit.region}",
            )
        )
    ip = ctx.ip_country
    if ip and primary.region and primary.region != ip:
        out.append(
            Evidence(
                signal=NAME,
                code="LANG_COUNTRY_MISMATCH",
                value={"region": primary.region, "ip": ip},
                confidence=LANG_MISMATCH_CONFIDENCE,
                detail=f"primary language {primary.tag} names region {primary.region}; the address is in {ip}",
            )
        )


class ClientSignal(BaseSignal):
    """The client signal and its CEL variable ``client``: ``timezone_valid`` (a time zone was given
    and is an IANA name), ``tz_countries``, ``tz_restricted``, ``tz_mismatch``, ``language`` and
    ``lang_region`` (of the primary language), ``lang_restricted``, ``lang_mismatch``."""

    name = NAME
    codes = meanings(CODES)
    variable = "client"
    hint_codes = frozenset({"TZ_RESTRICTED", "LANG_RESTRICTED_REGION"})

    def evaluate(self, facts: Facts, ctx: SignalContext) -> list[Evidence]:
        return evaluate(facts, ctx)

    def export(self, found: Found, facts: Facts) -> dict[str, Any]:
        codes = found.codes
        lang = found.mapping("LANG_PRIMARY")
        tz_countries = found.first.get("TZ_COUNTRY")
        return {
            "timezone_valid": facts.timezone is not None and "TZ_INVALID" not in codes,
            "tz_countries": [str(c) for c in tz_countries] if isinstance(tz_countries, list) else [],
            "tz_restricted": "TZ_RESTRICTED" in codes,
            "tz_mismatch": "TZ_COUNTRY_MISMATCH" in codes,
            "language": _text(lang.get("language")),
            "lang_region": _text(lang.get("region")),
            "lang_restricted": "LANG_RESTRICTED_REGION" in codes,
            "lang_mismatch": "LANG_COUNTRY_MISMATCH" in codes,
        }


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


SIGNAL = ClientSignal()
