"""Reseller infrastructure (analytics/infra.py): a relay /24 full of unrelated CN accounts and a VPN
provider full of RU clients are found; a secure web gateway, a mobile carrier's NAT, an office,
expats at home and cloud jobs are not, though each carries many accounts."""

from __future__ import annotations

from pathlib import Path

import pytest
from analytics_world import LogWriter, infra_scenario, prefix

from geowarden.analytics import infra
from geowarden.analytics.findings import Finding
from geowarden.analytics.run import AnalysisResult, analyze
from geowarden.intel.snapshot import Snapshot


@pytest.fixture(scope="module")
def result(world_snapshot: Snapshot, tmp_path_factory: pytest.TempPathFactory) -> AnalysisResult:
    path = LogWriter().parquet(tmp_path_factory.mktemp("infra") / "infra.parquet", infra_scenario().events)
    return analyze([path], snapshot=world_snapshot)


def networks(result: AnalysisResult) -> dict[str, Finding]:
    return {f.subject: f for f in result.findings if f.kind == "infrastructure"}


def test_planted_found_and_honest_not(result: AnalysisResult) -> None:
    truth = infra_scenario()
    found = set(networks(result))
    tp = len(found & truth.planted)
    precision = tp / len(found) if found else 0.0
    recall = tp / len(truth.planted)
    print(f"infrastructure: precision {precision:.2f}, recall {recall:.2f}, found {sorted(found)}")
    assert recall == 1.0
    assert precision == 1.0
    assert not found & truth.honest


def test_relay_prefix_evidence(result: AnalysisResult) -> None:
    f = networks(result)[prefix("us_cloud", 7 * 256)]
    ev = f.evidence
    assert (ev["network"], ev["asn"], ev["org"]) == ("prefix", 16509, "Amazon.com")
    assert ev["accounts"] == 30 and ev["exposed_accounts"] == 30
    assert ev["anonymised_share"] == 1.0
    assert ev["concentration"] > 5  # the ASN's other prefixes carry one account each
    assert len(ev["example_accounts"]) == infra.DEFAULTS["examples"]
    assert ev["example_accounts"] == sorted(ev["example_accounts"])
    assert all(a.startswith("acct-relay-") for a in ev["example_accounts"])


def test_cloud_asn_is_not_blamed_for_its_relay(result: AnalysisResult) -> None:
    """Amazon carries the relay's 30 exposed accounts and 10 honest jobs: the exposed ones are
    explained by the flagged /24, so the ASN is no finding of its own."""
    assert "AS16509" not in networks(result)
    vpn = networks(result)["AS9009"].evidence
    assert vpn["exposed_on_flagged_prefixes"] == 0
    assert vpn["exposed_accounts"] >= 25


def test_gateway_scores_at_most_the_floor(world_snapshot: Snapshot, tmp_path: Path) -> None:
    """With the score floor lowered to nothing, the crowded honest networks still score low:
    no restricted exposure, no finding whatever the crowd."""
    path = LogWriter().jsonl(tmp_path / "i.jsonl", infra_scenario().events)
    loose = analyze([path], snapshot=world_snapshot, settings={"infra": {"min_score": 0.2}})
    found = networks(loose)
    assert prefix("us_zscaler", 256) in found  # a gateway: crowded, anonymised, concentrated ...
    assert found[prefix("us_zscaler", 256)].score <= infra.DEFAULTS["floor"] + 1e-9  # ... and nothing else
    assert found[prefix("us_zscaler", 256)].evidence["exposed_accounts"] == 0
    assert prefix("us_mobile", 0) not in found  # a NAT: crowded like every prefix of its carrier
