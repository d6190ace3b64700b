"""Small helpers shared by the analyses: thresholds, ramps, and bringing small results home."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from geowarden.errors import ConfigError

if TYPE_CHECKING:
    from geowarden.analytics.findings import AnalysisContext


def number_setting(analysis: str, name: str, value: Any) -> float:
    """A threshold as a number; anything else (text, a boolean, a negative number) is a
    ConfigError naming it."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ConfigError(f"settings: {analysis}.{name} must be a non-negative number, not {value!r}")
    return float(value)


def ramp(value: float, low: float, high: float) -> float:
    """0 at ``low`` or below, 1 at ``high`` or above, linear between."""
    if high <= low:
        return 1.0 if value >= high else 0.0
    return min(1.0, max(0.0, (value - low) / (high - low)))


def noisy_or(parts: Mapping[str, float], weights: Mapping[str, float]) -> float:
    """``1 - prod(1 - w * p)``: each part can raise the result, none alone reaches its weight's
    complement, and together they saturate towards 1."""
    keep = 1.0
    for name, value in parts.items():
        keep *= 1 - weights[name] * value
    return 1 - keep


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
        anon=(ev.hosting | ev.vpn | ev.proxy | ev.tor).fill_null(False).cast("int64"),
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
