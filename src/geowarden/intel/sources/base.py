"""What a parsed data source looks like, whatever file it came from.

Every address, IPv4 or IPv6, is a key in one 128-bit space: IPv6 addresses are their own
integer value, IPv4 addresses are IPv4-mapped (``::ffff:a.b.c.d``, i.e. ``V4_BASE + int(ipv4)``).
That lets the builder treat both families with one code path; the snapshot splits them again.

A source is one of four kinds:

- ``country``: ranges whose value is an ISO 3166-1 alpha-2 code (upper case);
- ``asn``: ranges whose value is ``(asn, organisation)``;
- ``label``: ranges whose value is ``(label, provider)`` with label in ``LABELS``;
- ``asn_label``: no ranges; ``asn_labels`` maps an ASN to ``(label, provider)`` and the builder
  applies it through the ASN column (e.g. "every range of AS16509 is hosting").
"""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass, field
from typing import Any

V4_BASE = 0xFFFF << 32  # ::ffff:0.0.0.0
V4_LAST = V4_BASE + 0xFFFF_FFFF
MAX_KEY = (1 << 128) - 1

#: Labels an address can carry. ``relay`` is a location-preserving relay (Apple iCloud Private
#: Relay): an anonymiser that keeps the user's country, so policy can treat it apart from VPNs.
LABELS = ("hosting", "vpn", "tor", "proxy", "relay")


class SourceKind(enum.StrEnum):
    COUNTRY = "country"
    ASN = "asn"
    LABEL = "label"
    ASN_LABEL = "asn_label"


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceMeta:
    """Provenance of one source, kept in the snapshot and shown by ``geowarden intel info``."""

    name: str  # stable id, e.g. "dbip-country"; also how --exclude names it
    title: str  # human name, e.g. "DB-IP IP to Country Lite"
    kind: SourceKind
    licence: str  # SPDX id or short text, e.g. "CC-BY-4.0"
    attribution: str | None = None  # text the licence requires us to show, if any
    url: str | None = None  # where the public original lives
    date: str | None = None  # ISO date (or month) the data describes, if known
    files: tuple[str, ...] = ()  # files it was read from, relative to the build directory
    notes: str | None = None  # what the parser noticed and left out (e.g. regions it does not know)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "kind": self.kind.value,
            "licence": self.licence,
            "attribution": self.attribution,
            "url": self.url,
            "date": self.date,
            "files": list(self.files),
            **({"notes": self.notes} if self.notes else {}),
        }


@dataclass(slots=True, kw_only=True)
class SourceData:
    """The parsed content of one source: parallel lists of inclusive ranges and their values."""

    meta: SourceMeta
    first: list[int] = field(default_factory=list)
    last: list[int] = field(default_factory=list)
    values: list[Any] = field(default_factory=list)
    asn_labels: dict[int, tuple[str, str]] = field(default_factory=dict)
    skipped: int = 0  # malformed lines or records that were reported and left out

    def add(self, first: int, last: int, value: Any) -> None:
        self.first.append(first)
        self.last.append(last)
        self.values.append(value)

    def add_network(self, text: str, value: Any) -> None:
        """Add a CIDR network or a bare address (``1.2.3.0/24``, ``2001:db8::/32``, ``1.2.3.4``)."""
        first, last = network_bounds(text)
        self.add(first, last, value)

    def __len__(self) -> int:
        return len(self.first) if self.meta.kind != SourceKind.ASN_LABEL else len(self.asn_labels)


def network_bounds(text: str) -> tuple[int, int]:
    """Inclusive key bounds of a network or address in the unified 128-bit space.

    Host bits set in a network (``10.0.0.1/8``) are tolerated, as many published lists have them.
    Raises ``ValueError`` on anything else.
    """
    net = ipaddress.ip_network(text.strip(), strict=False)
    base = V4_BASE if net.version == 4 else 0
    return base + int(net.network_address), base + int(net.broadcast_address)


def key_of(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> int:
    """Key of one address in the unified space."""
    return (V4_BASE if address.version == 4 else 0) + int(address)
