"""One contract suite for both state stores: in memory, and Redis on the real server.

Every test below runs on both (the ``store`` fixture), with explicit ``now`` values so window
edges, expiries and day boundaries are exact; a hypothesis test then checks that random
operation sequences get the same answers from both.
"""

from __future__ import annotations

import random
import threading
import time
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from state_support import MakeStore, unique_prefix

from geowarden.state import open_store
from geowarden.state.base import (
    BUCKETS,
    MAX_MEMBERS,
    MAX_PLACES,
    Count,
    Distinct,
    FirstSeen,
    Flags,
    Hours,
    Op,
    Places,
    StateStore,
    bucket_of,
    bucket_size,
    hour_of,
)
from geowarden.state.memory import SWEEP_EVERY, MemoryStore
from geowarden.state.redisstore import RedisStore

T0 = 1_800_000_000.0  # a multiple of every bucket size used below (5, 10, 50, 300, 7200 s)
DAY0 = 20_800 * 86400.0  # a UTC midnight


def one(store: StateStore, op: Op, now: float) -> Any:
    return store.apply([op], now)[0]


def hours_at(day: float, hour: float) -> float:
    return DAY0 + day * 86400 + hour * 3600


# -- Count -----------------------------------------------------------------------------------


def test_count_sums_each_window(store: StateStore) -> None:
    windows = (60, 3600)  # buckets of 5 s and 300 s
    assert one(store, Count("n", 1.0, windows), T0) == (1.0, 1.0)
    assert one(store, Count("n", 2.5, windows), T0 + 1) == (3.5, 3.5)
    assert one(store, Count("n", 0.0, windows), T0 + 2) == (3.5, 3.5)
    assert one(store, Count("n", 1.0, windows), T0 + 100) == (1.0, 4.5)  # T0's bucket has left the minute
    assert one(store, Count("other", 7.0, windows), T0 + 100) == (7.0, 7.0)


# window 120 s = 12 buckets of 10 s: a bucket counts while it is one of the last 12
COUNT_EDGES = [
    (0.0, 1.0),  # bucket b
    (110.0, 2.0),  # bucket b+11: b still inside
    (119.999, 3.0),  # still b+11
    (120.0, 3.0),  # b+12: b has left (the 2 at b+11 and this one)
    (230.0, 2.0),  # b+23: only b+12 and this
    (240.0, 2.0),  # b+24: b+12 has left (+230 and this)
    (240.0 + 120 + 10, 1.0),  # long after: nothing left but this
]


def test_count_window_edges(store: StateStore) -> None:
    got = [one(store, Count("n", 1.0, (120,)), T0 + dt)[0] for dt, _ in COUNT_EDGES]
    assert got == [want for _, want in COUNT_EDGES]


def test_count_forgets_everything_after_the_longest_window(store: StateStore) -> None:
    windows = (3600, 604800)
    one(store, Count("n", 5.0, windows), T0)
    assert one(store, Count("n", 1.0, windows), T0 + 3600) == (1.0, 6.0)
    later = T0 + 604800 + bucket_size(604800)
    assert one(store, Count("n", 1.0, windows), later) == (1.0, 1.0)


def test_count_fractional_amounts(store: StateStore) -> None:
    total = 0.0
    for i, amount in enumerate([0.1, 0.2, 1234.5678, 1e-9, 3.0]):
        total += amount
        (got,) = one(store, Count("tok", amount, (3600,)), T0 + i)
        assert got == pytest.approx(total, rel=1e-12)


# -- Distinct --------------------------------------------------------------------------------


def test_distinct_counts_small_sets_exactly(store: StateStore) -> None:
    seen: set[str] = set()
    for i in range(120):
        member = f"10.0.{i % 70}.1"  # 70 distinct, then repeats
        seen.add(member)
        got = one(store, Distinct("ips", member, (600, 3600, 86400)), T0 + i)
        assert got == (len(seen),) * 3


DISTINCT_EDGES = [  # window 120 s = 12 buckets of 10 s
    (0.0, "a", 1),
    (110.0, "b", 2),
    (115.0, "a", 2),  # a again: still 2
    (120.0, "c", 3),  # a's first bucket has left, but it was seen again at +115
    (230.0, "d", 2),  # only c (+120) and d
    (235.0, "d", 2),
    (240.0, "e", 2),  # c has left: d and e
]


def test_distinct_window_edges(store: StateStore) -> None:
    got = [one(store, Distinct("m", member, (120,)), T0 + dt)[0] for dt, member, _ in DISTINCT_EDGES]
    assert got == [want for _, _, want in DISTINCT_EDGES]


def test_distinct_windows_are_independent(store: StateStore) -> None:
    windows = (60, 600, 3600)
    assert one(store, Distinct("m", "x", windows), T0) == (1, 1, 1)
    assert one(store, Distinct("m", "y", windows), T0 + 100) == (1, 2, 2)
    assert one(store, Distinct("m", "z", windows), T0 + 700) == (1, 1, 3)
    assert one(store, Distinct("m", "x", windows), T0 + 3700) == (1, 1, 2)  # x and z; y has left


def test_distinct_large_set(store: StateStore) -> None:
    """5,000 members: the memory store saturates at MAX_MEMBERS; Redis's HyperLogLog is within 2 %."""
    n, batch = 5000, 500
    got: tuple[int, ...] = ()
    for start in range(0, n, batch):
        ops: list[Op] = [Distinct("big", f"member-{i}", (3600,)) for i in range(start, start + batch)]
        got = store.apply(ops, T0 + start / 100)[-1]
    if store.kind == "memory":
        assert got == (MAX_MEMBERS,)
    else:
        assert abs(got[0] - n) <= 0.02 * n


# -- Places ----------------------------------------------------------------------------------


def test_places_returns_what_was_seen_before(store: StateStore) -> None:
    def seen(place: str, dt: float) -> Any:
        return one(store, Places("pl", place, 86400), T0 + dt)

    assert seen("US", 0) == {}
    assert seen("DE", 10) == {"US": T0}
    assert seen("US", 20) == {"US": T0, "DE": T0 + 10}  # its own previous time included
    assert seen("FR", 30) == {"US": T0 + 20, "DE": T0 + 10}


def test_places_older_than_ttl_are_not_returned(store: StateStore) -> None:
    def seen(place: str, dt: float) -> Any:
        return one(store, Places("pl", place, 100), T0 + dt)

    seen("US", 0)
    assert seen("DE", 50) == {"US": T0}
    assert seen("FR", 100) == {"DE": T0 + 50}  # US is exactly ttl old: gone
    assert seen("GB", 250) == {}  # everything older than the ttl
    assert seen("US", 260) == {"GB": T0 + 250}


def test_places_keep_the_most_recent(store: StateStore) -> None:
    names = [f"P{i:02}" for i in range(MAX_PLACES + 1)]
    for i, place in enumerate(names):
        one(store, Places("pl", place, 86400), T0 + i)
    got = one(store, Places("pl", "X", 86400), T0 + 100)
    assert set(got) == set(names[1:])  # the least recent went first
    assert got[names[-1]] == T0 + MAX_PLACES


def test_places_seeing_a_place_again_makes_it_recent(store: StateStore) -> None:
    names = [f"P{i:02}" for i in range(MAX_PLACES)]
    for i, place in enumerate(names):
        one(store, Places("pl", place, 86400), T0 + i)
    one(store, Places("pl", "P00", 86400), T0 + 50)  # P00 is now the most recent
    one(store, Places("pl", "NEW", 86400), T0 + 51)  # one too many: P01 goes
    got = one(store, Places("pl", "X", 86400), T0 + 52)
    assert "P01" not in got and got["P00"] == T0 + 50 and got["NEW"] == T0 + 51
    assert len(got) == MAX_PLACES


def test_places_ties_go_in_the_order_seen(store: StateStore) -> None:
    """Places seen at the same instant: the one seen first is the least recent."""
    ops: list[Op] = [Places("pl", f"P{i:02}", 86400) for i in range(MAX_PLACES + 1)]
    store.apply(ops, T0)
    got = one(store, Places("pl", "X", 86400), T0 + 1)
    assert "P00" not in got and len(got) == MAX_PLACES


# -- Hours -----------------------------------------------------------------------------------


def test_hours_profile_and_active_hours(store: StateStore) -> None:
    for hour in (9.1, 9.5, 13.2):
        profile, active = one(store, Hours("h", 7), hours_at(0, hour))
    assert profile[9] == 2 and profile[13] == 1 and sum(profile) == 3
    assert active == 2


def test_hours_across_midnight(store: StateStore) -> None:
    one(store, Hours("h", 7), hours_at(0, 23.5))
    profile, active = one(store, Hours("h", 7), hours_at(1, 0.5))
    assert (profile[23], profile[0], sum(profile)) == (1, 1, 2)
    assert active == 2
    profile, active = one(store, Hours("h", 7), hours_at(1, 23.5))
    assert (profile[23], profile[0], sum(profile)) == (2, 1, 3)  # the profile spans the days
    assert active == 2  # day 0's 23:00 is more than 24 hours ago


def test_hours_profile_keeps_only_its_days(store: StateStore) -> None:
    one(store, Hours("h", 2), hours_at(0, 10.5))
    one(store, Hours("h", 2), hours_at(1, 11.5))
    profile, active = one(store, Hours("h", 2), hours_at(2, 10.5))
    assert (profile[10], profile[11], sum(profile)) == (1, 1, 2)  # day 0 is out of a 2-day profile
    assert active == 2  # day 1's 11:00 is within the last 24 hours
    profile, active = one(store, Hours("h", 2), hours_at(9, 3.5))
    assert (profile[3], sum(profile), active) == (1, 1, 1)


def test_hours_active_counts_the_last_24_hours_with_a_one_day_profile(store: StateStore) -> None:
    """active_24h is over the last 24 clock hours whatever ``days`` is."""
    for hour in range(21):  # 00:00-20:00 of day 0
        one(store, Hours("h", 1), hours_at(0, hour + 0.5))
    got = [one(store, Hours("h", 1), hours_at(1, hour + 0.5))[1] for hour in range(4)]
    # at day 1 h:30 the last 24 hours are day 0 (h+1):00 .. 20:00 and day 1 00:00 .. h:00
    assert got == [21, 21, 21, 21]


# -- FirstSeen, Flags ------------------------------------------------------------------------


def test_first_seen(store: StateStore) -> None:
    assert one(store, FirstSeen("a:1", 1000), T0) == T0
    assert one(store, FirstSeen("a:1", 1000), T0 + 999.5) == T0
    assert one(store, FirstSeen("a:2", 1000), T0 + 10) == T0 + 10
    assert one(store, FirstSeen("a:1", 1000), T0 + 1000) == T0 + 1000  # expired: seen anew
    assert one(store, FirstSeen("a:1", 1000), T0 + 1500) == T0 + 1000


def test_flags_put_read_expire(store: StateStore) -> None:
    assert one(store, Flags("k:1"), T0) == {}
    shared = {"kind": "shared_key", "score": 0.9, "subjects": ["a:1", "a:2"], "detail": "ключ, 鍵"}
    store.put_flag("k:1", "SHARED", shared, 100, T0)
    store.put_flag("k:1", "CLUSTER", {"cluster": "c-7"}, 1000, T0)
    assert one(store, Flags("k:1"), T0 + 50) == {"SHARED": shared, "CLUSTER": {"cluster": "c-7"}}
    assert one(store, Flags("k:2"), T0 + 50) == {}
    assert one(store, Flags("k:1"), T0 + 100) == {"CLUSTER": {"cluster": "c-7"}}  # SHARED: exactly ttl old
    store.put_flag("k:1", "SHARED", {"score": 0.5}, 100, T0 + 500)
    assert one(store, Flags("k:1"), T0 + 550) == {"SHARED": {"score": 0.5}, "CLUSTER": {"cluster": "c-7"}}
    assert one(store, Flags("k:1"), T0 + 1000) == {}


# -- batches ---------------------------------------------------------------------------------


def test_mixed_batch_results_in_order(store: StateStore) -> None:
    store.put_flag("k:1", "SHARED", {"score": 1}, 3600, T0)
    one(store, Places("k:1:pl", "CN", 86400), T0 - 60)
    ops: list[Op] = [
        Flags("k:1"),
        Count("k:1:req", 1.0, (3600, 86400)),
        Distinct("k:1:ip", "1.2.3.4", (600, 3600)),
        Hours("k:1:hours", 7),
        Places("k:1:pl", "US", 86400),
        FirstSeen("a:1:first", 86400),
        Count("a:1:tok", 250.0, (3600,)),
        Flags("a:1"),
        Distinct("k:1:ip", "1.2.3.5", (600, 3600)),
    ]
    got = store.apply(ops, T0)
    assert got[0] == {"SHARED": {"score": 1}}
    assert got[1] == (1.0, 1.0)
    assert got[2] == (1, 1)
    assert got[3] == ((0,) * 8 + (1,) + (0,) * 15, 1)  # T0 is 08:00 UTC
    assert got[4] == {"CN": T0 - 60}
    assert got[5] == T0
    assert got[6] == (250.0,)
    assert got[7] == {}
    assert got[8] == (2, 2)  # sees the update earlier in the same batch


def test_a_batch_sees_its_own_updates(store: StateStore) -> None:
    ops: list[Op] = [Count("n", 1.0, (60,)), Count("n", 1.0, (60,)), Places("p", "US", 60), Places("p", "DE", 60)]
    assert store.apply(ops, T0) == [(1.0,), (2.0,), {}, {"US": T0}]
    assert store.apply([], T0) == []


def test_one_name_for_several_kinds_of_state(store: StateStore) -> None:
    ops: list[Op] = [Count("x", 2.0, (60,)), Distinct("x", "m", (60,)), Places("x", "US", 60), FirstSeen("x", 60)]
    assert store.apply(ops, T0) == [(2.0,), (1,), {}, T0]
    assert store.apply(ops, T0 + 1) == [(4.0,), (1,), {"US": T0}, T0]


def test_threads_share_a_store(store: StateStore) -> None:
    def work() -> None:
        for i in range(50):
            store.apply([Count("n", 1.0, (3600,)), Distinct("d", f"m{i}", (3600,))], T0 + i)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.apply([Count("n", 0.0, (3600,)), Distinct("d", "m0", (3600,))], T0 + 60) == [(200.0,), (50,)]


# -- clear, health, memory bounds ------------------------------------------------------------


@pytest.mark.parametrize("kind", ["memory", "redis"])
def test_clear_forgets_only_its_own_prefix(kind: str, make_store: MakeStore) -> None:
    base = unique_prefix()
    a = make_store(kind, base + "a*:")  # glob characters in a prefix match only themselves
    b = make_store(kind, base + "ab:")
    for s in (a, b):
        s.apply([Count("n", 1.0, (3600,)), Places("p", "US", 3600)], T0)
        s.put_flag("k", "F", {"x": 1}, 3600, T0)
    a.clear()
    assert a.apply([Count("n", 1.0, (3600,)), Places("p", "DE", 3600), Flags("k")], T0 + 1) == [(1.0,), {}, {}]
    assert b.apply([Count("n", 1.0, (3600,)), Places("p", "DE", 3600), Flags("k")], T0 + 1) == [
        (2.0,),
        {"US": T0},
        {"F": {"x": 1}},
    ]


def test_health(store: StateStore) -> None:
    store.apply([Count("n", 1.0, (60,))], T0)
    h = store.health()
    assert h["kind"] == store.kind and h["ok"] is True and h["failures"] == 0


def test_memory_store_drops_expired_entries() -> None:
    store = MemoryStore()
    store.apply(
        [
            Count("n", 1.0, (3600,)),
            Distinct("d", "m", (3600,)),
            Places("p", "US", 86400),
            Hours("h", 7),
            FirstSeen("f", 90 * 86400),
        ],
        T0,
    )
    store.put_flag("k", "F", {}, 3600, T0)
    assert store.size() == 6
    later = T0 + 100 * 86400
    for _ in range(SWEEP_EVERY):
        store.apply([], later)
    assert store.size() == 0


def test_redis_keys_all_carry_ttls(make_store: MakeStore, redis_url: str) -> None:
    """Every key the Redis store writes expires, no later than its data can matter."""
    store = make_store("redis")
    assert isinstance(store, RedisStore)
    now = time.time()
    store.apply(
        [
            Count("n", 1.0, (3600, 604800)),
            Distinct("d", "m", (600, 86400)),
            Places("p", "US", 86400),
            Hours("h", 7),
            FirstSeen("f", 90 * 86400),
        ],
        now,
    )
    store.put_flag("k", "F", {}, 3600, now)
    bounds = {  # longest life in seconds, by the suffix after "|"
        "c": 604800 + bucket_size(604800),
        "d:600": 600 + 1,
        "d:86400": 86400 + 1,
        "dc": 86400 + bucket_size(86400),
        "p": 86400 + 1,
        "h": 8 * 86400 + 1,
        "f": 90 * 86400 + 1,
        "g": 3600 + 1,
    }
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    keys = sorted(client.scan_iter(match=store.prefix + "*"))
    kinds = set()
    for key in keys:
        suffix = key.split("|", 1)[1]
        kind = next(k for k in sorted(bounds, key=len, reverse=True) if suffix.startswith(k))
        kinds.add(kind)
        ttl = client.pttl(key) / 1000
        assert 0 < ttl <= bounds[kind], (key, ttl)
    client.close()
    assert kinds == set(bounds)


def test_open_store_names_both_stores(redis_url: str) -> None:
    assert open_store(None).kind == "memory"
    assert open_store("memory").kind == "memory"
    store = open_store(redis_url, prefix=unique_prefix())
    try:
        assert isinstance(store, RedisStore) and store.kind == "redis"
        assert store.apply([Count("n", 1.0, (60,))], T0) == [(1.0,)]
    finally:
        store.clear()
        store.close()


# -- a busy name against a reference ---------------------------------------------------------


def test_busy_names_match_a_reference(store: StateStore) -> None:
    """Hundreds of requests over ten days, at random gaps, against answers computed naively
    from the full history: every bucket and cache path (many live buckets, day roll-overs,
    hours revisited, a profile rebuilt) gets exercised."""
    rng = random.Random(7)
    windows = (60, 600, 3600)
    history: list[tuple[float, str, float]] = []  # (time, member, amount)
    now = T0
    for i in range(700):
        now += rng.choice([0.0, 1.0, 7.0, 29.0, 61.0, 300.0, 1800.0, 3600.0, 5400.0])
        member, amount = f"m{rng.randrange(40)}", float(rng.randrange(4))
        history.append((now, member, amount))
        ops: list[Op] = [
            Distinct("d", member, windows),
            Count("c", amount, windows),
            Hours("h7", 7),
            Hours("h2", 2),
        ]
        distinct, count, h7, h2 = store.apply(ops, now)
        oldest = [(bucket_of(now, w) - BUCKETS + 1) * bucket_size(w) for w in windows]
        last: dict[str, float] = {}
        for t, m, _ in history:
            last[m] = t
        assert distinct == tuple(sum(t >= o for t in last.values()) for o in oldest), i
        assert count == tuple(sum(x for t, _, x in history if t >= o) for o in oldest), i
        hour = hour_of(now)
        for (profile, active), days in ((h7, 7), (h2, 2)):
            first = (hour // 24 - days + 1) * 24
            want = [0] * 24
            for t, _, _ in history:
                if hour_of(t) >= first:
                    want[hour_of(t) % 24] += 1
            assert profile == tuple(want), (i, days)
            assert active == len({hour_of(t) for t, _, _ in history if hour - 24 < hour_of(t) <= hour}), (i, days)


# -- both stores give the same answers -------------------------------------------------------

# Each name is always used with the same parameters, as the signals do (Redis keeps a sketch
# per window, so a name's windows are part of what it is).
COUNTS = {"c1": (60, 3600), "c2": (600,)}
DISTINCTS = {"d1": (60, 600), "d2": (3600, 86400)}
PLACES_TTL = {"p1": 300, "p2": 86400}
HOURS_DAYS = {"h1": 2, "h2": 7}
FIRST_TTL = {"f1": 500}

op_strategy = st.one_of(
    st.builds(
        lambda n, a: Count(n, a, COUNTS[n]),
        st.sampled_from(sorted(COUNTS)),
        st.one_of(st.integers(0, 5).map(float), st.floats(0, 1000, allow_nan=False)),
    ),
    st.builds(
        lambda n, m: Distinct(n, m, DISTINCTS[n]),
        st.sampled_from(sorted(DISTINCTS)),
        st.sampled_from([f"m{i}" for i in range(12)]),
    ),
    st.builds(
        lambda n, p: Places(n, p, PLACES_TTL[n]),
        st.sampled_from(sorted(PLACES_TTL)),
        st.sampled_from(["US", "DE", "CN", "RU", "FR", "?"]),
    ),
    st.builds(lambda n: Hours(n, HOURS_DAYS[n]), st.sampled_from(sorted(HOURS_DAYS))),
    st.builds(lambda n: FirstSeen(n, FIRST_TTL[n]), st.sampled_from(sorted(FIRST_TTL))),
    st.builds(Flags, st.sampled_from(["g1", "g2"])),
)
flag_strategy = st.tuples(st.sampled_from(["g1", "g2"]), st.sampled_from(["A", "B"]), st.integers(0, 5000))
step_strategy = st.tuples(
    st.one_of(  # seconds since the previous step
        st.integers(0, 120).map(float),
        st.floats(0, 700, allow_nan=False),
        st.sampled_from([5.0, 50.0, 55.0, 60.0, 65.0, 295.0, 300.0, 600.0, 3600.0, 7200.0, 43200.0, 86400.0]),
    ),
    st.lists(op_strategy, min_size=0, max_size=6),
    st.lists(flag_strategy, max_size=1),
)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, tuple) and a and isinstance(a[0], float):
        return a == pytest.approx(b, rel=1e-12)
    return bool(a == b)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(start=st.floats(0, 86400, allow_nan=False), steps=st.lists(step_strategy, min_size=1, max_size=25))
def test_both_stores_give_the_same_answers(
    redis_url: str, start: float, steps: list[tuple[float, list[Op], list[tuple[str, str, int]]]]
) -> None:
    memory = MemoryStore()
    remote = RedisStore(redis_url, prefix=unique_prefix("-diff"), timeout=2.0)
    try:
        now = T0 + start
        for dt, ops, flags in steps:
            now += dt
            for name, code, ttl in flags:
                for s in (memory, remote):
                    s.put_flag(name, code, {"ttl": ttl}, ttl, now)
            want, got = memory.apply(ops, now), remote.apply(ops, now)
            for op, w, g in zip(ops, want, got, strict=True):
                assert _same(g, w), (op, now, w, g)
    finally:
        remote.clear()
        remote.close()
