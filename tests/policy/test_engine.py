from __future__ import annotations

from pathlib import Path

import pytest

from geowarden.errors import ConfigError, InputError
from geowarden.intel.snapshot import Snapshot
from geowarden.model import Action, Evidence, Facts
from geowarden.policy.allowlist import EgressRanges, TokenSigner
from geowarden.policy.engine import DEFAULT_POLICY, PolicyEngine, inline_constant
from geowarden.policy.testing import cases_path, run_cases
from geowarden.signals.base import BaseSignal
from geowarden.signals.registry import SIGNALS
from geowarden.warden import Warden
from helpers import facts

CASES = [
    ("1.2.4.8", Action.BLOCK, ["IP_COUNTRY_RESTRICTED"]),
    ("2400:3200::1", Action.BLOCK, ["IP_COUNTRY_RESTRICTED"]),
    ("5.1.1.1", Action.BLOCK, ["IP_TOR"]),
    ("5.2.0.1", Action.CHALLENGE, ["IP_VPN"]),
    ("5.3.0.1", Action.CHALLENGE, ["IP_HOSTING"]),
    ("5.4.0.1", Action.CHALLENGE, ["IP_PROXY"]),
    ("5.7.0.1", Action.ALLOW, []),  # a location-preserving relay in an allowed country
    ("6.6.6.6", Action.CHALLENGE, ["IP_COUNTRY_DISAGREEMENT"]),  # one source says CN
    ("10.0.0.1", Action.REVIEW, ["IP_PRIVATE_OR_RESERVED"]),
    ("9.9.9.9", Action.CHALLENGE, ["IP_UNKNOWN"]),
    ("8.8.8.8", Action.ALLOW, []),
]


@pytest.fixture(scope="module")
def engine() -> PolicyEngine:
    return PolicyEngine.load(signer=TokenSigner(b"k" * 32))


@pytest.mark.parametrize(("ip", "action", "reasons"), CASES)
def test_default_policy_on_the_tiny_world(
    tiny_snapshot: Snapshot, engine: PolicyEngine, ip: str, action: Action, reasons: list[str]
) -> None:
    d = Warden(tiny_snapshot, engine).decide(facts(ip=ip))
    assert d.action == action
    assert [e.code for e in d.reasons] == reasons
    assert 0.0 <= d.score <= 1.0
    assert d.policy_version.startswith("geowarden-default-")
    if action == Action.BLOCK:
        assert d.score >= 0.95
        assert "appeal" in d.user_message
        assert "VPN" not in d.user_message and "Tor" not in d.user_message  # no detection details


def test_the_shipped_cases_pass(tiny_snapshot: Snapshot, engine: PolicyEngine) -> None:
    w = Warden(tiny_snapshot, engine)
    results = run_cases(engine, cases_path(DEFAULT_POLICY), evidence_for=lambda f, e: w.evidence(f))
    failed = [(r.name, r.problems) for r in results if not r.passed]
    assert not failed
    assert len(results) >= 15


def test_a_wrong_expectation_fails(tmp_path: Path, engine: PolicyEngine) -> None:
    cases = tmp_path / "c.yaml"
    cases.write_text("cases:\n  - name: wrong\n    evidence: [{code: IP_TOR}]\n    expect: {action: allow}\n")
    (result,) = run_cases(engine, cases)
    assert not result.passed
    assert result.problems == ("action block, expected allow",)
    assert result.line == 2


def test_a_valid_token_clears_only_its_account(tiny_snapshot: Snapshot) -> None:
    signer = TokenSigner(b"s" * 32)
    w = Warden(tiny_snapshot, PolicyEngine.load(signer=signer))
    token = signer.issue("account:a1", seconds=60, reason="review 7", clears=["restricted"])
    assert w.decide(Facts(ip="1.2.4.8", account_id="a1", allow_token=token)).action == Action.ALLOW
    assert w.decide(Facts(ip="1.2.4.8", account_id="a2", allow_token=token)).action == Action.BLOCK
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert w.decide(Facts(ip="1.2.4.8", account_id="a1", allow_token=forged)).action == Action.BLOCK
    other_secret = TokenSigner(b"t" * 32).issue("account:a1", seconds=60, reason="", clears=["restricted"])
    assert w.decide(Facts(ip="1.2.4.8", account_id="a1", allow_token=other_secret)).action == Action.BLOCK
    expired = signer.issue("account:a1", seconds=60, reason="old", now=0, clears=["restricted"])
    assert w.decide(Facts(ip="1.2.4.8", account_id="a1", allow_token=expired)).action == Action.BLOCK


def test_registered_egress_is_not_mistaken_for_a_vpn_user(tiny_snapshot: Snapshot) -> None:
    w = Warden(tiny_snapshot, PolicyEngine.load(egress=EgressRanges({"corp": ["5.3.0.0/16"]})))
    assert w.decide(Facts(ip="5.3.0.1", account_id="corp")).action == Action.ALLOW
    assert w.decide(Facts(ip="5.3.0.1", account_id="other")).action == Action.CHALLENGE
    with pytest.raises(ConfigError, match="not a network"):
        EgressRanges({"corp": ["nonsense"]})


def test_a_failing_signal_follows_its_fail_mode(tiny_snapshot: Snapshot, engine: PolicyEngine) -> None:
    class Broken(BaseSignal):
        def __init__(self, name: str) -> None:
            self.name = name

        def evaluate(self, _facts: Facts, _ctx: object) -> list[Evidence]:
            raise ConnectionError("redis down")

    w = Warden(tiny_snapshot, engine, signals=(*SIGNALS, Broken("phone"), Broken("velocity")))
    d = w.decide(facts(ip="8.8.8.8"))
    assert {e.value for e in d.evidence if e.code == "SIGNAL_UNAVAILABLE"} == {"phone", "velocity"}
    assert d.action == Action.ALLOW  # the default fail mode is open
    assert w.unavailable == {"phone": 1, "velocity": 1}
    w_ip = Warden(tiny_snapshot, engine, signals=(Broken("ip"),))
    d = w_ip.decide(facts(ip="8.8.8.8"))
    assert d.action == Action.REVIEW  # the ip signal fails to review
    assert "fail-review:ip" in d.rules


def test_shadow_policy_records_differences(tiny_snapshot: Snapshot, engine: PolicyEngine, tmp_path: Path) -> None:
    original = DEFAULT_POLICY.read_text()
    strict = original.replace(
        "action: challenge\n    weight: 0.5\n    reasons: [IP_HOSTING]",
        "action: block\n    weight: 0.5\n    reasons: [IP_HOSTING]",
    )
    assert strict != original
    cand = tmp_path / "strict.yaml"
    cand.write_text(strict)
    w = Warden(tiny_snapshot, engine, shadow=PolicyEngine.load(cand))
    actions = [w.decide(facts(ip=ip)).action for ip in ("5.3.0.1", "8.8.8.8", "1.2.4.8")]
    assert actions == [Action.CHALLENGE, Action.ALLOW, Action.BLOCK]  # the active policy decides
    assert w.shadow is not None
    stats = w.shadow.to_dict()
    assert (stats["decisions"], stats["changed"]) == (3, 1)
    assert stats["transitions"] == [{"from": "challenge", "to": "block", "n": 1}]


def _policy(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "p.yaml"
    p.write_text(text)
    return p


BASE = (
    "policy: t\nrestricted: {CN: export controls}\nrules:\n"
    "  - name: r\n    when: ip.country in restricted\n    action: block\n"
)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (BASE.replace("ip.country in restricted", "ip.country in"), r"p\.yaml:5: rule 'r': bad CEL at column"),
        (BASE.replace("ip.country in restricted", "ip.nope == 1"), r"p\.yaml:5: rule 'r': .*unknown field 'nope'"),
        (BASE.replace("ip.country in restricted", "geo.country == 1"), r"p\.yaml:5: rule 'r': .*Undefined variable"),
        (BASE.replace("ip.country in restricted", "ip.country"), r"p\.yaml:5: rule 'r': .*must be a condition"),
        (BASE.replace("{CN: export controls}", "{XQ: nowhere}"), r"p\.yaml:2: restricted\.XQ: unknown country code"),
        (BASE.replace("{CN: export controls}", "{UA-99: nowhere}"), r"p\.yaml:2: restricted\.UA-99: unknown jurisd"),
        (BASE + "    colour: red\n", r"p\.yaml:7: rules\.0\.colour: unknown field 'colour'"),
        (BASE + "surprise: 1\n", r"p\.yaml:7: surprise: unknown field 'surprise'"),
        (BASE.replace("action: block", "action: obliterate"), r"p\.yaml:6: rules\.0\.action: unknown action"),
        (BASE + "    reasons: [IP_NOPE]\n", r"p\.yaml:7: rules\.0\.reasons\.0: unknown evidence code"),
        (BASE + "thresholds: {block: 0.2, challenge: 0.9}\n", r"thresholds must rise with severity"),
        (BASE + "fail_modes: {ip: maybe}\n", r"p\.yaml:7: fail_modes\.ip: fail mode must be"),
        (BASE + "  - name: r\n    when: 'true'\n    action: allow\n", r"duplicate rule name 'r'"),
        ("policy: [unclosed\n", r"p\.yaml:2: not valid YAML"),
        (BASE.replace("policy: t\n", "policy: t\npolicy: u\n"), r"p\.yaml:2: duplicate key 'policy'"),
    ],
)
def test_bad_policies_fail_at_load_with_file_line_and_reason(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as exc:
        PolicyEngine.load(_policy(tmp_path, text))
    assert "\n" not in exc.value.message


def test_a_rule_that_fails_on_an_empty_request_fails_at_load(tmp_path: Path) -> None:
    text = BASE + "  - name: divide\n    when: 1 / size(evidence) > 0\n    action: block\n"
    with pytest.raises(ConfigError, match=r"p\.yaml:8: rule 'divide': .*division by zero"):
        PolicyEngine.load(_policy(tmp_path, text))


def test_version_is_a_content_hash(tmp_path: Path) -> None:
    a = PolicyEngine.load(_policy(tmp_path, BASE))
    assert a.version == PolicyEngine.load(_policy(tmp_path, BASE)).version
    assert a.version != PolicyEngine.load(_policy(tmp_path, BASE.replace("block", "review"))).version


def test_inlining_leaves_strings_and_fields_alone() -> None:
    src = 'ip.country in restricted && x.restricted == "restricted" && restricted_2'
    want = 'ip.country in ["CN"] && x.restricted == "restricted" && restricted_2'
    assert inline_constant(src, "restricted", ["CN"]) == want


def test_memoised_results_do_not_leak_across_allow_states(tiny_snapshot: Snapshot) -> None:
    signer = TokenSigner(b"m" * 32)
    w = Warden(tiny_snapshot, PolicyEngine.load(signer=signer))
    assert w.decide(Facts(ip="1.2.4.8")).action == Action.BLOCK
    token = signer.issue("key:k1", seconds=60, reason="", clears=["restricted"])
    assert w.decide(Facts(ip="1.2.4.8", api_key_id="k1", allow_token=token)).action == Action.ALLOW
    assert w.decide(Facts(ip="1.2.4.8")).action == Action.BLOCK


def test_a_rule_failing_at_run_time_is_a_rule_error_with_its_fail_mode(tmp_path: Path) -> None:
    # Passes the load-time probe (no evidence), divides by zero once there is one piece of evidence.
    text = BASE + "  - name: divide\n    when: 1 / (size(evidence) - 1) > 0\n    action: block\n"
    eng = PolicyEngine.load(_policy(tmp_path, text))
    ev = [Evidence(signal="ip", code="IP_COUNTRY", value="DE")]
    v = eng.judge(ev, Facts(ip="8.8.8.8"))
    assert v.action == Action.REVIEW  # fail mode "policy" defaults to review
    assert "fail-review:rule-error" in v.rules
    explained = eng.explain(ev, Facts(ip="8.8.8.8"))
    assert next(r for r in explained["rules"] if r["name"] == "divide")["error"]


def test_a_bad_reload_keeps_the_previous_policy_active(tiny_snapshot: Snapshot, tmp_path: Path) -> None:
    from geowarden.settings import Settings

    settings = Settings(home=tmp_path / "home")
    w = Warden(tiny_snapshot, PolicyEngine.load())
    before = w.policy.version
    with pytest.raises(ConfigError, match=r"p\.yaml:5: rule 'r': bad CEL"):
        w.reload_policy(_policy(tmp_path, BASE.replace("ip.country in restricted", "ip.country in")), settings)
    assert w.policy.version == before
    assert w.decide(facts(ip="1.2.4.8")).action == Action.BLOCK
    good = _policy(tmp_path, BASE.replace("{CN: export controls}", "{DE: test}"))
    assert w.reload_policy(good, settings) == w.policy.version != before
    assert w.decide(facts(ip="1.2.4.8")).action == Action.ALLOW
    assert w.decide(facts(ip="5.3.0.1")).action == Action.BLOCK


def test_a_rule_that_fires_under_the_thresholds_still_names_its_reasons(tiny_snapshot: Snapshot) -> None:
    """A weighted rule below every threshold leaves the request allowed, but its evidence is the
    decision's reasons (a fired rule with no reason cannot be explained to a reviewer)."""
    w = Warden(tiny_snapshot, PolicyEngine.load())
    d = w.decide(Facts(ip="8.8.8.8", timezone="Asia/Shanghai"))
    assert d.action == Action.ALLOW and d.rules, (d.action, d.rules)
    assert "TZ_RESTRICTED" in [e.code for e in d.reasons]
    nothing = w.decide(Facts(ip="8.8.8.8"))
    assert nothing.rules == () and nothing.reasons == ()


class _Revoked:
    def __init__(self) -> None:
        self.ids: set[str] = set()

    def is_revoked(self, token_id: str) -> bool:
        return token_id in self.ids


def test_an_allowlisted_decision_names_its_token_and_a_revoked_token_clears_nothing(tiny_snapshot: Snapshot) -> None:
    """Issue 19 items 2 and 3: the decision says a token cleared it (ALLOWLISTED, with the token's
    id); a revoked token is seen as none (ALLOWLIST_REVOKED); Tor is not cleared by default."""
    signer = TokenSigner(b"r" * 32)
    w = Warden(tiny_snapshot, PolicyEngine.load(signer=signer))
    revoked = _Revoked()
    w.revocations = revoked
    token = signer.issue("account:a1", seconds=60, reason="review", clears=["restricted"], token_id="tok1")
    d = w.decide(Facts(ip="1.2.4.8", account_id="a1", allow_token=token))
    assert d.action == Action.ALLOW
    assert [(e.code, e.value) for e in d.reasons] == [("ALLOWLISTED", "tok1")]
    revoked.ids.add("tok1")
    d = w.decide(Facts(ip="1.2.4.8", account_id="a1", allow_token=token))
    assert d.action == Action.BLOCK
    assert "ALLOWLIST_REVOKED" in [e.code for e in d.evidence]
    assert "ALLOWLISTED" not in [e.code for e in d.evidence]


def test_a_default_token_clears_a_vpn_but_not_a_restricted_country(tiny_snapshot: Snapshot) -> None:
    signer = TokenSigner(b"q" * 32)
    w = Warden(tiny_snapshot, PolicyEngine.load(signer=signer))
    token = signer.issue("account:a1", seconds=60, reason="review")
    d = w.decide(Facts(ip="1.2.4.8", account_id="a1", allow_token=token))
    assert d.action == Action.BLOCK
    assert "ALLOWLISTED" in [e.code for e in d.evidence]
    assert TokenSigner(b"q" * 32).verify(token) is not None
    with pytest.raises(InputError):
        signer.issue("account:a1", seconds=60, reason="", clears=["everything"])
