"""Plain address lists and the anonymiser data (X4BNet, az0/vpn_ip, Tor exits).

Also home of the small helpers every file-reading parser shares: reading a file into text or
JSON with one-line :class:`~geowarden.errors.SourceError` messages, parsing a network with a
fast path for plain IPv4, and counting malformed lines in ``SourceData.skipped``.

Layout under the build directory (that of ``shared/data``)::

    anonymizers/x4bnet/output_vpn_ipv{4,6}.txt          x4bnet-vpn         vpn
    anonymizers/x4bnet/output_datacenter_ipv{4,6}.txt   x4bnet-datacenter  hosting
    anonymizers/x4bnet/input_vpn_ips_<provider>.txt     x4bnet-vpn-<p>     vpn (apple: relay)
    anonymizers/x4bnet/input_datacenter_ips_<p>.txt     x4bnet-datacenter-<p>
    anonymizers/x4bnet/input_datacenter_ASN.txt         x4bnet-hosting-asn asn_label hosting
    anonymizers/x4bnet/input_vpn_ASN.txt                x4bnet-vpn-asn     asn_label vpn
    anonymizers/vpn-exits/exits.txt                     vpn-exits          vpn
    anonymizers/tor/exit-nodes-<YYYY-MM-DD>.txt         tor-exits          tor (newest file)

X4BNet's datacenter output includes its VPN blocks (it lists "not an eyeball network"), so
``x4bnet-datacenter`` is ``hosting`` and the VPN blocks are ``vpn`` through ``x4bnet-vpn`` too.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import Any

from geowarden.errors import SourceError
from geowarden.intel.sources.base import (
    V4_BASE,
    SourceData,
    SourceKind,
    SourceMeta,
    network_bounds,
)

#: A parser ready to run: (source name, function that parses it).
Loader = tuple[str, Callable[[], SourceData]]

# -- shared helpers --------------------------------------------------------------------------


def rel(path: Path, directory: Path) -> str:
    """``path`` relative to the build directory, in POSIX form (for messages and metadata)."""
    try:
        return path.relative_to(directory).as_posix()
    except ValueError:
        return path.as_posix()


def fail(path: str, reason: str) -> SourceError:
    """A one-line SourceError naming the file."""
    return SourceError(f"{path}: {' '.join(reason.split())}")


def read_text(path: Path, directory: Path) -> str:
    """The file's text (UTF-8, BOM tolerated); SourceError if it cannot be read or decoded."""
    try:
        return path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise fail(rel(path, directory), f"cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise fail(rel(path, directory), f"not UTF-8 text (byte {exc.start})") from exc


def read_json(path: Path, directory: Path) -> Any:
    """The file parsed as JSON; SourceError if unreadable or not valid JSON."""
    text = read_text(path, directory)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise fail(rel(path, directory), f"not valid JSON: {exc}") from exc


def json_list(doc: Any, *path: str) -> list[Any]:
    """``doc[path[0]][path[1]]...`` if that is a list, else ValueError naming the path."""
    node = doc
    for key in path:
        if not isinstance(node, dict) or key not in node:
            raise ValueError(f"no '{'.'.join(path)}'")
        node = node[key]
    if not isinstance(node, list):
        raise ValueError(f"'{'.'.join(path)}' is not a list")
    return node


def bounds(text: str) -> tuple[int, int]:
    """Inclusive key bounds of a network or address, like ``network_bounds`` but faster.

    Plain dotted-quad IPv4 (with an optional decimal prefix length) is parsed with string
    operations; everything else goes through ``ipaddress``. Raises ``ValueError`` when invalid.
    """
    addr, sep, plen = text.partition("/")
    parts = addr.split(".")
    if len(parts) == 4 and (not sep or (plen.isascii() and plen.isdigit() and len(plen) <= 2)):
        value = 0
        for part in parts:
            if not (part.isascii() and part.isdigit() and len(part) <= 3) or (len(part) > 1 and part[0] == "0"):
                return network_bounds(text)  # let ipaddress decide (and explain)
            octet = int(part)
            if octet > 255:
                return network_bounds(text)
            value = (value << 8) | octet
        length = int(plen) if sep else 32
        if length > 32:
            return network_bounds(text)
        size = 1 << (32 - length)
        first = value & ~(size - 1)
        return V4_BASE + first, V4_BASE + first + size - 1
    return network_bounds(text)


def add_networks(data: SourceData, items: Iterable[object], value: Any) -> int:
    """Add each network in ``items`` with ``value``; count malformed ones in ``skipped``.

    Returns how many were added.
    """
    added = 0
    for item in items:
        if not isinstance(item, str):
            data.skipped += 1
            continue
        try:
            first, last = bounds(item.strip())
        except ValueError:
            data.skipped += 1
            continue
        data.add(first, last, value)
        added += 1
    return added


def list_lines(text: str) -> list[str]:
    """Non-blank lines with ``#`` and ``;`` comments and surrounding whitespace removed."""
    out = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].split(";", 1)[0].strip()
        if line:
            out.append(line)
    return out


def add_list_file(data: SourceData, path: Path, directory: Path, value: Any) -> None:
    """Add every network of a one-network-a-line file.

    A file with malformed lines and not one valid network is not a list at all: SourceError.
    """
    lines = list_lines(read_text(path, directory))
    before = data.skipped
    if add_networks(data, lines, value) == 0 and data.skipped > before:
        raise fail(rel(path, directory), f"no valid network ({data.skipped - before} bad lines)")


def finish(template: SourceMeta, directory: Path, files: Iterable[Path], **changes: Any) -> SourceMeta:
    """The template's metadata with the files read (relative paths) and any other changes."""
    names = tuple(rel(f, directory) for f in files)
    return dataclasses.replace(template, files=names, **changes)


#: Country pseudo-codes that are not a country: unknown, user-assigned, RIR region codes.
NOT_COUNTRIES = frozenset({"ZZ", "XX", "EU", "AP", "AA", "QO", "UN", "NONE", "NULL", "--"})


def country(value: object) -> str | None:
    """``value`` as an upper-case ISO 3166-1 alpha-2 code, or None if it is not one."""
    if not isinstance(value, str):
        return None
    code = value.strip().upper()
    if len(code) != 2 or not (code.isascii() and code.isalpha()) or code in NOT_COUNTRIES:
        return None
    return "GB" if code == "UK" else code  # "UK" is common in geofeeds; ISO says GB


def iso_date(text: str) -> str | None:
    """The first date in ``text`` (``YYYY-MM-DD`` or ``YYYYMMDD``) as ISO ``YYYY-MM-DD``, if any."""
    m = re.search(r"(\d{4})-?(\d{2})-?(\d{2})", text)
    if m is None:
        return None
    y, mo, d = m.groups()
    if not ("01" <= mo <= "12" and "01" <= d <= "31"):
        return None
    return f"{y}-{mo}-{d}"


# -- source metadata -------------------------------------------------------------------------

_X4BNET_URL = "https://github.com/X4BNet/lists_vpn"
_X4BNET_LICENCE = "MIT"
_X4BNET_ATTR = "X4BNet lists_vpn (MIT)"

#: X4BNet per-provider input lists: file slug -> (label, provider name).
X4BNET_PROVIDERS: dict[str, tuple[str, str]] = {
    "apple": ("relay", "Apple iCloud Private Relay"),
    "mullvadvpn": ("vpn", "Mullvad VPN"),
    "pia": ("vpn", "Private Internet Access"),
    "protonvpn": ("vpn", "Proton VPN"),
}


def _x4b(name: str, title: str, kind: SourceKind = SourceKind.LABEL) -> SourceMeta:
    return SourceMeta(
        name=name,
        title=title,
        kind=kind,
        licence=_X4BNET_LICENCE,
        attribution=_X4BNET_ATTR,
        url=_X4BNET_URL,
    )


def _x4b_provider(prefix: str, slug: str) -> SourceMeta:
    label, provider = X4BNET_PROVIDERS.get(slug, ("vpn", slug))
    what = "datacenter" if prefix == "x4bnet-datacenter" else "VPN"
    return _x4b(f"{prefix}-{slug}", f"X4BNet {what} input: {provider} ({label})")


SOURCES: dict[str, SourceMeta] = {
    "x4bnet-vpn": _x4b("x4bnet-vpn", "X4BNet VPN netblocks"),
    "x4bnet-datacenter": _x4b("x4bnet-datacenter", "X4BNet datacenter (non-eyeball) netblocks"),
    **{f"x4bnet-vpn-{s}": _x4b_provider("x4bnet-vpn", s) for s in X4BNET_PROVIDERS},
    "x4bnet-datacenter-protonvpn": _x4b_provider("x4bnet-datacenter", "protonvpn"),
    "x4bnet-hosting-asn": _x4b("x4bnet-hosting-asn", "X4BNet datacenter ASNs", kind=SourceKind.ASN_LABEL),
    "x4bnet-vpn-asn": _x4b("x4bnet-vpn-asn", "X4BNet VPN ASNs", kind=SourceKind.ASN_LABEL),
    "vpn-exits": SourceMeta(
        name="vpn-exits",
        title="VPN exit IPs by provider (az0/vpn_ip)",
        kind=SourceKind.LABEL,
        licence="GPL-3.0",
        attribution="az0/vpn_ip (GPL-3.0)",
        url="https://github.com/az0/vpn_ip",
    ),
    "tor-exits": SourceMeta(
        name="tor-exits",
        title="Tor exit relays (doodad-labs/tor-nodes)",
        kind=SourceKind.LABEL,
        licence="GPL-3.0",
        attribution="doodad-labs/tor-nodes (GPL-3.0); data: The Tor Project",
        url="https://github.com/doodad-labs/tor-nodes",
    ),
}

# -- parsers ---------------------------------------------------------------------------------

X4BNET_DIR = Path("anonymizers/x4bnet")
VPN_EXITS_FILE = Path("anonymizers/vpn-exits/exits.txt")
TOR_DIR = Path("anonymizers/tor")

#: The placeholder address az0/vpn_ip carries in its list; not a VPN exit.
VPN_EXITS_PLACEHOLDERS = frozenset({"1.2.3.4"})


def _label_files(meta: SourceMeta, directory: Path, files: list[Path], value: tuple[str, str]) -> SourceData:
    data = SourceData(meta=finish(meta, directory, files))
    for f in files:
        add_list_file(data, f, directory, value)
    return data


def _asn_labels(name: str, path: Path, directory: Path, label: str, fallback: str) -> SourceData:
    """``AS45090 # Tencent cloud ...`` lines: the comment names the provider."""
    data = SourceData(meta=finish(SOURCES[name], directory, [path]))
    for raw in read_text(path, directory).splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        head, _, comment = line.partition("#")
        token = head.strip().upper().removeprefix("AS")
        if not (token.isascii() and token.isdigit()) or not 0 < int(token) < 1 << 32:
            data.skipped += 1
            continue
        asn = int(token)
        if asn not in data.asn_labels:  # the first (usually the more detailed) comment wins
            data.asn_labels[asn] = (label, comment.strip() or fallback)
    if not data.asn_labels and data.skipped:
        raise fail(rel(path, directory), f"no valid ASN ({data.skipped} bad lines)")
    return data


def _vpn_exits(path: Path, directory: Path) -> SourceData:
    """``IP # provider[,provider...]`` lines; the first line is a ``# <timestamp>`` comment."""
    text = read_text(path, directory)
    date = None
    data = SourceData(meta=SOURCES["vpn-exits"])
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            date = date or iso_date(line)
            continue
        addr, _, provider = line.partition("#")
        addr = addr.strip()
        if addr in VPN_EXITS_PLACEHOLDERS:
            continue
        try:
            first, last = bounds(addr)
        except ValueError:
            data.skipped += 1
            continue
        names = ", ".join(p.strip() for p in provider.split(",") if p.strip())
        data.add(first, last, ("vpn", names or "VPN (az0/vpn_ip)"))
    if not data.first and data.skipped:
        raise fail(rel(path, directory), f"no valid address ({data.skipped} bad lines)")
    data.meta = finish(SOURCES["vpn-exits"], directory, [path], date=date)
    return data


def _tor_exits(path: Path, directory: Path) -> SourceData:
    """One address a line (the bulk exit list); ``ExitAddress <ip> ...`` lines also work."""
    data = SourceData(meta=finish(SOURCES["tor-exits"], directory, [path], date=iso_date(path.name)))
    lines = list_lines(read_text(path, directory))
    addrs = [
        line.split()[1] if line.startswith("ExitAddress ") and len(line.split()) > 1 else line
        for line in lines
        if not line.startswith(("ExitNode ", "Published ", "LastStatus "))
    ]
    if add_networks(data, addrs, ("tor", "Tor")) == 0 and data.skipped:
        raise fail(rel(path, directory), f"no valid address ({data.skipped} bad lines)")
    return data


def newest_dated(paths: Iterable[Path]) -> Path | None:
    """The path whose name carries the latest ISO date (name order breaks ties)."""
    dated = [(iso_date(p.name) or "", p.name, p) for p in paths]
    return max(dated)[2] if dated else None


def loaders(directory: Path) -> list[Loader]:
    """The list sources present under ``directory``, each with its parser (not yet run)."""
    out: list[Loader] = []
    x4b = directory / X4BNET_DIR
    for name, stem, value in (
        ("x4bnet-vpn", "output_vpn", ("vpn", "X4BNet VPN list")),
        ("x4bnet-datacenter", "output_datacenter", ("hosting", "X4BNet datacenter list")),
    ):
        files = [p for p in (x4b / f"{stem}_ipv4.txt", x4b / f"{stem}_ipv6.txt") if p.is_file()]
        if files:
            out.append((name, partial(_label_files, SOURCES[name], directory, files, value)))
    for prefix, pattern in (
        ("x4bnet-vpn", "input_vpn_ips_*.txt"),
        ("x4bnet-datacenter", "input_datacenter_ips_*.txt"),
    ):
        for path in sorted(x4b.glob(pattern)) if x4b.is_dir() else []:
            slug = path.stem.split("_ips_", 1)[1].lower()
            name = f"{prefix}-{slug}"
            meta = SOURCES.get(name) or _x4b_provider(prefix, slug)
            value = X4BNET_PROVIDERS.get(slug, ("vpn", slug))
            out.append((name, partial(_label_files, meta, directory, [path], value)))
    for name, fname, label, fallback in (
        ("x4bnet-hosting-asn", "input_datacenter_ASN.txt", "hosting", "X4BNet datacenter ASN"),
        ("x4bnet-vpn-asn", "input_vpn_ASN.txt", "vpn", "X4BNet VPN ASN"),
    ):
        path = x4b / fname
        if path.is_file():
            out.append((name, partial(_asn_labels, name, path, directory, label, fallback)))
    exits = directory / VPN_EXITS_FILE
    if exits.is_file():
        out.append(("vpn-exits", partial(_vpn_exits, exits, directory)))
    tor_dir = directory / TOR_DIR
    tor = newest_dated(tor_dir.glob("exit-nodes-*.txt")) if tor_dir.is_dir() else None
    if tor is not None:
        out.append(("tor-exits", partial(_tor_exits, tor, directory)))
    return out
