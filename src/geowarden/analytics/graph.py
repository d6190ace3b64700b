"""The account graph (``account_cluster``): accounts joined by what they share, scored by where
they lead.

The links (payment, phone, device, prefix, creation burst) are made in ``links``; pairs of
strength ``min_edge`` and more (the best weight of each kind, summed) join components
(``scipy.sparse.csgraph``). A component of ``min_size`` accounts or more is scored::

    size_factor = 1 - exp(-(size - 2) / 4)
    link_factor = 0.5 + 0.5 * share of members with a payment, phone or device link
    exposure    = the mean over members of their restricted exposure (``exposure.Profile``:
                  1 for traffic from a restricted jurisdiction, at least ``leak_share`` of their
                  requests, or a restricted declared country, else 0.5 for each of a restricted
                  time zone and a restricted primary language region on ``hint_share`` of their
                  requests)
    behaviour   = mean of the anonymiser traffic share, the share of members in a creation burst
                  and the share of new members (created new_account_days before their first
                  request)
    risk        = min(1, exposure * (0.7 + 0.6 * behaviour))
    coordination = noisy-or of creation waves, new members, anonymiser traffic and activity out of
                  the clock the clients declare (``hours.declared_fit``), weights ``COORDINATION``
    hidden      = coordination * (0.5 + 0.5 * share on free-mail or disposable domains)
                  * (1 - legitimacy: members on one organisational domain, ``orgs``)
    score       = size_factor * link_factor * max(sqrt(risk), hidden)

Only components whose ``size_factor * link_factor`` reaches ``flag_score`` are scored (their
members' traffic is read then). A network that leaks no restricted trace is reported too, with
severity ``origin_hidden`` (exposure under ``min_exposure``), else ``restricted_origin_seen``;
colleagues on their company's domain (one corporate card, one egress, one onboarding wave) are
not. The fit of the members' hours to a restricted capital's clock is evidence only: every
European and East Asian office fits one. Every threshold (``GraphThresholds``) can be set under
``[analytics.graph]``; see docs/analytics-graph-campaigns.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from geowarden.analytics.common import DAY_MS, group_id, iso, ramp, say, short_hash
from geowarden.analytics.exposure import Profile, account_profiles, combos
from geowarden.analytics.findings import SEVERITIES, AnalysisContext, Finding
from geowarden.analytics.hours import activity_hours, declared_fit, hour_mismatch
from geowarden.analytics.links import KINDS, STRONG, Links, add_bursts, build_links, memberships, shown
from geowarden.analytics.orgs import legitimacy, organisational
from geowarden.analytics.thresholds import GraphThresholds
from geowarden.signals.email import organisational_candidate

NAME = "graph"
KIND = "account_cluster"
THRESHOLDS = GraphThresholds
DEFAULTS = THRESHOLDS.defaults()
#: Weights of what coordinates a network whatever its exposure: members created in one wave, new
#: members, anonymiser traffic, activity out of the clock the clients declare (noisy-or).
COORDINATION = (0.6, 0.6, 0.5, 0.6)


def run(ctx: AnalysisContext) -> list[Finding]:
    """Account clusters linked by payment, phone, device, prefix and creation bursts, scored by
    size, links, restricted exposure and behaviour; only flagged clusters are returned."""
    t = THRESHOLDS.read(ctx.settings)
    say(ctx, "graph: accounts by network, user agent and origin")
    origins = combos(ctx).cache()
    try:
        say(ctx, "graph: shared values")
        links = add_bursts(ctx, build_links(memberships(ctx, origins, t), t), t)
        label, clusters = components(links, t)
        # the links inside each component, grouped by component
        inside = np.flatnonzero((label[links.a] == label[links.b]) & (label[links.a] >= 0))
        inside = inside[np.argsort(label[links.a[inside]], kind="stable")]
        cuts = np.searchsorted(label[links.a[inside]], np.arange(len(clusters) + 1))
        shapes = [_shape(links, m, inside[cuts[c] : cuts[c + 1]]) for c, m in enumerate(clusters)]
        # only a cluster whose size and links could carry it over the threshold is looked at closer
        shapes = [c for c in shapes if c.size_factor * c.link_factor >= t.flag_score]
        say(ctx, f"graph: {len(clusters)} components of {int(t.min_size)}+ accounts, {len(shapes)} to score")
        ids = [a for c in shapes for a in c.ids]
        profiles = account_profiles(ctx, ids, origins) if shapes else {}
    finally:
        origins.release()
    hours = activity_hours(ctx, ids) if shapes else {}
    when = _middle(profiles)
    clocks = declared_fit(ctx, ids, when) if shapes else {}
    domains = [q.email_domain for q in profiles.values() if q.email_domain]
    orgs = organisational(ctx, domains, t.org_max_accounts) if domains else frozenset()
    findings = [
        f for c in shapes if (f := _score(links, c, profiles, hours, clocks, ctx.restricted, orgs, t)) is not None
    ]
    findings.sort(key=lambda f: (-f.score, f.subject))
    return findings


def _middle(profiles: dict[str, Profile]) -> int:
    """The middle of the profiled accounts' traffic (the day whose zone offsets are used)."""
    if not profiles:
        return 0
    return (min(q.first_ms for q in profiles.values()) + max(q.last_ms for q in profiles.values())) // 2


def components(links: Links, t: GraphThresholds) -> tuple[npt.NDArray[np.int64], list[npt.NDArray[np.int64]]]:
    """The connected components of ``min_size`` accounts or more: each account's component
    (index into the list, -1 for none) and the members (account indexes) of each."""
    n = len(links.accounts)
    if n == 0:
        return np.zeros(0, np.int64), []
    key = links.a * n + links.b
    uniq, inverse = np.unique(key, return_inverse=True)
    strength = np.bincount(inverse, weights=links.weight, minlength=len(uniq))
    strong = strength >= t.min_edge - 1e-9
    ea, eb = uniq[strong] // n, uniq[strong] % n
    graph = coo_matrix((np.ones(len(ea)), (ea, eb)), shape=(n, n)).tocsr()
    count, label = connected_components(graph, directed=False)
    sizes = np.bincount(label, minlength=count)
    big = np.flatnonzero(sizes >= max(t.min_size, 2))
    # number the kept components by their smallest member, so the order does not depend on scipy
    order = np.argsort(label, kind="stable")
    bounds = np.r_[0, np.cumsum(sizes)]
    clusters = sorted((order[bounds[c] : bounds[c + 1]] for c in big), key=lambda m: int(m[0]))
    out = np.full(n, -1, dtype=np.int64)
    for i, members in enumerate(clusters):
        out[members] = i
    return out, clusters


@dataclass(frozen=True, slots=True)
class Shape:
    """A component's members and links, before any traffic is read."""

    ids: list[str]
    sel: npt.NDArray[np.int64]  # its links (indexes into ``Links``)
    counts: dict[str, int]  # linked pairs by kind
    strong_members: int
    burst_members: int
    size_factor: float
    link_factor: float


def _shape(links: Links, members: npt.NDArray[np.int64], sel: npt.NDArray[np.int64]) -> Shape:
    kind = links.kind[sel]
    is_strong = np.isin(kind, [KINDS.index(k) for k in STRONG])
    is_burst = kind == KINDS.index("burst")
    strong = np.union1d(links.a[sel][is_strong], links.b[sel][is_strong])
    size = len(members)
    return Shape(
        ids=[links.accounts[i] for i in members],
        sel=sel,
        counts={k: int((kind == i).sum()) for i, k in enumerate(KINDS) if (kind == i).any()},
        strong_members=len(strong),
        burst_members=len(np.union1d(links.a[sel][is_burst], links.b[sel][is_burst])),
        size_factor=max(0.0, 1 - math.exp(-(size - 2) / 4)),
        link_factor=0.5 + 0.5 * len(strong) / size,
    )


def _score(
    links: Links,
    c: Shape,
    profiles: dict[str, Profile],
    hours: dict[str, tuple[str | None, npt.NDArray[np.int64]]],
    clocks: dict[str, dict[str, int]],
    restricted_places: frozenset[str],
    organisations: frozenset[str],
    t: GraphThresholds,
) -> Finding | None:
    """The finding for one component, or None when it is not flagged."""
    size = len(c.ids)
    profs = [profiles[a] for a in c.ids if a in profiles]
    if not profs:
        return None
    events = sum(q.events for q in profs)
    exposed = [q.exposure(t) for q in profs]
    when = (min(q.first_ms for q in profs) + max(q.last_ms for q in profs)) // 2
    diurnal = hour_mismatch([hours[a] for a in c.ids if a in hours], restricted_places, when, t.hours_min_requests)
    member_exposure = sum(exposed) / size
    exposure = member_exposure
    new = sum(q.created_ms is not None and q.created_ms >= q.first_ms - t.new_account_days * DAY_MS for q in profs)
    anon_share = sum(q.anonymised for q in profs) / events if events else 0.0
    behaviour = (anon_share + c.burst_members / size + new / size) / 3
    risk = min(1.0, exposure * (0.7 + 0.6 * behaviour))
    declared = sum(clocks[a]["requests"] for a in c.ids if a in clocks)
    waking = sum(clocks[a]["waking"] for a in c.ids if a in clocks)
    fit = waking / declared if declared >= t.hours_min_requests else None
    clock = ramp(1 - fit, t.clock_low, t.clock_high) if fit is not None else 0.0
    parts = (c.burst_members / size, new / size, anon_share, clock)
    coordination = 1 - math.prod(1 - w * x for w, x in zip(COORDINATION, parts, strict=True))
    domains = [q.email_domain for q in profs]
    legit_share, org = legitimacy(domains, organisations)
    legit = ramp(legit_share, t.legit_low, t.legit_high)
    throwaway = sum(1 for d in domains if d and not organisational_candidate(d)) / size  # free-mail, disposable
    hidden = coordination * (0.5 + 0.5 * throwaway) * (1 - legit)
    score = c.size_factor * c.link_factor * max(math.sqrt(risk), hidden)
    if score < t.flag_score:
        return None
    severity = SEVERITIES[1] if exposure >= t.min_exposure else SEVERITIES[0]
    sel = c.sel
    rank = np.lexsort((links.b[sel], links.a[sel], -links.weight[sel], links.kind[sel]))
    examples = [
        [
            links.accounts[int(links.a[i])],
            links.accounts[int(links.b[i])],
            KINDS[int(links.kind[i])],
            shown(KINDS[int(links.kind[i])], links.values[int(links.group[i])], t.burst_minutes),
        ]
        for i in sel[rank][: int(t.max_examples)]
    ]
    restricted = sum(q.restricted for q in profs)
    evidence: dict[str, Any] = {
        "size": size,
        "links": c.counts,
        "strong_link_members": c.strong_members,
        "burst_members": c.burst_members,
        "new_members": new,
        "example_links": examples,
        "exposure": {
            "exposure": round(exposure, 4),
            "member_exposure": round(member_exposure, 4),
            "exposed_members": sum(e > 0 for e in exposed),
            "restricted_requests": restricted,
            "restricted_traffic_share": round(restricted / events, 4) if events else 0.0,
            "declared_restricted_members": sum(q.declared_restricted for q in profs),
            "tz_restricted_members": sum(q.tz_hinted(t) for q in profs),
            "lang_restricted_members": sum(q.lang_hinted(t) for q in profs),
            "anonymiser_share": round(anon_share, 4),
            "activity_hours": diurnal or None,
        },
        "declared_clock": {
            "requests": declared,
            "waking_share": None if fit is None else round(fit, 4),
            "mismatch": round(clock, 4),
        },
        "requests": events,
        "first_seen": iso(min((q.first_ms for q in profs), default=None)),
        "last_seen": iso(max((q.last_ms for q in profs), default=None)),
        "organisation": {
            "share": round(legit_share, 4),
            "domain": None if org is None else f"#{short_hash(org, 8)}",
            "legitimacy": round(legit, 4),
            "free_mail_share": round(throwaway, 4),
        },
        "factors": {
            "size": round(c.size_factor, 4),
            "links": round(c.link_factor, 4),
            "behaviour": round(behaviour, 4),
            "risk": round(risk, 4),
            "coordination": round(coordination, 4),
            "hidden": round(hidden, 4),
        },
    }
    members = tuple(sorted(c.ids))
    return Finding(KIND, group_id("cluster", c.ids), min(score, 1.0), evidence, members, severity)
