"""Account links: what two accounts share, as weighted pairs (``Links``).

Each kind of link is one group-by on the backend, "shared value -> accounts", keeping the values
held by 2 to ``cap_<kind>`` accounts (a value shared by more is infrastructure, not a link); only
these memberships come to Python (``memberships``), where ``build_links`` makes the pairs:

- ``payment``: the same payment fingerprint (accounts table); weight 1.
- ``phone``: the same phone hash (accounts table); weight 1.
- ``device``: the same user agent on the same /24 (IPv4) or /48 (IPv6) network; weight 0.7, by
  rarity. A user agent used by more than ``ua_popular_accounts`` accounts says nothing more than
  the network, so it makes no device link.
- ``prefix``: the same /24 or /48 network; weight 0.5, by rarity (a home, a small office, a relay;
  an ISP's CGNAT range or a big egress is over the cap). Tor exits make no link; VPN and proxy
  networks count ``anon_discount`` as much (their customers are strangers to each other).
  Hosting networks make no prefix link either: co-tenants of a cloud /24 are strangers; there a
  ``device`` link needs the same exact address and user agent.
- ``burst`` (``add_bursts``): two accounts already linked by something above, created within
  ``burst_minutes`` of each other with the same e-mail domain, organisation or declared country
  (accounts table); weight 0.2: never a link alone, it strengthens the others.

Rarity is ``sqrt(2 / accounts sharing the value)`` (1 for two accounts). Groups above
``pair_limit`` accounts link as a star. A shared value appears in evidence only through
``shown`` (a prefix as is, everything else as a short hash).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import ibis
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from geowarden.analytics.common import MINUTE_MS, account_table, iso, short_hash
from geowarden.analytics.findings import AnalysisContext
from geowarden.analytics.thresholds import GraphThresholds

WEIGHTS: dict[str, float] = {"payment": 1.0, "phone": 1.0, "device": 0.7, "prefix": 0.5, "burst": 0.2}
KINDS: tuple[str, ...] = tuple(WEIGHTS)  # link kinds, strongest first
STRONG: frozenset[str] = frozenset({"payment", "phone", "device"})
RARITY_DISCOUNTED: frozenset[str] = frozenset({"device", "prefix"})
BURST_ATTRIBUTES: tuple[str, ...] = ("email_domain", "organisation", "declared_country")
SEP = "\x1f"

#: One letter per link kind, to tell the rows of the one result apart.
CODES: dict[str, str] = {"payment": "P", "phone": "H", "device": "D", "prefix": "N"}


def _triples(combos: Any) -> Any:
    """(account, prefix, user agent) with whether the network is a VPN or proxy (``anon``), a Tor
    exit (``tor``) or a hosting network (``hosting``)."""
    t = combos.filter(combos.prefix.notnull())
    return t.group_by(["account_id", "prefix", "user_agent"]).agg(
        anon=(t.vpn | t.proxy).any(), tor=t.tor.any(), hosting=t.hosting.any()
    )


def _hosted_devices(ctx: AnalysisContext) -> Any:
    """(account, exact address + user agent) on hosting networks, with ``anon``: co-tenants of a
    cloud /24 are strangers, so there only the same address and client link two accounts."""
    ev = ctx.events
    t = ev.filter(
        ev.hosting.fill_null(False)
        & ~ev.tor.fill_null(False)
        & ev.account_id.notnull()
        & ev.user_agent.notnull()
        & (ev.user_agent != "")
    )
    return t.group_by(["ip", "user_agent", "account_id"]).agg(anon=(t.vpn | t.proxy).fill_null(False).any())


def _capped(rows: Any, keys: list[str], low: int, cap: int) -> Any:
    """``rows`` (one per account and key) of the keys held by ``low``..``cap`` accounts, with the
    key's ``size`` and ``anon_any``."""
    sizes = rows.group_by(keys).agg(size=rows.count(), anon_any=rows.anon.any())
    return rows.join(sizes.filter((sizes.size >= low) & (sizes.size <= cap)), keys)


def memberships(ctx: AnalysisContext, combos: Any, t: GraphThresholds) -> pa.Table:
    """Rows ``kind, value, account_id, size, anon`` of every shared value held by 2..cap accounts,
    sorted by kind, value and account. One group-by per kind on the backend: prefixes and devices
    from ``combos`` (``exposure.combos``), payment fingerprints and phone hashes from the accounts
    table."""
    triples = _triples(combos)
    linkable = triples.filter(~triples.tor & ~triples.hosting)
    nets = linkable.group_by(["prefix", "account_id"]).agg(anon=linkable.anon.any())
    nets = _capped(nets, ["prefix"], 2, int(t.cap_prefix))
    parts = [
        nets.select(
            code=ibis.literal("N"), value=nets.prefix, account_id=nets.account_id, size=nets.size, anon=nets.anon_any
        )
    ]
    with_ua = linkable.filter(linkable.user_agent.notnull() & (linkable.user_agent != ""))
    # popularity counts every account that sent the user agent, hosting networks included
    agents = triples.filter(~triples.tor & triples.user_agent.notnull() & (triples.user_agent != ""))
    users = agents.select("user_agent", "account_id").distinct()
    popular = users.group_by("user_agent").agg(n_ua=users.count())
    rare = popular.filter(popular.n_ua <= int(t.ua_popular_accounts)).select("user_agent")
    dev = with_ua.join(rare, "user_agent", how="semi").select("prefix", "user_agent", "account_id", "anon")
    dev = _capped(dev, ["prefix", "user_agent"], 2, int(t.cap_device))
    parts.append(
        dev.select(
            code=ibis.literal("D"),
            value=dev.prefix.concat(SEP, dev.user_agent),
            account_id=dev.account_id,
            size=dev.size,
            anon=dev.anon_any,
        )
    )
    hosted = _hosted_devices(ctx).join(rare, "user_agent", how="semi")
    hosted = _capped(hosted, ["ip", "user_agent"], 2, int(t.cap_device))
    parts.append(
        hosted.select(
            code=ibis.literal("D"),
            value=hosted.ip.concat(SEP, hosted.user_agent),
            account_id=hosted.account_id,
            size=hosted.size,
            anon=hosted.anon_any,
        )
    )
    if ctx.accounts is not None:
        ac = ctx.accounts.filter(ctx.accounts.account_id.notnull())
        caps = {"payment": t.cap_payment, "phone": t.cap_phone}
        for kind, column in (("payment", "payment_fingerprint"), ("phone", "phone_hash")):
            col = ac[column]
            held = ac.filter(col.notnull() & (col != "")).select("account_id", value=col, anon=ibis.literal(False))
            held = _capped(held.distinct(), ["value"], 2, int(caps[kind]))
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


def build_links(table: pa.Table, t: GraphThresholds) -> Links:
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
    g_weight = np.where(anon_row[starts], g_weight * t.anon_discount, g_weight)
    left, right, grp = _pairs(starts, sizes, int(t.pair_limit))
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


def add_bursts(ctx: AnalysisContext, links: Links, t: GraphThresholds) -> Links:
    """``links`` and a ``burst`` link for each linked pair created within ``burst_minutes`` of each
    other with the same e-mail domain, organisation or declared country (the first that agrees)."""
    window = t.burst_minutes * MINUTE_MS
    if ctx.accounts is None or window <= 0 or len(links.a) == 0:
        return links
    ac = ctx.accounts.join(account_table(links.accounts), "account_id", how="semi")
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
        if "/" not in prefix:  # an exact address on a hosting network: shown as its address hash
            prefix = f"addr:{short_hash(prefix, 8)}"
        return f"{prefix} ua:{short_hash(agent, 8)}"
    if kind == "burst":
        attribute, _, rest = value.partition(SEP)
        attr_value, _, when = rest.rpartition(SEP)
        start = iso(int(when)) if when.lstrip("-").isdigit() else "?"
        return f"created {start} +{int(burst_minutes)}m, same {attribute} #{short_hash(attr_value, 8)}"
    return f"#{short_hash(value)}"
