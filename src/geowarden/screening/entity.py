"""What every list parser makes, and the helpers they share.

:class:`Entity` is one listed party; :class:`ParseReport` says what one parse did: rows read,
entities made, rows skipped with their line number and reason, and ids in side tables
(aliases, addresses) that did not join a primary row. Countries are kept as the list writes
them and as ISO codes (:func:`country_code`). The parsers, one per official format, are
:mod:`.ofac`, :mod:`.un` and :mod:`.trade`; :mod:`.lists` reads a directory of them.
"""

from __future__ import annotations

import builtins
import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import pycountry

from geowarden.errors import SourceError

OFAC_SDN = "OFAC SDN"
OFAC_CONS = "OFAC Consolidated"
UN_CONS = "UN Consolidated"
BIS_DPL = "BIS DPL"

_DATE_IN_NAME = re.compile(r"(\d{4}-\d{2}-\d{2})")


@dataclass(slots=True, kw_only=True)
class Entity:
    """One listed party: a person, organisation, vessel or aircraft on one list."""

    entity_id: str  # "<list key>:<id on that list>", stable across list versions
    name: str  # the primary name as listed
    kind: str  # individual | entity | vessel | aircraft | unknown
    aliases: list[str] = field(default_factory=list)  # a.k.a., f.k.a., n.k.a. and weak aliases
    countries: list[str] = field(default_factory=list)  # ISO 3166 alpha-2 where resolvable
    country_names: list[str] = field(default_factory=list)  # as written on the list
    programmes: list[str] = field(default_factory=list)
    list_date: str | None = None  # the date of the list version (ISO), where known
    listed_on: str | None = None  # when this party was listed (ISO), where the list says
    # Last, so that the field's name does not shadow the builtin in the annotations above.
    list: str  # which list: "OFAC SDN", "UN Consolidated", "BIS DPL", or the CSL source

    def names(self) -> builtins.list[str]:
        """The primary name followed by the aliases, without duplicates."""
        seen: set[str] = set()
        out: list[str] = []
        for n in (self.name, *self.aliases):
            key = n.strip().casefold()
            if key and key not in seen:
                seen.add(key)
                out.append(n.strip())
        return out


@dataclass(slots=True)
class ParseReport:
    """What one parse did: counts, skipped rows (line and reason), ids that did not join."""

    source: str
    rows: int = 0
    entities: int = 0
    skipped: list[tuple[int, str]] = field(default_factory=list)
    unjoined: dict[str, int] = field(default_factory=dict)  # side table -> rows whose id has no entity

    def skip(self, line: int, reason: str) -> None:
        self.skipped.append((line, reason))

    def to_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "rows": self.rows,
            "entities": self.entities,
            "skipped": len(self.skipped),
            "skipped_examples": [f"line {n}: {r}" for n, r in self.skipped[:5]],
            "unjoined": dict(self.unjoined),
        }


# -- helpers -----------------------------------------------------------------------------------


def read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SourceError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


_COUNTRY_FIX = {
    "russia": "RU",
    "iran": "IR",
    "korea, north": "KP",
    "north korea": "KP",
    "democratic people's republic of korea": "KP",
    "korea, south": "KR",
    "burma": "MM",
    "syria": "SY",
    "venezuela": "VE",
    "bolivia": "BO",
    "tanzania": "TZ",
    "palestinian": "PS",
    "west bank": "PS",
    "gaza": "PS",
    "region: gaza": "PS",
    "region: west bank": "PS",
    "laos": "LA",
    "vietnam": "VN",
    "taiwan": "TW",
    "moldova": "MD",
    "turkey": "TR",
    "türkiye": "TR",
    "turkiye": "TR",
    "congo, democratic republic of the": "CD",
    "democratic republic of the congo": "CD",
    "congo, republic of the": "CG",
    "cote d'ivoire": "CI",
    "czech republic": "CZ",
    "macau": "MO",
    "kosovo": "XK",
    "united kingdom": "GB",
    "united states": "US",
    "crimea": "UA",
    "region: crimea": "UA",
    "bahamas": "BS",
    "gambia": "GM",
    "none identified": "",
    "bahamas, the": "BS",
    "gambia, the": "GM",
    "brunei": "BN",
    "cape verde": "CV",
    "micronesia, federated states of": "FM",
    "netherlands antilles": "CW",
    "serbia and montenegro": "RS",
    "yugoslavia": "RS",
    "undetermined": "",
}


@lru_cache(maxsize=4096)
def country_code(name: str) -> str | None:
    """ISO alpha-2 for a country as lists write it ("Russia", "Korea, North", "IR"), or None."""
    key = name.strip().casefold()
    key = re.sub(r"^(?:region:\s*|the\s+)", "", key)
    if not key:
        return None
    if key in _COUNTRY_FIX:
        return _COUNTRY_FIX[key] or None
    if len(key) == 2 and key.isalpha():
        c = pycountry.countries.get(alpha_2=key.upper())
        return str(c.alpha_2) if c is not None else None
    try:
        return str(pycountry.countries.lookup(name.strip()).alpha_2)
    except LookupError:
        return None


def add_country(entity: Entity, name: str) -> None:
    name = name.strip().rstrip(".")
    if not name:
        return
    if name not in entity.country_names:
        entity.country_names.append(name)
    cc = country_code(name)
    if cc and cc not in entity.countries:
        entity.countries.append(cc)


def date_from_name(path: Path) -> str | None:
    m = _DATE_IN_NAME.search(path.name)
    return m.group(1) if m else None


def csv_rows(text: str, *, delimiter: str = ",") -> Iterator[tuple[int, list[str]]]:
    """(line number, cells) for each record; the line is where the record starts."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=False)
    line = 1
    for row in reader:
        yield line, row
        line = reader.line_num + 1
