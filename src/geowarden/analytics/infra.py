"""Infrastructure carrying traffic for many unrelated accounts (``infrastructure``): resellers'
relays, proxy services, VPN exits that a restricted clientele uses.

The unit is a network prefix (/24 or /48) and an ASN. Many accounts on one network is normal in
places — a consumer ISP's ASN, a mobile carrier's NAT, a company's secure web gateway (Zscaler
and the like) — so the count alone never makes a finding. A network is scored on:

- *carrier* shape: how many distinct accounts it carries (``crowd``); for a prefix, how many
  more than the typical prefix of its own ASN (``concentration``: the leave-one-out mean of
  accounts per prefix over the ASN's other prefixes, so a mobile carrier whose every prefix is
  crowded is not concentrated); and the share of its requests from hosting, VPN, proxy or Tor
  addresses (``anonymised``);
- *restricted exposure*: the share of its accounts that are exposed — an account is exposed when
  ``leak_share`` of its requests come from restricted countries, or ``hint_share`` of them from
  clients that look restricted (``events.client_restricted``: time zone or language region).

``score = carrier * (floor + (1 - floor) * exposure)``, so a crowded gateway with an ordinary
clientele scores at most ``floor``, below ``min_score``. Only networks with ``min_accounts``
accounts (prefixes) or ``min_asn_accounts`` (ASNs) are scored; the score is computed in Python
from integer counts, identical on every backend.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from geowarden.analytics.common import asn_orgs, floored, noisy_or, ramp, rows, usage
from geowarden.analytics.findings import AnalysisContext, Finding
from geowarden.analytics.thresholds import InfraThresholds

NAME = "infra"
KIND = "infrastructure"

#: Thresholds (override with ``settings["infra"][name]``).
THRESHOLDS = InfraThresholds
DEFAULTS = THRESHOLDS.defaults()

WEIGHTS = {"crowd": 0.5, "concentration": 0.4, "anonymised": 0.4}
ASN_WEIGHTS = {"crowd": 0.5, "anonymised": 0.5}


def run(ctx: AnalysisContext) -> list[Finding]:
    t = THRESHOLDS.read(ctx.settings)
    with usage(ctx) as use:
        return _run(ctx, t, use)


def _run(ctx: AnalysisContext, t: InfraThresholds, base: Any) -> list[Finding]:
    per_account = base.group_by("account_id").aggregate(n=base.n.sum(), r=base.r.sum(), cr=base.cr.sum())
    exposed = per_account.select(
        account_id=per_account.account_id,
        exposed=(
            ((per_account.r >= per_account.n * t.leak_share) & (per_account.r > 0))
            | ((per_account.cr >= per_account.n * t.hint_share) & (per_account.cr > 0))
        ).cast("int64"),
    )
    prefixes = _prefixes(ctx, t, base, exposed)
    asns = _asns(ctx, t, base, exposed, [f.subject for f in prefixes])
    out = _with_members(base, exposed, "prefix", prefixes) + _with_members(base, exposed, "asn", asns)
    out.sort(key=lambda f: (-f.score, f.subject))
    return out


def _with_members(base: Any, exposed: Any, unit: str, found: list[Finding]) -> list[Finding]:
    """The findings with their members: the exposed accounts that reached the network through
    its anonymising part (hosting, VPN, proxy: a relay's customers, not an expat at home on the
    same ISP), and the keys they used there (so that flags reach them)."""
    if not found:
        return found
    values: list[Any] = [f.subject for f in found] if unit == "prefix" else [int(f.subject[2:]) for f in found]
    on = base.filter(base[unit].isin(values) & (base.anon > 0)).join(exposed.filter(exposed.exposed == 1), "account_id")
    accounts: dict[Any, set[str]] = {}
    keys: dict[Any, set[str]] = {}
    for r in rows(on.select(unit, "account_id", "key").distinct()):
        accounts.setdefault(r[unit], set()).add(r["account_id"])
        if r["key"] is not None:
            keys.setdefault(r[unit], set()).add(r["key"])
    out = []
    for f, v in zip(found, values, strict=True):
        out.append(replace(f, members=tuple(sorted(accounts.get(v, ()))), keys=tuple(sorted(keys.get(v, ())))))
    return out


def _prefixes(ctx: AnalysisContext, t: InfraThresholds, base: Any, exposed: Any) -> list[Finding]:
    per_prefix = base.group_by(["prefix", "asn"]).aggregate(
        accounts=base.account_id.nunique(),
        keys=base.key.nunique(),
        events=base.n.sum(),
        restricted=base.r.sum(),
        anon=base.anon.sum(),
    )
    per_asn = per_prefix.group_by("asn").aggregate(
        asn_accounts=per_prefix.accounts.sum(), asn_prefixes=per_prefix.count()
    )
    cands = per_prefix.filter(per_prefix.accounts >= int(t.min_accounts))
    cands = cands.join(per_asn, "asn", how="left")
    pairs = base.semi_join(cands.select("prefix"), "prefix").select("prefix", "account_id").distinct()
    pairs = pairs.join(exposed, "account_id")
    exp = pairs.group_by("prefix").aggregate(exposed=pairs.exposed.sum())
    found = rows(cands.join(exp, "prefix", how="left"))
    examples = _examples(pairs, "prefix", int(t.examples))
    orgs = asn_orgs(ctx, {r["asn"] for r in found if r["asn"] is not None})
    out = []
    for r in found:
        n_acc = int(r["accounts"])
        others = int(r["asn_prefixes"] or 1) - 1
        expected = (int(r["asn_accounts"] or n_acc) - n_acc) / others if others > 0 else None
        ratio = n_acc / max(expected, 1.0) if expected is not None else 1.0
        events = int(r["events"])
        parts = {
            "crowd": ramp(n_acc, t.min_accounts, t.many_accounts),
            "concentration": ramp(ratio, 1.0, t.concentration),
            "anonymised": int(r["anon"]) / events,
        }
        exposed_n = int(r["exposed"] or 0)
        share = exposed_n / n_acc
        exposure = ramp(share, 0.0, t.exposed_share)
        f = _finding(t, str(r["prefix"]), parts, WEIGHTS, exposure)
        if f is None:
            continue
        asn = r["asn"]
        f.evidence.update(
            {
                "network": "prefix",
                "asn": None if asn is None else int(asn),
                "org": orgs.get(asn),
                "accounts": n_acc,
                "keys": int(r["keys"]),
                "events": events,
                "expected_accounts": None if expected is None else round(expected, 2),
                "concentration": round(ratio, 2),
                "anonymised_share": round(parts["anonymised"], 4),
                "restricted_share": round(int(r["restricted"]) / events, 4),
                "exposed_accounts": exposed_n,
                "exposed_share": round(share, 4),
                "example_accounts": examples.get(r["prefix"], []),
            }
        )
        out.append(f)
    return out


def _asns(ctx: AnalysisContext, t: InfraThresholds, base: Any, exposed: Any, flagged: list[str]) -> list[Finding]:
    """ASN findings. Exposed accounts already explained by a flagged prefix of the ASN do not
    count again (a cloud ASN is not a finding because one reseller's /24 in it is)."""
    b = base.filter(base.asn.notnull())
    per_asn = b.group_by("asn").aggregate(
        accounts=b.account_id.nunique(),
        keys=b.key.nunique(),
        prefixes=b.prefix.nunique(),
        events=b.n.sum(),
        restricted=b.r.sum(),
        anon=b.anon.sum(),
    )
    cands = per_asn.filter(per_asn.accounts >= int(t.min_asn_accounts))
    pairs = b.semi_join(cands.select("asn"), "asn").select("asn", "account_id").distinct()
    pairs = pairs.join(exposed, "account_id")
    exp = pairs.group_by("asn").aggregate(exposed=pairs.exposed.sum())
    found = rows(cands.join(exp, "asn", how="left"))
    covered: dict[Any, int] = {}
    if flagged and found:
        on = b.filter(b.prefix.isin(flagged)).select("asn", "account_id").distinct()
        on = on.join(exposed.filter(exposed.exposed == 1), "account_id")
        covered = {r["asn"]: int(r["n"]) for r in rows(on.group_by("asn").aggregate(n=on.count()))}
    examples = _examples(pairs, "asn", int(t.examples))
    orgs = asn_orgs(ctx, {r["asn"] for r in found})
    out = []
    for r in found:
        n_acc = int(r["accounts"])
        events = int(r["events"])
        parts = {
            "crowd": ramp(n_acc, t.min_asn_accounts, t.many_asn_accounts),
            "anonymised": int(r["anon"]) / events,
        }
        exposed_n = int(r["exposed"] or 0)
        covered_n = covered.get(r["asn"], 0)
        share = (exposed_n - covered_n) / n_acc
        exposure = ramp(share, 0.0, t.asn_exposed_share)
        asn = int(r["asn"])
        f = _finding(t, f"AS{asn}", parts, ASN_WEIGHTS, exposure)
        if f is None:
            continue
        f.evidence.update(
            {
                "network": "asn",
                "asn": asn,
                "org": orgs.get(asn),
                "accounts": n_acc,
                "keys": int(r["keys"]),
                "prefixes": int(r["prefixes"]),
                "events": events,
                "anonymised_share": round(parts["anonymised"], 4),
                "restricted_share": round(int(r["restricted"]) / events, 4),
                "exposed_accounts": exposed_n,
                "exposed_on_flagged_prefixes": covered_n,
                "exposed_share": round(share, 4),
                "example_accounts": examples.get(asn, []),
            }
        )
        out.append(f)
    return out


def _finding(
    t: InfraThresholds, subject: str, parts: dict[str, float], weights: dict[str, float], exposure: float
) -> Finding | None:
    carrier = noisy_or(parts, weights)
    score = carrier * floored(exposure, t.floor)
    if score < t.min_score:
        return None
    evidence = {
        "carrier": round(carrier, 4),
        "exposure": round(exposure, 4),
        "components": {k: round(v, 4) for k, v in parts.items()},
    }
    return Finding(kind=KIND, subject=subject, score=round(score, 6), evidence=evidence)


def _examples(pairs: Any, unit: str, limit: int) -> dict[Any, list[str]]:
    """Up to ``limit`` exposed accounts per network (the smallest ids: deterministic on every
    backend)."""
    import ibis  # noqa: PLC0415

    ex = pairs.filter(pairs.exposed == 1)
    ex = ex.mutate(rank=ibis.row_number().over(group_by=ex[unit], order_by=ex.account_id))
    ex = ex.filter(ex["rank"] < limit)
    out: dict[Any, list[str]] = {}
    for r in rows(ex.select(unit, "account_id", "rank")):
        out.setdefault(r[unit], []).append(r["account_id"])
    return {k: sorted(v) for k, v in out.items()}
