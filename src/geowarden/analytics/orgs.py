"""Organisations as evidence of legitimacy: which sign-up e-mail domains are an organisation's.

A team of colleagues looks like a network (one corporate card, one egress, one onboarding wave);
what tells it apart is that its members signed up with their organisation's own e-mail domain.
A domain is *organisational* when it is not a free-mail provider (the big ones listed here, and
any domain held by more than ``max_accounts`` accounts of the accounts table: thousands of
unrelated people do not share an employer's domain), not a disposable-mail domain
(``disposable_email_domains``) and not a mail provider of a restricted country (the email
signal's list). ``legitimacy`` is the share of a group's members on its most common
organisational domain.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from geowarden.analytics.common import rows
from geowarden.analytics.findings import AnalysisContext
from geowarden.signals.email import organisational_candidate


def organisational(ctx: AnalysisContext, domains: Sequence[str], max_accounts: float) -> frozenset[str]:
    """Which of ``domains`` are organisational: candidates held by at most ``max_accounts``
    accounts of the accounts table (one group-by over the candidates)."""
    wanted = sorted({d.lower() for d in domains if organisational_candidate(d)})
    if not wanted or ctx.accounts is None:
        return frozenset(wanted)
    ac = ctx.accounts
    dom = ac.email_domain.lower()
    held = ac.filter(dom.isin(wanted)).group_by(dom.name("d")).agg(n=ac.account_id.nunique())
    counts = {r["d"]: int(r["n"]) for r in rows(held)}
    return frozenset(d for d in wanted if counts.get(d, 0) <= max_accounts)


def legitimacy(domains: Sequence[str | None], organisations: frozenset[str]) -> tuple[float, str | None]:
    """(share of the members on their most common organisational domain, that domain)."""
    if not domains:
        return 0.0, None
    common = Counter(d.lower() for d in domains if d and d.lower() in organisations).most_common(1)
    if not common:
        return 0.0, None
    domain, n = common[0]
    return n / len(domains), domain
