"""The origin signals wired into the Warden and the default policy (tiny snapshot)."""

from __future__ import annotations

import pytest

from geowarden.intel.snapshot import Snapshot
from geowarden.model import Action, Evidence, Facts
from geowarden.policy.engine import CORE_VARIABLES, ContextBuilder, PolicyEngine
from geowarden.signals.base import BaseSignal, SignalContext
from geowarden.signals.registry import SIGNALS
from geowarden.warden import Warden
from helpers import facts


@pytest.fixture(scope="module")
def warden(tiny_snapshot: Snapshot) -> Warden:
    return Warden(tiny_snapshot, PolicyEngine.load())


def test_default_signals_run_ip_first() -> None:
    names = ["ip", "phone", "card", "email", "client", "rtt", "key", "group", "screening", "peer"]
    assert [s.name for s in SIGNALS] == names


def test_signals_see_what_the_ones_before_them_found(tiny_snapshot: Snapshot) -> None:
    seen: list[str | None] = []

    class Spy(BaseSignal):
        name = "spy"

        def evaluate(self, _facts: Facts, ctx: SignalContext) -> list[Evidence]:
            seen.append(ctx.ip_country)
            return []

    w = Warden(tiny_snapshot, PolicyEngine.load(), signals=(*SIGNALS, Spy()))
    w.decide(facts(ip="8.8.8.8"))
    w.decide(facts(ip="1.2.4.8"))
    w.decide(facts())
    assert seen == ["US", "CN", None]
    assert SignalContext(tiny_snapshot, frozenset()).ip_country is None


# facts, acceptable actions
WEAK_ALONE = [
    ({"timezone": "Asia/Shanghai"}, {Action.ALLOW, Action.LIMITED, Action.CHALLENGE}),
    ({"timezone": "Europe/Moscow"}, {Action.ALLOW, Action.LIMITED, Action.CHALLENGE}),
    ({"accept_language": "zh-CN,zh;q=0.9"}, {Action.ALLOW, Action.LIMITED, Action.CHALLENGE}),
    ({"accept_language": "fa-IR"}, {Action.ALLOW, Action.LIMITED, Action.CHALLENGE}),
    ({"email": "someone@qq.com"}, {Action.ALLOW, Action.LIMITED, Action.CHALLENGE}),
    ({"email": "someone@yandex.ru"}, {Action.ALLOW, Action.LIMITED, Action.CHALLENGE}),
    ({"phone": "+8613800138000"}, {Action.CHALLENGE}),
    ({"phone": "+7 727 250 00 00"}, {Action.ALLOW}),  # Kazakhstan, not Russia
    ({"card_bin": "220012"}, {Action.CHALLENGE}),
    ({"card_bin": "622202"}, {Action.ALLOW}),  # UnionPay alone says nothing about where
    ({"phone": "+44 56 1234 5678"}, {Action.ALLOW, Action.LIMITED}),
]


@pytest.mark.parametrize(("extra", "actions"), WEAK_ALONE)
def test_one_origin_signal_alone_never_blocks(warden: Warden, extra: dict[str, str], actions: set[Action]) -> None:
    d = warden.decide(facts(ip="8.8.8.8", **extra))
    assert d.action in actions, (d.action, d.rules)


def test_phone_and_clock_together_are_not_allowed(warden: Warden) -> None:
    d = warden.decide(facts(ip="8.8.8.8", phone="+8613800138000", timezone="Asia/Shanghai"))
    assert d.action == Action.REVIEW
    assert {e.code for e in d.reasons} == {"PHONE_COUNTRY_RESTRICTED", "TZ_RESTRICTED"}
    d = warden.decide(facts(ip="5.3.0.1", phone="+8613800138000", timezone="Asia/Shanghai"))  # a cloud address
    assert d.action == Action.BLOCK
    assert "restricted-origin-anonymised" in d.rules


def test_everything_pointing_to_russia(warden: Warden) -> None:
    d = warden.decide(
        facts(ip="5.2.0.1", phone="+7 495 123 45 67", card_bin="220012", email="a@mail.ru",
              timezone="Europe/Moscow", accept_language="ru-RU")
    )  # fmt: skip
    assert d.action == Action.BLOCK
    assert d.score >= 0.95


def test_context_keys_are_always_present() -> None:
    builder = ContextBuilder(SIGNALS, ["CN"])
    assert {"phone", "card", "email", "client", "hints"} <= builder.variables and "hints" in CORE_VARIABLES
    empty = builder([], Facts(), matched=False, egress=False)
    assert empty == builder.probe() and set(empty) == builder.variables
    assert empty["phone"] == {
        "present": False, "valid": False, "country": "", "type": "", "restricted": False, "voip": False,
        "mismatch": False,
    }  # fmt: skip
    assert empty["hints"] == []
    assert not any(empty["card"].values()) and not any(empty["email"].values())
    assert empty["client"]["tz_countries"] == [] and empty["client"]["timezone_valid"] is False


def test_context_from_real_evidence(warden: Warden) -> None:
    f = facts(ip="8.8.8.8", phone="+8613800138000", card_bin="220012", email="a@qq.com",
              timezone="Asia/Shanghai", accept_language="zh-CN")  # fmt: skip
    ctx = warden.policy.context(warden.evidence(f), f)  # type: ignore[attr-defined]
    assert ctx["phone"] | {} == {
        "present": True, "valid": True, "country": "CN", "type": "mobile", "restricted": True, "voip": False,
        "mismatch": True,
    }  # fmt: skip
    assert ctx["card"]["scheme"] == "mir" and ctx["card"]["country"] == "RU" and ctx["card"]["scheme_restricted"]
    assert ctx["email"]["country"] == "CN" and ctx["email"]["provider_restricted"]
    assert ctx["client"]["tz_countries"] == ["CN"] and ctx["client"]["lang_region"] == "CN"
    assert ctx["client"]["language"] == "zh" and ctx["client"]["timezone_valid"]
    assert ctx["hints"] == ["phone", "card", "email", "client"]
