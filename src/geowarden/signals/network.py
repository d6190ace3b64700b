"""The network signal: what the client address says about where the request comes from.

A pure function of the facts, the intel snapshot and the restricted jurisdictions the policy
passes in. It never decides: it reports evidence (codes in ``CODES``) and leaves the weighing to
the policy, which reads it as the CEL variable ``ip``.
"""

from __future__ import annotations

from collections.abc import Set
from types import MappingProxyType
from typing import Any

from geowarden.errors import AddressError
from geowarden.intel import addr, classify
from geowarden.intel.format import CLASSIFIED_SOURCE, PROVIDER_STATEMENT_SOURCES, SHARED_PREFIX
from geowarden.intel.snapshot import IPRecord, Snapshot
from geowarden.model import Evidence, Facts
from geowarden.signals.base import BaseSignal, Found, SignalContext

NAME = "ip"

CODES: dict[str, str] = {
    "IP_COUNTRY": "The country the address is placed in (fused from all country sources); informational.",
    "IP_NETWORK": "The autonomous system announcing the address: value {asn, org}; informational.",
    "IP_COUNTRY_RESTRICTED": "The address is placed in a jurisdiction the policy restricts.",
    "IP_COUNTRY_DISAGREEMENT": "Country sources disagree about the address; value lists each source's answer, "
    "whether any of them is restricted, and whether the placement is contested (no provider statement and no "
    "majority settles it).",
    "IP_HOSTING": "The address belongs to a hosting, cloud or CDN provider, not an eyeball network.",
    "IP_VPN": "The address is a known commercial VPN exit or VPN provider range.",
    "IP_TOR": "The address is a Tor exit relay.",
    "IP_PROXY": "The address belongs to a proxy service (e.g. a security proxy cloud).",
    "IP_RELAY": "The address is a location-preserving relay egress (e.g. iCloud Private Relay): the user "
    "is anonymised but stays in the relay's country.",
    "IP_UNKNOWN": "No source knows the address: no country, ASN or provider.",
    "IP_PRIVATE_OR_RESERVED": "A private or reserved address reached the decision: a configuration error upstream "
    "(e.g. a wrong trusted-proxy setting), not a client location.",
    "IP_INVALID": "The ip fact is not an IPv4 or IPv6 address.",
    "IP_SHARED_INDICATOR": "A peer's shared indicator (STIX, `indicators import`) covers the address's network or "
    "ASN: value {peers: peer -> confidence 0-1, local: where local sources disagree (a relay, an access network "
    "no local list labels, the account's registered egress)}; a peer's word, weighed below local evidence.",
}


def evaluate(facts: Facts, intel: Snapshot, restricted: Set[str]) -> list[Evidence]:
    """Evidence about ``facts.ip``; empty when no address was given."""
    if facts.ip is None:
        return []
    try:
        parsed = addr.parse(facts.ip)
    except AddressError:
        return [Evidence(signal=NAME, code="IP_INVALID", confidence=1.0, detail="the ip fact is not an IP address")]
    rec = intel.record_for_row(parsed.text, intel.row_of(parsed), parsed.version)
    return evidence_for(rec, restricted)


def evidence_for(rec: IPRecord, restricted: Set[str]) -> list[Evidence]:
    """Evidence for one looked-up address (shared by ``evaluate`` and batch evaluation)."""
    out: list[Evidence] = []
    if rec.reserved:
        out.append(
            Evidence(
                signal=NAME,
                code="IP_PRIVATE_OR_RESERVED",
                value=rec.ip,
                detail=f"{rec.ip} is a private or reserved address: the real client address was lost "
                "upstream (check the trusted-proxy / X-Forwarded-For configuration)",
            )
        )
        return out
    answers: dict[str, str] = rec.sources.get("country", {})
    if rec.country is not None:
        agree = sum(1 for cc in answers.values() if cc == rec.country)
        confidence = agree / len(answers) if answers else 0.5
        feed = next((s for s in PROVIDER_STATEMENT_SOURCES if answers.get(s) == rec.country), None)
        if feed is not None:
            confidence = max(confidence, 0.9)
        out.append(
            Evidence(
                signal=NAME,
                code="IP_COUNTRY",
                value=rec.country,
                confidence=confidence,
                detail=f"placed in {rec.country} by {agree} of {len(answers)} country sources"
                + (f" ({feed}: the provider's own statement for this prefix, which wins the vote)" if feed else ""),
            )
        )
        if rec.country in restricted:
            out.append(
                Evidence(
                    signal=NAME,
                    code="IP_COUNTRY_RESTRICTED",
                    value=rec.country,
                    confidence=max(confidence, 0.5),
                    detail=f"address placed in restricted jurisdiction {rec.country} "
                    f"({_said_by(answers, rec.country)})",
                )
            )
    if rec.disagreement:
        restricted_answers = sorted({cc for cc in answers.values() if cc in restricted})
        value: dict[str, Any] = {"answers": answers, "restricted": restricted_answers, "contested": rec.contested}
        out.append(
            Evidence(
                signal=NAME,
                code="IP_COUNTRY_DISAGREEMENT",
                value=value,
                confidence=0.5,
                detail="country sources disagree: "
                + ", ".join(f"{s}={cc}" for s, cc in answers.items())
                + ("; no majority settles it" if rec.contested else ""),
            )
        )
    if rec.asn is not None:
        out.append(
            Evidence(
                signal=NAME,
                code="IP_NETWORK",
                value={"asn": rec.asn, "org": rec.org},
                detail=f"announced by AS{rec.asn}{f' ({rec.org})' if rec.org else ''}",
            )
        )
    labels: dict[str, list[str]] = rec.sources.get("labels", {})
    for flag, code, what in _LABEL_EVIDENCE:
        if getattr(rec, flag):
            said = labels.get(flag, [])
            why = f"said by {', '.join(said) or 'an ASN list'}"
            if said == [CLASSIFIED_SOURCE] and rec.classified:
                why = f"classified from the network's features: {rec.classified.get('detail', '')}"
            out.append(
                Evidence(
                    signal=NAME,
                    code=code,
                    value=rec.provider,
                    confidence=rec.confidence.get(flag, min(1.0, 0.6 + 0.2 * len(said))),
                    detail=f"{what}{f' ({rec.provider})' if rec.provider else ''}; {why}",
                    source=said[0] if said else None,
                )
            )
    if rec.shared:
        out.append(shared_evidence(rec))
    if not rec.found:
        out.append(
            Evidence(
                signal=NAME, code="IP_UNKNOWN", value=rec.ip, confidence=0.5, detail="no source knows this address"
            )
        )
    return out


def shared_evidence(rec: IPRecord) -> Evidence:
    """``IP_SHARED_INDICATOR``: which peers said so, how sure, and where local sources disagree
    (said in the evidence, never overridden silently)."""
    peers = dict(sorted(rec.shared.items(), key=lambda kv: (-kv[1], kv[0])))
    top = next(iter(peers))
    local: list[str] = []
    anon = [flag for flag in ("tor", "vpn", "proxy", "hosting") if getattr(rec, flag)]
    if rec.relay:
        local.append("a location-preserving relay: its users keep their country")
    elif not anon and rec.org and classify.name_kind(rec.org) == "access":
        local.append("an access network (consumer ISP or carrier) by its name, which no local list labels")
    said = ", ".join(f"{p} (confidence {c:g})" for p, c in peers.items())
    where = f"; local sources disagree: {'; '.join(local)}" if local else ""
    agree = f"; local sources agree: {', '.join(anon)}" if anon and not local else ""
    return Evidence(
        signal=NAME,
        code="IP_SHARED_INDICATOR",
        value={"peers": peers, "local": local},
        confidence=peers[top],
        detail=f"shared indicator from {said}{agree or where}",
        source=SHARED_PREFIX + top,
    )


_LABEL_EVIDENCE = (
    ("tor", "IP_TOR", "Tor exit relay"),
    ("vpn", "IP_VPN", "VPN exit"),
    ("proxy", "IP_PROXY", "proxy service"),
    ("hosting", "IP_HOSTING", "hosting or cloud provider"),
    ("relay", "IP_RELAY", "location-preserving relay"),
)


def _said_by(answers: dict[str, str], country: str) -> str:
    who = [s for s, cc in answers.items() if cc == country]
    return "said by " + ", ".join(who) if who else "fused answer"


_LABEL_CODES = (("hosting", "IP_HOSTING"), ("vpn", "IP_VPN"), ("tor", "IP_TOR"), ("proxy", "IP_PROXY"),
                ("relay", "IP_RELAY"))  # fmt: skip
_ANON_CODES = frozenset({"IP_HOSTING", "IP_VPN", "IP_PROXY", "IP_TOR"})
_NOT_KNOWN = frozenset({"IP_UNKNOWN", "IP_INVALID", "IP_PRIVATE_OR_RESERVED"})


class NetworkSignal(BaseSignal):
    """The ``ip`` signal and its CEL variable ``ip``: ``present``, ``valid``, ``known``,
    ``reserved``, ``country``, ``countries`` (every source's answer), ``disagreement``,
    ``contested`` (a disagreement no provider statement or majority settles), the labels
    ``hosting``, ``vpn``, ``tor``, ``proxy``, ``relay``, ``label_confidence`` (0-1: how sure
    the surest of the hosting/VPN/proxy/Tor labels is; a weak classifier label is 0.5), and a
    peer's shared indicator: ``shared``, ``shared_confidence`` (0-1, the surest peer's) and
    ``shared_disputed`` (local sources disagree, ``IP_SHARED_INDICATOR``'s ``local``)."""

    name = NAME
    codes = MappingProxyType(CODES)
    variable = "ip"

    def evaluate(self, facts: Facts, ctx: SignalContext) -> list[Evidence]:
        return evaluate(facts, ctx.intel, ctx.restricted)

    def export(self, found: Found, facts: Facts) -> dict[str, Any]:
        codes = found.codes
        country = found.text("IP_COUNTRY")
        answers = found.mapping("IP_COUNTRY_DISAGREEMENT").get("answers", {})
        countries = sorted(set(answers.values())) if isinstance(answers, dict) else []
        if country and not countries:
            countries = [country]
        out: dict[str, Any] = {
            "present": facts.ip is not None,
            "valid": facts.ip is not None and "IP_INVALID" not in codes,
            "known": facts.ip is not None and not codes & _NOT_KNOWN,
            "reserved": "IP_PRIVATE_OR_RESERVED" in codes,
            "country": country,
            "countries": countries,
            "disagreement": "IP_COUNTRY_DISAGREEMENT" in codes,
            "contested": bool(found.mapping("IP_COUNTRY_DISAGREEMENT").get("contested", False)),
        }
        for flag, code in _LABEL_CODES:
            out[flag] = code in codes
        out["label_confidence"] = max(
            (e.confidence for e in found.evidence if e.signal == NAME and e.code in _ANON_CODES), default=0.0
        )
        shared = "IP_SHARED_INDICATOR" in codes
        out["shared"] = shared
        out["shared_confidence"] = (
            max(e.confidence for e in found.evidence if e.code == "IP_SHARED_INDICATOR") if shared else 0.0
        )
        out["shared_disputed"] = shared and bool(found.mapping("IP_SHARED_INDICATOR").get("local"))
        return out


SIGNAL = NetworkSignal()
