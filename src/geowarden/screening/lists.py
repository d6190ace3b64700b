"""Parsers for the official sanctions and restricted-party lists, in their official formats.

Every parser yields :class:`Entity` objects and fills a :class:`ParseReport`: rows read, entities
made, rows skipped with their line number and reason, and ids in side tables (aliases,
addresses) that did not join a primary row. A malformed row is counted and skipped, never
silently dropped and never fatal; an unreadable file raises a one-line ``SourceError``.

Formats (see ``docs/screening.md``):

- OFAC SDN / consolidated (non-SDN) "legacy" CSVs: ``sdn.csv`` + ``alt.csv`` + ``add.csv``
  (``cons_prim.csv`` + ``cons_alt.csv`` + ``cons_add.csv``); no header, ``-0-`` means empty,
  a ``\\x1a`` end-of-file byte ends the file.
- UN Security Council consolidated XML (``INDIVIDUAL`` and ``ENTITY`` elements with aliases).
- BIS Denied Persons List, tab-separated with a quoted header (``dpl.txt``).
- Consolidated Screening List (trade.gov) CSV exports, with a header.
"""

from __future__ import annotations

import builtins
import csv
import io
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import pycountry

from geowarden.errors import SourceError

OFAC_SDN = "OFAC SDN"
OFAC_CONS = "OFAC Consolidated"
UN_CONS = "UN Consolidated"
BIS_DPL = "BIS DPL"

_EMPTY = "-0-"
_EOF = "\x1a"
_DATE_IN_NAME = re.compile(r"(\d{4}-\d{2}-\d{2})")
_AKA = re.compile(r"\b[af]\.k\.a\.,?\s+'([^']+)'", re.IGNORECASE)
_NATIONALITY = re.compile(r"\b(?:nationality|citizen)\s+([A-Z][A-Za-z .,'-]+?)(?:;|\.|$)")


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


def _read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SourceError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


def _val(cell: str) -> str:
    v = cell.strip()
    return "" if v == _EMPTY else v


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


def _add_country(entity: Entity, name: str) -> None:
    name = name.strip().rstrip(".")
    if not name:
        return
    if name not in entity.country_names:
        entity.country_names.append(name)
    cc = country_code(name)
    if cc and cc not in entity.countries:
        entity.countries.append(cc)


def _date_from_name(path: Path) -> str | None:
    m = _DATE_IN_NAME.search(path.name)
    return m.group(1) if m else None


def _records(
    path: Path, report: ParseReport, required: tuple[str, ...], what: str, *, delimiter: str = ","
) -> Iterator[tuple[int, dict[str, str]]]:
    """(line, row as a dict) of a delimited file with a header row that must name ``required``;
    blank rows are passed over, rows of the wrong width are counted in ``report`` and skipped."""
    header: list[str] | None = None
    for line, row in _csv_rows(_read_text(path), delimiter=delimiter):
        if header is None:
            header = [h.strip() for h in row]
            if not all(col in header for col in required):
                raise SourceError(f"{path} is not {what} (no {'/'.join(required)} header)")
            continue
        if not row or all(not c.strip() for c in row):
            continue
        report.rows += 1
        if len(row) != len(header):
            report.skip(line, f"expected {len(header)} fields, found {len(row)}")
            continue
        yield line, dict(zip(header, row, strict=True))


def _csv_rows(text: str, *, delimiter: str = ",") -> Iterator[tuple[int, list[str]]]:
    """(line number, cells) for each record; the line is where the record starts."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=False)
    line = 1
    for row in reader:
        yield line, row
        line = reader.line_num + 1


# -- OFAC legacy CSV (SDN and consolidated non-SDN) --------------------------------------------

_OFAC_KINDS = {"": "entity", "individual": "individual", "vessel": "vessel", "aircraft": "aircraft"}


def parse_ofac(
    primary: Path,
    alt: Path | None = None,
    add: Path | None = None,
    *,
    list_name: str = OFAC_SDN,
    id_prefix: str = "ofac-sdn",
    list_date: str | None = None,
) -> tuple[list[Entity], ParseReport]:
    """Parse an OFAC primary table with its optional alias and address tables."""
    report = ParseReport(source=str(primary))
    list_date = list_date or _date_from_name(primary)
    by_id: dict[str, Entity] = {}
    for line, row in _csv_rows(_read_text(primary)):
        if row == [_EOF] or not row or (len(row) == 1 and not row[0].strip()):
            continue
        report.rows += 1
        if len(row) != 12:
            report.skip(line, f"expected 12 fields, found {len(row)}")
            continue
        ent_num, name = row[0].strip(), _val(row[1])
        if not ent_num.isdigit() or not name:
            report.skip(line, "missing ent_num or name")
            continue
        kind = _OFAC_KINDS.get(_val(row[2]).lower(), "unknown")
        programmes = [p.strip() for p in re.split(r"\]\s*\[", _val(row[3]).strip("[] ")) if p.strip()]
        remarks = _val(row[11])
        ent = Entity(
            entity_id=f"{id_prefix}:{ent_num}",
            name=name,
            kind=kind,
            list=list_name,
            programmes=programmes,
            list_date=list_date,
        )
        for aka in _AKA.findall(remarks):
            if aka not in ent.aliases:
                ent.aliases.append(aka)
        for nat in _NATIONALITY.findall(remarks):
            _add_country(ent, nat)
        if kind == "vessel" and _val(row[9]):
            _add_country(ent, _val(row[9]))
        by_id[ent_num] = ent
    if alt is not None:
        _join_ofac_side(alt, by_id, report, "alt", 5, _ofac_alias)
    if add is not None:
        _join_ofac_side(add, by_id, report, "add", 6, _ofac_address)
    entities = list(by_id.values())
    report.entities = len(entities)
    return entities, report


def _ofac_alias(ent: Entity, row: list[str]) -> None:
    alias = _val(row[3])
    if alias and alias not in ent.aliases and alias != ent.name:
        ent.aliases.append(alias)


def _ofac_address(ent: Entity, row: list[str]) -> None:
    _add_country(ent, _val(row[4]))


def _join_ofac_side(
    path: Path,
    by_id: dict[str, Entity],
    report: ParseReport,
    label: str,
    width: int,
    apply: object,
) -> None:
    assert callable(apply)
    unjoined = 0
    for line, row in _csv_rows(_read_text(path)):
        if row == [_EOF] or not row:
            continue
        report.rows += 1
        if len(row) != width:
            report.skip(line, f"{label}: expected {width} fields, found {len(row)}")
            continue
        ent = by_id.get(row[0].strip())
        if ent is None:
            unjoined += 1  # a newer or older vintage than the primary table
            continue
        apply(ent, row)
    report.unjoined[label] = unjoined


# -- UN consolidated XML -----------------------------------------------------------------------


def _text(el: ET.Element | None) -> str:
    return (el.text or "").strip() if el is not None else ""


def parse_un(path: Path) -> tuple[list[Entity], ParseReport]:
    """Parse the UN Security Council consolidated list (individuals and entities)."""
    report = ParseReport(source=str(path))
    try:
        root = ET.fromstring(_read_text(path))  # noqa: S314 - a local official file, not user input
    except ET.ParseError as exc:
        raise SourceError(f"{path} is not well-formed XML: {exc}") from None
    if root.tag != "CONSOLIDATED_LIST":
        raise SourceError(f"{path} is not a UN consolidated list (root <{root.tag}>)")
    generated = root.get("dateGenerated", "")[:10] or None
    out: list[Entity] = []
    for i, el in enumerate([*root.iterfind("INDIVIDUALS/INDIVIDUAL"), *root.iterfind("ENTITIES/ENTITY")], 1):
        report.rows += 1
        individual = el.tag == "INDIVIDUAL"
        parts = [_text(el.find(t)) for t in ("FIRST_NAME", "SECOND_NAME", "THIRD_NAME", "FOURTH_NAME")]
        name = " ".join(p for p in parts if p)
        ref = _text(el.find("REFERENCE_NUMBER")) or _text(el.find("DATAID"))
        if not name or not ref:
            report.skip(i, f"{el.tag.lower()} without a name or reference number")
            continue
        ent = Entity(
            entity_id=f"un:{ref}",
            name=name,
            kind="individual" if individual else "entity",
            list=UN_CONS,
            programmes=[p for p in [_text(el.find("UN_LIST_TYPE"))] if p],
            list_date=generated,
            listed_on=_text(el.find("LISTED_ON"))[:10] or None,
        )
        alias_tag = "INDIVIDUAL_ALIAS" if individual else "ENTITY_ALIAS"
        for al in el.iterfind(alias_tag):
            a = _text(al.find("ALIAS_NAME"))
            if a and a not in ent.aliases and a != name:
                ent.aliases.append(a)
        orig = _text(el.find("NAME_ORIGINAL_SCRIPT"))
        if orig and orig not in ent.aliases:
            ent.aliases.append(orig)
        for v in el.iterfind("NATIONALITY/VALUE"):
            _add_country(ent, _text(v))
        addr_tag = "INDIVIDUAL_ADDRESS" if individual else "ENTITY_ADDRESS"
        for ad in el.iterfind(addr_tag):
            _add_country(ent, _text(ad.find("COUNTRY")))
        out.append(ent)
    report.entities = len(out)
    return out, report


# -- BIS Denied Persons List -------------------------------------------------------------------


def parse_dpl(path: Path) -> tuple[list[Entity], ParseReport]:
    """Parse the BIS Denied Persons List (tab-separated, quoted header)."""
    report = ParseReport(source=str(path))
    out: dict[tuple[str, str], Entity] = {}
    for line, rec in _records(path, report, ("Name", "Country"), "a BIS Denied Persons List", delimiter="\t"):
        name = rec["Name"].strip()
        if not name:
            report.skip(line, "empty name")
            continue
        eff = _us_date(rec.get("Effective_Date", ""))
        key = (name.casefold(), eff or "")
        ent = out.get(key)  # the DPL repeats a party once per address
        if ent is None:
            ent = Entity(
                entity_id=f"bis-dpl:{len(out) + 1}",
                name=name,
                kind="unknown",
                list=BIS_DPL,
                listed_on=eff,
                list_date=_date_from_name(path),
            )
            out[key] = ent
        _add_country(ent, rec.get("Country", "") or "US")
    report.entities = len(out)
    return list(out.values()), report


def _us_date(s: str) -> str | None:
    m = re.fullmatch(r"\s*(\d{2})/(\d{2})/(\d{4})\s*", s)
    return f"{m.group(3)}-{m.group(1)}-{m.group(2)}" if m else None


# -- Consolidated Screening List (trade.gov CSV) -----------------------------------------------


def parse_csl(path: Path) -> tuple[list[Entity], ParseReport]:
    """Parse a Consolidated Screening List CSV export (one row per party, with a header)."""
    report = ParseReport(source=str(path))
    out: list[Entity] = []
    for line, rec in _records(path, report, ("name", "source"), "a Consolidated Screening List CSV"):
        name = rec["name"].strip()
        source = rec["source"].strip()
        if not name or not source:
            report.skip(line, "empty name or source")
            continue
        # "X; and any successor, sub-unit, or subsidiary thereof" is ISN boilerplate, not a name.
        name = re.sub(r";\s*and any successor.*$", "", name, flags=re.IGNORECASE).strip()
        list_key = re.sub(r"[^a-z]+", "-", source.split(" - ")[0].casefold()).strip("-")
        local = rec.get("_id", "").strip() or rec.get("entity_number", "").strip() or str(line)
        kind = (rec.get("type", "") or "unknown").strip().lower() or "unknown"
        ent = Entity(
            entity_id=f"csl-{list_key}:{local}",
            name=name,
            kind=kind,
            list=source,
            programmes=[p.strip() for p in rec.get("programs", "").split(";") if p.strip()],
            listed_on=rec.get("start_date", "").strip() or None,
            list_date=_date_from_name(path),
        )
        for a in rec.get("alt_names", "").split(";"):
            if a.strip() and a.strip() != name:
                ent.aliases.append(a.strip())
        for col in ("citizenships", "nationalities"):
            for c in rec.get(col, "").split(";"):
                _add_country(ent, c)
        for addr in rec.get("addresses", "").split(";"):
            last = addr.rsplit(",", 1)[-1].strip()
            if len(last) == 2:
                _add_country(ent, last)
        out.append(ent)
    report.entities = len(out)
    return out, report


# -- a directory in the shared-data layout -----------------------------------------------------


def load_directory(root: Path, *, include_csl: bool = True) -> tuple[list[Entity], list[ParseReport]]:
    """Every list recognised under ``root`` (the ``../shared/data/sanctions`` layout).

    ``ofac/sdn.csv`` (+ ``alt.csv``, ``add.csv``), ``ofac/consolidated/cons_prim.csv`` (+ alt, add),
    ``un/consolidated.xml``, ``bis/dpl.txt`` and ``csl/*.csv``. Dated older copies such as
    ``ofac/sdn-2024-03-15.csv`` are ignored here (they are for list-update tests).
    Raises ``SourceError`` when nothing is recognised.
    """
    entities: list[Entity] = []
    reports: list[ParseReport] = []

    def take(result: tuple[list[Entity], ParseReport]) -> None:
        entities.extend(result[0])
        reports.append(result[1])

    ofac = root / "ofac"
    if (ofac / "sdn.csv").is_file():
        take(parse_ofac(ofac / "sdn.csv", _opt(ofac / "alt.csv"), _opt(ofac / "add.csv")))
    cons = ofac / "consolidated"
    if (cons / "cons_prim.csv").is_file():
        take(
            parse_ofac(
                cons / "cons_prim.csv",
                _opt(cons / "cons_alt.csv"),
                _opt(cons / "cons_add.csv"),
                list_name=OFAC_CONS,
                id_prefix="ofac-cons",
            )
        )
    if (root / "un" / "consolidated.xml").is_file():
        take(parse_un(root / "un" / "consolidated.xml"))
    if (root / "bis" / "dpl.txt").is_file():
        take(parse_dpl(root / "bis" / "dpl.txt"))
    if include_csl:
        for p in sorted((root / "csl").glob("*.csv")) if (root / "csl").is_dir() else []:
            take(parse_csl(p))
    if not reports:
        raise SourceError(f"no sanctions list recognised under {root}")
    return entities, reports


def _opt(p: Path) -> Path | None:
    return p if p.is_file() else None


def iter_names(entities: Iterable[Entity]) -> Iterator[tuple[Entity, str]]:
    """(entity, name) for every primary name and alias."""
    for e in entities:
        for n in e.names():
            yield e, n
