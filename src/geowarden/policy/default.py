"""The minimal default policy: an evidence code → action table.

Restricted jurisdictions block; Tor blocks; hosting, VPN and proxy addresses from elsewhere are
challenged, not blocked (corporate VPN users are real customers); a private address reaching the
decision goes to review because it is a configuration error upstream.

It can be tuned with a small YAML file (``geowarden check --policy FILE``)::

    restricted: {CN: "export controls", RU: "sanctions"}   # replaces the default list
    actions: {IP_HOSTING: allow}                            # overrides per code

The full policy engine (CEL rules, weights, fail modes) replaces this module; it keeps to the
``Policy`` protocol so the Warden does not change.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence, Set
from pathlib import Path
from typing import Any

import yaml

from geowarden.errors import ConfigError
from geowarden.model import Action, Evidence
from geowarden.policy.base import USER_MESSAGES, Verdict

#: Default restricted jurisdictions and why. Policy, not code: override with a policy file.
RESTRICTED: dict[str, str] = {
    "CN": "US export controls (EAR country group D:5) and company policy",
    "HK": "treated as CN under US export controls since 2020",
    "MO": "treated as CN under US export controls",
    "RU": "sanctions (EO 14024) and export controls",
    "BY": "sanctions and export controls",
    "IR": "comprehensive sanctions (ITSR)",
    "KP": "comprehensive sanctions (NKSR)",
    "CU": "comprehensive sanctions (CACR)",
    "SY": "sanctions (SySR)",
}

#: Evidence code -> (action, score, rule name). Codes not listed do not fire.
ACTIONS: dict[str, tuple[Action, float]] = {
    "IP_COUNTRY_RESTRICTED": (Action.BLOCK, 1.0),
    "IP_TOR": (Action.BLOCK, 0.95),
    "IP_PRIVATE_OR_RESERVED": (Action.REVIEW, 0.5),
    "IP_INVALID": (Action.REVIEW, 0.5),
    "IP_VPN": (Action.CHALLENGE, 0.6),
    "IP_PROXY": (Action.CHALLENGE, 0.6),
    "IP_HOSTING": (Action.CHALLENGE, 0.5),
    "IP_UNKNOWN": (Action.CHALLENGE, 0.4),
    "IP_COUNTRY_DISAGREEMENT": (Action.CHALLENGE, 0.5),  # only when a restricted answer is among them
}


class DefaultPolicy:
    def __init__(
        self, restricted: Mapping[str, str] | None = None, actions: Mapping[str, tuple[Action, float]] | None = None
    ):
        self._restricted = dict(RESTRICTED if restricted is None else restricted)
        self._actions = dict(ACTIONS)
        if actions:
            self._actions.update(actions)
        body = json.dumps(
            {"restricted": self._restricted, "actions": {k: [a.value, s] for k, (a, s) in self._actions.items()}},
            sort_keys=True,
        )
        self._version = "default-" + hashlib.sha256(body.encode()).hexdigest()[:12]
        self._restricted_set = frozenset(self._restricted)

    @property
    def version(self) -> str:
        return self._version

    @property
    def restricted(self) -> Set[str]:
        return self._restricted_set

    def judge(self, evidence: Sequence[Evidence]) -> Verdict:
        fired: list[tuple[Evidence, Action, float]] = []
        for ev in evidence:
            rule = self._actions.get(ev.code)
            if rule is None:
                continue
            if ev.code == "IP_COUNTRY_DISAGREEMENT" and not (isinstance(ev.value, dict) and ev.value.get("restricted")):
                continue
            fired.append((ev, *rule))
        if not fired:
            return Verdict(Action.ALLOW, 0.0, (), (), USER_MESSAGES[Action.ALLOW])
        action = Action.strictest([a for _, a, _ in fired])
        # The reasons are what drove the action: the evidence whose rule gave the strictest action.
        top = [(ev, s) for ev, a, s in fired if a == action]
        score = max(s * ev.confidence for ev, s in top)
        if action == Action.BLOCK:
            score = max(score, 0.8)
        reasons = tuple(ev for ev, _ in top)
        rules = tuple(f"{ev.code}->{a.value}" for ev, a, _ in fired)
        return Verdict(action, min(1.0, score), reasons, rules, USER_MESSAGES[action])

    @classmethod
    def from_file(cls, path: Path) -> DefaultPolicy:
        try:
            raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"policy file not found: {path}") from None
        except (OSError, yaml.YAMLError) as exc:
            where = getattr(exc, "problem_mark", None)
            line = f" line {where.line + 1}" if where is not None else ""
            reason = getattr(exc, "problem", None) or exc
            raise ConfigError(f"{path}{line}: not a readable YAML policy: {reason}") from None
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: a policy must be a mapping with 'restricted' and/or 'actions'")
        unknown = set(raw) - {"restricted", "actions"}
        if unknown:
            raise ConfigError(f"{path}: unknown policy keys: {', '.join(sorted(map(str, unknown)))}")
        restricted = _restricted(path, raw.get("restricted"))
        actions = _actions(path, raw.get("actions"))
        return cls(restricted, actions)


def _restricted(path: Path, value: Any) -> dict[str, str] | None:
    if value is None:
        return None
    if isinstance(value, list):
        value = dict.fromkeys(value, "policy file")
    if not isinstance(value, dict) or not all(isinstance(k, str) and k.strip() for k in value):
        raise ConfigError(f"{path}: 'restricted' must map jurisdiction codes to reasons")
    return {k.strip().upper(): str(v) for k, v in value.items()}


def _actions(path: Path, value: Any) -> dict[str, tuple[Action, float]] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: 'actions' must map evidence codes to actions")
    out: dict[str, tuple[Action, float]] = {}
    for code, act in value.items():
        if code not in ACTIONS:
            raise ConfigError(f"{path}: 'actions' names unknown code {code!r} (known: {', '.join(ACTIONS)})")
        try:
            action = Action(str(act).lower())
        except ValueError:
            raise ConfigError(
                f"{path}: action for {code} must be one of {', '.join(a.value for a in Action)}"
            ) from None
        out[code] = (action, ACTIONS[code][1])
    return out
