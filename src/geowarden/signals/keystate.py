"""What one request adds to a key's state, and the batch of state operations it sends.

The behaviour signal (``signals.behaviour``) observes each request that names a key or an account
(``observe``), sends one batch of operations to the state store (``operations``: distinct
addresses, networks and ASNs per window, request and anonymised-request counts, places with the
time last seen, the hour profile, analytics flags, token volumes and first-seen time) and reads
the results back in the same order.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

from geowarden.model import Evidence, Facts
from geowarden.state.base import Count, Distinct, FirstSeen, Flags, Hours, Op, Places

WINDOWS = (600, 3600, 86400)  # distinct counts: 10 minutes, 1 hour, 1 day
VOLUME_WINDOWS = (3600, 7 * 86400)  # requests and tokens: 1 hour, 7 days
PLACES_TTL = 86400
FIRST_SEEN_TTL = 90 * 86400
_LABELS = frozenset({"IP_HOSTING", "IP_VPN", "IP_PROXY", "IP_TOR"})
_CLIENT_RESTRICTED = frozenset({"TZ_RESTRICTED", "LANG_RESTRICTED_REGION"})


@dataclass(frozen=True, slots=True)
class Observation:
    """What one request contributes to the state."""

    subject: str  # "k:<key id>" or "a:<account id>" when there is no key
    account: str | None  # "a:<account id>"
    ip: str
    prefix: str
    asn: str
    country: str
    anonymised: bool  # hosting, VPN, proxy or Tor
    tokens: float
    restricted_client: bool = False  # a restricted zone or language behind a hosting, VPN, proxy or Tor exit


def observe(facts: Facts, found: Sequence[Evidence]) -> Observation | None:
    """The observation for a request, or None when it names neither a key nor an account."""
    if facts.api_key_id:
        subject = "k:" + facts.api_key_id
    elif facts.account_id:
        subject = "a:" + facts.account_id
    else:
        return None
    country = asn = ""
    anonymised = hinted = False
    for e in found:
        if e.code == "IP_COUNTRY" and isinstance(e.value, str):
            country = e.value
        elif e.code == "IP_NETWORK" and isinstance(e.value, dict) and e.value.get("asn") is not None:
            asn = str(e.value["asn"])
        elif e.code in _LABELS:
            anonymised = True
        elif e.code in _CLIENT_RESTRICTED:
            hinted = True
    tokens = facts.input_tokens or 0
    return Observation(
        subject=subject,
        account="a:" + facts.account_id if facts.account_id and facts.api_key_id else None,
        ip=facts.ip or "",
        prefix=prefix_of(facts.ip or ""),
        asn=asn,
        country=country,
        anonymised=anonymised,
        tokens=float(tokens) if isinstance(tokens, int | float) and not isinstance(tokens, bool) else 0.0,
        restricted_client=hinted and anonymised,
    )


def prefix_of(ip: str) -> str:
    """The /24 of an IPv4 address or the /48 of an IPv6 address, as text ('' when neither)."""
    if ip.count(".") == 3 and ":" not in ip:
        return ip.rsplit(".", 1)[0] + ".0/24"
    if ":" in ip:
        return _prefix6(ip)
    return ""


@functools.lru_cache(maxsize=65536)
def _prefix6(ip: str) -> str:
    import ipaddress  # noqa: PLC0415

    try:
        return str(ipaddress.ip_network(ip + "/48", strict=False))
    except ValueError:
        return ""


def operations(obs: Observation) -> list[Op]:
    """The batch one request sends to the store (results come back in this order)."""
    s = obs.subject
    ops: list[Op] = [
        Distinct(s + ":ip", obs.ip, WINDOWS),
        Distinct(s + ":net", obs.prefix, WINDOWS),
        Distinct(s + ":asn", obs.asn or "?", WINDOWS),
        Count(s + ":req", 1.0, (3600, 86400)),
        Count(s + ":anon", 1.0 if obs.anonymised else 0.0, (3600, 86400)),
        Places(s + ":places", obs.country or "?", PLACES_TTL),
        Hours(s + ":hours", 7),
        Flags(s),
    ]
    acct = obs.account or s
    ops += [
        Count(acct + ":tok", obs.tokens, VOLUME_WINDOWS),
        FirstSeen(acct + ":first", FIRST_SEEN_TTL),
        Count(s + ":rclient", 1.0 if obs.restricted_client else 0.0, (3600, 86400)),
    ]
    if obs.account:
        ops.append(Flags(obs.account))
    return ops
