"""Country by registration: the five RIRs' delegations.

Two forms are recognised, each its own source:

``ipverse-rir``
    ``ip/ipverse-country/country/<cc>/aggregated.json`` (ipverse/rir-ip, CC0): per country,
    the aggregated allocated + assigned prefixes of all five RIRs, ``prefixes.ipv4/ipv6``.

``rir-delegated``
    The RIRs' own "delegated-extended" statistics, ``ip/rir/delegated-*-latest``
    (``registry|cc|type|start|value|date|status[|opaque-id[|extensions]]``). For ``ipv4`` the
    value is an address count (not always a power of two), for ``ipv6`` a prefix length. Only
    ``allocated`` and ``assigned`` records are kept; the version line, the ``summary`` lines and
    ``#`` comments are skipped, as are ``asn`` records and the ``available``/``reserved`` pool.
    A malformed record is counted in ``skipped``, never raised.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from geowarden.intel.sources.base import V4_BASE, SourceData, SourceKind, SourceMeta
from geowarden.intel.sources.lists import (
    Loader,
    add_networks,
    bounds,
    country,
    fail,
    finish,
    iso_date,
    read_json,
    read_text,
    rel,
)

IPVERSE_DIR = Path("ip/ipverse-country/country")
RIR_DIR = Path("ip/rir")

SOURCES: dict[str, SourceMeta] = {
    "ipverse-rir": SourceMeta(
        name="ipverse-rir",
        title="RIR delegations by country (ipverse/rir-ip)",
        kind=SourceKind.COUNTRY,
        licence="CC0-1.0",
        attribution=None,
        url="https://github.com/ipverse/rir-ip",
    ),
    "rir-delegated": SourceMeta(
        name="rir-delegated",
        title="RIR delegated-extended statistics",
        kind=SourceKind.COUNTRY,
        licence="NRO/RIR public statistics",
        attribution=None,
        url="https://www.nro.net/about/rirs/statistics/",
    ),
}

_KEEP_STATUS = frozenset({"allocated", "assigned"})


def _ipverse(files: list[Path], directory: Path) -> SourceData:
    data = SourceData(meta=finish(SOURCES["ipverse-rir"], directory, files))
    for path in files:
        doc = read_json(path, directory)
        prefixes = doc.get("prefixes") if isinstance(doc, dict) else None
        if not isinstance(prefixes, dict):
            raise fail(rel(path, directory), "no 'prefixes' object (not an ipverse country file)")
        cc = country(doc.get("countryCode")) or country(path.parent.name)
        for family in ("ipv4", "ipv6"):
            items = prefixes.get(family, [])
            if not isinstance(items, list):
                raise fail(rel(path, directory), f"'prefixes.{family}' is not a list")
            if cc is None:
                data.skipped += len(items)
                continue
            add_networks(data, items, cc)
    return data


def parse_delegated(data: SourceData, text: str) -> str | None:
    """Add the allocated/assigned ipv4/ipv6 records of one delegated file; return its date.

    The date is the version line's serial (``YYYYMMDD``) or, failing that, its end date.
    """
    date = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        f = line.split("|")
        if len(f) < 6:
            data.skipped += 1
            continue
        if f[0][:1].isdigit():  # version line: version|registry|serial|records|start|end|utc
            date = iso_date(f[2]) if len(f[2]) == 8 else None
            date = date or (iso_date(f[5]) if len(f) > 5 else None)
            continue
        if f[5] == "summary":
            continue
        if len(f) < 7:
            data.skipped += 1
            continue
        kind, status = f[2], f[6].strip().lower()
        if kind not in ("ipv4", "ipv6") or status not in _KEEP_STATUS:
            continue
        cc = country(f[1])
        if cc is None:
            data.skipped += 1
            continue
        try:
            if kind == "ipv4":
                count = int(f[4])
                first = _v4_start(f[3])
                last = first + count - 1
                if count < 1 or last > V4_BASE + 0xFFFF_FFFF:
                    raise ValueError(f"count {count} out of range")
                data.add(first, last, cc)
            else:
                length = int(f[4])
                if not 0 <= length <= 128:
                    raise ValueError(f"prefix length {length}")
                add_networks(data, [f"{f[3]}/{length}"], cc)  # counts a bad one in skipped
        except ValueError:
            data.skipped += 1
    return date


def _v4_start(text: str) -> int:
    if "/" in text or ":" in text:
        raise ValueError(f"not an IPv4 address: {text!r}")
    return bounds(text)[0]


def _delegated(files: list[Path], directory: Path) -> SourceData:
    data = SourceData(meta=SOURCES["rir-delegated"])
    dates = []
    for path in files:
        before = (len(data.first), data.skipped)
        date = parse_delegated(data, read_text(path, directory))
        if len(data.first) == before[0] and data.skipped > before[1]:
            raise fail(rel(path, directory), "no valid delegation record")
        if date:
            dates.append(date)
    data.meta = finish(SOURCES["rir-delegated"], directory, files, date=max(dates, default=None))
    return data


def loaders(directory: Path) -> list[Loader]:
    """The registry sources present under ``directory``, each with its parser (not yet run)."""
    out: list[Loader] = []
    ipverse = directory / IPVERSE_DIR
    if ipverse.is_dir():
        files = sorted(p for p in ipverse.glob("*/aggregated.json") if p.is_file())
        if files:
            out.append(("ipverse-rir", partial(_ipverse, files, directory)))
    rir = directory / RIR_DIR
    if rir.is_dir():
        files = sorted(p for p in rir.glob("delegated-*-latest") if p.is_file())
        if files:
            out.append(("rir-delegated", partial(_delegated, files, directory)))
    return out
