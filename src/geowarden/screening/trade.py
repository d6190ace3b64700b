"""US Commerce lists in delimited text with a header: BIS Denied Persons and trade.gov's CSL.

- BIS Denied Persons List, tab-separated with a quoted header (``dpl.txt``).
- Consolidated Screening List (trade.gov) CSV exports, with a header.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from geowarden.errors import SourceError
from geowarden.screening.entity import BIS_DPL, Entity, ParseReport, add_country, csv_rows, date_from_name, read_text


def _records(
    path: Path, report: ParseReport, required: tuple[str, ...], what: str, *, delimiter: str = ","
) -> Iterator[tuple[int, dict[str, str]]]:
    """(line, row as a dict) of a delimited file with a header row that must name ``required``;
    blank rows are passed over, rows of the wrong width are counted in ``report`` and skipped."""
    header: list[str] | None = None
    for line, row in csv_rows(read_text(path), delimiter=delimiter):
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
                list_date=date_from_name(path),
            )
            out[key] = ent
        add_country(ent, rec.get("Country", "") or "US")
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
            list_date=date_from_name(path),
        )
        for a in rec.get("alt_names", "").split(";"):
            if a.strip() and a.strip() != name:
                ent.aliases.append(a.strip())
        for col in ("citizenships", "nationalities"):
            for c in rec.get(col, "").split(";"):
                add_country(ent, c)
        for addr in rec.get("addresses", "").split(";"):
            last = addr.rsplit(",", 1)[-1].strip()
            if len(last) == 2:
                add_country(ent, last)
        out.append(ent)
    report.entities = len(out)
    return out, report
