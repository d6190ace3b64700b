"""The analytics scenario: prompt fingerprints, the accounts table, planted networks and honest
traps, a campaign and a model release, resold keys and flying travellers (issues 8 and 9)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pytest

from geowarden.errors import ConfigError
from geowarden.events import EventReader
from geowarden.intel.snapshot import Snapshot
from geowarden.simulate import accounts, load_scenario, prompts, scenario_names, simulate
from geowarden.simulate.eval import read_labels
from geowarden.simulate.scenario import Generated, build, write_labels, write_parquet

EVENTS = 200_000
HOUR = 3_600_000


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, full_snapshot: Snapshot) -> Iterator[dict[str, Any]]:
    d = tmp_path_factory.mktemp("analytics")
    gen = build(load_scenario("analytics"), EVENTS, 5, full_snapshot)
    logs, labels, accts = d / "logs.parquet", d / "labels.jsonl", d / "accounts.parquet"
    write_parquet(gen, logs)
    write_labels(gen.labels, labels)
    accounts.write_accounts(gen.accounts, accts)
    db = duckdb.connect()
    db.execute(f"CREATE VIEW ev AS SELECT * FROM read_parquet('{logs}')")
    db.execute(f"CREATE VIEW acc AS SELECT * FROM read_parquet('{accts}')")
    db.execute(f"CREATE TABLE lab AS SELECT * FROM read_json_auto('{labels}')")
    db.execute("CREATE TABLE evl AS SELECT ev.*, lab.persona, lab.network, lab.campaign, lab.should_allow FROM ev "
               "JOIN lab ON lab.subject = ev.account_id AND lab.kind = 'account'")  # fmt: skip
    yield {"gen": gen, "db": db, "logs": logs, "labels": labels, "snap": full_snapshot}
    db.close()


def _rows(run: dict[str, Any], sql: str) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = run["db"].execute(sql).fetchall()
    return rows


def _fps(values: list[str]) -> prompts.U64Array:
    return np.array([int(v, 16) for v in values], dtype=np.uint64)


def test_scenario_is_shipped_and_plants_what_it_says() -> None:
    assert "analytics" in scenario_names()
    s = load_scenario("analytics")
    assert 3 <= s.days <= 7 and s.release is not None and s.release.day < s.days
    networks = {e.network for e in s.entries if e.network}
    assert len({n for n in networks if n.startswith("farm")}) >= 3
    assert any(e.campaign for e in s.entries)
    assert [e.accounts for e in s.entries if e.persona.kind == "key_reseller"] == [2]


def test_every_event_has_a_hex_fingerprint(run: dict[str, Any]) -> None:
    (n, good) = _rows(run, "SELECT count(*), count(*) FILTER (WHERE regexp_full_match(prompt_fingerprint, "
                           "'[0-9a-f]{16}')) FROM ev")[0]  # fmt: skip
    assert n == EVENTS and good == n


def test_accounts_table_has_one_row_per_account(run: dict[str, Any]) -> None:
    cols = [r[0] for r in _rows(run, "DESCRIBE acc")]
    assert cols == list(accounts.COLUMNS)
    (rows, distinct) = _rows(run, "SELECT count(*), count(DISTINCT account_id) FROM acc")[0]
    assert rows == distinct
    (missing,) = _rows(run, "SELECT count(DISTINCT account_id) FROM ev ANTI JOIN acc USING (account_id)")[0]
    assert missing == 0
    (late,) = _rows(run, "SELECT count(*) FROM (SELECT account_id, min(ts) AS first FROM ev GROUP BY 1) "
                         "JOIN acc USING (account_id) WHERE created >= first")[0]  # fmt: skip
    assert late == 0


def test_planted_networks_share_cards_phones_devices_and_birthdays(run: dict[str, Any]) -> None:
    rows = _rows(
        run,
        """SELECT l.network, count(*) AS n, count(DISTINCT a.payment_fingerprint), count(DISTINCT a.phone_hash),
                  count(DISTINCT date_trunc('hour', epoch_ms(a.created))),
                  avg(CASE WHEN a.declared_country IN ('CN', 'RU') THEN 1 ELSE 0 END)
           FROM lab l JOIN acc a ON a.account_id = l.subject
           WHERE l.network LIKE 'farm-%' GROUP BY 1 ORDER BY 1""",
    )
    assert len(rows) == 4
    for _network, n, cards, phones, hours, restricted_declared in rows:
        assert n >= 20
        assert cards <= max(6, n // 10) and phones <= max(12, n // 5)
        assert hours <= 8  # a few creation bursts, not years of sign-ups
        assert restricted_declared < 0.1  # they declare where their exits are
    devices = _rows(
        run,
        """SELECT network, count(DISTINCT account_id), count(DISTINCT (user_agent, regexp_replace(ip, '\\.\\d+$', '')))
           FROM evl WHERE network LIKE 'farm-%' GROUP BY 1""",
    )
    for _network, members, dev in devices:
        assert dev <= 5 < members
    (zones,) = _rows(run, "SELECT avg(CASE WHEN client_tz = 'Asia/Shanghai' THEN 1 ELSE 0 END) "
                          "FROM evl WHERE network = 'farm-1'")[0]  # fmt: skip
    assert zones > 0.5


def test_honest_colleagues_and_families_look_linked_too(run: dict[str, Any]) -> None:
    (n, orgs, domains, shared_card) = _rows(
        run,
        """SELECT count(*), count(DISTINCT organisation), count(DISTINCT email_domain),
                  sum(CASE WHEN c > 1 THEN 1 ELSE 0 END)
           FROM (SELECT a.*, count(*) OVER (PARTITION BY payment_fingerprint) AS c
                 FROM acc a JOIN lab l ON l.subject = a.account_id WHERE l.persona = 'company_team')""",
    )[0]
    assert n == 150 and orgs == 1 and domains == 1
    assert 0.25 * n <= shared_card <= 0.6 * n  # some colleagues are on the corporate card
    (top_share,) = _rows(
        run,
        """SELECT max(k) / sum(k) FROM (SELECT regexp_replace(ip, '\\.\\d+$', '') AS p, count(*) AS k
           FROM evl WHERE persona = 'company_team' GROUP BY 1)""",
    )[0]
    assert top_share > 0.7  # one office egress /24
    (families, unique) = _rows(
        run,
        """SELECT count(*) FILTER (WHERE c BETWEEN 2 AND 4), count(*) FILTER (WHERE c = 1)
           FROM (SELECT payment_fingerprint, count(*) AS c FROM acc a JOIN lab l ON l.subject = a.account_id
                 WHERE l.persona = 'local_residential' GROUP BY 1)""",
    )[0]
    assert families > 50 and unique > 10 * families
    (biggest_line, company_phones) = _rows(
        run,
        """SELECT max(c) FILTER (WHERE persona <> 'company_team'),
                  count(DISTINCT phone_hash) FILTER (WHERE persona = 'company_team')
           FROM (SELECT a.phone_hash, l.persona, count(*) OVER (PARTITION BY a.phone_hash) AS c
                 FROM acc a JOIN lab l ON l.subject = a.account_id
                 WHERE l.should_allow AND a.phone_hash IS NOT NULL)""",
    )[0]
    assert biggest_line <= 4 and company_phones == 150  # honest lines are shared by families only
    (labelled,) = _rows(
        run, "SELECT count(*) FROM lab WHERE should_allow AND (network IS NOT NULL OR campaign IS NOT NULL)"
    )[0]
    assert labelled == 0


def test_campaign_fingerprints_stay_near_their_templates_and_honest_ones_do_not(run: dict[str, Any]) -> None:
    templates = run["gen"].truth.templates["distill-1"]
    camp = _fps([r[0] for r in _rows(run, "SELECT prompt_fingerprint FROM evl WHERE campaign = 'distill-1'")])
    near = np.min(np.stack([prompts.hamming(camp, t) for t in templates]), axis=0)
    assert len(camp) > 1000
    assert (near <= prompts.MAX_FLIPS).mean() > 0.85 and (near[near <= 3] > 0).any()
    honest = _fps([r[0] for r in _rows(run, "SELECT prompt_fingerprint FROM evl WHERE should_allow")])
    far = np.min(np.stack([prompts.hamming(honest, t) for t in templates]), axis=0)
    assert far.min() > 3 * prompts.MAX_FLIPS


def test_campaign_is_synchronised_and_popular_prompts_are_not(run: dict[str, Any]) -> None:
    minutes, per_minute, total = _rows(
        run,
        """SELECT count(*), median(a), (SELECT count(DISTINCT ts // 60000) FROM ev)
           FROM (SELECT ts // 60000 AS m, count(DISTINCT account_id) AS a FROM evl WHERE campaign IS NOT NULL
                 GROUP BY 1)""",
    )[0]
    assert minutes < 0.15 * total and per_minute >= 3
    health = f"{int(run['gen'].truth.popular.values[0]):016x}"
    accounts_sending, hours = _rows(
        run,
        f"""SELECT count(DISTINCT account_id), count(DISTINCT ts // {HOUR}) FROM evl
            WHERE should_allow AND prompt_fingerprint = '{health}'""",
    )[0]
    assert accounts_sending > 200 and hours > 0.8 * 5 * 24


def test_model_release_comes_in_order(run: dict[str, Any]) -> None:
    model, at = run["gen"].truth.release
    (before,) = _rows(run, f"SELECT count(*) FROM ev WHERE model = '{model}' AND ts < {at}")[0]
    assert before == 0
    camp_early, honest_early, honest_late = _rows(
        run,
        f"""SELECT avg(CASE WHEN model = '{model}' THEN 1 ELSE 0 END) FILTER (WHERE campaign IS NOT NULL
                   AND ts >= {at + 6 * HOUR}),
                   avg(CASE WHEN model = '{model}' THEN 1 ELSE 0 END) FILTER (WHERE should_allow
                   AND ts BETWEEN {at} AND {at + 6 * HOUR}),
                   avg(CASE WHEN model = '{model}' THEN 1 ELSE 0 END) FILTER (WHERE should_allow
                   AND ts >= {at + 48 * HOUR})
            FROM evl""",
    )[0]
    assert camp_early > 0.8  # the campaign moves within hours
    assert honest_early < 0.05 < honest_late  # honest users drift over days
    campaign_90, honest_50 = _rows(
        run,
        f"""SELECT quantile_cont(d, 0.9) FILTER (WHERE campaign), quantile_cont(d, 0.5) FILTER (WHERE NOT campaign)
            FROM (SELECT account_id, campaign IS NOT NULL AS campaign, min(ts) - {at} AS d FROM evl
                  WHERE model = '{model}' GROUP BY 1, 2)""",
    )[0]
    assert campaign_90 < 12 * HOUR and 2 * campaign_90 < honest_50  # its next windows; honest users take days


def test_people_keep_their_hours(run: dict[str, Any]) -> None:
    (cn_day,) = _rows(run, "SELECT avg(CASE WHEN (ts // 3600000 + 8) % 24 BETWEEN 9 AND 22 THEN 1 ELSE 0 END) "
                           "FROM evl WHERE network = 'farm-1'")[0]  # fmt: skip
    (us_day,) = _rows(run, "SELECT avg(CASE WHEN (ts // 3600000 + 16) % 24 BETWEEN 8 AND 19 THEN 1 ELSE 0 END) "
                           "FROM evl WHERE persona = 'company_team'")[0]  # fmt: skip
    (flat,) = _rows(run, "SELECT avg(CASE WHEN (ts // 3600000 + 16) % 24 BETWEEN 8 AND 19 THEN 1 ELSE 0 END) "
                         "FROM evl WHERE persona = 'cloud_automation'")[0]  # fmt: skip
    assert cn_day > 0.72 and us_day > 0.68 and abs(flat - 12 / 24) < 0.05  # flat: 0.58 and 0.5


def test_a_resold_key_jumps_between_shanghai_and_a_us_relay_within_seconds(run: dict[str, Any]) -> None:
    keys = [r[0] for r in _rows(run, "SELECT subject FROM lab WHERE kind = 'key' AND persona = 'key_reseller'")]
    assert len(keys) == 2
    for key in keys:
        ts, ips = zip(*_rows(run, f"SELECT ts, ip FROM ev WHERE api_key_id = '{key}' ORDER BY ts"), strict=True)
        country = run["snap"].lookup_many(list(ips)).country
        gap = np.diff(np.array(ts))
        jump = (country[1:] != country[:-1]) & np.isin(country[1:], ["CN", "US"]) & np.isin(country[:-1], ["CN", "US"])
        assert (jump & (gap <= 10_000)).sum() >= 10
        assert {"CN", "US"} <= set(country.tolist())


def test_travellers_fly_and_are_silent_in_the_air(run: dict[str, Any]) -> None:
    rows = _rows(run, "SELECT account_id, ts, ip FROM evl WHERE persona = 'traveller' ORDER BY account_id, ts")
    country = run["snap"].lookup_many([r[2] for r in rows]).country.tolist()
    by: dict[str, list[tuple[int, bool]]] = {}
    for (acct, ts, _ip), cc in zip(rows, country, strict=True):
        by.setdefault(acct, []).append((ts, cc in ("DE", "GB", "FR")))
    flew = 0
    for seq in by.values():
        home = [t for t, at_home in seq if at_home]
        away = [t for t, at_home in seq if not at_home]
        if home and away:
            flew += 1
            assert max(home) + 12 * HOUR <= min(away)  # never abroad before landing, 12 h in the air
    assert flew > 0.5 * len(by)


def test_labels_carry_network_and_campaign_and_eval_reads_them(run: dict[str, Any]) -> None:
    rows = [json.loads(x) for x in Path(run["labels"]).read_text().splitlines()]
    assert all({"subject", "kind", "persona", "should_allow", "observable"} <= r.keys() for r in rows)
    planted = [r for r in rows if "network" in r or "campaign" in r]
    assert planted and all(not r["should_allow"] and r["kind"] == "account" for r in planted)
    assert {r["network"] for r in planted if "network" in r} == {"farm-1", "farm-2", "farm-3", "farm-4", "relay-1"}
    assert {r["campaign"] for r in planted if "campaign" in r} == {"distill-1"}
    assert len(read_labels(run["labels"])) == len(rows)


def test_simulate_writes_the_accounts_table_as_json_lines(tmp_path: Path, tiny_snapshot: Snapshot) -> None:
    out, labels, accts = tmp_path / "ev.jsonl.gz", tmp_path / "labels.jsonl", tmp_path / "accounts.jsonl"
    summary = simulate("analytics", 4000, 3, out, labels, accounts=accts, snapshot=tiny_snapshot)
    assert summary["accounts"] == str(accts) and summary["model_release"]["model"] == "large-3"
    rows = [json.loads(x) for x in accts.read_text().splitlines()]
    assert len(rows) == summary["account_rows"] and set(rows[0]) == set(accounts.COLUMNS)
    seen = {e.account_id: e for e in EventReader([out])}
    by_id = {r["account_id"]: r for r in rows}
    assert seen.keys() <= by_id.keys()
    assert all(e.prompt_fingerprint is not None and len(e.prompt_fingerprint) == 16 for e in seen.values())
    again = tmp_path / "again.jsonl"
    simulate("analytics", 4000, 3, tmp_path / "ev2.jsonl", None, accounts=again, snapshot=tiny_snapshot)
    assert again.read_bytes() == accts.read_bytes()


@pytest.mark.parametrize(
    ("patch", "match"),
    [
        ({"model_release": {"model": "large-2", "day": 1}}, "already exists"),
        ({"model_release": {"model": "x", "day": 9}}, "within the timeline"),
        ({"mix": [{"persona": "distillation", "share": 1, "params": {"prompts": {"telepathy": 1}}}]}, "prompts"),
        ({"mix": [{"persona": "traveller", "share": 1, "params": {"cities": ["Atlantis"]}}]}, "unknown cities"),
        ({"mix": [{"persona": "traveller", "share": 1, "planted_network": ""}]}, "planted_network"),
    ],
)
def test_bad_analytics_parameters_are_config_errors(patch: dict[str, Any], match: str) -> None:
    from geowarden.simulate.scenario import parse_scenario

    raw: dict[str, Any] = {"days": 2, "mix": [{"persona": "local_residential", "share": 1}], **patch}
    with pytest.raises(ConfigError, match=match):
        parse_scenario(raw)


def test_generated_keeps_the_truth_out_of_the_logs(run: dict[str, Any]) -> None:
    gen: Generated = run["gen"]
    assert gen.truth is not None and set(gen.truth.templates) == {"distill-1"}
    assert gen.truth.popular.templated.any() and not gen.truth.popular.templated.all()
    cols = [r[0] for r in _rows(run, "DESCRIBE ev")]
    assert "prompt_fingerprint" in cols and not {"network", "campaign", "persona"} & set(cols)
    # the account's own attributes travel with its requests (the live group signal reads them), the labels do not
    assert {"payment_fingerprint", "account_created", "payment_accounts"} <= set(cols)


def test_accounts_on_card_counts_holders_created_by_then() -> None:
    """Per event, the accounts on the event's card created at or before it (billing records)."""
    import numpy as np

    from geowarden.simulate.accounts import accounts_on_card

    payment = np.array([7, 7, 7, 9, 9], dtype=np.uint64)  # accounts 0-2 share card 7, 3-4 card 9
    created = np.array([100, 200, 300, 50, 5000], dtype=np.int64)
    ev_acc = np.array([0, 0, 1, 2, 3, 4, 3])
    ts = np.array([150, 250, 250, 300, 60, 6000, 6000], dtype=np.int64)
    assert accounts_on_card(payment, created, ev_acc, ts).tolist() == [1, 2, 2, 3, 1, 2, 2]
