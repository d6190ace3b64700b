"""The real client address, done right.

The address is the connection's peer unless that peer is a configured trusted proxy; only then
are ``Forwarded`` (RFC 7239) or ``X-Forwarded-For`` read, from the right: each trusted hop is
skipped and the first address that is not a trusted proxy is the client. A header sent by an
untrusted peer is ignored entirely, so a client cannot forge its own address.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from geowarden.errors import ConfigError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_FOR = re.compile(r'for\s*=\s*("?)(\[?[^;,"\]]+\]?)(?::\d+)?\1', re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class TrustedProxies:
    networks: tuple[Network, ...] = ()

    @classmethod
    def parse(cls, spec: str | Iterable[str]) -> TrustedProxies:
        items = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
        nets: list[Network] = []
        for item in items:
            try:
                nets.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise ConfigError(f"trusted proxy {item!r} is not an address or network") from None
        return cls(tuple(nets))

    def __contains__(self, address: object) -> bool:
        ip = _ip(address) if isinstance(address, str) else None
        return ip is not None and any(ip.version == n.version and ip in n for n in self.networks)


def client_ip(peer: str | None, headers: Mapping[str, str], trusted: TrustedProxies) -> str | None:
    """The client address for a request that arrived from ``peer`` with ``headers``
    (lower-case names)."""
    if peer is None:
        return None
    if peer not in trusted:
        return _norm(peer)
    hops = _forwarded(headers.get("forwarded", "")) or _xff(headers.get("x-forwarded-for", ""))
    client = _norm(peer)
    for hop in reversed(hops):
        ip = _norm(hop)
        if ip is None:
            return client  # a garbled hop: stop at the last address we could trust
        client = ip
        if ip not in trusted:
            return ip
    return client


def normal_ip(text: str) -> str | None:
    """``text`` as one IPv4 or IPv6 address in its normal form (brackets and a port allowed), or None."""
    return _norm(text)


def _xff(value: str) -> list[str]:
    return [h.strip() for h in value.split(",") if h.strip()]


def _forwarded(value: str) -> list[str]:
    return [m.group(2).strip("[]") for m in _FOR.finditer(value)]


_WITH_PORT = re.compile(r"\[([^\]]+)\]:\d{1,5}|(\d{1,3}(?:\.\d{1,3}){3}):\d{1,5}")


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address in ``text``: bare, in brackets, or with a port (``1.2.4.8:5555``, ``[2001:db8::1]:443``)."""
    text = text.strip()
    m = _WITH_PORT.fullmatch(text)
    if m is not None:
        text = m.group(1) or m.group(2)
    try:
        ip = ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _norm(text: str) -> str | None:
    ip = _ip(text)
    return str(ip) if ip is not None else None
