"""The personas of issue 16, each next to the honest crowd it resembles: an account farm that
leaks no restricted trace, a reseller's key, a restricted user behind VPN exits; company
colleagues behind one cloud egress, co-tenant automation, an expat at home. The thresholds are
the defaults (tuned on the ``analytics`` scenario, not on these cases)."""

from __future__ import annotations

import random
from typing import Any

import pyarrow as pa
import pytest
from spark_support import DAY, HOUR, T0, accounts_table, duckdb_context, events_table

from geowarden.analytics import graph, infra, restricted
from geowarden.analytics.findings import SEVERITIES, Finding, at_least
from geowarden.analytics.run import flags_of

CLOUD = {"prefix": "203.0.113.0/24", "country": "US", "asn": 16509, "hosting": True, "hosts": (1, 100)}
SDK = "python-requests/2.31.0"
NY = ("America/New_York", "en-US,en;q=0.9")
BERLIN = ("Europe/Berlin", "de-DE,de;q=0.9,en;q=0.5")
SHANGHAI = ("Asia/Shanghai", "zh-CN,zh;q=0.9")


def _requests(
    rng: random.Random, account: str, n: int, net: dict[str, Any], hours: tuple[int, int], clock: tuple[str, str],
    **kw: Any,
) -> list[dict[str, Any]]:  # fmt: skip
    """``n`` requests over a week at UTC hours ``hours``, from ``net`` (an address in its /24)."""
    out = []
    low, high = net.get("hosts", (1, 250))
    net = {k: v for k, v in net.items() if k != "hosts"}
    for _ in range(n):
        ip = net["prefix"].rsplit(".", 1)[0] + f".{rng.randrange(low, high)}"
        ts = T0 + rng.randrange(7) * DAY + rng.randrange(hours[0] * HOUR, hours[1] * HOUR)
        out.append({"ts_ms": ts, "account_id": account, "ip": ip, **net, "client_tz": clock[0],
                    "accept_language": clock[1], "user_agent": SDK, **kw})  # fmt: skip
    return out


def build() -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, set[str]]]:
    rng = random.Random(16)
    events: list[dict[str, Any]] = []
    accounts: list[dict[str, Any]] = []
    groups: dict[str, set[str]] = {}
    # The farm: 30 accounts created within 15 minutes two days before, three shared cards,
    # free-mail, all behind a US cloud with a New York clock and English, working Shanghai hours
    # (UTC 01-10): no restricted trace at all.
    for i in range(30):
        a = f"farm{i:02d}"
        groups.setdefault("farm", set()).add(a)
        accounts.append({"account_id": a, "created": T0 - 2 * DAY + rng.randrange(15 * 60_000),
                         "payment_fingerprint": f"card-{i % 3}", "email_domain": "gmail.com",
                         "declared_country": "US"})  # fmt: skip
        events += _requests(rng, a, 40, CLOUD, (1, 10), NY)
    # Colleagues: 30 accounts on two corporate cards, onboarded together three days before, one
    # cloud egress in Frankfurt, Berlin clocks and office hours (UTC 07-16), one company domain.
    egress = {"prefix": "198.51.100.0/24", "country": "DE", "asn": 16509, "hosting": True}
    for i in range(30):
        a = f"acme{i:02d}"
        groups.setdefault("team", set()).add(a)
        accounts.append({"account_id": a, "created": T0 - 3 * DAY + rng.randrange(60 * 60_000),
                         "payment_fingerprint": f"acme-card-{i % 2}", "email_domain": "acme-robotics.example",
                         "organisation": "Acme Robotics GmbH", "declared_country": "DE"})  # fmt: skip
        events += _requests(rng, a, 40, egress, (7, 16), BERLIN)
    # Unrelated automation on the farm's cloud /24 (co-tenants: their own machines' addresses),
    # the same SDK, round the clock, UTC clocks.
    for i in range(8):
        a = f"bot{i}"
        groups.setdefault("automation", set()).add(a)
        accounts.append({"account_id": a, "created": T0 - rng.randrange(100, 900) * DAY,
                         "payment_fingerprint": f"bots-card-{i}", "email_domain": f"corp{i}.example",
                         "declared_country": "US"})  # fmt: skip
        own = {**CLOUD, "hosts": (200 + 5 * i, 205 + 5 * i)}
        events += _requests(rng, a, 60, own, (0, 24), ("UTC", "en-US"))
    # A reseller's key: thousands of requests over days from CN consumer networks, three clients.
    for i in range(3000):
        net = {"prefix": f"36.{100 + i % 7}.{i % 30}.0/24", "country": "CN", "asn": 4134 + i % 3}
        events += _requests(rng, "reseller", 1, net, (0, 24), SHANGHAI, api_key_id="key-resold",
                            user_agent=["openai-python/1.30", "node-fetch/3.3", "curl/8.5"][i % 3])  # fmt: skip
    accounts.append({"account_id": "reseller", "created": T0 - 40 * DAY, "payment_fingerprint": "r-card",
                     "email_domain": "outlook.com", "declared_country": "SG"})  # fmt: skip
    # A user in China behind commercial VPN exits: Shanghai clock and Chinese on every request.
    for j in range(200):
        net = {"prefix": f"185.{200 + j % 4}.7.0/24", "country": ["US", "JP", "SG"][j % 3], "asn": 9009, "vpn": True}
        events += _requests(rng, "vpnuser", 1, net, (1, 10), SHANGHAI)
    accounts.append({"account_id": "vpnuser", "created": T0 - 90 * DAY, "payment_fingerprint": "v-card",
                     "email_domain": "gmail.com", "declared_country": "US"})  # fmt: skip
    # An expat at home in the US with the same clock and language, on a residential line.
    events += _requests(rng, "expat", 200, {"prefix": "73.1.2.0/24", "country": "US", "asn": 7922}, (0, 15), SHANGHAI)
    accounts.append({"account_id": "expat", "created": T0 - 900 * DAY, "payment_fingerprint": "e-card",
                     "email_domain": "gmail.com", "declared_country": "US"})  # fmt: skip
    # Background: people at home, on their own cards, in their own hours.
    for i in range(150):
        a = f"user{i:03d}"
        accounts.append({"account_id": a, "created": T0 - rng.randrange(30, 900) * DAY,
                         "payment_fingerprint": f"pay-{a}", "email_domain": "gmail.com",
                         "declared_country": "US"})  # fmt: skip
        home = {"prefix": f"73.{10 + i}.3.0/24", "country": "US", "asn": 7922}
        events += _requests(rng, a, rng.randrange(10, 40), home, (13, 24), NY, user_agent="Mozilla/5.0 Chrome/124")
    return events, accounts, groups


@pytest.fixture(scope="module")
def world() -> tuple[pa.Table, pa.Table, dict[str, set[str]]]:
    events, accounts, groups = build()
    return events_table(events), accounts_table(accounts), groups


def _members(found: list[Finding]) -> set[str]:
    return {m for f in found for m in f.members}


def test_a_farm_without_a_restricted_trace_is_a_finding(world: tuple[pa.Table, pa.Table, dict[str, set[str]]]) -> None:
    events, accounts, groups = world
    found = graph.run(duckdb_context(events, accounts))
    # one cluster per shared card (a creation wave on a free-mail domain strengthens links, never
    # makes one): every farm account is in a finding, and nothing else is
    assert _members(found) == groups["farm"]
    assert len(found) == 3
    for f in found:
        assert f.severity == "origin_hidden"
        assert f.evidence["exposure"]["exposure"] == 0  # nothing restricted was seen ...
        assert f.evidence["declared_clock"]["waking_share"] < 0.5  # ... but it does not live by its clock
        assert f.evidence["new_members"] == f.evidence["size"] == f.evidence["burst_members"]
    # --min-severity restricted_origin_seen leaves them out
    assert not at_least(found, SEVERITIES[1])


def test_colleagues_are_a_cluster_that_their_domain_explains(
    world: tuple[pa.Table, pa.Table, dict[str, set[str]]],
) -> None:
    events, accounts, groups = world
    everything = graph.run(duckdb_context(events, accounts, settings={"graph": {"flag_score": 0}}))
    teams = [f for f in everything if set(f.members) <= groups["team"]]
    assert {m for f in teams for m in f.members} == groups["team"]  # one cluster per corporate card
    for team in teams:
        assert team.evidence["organisation"]["legitimacy"] == 1.0
        assert team.evidence["factors"]["coordination"] > 0.5  # they do look coordinated ...
        assert team.score < graph.DEFAULTS["flag_score"]  # ... and are not reported
        assert team.evidence["declared_clock"]["waking_share"] > 0.8  # office hours in their own zone


def test_cloud_co_tenants_are_not_linked(world: tuple[pa.Table, pa.Table, dict[str, set[str]]]) -> None:
    events, accounts, groups = world
    everything = graph.run(duckdb_context(events, accounts, settings={"graph": {"flag_score": 0}}))
    for f in everything:
        assert not (set(f.members) & groups["automation"] and set(f.members) & groups["farm"])


def test_a_reseller_key_ends_in_close_this_key(world: tuple[pa.Table, pa.Table, dict[str, set[str]]]) -> None:
    events, accounts, _ = world
    found = restricted.run(duckdb_context(events, accounts))
    by = {(f.kind, f.subject): f for f in found}
    key = by["restricted_use", "key-resold"]
    assert key.evidence["action"] == "close this key"
    assert key.evidence["restricted_requests"] == 3000 and key.evidence["restricted_prefixes"] >= 30
    assert key.members == ("reseller",)
    account = by["restricted_use", "reseller"]
    assert account.evidence["action"] == "close this account" and account.keys == ("key-resold",)
    flags = {(name, code) for name, code, _ in flags_of(found)}
    assert ("k:key-resold", "ANALYTICS_RESTRICTED_USE") in flags
    assert ("a:reseller", "ANALYTICS_RESTRICTED_USE") in flags


def test_a_restricted_client_behind_vpn_exits_is_a_finding_an_expat_at_home_is_not(
    world: tuple[pa.Table, pa.Table, dict[str, set[str]]],
) -> None:
    events, accounts, groups = world
    found = restricted.run(duckdb_context(events, accounts))
    clients = {f.subject: f for f in found if f.kind == "restricted_client"}
    assert "vpnuser" in clients and clients["vpnuser"].evidence["restricted_client_share"] == 1.0
    flagged = {s for f in found for s in (f.subject, *f.members)}
    assert "expat" not in flagged
    assert not flagged & (groups["farm"] | groups["team"] | groups["automation"])
    assert not any(a.startswith("user") for a in flagged)


def test_infrastructure_findings_list_members_and_keys() -> None:
    rng = random.Random(5)
    rows: list[dict[str, Any]] = []
    relay = {"prefix": "192.0.2.0/24", "country": "US", "asn": 64501, "hosting": True}
    for i in range(40):
        rows += _requests(rng, f"cn{i:02d}", 20, relay, (1, 10), SHANGHAI)
    for i in range(40):  # the provider's other customers, spread over its other /24s
        rows += _requests(rng, f"other{i:02d}", 20, {**relay, "prefix": f"192.0.{10 + i}.0/24"}, (0, 24), NY)
    found = [f for f in infra.run(duckdb_context(events_table(rows))) if f.subject == "192.0.2.0/24"]
    assert len(found) == 1
    assert set(found[0].members) == {f"cn{i:02d}" for i in range(40)}
    assert set(found[0].keys) == {f"key-cn{i:02d}" for i in range(40)}
