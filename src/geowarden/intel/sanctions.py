"""Sanctions lists as intel: installed beside the IP snapshots by ``intel build --from DIR``.

``DIR/sanctions/`` (the ``shared/data/sanctions`` layout: ``ofac/sdn.csv`` + ``alt.csv`` +
``add.csv``, ``ofac/consolidated/cons_*.csv``, ``un/consolidated.xml``, ``bis/dpl.txt``,
``csl/*.csv``) is parsed once to check it (a list nothing can be read from refuses the install,
and the lists installed before stay), then its recognised files are copied into a new version
directory ``$GEOWARDEN_HOME/intel/sanctions/<UTC stamp>/`` with ``lists.json`` (per list: rows,
parties, skipped rows, date), and ``intel/sanctions/current`` is switched to it in one rename.
Screening (``geowarden screen``, ``/v1/screen``, the screening signal) reads ``current`` when
``GEOWARDEN_SCREENING_DATA`` is not set (``Settings.screening_lists``); the index is built from it
once per process. The IP snapshot's own build (``intel/build.py``) is not touched.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from geowarden.errors import DownloadError, SourceError
from geowarden.screening.lists import load_directory
from geowarden.screening.ofac import parse_ofac
from geowarden.screening.trade import parse_csl, parse_dpl
from geowarden.screening.un import parse_un

SANCTIONS = "sanctions"  # under the intel directory, and under a build's --from directory
CURRENT = "current"
META = "lists.json"
KEEP = 3  # versions kept, the current one included

#: The files of the shared/data layout that screening reads (dated older copies are not).
FILES = (
    "ofac/sdn.csv",
    "ofac/alt.csv",
    "ofac/add.csv",
    "ofac/consolidated/cons_prim.csv",
    "ofac/consolidated/cons_alt.csv",
    "ofac/consolidated/cons_add.csv",
    "un/consolidated.xml",
    "bis/dpl.txt",
)
_UN_DATE = re.compile(rb'dateGenerated="(\d{4}-\d{2}-\d{2})')


def count_parties(path: Path, name: str = "") -> int:
    """Verify one downloaded list file by parsing it as screening does; its parties (primary
    files) or rows joined by id (the OFAC alias and address side tables). ``name`` is the file's
    name in the layout (``path`` may be a partial download). ``DownloadError`` (one line) when it
    holds none or is not in its format."""
    name = (name or path.name).lower()
    try:
        if name in ("alt.csv", "add.csv", "cons_alt.csv", "cons_add.csv"):
            with path.open(encoding="latin-1", newline="") as fh:
                n = sum(1 for row in csv.reader(fh) if row and row[0].strip().isdigit())
        else:
            parse = (
                parse_un
                if name.endswith(".xml")
                else parse_dpl
                if name.endswith(".txt")
                else parse_ofac
                if name in ("sdn.csv", "cons_prim.csv")
                else parse_csl
            )
            n = parse(path)[1].entities
    except (SourceError, csv.Error, UnicodeDecodeError) as exc:
        raise DownloadError(f"not a sanctions list as expected: {exc}") from None
    if n == 0:
        raise DownloadError("no listed party in the file")
    return n


def root(intel_dir: Path) -> Path:
    return intel_dir / SANCTIONS


def current(intel_dir: Path) -> Path | None:
    """The installed lists in use, or None when none were installed."""
    cur = root(intel_dir) / CURRENT
    return cur if cur.is_dir() else None


def _files(source: Path) -> list[Path]:
    found = [source / f for f in FILES if (source / f).is_file()]
    csl = source / "csl"
    return found + (sorted(csl.glob("*.csv")) if csl.is_dir() else [])


def _date(path: Path) -> str:
    """The date a list file describes: the UN list says when it was generated ("2026-02-27");
    the others carry no date in their format, so the file's modification date stands for it,
    marked as such ("2026-12-03 (file)")."""
    if path.suffix == ".xml":
        with path.open("rb") as fh:
            m = _UN_DATE.search(fh.read(4096))
        if m:
            return m.group(1).decode()
    return datetime.fromtimestamp(path.stat().st_mtime, UTC).date().isoformat() + " (file)"


def install(source: Path, intel_dir: Path, *, say: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Check the lists under ``source``, copy them into a new version and make it current.

    Raises ``SourceError`` (one line, naming the directory or file) when no list is recognised or
    a list yields no party; nothing is switched then."""
    entities, reports = load_directory(source)
    empty = [r.source for r in reports if r.entities == 0]
    if empty:
        raise SourceError(f"sanctions list without a readable party: {empty[0]}")
    base = root(intel_dir)
    base.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".installing-", dir=base))
    try:
        for f in _files(source):
            dest = tmp / f.relative_to(source)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, dest)
        lists = [
            {
                "file": _relative(Path(r.source), source),
                "rows": r.rows,
                "parties": r.entities,
                "skipped": len(r.skipped),
                "date": _date(Path(r.source)) if Path(r.source).is_file() else None,
            }
            for r in reports
        ]
        meta = {"installed_at": datetime.now(UTC).isoformat(timespec="seconds"), "from": str(source), "lists": lists}
        (tmp / META).write_text(json.dumps(meta, indent=1), encoding="utf-8")
        version = base / datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        tmp.replace(version)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    link = base / f".{CURRENT}-{os.getpid()}"
    link.unlink(missing_ok=True)
    link.symlink_to(version.name, target_is_directory=True)
    link.replace(base / CURRENT)  # one rename: readers see the old lists or the new, never neither
    _prune(base, version)
    if say:
        say(f"sanctions lists: {len(entities):,} parties from {len(reports)} lists installed")
    return info(intel_dir) or {}


def _relative(path: Path, source: Path) -> str:
    try:
        return path.relative_to(source).as_posix()
    except ValueError:
        return path.name


def _prune(base: Path, keep: Path) -> None:
    versions = sorted(p for p in base.iterdir() if p.is_dir() and not p.is_symlink() and not p.name.startswith("."))
    for old in versions[:-KEEP]:
        if old != keep:
            shutil.rmtree(old, ignore_errors=True)


def info(intel_dir: Path) -> dict[str, Any] | None:
    """What ``lists.json`` of the current lists says (per list: rows, parties, date), or None."""
    cur = current(intel_dir)
    if cur is None or not (cur / META).is_file():
        return None
    data: dict[str, Any] = json.loads((cur / META).read_text(encoding="utf-8"))
    data["path"] = str(cur.resolve())
    return data
