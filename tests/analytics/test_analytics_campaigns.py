"""Campaigns and model shifts: planted ones are found, popular prompts and honest early adopters
are not, and DuckDB and Spark agree."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from spark_support import DAY, HOUR, T0, accounts_table, as_dicts, duckdb_context, events_table, on_spark, spark_context

from geowarden.analytics import campaigns, neardup
from geowarden.analytics.findings import Finding

MINUTE = 60_000
RELEASE = T0 + 4 * DAY + 3 * HOUR  # model-x is first seen here
US = {"prefix": "81.1.1.0/24", "country": "US", "client_tz": "America/Chicago", "accept_language": "en-US"}
SHANGHAI = {"prefix": "45.77.10.0/24", "country": "SG", "hosting": True, "client_tz": "Asia/Shanghai"}
MOSCOW = {"prefix": "185.220.50.0/24", "country": "NL", "vpn": True, "client_tz": "Europe/Moscow"}


def near(rng: random.Random, base: int, flips: int) -> str:
    """``base`` with up to ``flips`` random bits flipped, as 16 hex digits."""
    for bit in rng.sample(range(64), rng.randrange(flips + 1)):
        base ^= 1 << bit
    return f"{base:016x}"


@dataclass
class World:
    events: list[dict[str, Any]] = field(default_factory=list)
    accounts: list[dict[str, Any]] = field(default_factory=list)
    groups: dict[str, set[str]] = field(default_factory=dict)

    def add(self, account: str, created: int, group: str | None = None) -> None:
        self.accounts.append({"account_id": account, "created": created, "declared_country": "US"})
        if group:
            self.groups.setdefault(group, set()).add(account)

    def send(self, account: str, ts: int, fp: str | None, model: str = "model-a", **kw: Any) -> None:
        row = {**US, "ts_ms": ts, "account_id": account, "ip": "81.1.1.9", "model": model, "prompt_fingerprint": fp}
        self.events.append({**row, **kw})


def build_world(seed: int = 11) -> World:
    rng = random.Random(seed)
    w = World()
    span = 7 * DAY

    def honest_model(ts: int) -> str:
        return rng.choice(["model-a", "model-b"]) if ts < RELEASE else rng.choice(["model-a", "model-b", "model-x"])

    # 200 honest accounts asking their own questions at their own times
    for i in range(200):
        a = f"user{i:03d}"
        w.add(a, T0 - rng.randrange(20, 400) * DAY)
        for _ in range(rng.randrange(30, 80)):
            ts = T0 + rng.randrange(span)
            w.send(a, ts, f"{rng.getrandbits(64):016x}", honest_model(ts))
    # Trap: an SDK health check, one prompt sent by 60 of them at random times
    health = rng.getrandbits(64)
    for i in range(60):
        for _ in range(10):
            w.send(f"user{i:03d}", T0 + rng.randrange(span), near(rng, health, 1))
    w.groups["health_check"] = {f"user{i:03d}" for i in range(60)}
    # Trap: one heavy user filling a template 500 times
    template = rng.getrandbits(64)
    for _ in range(500):
        w.send("user150", T0 + rng.randrange(span), near(rng, template, 3))

    # Planted campaign: 20 new accounts run from Shanghai send variants of two prompts in 8 bursts
    templates = [rng.getrandbits(64), rng.getrandbits(64)]
    bursts = [T0 + rng.randrange(span - HOUR) for _ in range(8)]
    for i in range(20):
        a = f"camp{i:02d}"
        w.add(a, T0 - 2 * DAY + i * MINUTE, "campaign")
        for start in bursts:
            for _ in range(rng.randrange(5, 10)):
                fp = near(rng, rng.choice(templates), 3)
                w.send(a, start + rng.randrange(15 * MINUTE), fp, **SHANGHAI, ip="45.77.10.8")
        for _ in range(20):  # and some cover traffic
            w.send(a, T0 + rng.randrange(span), f"{rng.getrandbits(64):016x}", **SHANGHAI, ip="45.77.10.8")

    # Planted model shift: 12 accounts on Moscow clocks (three of them opened two days earlier) move
    # everything to model-x within 40 minutes of its release
    for i in range(12):
        a = f"shift{i:02d}"
        w.add(a, RELEASE - 2 * DAY if i < 3 else T0 - 100 * DAY, "shift")
        t_move = RELEASE + rng.randrange(40 * MINUTE)
        for _ in range(60):
            ts = (RELEASE - 2 * DAY if i < 3 else T0) + rng.randrange(RELEASE - T0 + 2 * DAY)
            if ts < RELEASE:
                w.send(a, ts, f"{rng.getrandbits(64):016x}", "model-a", **MOSCOW, ip="185.220.50.3")
        for k in range(40):
            w.send(
                a,
                t_move + (rng.randrange(2 * DAY) if k else 0),
                f"{rng.getrandbits(64):016x}",
                "model-x",
                **MOSCOW,
                ip="185.220.50.3",
            )
    # Trap: honest early adopters, some moving everything, at their own pace over the first 12 hours
    for i in range(30):
        a = f"early{i:02d}"
        w.add(a, T0 - 200 * DAY, "early")
        t_move = RELEASE + rng.randrange(12 * HOUR)
        for _ in range(30):
            w.send(a, T0 + rng.randrange(RELEASE - T0), f"{rng.getrandbits(64):016x}", "model-b")
        for k in range(30):
            model = "model-x" if i < 15 or rng.random() < 0.5 or k == 0 else "model-b"
            w.send(a, t_move + (rng.randrange(DAY) if k else 0), f"{rng.getrandbits(64):016x}", model)
    # Trap: new honest accounts signing up for the new model in the release hour
    for i in range(15):
        a = f"fresh{i:02d}"
        w.add(a, RELEASE + rng.randrange(HOUR), "fresh")
        for _ in range(20):
            w.send(a, RELEASE + HOUR + rng.randrange(DAY), f"{rng.getrandbits(64):016x}", "model-x")
    # Trap: three Chinese-speaking honest adopters abroad, hours apart
    for i in range(3):
        a = f"diaspora{i}"
        w.add(a, T0 - 300 * DAY, "diaspora")
        for _ in range(20):
            w.send(
                a, T0 + rng.randrange(RELEASE - T0), f"{rng.getrandbits(64):016x}", "model-a", accept_language="zh-CN"
            )
        t_move = RELEASE + 2 * HOUR + i * 4 * HOUR
        for k in range(20):
            ts = t_move + (rng.randrange(DAY) if k else 0)
            w.send(a, ts, f"{rng.getrandbits(64):016x}", "model-x", accept_language="zh-CN")
    return w


@pytest.fixture(scope="module")
def world() -> World:
    return build_world()


@pytest.fixture(scope="module")
def tables(world: World) -> tuple[pa.Table, pa.Table]:
    return events_table(world.events), accounts_table(world.accounts)


@pytest.fixture(scope="module")
def found(tables: tuple[pa.Table, pa.Table]) -> list[Finding]:
    return campaigns.run(duckdb_context(*tables))


def of_kind(findings: list[Finding], kind: str) -> list[Finding]:
    return [f for f in findings if f.kind == kind]


def test_planted_campaign_is_found_exactly(found: list[Finding], world: World) -> None:
    flagged = of_kind(found, "campaign")
    assert [set(f.members) for f in flagged] == [world.groups["campaign"]]
    ev = flagged[0].evidence
    assert ev["accounts"] == 20
    assert ev["sync_share"] > 0.9
    assert ev["hot_buckets"] >= 8
    assert ev["new_accounts"] == 20 and ev["new_basis"] == "created"
    assert ev["exposure"]["mean_exposure"] == 0.5  # Shanghai clocks: a hint, not a place
    assert ev["hamming_max"] <= 3
    assert len(ev["centres"]) == 2  # two templates, one campaign
    assert (
        ev["requests"]
        == sum(
            1 for e in world.events if e["account_id"].startswith("camp") and e["prompt_fingerprint"] and e["client_tz"]
        )
        - 20 * 20
    )
    assert flagged[0].subject.startswith("campaign-")


def test_popular_prompt_and_template_user_are_not_campaigns(tables: tuple[pa.Table, pa.Table], world: World) -> None:
    """They are near-duplicate sets (the analysis sees them) that score low."""
    everything = campaigns.run(duckdb_context(*tables, settings={"campaigns": {"flag_score": 0}}))
    sets = {frozenset(f.members): f for f in of_kind(everything, "campaign")}
    health = sets[frozenset(world.groups["health_check"])]
    assert health.evidence["sync_share"] < 0.05
    assert health.score < 0.2
    assert not any("user150" in m and len(m) == 1 for m in sets)  # one account is no campaign
    assert len(sets) == 2


def test_planted_model_shift_is_found_exactly(found: list[Finding], world: World) -> None:
    shifts = of_kind(found, "model_shift")
    assert [set(f.members) for f in shifts] == [world.groups["shift"]]
    ev = shifts[0].evidence
    assert ev["model"] == "model-x"
    assert ev["accounts"] == 12 and ev["moved"] == 12 and ev["new_accounts"] == 3
    assert ev["spread_minutes"] <= 40
    assert ev["share_on_model"] == 1.0
    assert ev["exposure"]["mean_exposure"] == 0.5


@pytest.mark.parametrize("trap", ["early", "fresh", "diaspora", "health_check"])
def test_honest_traps_are_not_flagged(found: list[Finding], world: World, trap: str) -> None:
    assert not {a for f in found for a in f.members} & world.groups[trap]


def test_without_accounts_new_means_first_seen(tables: tuple[pa.Table, pa.Table], world: World) -> None:
    found = campaigns.run(duckdb_context(tables[0]))
    camp = of_kind(found, "campaign")
    assert [set(f.members) for f in camp] == [world.groups["campaign"]]
    assert camp[0].evidence["new_basis"] == "first_seen"
    assert camp[0].evidence["new_accounts"] == 0  # first seen at the start of the log: unknown age


def test_unsynchronised_sets_need_more_than_near_duplicates(world: World) -> None:
    """Spread the campaign's requests over the week: near-duplicates alone do not flag it."""
    rng = random.Random(3)
    spread = [
        {**e, "ts_ms": T0 + rng.randrange(7 * DAY)} if e["account_id"].startswith("camp") else e for e in world.events
    ]
    calm = [{**a, "created": T0 - 300 * DAY} for a in world.accounts]
    found = campaigns.run(duckdb_context(events_table(spread), accounts_table(calm)))
    camp = of_kind(
        campaigns.run(duckdb_context(events_table(spread), accounts_table(calm), {"campaigns": {"flag_score": 0}})),
        "campaign",
    )
    assert not of_kind(found, "campaign")
    assert world.groups["campaign"] in [set(f.members) for f in camp]


def test_fingerprints_parse_and_measure() -> None:
    values, ok = neardup.parse_fingerprints(["ffffffffffffffff", "000000000000000f", "xyz", None, "0" * 15])
    assert ok.tolist() == [True, True, False, False, False]
    assert neardup.hamming(values[:2], 0).tolist() == [64, 4]
    assert values.dtype == np.uint64


@pytest.mark.slow
def test_spark_finds_the_same(tables: tuple[pa.Table, pa.Table], found: list[Finding]) -> None:
    spark_found = on_spark(campaigns.run, spark_context(*tables, name="campaign_events"))
    assert as_dicts(spark_found) == as_dicts(found)
    assert {f.kind for f in found} == {"campaign", "model_shift"}
