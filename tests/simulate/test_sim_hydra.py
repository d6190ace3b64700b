"""The hydra scenario family (issue 16): parameters drawn from the seed, planted networks and the
hard honest negatives it promises (co-tenants on the hydra's cloud /24s, teams on one domain)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import duckdb
import pytest

from geowarden.intel.snapshot import Snapshot
from geowarden.simulate import accounts, load_scenario, scenario_names
from geowarden.simulate.scenario import build, write_labels, write_parquet

EVENTS = 150_000


def test_the_family_is_listed_and_varies_by_seed() -> None:
    assert {"hydra", "hydra-aged"} <= set(scenario_names())
    a, b = load_scenario("hydra", 1), load_scenario("hydra", 2)
    aged = load_scenario("hydra-aged", 1)  # the same draws, the planted accounts months old
    assert [e.accounts for e in aged.entries] == [e.accounts for e in a.entries]
    assert all(e.persona.burst_age_days >= 60 for e in aged.entries if e.network)
    assert all(e.persona.burst_age_days <= 5 for e in a.entries if e.network)
    assert a == load_scenario("hydra", 1)  # a seed is one world
    shape = [(e.name, e.accounts, e.share) for e in a.entries]
    assert shape != [(e.name, e.accounts, e.share) for e in b.entries]
    for s in (a, b):
        planted = [e for e in s.entries if e.network]
        assert 2 <= len(planted) <= 4 and all(e.network.startswith("hydra-") for e in planted if e.network)
        assert all(not e.persona.should_allow for e in planted)
        honest = {e.name.split("_")[0] for e in s.entries if not e.network}
        assert {"team", "sdk", "automation", "traveller", "students", "international"} <= honest
        assert s.release is not None


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory, full_snapshot: Snapshot) -> Iterator[duckdb.DuckDBPyConnection]:
    d = tmp_path_factory.mktemp("hydra")
    gen = build(load_scenario("hydra", 4), EVENTS, 4, full_snapshot)
    logs, labels, accts = d / "logs.parquet", d / "labels.jsonl", d / "accounts.parquet"
    write_parquet(gen, logs)
    write_labels(gen.labels, labels)
    accounts.write_accounts(gen.accounts, accts)
    con = duckdb.connect()
    con.execute(f"CREATE VIEW acc AS SELECT * FROM read_parquet('{accts}')")
    con.execute(f"CREATE TABLE lab AS SELECT * FROM read_json_auto('{labels}')")
    con.execute(
        "CREATE TABLE ev AS SELECT e.*, regexp_replace(e.ip, '\\.[0-9]+$', '') AS net, lab.persona, lab.network "
        f"FROM read_parquet('{logs}') e JOIN lab ON lab.subject = e.account_id"
    )
    yield con
    con.close()


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = con.execute(sql).fetchall()
    return out


def test_automation_is_a_co_tenant_of_the_hydra_cloud_exits(db: duckdb.DuckDBPyConnection) -> None:
    shared = _rows(
        db,
        "SELECT count(DISTINCT a.net) FROM ev a JOIN ev h ON a.net = h.net "
        "WHERE a.persona LIKE 'automation_%' AND h.network LIKE 'hydra-%'",
    )[0][0]
    assert shared >= 1


def test_hydra_accounts_share_cards_and_free_mail_teams_share_their_domain(db: duckdb.DuckDBPyConnection) -> None:
    per_card = _rows(
        db,
        "SELECT count(*) / count(DISTINCT payment_fingerprint) FROM acc JOIN lab ON lab.subject = acc.account_id "
        "WHERE lab.network LIKE 'hydra-%'",
    )[0][0]
    assert 6 <= per_card <= 14  # about ten accounts a card
    domains = dict(
        _rows(
            db,
            "SELECT lab.persona, count(DISTINCT email_domain) FROM acc JOIN lab ON lab.subject = acc.account_id "
            "WHERE lab.persona LIKE 'team_%' GROUP BY 1",
        )
    )
    assert domains and all(n == 1 for n in domains.values())
    free = _rows(
        db,
        "SELECT avg(CASE WHEN email_domain IN ('gmail.com', 'mailinator.com') THEN 1 ELSE 0 END) "
        "FROM acc JOIN lab ON lab.subject = acc.account_id WHERE lab.network LIKE 'hydra-%'",
    )[0][0]
    assert free > 0.9


def test_hydra_clients_mostly_hide_their_origin(db: duckdb.DuckDBPyConnection) -> None:
    share = _rows(
        db,
        "SELECT avg(CASE WHEN client_tz IN ('Asia/Shanghai', 'Europe/Moscow') THEN 1 ELSE 0 END) "
        "FROM ev WHERE network LIKE 'hydra-%'",
    )[0][0]
    assert share < 0.2  # clocks set to the exits, with occasional leaks
