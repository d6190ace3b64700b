"""The public originals that ``geowarden intel update`` downloads: the table in ``downloads.yaml``.

The table is data, not code: each entry says where a file lives, where it goes in the download
directory (the layout of ``shared/data``, so ``sources.discover`` reads it like any other source
directory), how it is verified and under which licence it comes. It is read and checked once;
anything wrong with it is a ``ConfigError`` of one line naming the file and the entry.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, fields
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from geowarden.errors import ConfigError

PACKAGED = "downloads.yaml"  # beside this module


class Check(enum.StrEnum):
    """How a downloaded file is verified (and its entries counted for the sanity check)."""

    MMDB_COUNTRY = "mmdb-country"  # MMDB whose database_type starts with "DBIP-Country-Lite"
    MMDB_ASN = "mmdb-asn"  # MMDB whose database_type starts with "DBIP-ASN-Lite"
    RIR = "rir"  # RIR delegated(-extended) statistics of the registry named in the file name
    JSON = "json"  # JSON document holding at least one network (CIDR) string
    LIST = "list"  # one address or network a line ('#' comments allowed)
    GEOFEED = "geofeed"  # RFC 8805 CSV: network,country,region,city,postal a line
    SANCTIONS = "sanctions"  # a sanctions list file, parsed as screening reads it (intel/sanctions.py)


@dataclass(frozen=True, slots=True, kw_only=True)
class Remote:
    """One public original that ``intel update`` downloads."""

    name: str  # stable id, used in the result and in messages
    url: str  # "{month}" stands for YYYY-MM of a monthly release (this month, else the last)
    dest: str  # path under the download directory; "{date}" stands for today's UTC date
    check: Check
    licence: str
    required: bool = False  # a required source that fails fails the whole update
    gzip: bool = False  # served gzip-compressed: stored decompressed
    md5: bool = False  # an MD5 checksum is published at url + ".md5"


_TEXT = ("name", "url", "dest", "licence")
_FLAGS = ("required", "gzip", "md5")
_KNOWN = frozenset(f.name for f in fields(Remote))


@cache
def packaged_remotes() -> tuple[Remote, ...]:
    """The table that installs with geowarden (read once per process)."""
    text = resources.files("geowarden.intel").joinpath(PACKAGED).read_text(encoding="utf-8")
    return parse_remotes(text, PACKAGED)


def load_remotes(path: Path) -> tuple[Remote, ...]:
    """A download table from a file of the same form as the packaged one."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}", file=str(path)) from None
    return parse_remotes(text, str(path))


def parse_remotes(text: str, origin: str) -> tuple[Remote, ...]:
    """Parse and check a download table; ``origin`` names it in error messages."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        where = f"{origin}:{line}" if line else origin
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise ConfigError(f"{where}: not valid YAML: {problem}", file=origin, line=line) from None
    entries = doc.get("remotes") if isinstance(doc, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{origin}: expected a non-empty list under 'remotes'", file=origin)
    out = [_remote(entry, f"{origin}: remotes[{i}]", origin) for i, entry in enumerate(entries)]
    names = [r.name for r in out]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"{origin}: duplicate remote names: {', '.join(dupes)}", file=origin)
    return tuple(out)


def _remote(entry: Any, where: str, origin: str) -> Remote:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: expected a mapping of name, url, dest, check, licence", file=origin)
    if isinstance(entry.get("name"), str):
        where = f"{where} ({entry['name']})"
    unknown = sorted(str(k) for k in entry if k not in _KNOWN)
    if unknown:
        raise ConfigError(f"{where}: unknown field {', '.join(unknown)}", file=origin)
    for key in (*_TEXT, "check"):
        value = entry.get(key)
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{where}: {key} must be a non-empty string", file=origin)
    for key in _FLAGS:
        if not isinstance(entry.get(key, False), bool):
            raise ConfigError(f"{where}: {key} must be true or false", file=origin)
    if not entry["url"].startswith("https://"):
        raise ConfigError(f"{where}: url must start with https://", file=origin)
    dest = Path(entry["dest"])
    if dest.is_absolute() or ".." in dest.parts:
        raise ConfigError(f"{where}: dest must be a relative path inside the download directory", file=origin)
    try:
        check = Check(entry["check"])
    except ValueError:
        known = ", ".join(c.value for c in Check)
        raise ConfigError(f"{where}: check {entry['check']!r} is not one of {known}", file=origin) from None
    return Remote(
        name=entry["name"],
        url=entry["url"],
        dest=entry["dest"],
        check=check,
        licence=entry["licence"],
        **{key: entry.get(key, False) for key in _FLAGS},
    )
