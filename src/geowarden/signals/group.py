"""The group signal: accounts linked by one payment instrument, judged together as they are used.

A commercial account network ("hydra": thousands of light accounts, each under every per-account
threshold) is invisible one request at a time: each request is an address on a proxy, a VPN or a
cloud, with a clock and a language that match it. What gives it away live is that its accounts are
not independent: they pay with a few cards (about ten accounts a card), sign up with throwaway
identities, are new, and send their traffic through anonymising exits. Honest groups share cards
too: families (two to four accounts, at home) and company teams (on a corporate card, with their
organisation's e-mail domain, from a registered egress).

For every request that carries the account's payment fingerprint (the processor's opaque id of the
card, never the number), the signal adds the request to its group's state (``geowarden.state``,
one batch with the behaviour signal's store) and reads back, over the group:

- the distinct accounts seen on the instrument in the last 7 days, or, when the request says how
  many accounts the provider's billing records hold on it (``Facts.payment_accounts``: a sign-up
  check sees the whole group before most of its accounts send anything), that number if larger;
- over the last 24 h, the group's requests and the shares of them from accounts with a throwaway
  identity (free-mail, disposable or a restricted country's mail provider, as ``signals.email``
  judges a domain: not an organisation's), through hosting, VPN, proxy or Tor exits, and from
  accounts created within the policy's ``group_new_days``.

``ACCOUNT_GROUP`` carries these figures whenever the group has more than one account;
``ACCOUNT_GROUP_COORDINATED`` says the policy's thresholds (its ``behaviour:`` section, ``group_*``)
are crossed: enough accounts, enough requests, mostly throwaway identities, and anonymised exits
or new accounts. The instrument is hashed before it names any state (the store never holds it).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from typing import Any

from geowarden.model import Evidence, Facts
from geowarden.signals.base import BaseSignal, Found, SignalContext, meanings
from geowarden.signals.email import domain_of, organisational_candidate
from geowarden.signals.thresholds import BehaviourConfig
from geowarden.state.base import Count, Distinct, Op

NAME = "group"
WINDOW = 7 * 86400  # distinct accounts per instrument
DAY = 86400  # the group's requests and their shares
_ANONYMISED = frozenset({"IP_HOSTING", "IP_VPN", "IP_PROXY", "IP_TOR"})

CODES: dict[str, tuple[str, str]] = {
    "ACCOUNT_GROUP": (
        NAME,
        "The account pays with an instrument other accounts use too; value: the group's accounts (7 days), "
        "requests (24 h) and the shares of them from throwaway identities, anonymising exits and new accounts.",
    ),
    "ACCOUNT_GROUP_COORDINATED": (
        NAME,
        "The accounts on this payment instrument look like one operation: at least the policy's number of "
        "accounts, mostly throwaway identities, and anonymising exits or new accounts; value: the figures and "
        "the thresholds.",
    ),
}


def group_key(fingerprint: str) -> str:
    """The state name of a payment instrument's group (a hash: the store never holds the fingerprint)."""
    return "p:" + hashlib.blake2b(fingerprint.encode("utf-8", "replace"), digest_size=10).hexdigest()


def throwaway(email: str | None) -> bool | None:
    """Whether the sign-up address is a throwaway identity (not an organisation's domain); None
    when there is no address."""
    if email is None:
        return None
    return not organisational_candidate(domain_of(email))


def operations(facts: Facts, found: Sequence[Evidence], now: float, cfg: BehaviourConfig) -> list[Op]:
    """The batch one request sends for its group (results come back in this order)."""
    g = group_key(facts.payment_fingerprint or "")
    anonymised = any(e.code in _ANONYMISED for e in found)
    throw = throwaway(facts.email)
    created = facts.account_created
    new = created is not None and now - created < cfg.group_new_days * DAY
    return [
        Distinct(g + ":acct", facts.account_id or "", (WINDOW,)),
        Count(g + ":req", 1.0, (DAY,)),
        Count(g + ":mail", 0.0 if throw is None else 1.0, (DAY,)),
        Count(g + ":throw", 1.0 if throw else 0.0, (DAY,)),
        Count(g + ":anon", 1.0 if anonymised else 0.0, (DAY,)),
        Count(g + ":aged", 0.0 if created is None else 1.0, (DAY,)),
        Count(g + ":new", 1.0 if new else 0.0, (DAY,)),
    ]


def figures(results: Sequence[Any], billing: int | None = None) -> dict[str, Any]:
    """The group's figures from the batch's results (``operations``' order); ``billing``: the
    accounts the provider's billing records hold on the instrument, when it says."""
    (accounts,), (req,), (mail,), (throw,), (anon,), (aged,), (new,) = results[:7]
    return {
        "accounts_7d": max(int(accounts), billing or 0),
        "requests_24h": int(req),
        "throwaway_share": round(throw / mail, 4) if mail else 0.0,
        "anonymised_share": round(anon / req, 4) if req else 0.0,
        "new_share": round(new / aged, 4) if aged else 0.0,
    }


def shortfalls(f: dict[str, Any], cfg: BehaviourConfig) -> list[str]:
    """Which of the policy's thresholds the figures fall short of (empty: coordinated)."""
    checks = (
        ("accounts", f["accounts_7d"] >= cfg.group_min_accounts),
        ("requests", f["requests_24h"] >= cfg.group_min_requests),
        ("throwaway", f["throwaway_share"] >= cfg.group_throwaway_share),
        (
            "anonymised|new",
            f["anonymised_share"] >= cfg.group_anonymised_share or f["new_share"] >= cfg.group_new_share,
        ),
    )
    return [name for name, ok in checks if not ok]


def coordinated(f: dict[str, Any], cfg: BehaviourConfig) -> bool:
    """Whether the figures cross the policy's thresholds."""
    return not shortfalls(f, cfg)


def evaluate(facts: Facts, ctx: SignalContext) -> list[Evidence]:
    """Add the request to its payment group and report what the group looks like."""
    store = ctx.state
    if store is None or not facts.payment_fingerprint or not facts.account_id:
        return []
    now = facts.timestamp if facts.timestamp is not None else time.time()
    cfg = ctx.behaviour
    f = figures(store.apply(operations(facts, ctx.found, now, cfg), now), facts.payment_accounts)
    if f["accounts_7d"] < 2:
        return []
    text = (
        f"{f['accounts_7d']} accounts on this payment instrument in 7 days; of their {f['requests_24h']} requests "
        f"in 24 h {f['throwaway_share']:.0%} from throwaway identities, {f['anonymised_share']:.0%} through "
        f"anonymising exits, {f['new_share']:.0%} from new accounts"
    )
    out = [Evidence(signal=NAME, code="ACCOUNT_GROUP", value=f, confidence=1.0, detail=text)]
    if coordinated(f, cfg):
        limits = {
            "min_accounts": cfg.group_min_accounts,
            "throwaway_share": cfg.group_throwaway_share,
            "anonymised_share": cfg.group_anonymised_share,
            "new_share": cfg.group_new_share,
        }
        out.append(
            Evidence(
                signal=NAME,
                code="ACCOUNT_GROUP_COORDINATED",
                value={**f, "thresholds": limits},
                confidence=0.8,
                detail=text + ": one operation's accounts, not a family or a team",
            )
        )
    return out


_EMPTY: dict[str, Any] = {
    "checked": False,
    "accounts_7d": 0,
    "requests_24h": 0,
    "throwaway_share": 0.0,
    "anonymised_share": 0.0,
    "new_share": 0.0,
    "coordinated": False,
}


class GroupSignal(BaseSignal):
    """The ``group`` signal and its CEL variable ``group``: ``checked`` (the account shares its
    payment instrument), the figures of ``ACCOUNT_GROUP`` (zero when unknown) and ``coordinated``."""

    name = NAME
    codes = meanings(CODES)
    variable = "group"

    def evaluate(self, facts: Facts, ctx: SignalContext) -> list[Evidence]:
        return evaluate(facts, ctx)

    def export(self, found: Found, facts: Facts) -> dict[str, Any]:  # noqa: ARG002 - the contract's signature
        value = found.mapping("ACCOUNT_GROUP")
        if not value:
            return dict(_EMPTY)
        out: dict[str, Any] = {"checked": True}
        for name, zero in _EMPTY.items():
            if name not in ("checked", "coordinated"):
                v = value.get(name, zero)
                out[name] = type(zero)(v) if isinstance(v, int | float) else zero
        out["coordinated"] = "ACCOUNT_GROUP_COORDINATED" in found.codes
        return out


SIGNAL = GroupSignal()
