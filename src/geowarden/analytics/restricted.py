"""Restricted use (``restricted_use``) and restricted clients behind foreign exits
(``restricted_client``), per API key and per account: what ends in "close this key / account".

From the shared usage table (``common.usage``: requests by account, key, prefix, ASN and country,
with ``r`` from restricted countries, ``cr`` with restricted-looking clients, ``anon`` through
hosting, VPN, proxy or Tor addresses), one group-by per subject (key, account):

- ``restricted_use``: ``use_requests`` requests or more from restricted countries, at least
  ``use_share`` of the subject's requests. A reseller's key used round the clock from restricted
  consumer networks, a person using the API from a restricted country. The live path blocks each
  request; this finding tells compliance to close the key or the account.
- ``restricted_client``: of the requests from elsewhere, ``client_requests`` or more — and at
  least ``client_share`` of them — came from clients whose time zone is used only in restricted
  jurisdictions or whose primary language region is restricted, and ``client_anon_share`` of them
  left through hosting, VPN or proxy exits. A share over many requests, not one request: an
  expat at home with their home clock is on a residential line (not anonymised) and is not one.

``score = (1 - exp(-count / threshold)) * share`` (count and share of the restricted requests,
or of the restricted-client requests). Members are the accounts (of a key) or the account;
``keys`` the keys (of an account) or the key, so that flags reach both.
"""

from __future__ import annotations

import math
from typing import Any

from geowarden.analytics.common import rows, usage
from geowarden.analytics.findings import AnalysisContext, Finding
from geowarden.analytics.thresholds import RestrictedThresholds

NAME = "restricted"
USE = "restricted_use"
CLIENT = "restricted_client"
THRESHOLDS = RestrictedThresholds
DEFAULTS = THRESHOLDS.defaults()
#: Accounts or keys listed with a finding about a key or an account.
MAX_LISTED = 200


def run(ctx: AnalysisContext) -> list[Finding]:
    """Restricted-use and restricted-client findings on keys and accounts."""
    t = THRESHOLDS.read(ctx.settings)
    out: list[Finding] = []
    with usage(ctx) as use:
        for unit, other in (("key", "account_id"), ("account_id", "key")):
            out.extend(_findings(use, unit, other, t))
    out.sort(key=lambda f: (f.kind, -f.score, f.subject))
    return out


def _findings(use: Any, unit: str, other: str, t: RestrictedThresholds) -> list[Finding]:
    b = use.filter(use[unit].notnull())
    foreign = b.r == 0  # a row is one country: restricted (every request) or not (none)
    per = b.group_by(unit).aggregate(
        n=b.n.sum(),
        r=b.r.sum(),
        foreign_n=b.n.sum(where=foreign).fill_null(0),
        foreign_cr=b.cr.sum(where=foreign).fill_null(0),
        foreign_anon=b.anon.sum(where=foreign).fill_null(0),
        r_prefixes=b.prefix.nunique(where=b.r > 0),
        r_asns=b.asn.nunique(where=b.r > 0),
        prefixes=b.prefix.nunique(),
        countries=b.country.nunique(),
        others=b[other].nunique(),
    )
    cand = per.filter(
        ((per.r >= t.use_requests) & (per.r >= per.n * t.use_share))
        | (
            (per.foreign_cr >= t.client_requests)
            & (per.foreign_cr >= per.foreign_n * t.client_share)
            & (per.foreign_anon >= per.foreign_n * t.client_anon_share)
        )
    )
    found = rows(cand)
    if not found:
        return []
    subjects = [r[unit] for r in found]
    linked: dict[str, list[str]] = {}
    pairs = b.filter(b[unit].isin(subjects) & b[other].notnull()).select(unit, other).distinct()
    for r in rows(pairs):
        linked.setdefault(r[unit], []).append(r[other])
    out = []
    what = "key" if unit == "key" else "account"
    for r in found:
        n, restricted = int(r["n"]), int(r["r"])
        fn, fcr, fanon = int(r["foreign_n"]), int(r["foreign_cr"]), int(r["foreign_anon"])
        others = sorted(linked.get(r[unit], []))
        evidence: dict[str, Any] = {
            "subject_type": what,
            "action": f"close this {what}",
            "requests": n,
            "restricted_requests": restricted,
            "restricted_share": round(restricted / n, 4) if n else 0.0,
            "restricted_prefixes": int(r["r_prefixes"]),
            "restricted_asns": int(r["r_asns"]),
            "prefixes": int(r["prefixes"]),
            "countries": int(r["countries"]),
            "requests_elsewhere": fn,
            "restricted_client_requests": fcr,
            "restricted_client_share": round(fcr / fn, 4) if fn else 0.0,
            "anonymised_share_elsewhere": round(fanon / fn, 4) if fn else 0.0,
            ("accounts" if unit == "key" else "keys"): len(others),
        }
        if restricted >= t.use_requests and restricted >= n * t.use_share:
            kind, score = USE, (1 - math.exp(-restricted / t.use_requests)) * restricted / n
        else:
            kind, score = CLIENT, (1 - math.exp(-fcr / t.client_requests)) * fcr / fn
        listed = tuple(others[:MAX_LISTED])
        subject = str(r[unit])
        members, keys = (listed, (subject,)) if unit == "key" else ((subject,), listed)
        out.append(Finding(kind, subject, round(min(score, 1.0), 6), evidence, members, keys=keys))
    return out
