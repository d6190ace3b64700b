"""How old the anonymiser lists of a snapshot are, and the one-line warning when too old.

An *anonymiser list* is a source that gives any address the label ``vpn``, ``tor``, ``proxy``
or ``relay`` (the snapshot's ``label_sources``). VPN and Tor exits move within weeks, so a list
older than :data:`MAX_AGE_DAYS` misses new exits: ``geowarden intel info`` and
``geowarden ip`` say so on stderr. A list without a data date counts as stale (its age is
unknown). Dates may be a day (``2026-08-22``) or a month (``2026-08``, taken as its first day).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

#: Labels that mark an anonymiser (hosting alone is not one).
ANONYMISER_LABELS = frozenset({"vpn", "tor", "proxy", "relay"})

#: Age beyond which an anonymiser list is reported as stale.
MAX_AGE_DAYS = 30


@dataclass(frozen=True, slots=True, kw_only=True)
class StaleList:
    """One anonymiser list older than the limit (``age_days`` None: undated)."""

    name: str
    date: str | None
    age_days: int | None


def _parse(text: str | None) -> date | None:
    if not text:
        return None
    text = text.strip()[:10]
    try:
        return date.fromisoformat(text if len(text) == 10 else f"{text[:7]}-01")
    except ValueError:
        return None


def stale_lists(
    sources: Iterable[Mapping[str, Any]],
    label_sources: Iterable[tuple[str, str]],
    *,
    today: date | None = None,
    max_age_days: int = MAX_AGE_DAYS,
) -> list[StaleList]:
    """The anonymiser lists among ``sources`` (snapshot meta entries) older than ``max_age_days``,
    oldest first (undated ones first of all)."""
    today = today or datetime.now(UTC).date()
    anonymisers = {name for name, label in label_sources if label in ANONYMISER_LABELS}
    out = []
    for src in sources:
        name = str(src.get("name", ""))
        if name not in anonymisers:
            continue
        when = _parse(src.get("date"))
        age = None if when is None else (today - when).days
        if age is None or age > max_age_days:
            out.append(StaleList(name=name, date=src.get("date"), age_days=age))
    out.sort(key=lambda s: (s.age_days is not None, -(s.age_days or 0), s.name))
    return out


def stale_warning(stale: list[StaleList], *, max_age_days: int = MAX_AGE_DAYS) -> str | None:
    """One line naming how many anonymiser lists are stale and the oldest, or None."""
    if not stale:
        return None
    first = stale[0]
    oldest = (
        f"{first.name}, undated" if first.age_days is None else f"{first.name}, {first.date}, {first.age_days} days"
    )
    many = "1 anonymiser list is" if len(stale) == 1 else f"{len(stale)} anonymiser lists are"
    return (
        f"{many} older than {max_age_days} days or undated (oldest: {oldest}): VPN and Tor exits they miss go "
        "unflagged; refresh with `geowarden intel update`"
    )
