"""The screening signal: is the signing-up organisation, or who owns it, listed or restricted?

``facts.org_name`` is screened against the lists: a strong match gives ``ORG_LISTED``, a weak one
``NAME_MATCH_WEAK``. ``facts.org_owners`` declares the owners, one string each::

    "NAME:PERCENT[:COUNTRY[:VIA]]"

- ``NAME``     the owner's name (no ``:`` in it)
- ``PERCENT``  its stake, 0-100 (``%`` allowed); empty when unknown
- ``COUNTRY``  the owner's country (ISO 3166 alpha-2), optional
- ``VIA``      optional: the stake is held in ``VIA`` (another declared owner), not in the
               organisation itself; this is how indirect ownership is declared

e.g. ``("Holdco Ltd:100:HK", "Acme Energy:60:RU:Holdco Ltd")``: Holdco owns all of the
organisation and Acme Energy (in RU) owns 60 % of Holdco. An owner is restricted in its own right
when its country is one of the policy's restricted jurisdictions or its name matches a listed
party strongly. The OFAC 50 % rule aggregation (``ownership``) then gives
``ORG_OWNED_BY_RESTRICTED`` (>= 50 %) or ``ORG_PARTLY_OWNED_BY_RESTRICTED`` (> 0), with the share
and the chains; unknown percentages, cycles and malformed entries give ``OWNERSHIP_INCOMPLETE``.
"""

from __future__ import annotations

from collections.abc import Set
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

from geowarden.errors import SourceError
from geowarden.model import Evidence, Facts
from geowarden.signals.base import BaseSignal, SignalContext

if TYPE_CHECKING:
    from geowarden.screening.match import NameIndex

NAME = "screening"
_ORG = "<organisation>"

#: Evidence codes of the screening signal (``signal="screening"``) and what they mean.
CODES: dict[str, str] = {
    "ORG_LISTED": "the organisation's name matches a listed party strongly (match: score >= 0.88); value: the best "
    "match (name, list, score, entity_id, explanation)",
    "NAME_MATCH_WEAK": "the organisation's name resembles a listed party (possible: 0.83 <= score < 0.88): "
    "for a reviewer; "
    "value: the matches",
    "ORG_OWNED_BY_RESTRICTED": "listed or restricted-jurisdiction owners hold 50 % or more of the organisation, "
    "directly or indirectly, in the aggregate (OFAC 50 % rule); value: share, look-through share, chains",
    "ORG_PARTLY_OWNED_BY_RESTRICTED": "listed or restricted-jurisdiction owners hold a share below 50 % "
    "(or 50 % or more only if unknown stakes are counted); value as for ORG_OWNED_BY_RESTRICTED",
    "OWNER_LISTED": "one declared owner's name matches a listed party strongly; value: owner and match",
    "OWNERSHIP_INCOMPLETE": "the declared ownership has unknown percentages, cycles or malformed entries; "
    "value: what is missing",
    "SCREENING_UNAVAILABLE": "no sanctions lists are configured or readable, so names were not screened",
}


class ScreeningSignal(BaseSignal):
    """The screening signal over the lists in ``data_dir`` (the ``../shared/data/sanctions``
    layout; the index is built at the first organisation seen and shared by the process). It
    contributes no CEL variable: rules read its codes (``ORG_LISTED`` in evidence, ...)."""

    name = NAME
    codes = MappingProxyType(CODES)

    def __init__(self, data_dir: Path | None = None) -> None:
        self.data_dir = data_dir

    def evaluate(self, facts: Facts, ctx: SignalContext) -> list[Evidence]:
        if not facts.org_name and not facts.org_owners:
            return []  # nothing to screen: no cost, no index built
        return evaluate(facts, ctx, data_dir=self.data_dir)


def evaluate(
    facts: Facts, ctx: SignalContext, index: NameIndex | None = None, *, data_dir: Path | None = None
) -> list[Evidence]:
    """Evidence about ``facts.org_name`` and ``facts.org_owners``; empty when neither is given."""
    if not facts.org_name and not facts.org_owners:
        return []
    if index is None:
        from geowarden.screening.cli import load_index  # noqa: PLC0415 - the matcher loads only when screening

        try:
            index = load_index(data_dir)  # lazy, once per process and directory
        except SourceError as exc:
            return [Evidence(signal=NAME, code="SCREENING_UNAVAILABLE", confidence=1.0, detail=exc.message)]
    out: list[Evidence] = []
    if facts.org_name:
        out.extend(_screen_org(facts.org_name, index))
    if facts.org_owners:
        out.extend(_ownership(facts.org_name or _ORG, facts.org_owners, index, ctx.restricted))
    return out


def _screen_org(name: str, index: NameIndex) -> list[Evidence]:
    from geowarden.screening.match import STRONG, WEAK  # noqa: PLC0415 - see evaluate

    matches = index.search(name, threshold=WEAK, limit=5)
    if not matches:
        return []
    best = matches[0]
    if best.score >= STRONG:
        return [
            Evidence(
                signal=NAME,
                code="ORG_LISTED",
                value=best.to_dict(),
                confidence=best.score,
                detail=f"organisation matches {best.entity.list} entry {best.entity.entity_id} "
                f"'{best.entity.name}' (score {best.score:.2f})",
                source=best.entity.list,
            )
        ]
    return [
        Evidence(
            signal=NAME,
            code="NAME_MATCH_WEAK",
            value=[m.to_dict() for m in matches],
            confidence=best.score,
            detail=f"organisation resembles {best.entity.list} entry {best.entity.entity_id} "
            f"'{best.entity.name}' (score {best.score:.2f}); for review",
            source=best.entity.list,
        )
    ]


def parse_owner(raw: str) -> tuple[str, float | None, str | None, str | None]:
    """(name, percent or None, country or None, via or None); ``ValueError`` when malformed."""
    parts = [p.strip() for p in raw.split(":")]
    if len(parts) < 2 or len(parts) > 4 or not parts[0]:
        raise ValueError("expected NAME:PERCENT[:COUNTRY[:VIA]]")
    name, pct_raw = parts[0], parts[1].rstrip("%").strip()
    pct = float(pct_raw) if pct_raw else None
    if pct is not None and not 0.0 <= pct <= 100.0:
        raise ValueError("percent outside 0..100")
    country = parts[2].upper() if len(parts) > 2 and parts[2] else None
    via = parts[3] if len(parts) > 3 and parts[3] else None
    return name, pct, country, via


def _ownership(org: str, owners: tuple[str, ...], index: NameIndex, restricted: Set[str]) -> list[Evidence]:
    from geowarden.screening.match import STRONG  # noqa: PLC0415 - see evaluate
    from geowarden.screening.ownership import BLOCKING_THRESHOLD, OwnershipGraph  # noqa: PLC0415

    out: list[Evidence] = []
    graph = OwnershipGraph()
    malformed: list[str] = []
    for i, raw in enumerate(owners, 1):
        try:
            name, pct, country, via = parse_owner(raw)
        except ValueError as exc:
            malformed.append(f"owner entry {i}: {exc}")
            continue
        graph.add(via or org, name, pct, source=f"declared owner entry {i}")
        if country is not None and country in restricted:
            graph.mark(name, f"restricted jurisdiction {country}")
        hits = index.search(name, threshold=STRONG, limit=1)
        if hits:
            m = hits[0]
            graph.mark(name, f"listed: {m.entity.list} {m.entity.entity_id} (score {m.score:.2f})")
            out.append(
                Evidence(
                    signal=NAME,
                    code="OWNER_LISTED",
                    value={"owner": name, "match": m.to_dict()},
                    confidence=m.score,
                    detail=f"declared owner '{name}' matches {m.entity.list} entry {m.entity.entity_id}",
                    source=m.entity.list,
                )
            )
    a = graph.assess(org)
    value = a.to_dict()
    if a.blocked_share >= BLOCKING_THRESHOLD:
        out.append(
            Evidence(
                signal=NAME,
                code="ORG_OWNED_BY_RESTRICTED",
                value=value,
                confidence=0.95,
                detail=f"restricted owners hold {a.blocked_share:g}% in the aggregate (50% rule; look-through "
                f"{a.look_through:.4g}%) via {len(a.chains)} chain(s)",
            )
        )
    elif a.blocked_share > 0 or a.blocked_share_max > 0 or a.look_through > 0:
        out.append(
            Evidence(
                signal=NAME,
                code="ORG_PARTLY_OWNED_BY_RESTRICTED",
                value=value,
                confidence=0.6 if a.blocked_share_max >= BLOCKING_THRESHOLD else 0.4,
                detail=f"restricted owners hold {a.blocked_share:g}% (up to {a.blocked_share_max:g}% counting "
                f"unknown stakes; look-through {a.look_through:.4g}%)",
            )
        )
    if a.unknown or a.cycles or malformed:
        issues = [f"unknown percentage: {s.owner} in {s.owned}" for s in a.unknown]
        issues += ["ownership cycle: " + " -> ".join(c) for c in a.cycles]
        issues += malformed
        out.append(
            Evidence(
                signal=NAME,
                code="OWNERSHIP_INCOMPLETE",
                value=issues,
                confidence=1.0,
                detail="; ".join(issues[:3]) + (f" (+{len(issues) - 3} more)" if len(issues) > 3 else ""),
            )
        )
    return out


SIGNAL = ScreeningSignal()
