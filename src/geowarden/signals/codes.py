"""Every evidence code geowarden emits, with its one-line meaning.

This table is the published documentation of the codes (``docs/evidence-codes.md`` is generated
from it by ``python -m geowarden.signals.codes`` and a test keeps the two in step). Codes are
stable: a code may be added or deprecated, never renamed.
"""

from __future__ import annotations

from geowarden import latency, screening
from geowarden.signals import behaviour, card, client, email, otp, phone

_NETWORK: dict[str, tuple[str, str]] = {
    "IP_COUNTRY": ("ip", "The country the address is placed in (fused from all country sources); informational."),
    "IP_NETWORK": ("ip", "The autonomous system announcing the address: value {asn, org}; informational."),
    "IP_COUNTRY_RESTRICTED": ("ip", "The address is placed in a jurisdiction the policy restricts."),
    "IP_COUNTRY_DISAGREEMENT": (
        "ip",
        "Country sources disagree about the address; value lists each source's answer and "
        "whether any of them is restricted.",
    ),
    "IP_HOSTING": ("ip", "The address belongs to a hosting, cloud or CDN provider, not an eyeball network."),
    "IP_VPN": ("ip", "The address is a known commercial VPN exit or VPN provider range."),
    "IP_TOR": ("ip", "The address is a Tor exit relay."),
    "IP_PROXY": ("ip", "The address belongs to a proxy service (e.g. a security proxy cloud)."),
    "IP_RELAY": (
        "ip",
        "The address is a location-preserving relay egress (e.g. iCloud Private Relay): the user "
        "is anonymised but stays in the relay's country.",
    ),
    "IP_UNKNOWN": ("ip", "No source knows the address: no country, ASN or provider."),
    "IP_PRIVATE_OR_RESERVED": (
        "ip",
        "A private or reserved address reached the decision: a configuration error upstream "
        "(e.g. a wrong trusted-proxy setting), not a client location.",
    ),
    "IP_INVALID": ("ip", "The ip fact is not an IPv4 or IPv6 address."),
}

_COMMON: dict[str, tuple[str, str]] = {
    "SIGNAL_UNAVAILABLE": (
        "any",
        "A signal could not answer (its source is missing or its back end is down); value names the "
        "signal, and the policy's fail mode for it (open, closed, review) decides what follows.",
    ),
}


def _merge(*tables: dict[str, tuple[str, str]]) -> dict[str, tuple[str, str]]:
    out: dict[str, tuple[str, str]] = {}
    for table in tables:
        for code, entry in table.items():
            if code in out:
                raise RuntimeError(f"evidence code {code} is defined twice")
            out[code] = entry
    return out


#: Every code: the network signal's, then each origin signal module's own ``CODES``, then the
#: codes any signal may emit.
CODES: dict[str, tuple[str, str]] = _merge(
    _NETWORK,
    phone.CODES,
    card.CODES,
    email.CODES,
    client.CODES,
    otp.CODES,
    latency.CODES,
    behaviour.CODES,
    {code: ("screening", meaning) for code, meaning in screening.CODES.items()},
    _COMMON,
)


def markdown() -> str:
    lines = [
        "# Evidence codes",
        "",
        "Generated from `geowarden/signals/codes.py`.",
        "",
        "| code | signal | meaning |",
        "|---|---|---|",
    ]
    lines += [f"| `{code}` | {signal} | {meaning} |" for code, (signal, meaning) in CODES.items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown(), end="")
