from __future__ import annotations

import pytest

from geowarden.intel.snapshot import Snapshot
from geowarden.policy import default_restricted
from geowarden.signals import network
from geowarden.signals.codes import CODES
from helpers import facts

RESTRICTED = default_restricted()

CASES = [
    # ip, codes expected (subset), codes that must be absent
    ("1.2.4.8", {"IP_COUNTRY", "IP_COUNTRY_RESTRICTED"}, {"IP_HOSTING", "IP_UNKNOWN"}),
    ("8.8.8.8", {"IP_COUNTRY"}, {"IP_COUNTRY_RESTRICTED", "IP_UNKNOWN"}),
    ("5.1.1.1", {"IP_TOR"}, {"IP_COUNTRY_RESTRICTED"}),
    ("5.2.0.1", {"IP_VPN"}, {"IP_TOR"}),
    ("5.3.0.1", {"IP_HOSTING"}, {"IP_VPN"}),
    ("5.4.0.1", {"IP_PROXY"}, set()),
    ("5.7.0.1", {"IP_RELAY"}, {"IP_VPN"}),
    ("6.6.6.6", {"IP_COUNTRY_DISAGREEMENT"}, {"IP_COUNTRY_RESTRICTED"}),
    ("9.9.9.9", {"IP_UNKNOWN"}, {"IP_COUNTRY"}),
    ("192.168.1.1", {"IP_PRIVATE_OR_RESERVED"}, {"IP_UNKNOWN", "IP_COUNTRY"}),
    ("::1", {"IP_PRIVATE_OR_RESERVED"}, set()),
    ("1.2.3.999", {"IP_INVALID"}, set()),
]


@pytest.mark.parametrize(("ip", "present", "absent"), CASES)
def test_network_evidence(tiny_snapshot: Snapshot, ip: str, present: set[str], absent: set[str]) -> None:
    codes = {e.code for e in network.evaluate(facts(ip=ip), tiny_snapshot, frozenset(RESTRICTED))}
    assert present <= codes
    assert not (absent & codes)
    assert codes <= set(CODES), "every emitted code is documented"


def test_no_ip_no_evidence(tiny_snapshot: Snapshot) -> None:
    assert network.evaluate(facts(), tiny_snapshot, frozenset(RESTRICTED)) == []


def test_disagreement_names_the_restricted_answer(tiny_snapshot: Snapshot) -> None:
    ev = next(
        e for e in network.evaluate(facts(ip="6.6.6.6"), tiny_snapshot, {"CN"}) if e.code == "IP_COUNTRY_DISAGREEMENT"
    )
    assert ev.value["restricted"] == ["CN"]
    assert ev.value["answers"]["dbip-country"] == "CN"


def test_reserved_detail_points_at_the_proxy_configuration(tiny_snapshot: Snapshot) -> None:
    (ev,) = network.evaluate(facts(ip="10.0.0.1"), tiny_snapshot, set())
    assert "trusted-proxy" in ev.detail


def test_codes_doc_is_generated_from_the_table() -> None:
    from geowarden.signals.codes import markdown
    from helpers import REPO

    assert (REPO / "docs" / "evidence-codes.md").read_text(encoding="utf-8") == markdown()


def test_default_policy_reference_is_generated() -> None:
    from geowarden.policy.engine import PolicyEngine, reference
    from helpers import REPO

    assert (REPO / "docs" / "default-policy.md").read_text(encoding="utf-8") == reference(PolicyEngine.load())
