"""OFAC's SDN and consolidated (non-SDN) lists, in their "legacy" CSV format.

``sdn.csv`` + ``alt.csv`` + ``add.csv`` (``cons_prim.csv`` + ``cons_alt.csv`` +
``cons_add.csv``): no header, ``-0-`` means empty, a ``\\x1a`` end-of-file byte ends the file.
Aliases and addresses are side tables joined to the primary table by id; a.k.a.s and
nationalities are also read from the remarks.
"""

from __future__ import annotations

import re
from pathlib import Path

from geowarden.screening.entity import OFAC_SDN, Entity, ParseReport, add_country, csv_rows, date_from_name, read_text

_EMPTY = "-0-"
_EOF = "\x1a"
_AKA = re.compile(r"\b[af]\.k\.a\.,?\s+'([^']+)'", re.IGNORECASE)
_NATIONALITY = re.compile(r"\b(?:nationality|citizen)\s+([A-Z][A-Za-z .,'-]+?)(?:;|\.|$)")


def _val(cell: str) -> str:
    v = cell.strip()
    return "" if v == _EMPTY else v


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
    list_date = list_date or date_from_name(primary)
    by_id: dict[str, Entity] = {}
    for line, row in csv_rows(read_text(primary)):
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
            add_country(ent, nat)
        if kind == "vessel" and _val(row[9]):
            add_country(ent, _val(row[9]))
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
    add_country(ent, _val(row[4]))


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
    for line, row in csv_rows(read_text(path)):
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
