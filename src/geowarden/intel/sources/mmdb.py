"""MaxMind DB (MMDB) sources: DB-IP Lite country and ASN, iptoasn country and ASN.

Files under the build directory (``ip/``)::

    dbip-country-lite*.mmdb    dbip-country      country   record["country"]["iso_code"]
    dbip-asn-lite*.mmdb        dbip-asn          asn       autonomous_system_number/_organization
    iptoasn-country*.mmdb      iptoasn-country   country   record["country_code"]
    iptoasn-asn*.mmdb          iptoasn-asn       asn       autonomous_system_number/_organization

Records without a usable country (or ASN) are counted in ``skipped``; pseudo-codes such as
``ZZ`` or ``None`` are not countries. The date is the database's ``build_epoch``.

Reading every network through ``maxminddb``'s iterator decodes every record in full (DB-IP's
country records carry names in ten languages): ~8 s for DB-IP country. Instead the search tree
is walked here, level by level with numpy, and each *distinct* data record is decoded once
through the reader's public ``get``. The result is the same set of networks the reader's
iterator yields (IPv4 under ``::/96``, the ``::ffff:0:0/96`` and ``2002::/16`` aliases of the
IPv4 subtree skipped); it is checked against the iterator in the tests. Unusual files (a record
size other than 24, 28 or 32 bits) fall back to the iterator.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import maxminddb
import numpy as np
import numpy.typing as npt

from geowarden.intel.sources.base import V4_BASE, V4_LAST, SourceData, SourceKind, SourceMeta
from geowarden.intel.sources.lists import Loader, country, fail, finish, rel

IP_DIR = Path("ip")

_DBIP_ATTRIBUTION = "IP Geolocation by DB-IP (https://db-ip.com)"

SOURCES: dict[str, SourceMeta] = {
    "dbip-country": SourceMeta(
        name="dbip-country",
        title="DB-IP IP to Country Lite",
        kind=SourceKind.COUNTRY,
        licence="CC-BY-4.0",
        attribution=_DBIP_ATTRIBUTION,
        url="https://db-ip.com/db/download/ip-to-country-lite",
    ),
    "dbip-asn": SourceMeta(
        name="dbip-asn",
        title="DB-IP IP to ASN Lite",
        kind=SourceKind.ASN,
        licence="CC-BY-4.0",
        attribution=_DBIP_ATTRIBUTION,
        url="https://db-ip.com/db/download/ip-to-asn-lite",
    ),
    "iptoasn-country": SourceMeta(
        name="iptoasn-country",
        title="iptoasn country by BGP routing (sapics/ip-location-db)",
        kind=SourceKind.COUNTRY,
        licence="PDDL-1.0",
        attribution=None,
        url="https://github.com/sapics/ip-location-db/tree/main/iptoasn-country-mmdb",
    ),
    "iptoasn-asn": SourceMeta(
        name="iptoasn-asn",
        title="iptoasn ASN by BGP routing (sapics/ip-location-db)",
        kind=SourceKind.ASN,
        licence="PDDL-1.0",
        attribution=None,
        url="https://github.com/sapics/ip-location-db/tree/main/iptoasn-asn-mmdb",
    ),
}

#: Source name -> file name pattern under ``ip/`` (the last match in name order is read).
FILES = {
    "dbip-country": "dbip-country-lite*.mmdb",
    "dbip-asn": "dbip-asn-lite*.mmdb",
    "iptoasn-country": "iptoasn-country*.mmdb",
    "iptoasn-asn": "iptoasn-asn*.mmdb",
}


def _dbip_country(record: Any) -> str | None:
    sub = record.get("country") if isinstance(record, dict) else None
    return country(sub.get("iso_code")) if isinstance(sub, dict) else None


def _flat_country(record: Any) -> str | None:
    return country(record.get("country_code")) if isinstance(record, dict) else None


def _asn(record: Any) -> tuple[int, str] | None:
    if not isinstance(record, dict):
        return None
    number = record.get("autonomous_system_number")
    if not isinstance(number, int) or isinstance(number, bool) or not 0 < number < 1 << 32:
        return None
    org = record.get("autonomous_system_organization")
    return number, org.strip() if isinstance(org, str) else ""


_VALUE: dict[str, Callable[[Any], Any]] = {
    "dbip-country": _dbip_country,
    "dbip-asn": _asn,
    "iptoasn-country": _flat_country,
    "iptoasn-asn": _asn,
}

# -- the search tree -------------------------------------------------------------------------

_U64 = npt.NDArray[np.uint64]


def _nodes(buf: bytes, node_count: int, record_size: int) -> tuple[_U64, _U64]:
    """Left and right records of every node of the search tree."""
    width = record_size * 2 // 8
    raw = np.frombuffer(buf, dtype=np.uint8, count=node_count * width).reshape(node_count, width)
    b = raw.astype(np.uint64)

    def be(cols: range) -> _U64:
        out = np.zeros(node_count, dtype=np.uint64)
        for c in cols:
            out = (out << np.uint64(8)) | b[:, c]
        return out

    if record_size == 24:
        return be(range(3)), be(range(3, 6))
    if record_size == 28:
        mid = b[:, 3]
        left = ((mid >> np.uint64(4)) << np.uint64(24)) | be(range(3))
        right = ((mid & np.uint64(0x0F)) << np.uint64(24)) | be(range(4, 7))
        return left, right
    return be(range(4)), be(range(4, 8))


#: What :func:`walk_tree` returns: first keys, last keys, data pointers, networks left out
#: (a prefix shorter than /96 spanning the IPv4 space: not an address range of either family),
#: and the open reader.
Walk = tuple[list[int], list[int], list[int], int, Any]

#: Leaves found at one depth: high and low 64 bits of the network, data pointers, prefix length.
_Leaves = tuple[_U64, _U64, _U64, int]


def _bfs(left: _U64, right: _U64, node_count: int, bits: int, ipv4_start: int) -> list[_Leaves]:
    """Walk the tree one level at a time; return the data leaves of every level."""
    count = np.uint64(node_count)
    nodes = np.zeros(1, dtype=np.int64)
    hi = np.zeros(1, dtype=np.uint64)
    lo = np.zeros(1, dtype=np.uint64)
    leaves: list[_Leaves] = []
    for depth in range(bits):
        if not len(nodes):
            break
        bit = bits - 1 - depth
        c_nodes = np.concatenate((left[nodes], right[nodes]))
        if bit >= 64:
            c_hi = np.concatenate((hi, hi | np.uint64(1 << (bit - 64))))
            c_lo = np.concatenate((lo, lo))
        else:
            c_hi = np.concatenate((hi, hi))
            c_lo = np.concatenate((lo, lo | np.uint64(1 << bit)))
        keep = np.ones(len(c_nodes), dtype=bool)
        if bits == 128:  # the ::ffff:0:0/96 and 2002::/16 aliases point back at the IPv4 tree
            keep = ~((c_nodes == np.uint64(ipv4_start)) & ((c_hi | c_lo) != 0))
        leaf = keep & (c_nodes > count)
        if leaf.any():
            leaves.append((c_hi[leaf], c_lo[leaf], c_nodes[leaf], depth + 1))
        inner = keep & (c_nodes < count)
        nodes, hi, lo = c_nodes[inner].astype(np.int64), c_hi[inner], c_lo[inner]
    return leaves


def walk_tree(path: Path) -> Walk:
    """Every network of an MMDB file that has data, in address order.

    Keys are in the unified space (IPv4 at ``V4_BASE``). The pointers are opaque ids: networks
    with the same pointer share one record, which the caller decodes with ``reader.get`` on one
    of its addresses. The reader is returned open.
    """
    reader = maxminddb.open_database(str(path))
    meta = reader.metadata()
    node_count, record_size, version = meta.node_count, meta.record_size, meta.ip_version
    if record_size not in (24, 28, 32) or version not in (4, 6):
        reader.close()
        raise NotImplementedError(f"record size {record_size}, IP version {version}")
    try:
        left, right = _nodes(path.read_bytes(), node_count, record_size)
        bits = 128 if version == 6 else 32
        ipv4_start = 0
        if version == 6:  # where ::/96 leads: the IPv4 subtree
            for _ in range(96):
                if ipv4_start >= node_count:
                    break
                ipv4_start = int(left[ipv4_start])
        leaves = _bfs(left, right, node_count, bits, ipv4_start)
    except BaseException:
        reader.close()
        raise
    if not leaves:
        return [], [], [], 0, reader
    all_hi = np.concatenate([x[0] for x in leaves])
    all_lo = np.concatenate([x[1] for x in leaves])
    ptrs = np.concatenate([x[2] for x in leaves])
    depths = np.concatenate([np.full(len(x[0]), x[3], dtype=np.int64) for x in leaves])
    order = np.lexsort((all_lo, all_hi))
    firsts: list[int] = []
    lasts: list[int] = []
    pointers: list[int] = []
    odd = 0
    for h, low, p, d in zip(
        all_hi[order].tolist(),
        all_lo[order].tolist(),
        ptrs[order].tolist(),
        depths[order].tolist(),
        strict=True,
    ):
        start = (h << 64) | low
        if version == 4:
            first, size = V4_BASE + start, 1 << (32 - d)
        elif h == 0 and low >> 32 == 0 and d >= 96:  # ::/96 is IPv4
            first, size = V4_BASE + start, 1 << (128 - d)
        elif start <= V4_LAST and d < 96:  # a prefix spanning ::/96 or ::ffff:0:0/96
            odd += 1
            continue
        else:
            first, size = start, 1 << (128 - d)
        firsts.append(first)
        lasts.append(first + size - 1)
        pointers.append(p)
    return firsts, lasts, pointers, odd, reader


def _address(key: int) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    if V4_BASE <= key <= V4_LAST:
        return ipaddress.IPv4Address(key - V4_BASE)
    return ipaddress.IPv6Address(key)


def _read(name: str, path: Path, directory: Path) -> SourceData:
    value_of = _VALUE[name]
    where = rel(path, directory)
    try:
        firsts, lasts, pointers, odd, reader = walk_tree(path)
    except NotImplementedError:
        return _read_iterating(name, path, directory)
    except (OSError, ValueError, RuntimeError, IndexError) as exc:
        # maxminddb.InvalidDatabaseError is a RuntimeError
        raise fail(where, f"not a readable MaxMind DB: {exc}") from exc
    data = SourceData(meta=_meta(name, reader, path, directory), skipped=odd)
    try:
        values: dict[int, Any] = {}
        for first, last, ptr in zip(firsts, lasts, pointers, strict=True):
            if ptr in values:
                value = values[ptr]
            else:
                value = values[ptr] = value_of(reader.get(_address(first)))
            if value is None:
                data.skipped += 1
            else:
                data.add(first, last, value)
    except (ValueError, RuntimeError) as exc:
        raise fail(where, f"corrupt MaxMind DB: {exc}") from exc
    finally:
        reader.close()
    return data


def _read_iterating(name: str, path: Path, directory: Path) -> SourceData:
    """The plain way: iterate the reader (decodes every record). Also the tests' reference."""
    value_of = _VALUE[name]
    where = rel(path, directory)
    try:
        reader = maxminddb.open_database(str(path))
    except (OSError, ValueError, RuntimeError) as exc:
        raise fail(where, f"not a readable MaxMind DB: {exc}") from exc
    data = SourceData(meta=_meta(name, reader, path, directory))
    try:
        for network, record in reader:
            value = value_of(record)
            if value is None:
                data.skipped += 1
                continue
            base = V4_BASE if network.version == 4 else 0
            first = base + int(network.network_address)
            data.add(first, first + network.num_addresses - 1, value)
    except (ValueError, RuntimeError) as exc:
        raise fail(where, f"corrupt MaxMind DB: {exc}") from exc
    finally:
        reader.close()
    return data


def _meta(name: str, reader: Any, path: Path, directory: Path) -> SourceMeta:
    epoch = reader.metadata().build_epoch
    date = datetime.fromtimestamp(epoch, UTC).date().isoformat() if epoch else None
    return finish(SOURCES[name], directory, [path], date=date)


def read_mmdb(name: str, path: Path, directory: Path, *, iterate: bool = False) -> SourceData:
    """Parse one MMDB source (``name`` in ``SOURCES``) from ``path``.

    ``iterate=True`` uses maxminddb's own iterator instead of the tree walk (slower; the same
    result).
    """
    data = _read_iterating(name, path, directory) if iterate else _read(name, path, directory)
    if not len(data):  # readable metadata over a damaged or empty tree: nothing in it is usable
        raise fail(rel(path, directory), "no network in the database (damaged or empty)")
    return data


def loaders(directory: Path) -> list[Loader]:
    """The MMDB sources present under ``directory``, each with its parser (not yet run)."""
    out: list[Loader] = []
    ip_dir = directory / IP_DIR
    if not ip_dir.is_dir():
        return out
    for name, pattern in FILES.items():
        matches = sorted(p for p in ip_dir.glob(pattern) if p.is_file())
        if matches:
            out.append((name, partial(read_mmdb, name, matches[-1], directory)))
    return out
