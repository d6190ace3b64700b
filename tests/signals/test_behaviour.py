"""The behaviour signal through the Warden: per-key state over a stream of requests.

Every test runs on both state stores (memory, and the real Redis server on 127.0.0.1:6379 under
a private prefix) with a small handmade snapshot (``behaviour_snapshot``) and the shipped policy.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from geowarden import Facts, Warden
from geowarden.intel.snapshot import Snapshot
from geowarden.model import Action, Decision
from geowarden.policy.engine import PolicyEngine
from geowarden.signals.geo import distance_km
from geowarden.signals.keystate import prefix_of
from geowarden.signals.rhythm import country_offsets, profile_offset
from geowarden.state import StateStore, open_store

T0 = 1_767_225_600.0  # 2026-01-01 00:00 UTC
SHANGHAI = "101.80.{}.{}"  # China Telecom, Shanghai
US_RELAY = "3.80.{}.{}"  # Amazon AWS us-east-1
BERLIN = "79.192.{}.{}"  # Deutsche Telekom
TOKYO = "126.0.{}.{}"  # SoftBank
BEHAVIOUR = {
    "KEY_MANY_NETWORKS",
    "KEY_MANY_COUNTRIES",
    "KEY_CONCURRENT_DISTANT",
    "KEY_IMPOSSIBLE_TRAVEL",
    "KEY_ROUND_THE_CLOCK",
    "KEY_RELAY_SHAPE",
    "ACCOUNT_VOLUME_SPIKE",
    "KEY_FLAGGED",
}


@pytest.fixture
def warden(behaviour_snapshot: Snapshot, store: StateStore) -> Warden:
    return Warden(behaviour_snapshot, PolicyEngine.load(), state=store)


def _ip(template: str, rng: random.Random) -> str:
    return template.format(rng.randrange(0, 256), rng.randrange(1, 255))


def _codes(d: Decision) -> set[str]:
    return {e.code for e in d.evidence}


def _evidence(d: Decision, code: str) -> dict[str, Any]:
    value = next(e.value for e in d.evidence if e.code == code)
    assert isinstance(value, dict)
    return value


def test_a_key_shared_between_shanghai_and_a_us_relay_is_flagged_and_a_traveller_is_not(warden: Warden) -> None:
    """The issue's replay: one key alternating between a Shanghai residential network and a US
    cloud relay within seconds, among honest keys, and a traveller flying Berlin -> Tokyo."""
    rng = random.Random(8)
    stream: list[tuple[str, Facts]] = []
    for i in range(240):  # two hours of the shared key, every 30 s on average, both places mixed
        where = SHANGHAI if rng.random() < 0.5 else US_RELAY
        stream.append(("shared", Facts(ip=_ip(where, rng), api_key_id="ak-shared", account_id="acct-reseller",
                                       timestamp=T0 + 3600 + i * 30 + rng.random() * 10)))  # fmt: skip
    for h in range(6):  # the traveller works in Berlin from 08:00 to 14:00 UTC ...
        for m in range(0, 60, 15):
            stream.append(("traveller", Facts(ip=_ip(BERLIN, rng), api_key_id="ak-trav", account_id="acct-trav",
                                              timestamp=T0 + (8 + h) * 3600 + m * 60)))  # fmt: skip
    for h in range(4):  # ... flies, and works again from Tokyo 12 h after the last Berlin request
        for m in range(0, 60, 15):
            stream.append(("traveller", Facts(ip=_ip(TOKYO, rng), api_key_id="ak-trav", account_id="acct-trav",
                                              timestamp=T0 + (13.75 + 12 + h) * 3600 + m * 60)))  # fmt: skip
    for k in range(20):  # honest local users, each on their home network
        home = _ip(BERLIN if k % 2 else TOKYO, rng)
        for _ in range(10):
            stream.append(("honest", Facts(ip=home, api_key_id=f"ak-h{k}", account_id=f"acct-h{k}",
                                           timestamp=T0 + rng.random() * 86400)))  # fmt: skip
    stream.sort(key=lambda item: item[1].timestamp or 0.0)
    decisions: dict[str, list[Decision]] = {"shared": [], "traveller": [], "honest": []}
    for who, facts in stream:
        decisions[who].append(warden.decide(facts))

    shared = decisions["shared"]
    flagged = [d for d in shared if "KEY_CONCURRENT_DISTANT" in _codes(d)]
    assert len(flagged) > 0.8 * len(shared)  # every request after the first switch
    v = _evidence(flagged[-1], "KEY_CONCURRENT_DISTANT")
    assert sorted(v["countries"]) == ["CN", "US"] and v["restricted"] == ["CN"]
    assert v["km"] > 1500 and v["seconds"] <= 300
    relay = [d for d in flagged if "IP_HOSTING" in _codes(d)]  # the US side, not blocked by its address
    assert relay and all(d.action == Action.REVIEW for d in relay)
    assert all("key-shared-with-restricted" in d.rules for d in relay)
    assert any(c == "KEY_CONCURRENT_DISTANT" for d in relay for c in (e.code for e in d.reasons))

    trav = decisions["traveller"]
    assert all(not (_codes(d) & BEHAVIOUR) for d in trav), [sorted(_codes(d) & BEHAVIOUR) for d in trav]
    assert all(d.action == Action.ALLOW for d in trav)
    last = _evidence(trav[-1], "KEY_ACTIVITY")
    assert last["countries_24h"] == 2 and 0 < last["travel_kmh"] < 1000  # it did travel, at a plane's speed
    assert all(d.action == Action.ALLOW and not (_codes(d) & BEHAVIOUR) for d in decisions["honest"])


def test_the_same_trip_in_two_hours_is_impossible_travel(warden: Warden) -> None:
    warden.decide(Facts(ip="79.192.0.1", api_key_id="ak-fast", timestamp=T0))
    d = warden.decide(Facts(ip="126.0.0.1", api_key_id="ak-fast", timestamp=T0 + 2 * 3600))
    v = _evidence(d, "KEY_IMPOSSIBLE_TRAVEL")
    assert v["countries"] == ["DE", "JP"] and v["kmh"] > 3000 and v["restricted"] == []
    assert "KEY_CONCURRENT_DISTANT" not in _codes(d)
    assert d.action == Action.ALLOW  # physics alone, between allowed countries, only adds weight


def test_many_networks_and_countries(warden: Warden) -> None:
    rng = random.Random(3)
    templates = [BERLIN, TOKYO, "200.160.{}.{}", "41.0.{}.{}", "1.128.{}.{}"]  # DE, JP, BR, ZA, AU
    d = None
    for i in range(30):
        d = warden.decide(Facts(ip=_ip(templates[i % 5], rng), api_key_id="ak-many", timestamp=T0 + i * 60))
    assert d is not None
    net = _evidence(d, "KEY_MANY_NETWORKS")
    assert net["networks"] > 12 and net["window_s"] == 3600
    cc = _evidence(d, "KEY_MANY_COUNTRIES")
    assert cc["countries"] == 5
    assert d.action == Action.CHALLENGE


def test_round_the_clock_and_a_day_later_not(warden: Warden) -> None:
    d = None
    for i in range(24 * 6):  # every 10 minutes for a day, from one cloud address
        d = warden.decide(Facts(ip="3.80.0.10", api_key_id="ak-cron", timestamp=T0 + i * 600))
    assert d is not None
    v = _evidence(d, "KEY_ROUND_THE_CLOCK")
    assert v["active_hours"] == 24 and v["requests_24h"] == 144
    assert d.action == Action.CHALLENGE and "KEY_ROUND_THE_CLOCK" not in {e.code for e in d.reasons[:1]}
    later = warden.decide(Facts(ip="3.80.0.10", api_key_id="ak-cron", timestamp=T0 + 3 * 86400))
    assert "KEY_ROUND_THE_CLOCK" not in _codes(later)


def _workdays(warden: Warden, key: str, utc_hours: range, days: int = 6) -> Decision:
    d = None
    for day in range(days):
        for h in utc_hours:
            for m in (5, 25, 45):
                t = T0 + day * 86400 + (h % 24) * 3600 + m * 60
                d = warden.decide(Facts(ip=f"3.80.{day}.{m}", api_key_id=key, timestamp=t))
    assert d is not None
    return d


def test_relay_shape_on_a_restricted_clock(warden: Warden) -> None:
    # Working hours 09-18 in UTC+8 are 01-10 UTC; all from a US cloud relay.
    d = _workdays(warden, "ak-relay", range(1, 10))
    v = _evidence(d, "KEY_RELAY_SHAPE")
    assert v["address_country"] == "US" and "CN" in v["fits"] and abs(v["utc_offset_h"] - 8) <= 1.5
    assert d.action == Action.CHALLENGE and "key-relay-shape" in d.rules
    assert d.score > 0.6  # hosting 0.5 and relay shape 0.45 (x 0.8): more than hosting alone
    assert not any("-" in cc for cc in v["fits"])  # regions have no zones of their own: they never fit
    # The same relay on a US working day (09-18 in UTC-5 = 14-23 UTC) is just cloud use.
    honest = _workdays(warden, "ak-us-cloud", range(14, 23))
    assert "KEY_RELAY_SHAPE" not in _codes(honest)
    assert honest.action == Action.CHALLENGE and honest.score == 0.5  # hosting alone, as before


def test_volume_spike_against_the_accounts_own_history(warden: Warden) -> None:
    def req(t: float, tokens: int) -> Decision:
        return warden.decide(Facts(ip="79.192.0.1", api_key_id="ak-vol", account_id="acct-vol", timestamp=t,
                                   input_tokens=tokens))  # fmt: skip

    for h in range(72):  # three days of ~5,000 tokens an hour
        req(T0 + h * 3600, 5000)
    quiet = req(T0 + 72 * 3600, 5000)
    assert "ACCOUNT_VOLUME_SPIKE" not in _codes(quiet)
    d = None
    for i in range(30):  # then 600,000 tokens within minutes
        d = req(T0 + 72 * 3600 + 60 + i * 30, 20000)
    assert d is not None
    v = _evidence(d, "ACCOUNT_VOLUME_SPIKE")
    assert v["tokens_1h"] >= 600_000 and v["ratio"] >= 10
    assert d.action == Action.LIMITED


def test_flags_from_batch_analytics_reach_the_decision(warden: Warden, store: StateStore) -> None:
    store.put_flag("a:acct-farm-7", "ANALYTICS_ACCOUNT_CLUSTER", {"score": 0.92, "subject": "cluster-1"}, 3600, T0)
    d = warden.decide(Facts(ip="79.192.0.1", api_key_id="ak-farm", account_id="acct-farm-7", timestamp=T0 + 60))
    v = _evidence(d, "KEY_FLAGGED")
    assert v["ANALYTICS_ACCOUNT_CLUSTER"]["subject"] == "cluster-1"
    assert d.action == Action.REVIEW
    expired = warden.decide(Facts(ip="79.192.0.1", api_key_id="ak-farm", account_id="acct-farm-7",
                                  timestamp=T0 + 7200))  # fmt: skip
    assert "KEY_FLAGGED" not in _codes(expired) and expired.action == Action.ALLOW


def test_no_key_and_no_account_costs_nothing(warden: Warden) -> None:
    d = warden.decide(Facts(ip="79.192.0.1", timestamp=T0))
    assert not any(e.signal == "key" for e in d.evidence)


def test_thresholds_come_from_the_policy(behaviour_snapshot: Snapshot, tmp_path: Path) -> None:
    text = Path(PolicyEngine.load().spec.path).read_text(encoding="utf-8")
    assert "countries_max: 3 " in text
    text = text.replace("countries_max: 3 ", "countries_max: 1 ")
    path = tmp_path / "strict.yaml"
    path.write_text(text, encoding="utf-8")
    w = Warden(behaviour_snapshot, PolicyEngine.load(path), state=open_store("memory"))
    w.decide(Facts(ip="79.192.0.1", api_key_id="ak-p", timestamp=T0))
    d = w.decide(Facts(ip="126.0.0.1", api_key_id="ak-p", timestamp=T0 + 86000))
    assert _evidence(d, "KEY_MANY_COUNTRIES")["max"] == 1
    default = Warden(behaviour_snapshot, PolicyEngine.load(), state=open_store("memory"))
    default.decide(Facts(ip="79.192.0.1", api_key_id="ak-p", timestamp=T0))
    assert "KEY_MANY_COUNTRIES" not in _codes(default.decide(Facts(ip="126.0.0.1", api_key_id="ak-p",
                                                                   timestamp=T0 + 86000)))  # fmt: skip


# -- the pure parts ----------------------------------------------------------------------------

DISTANCES = [
    ("CN", "US", 4000, 7000),  # Harbin to Alaska is the nearest pair of populated places
    ("DE", "JP", 8000, 9500),
    ("DE", "FR", 0, 50),  # neighbours: never "far apart"
    ("CN", "HK", 0, 50),
]


@pytest.mark.parametrize(("a", "b", "lo", "hi"), DISTANCES)
def test_distance_is_a_lower_bound_between_populated_places(a: str, b: str, lo: float, hi: float) -> None:
    assert lo <= distance_km(a, b) <= hi
    assert distance_km(a, b) == distance_km(b, a)
    assert distance_km("ZZ", a) == 0.0


def test_profile_offset_reads_the_night() -> None:
    shanghai = [0] * 24
    for h in range(1, 14):  # 09:00-22:00 in UTC+8
        shanghai[h] = 10
    offset = profile_offset(shanghai)
    assert offset is not None and abs(offset[0] - 8) <= 1.5
    assert profile_offset([5] * 24) is None  # no night: round the clock
    assert 8.0 in country_offsets("CN") and -5.0 in country_offsets("US")


@pytest.mark.parametrize(
    ("ip", "prefix"),
    [("1.2.3.4", "1.2.3.0/24"), ("2001:db8:1:2::1", "2001:db8:1::/48"), ("junk", ""), ("", "")],
)
def test_prefix_of(ip: str, prefix: str) -> None:
    assert prefix_of(ip) == prefix


def test_findings_fed_back_by_analytics_reach_the_live_decision(warden: Warden, store: StateStore) -> None:
    from geowarden.analytics.findings import Finding
    from geowarden.analytics.run import feed_back

    findings = [
        Finding(kind="key_shared", subject="ak-resold", score=0.93, evidence={"countries": 5}),
        Finding(kind="account_cluster", subject="cluster-7", score=0.8, evidence={}, members=("acct-9", "acct-10")),
    ]
    assert feed_back(findings, store, ttl=3600, now=T0) >= 3
    key = warden.decide(Facts(ip="79.192.0.1", api_key_id="ak-resold", account_id="acct-1", timestamp=T0 + 5))
    member = warden.decide(Facts(ip="79.192.0.1", api_key_id="ak-9", account_id="acct-10", timestamp=T0 + 5))
    other = warden.decide(Facts(ip="79.192.0.1", api_key_id="ak-2", account_id="acct-2", timestamp=T0 + 5))
    assert "ANALYTICS_KEY_SHARED" in _evidence(key, "KEY_FLAGGED") and key.action == Action.REVIEW
    assert "ANALYTICS_ACCOUNT_CLUSTER" in _evidence(member, "KEY_FLAGGED") and member.action == Action.REVIEW
    assert "KEY_FLAGGED" not in _codes(other) and other.action == Action.ALLOW


def test_a_restricted_client_behind_a_cloud_exit_goes_to_review_an_expat_at_home_does_not(warden: Warden) -> None:
    """Issue 16: a user in China behind a foreign exit, Shanghai clock and Chinese on every request:
    each request alone is at most a challenge; after ``restricted_client_min_requests`` in a day,
    review. The same client settings at home on a residential line (an expat) never are."""
    rng = random.Random(16)
    relayed, home = [], []
    for i in range(30):
        t = T0 + 3600 + i * 600
        relayed.append(warden.decide(Facts(ip=_ip(US_RELAY, rng), api_key_id="ak-rc", timestamp=t,
                                           timezone="Asia/Shanghai", accept_language="zh-CN,zh;q=0.9")))  # fmt: skip
        home.append(warden.decide(Facts(ip="79.192.0.7", api_key_id="ak-expat", timestamp=t,
                                        timezone="Asia/Shanghai", accept_language="zh-CN,zh;q=0.9")))  # fmt: skip
    first = [i for i, d in enumerate(relayed) if "KEY_RESTRICTED_CLIENT" in _codes(d)]
    assert first and first[0] == 19  # the 20th request of the day
    assert all(d.action != Action.REVIEW for d in relayed[:19])
    assert all(d.action == Action.REVIEW for d in relayed[19:])
    v = _evidence(relayed[-1], "KEY_RESTRICTED_CLIENT")
    assert v["restricted_client_24h"] == 30 and v["share"] == 1.0
    assert all("KEY_RESTRICTED_CLIENT" not in _codes(d) and d.action != Action.REVIEW for d in home)
