"""The screening core behind ``geowarden screen``: build or load the index, screen names.

The lists do not install with the package (a later ``geowarden intel update`` downloads them).
The index is built from a directory in the ``../shared/data/sanctions`` layout (see
``lists.load_directory``), the one the caller gives (the CLI and the service pass
``GEOWARDEN_SCREENING_DATA`` from the settings); without one, a one-line ``SourceError``. It is
built once per process and per directory (about 1.5 s for the full SDN + consolidated + UN + DPL
+ CSL lists) and then shared.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path

from geowarden.errors import SourceError
from geowarden.screening.entity import ParseReport
from geowarden.screening.lists import load_directory
from geowarden.screening.match import WEAK, NameIndex

ENV_VAR = "GEOWARDEN_SCREENING_DATA"

_lock = threading.Lock()
_cache: dict[Path, tuple[NameIndex, list[ParseReport]]] = {}


def data_dir(directory: str | Path | None = None) -> Path:
    """The list directory given, checked; a ``SourceError`` without one."""
    raw = directory
    if not raw:
        raise SourceError(f"no sanctions lists configured: pass a directory or set {ENV_VAR}")
    path = Path(raw).expanduser()
    if not path.is_dir():
        raise SourceError(f"sanctions list directory not found: {path}")
    return path


def build_index(directory: str | Path | None = None) -> tuple[NameIndex, list[ParseReport]]:
    """Parse every list under the directory and index it (no caching)."""
    entities, reports = load_directory(data_dir(directory))
    return NameIndex(entities), reports


def load_index(directory: str | Path | None = None) -> NameIndex:
    """The index for the directory, built on first use and cached for the process."""
    path = data_dir(directory).resolve()
    with _lock:
        hit = _cache.get(path)
        if hit is None:
            hit = build_index(path)
            _cache[path] = hit
    return hit[0]


def load_reports(directory: str | Path | None = None) -> list[ParseReport]:
    """What parsing the lists found (rows, skipped rows, unjoined ids) for the cached index."""
    load_index(directory)
    return _cache[data_dir(directory).resolve()][1]


def clear_cache() -> None:
    with _lock:
        _cache.clear()


def screen_names(
    names: Iterable[str],
    country: str | None = None,
    *,
    directory: str | Path | None = None,
    threshold: float = WEAK,
    limit: int = 10,
    index: NameIndex | None = None,
) -> list[list[dict[str, object]]]:
    """Per name, in input order, its matches (``name``, ``list``, ``score``, ``entity_id``,
    ``explanation``), best first; an empty list when nothing scores ``threshold`` or more."""
    idx = index if index is not None else load_index(directory)
    return [[m.to_dict() for m in idx.search(n, country=country, threshold=threshold, limit=limit)] for n in names]
