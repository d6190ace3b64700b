from __future__ import annotations

from pathlib import Path

import pytest

from geowarden.errors import ConfigError
from geowarden.intel.snapshot import Snapshot
from geowarden.model import Action
from geowarden.policy.default import DefaultPolicy
from geowarden.warden import Warden
from helpers import facts

CASES = [
    ("1.2.4.8", Action.BLOCK, "IP_COUNTRY_RESTRICTED"),
    ("2400:3200::1", Action.BLOCK, "IP_COUNTRY_RESTRICTED"),
    ("5.1.1.1", Action.BLOCK, "IP_TOR"),
    ("5.2.0.1", Action.CHALLENGE, "IP_VPN"),
    ("5.3.0.1", Action.CHALLENGE, "IP_HOSTING"),
    ("5.4.0.1", Action.CHALLENGE, "IP_PROXY"),
    ("5.7.0.1", Action.ALLOW, None),  # a location-preserving relay in an allowed country
    ("6.6.6.6", Action.CHALLENGE, "IP_COUNTRY_DISAGREEMENT"),  # one source says CN
    ("10.0.0.1", Action.REVIEW, "IP_PRIVATE_OR_RESERVED"),
    ("8.8.8.8", Action.ALLOW, None),
]


@pytest.mark.parametrize(("ip", "action", "reason"), CASES)
def test_default_policy(tiny_snapshot: Snapshot, ip: str, action: Action, reason: str | None) -> None:
    d = Warden(tiny_snapshot).decide(facts(ip=ip))
    assert d.action == action
    assert [e.code for e in d.reasons] == ([reason] if reason else [])
    assert 0.0 <= d.score <= 1.0
    if action == Action.BLOCK:
        assert d.score >= 0.8
        assert "appeal" in d.user_message
        assert "VPN" not in d.user_message and "Tor" not in d.user_message  # no detection details
    assert d.policy_version.startswith("default-")
    assert d.decision_id and d.elapsed_us > 0


def test_block_wins_over_challenge(tiny_snapshot: Snapshot) -> None:
    # Tor (block) and hosting (challenge) together: the strictest action wins, and only its evidence is the reason.
    policy = DefaultPolicy()
    from geowarden.model import Evidence

    v = policy.judge([Evidence(signal="ip", code="IP_HOSTING"), Evidence(signal="ip", code="IP_TOR")])
    assert v.action == Action.BLOCK
    assert [e.code for e in v.reasons] == ["IP_TOR"]
    assert set(v.rules) == {"IP_HOSTING->challenge", "IP_TOR->block"}


def test_policy_file_overrides(tiny_snapshot: Snapshot, tmp_path: Path) -> None:
    f = tmp_path / "p.yaml"
    f.write_text("restricted: {DE: test}\nactions: {IP_HOSTING: allow}\n")
    pol = DefaultPolicy.from_file(f)
    w = Warden(tiny_snapshot, pol)
    assert w.decide(facts(ip="1.2.4.8")).action == Action.ALLOW  # CN no longer restricted
    # FR by geofeed, but one source says DE: the disagreement involves a restricted answer
    assert w.decide(facts(ip="5.5.5.5")).action == Action.CHALLENGE
    assert w.decide(facts(ip="5.3.0.1")).action == Action.BLOCK  # DE restricted now
    assert pol.version != DefaultPolicy().version


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("restricted: [CN\n", "line 2"),
        ("- 1\n- 2\n", "must be a mapping"),
        ("colour: red\n", "unknown policy keys: colour"),
        ("actions: {IP_NOPE: block}\n", "unknown code 'IP_NOPE'"),
        ("actions: {IP_TOR: obliterate}\n", "must be one of"),
    ],
)
def test_bad_policy_files_fail_with_file_line_and_reason(tmp_path: Path, text: str, message: str) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=message) as exc:
        DefaultPolicy.from_file(f)
    assert str(f) in exc.value.message
    assert "\n" not in exc.value.message


def test_missing_policy_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        DefaultPolicy.from_file(tmp_path / "nope.yaml")
