"""Policy test cases, written next to the policy: ``<policy>.tests.yaml``.

::

    cases:
      - name: restricted country blocks
        evidence: [{code: IP_COUNTRY, value: CN}, {code: IP_COUNTRY_RESTRICTED, value: CN}]
        facts: {ip: 1.2.4.8, account_id: a1}     # optional with evidence; required without
        egress: {a1: [203.0.113.0/24]}           # optional: registered egress ranges for the case
        token_for: account:a1                    # optional: present a valid allowlist token
        token_clears: [restricted]               # optional: what that token may clear (tor, restricted, sanctions)
        expect: {action: block, reasons: [IP_COUNTRY_RESTRICTED], rules: [restricted-country]}
                                                 # action may be a list of acceptable actions

With ``evidence`` the case tests the policy alone; without it the facts go through the signals
(against the current snapshot), which tests the policy and the data together.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from geowarden.errors import ConfigError, InputError
from geowarden.model import Action, Evidence, Facts, RTTSample
from geowarden.policy.allowlist import EgressRanges, TokenSigner
from geowarden.policy.engine import PolicyEngine
from geowarden.policy.yamlsrc import Where, load
from geowarden.signals.codes import CODES

FACT_FIELDS = set(Facts.__dataclass_fields__) - {"extra", "rtt", "org_owners"}
CASE_KEYS = {"name", "evidence", "facts", "egress", "token_for", "token_clears", "expect"}


@dataclass(frozen=True, slots=True)
class CaseResult:
    name: str
    line: int | None
    passed: bool
    expected: dict[str, Any]
    got: dict[str, Any]
    problems: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "line": self.line,
            "passed": self.passed,
            "expected": self.expected,
            "got": self.got,
            "problems": list(self.problems),
        }


def cases_path(policy: Path) -> Path:
    name = policy.name.removesuffix(".yaml").removesuffix(".yml")
    return policy.with_name(f"{name}.tests.yaml")


def run_cases(
    engine: PolicyEngine,
    path: Path,
    *,
    evidence_for: Callable[[Facts, PolicyEngine], list[Evidence]] | None = None,
) -> list[CaseResult]:
    """Run every case in ``path`` against ``engine``. ``evidence_for`` runs the signals for cases
    without evidence (a Warden's signals against a snapshot)."""
    raw, where = load(path)
    if not isinstance(raw, dict) or not isinstance(raw.get("cases"), list):
        raise where.error((), "a test file is a mapping with a list of cases")
    secret = secrets.token_bytes(32)
    return [_run(engine, case, i, where, secret, evidence_for) for i, case in enumerate(raw["cases"])]


def _run(
    engine: PolicyEngine,
    case: Any,
    i: int,
    where: Where,
    secret: bytes,
    evidence_for: Callable[[Facts, PolicyEngine], list[Evidence]] | None,
) -> CaseResult:
    path = ("cases", i)
    if not isinstance(case, dict) or "expect" not in case:
        raise where.error(path, "a case is a mapping with name, facts and/or evidence, and expect")
    unknown = set(case) - CASE_KEYS
    if unknown:
        raise where.error((*path, sorted(unknown)[0]), f"unknown field (known: {', '.join(sorted(CASE_KEYS))})")
    name = str(case.get("name", f"case {i + 1}"))
    facts = _facts(case.get("facts") or {}, (*path, "facts"), where)
    signer = TokenSigner(secret)
    if "token_for" in case:
        clears = case.get("token_clears") or []
        if not isinstance(clears, list):
            raise where.error((*path, "token_clears"), "token_clears is a list (tor, restricted, sanctions)")
        try:
            token = signer.issue(
                str(case["token_for"]), seconds=3600, reason="policy test", clears=[str(c) for c in clears]
            )
        except InputError as exc:
            raise where.error((*path, "token_clears"), exc.message) from None
        facts = Facts(**{**_fields(facts), "allow_token": token})
    egress = EgressRanges(case.get("egress") or {})
    local = PolicyEngine(engine.spec, engine.rules, signer=signer, egress=egress)
    if "evidence" in case:
        evidence = _evidence(case["evidence"], (*path, "evidence"), where)
    elif evidence_for is None:
        raise where.error(path, "this case has no evidence and no snapshot was given to run the signals")
    else:
        evidence = evidence_for(facts, local)
    verdict = local.judge(evidence, facts)
    expect = case["expect"]
    if not isinstance(expect, dict) or "action" not in expect:
        raise where.error((*path, "expect"), "expect needs at least an action")
    got: dict[str, Any] = {
        "action": verdict.action.value,
        "reasons": [e.code for e in verdict.reasons],
        "rules": [r for r in verdict.rules if ":" not in r and not r.startswith("score")],
        "score": verdict.score,
    }
    problems: list[str] = []
    wanted = expect["action"] if isinstance(expect["action"], list) else [expect["action"]]
    try:
        want_actions = [Action(str(a)) for a in wanted]
    except ValueError:
        raise where.error((*path, "expect", "action"), f"unknown action in {expect['action']!r}") from None
    if verdict.action not in want_actions:
        problems.append(f"action {verdict.action.value}, expected {' or '.join(a.value for a in want_actions)}")
    if "reasons" in expect and sorted(set(got["reasons"])) != sorted(set(expect["reasons"])):
        problems.append(f"reasons {got['reasons']}, expected {expect['reasons']}")
    if "rules" in expect and sorted(got["rules"]) != sorted(expect["rules"]):
        problems.append(f"rules {got['rules']}, expected {expect['rules']}")
    return CaseResult(name, where.line(path), not problems, dict(expect), got, tuple(problems))


def _fields(facts: Facts) -> dict[str, Any]:
    return {k: getattr(facts, k) for k in Facts.__dataclass_fields__}


def _facts(raw: Any, path: tuple[str | int, ...], where: Where) -> Facts:
    if not isinstance(raw, dict):
        raise where.error(path, "facts is a mapping")
    unknown = set(raw) - FACT_FIELDS - {"rtt"}
    if unknown:
        raise where.error((*path, sorted(unknown)[0]), f"unknown fact (known: {', '.join(sorted(FACT_FIELDS))})")
    kw: dict[str, Any] = {
        k: (str(v) if v is not None and k != "timestamp" else v) for k, v in raw.items() if k != "rtt"
    }
    if "rtt" in raw:
        kw["rtt"] = tuple(RTTSample(lat=float(a), lon=float(b), ms=float(c)) for a, b, c in raw["rtt"])
    return Facts(**kw)


def _evidence(raw: Any, path: tuple[str | int, ...], where: Where) -> list[Evidence]:
    if not isinstance(raw, list):
        raise where.error(path, "evidence is a list of {code, value, confidence}")
    out = []
    for j, given in enumerate(raw):
        item = {"code": given} if isinstance(given, str) else given
        if not isinstance(item, dict) or item.get("code") not in CODES:
            raise where.error(
                (*path, j), f"unknown evidence code {item.get('code') if isinstance(item, dict) else item!r}"
            )
        out.append(
            Evidence(
                signal=CODES[item["code"]][0],
                code=item["code"],
                value=item.get("value"),
                confidence=float(item.get("confidence", 1.0)),
            )
        )
    return out


def summary(results: list[CaseResult]) -> str:
    failed = sum(not r.passed for r in results)
    return f"{len(results) - failed} passed, {failed} failed"


__all__ = ["CaseResult", "ConfigError", "cases_path", "run_cases", "summary"]
