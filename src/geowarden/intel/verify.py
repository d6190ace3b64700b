"""Verifying a downloaded original: its format, its number of entries, and that number against
the same file in the last good download (a file with less than ``MIN_KEEP_RATIO`` of its old
entries is refused: a truncated or emptied list must not replace a good one).

Every check raises ``DownloadError`` with one line naming the remote and the reason.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import maxminddb

from geowarden.errors import DownloadError
from geowarden.intel.remotes import Check, Remote

MAX_BAD_LINES = 0.05  # a list with more than this share of lines that are not addresses is refused
MIN_KEEP_RATIO = 0.5  # a file with fewer than this share of the previous file's entries is refused

_MMDB_TYPES = {Check.MMDB_COUNTRY: "DBIP-Country-Lite", Check.MMDB_ASN: "DBIP-ASN-Lite"}
_RIR_NAME_RE = re.compile(r"delegated-([a-z]+)-extended")


def count_entries(remote: Remote, path: Path) -> int:
    """Verify the format of ``path`` and return its number of entries (raise DownloadError)."""
    try:
        match remote.check:
            case Check.MMDB_COUNTRY | Check.MMDB_ASN:
                return _count_mmdb(path, _MMDB_TYPES[remote.check])
            case Check.RIR:
                found = _RIR_NAME_RE.search(Path(remote.dest).name)
                return _count_rir(path, found.group(1) if found else "")
            case Check.JSON:
                return _count_json(path)
            case Check.LIST:
                return _count_list(path)
            case Check.GEOFEED:
                return _count_list(path, sep=",")
            case Check.SANCTIONS:
                from geowarden.intel.sanctions import count_parties  # noqa: PLC0415 - only for the lists

                return count_parties(path, Path(remote.dest).name)
    except DownloadError as exc:
        raise DownloadError(f"{remote.name}: {exc.message}") from None
    except (OSError, ValueError, maxminddb.InvalidDatabaseError) as exc:
        raise DownloadError(f"{remote.name}: unreadable: {one_line(exc)}") from None
    raise AssertionError(remote.check)  # pragma: no cover


def _count_mmdb(path: Path, expected_type: str) -> int:
    with maxminddb.open_database(str(path)) as reader:
        meta = reader.metadata()
    if not meta.database_type.startswith(expected_type):
        raise DownloadError(f"MMDB database_type is {meta.database_type!r}, expected {expected_type!r}")
    if meta.node_count <= 0:
        raise DownloadError("MMDB holds no networks")
    return int(meta.node_count)


def _count_rir(path: Path, registry: str) -> int:
    records = 0
    header: list[str] | None = None
    with path.open(encoding="utf-8", errors="replace") as fh:
        for raw in fh:
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            fields = line.split("|")
            if header is None:
                header = fields
                if len(fields) < 2 or fields[1] != registry:
                    raise DownloadError(f"not the RIR statistics of {registry!r} (header {line[:60]!r})")
                continue
            if len(fields) >= 7 and fields[2] in ("ipv4", "ipv6", "asn") and fields[1] != "*":
                records += 1
    if not records:
        raise DownloadError("no delegation records")
    return records


def _count_json(path: Path) -> int:
    try:
        doc = json.loads(path.read_bytes())
    except ValueError:
        raise DownloadError("not JSON") from None
    count = sum(1 for text in _strings(doc) if "/" in text and _is_network(text))
    if not count:
        raise DownloadError("JSON holds no networks")
    return count


def _strings(node: Any) -> Iterator[str]:
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _count_list(path: Path, sep: str | None = None) -> int:
    """Lines whose first field (split on ``sep``, whitespace by default) is an address or network."""
    good = bad = 0
    with path.open(encoding="utf-8", errors="replace") as fh:
        for raw in fh:
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            if _is_network(line.split(sep)[0].strip()):
                good += 1
            else:
                bad += 1
    if not good:
        raise DownloadError("no addresses in the list")
    if bad > MAX_BAD_LINES * (good + bad):
        raise DownloadError(f"{bad:,} of {good + bad:,} lines are not addresses")
    return good


def _is_network(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return True


def previous_file(remote: Remote, previous: Path) -> Path | None:
    pattern = remote.dest.replace("{date}", "*")
    if "*" not in pattern:
        path = previous / pattern
        return path if path.is_file() else None
    matches = sorted(previous.glob(pattern))
    return matches[-1] if matches else None


def check_shrink(remote: Remote, entries: int, before: Path | None) -> None:
    if before is None:
        return
    try:
        old = count_entries(remote, before)
    except DownloadError:
        return  # the old file no longer verifies: no baseline
    if entries < old * MIN_KEEP_RATIO:
        raise DownloadError(
            f"{remote.name}: {entries:,} entries, down from {old:,} in the last good download "
            f"(more than {1 - MIN_KEEP_RATIO:.0%} fewer): refused"
        )


def one_line(exc: BaseException) -> str:
    """An exception's text on one line (its type name when it has none)."""
    return " ".join(str(exc).split()) or type(exc).__name__
