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
import unicodedata
from collections.abc import Iterable
from pathlib import Path

from geowarden.errors import SourceError
from geowarden.screening.entity import ParseReport
from geowarden.screening.lists import load_directory
from geowarden.screening.match import MATCH, POSSIBLE, Match, NameIndex
from geowarden.screening.names import normalise

ENV_VAR = "GEOWARDEN_SCREENING_DATA"

_lock = threading.Lock()
_cache: dict[Path, tuple[NameIndex, list[ParseReport]]] = {}


def data_dir(directory: str | Path | None = None) -> Path:
    """The list directory given, checked; a ``SourceError`` without one."""
    raw = directory
    if not raw:
        raise SourceError(
            f"no sanctions lists: install them with `geowarden intel build --from DIR` (DIR/sanctions/), "
            f"pass a directory or set {ENV_VAR}"
        )
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
            # A new version of installed lists (intel/sanctions/<stamp>) replaces the old one's index.
            for old in [p for p in _cache if p.parent == path.parent]:
                del _cache[old]
            _cache[path] = hit
    return hit[0]


def load_reports(directory: str | Path | None = None) -> list[ParseReport]:
    """What parsing the lists found (rows, skipped rows, unjoined ids) for the cached index."""
    load_index(directory)
    return _cache[data_dir(directory).resolve()][1]


def clear_cache() -> None:
    with _lock:
        _cache.clear()


#: Names screened together: the candidates of a batch are bounded in one vectorised pass.
_BATCH = 256

#: Longest name screened; a longer one is a per-name problem, not a crash or a slow scan.
MAX_NAME_CHARS = 1000
_CONTROL = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})


def name_problem(name: str) -> str | None:
    """Why a name cannot be screened (one line, without the name), or None when it can.

    Empty or blank names, names over ``MAX_NAME_CHARS`` characters, control or unassigned
    characters, and names with no letter or digit (emoji alone) are problems; mixed scripts and
    emoji beside letters are not (the emoji are ignored)."""
    if not name.strip():
        return "empty name"
    if len(name) > MAX_NAME_CHARS:
        return f"name longer than {MAX_NAME_CHARS} characters ({len(name)})"
    bad = next((ch for ch in name if unicodedata.category(ch) in _CONTROL and ch not in "\u200c\u200d"), None)
    if bad is not None:
        return f"control or unassigned character U+{ord(bad):04X} in name"
    if not normalise(name).tokens:
        return "no letter or digit in name"
    return None


def verdict(score: float) -> str:
    """``match`` (a policy may block), ``possible`` (for a reviewer) or ``none``."""
    return "match" if score >= MATCH else "possible" if score >= POSSIBLE else "none"


def screen_one(
    index: NameIndex, name: str, country: str | None = None, *, threshold: float = POSSIBLE, limit: int = 10
) -> dict[str, object]:
    """The DESIGN ``geowarden screen`` contract for one name: ``query``, ``verdict`` and its
    ``matches`` (``name``, ``list``, ``score``, ``entity_id``, ``explanation``, ``verdict``), best
    first; or ``verdict`` None and a ``problem`` when the name cannot be screened."""
    problem = name_problem(name)
    if problem is not None:
        return {"query": name[:200], "verdict": None, "problem": problem, "matches": []}
    return _answer(name, index.search(name, country=country, threshold=min(threshold, POSSIBLE), limit=limit))


def _answer(name: str, found: list[Match]) -> dict[str, object]:
    """The contract's answer for one screened name from its matches (best first)."""
    matches = [m.to_dict() | {"verdict": verdict(m.score)} for m in found]
    best = found[0].score if found else 0.0
    return {"query": name, "verdict": verdict(best), "score": round(best, 4), "matches": matches}


def screen_names(
    names: Iterable[str],
    country: str | None = None,
    *,
    directory: str | Path | None = None,
    threshold: float = POSSIBLE,
    limit: int = 10,
    index: NameIndex | None = None,
) -> list[dict[str, object]]:
    """Per name, in input order, :func:`screen_one`'s answer; a name that cannot be screened
    gets its ``problem`` and every other name is still answered."""
    idx = index if index is not None else load_index(directory)
    names = list(names)
    out: list[dict[str, object]] = [{} for _ in names]
    todo: list[int] = []
    for i, name in enumerate(names):
        problem = name_problem(name)
        if problem is None:
            todo.append(i)
        else:
            out[i] = {"query": name[:200], "verdict": None, "problem": problem, "matches": []}
    for start in range(0, len(todo), _BATCH):
        part = todo[start : start + _BATCH]
        found = idx.search_many(
            [names[i] for i in part], country=country, threshold=min(threshold, POSSIBLE), limit=limit
        )
        for i, ms in zip(part, found, strict=True):
            out[i] = _answer(names[i], ms)
    return out
