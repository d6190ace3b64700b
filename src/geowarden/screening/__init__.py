"""Sanctions and ownership screening: official lists, name matching, ownership aggregation.

``lists`` parses the official formats, ``match`` normalises and matches names across scripts,
``ownership`` aggregates restricted ownership (OFAC 50 % rule), ``signal`` turns them into
evidence for a signup, and ``cli`` is the core of ``geowarden screen``. See docs/screening.md.
"""

from __future__ import annotations

#: Evidence codes of the screening signal (``signal="screening"``) and what they mean.
CODES: dict[str, str] = {
    "ORG_LISTED": "the organisation's name matches a listed party strongly (score >= 0.91); value: the best "
    "match (name, list, score, entity_id, explanation)",
    "NAME_MATCH_WEAK": "the organisation's name resembles a listed party (0.80 <= score < 0.91): for a reviewer; "
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

__all__ = ["CODES"]
