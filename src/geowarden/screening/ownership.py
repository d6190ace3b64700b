"""Ownership: who owns whom, and how much of a party is owned by restricted or listed parties.

The graph holds edges ``owned <- owner`` with a percentage (or None when unknown) and the source
that said so. A *root* restricted party is one the caller marks: listed on a sanctions list, or
in a restricted jurisdiction. From there two figures are computed for any party:

- ``blocked_share`` — the OFAC 50 % rule: a party owned 50 % or more, in the aggregate, by one or
  more blocked persons is itself blocked, and its whole stake in another party then counts as a
  blocked person's stake. The share is the sum of the direct stakes of all owners that are
  blocked (roots, or blocked by this rule in turn). Several 30 % blocked owners aggregate.
- ``look_through`` — the economic share held indirectly: the sum over every ownership path to a
  root of the product of the percentages along it (A 60 % of B, B 90 % of C: A holds 54 % of C).

Both come with the chain of evidence (every path from the party to a root, with each edge's
percentage and source). Cycles are cut where they close (the closing edge contributes nothing)
and reported; an unknown percentage counts as 0 in the figures and is reported, with an upper
bound that gives each unknown stake whatever the known stakes leave of 100 %.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

BLOCKING_THRESHOLD = 50.0  # percent, the OFAC 50 % rule


@dataclass(frozen=True, slots=True)
class Stake:
    """``owner`` holds ``percent`` of ``owned`` (None: a stake of unknown size), per ``source``."""

    owned: str
    owner: str
    percent: float | None
    source: str = ""


@dataclass(frozen=True, slots=True)
class Root:
    """Why a party is restricted in its own right."""

    party: str
    reason: str  # e.g. "listed: OFAC SDN ofac-sdn:123" or "restricted jurisdiction RU"


@dataclass(slots=True)
class Assessment:
    """The restricted ownership of one party, with its evidence."""

    party: str
    blocked_share: float  # percent, OFAC 50 % rule aggregation (lower bound)
    blocked_share_max: float  # percent, with unknown stakes taken at their largest possible
    look_through: float  # percent, product along paths, summed over paths
    blocked: bool  # blocked_share >= 50 (or the party is a root itself)
    chains: list[list[str]] = field(default_factory=list)  # each path, party first, root last
    cycles: list[list[str]] = field(default_factory=list)
    unknown: list[Stake] = field(default_factory=list)  # stakes without a percentage

    def to_dict(self) -> dict[str, object]:
        return {
            "party": self.party,
            "blocked_share": round(self.blocked_share, 4),
            "blocked_share_max": round(self.blocked_share_max, 4),
            "look_through": round(self.look_through, 4),
            "blocked": self.blocked,
            "chains": [" <- ".join(c) for c in self.chains],
            "cycles": [" -> ".join(c) for c in self.cycles],
            "unknown_percentages": [f"{s.owner} in {s.owned}" for s in self.unknown],
        }


class OwnershipGraph:
    """Ownership stakes between parties, and the parties restricted in their own right."""

    def __init__(self) -> None:
        self._owners: dict[str, list[Stake]] = defaultdict(list)
        self.roots: dict[str, Root] = {}

    def add(self, owned: str, owner: str, percent: float | None, source: str = "") -> Stake:
        """Record a stake; a percentage outside 0..100 is refused with ``ValueError``."""
        if percent is not None and not 0.0 <= percent <= 100.0:
            raise ValueError(f"ownership percentage {percent} outside 0..100")
        stake = Stake(owned, owner, percent, source)
        self._owners[owned].append(stake)
        return stake

    def mark(self, party: str, reason: str) -> None:
        """``party`` is restricted in its own right (listed, or in a restricted jurisdiction)."""
        self.roots[party] = Root(party, reason)

    def owners(self, party: str) -> list[Stake]:
        return list(self._owners.get(party, ()))

    def assess(self, party: str) -> Assessment:  # noqa: PLR0915 - two nested walks share state
        """The restricted ownership of ``party`` (see the module docstring)."""
        cycles: list[list[str]] = []
        unknown: list[Stake] = []
        memo: dict[str, tuple[float, float, bool]] = {}
        seen_unknown: set[Stake] = set()

        def blocked(node: str, stack: tuple[str, ...]) -> tuple[float, float, bool]:
            """(share, share upper bound, blocked) of ``node`` under the 50 % rule."""
            if node in memo:
                return memo[node]
            share = share_max = 0.0
            stakes = self._owners.get(node, [])
            known = sum(s.percent for s in stakes if s.percent is not None)
            slack = max(0.0, 100.0 - known)
            for s in stakes:
                if s.owner in stack:
                    cycles.append([*stack[stack.index(s.owner) :], s.owner])
                    continue
                owner_blocked = s.owner in self.roots or blocked(s.owner, (*stack, s.owner))[2]
                owner_maybe = owner_blocked or blocked(s.owner, (*stack, s.owner))[1] >= BLOCKING_THRESHOLD
                if s.percent is None:
                    if s not in seen_unknown:
                        seen_unknown.add(s)
                        unknown.append(s)
                    if owner_maybe:
                        share_max += slack
                    continue
                if owner_blocked:
                    share += s.percent
                if owner_maybe:
                    share_max += s.percent
            share, share_max = min(share, 100.0), min(share_max, 100.0)
            result = (share, share_max, node in self.roots or share >= BLOCKING_THRESHOLD)
            memo[node] = result
            return result

        chains: list[list[str]] = []

        def walk(node: str, stack: tuple[str, ...], product: float, trail: list[str]) -> float:
            """Look-through share via every path, collecting the chains that reach a root."""
            total = 0.0
            for s in self._owners.get(node, []):
                if s.owner in stack:
                    continue  # cycles are reported by ``blocked``
                pct = s.percent
                label = f"{s.owner} ({'?' if pct is None else f'{pct:g}'}%{', ' + s.source if s.source else ''})"
                here = product * (pct or 0.0) / 100.0
                if s.owner in self.roots:
                    chains.append([*trail, label, self.roots[s.owner].reason])
                    total += here
                    continue
                total += walk(s.owner, (*stack, s.owner), here, [*trail, label])
            return total

        share, share_max, is_blocked = blocked(party, (party,))
        look = 100.0 * walk(party, (party,), 1.0, [party]) if party not in self.roots else 100.0
        if party in self.roots:
            chains.insert(0, [party, self.roots[party].reason])
        unique_cycles: list[list[str]] = []
        for c in cycles:
            if c not in unique_cycles:
                unique_cycles.append(c)
        return Assessment(
            party=party,
            blocked_share=share,
            blocked_share_max=max(share, share_max),
            look_through=min(look, 100.0),
            blocked=is_blocked,
            chains=chains,
            cycles=unique_cycles,
            unknown=unknown,
        )
