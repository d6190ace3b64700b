"""Restricted exposure of accounts: which values of the log point to a restricted jurisdiction
(``restricted_markers``), each account's traffic as far as exposure and age go (``Profile``,
read for a few accounts by ``account_profiles``), and the exposure of a group of accounts
(``group_exposure``). Shared by the account graph, campaigns and model shifts.

An account is *exposed* (``Profile.exposure``) when it declared a restricted country or sends
``leak_share`` of its requests from one (1); else 0.5 for each hint — a time zone used only in
restricted jurisdictions, a primary language tagged with a restricted region — on
``hint_share`` of its requests (the thresholds of ``ExposureThresholds``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from geowarden.analytics.common import DAY_MS, HOUR_MS, account_table, anonymised, rows
from geowarden.analytics.findings import AnalysisContext
from geowarden.analytics.thresholds import ExposureThresholds
from geowarden.signals.client import ZONE_JURISDICTIONS, parse_accept_language, zones

NEVER = "\x00"  # a value no column holds (isin needs one)


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
    email_domain: str | None = None

    def exposure(self, t: ExposureThresholds) -> float:
        """1 when the account declared a restricted country or sends ``leak_share`` of its
        requests from one; else 0.5 for each hint (a restricted time zone, a restricted primary
        language region) on ``hint_share`` of its requests: settings, not places."""
        n = max(self.events, 1)
        if self.declared_restricted or (self.restricted > 0 and self.restricted >= t.leak_share * n):
            return 1.0
        return 0.5 * self.tz_hinted(t) + 0.5 * self.lang_hinted(t)

    def tz_hinted(self, t: ExposureThresholds) -> bool:
        """A restricted time zone on ``hint_share`` of its requests (and at least one)."""
        return self.tz_restricted >= t.hint_share * max(self.events, 1) > 0

    def lang_hinted(self, t: ExposureThresholds) -> bool:
        """A restricted primary language region on ``hint_share`` of its requests (and at least one)."""
        return self.lang_restricted >= t.hint_share * max(self.events, 1) > 0

    def new_since(self, since_ms: int, days: float, margin_hours: float, log_start_ms: int) -> bool:
        """Created within ``days`` before ``since_ms``; without a creation time, first seen in the
        log at most ``margin_hours`` before ``since_ms`` (and not in the log's first
        ``margin_hours``, where everybody is first seen)."""
        if self.created_ms is not None:
            return self.created_ms >= since_ms - days * DAY_MS
        margin = margin_hours * HOUR_MS
        return self.first_ms >= max(log_start_ms + margin, since_ms - margin)


def _isin(column: Any, values: Sequence[str]) -> Any:
    return column.isin(list(values) or [NEVER]).fill_null(False)


def combos(ctx: AnalysisContext) -> Any:
    """One pass over the events: requests (and first and last time) by account, network, user
    agent, country, time zone, language and labels. The account graph reads both its links and
    its members' profiles (``account_profiles(..., source=combos(ctx))``) from it."""
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
    """Profiles of the given accounts. On the backend, their requests (``source``: a ``combos``
    table, default the events) by account and origin (country, time zone, language, anonymiser),
    few rows; the markers and the sums in Python; creation time and declared country from the
    accounts table."""
    if not ids:
        return {}
    wanted = account_table(ids)
    base = ctx.events if source is None else source
    t = base.join(wanted, "account_id", how="semi")
    if source is None:
        anon = anonymised(t)
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
    table = t.group_by(keys).agg(events=count, first_ms=first, last_ms=last).to_pyarrow()
    markers = restricted_markers(
        ctx.restricted, pc.unique(table["client_tz"]).to_pylist(), pc.unique(table["accept_language"]).to_pylist()
    )
    n = table["events"]
    zero = pa.scalar(0, pa.int64())

    def where(mask: Any) -> Any:
        return pc.if_else(pc.fill_null(mask, False), n, zero)

    table = table.append_column(
        "restricted", where(pc.is_in(table["country"], value_set=pa.array(markers.countries, pa.string())))
    )
    table = table.append_column("anonymised", where(table["anon"]))
    table = table.append_column(
        "tz_restricted", where(pc.is_in(table["client_tz"], value_set=pa.array(markers.timezones, pa.string())))
    )
    table = table.append_column(
        "lang_restricted", where(pc.is_in(table["accept_language"], value_set=pa.array(markers.languages, pa.string())))
    )
    sums = ["events", "restricted", "anonymised", "tz_restricted", "lang_restricted"]
    per = table.group_by("account_id").aggregate([*((c, "sum") for c in sums), ("first_ms", "min"), ("last_ms", "max")])
    accounts: dict[str, tuple[int | None, bool, str | None]] = {}
    if ctx.accounts is not None:
        ac = ctx.accounts.join(wanted, "account_id", how="semi")
        info = ac.group_by("account_id").agg(
            created_ms=(ac.created.epoch_seconds() * 1000).min(),
            declared=_isin(ac.declared_country, markers.countries).cast("int64").sum(),
            email_domain=ac.email_domain.lower().max(),
        )
        for r in rows(info):
            created, domain = r["created_ms"], r["email_domain"]
            accounts[r["account_id"]] = (None if created is None else int(created), bool(r["declared"]), domain or None)
    out: dict[str, Profile] = {}
    for r in per.to_pylist():
        created, declared, domain = accounts.get(r["account_id"], (None, False, None))
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
            email_domain=domain,
        )
    return out


def group_exposure(accounts: Sequence[str], profiles: dict[str, Profile], t: ExposureThresholds) -> dict[str, Any]:
    """Restricted exposure of ``accounts``, over those profiled (all of them, or a sample of a big
    set: then ``profiled`` says how many): the evidence of a campaign or a model shift."""
    profs = [profiles[a] for a in accounts if a in profiles]
    values = [q.exposure(t) for q in profs]
    events = sum(q.events for q in profs)
    restricted = sum(q.restricted for q in profs)
    return {
        "mean_exposure": round(sum(values) / len(profs), 4) if profs else 0.0,
        "exposed_accounts": sum(v > 0 for v in values),
        "profiled": len(profs),
        "restricted_requests": restricted,
        "restricted_traffic_share": round(restricted / events, 4) if events else 0.0,
        "anonymiser_share": round(sum(q.anonymised for q in profs) / events, 4) if events else 0.0,
    }
