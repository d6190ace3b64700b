"""A policy file, parsed and validated: what it may contain and what each part means.

::

    policy: geowarden-default           # a name
    description: ...
    restricted:                         # jurisdictions: ISO 3166-1 alpha-2 or ISO 3166-2 codes
      CN: {reason: "...", basis: export-control}
      UA-43: {reason: "Crimea", basis: sanctions}
    thresholds: {block: 0.9, review: 0.7, challenge: 0.5, limited: 0.3}   # combined score -> action
    fail_modes: {ip: closed, default: review}                            # per signal: open|closed|review
    messages: {block: "..."}            # user-safe text per action (optional)
    behaviour: {countries_max: 3, concurrent_km: 1500}   # per-key behaviour thresholds (optional)
    rules:
      - name: restricted-country
        when: ip.country in restricted && !allow.matched    # CEL, compiled once at load
        action: block                   # optional explicit action
        weight: 1.0                     # optional contribution to the score, 0..1
        reasons: [IP_COUNTRY_RESTRICTED]  # evidence codes this rule rests on (documented codes only)
        message: "..."                  # optional user-safe text, overrides the action's

A rule fires when its ``when`` is true. The decision's score is the noisy-OR of the fired rules'
weights, each scaled by the confidence of the evidence it cites; the action is the strictest of
the fired rules' actions and the threshold the score reaches. Nothing half-loads: any problem is
a ``ConfigError`` naming the file, line and reason.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pycountry

from geowarden.errors import ConfigError
from geowarden.model import Action
from geowarden.policy.base import USER_MESSAGES
from geowarden.policy.yamlsrc import Key, Where, load
from geowarden.signals.thresholds import DEFAULT_BEHAVIOUR, BehaviourConfig

BEHAVIOUR_FIELDS = frozenset(f.name for f in dataclasses.fields(BehaviourConfig))

FAIL_MODES = ("open", "closed", "review")
BASES = ("sanctions", "export-control", "company-policy")
_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
TOP_KEYS = {
    "policy", "description", "restricted", "thresholds", "fail_modes", "messages", "behaviour", "rules", "tests"
}  # fmt: skip
RULE_KEYS = {"name", "when", "action", "weight", "reasons", "message", "description"}


@dataclass(frozen=True, slots=True)
class Jurisdiction:
    code: str
    name: str
    reason: str
    basis: str


@dataclass(frozen=True, slots=True)
class RuleSpec:
    name: str
    when: str
    action: Action | None
    weight: float
    reasons: tuple[str, ...]
    message: str | None
    description: str
    line: int | None


@dataclass(frozen=True, slots=True)
class PolicySpec:
    name: str
    description: str
    version: str  # content hash of the file
    path: str
    restricted: dict[str, Jurisdiction]
    thresholds: tuple[tuple[float, Action], ...]  # descending score
    fail_modes: dict[str, str]
    messages: dict[Action, str]
    rules: tuple[RuleSpec, ...]
    where: Where
    behaviour: BehaviourConfig = DEFAULT_BEHAVIOUR  # thresholds of the behaviour (per-key) signal

    def fail_mode(self, signal: str) -> str:
        """What to do when ``signal`` cannot answer. Unless the policy says otherwise, a signal
        fails open and a rule that errors at run time (``policy``) sends the request to review."""
        if signal in self.fail_modes:
            return self.fail_modes[signal]
        return self.fail_modes.get("default", "review" if signal == "policy" else "open")


def read(path: Path, *, known_codes: set[str]) -> PolicySpec:
    """Parse and validate a policy file (without compiling its CEL: see ``engine``)."""
    raw, where = load(path)
    text = Path(path).read_bytes()
    return parse(raw, where, version=hashlib.sha256(text).hexdigest()[:12], known_codes=known_codes)


def parse(raw: Any, where: Where, *, version: str, known_codes: set[str]) -> PolicySpec:
    if not isinstance(raw, dict):
        raise where.error((), "a policy must be a mapping (policy, restricted, rules, ...)")
    unknown = set(raw) - TOP_KEYS
    if unknown:
        first = sorted(map(str, unknown))[0]
        raise where.error((first,), f"unknown field {first!r} (known: {', '.join(sorted(TOP_KEYS))})")
    name = _str(raw.get("policy", "policy"), ("policy",), where)
    rules_raw = raw.get("rules")
    if not isinstance(rules_raw, list) or not rules_raw:
        raise where.error(("rules",), "a policy needs a non-empty list of rules")
    rules = tuple(_rule(r, i, where, known_codes) for i, r in enumerate(rules_raw))
    names = [r.name for r in rules]
    for i, n in enumerate(names):
        if n in names[:i]:
            raise where.error(("rules", i, "name"), f"duplicate rule name {n!r}")
    return PolicySpec(
        name=name,
        description=_str(raw.get("description", ""), ("description",), where),
        version=f"{name}-{version}",
        path=where.file,
        restricted=_restricted(raw.get("restricted"), where),
        thresholds=_thresholds(raw.get("thresholds", {}), where),
        fail_modes=_fail_modes(raw.get("fail_modes", {}), where),
        messages=_messages(raw.get("messages", {}), where),
        rules=rules,
        where=where,
        behaviour=_behaviour(raw.get("behaviour", {}), where),
    )


def _behaviour(value: Any, where: Where) -> BehaviourConfig:
    if value is None or value == {}:
        return DEFAULT_BEHAVIOUR
    if not isinstance(value, dict):
        raise where.error(("behaviour",), "behaviour must map setting names to numbers")
    for name in value:
        try:
            BehaviourConfig.from_mapping({name: value[name]})
        except ConfigError as exc:
            path: Key = ("behaviour", name) if name in BEHAVIOUR_FIELDS else ("behaviour",)
            raise where.error(path, str(exc)) from None
    return BehaviourConfig.from_mapping(value)


def canonical(spec: PolicySpec) -> str:
    """A stable JSON rendering of what the policy does (for diffing two policies)."""
    return json.dumps(
        {
            "restricted": sorted(spec.restricted),
            "thresholds": [[s, a.value] for s, a in spec.thresholds],
            "fail_modes": spec.fail_modes,
            "behaviour": dataclasses.asdict(spec.behaviour),
            "rules": [[r.name, r.when, r.action and r.action.value, r.weight, list(r.reasons)] for r in spec.rules],
        },
        sort_keys=True,
    )


def _str(value: Any, path: Key, where: Where) -> str:
    if not isinstance(value, str):
        raise where.error(path, f"expected text, got {type(value).__name__}")
    return value


def _action(value: Any, path: Key, where: Where) -> Action:
    try:
        return Action(str(value).strip().lower())
    except ValueError:
        raise where.error(path, f"unknown action {value!r} (one of {', '.join(a.value for a in Action)})") from None


def _restricted(value: Any, where: Where) -> dict[str, Jurisdiction]:
    path: Key = ("restricted",)
    if not isinstance(value, dict) or not value:
        raise where.error(path, "'restricted' must map jurisdiction codes to reasons")
    out: dict[str, Jurisdiction] = {}
    for code, body in value.items():
        p = (*path, code)
        if not isinstance(code, str):
            raise where.error(p, f"jurisdiction codes are text, got {code!r}")
        cc = code.strip().upper()
        if len(cc) == 2:
            country = pycountry.countries.get(alpha_2=cc)
            if country is None:
                raise where.error(p, f"unknown country code {code!r} (ISO 3166-1 alpha-2)")
            jname = str(country.name)
        else:
            sub = pycountry.subdivisions.get(code=cc)  # type: ignore[no-untyped-call]
            if sub is None:
                raise where.error(p, f"unknown jurisdiction code {code!r} (ISO 3166-1 alpha-2 or ISO 3166-2)")
            jname = str(sub.name)
        entry = {"reason": body} if isinstance(body, str) else body
        if not isinstance(entry, dict) or not isinstance(entry.get("reason"), str) or not entry["reason"].strip():
            raise where.error(p, "each jurisdiction needs a reason (text, or {reason: ..., basis: ...})")
        extra = set(entry) - {"reason", "basis", "name"}
        if extra:
            raise where.error(p, f"unknown field {sorted(extra)[0]!r} (reason, basis, name)")
        basis = entry.get("basis", "company-policy")
        if basis not in BASES:
            raise where.error((*p, "basis"), f"basis must be one of {', '.join(BASES)}")
        out[cc] = Jurisdiction(cc, str(entry.get("name", jname)), entry["reason"].strip(), basis)
    return out


def _thresholds(value: Any, where: Where) -> tuple[tuple[float, Action], ...]:
    path: Key = ("thresholds",)
    if not isinstance(value, dict):
        raise where.error(path, "'thresholds' maps actions to the score (0..1) from which they apply")
    out: list[tuple[float, Action]] = []
    for act, score in value.items():
        action = _action(act, (*path, act), where)
        if action == Action.ALLOW:
            raise where.error((*path, act), "allow is what remains below every threshold")
        if not isinstance(score, (int, float)) or isinstance(score, bool) or not 0 < score <= 1:
            raise where.error((*path, act), "a threshold is a number in (0, 1]")
        out.append((float(score), action))
    out.sort(key=lambda t: (-t[0], -t[1].rank))
    for (s1, a1), (s2, a2) in itertools.pairwise(out):
        if a1.rank < a2.rank:
            raise where.error(
                path, f"thresholds must rise with severity: {a1.value} at {s1} is below {a2.value} at {s2}"
            )
    return tuple(out)


def _fail_modes(value: Any, where: Where) -> dict[str, str]:
    path: Key = ("fail_modes",)
    if not isinstance(value, dict):
        raise where.error(path, "'fail_modes' maps signal names (or 'default') to open, closed or review")
    for sig, mode in value.items():
        if mode not in FAIL_MODES:
            raise where.error((*path, sig), f"fail mode must be one of {', '.join(FAIL_MODES)}, not {mode!r}")
    return {str(k): str(v) for k, v in value.items()}


def _messages(value: Any, where: Where) -> dict[Action, str]:
    path: Key = ("messages",)
    if not isinstance(value, dict):
        raise where.error(path, "'messages' maps actions to the text an end user may be shown")
    out = dict(USER_MESSAGES)
    for act, text in value.items():
        out[_action(act, (*path, act), where)] = _str(text, (*path, act), where)
    return out


def _rule(raw: Any, i: int, where: Where, known_codes: set[str]) -> RuleSpec:
    path: Key = ("rules", i)
    if not isinstance(raw, dict):
        raise where.error(path, "a rule is a mapping with at least name and when")
    unknown = set(raw) - RULE_KEYS
    if unknown:
        first = sorted(map(str, unknown))[0]
        raise where.error((*path, first), f"unknown field {first!r} (known: {', '.join(sorted(RULE_KEYS))})")
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise where.error((*path, "name"), "a rule needs a name: lower case letters, digits, - and _")
    when = raw.get("when")
    if not isinstance(when, str) or not when.strip():
        raise where.error((*path, "when"), "a rule needs a CEL condition in 'when'")
    action = _action(raw["action"], (*path, "action"), where) if "action" in raw else None
    weight = raw.get("weight", 0.0)
    if not isinstance(weight, (int, float)) or isinstance(weight, bool) or not 0 <= weight <= 1:
        raise where.error((*path, "weight"), "weight is a number in [0, 1]")
    if action is None and weight == 0:
        raise where.error(path, "a rule needs an action, a weight, or both")
    reasons = raw.get("reasons", [])
    if not isinstance(reasons, list) or not all(isinstance(r, str) for r in reasons):
        raise where.error((*path, "reasons"), "reasons is a list of evidence codes")
    for j, code in enumerate(reasons):
        if code not in known_codes:
            raise where.error((*path, "reasons", j), f"unknown evidence code {code!r}")
    message = raw.get("message")
    if message is not None and not isinstance(message, str):
        raise where.error((*path, "message"), "message is text")
    return RuleSpec(
        name=name,
        when=when.strip(),
        action=action,
        weight=float(weight),
        reasons=tuple(reasons),
        message=message,
        description=str(raw.get("description", "")),
        line=where.line((*path, "when")),
    )
