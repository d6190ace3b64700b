"""The group signal through the Warden: accounts on one payment instrument, judged together.

Cases written from the public description of commercial account networks (light accounts on
shared cards, throwaway identities, anonymising exits, sign-up waves) and from the honest groups
that share a card too (a family at home, a company team on a corporate card behind its cloud
egress). Every test runs on both state stores (memory, and the real Redis server on
127.0.0.1:6379 under a private prefix).
"""

from __future__ import annotations

import random
import uuid

import pytest

from geowarden import Facts, Warden
from geowarden.intel.snapshot import Snapshot
from geowarden.model import Action, Decision
from geowarden.policy.allowlist import EgressRanges
from geowarden.policy.engine import PolicyEngine
from geowarden.signals.group import group_key, throwaway
from geowarden.state import StateStore, open_store
from helpers import redis_up, require

T0 = 1_767_225_600.0  # 2026-01-01 00:00 UTC
DAY = 86400.0
US_CLOUD = "3.80.{}.{}"  # Amazon AWS us-east-1: hosting in the test snapshot
BERLIN = "79.192.{}.{}"  # Deutsche Telekom: residential
TOKYO = "126.0.{}.{}"  # SoftBank


def _ip(template: str, rng: random.Random) -> str:
    return template.format(rng.randrange(0, 256), rng.randrange(1, 255))


def _run(
    warden: Warden,
    accounts: int,
    requests: int,
    *,
    where: str,
    email: str,
    card: str,
    created_days_ago: float,
    rng: random.Random,
    egress_ip: str | None = None,
    prefix: str | None = None,
) -> list[tuple[str, Decision]]:
    """``requests`` requests spread over ``accounts`` accounts on one card within a few hours."""
    out = []
    for i in range(requests):
        n = i % accounts
        now = T0 + 60.0 * i
        ip = egress_ip or _ip(where, rng)
        facts = Facts(
            ip=ip,
            timestamp=now,
            account_id=f"acct-{prefix or card}-{n}",
            api_key_id=f"key-{prefix or card}-{n}",
            email=email.format(n=n),
            payment_fingerprint=card,
            account_created=now - created_days_ago * DAY,
        )
        out.append((facts.account_id or "", warden.decide(facts)))
    return out


def _reviewed(decisions: list[tuple[str, Decision]]) -> set[str]:
    return {
        a for a, d in decisions if d.action in (Action.REVIEW, Action.BLOCK) and "coordinated-payment-group" in d.rules
    }


def test_a_network_of_light_accounts_on_shared_cards_is_reviewed(
    behaviour_snapshot: Snapshot, store: StateStore
) -> None:
    warden = Warden(behaviour_snapshot, PolicyEngine.load(), state=store)
    rng = random.Random(1)
    decisions = _run(warden, 10, 60, where=US_CLOUD, email="worker{n}@gmail.com", card="fp-hydra",
                     created_days_ago=2, rng=rng)  # fmt: skip
    codes = {e.code for e in decisions[-1][1].evidence}
    assert "ACCOUNT_GROUP_COORDINATED" in codes
    assert len(_reviewed(decisions)) == 10  # every account, each at most six requests in
    value = next(e.value for e in decisions[-1][1].evidence if e.code == "ACCOUNT_GROUP")
    assert value["accounts_7d"] == 10
    assert value["throwaway_share"] == 1.0
    assert value["anonymised_share"] == 1.0


def test_aged_accounts_behind_anonymising_exits_are_still_a_group(
    behaviour_snapshot: Snapshot, store: StateStore
) -> None:
    """Accounts created months ago ("new" says nothing): the anonymised exits carry it."""
    warden = Warden(behaviour_snapshot, PolicyEngine.load(), state=store)
    decisions = _run(warden, 8, 40, where=US_CLOUD, email="u{n}@outlook.com", card="fp-aged",
                     created_days_ago=200, rng=random.Random(2))  # fmt: skip
    assert len(_reviewed(decisions)) == 8


def test_a_family_sharing_a_card_at_home_is_left_alone(behaviour_snapshot: Snapshot, store: StateStore) -> None:
    warden = Warden(behaviour_snapshot, PolicyEngine.load(), state=store)
    decisions = _run(warden, 4, 80, where=BERLIN, email="family{n}@gmail.com", card="fp-family",
                     created_days_ago=5, rng=random.Random(3))  # fmt: skip
    assert _reviewed(decisions) == set()
    assert all(d.action == Action.ALLOW for _, d in decisions)


def test_old_free_mail_accounts_on_one_card_at_home_are_not_a_network(
    behaviour_snapshot: Snapshot, store: StateStore
) -> None:
    """Six people on one card with free-mail addresses, at home, accounts a year old: the
    shared card and the throwaway-looking mail alone are not enough (a second factor is needed)."""
    warden = Warden(behaviour_snapshot, PolicyEngine.load(), state=store)
    decisions = _run(warden, 6, 60, where=TOKYO, email="p{n}@yahoo.co.jp", card="fp-old",
                     created_days_ago=400, rng=random.Random(4))  # fmt: skip
    assert _reviewed(decisions) == set()


def test_a_team_on_a_corporate_card_behind_its_cloud_egress_is_left_alone(
    behaviour_snapshot: Snapshot, store: StateStore
) -> None:
    """Thirty new colleagues on one corporate card behind the company's cloud egress, signed up with
    the company's domain: organisation evidence, not a network (with or without a registered egress)."""
    egress = "3.80.7.10"
    registered = EgressRanges({f"acct-fp-team-{n}": ["3.80.7.0/24"] for n in range(30)})
    for policy in (PolicyEngine.load(), PolicyEngine.load(None, egress=registered)):
        warden = Warden(behaviour_snapshot, policy, state=store)
        decisions = _run(warden, 30, 120, where=US_CLOUD, email="dev{n}@northwind-robotics.example.com",
                         card="fp-team", created_days_ago=1, rng=random.Random(5), egress_ip=egress)  # fmt: skip
        assert _reviewed(decisions) == set()
        store.clear()


def test_a_registered_egress_clears_the_group_rule(behaviour_snapshot: Snapshot, store: StateStore) -> None:
    """Even a free-mail group: members from the company's registered egress are never reviewed by it."""
    egress = EgressRanges({f"acct-fp-reg-{n}": ["3.80.9.0/24"] for n in range(10)})
    warden = Warden(behaviour_snapshot, PolicyEngine.load(None, egress=egress), state=store)
    decisions = _run(warden, 10, 60, where=US_CLOUD, email="x{n}@gmail.com", card="fp-reg", created_days_ago=1,
                     rng=random.Random(6), egress_ip="3.80.9.20")  # fmt: skip
    assert _reviewed(decisions) == set()


def test_no_payment_fingerprint_no_group(behaviour_snapshot: Snapshot, store: StateStore) -> None:
    warden = Warden(behaviour_snapshot, PolicyEngine.load(), state=store)
    d = warden.decide(Facts(ip="3.80.1.1", timestamp=T0, account_id="a1", email="a@gmail.com"))
    assert not any(e.signal == "group" for e in d.evidence)


def test_the_store_never_holds_the_fingerprint(behaviour_snapshot: Snapshot) -> None:
    require(redis_up(), "Redis is not answering on 127.0.0.1:6379")
    import redis

    prefix = f"gwtest:{uuid.uuid4().hex[:8]}:"
    store = open_store("redis://127.0.0.1:6379/0", prefix=prefix)
    try:
        warden = Warden(behaviour_snapshot, PolicyEngine.load(), state=store)
        _run(warden, 3, 6, where=BERLIN, email="a{n}@gmail.com", card="secret-card-fp-1234", created_days_ago=1,
             rng=random.Random(7), prefix="p")  # fmt: skip
        keys = [k.decode() for k in redis.Redis(host="127.0.0.1", port=6379).keys(prefix + "*")]
        assert any(group_key("secret-card-fp-1234") in k for k in keys)
        assert not any("secret-card-fp-1234" in k for k in keys)
    finally:
        store.clear()
        store.close()


@pytest.mark.parametrize(
    ("email", "expected"),
    [
        ("someone@gmail.com", True),
        ("someone@mailinator.com", True),  # disposable
        ("someone@qq.com", True),  # a restricted country's provider
        ("dev@northwind-robotics.example.com", False),
        ("student@uni42.example.edu", False),
        ("not-an-address", True),
        (None, None),
    ],
)
def test_throwaway_identities(email: str | None, expected: bool | None) -> None:
    assert throwaway(email) is expected


@pytest.mark.parametrize(("on_card", "reviewed"), [(9, True), (4, False)])
def test_billing_records_name_the_whole_group(
    behaviour_snapshot: Snapshot, store: StateStore, on_card: int, reviewed: bool
) -> None:
    """Two accounts active so far, but the billing records hold ``on_card`` accounts on the card:
    the group is judged at its full size (a sign-up check sees it before its accounts send anything)."""
    warden = Warden(behaviour_snapshot, PolicyEngine.load(), state=store)
    rng = random.Random(8)
    last = None
    for i in range(12):
        facts = Facts(ip=_ip(US_CLOUD, rng), timestamp=T0 + 60.0 * i, account_id=f"acct-b{i % 2}",
                      email=f"b{i % 2}@gmail.com", payment_fingerprint="fp-billing", payment_accounts=on_card,
                      account_created=T0 - 3 * DAY)  # fmt: skip
        last = warden.decide(facts)
    assert last is not None
    group = next(e.value for e in last.evidence if e.code == "ACCOUNT_GROUP")
    assert group["accounts_7d"] == on_card
    assert ("coordinated-payment-group" in last.rules) is reviewed
