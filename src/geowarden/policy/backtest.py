"""Replay API log events under two policies and report what would change.

Each event's facts (``events.event_facts``: the same facts, RTT windows included, as
``geowarden eval`` judges) go through the signals once; both policies judge the same evidence, so
every difference is the policies' alone. The report counts decisions by action under each policy, the
transitions (old action -> new action), the rules behind the changes, and examples.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from geowarden.events import Event, event_facts
from geowarden.model import Evidence, Facts
from geowarden.policy.base import Policy


@dataclass(slots=True)
class BacktestReport:
    old: str
    new: str
    events: int = 0
    changed: int = 0
    old_actions: Counter[str] = field(default_factory=Counter)
    new_actions: Counter[str] = field(default_factory=Counter)
    transitions: Counter[tuple[str, str]] = field(default_factory=Counter)
    rules_added: Counter[str] = field(default_factory=Counter)  # fired under new, not old, in changed decisions
    rules_removed: Counter[str] = field(default_factory=Counter)
    examples: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    max_examples: int = 5

    def add(
        self, event: Event, old_action: str, old_rules: tuple[str, ...], new_action: str, new_rules: tuple[str, ...]
    ) -> None:
        self.events += 1
        self.old_actions[old_action] += 1
        self.new_actions[new_action] += 1
        if old_action == new_action:
            return
        self.changed += 1
        key = (old_action, new_action)
        self.transitions[key] += 1
        added = sorted(set(new_rules) - set(old_rules))
        removed = sorted(set(old_rules) - set(new_rules))
        self.rules_added.update(added)
        self.rules_removed.update(removed)
        bucket = self.examples.setdefault(key, [])
        if len(bucket) < self.max_examples:
            bucket.append(
                {
                    "request_id": event.request_id,
                    "account_id": event.account_id,
                    "api_key_id": event.api_key_id,
                    "ip": event.ip,
                    "old": old_action,
                    "new": new_action,
                    "rules_added": added,
                    "rules_removed": removed,
                }
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "old_policy": self.old,
            "new_policy": self.new,
            "events": self.events,
            "changed": self.changed,
            "changed_share": round(self.changed / self.events, 6) if self.events else 0.0,
            "old_actions": dict(sorted(self.old_actions.items())),
            "new_actions": dict(sorted(self.new_actions.items())),
            "transitions": [{"from": a, "to": b, "n": n} for (a, b), n in sorted(self.transitions.items())],
            "rules_added": dict(sorted(self.rules_added.items())),
            "rules_removed": dict(sorted(self.rules_removed.items())),
            "examples": [e for key in sorted(self.examples) for e in self.examples[key]],
        }


def backtest(
    events: Iterable[Event],
    old: Policy,
    new: Policy,
    evidence_for: Callable[[Facts], list[Evidence]],
    *,
    max_examples: int = 5,
    progress: Callable[[int], None] | None = None,
) -> BacktestReport:
    report = BacktestReport(old.version, new.version, max_examples=max_examples)
    for i, (event, facts) in enumerate(event_facts(events), 1):
        evidence = evidence_for(facts)
        a = old.judge(evidence, facts)
        b = new.judge(evidence, facts)
        report.add(event, a.action.value, _named(a.rules), b.action.value, _named(b.rules))
        if progress is not None and i % 10_000 == 0:
            progress(i)
    return report


def _named(rules: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(r for r in rules if not r.startswith("score>="))
