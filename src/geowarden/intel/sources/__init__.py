"""Source parsers: turn each public data file into :class:`SourceData` for the builder.

:func:`discover` recognises every known source under a directory laid out like
``shared/data`` (``ip/``, ``anonymizers/``, ``cloud/``); :data:`KNOWN_SOURCES` describes each
(title, kind, licence, attribution, url of the public original) for ``geowarden intel info``.
The default sources, installed with the package, are in :mod:`.pypi`.

Source names are stable lower-case ids. Families named per provider (``ipranges-<provider>``,
``cloud-more-<provider>``, ``x4bnet-vpn-<provider>``) list the providers known today; a new
file in such a family is still recognised, as ``hosting`` (``vpn`` for X4BNet) under its file
name.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Collection
from pathlib import Path

from geowarden.errors import SourceError
from geowarden.intel.sources import cloud, lists, mmdb, pypi, ranges, registry
from geowarden.intel.sources.base import SourceData, SourceKind, SourceMeta
from geowarden.intel.sources.lists import Loader

__all__ = [
    "KNOWN_SOURCES",
    "SourceData",
    "SourceKind",
    "SourceMeta",
    "discover",
    "known_source",
    "loaders",
]

#: Every source geowarden knows by name: metadata without date or files (those come from the
#: data when it is read). Ordered: countries and ASNs, anonymisers, clouds, the defaults.
KNOWN_SOURCES: dict[str, SourceMeta] = {
    **mmdb.SOURCES,
    **registry.SOURCES,
    **lists.SOURCES,
    **cloud.SOURCES,
    **pypi.SOURCES,
}


def known_source(name: str) -> SourceMeta | None:
    """Metadata of a source by name, including per-provider names not listed in the table."""
    if name in KNOWN_SOURCES:
        return KNOWN_SOURCES[name]
    if name.startswith("ipranges-"):
        return ranges.ipranges_meta(name.removeprefix("ipranges-"))
    if name.startswith("cloud-more-"):
        return ranges.more_meta(name.removeprefix("cloud-more-"))
    return None


def loaders(directory: Path) -> list[Loader]:
    """Every source recognised under ``directory``, each with its parser, not yet run."""
    return [
        *mmdb.loaders(directory),
        *registry.loaders(directory),
        *lists.loaders(directory),
        *cloud.loaders(directory),
    ]


def _excluded(name: str, exclude: Collection[str]) -> bool:
    return any(name == pattern or fnmatch.fnmatchcase(name, pattern) for pattern in exclude)


def discover(directory: Path, *, exclude: Collection[str] = ()) -> list[SourceData]:
    """Parse every known source found under ``directory``, except those in ``exclude``.

    ``exclude`` holds source names or shell-style patterns (``cloud-more-*``); an excluded
    source is not read at all. Missing files are simply not recognised. Raises SourceError
    when ``directory`` is not a directory, or when a file that is present cannot be read or
    parsed (the message names the file, relative to ``directory``, and the reason, on one line).
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise SourceError(f"{directory}: not a directory")
    out = []
    for name, load in loaders(directory):
        if _excluded(name, exclude):
            continue
        try:
            out.append(load())
        except SourceError:
            raise
        except (KeyError, TypeError, AttributeError, IndexError, ValueError, RecursionError) as exc:
            # a shape no parser check foresaw: still one line, still a SourceError
            detail = " ".join(f"{type(exc).__name__}: {exc}".split())
            raise SourceError(f"{name}: cannot parse its files under {directory}: {detail}") from exc
    return out
