"""The UN Security Council consolidated list, in its XML format.

``INDIVIDUAL`` and ``ENTITY`` elements with their aliases, name in the original script,
nationalities and addresses.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from geowarden.errors import SourceError
from geowarden.screening.entity import UN_CONS, Entity, ParseReport, add_country, read_text


def _text(el: ET.Element | None) -> str:
    return (el.text or "").strip() if el is not None else ""


def parse_un(path: Path) -> tuple[list[Entity], ParseReport]:
    """Parse the UN Security Council consolidated list (individuals and entities)."""
    report = ParseReport(source=str(path))
    try:
        root = ET.fromstring(read_text(path))  # noqa: S314 - a local official file, not user input
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
            add_country(ent, _text(v))
        addr_tag = "INDIVIDUAL_ADDRESS" if individual else "ENTITY_ADDRESS"
        for ad in el.iterfind(addr_tag):
            add_country(ent, _text(ad.find("COUNTRY")))
        out.append(ent)
    report.entities = len(out)
    return out, report
