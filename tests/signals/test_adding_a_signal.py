"""How to add a signal: one class (here, in this file) and one registry line; nothing else changes.

The new signal's codes become known to the policy (a rule may cite them), its CEL variable becomes
visible to rules, the Warden runs it after the built-in signals, and the evidence table includes it.
"""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from geowarden.errors import ConfigError
from geowarden.intel.snapshot import Snapshot
from geowarden.model import Action, Evidence, Facts
from geowarden.policy.engine import DEFAULT_POLICY, PolicyEngine
from geowarden.signals import codes
from geowarden.signals.base import BaseSignal, Found, SignalContext
from geowarden.signals.registry import SIGNALS, configure
from geowarden.warden import Warden


class ToolSignal(BaseSignal):
    """Requests whose User-Agent names a command-line HTTP tool (a made-up signal for this test)."""

    name = "tool"
    codes = MappingProxyType({"UA_HTTP_TOOL": "The User-Agent names a command-line HTTP tool; value: the tool."})
    variable = "tool"

    def __init__(self, tools: frozenset[str] = frozenset({"curl", "wget"})) -> None:
        self.tools = tools

    def evaluate(self, facts: Facts, ctx: SignalContext) -> list[Evidence]:
        agent = (facts.user_agent or "").split("/", 1)[0].strip().lower()
        if agent not in self.tools:
            return []
        return [Evidence(signal=self.name, code="UA_HTTP_TOOL", value=agent, detail=f"User-Agent is {agent}")]

    def export(self, found: Found, facts: Facts) -> dict[str, Any]:
        return {"name": found.text("UA_HTTP_TOOL")}


REGISTRY = (*SIGNALS, ToolSignal())  # the one registry line

RULE = """
  - name: http-tool-from-restricted-neighbour
    when: tool.name == "curl" && ip.country == "US"
    action: review
    reasons: [UA_HTTP_TOOL]
"""


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    text = DEFAULT_POLICY.read_text()
    assert "\nrules:\n" in text
    path = tmp_path / "with-tool.yaml"
    path.write_text(text.replace("\nrules:\n", "\nrules:" + RULE, 1))
    return path


def test_a_new_signal_reaches_the_decision(tiny_snapshot: Snapshot, policy_file: Path) -> None:
    engine = PolicyEngine.load(policy_file, signals=REGISTRY)
    warden = Warden(tiny_snapshot, engine, signals=REGISTRY)
    d = warden.decide(Facts(ip="8.8.8.8", user_agent="curl/8.5.0"))
    assert d.action == Action.REVIEW
    assert "http-tool-from-restricted-neighbour" in d.rules
    assert [e.code for e in d.reasons] == ["UA_HTTP_TOOL"]
    assert warden.decide(Facts(ip="8.8.8.8", user_agent="Mozilla/5.0")).action == Action.ALLOW
    assert engine.explain(warden.evidence(Facts(user_agent="wget/1.2")))["context"]["tool"] == {"name": "wget"}


def test_its_codes_join_the_table() -> None:
    table = codes.table(REGISTRY)
    assert table["UA_HTTP_TOOL"][0] == "tool"
    assert "UA_HTTP_TOOL" not in codes.CODES  # the shipped table is the shipped registry's


def test_a_policy_citing_it_does_not_load_without_it(policy_file: Path) -> None:
    with pytest.raises(ConfigError, match="UA_HTTP_TOOL"):
        PolicyEngine.load(policy_file)


def test_it_can_be_switched_off_by_name() -> None:
    assert "tool" not in [s.name for s in configure(off={"tool"}, signals=REGISTRY)]
    with pytest.raises(ConfigError, match="unknown signal"):
        configure(off={"tol"}, signals=REGISTRY)


def test_a_switched_off_signal_leaves_its_variable_empty(tiny_snapshot: Snapshot) -> None:
    warden = Warden(tiny_snapshot, PolicyEngine.load(), signals=configure(off={"phone"}))
    f = Facts(ip="8.8.8.8", phone="+8613800138000")
    assert not [e for e in warden.evidence(f) if e.signal == "phone"]
    assert warden.decide(f).action == Action.ALLOW  # the phone rules read an empty `phone`, nothing fires
    on = Warden(tiny_snapshot, PolicyEngine.load())
    assert on.decide(f).action == Action.CHALLENGE
