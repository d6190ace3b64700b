"""The account-linking graph: planted networks are found, honest look-alikes are not, and DuckDB and
Spark agree."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pytest
from spark_support import DAY, HOUR, T0, accounts_table, as_dicts, duckdb_context, events_table, on_spark, spark_context

from geowarden.analytics import graph
from geowarden.analytics.findings import Finding
from geowarden.errors import ConfigError

CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/124.0 Safari/537.36"
POPULAR_UAS = [CHROME, "Mozilla/5.0 (Macintosh) Safari/605.1", "openai-python/1.30.1", "curl/8.5.0"]
HOME = {"US": ("America/New_York", "en-US,en;q=0.9"), "DE": ("Europe/Berlin", "de-DE,de;q=0.9,en;q=0.5")}


@dataclass
class World:
    events: list[dict[str, Any]] = field(default_factory=list)
    accounts: list[dict[str, Any]] = field(default_factory=list)
    groups: dict[str, set[str]] = field(default_factory=dict)  # planted networks and honest traps

    def account(self, account_id: str, created: int, group: str | None = None, **kw: Any) -> None:
        self.accounts.append({"account_id": account_id, "created": created, **kw})
        if group is not None:
            self.groups.setdefault(group, set()).add(account_id)

    def traffic(
        self,
        rng: random.Random,
        account_id: str,
        n: int,
        nets: list[dict[str, Any]],
        hours: tuple[int, int] = (0, 24),
        **kw: Any,
    ) -> None:
        """``n`` requests over the week, at UTC hours ``hours[0]`` to ``hours[1]``."""
        for _ in range(n):
            net = rng.choice(nets)
            ip = net["prefix"].rsplit(".", 2)[0] + f".{rng.randrange(1, 250)}"
            ts = T0 + rng.randrange(7) * DAY + rng.randrange(hours[0] * HOUR, hours[1] * HOUR)
            row = {"ts_ms": ts, "account_id": account_id, "ip": ip, **net, **kw}
            if callable(row.get("country")):
                row["country"] = row["country"](rng)
            self.events.append(row)


def build_world(seed: int = 7) -> World:
    rng = random.Random(seed)
    w = World()
    # Background: 240 honest accounts on home networks, popular user agents, own cards and phones;
    # 80 of them behind one mobile CGNAT range (a prefix of far more accounts than any cap).
    for i in range(240):
        a = f"user{i:03d}"
        cc = "US" if i % 3 else "DE"
        tz, lang = HOME[cc]
        w.account(
            a,
            T0 - rng.randrange(400) * DAY,
            payment_fingerprint=f"pay-{a}",
            phone_hash=f"ph-{a}",
            email_domain=rng.choice(["gmail.com", "outlook.com"]),
            declared_country=cc,
        )
        prefix = "100.64.7.0/24" if i < 80 else f"{81 + i // 200}.{i % 200}.3.0/24"
        ua = POPULAR_UAS[i % len(POPULAR_UAS)]
        net = {"prefix": prefix, "country": cc, "asn": 3320}
        w.traffic(rng, a, rng.randrange(20, 60), [net], user_agent=ua, client_tz=tz, accept_language=lang)

    # Trap: 40 colleagues behind one corporate egress (a cloud proxy), one corporate card, one
    # organisation, signed up in one onboarding hour; one of them travels to Hong Kong.
    egress = {"prefix": "198.51.100.0/24", "country": "US", "asn": 64500, "hosting": True, "proxy": True}
    for i in range(40):
        a = f"acme{i:02d}"
        w.account(
            a,
            T0 - 90 * DAY + i * 60_000,
            "corporate",
            payment_fingerprint="pay-acme-corporate-card",
            phone_hash=f"ph-{a}",
            email_domain="acme.example",
            organisation="Acme Corp",
            declared_country="US",
        )
        tz, lang = HOME["US"]
        w.traffic(rng, a, 40, [egress], user_agent="AcmeInternalTool/2.1", client_tz=tz, accept_language=lang)
    w.traffic(rng, "acme07", 6, [{"prefix": "203.0.113.0/24", "country": "HK", "asn": 4760}], user_agent=CHROME)

    # Trap: a Chinese-speaking family of four in the US sharing one home address and one laptop.
    home = {"prefix": "73.10.20.0/24", "country": "US", "asn": 7922}
    for i in range(4):
        a = f"family{i}"
        w.account(a, T0 - rng.randrange(300) * DAY, "family", payment_fingerprint=f"pay-{a}", declared_country="US")
        w.traffic(
            rng,
            a,
            30,
            [home],
            user_agent="Mozilla/5.0 (X11; Linux x86_64) Firefox/126.0",
            client_tz="America/Los_Angeles",
            accept_language="zh-CN,zh;q=0.9,en;q=0.8",
        )

    # Planted network A: 15 accounts run from China through four rented servers abroad, signed up
    # within 25 minutes, paying with three cards, verified with two virtual numbers.
    servers = [
        {"prefix": f"45.77.{n}.0/24", "country": c, "asn": 20473, "hosting": True}
        for n, c in ((10, "SG"), (11, "JP"), (12, "US"), (13, "DE"))
    ]
    burst = T0 - 3 * DAY
    for i in range(15):
        a = f"netA{i:02d}"
        w.account(
            a,
            burst + rng.randrange(25 * 60_000),
            "network_a",
            payment_fingerprint=f"pay-netA-{i % 3}",
            phone_hash=f"ph-netA-{i % 2}" if i < 6 else f"ph-{a}",
            email_domain="proton.me",
            declared_country=rng.choice(["SG", "US"]),
        )
        nets = rng.sample(servers, 2)
        tz = "Asia/Shanghai" if i % 5 else "Asia/Singapore"
        w.traffic(rng, a, 60, nets, user_agent="python-httpx/0.27.0", client_tz=tz, accept_language="zh-CN,zh")
        w.traffic(rng, a, 2, [{"prefix": "1.2.4.0/24", "country": "CN", "asn": 4134}], user_agent=CHROME)
    # two honest accounts rent machines at the same provider's ranges (another user agent)
    for a in ("cloudy1", "cloudy2"):
        w.account(a, T0 - 200 * DAY, payment_fingerprint=f"pay-{a}", declared_country="US")
        w.traffic(rng, a, 50, servers[:2], user_agent="Go-http-client/2.0", client_tz="UTC", accept_language="en")

    # Planted network B: six accounts sharing two phone numbers, created in one burst, always on a
    # commercial VPN, with Moscow clocks and a few requests straight from Russia.
    vpn = [{"prefix": f"185.220.{n}.0/24", "country": "NL", "asn": 9009, "vpn": True} for n in (50, 51)]
    for i in range(6):
        a = f"netB{i}"
        w.account(
            a, T0 - 10 * DAY + i * 120_000, "network_b", phone_hash=f"ph-netB-{i % 2}", email_domain="yandex.example"
        )
        w.traffic(rng, a, 40, vpn, user_agent=POPULAR_UAS[0], client_tz="Europe/Moscow", accept_language="ru-RU,ru")
        w.traffic(rng, a, 3, [{"prefix": "5.8.1.0/24", "country": "RU", "asn": 8359}], user_agent=CHROME)

    # Planted network C: ten careful accounts — London clocks, English browsers, British and US
    # exits, never a request from China — that keep Shanghai working hours (01:00-14:00 UTC)
    exits = [
        {"prefix": "185.199.20.0/24", "country": "GB", "asn": 9009, "vpn": True},
        {"prefix": "104.28.30.0/24", "country": "US", "asn": 13335, "proxy": True},
    ]
    for i in range(10):
        a = f"netC{i}"
        w.account(
            a,
            T0 - 1 * DAY + i * 60_000,
            "network_c",
            payment_fingerprint=f"pay-netC-{i % 2}",
            email_domain="outlook.com",
            declared_country="GB",
        )
        w.traffic(
            rng,
            a,
            50,
            exits,
            (1, 14),
            user_agent="HeadlessChrome/124.0",
            client_tz="Europe/London",
            accept_language="en-GB",
        )
    # Trap: 24/7 automation of one company in a US cloud region, on one card, round the clock
    cloud = {"prefix": "3.80.10.0/24", "country": "US", "asn": 14618, "hosting": True}
    for i in range(8):
        a = f"robot{i}"
        w.account(a, T0 - 5 * DAY + i * 60_000, "automation", payment_fingerprint="pay-robots")
        w.traffic(rng, a, 80, [cloud], user_agent="Go-http-client/1.1", client_tz="UTC", accept_language="en")
    return w


@pytest.fixture(scope="module")
def world() -> World:
    return build_world()


@pytest.fixture(scope="module")
def tables(world: World) -> tuple[pa.Table, pa.Table]:
    return events_table(world.events), accounts_table(world.accounts)


@pytest.fixture(scope="module")
def found(tables: tuple[pa.Table, pa.Table]) -> list[Finding]:
    return graph.run(duckdb_context(*tables))


def test_planted_networks_are_found_exactly(found: list[Finding], world: World) -> None:
    clusters = {frozenset(f.members) for f in found}
    assert clusters == {frozenset(world.groups[n]) for n in ("network_a", "network_b", "network_c")}
    assert all(f.kind == "account_cluster" and f.subject.startswith("cluster-") for f in found)


@pytest.mark.parametrize("trap", ["corporate", "family", "automation"])
def test_honest_look_alikes_are_not_flagged(found: list[Finding], world: World, trap: str) -> None:
    flagged = {a for f in found for a in f.members}
    assert not flagged & world.groups[trap]


def test_honest_traps_do_form_clusters_but_score_low(tables: tuple[pa.Table, pa.Table], world: World) -> None:
    """With no flag threshold the colleagues and the family are clusters too: linked, not flagged."""
    everything = graph.run(duckdb_context(*tables, settings={"graph": {"flag_score": 0, "min_exposure": 0}}))
    by_members = {frozenset(f.members): f for f in everything}
    corporate = by_members[frozenset(world.groups["corporate"])]
    family = by_members[frozenset(world.groups["family"])]
    assert corporate.evidence["links"]["payment"] > 0
    assert corporate.score < 0.2
    assert family.evidence["links"]["device"] == 6
    assert family.score < graph.DEFAULTS["flag_score"]
    automation = by_members[frozenset(world.groups["automation"])]
    assert automation.evidence["exposure"]["activity_hours"]["mismatch"] < 0.05  # round the clock
    assert automation.evidence["declared_clock"]["mismatch"] == 0  # fits its declared UTC clock
    assert automation.evidence["exposure"]["exposure"] == 0
    assert automation.score < graph.DEFAULTS["flag_score"]  # new, one card, cloud: but no throwaway identities
    flagged = [f for f in everything if f.score >= graph.DEFAULTS["flag_score"]]
    assert {frozenset(f.members) for f in flagged} == {
        frozenset(world.groups[n]) for n in ("network_a", "network_b", "network_c")
    }


def test_activity_hours_give_away_a_careful_network(found: list[Finding], world: World) -> None:
    c = next(f for f in found if set(f.members) == world.groups["network_c"])
    ev = c.evidence["exposure"]
    assert ev["member_exposure"] == 0 and ev["restricted_requests"] == 0  # nothing else to go on
    hours = ev["activity_hours"]  # evidence only: "fits some restricted clock" is not scored
    assert hours["country"] in {"CN", "HK", "MO"} and hours["mismatch"] > 0.35
    assert ev["exposure"] == 0
    assert c.severity == "origin_hidden"
    # what is scored: its clients declare London and it keeps other hours
    assert c.evidence["declared_clock"]["waking_share"] < 0.5 and c.evidence["declared_clock"]["mismatch"] > 0
    assert c.evidence["new_members"] == 10


def test_evidence_explains_the_cluster(found: list[Finding], world: World) -> None:
    a = next(f for f in found if set(f.members) == world.groups["network_a"])
    ev = a.evidence
    assert ev["size"] == 15
    assert set(ev["links"]) >= {"payment", "phone", "device", "burst"}
    assert ev["exposure"]["exposed_members"] == 15 and ev["exposure"]["exposure"] == 1.0
    assert ev["exposure"]["restricted_requests"] == 30
    assert ev["exposure"]["tz_restricted_members"] == 12
    assert 0 < len(ev["example_links"]) <= graph.DEFAULTS["max_examples"]
    for left, right, kind, value in ev["example_links"]:
        assert {left, right} <= world.groups["network_a"]
        assert kind in graph.KINDS
        assert "pay-" not in value and "ph-" not in value and "httpx" not in value  # hashes, never raw values
    assert ev["example_links"][0][2] == "payment"
    b = next(f for f in found if set(f.members) == world.groups["network_b"])
    assert b.evidence["exposure"]["anonymiser_share"] > 0.9
    assert a.score > b.score > graph.DEFAULTS["flag_score"]


def test_cluster_id_is_stable(found: list[Finding]) -> None:
    for f in found:
        assert f.subject == graph.group_id("cluster", f.members)


def test_a_prefix_cap_of_one_account_cuts_prefix_links(tables: tuple[pa.Table, pa.Table]) -> None:
    ctx = duckdb_context(*tables, settings={"graph": {"cap_prefix": 1, "flag_score": 0, "min_exposure": 0}})
    assert all("prefix" not in f.evidence["links"] for f in graph.run(ctx))


def test_without_accounts_the_network_links_by_device(tables: tuple[pa.Table, pa.Table], world: World) -> None:
    found = graph.run(duckdb_context(tables[0]))
    a = next(f for f in found if set(f.members) & world.groups["network_a"])
    assert set(a.members) == world.groups["network_a"]
    assert set(a.evidence["links"]) <= {"device", "prefix"}


def test_bad_threshold_is_a_config_error(tables: tuple[pa.Table, pa.Table]) -> None:
    with pytest.raises(ConfigError, match=r"analytics\.graph\.min_edge"):
        graph.run(duckdb_context(*tables, settings={"graph": {"min_edge": "high"}}))


@pytest.mark.slow
def test_spark_finds_the_same_clusters(tables: tuple[pa.Table, pa.Table], found: list[Finding]) -> None:
    spark_found = on_spark(graph.run, spark_context(*tables, name="graph_events"))
    assert as_dicts(spark_found) == as_dicts(found)
    assert len(found) == 3
