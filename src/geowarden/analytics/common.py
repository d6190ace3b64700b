"""Small helpers shared by the analyses: ramps and scores, ids and times, progress, and bringing
small results home (the usage table shared by a run, ASN names, the events' client flags)."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from geowarden.analytics.findings import AnalysisContext

#: Epoch milliseconds in a minute, an hour, a day (``ts_ms`` arithmetic).
MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS


def ramp(value: float, low: float, high: float) -> float:
    """0 at ``low`` or below, 1 at ``high`` or above, linear between."""
    if high <= low:
        return 1.0 if value >= high else 0.0
    return min(1.0, max(0.0, (value - low) / (high - low)))


def floored(exposure: float, floor: float) -> float:
    """How much of a score restricted exposure lets through: ``floor`` without any, 1 with full
    exposure, linear between (a shared key or a crowded network with an ordinary clientele stays
    at ``floor`` times its shape)."""
    return floor + (1 - floor) * exposure


def crowd(accounts: int) -> float:
    """How much a coordinated group counts by its number of accounts, ``1 - exp(-accounts / 5)``:
    0.18 for one, 0.63 for five, 0.86 for ten (campaigns and model shifts)."""
    return 1 - math.exp(-accounts / 5)


def noisy_or(parts: Mapping[str, float], weights: Mapping[str, float]) -> float:
    """``1 - prod(1 - w * p)``: each part can raise the result, none alone reaches its weight's
    complement, and together they saturate towards 1."""
    keep = 1.0
    for name, value in parts.items():
        keep *= 1 - weights[name] * value
    return 1 - keep


def short_hash(value: str, n: int = 12) -> str:
    """The first ``n`` hex digits of the SHA-256 of ``value``."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:n]


def group_id(prefix: str, members: Iterable[str]) -> str:
    """A stable id for a set of accounts: ``prefix-`` and 12 hex digits of a hash of them, sorted."""
    return f"{prefix}-{short_hash(chr(10).join(sorted(members)))}"


def iso(ms: int | None) -> str | None:
    """Epoch milliseconds as an ISO 8601 UTC time to the second (None stays None)."""
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def say(ctx: AnalysisContext, message: str) -> None:
    """Report a phase of an analysis to ``ctx.progress``, if anyone listens."""
    if ctx.progress is not None:
        ctx.progress(message)


def account_table(ids: Iterable[str]) -> Any:
    """The distinct account ids as a one-column (``account_id``) in-memory table, sorted: to
    semi-join a table with, so only these accounts' rows are read."""
    import ibis  # noqa: PLC0415
    import pyarrow as pa  # noqa: PLC0415

    return ibis.memtable(pa.table({"account_id": pa.array(sorted(set(ids)), pa.string())}))


def anonymised(t: Any) -> Any:
    """Whether a request came from a hosting, VPN, proxy or Tor address (unknown: no)."""
    return (t.hosting | t.vpn | t.proxy | t.tor).fill_null(False)


def rows(expr: Any) -> list[dict[str, Any]]:
    """Execute a (small) Ibis expression on its backend: a list of dicts."""
    out: list[dict[str, Any]] = expr.to_pyarrow().to_pylist()
    return out


#: Shared tables of the runs in progress (``sharing``), by the id of their events table.
_SHARED: dict[int, dict[str, Any]] = {}


@contextmanager
def sharing(ctx: AnalysisContext) -> Iterator[None]:
    """Within this block, ``usage(ctx)`` is computed once and shared by every analysis; at its
    end it is dropped. (The block holds ``ctx``, so the id its tables are kept by stays its.)"""
    key = id(ctx.events)
    _SHARED[key] = {"ctx": ctx}
    try:
        yield
    finally:
        held = _SHARED.pop(key, {})
        if "usage" in held:
            held["usage"].release()


@contextmanager
def usage(ctx: AnalysisContext) -> Iterator[Any]:
    """Who used which network with which key, and how: the events grouped by ``account_id``,
    ``key`` (the API key), ``prefix``, ``asn`` and ``country``, with ``n`` requests, ``r`` from
    restricted countries, ``cr`` with restricted-looking clients, ``anon`` from hosting, VPN,
    proxy or Tor addresses. Far fewer rows than events, cached in the backend: for the block, or
    for the whole run inside ``sharing(ctx)``."""
    held = _SHARED.get(id(ctx.events))
    if held is not None and held.get("ctx") is ctx:
        if "usage" not in held:
            held["usage"] = _usage(ctx).cache()
        yield held["usage"]
        return
    table = _usage(ctx).cache()
    try:
        yield table
    finally:
        table.release()


def _usage(ctx: AnalysisContext) -> Any:
    ev = events(ctx)
    is_r = ev.country.isin(sorted(ctx.restricted)).fill_null(False)
    one = ev.select(
        account_id=ev.account_id,
        key=ev.api_key_id,
        prefix=ev.prefix,
        asn=ev.asn,
        country=ev.country,
        r=is_r.cast("int64"),
        cr=ev.client_restricted.fill_null(False).cast("int64"),
        anon=anonymised(ev).cast("int64"),
    )
    return one.group_by(["account_id", "key", "prefix", "asn", "country"]).aggregate(
        n=one.count(), r=one.r.sum(), cr=one.cr.sum(), anon=one.anon.sum()
    )


def asn_orgs(ctx: AnalysisContext, asns: set[Any]) -> dict[Any, str | None]:
    """The organisation of each ASN: its most common spelling in the log (ties: the first name)."""
    wanted = sorted(int(a) for a in asns if a is not None)
    if not wanted:
        return {}
    ev = ctx.events
    sub = ev.filter(ev.asn.isin(wanted) & ev.org.notnull())
    best: dict[Any, tuple[int, str]] = {}
    for r in rows(sub.group_by(["asn", "org"]).aggregate(n=sub.count())):
        cand = (-int(r["n"]), r["org"])
        if r["asn"] not in best or cand < best[r["asn"]]:
            best[r["asn"]] = cand
    return {a: v[1] for a, v in best.items()}


def events(ctx: AnalysisContext) -> Any:
    """``ctx.events`` with ``client_restricted``: as the loader made it, or (for an events table
    built another way) computed here from the distinct time zones and languages."""
    ev = ctx.events
    if "client_restricted" in ev.columns:
        return ev
    import ibis  # noqa: PLC0415

    from geowarden.analytics.enrich import client_table  # noqa: PLC0415

    pairs = rows(ev.select("client_tz", "accept_language").distinct())
    flags = client_table([(p["client_tz"], p["accept_language"]) for p in pairs], ctx.restricted)
    m = ibis.memtable(flags).select(
        _tz=lambda t: t.client_tz.fill_null(""),
        _lang=lambda t: t.accept_language.fill_null(""),
        _cr="client_restricted",
    )
    keyed = ev.mutate(_tz=ev.client_tz.fill_null(""), _lang=ev.accept_language.fill_null(""))
    j = keyed.left_join(m, ["_tz", "_lang"])
    return j.select(*ev.columns, client_restricted=j._cr.fill_null(False))
