"""The official sanctions and restricted-party lists, read from a directory in their official formats.

Every parser yields :class:`~geowarden.screening.entity.Entity` objects and fills a
:class:`~geowarden.screening.entity.ParseReport`: rows read, entities made, rows skipped with
their line number and reason, and ids in side tables (aliases, addresses) that did not join a
primary row. A malformed row is counted and skipped, never
silently dropped and never fatal; an unreadable file raises a one-line ``SourceError``.

Formats (see ``docs/screening.md``), one module each:

- :mod:`.ofac`: OFAC SDN / consolidated (non-SDN) "legacy" CSVs: ``sdn.csv`` + ``alt.csv`` +
  ``add.csv`` (``cons_prim.csv`` + ``cons_alt.csv`` + ``cons_add.csv``).
- :mod:`.un`: UN Security Council consolidated XML.
- :mod:`.trade`: BIS Denied Persons List (``dpl.txt``) and Consolidated Screening List (trade.gov)
  CSV exports.

What they make, :class:`~geowarden.screening.entity.Entity` and
:class:`~geowarden.screening.entity.ParseReport`, is in :mod:`.entity`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from geowarden.errors import SourceError
from geowarden.screening.entity import OFAC_CONS, Entity, ParseReport
from geowarden.screening.ofac import parse_ofac
from geowarden.screening.trade import parse_csl, parse_dpl
from geowarden.screening.un import parse_un

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
