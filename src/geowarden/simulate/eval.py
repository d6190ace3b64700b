"""Evaluate the live decision path (``Warden.decide``) on labelled simulated traffic.

Each event becomes ``Facts`` (``events.event_facts``, as ``policy backtest`` judges them) — the
DESIGN columns plus the extra columns the simulator writes (``phone``, ``card_bin``,
``billing_country``, ``email``), the edge RTT as one landmark measurement from the pop, and the
last few edge and application RTTs of the same account and address (``rtt_tcp_ms`` /
``rtt_app_ms``, what an edge that keeps a short window would pass) — and is decided in time order. Per persona:

- ``n``: subjects (accounts or keys, by the label's ``kind``) seen in the logs; ``events``;
- ``not_allowed_events``: share of events not allowed (action challenge, review or block);
- a subject is *stopped* when at least ``subject_share`` (0.5) of its events were not allowed;
- evasive personas: ``recall`` = share of subjects stopped (``recall_events`` per event),
  ``precision`` = stopped subjects of this persona / (those + every honest subject stopped);
- honest personas: ``false_positive_rate`` = share of subjects stopped (``..._events`` per event);
- ``top_reasons``: the most frequent reason codes of the decisions that did not allow.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from geowarden.errors import ConfigError, InputError
from geowarden.events import EventReader, event_facts
from geowarden.intel.snapshot import Snapshot
from geowarden.policy.engine import PolicyEngine
from geowarden.settings import Settings
from geowarden.warden import Warden, configured_signals, load_policy


@dataclass(frozen=True, slots=True)
class Label:
    subject: str
    kind: str
    persona: str
    should_allow: bool
    observable: bool = True


def read_labels(path: Path) -> dict[tuple[str, str], Label]:
    """Labels by (kind, subject). A malformed line is an ``InputError`` naming its line."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such labels file")
    out: dict[tuple[str, str], Label] = {}
    with path.open(encoding="utf-8-sig", errors="replace") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{path} line {n}: not JSON: {exc.msg}") from None
            except RecursionError:
                raise InputError(f"{path} line {n}: not JSON: nested too deeply") from None
            if not isinstance(row, dict):
                raise InputError(f"{path} line {n}: not a JSON object")
            kind, subject, persona, ok = (
                row.get("kind"),
                row.get("subject"),
                row.get("persona"),
                row.get("should_allow"),
            )
            if kind not in ("key", "account") or not subject or not persona or not isinstance(ok, bool):
                raise InputError(
                    f"{path} line {n}: needs subject, kind (key|account), persona and should_allow (true|false)"
                )
            out[(kind, str(subject))] = Label(str(subject), kind, str(persona), ok, bool(row.get("observable", True)))
    if not out:
        raise InputError(f"{path}: no labels")
    return out


@dataclass(slots=True)
class _Tally:
    should_allow: bool
    observable: bool
    events: int = 0
    not_allowed: int = 0
    subjects: dict[str, list[int]] = field(default_factory=dict)  # subject -> [events, not allowed]
    reasons: Counter[str] = field(default_factory=Counter)
    actions: Counter[str] = field(default_factory=Counter)


def _warden(policy: Path | None, snapshot: Snapshot | Path | None, settings: Settings | None) -> Warden:
    """A Warden for the evaluation: behaviour state in memory, on ``snapshot`` (or the current one),
    with ``policy`` (or the settings' policy, or the shipped default)."""
    if policy is not None and not Path(policy).is_file():
        raise ConfigError(f"{policy}: no such policy file")
    if isinstance(snapshot, Snapshot):
        if settings is None:
            return Warden(snapshot, PolicyEngine.load(Path(policy) if policy is not None else None))
        return Warden(snapshot, load_policy(settings, policy), signals=configured_signals(settings))
    return Warden.open(settings, snapshot=Path(snapshot) if snapshot is not None else None, policy=policy)


def evaluate(
    logs: Path,
    labels: Path,
    policy: Path | None = None,
    snapshot: Snapshot | Path | None = None,
    *,
    chart: Path | None = None,
    subject_share: float = 0.5,
    top: int = 5,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Decide every event of ``logs`` and score the decisions against ``labels`` (JSON-ready).

    ``settings`` (the CLI's) give the policy when none is given, the allowlist secret, the
    registered egress ranges and the signals' data; without them, the shipped policy alone."""
    lab = read_labels(Path(labels))
    warden = _warden(policy, snapshot, settings)
    reader = EventReader([Path(logs)])
    events = sorted(reader, key=lambda e: e.ts_ms)
    tallies: dict[str, _Tally] = {}
    unlabelled = 0
    for ev, facts in event_facts(events):
        label = lab.get(("key", ev.api_key_id)) or lab.get(("account", ev.account_id))
        if label is None:
            unlabelled += 1
            continue
        decision = warden.decide(facts)
        t = tallies.setdefault(label.persona, _Tally(label.should_allow, label.observable))
        t.events += 1
        t.actions[decision.action.value] += 1
        s = t.subjects.setdefault(label.subject, [0, 0])
        s[0] += 1
        if not decision.allowed:
            t.not_allowed += 1
            s[1] += 1
            t.reasons.update({r.code for r in decision.reasons})
    return _report(tallies, subject_share, top, reader, unlabelled, warden, chart)


def _stopped(t: _Tally, share: float) -> int:
    return sum(1 for ev, bad in t.subjects.values() if bad >= share * ev)


def _report(
    tallies: dict[str, _Tally],
    share: float,
    top: int,
    reader: EventReader,
    unlabelled: int,
    warden: Warden,
    chart: Path | None,
) -> dict[str, Any]:
    honest_stopped = sum(_stopped(t, share) for t in tallies.values() if t.should_allow)
    honest_subjects = sum(len(t.subjects) for t in tallies.values() if t.should_allow)
    evasive_stopped = sum(_stopped(t, share) for t in tallies.values() if not t.should_allow)
    evasive_subjects = sum(len(t.subjects) for t in tallies.values() if not t.should_allow)
    rows: list[dict[str, Any]] = []
    for name, t in tallies.items():
        n, stopped = len(t.subjects), _stopped(t, share)
        rate = stopped / n if n else None
        ev_rate = t.not_allowed / t.events if t.events else None
        row: dict[str, Any] = {
            "persona": name,
            "should_allow": t.should_allow,
            "observable": t.observable,
            "n": n,
            "events": t.events,
            "not_allowed_events": _r(ev_rate),
            "recall": None if t.should_allow else _r(rate),
            "recall_events": None if t.should_allow else _r(ev_rate),
            "precision": None if t.should_allow else _r(stopped / (stopped + honest_stopped) if stopped else 0.0),
            "false_positive_rate": _r(rate) if t.should_allow else None,
            "false_positive_rate_events": _r(ev_rate) if t.should_allow else None,
            "actions": dict(t.actions.most_common()),
            "top_reasons": [{"code": c, "n": k} for c, k in t.reasons.most_common(top)],
        }
        rows.append(row)
    rows.sort(key=lambda r: (not r["should_allow"], r["persona"]))
    all_stopped = honest_stopped + evasive_stopped
    out: dict[str, Any] = {
        "policy_version": warden.policy.version,
        "snapshot": warden.intel.id,
        "subject_share": share,
        "events": reader.read,
        "skipped": reader.skipped,
        "problems": [str(p) for p in reader.problems[:20]],
        "unlabelled_events": unlabelled,
        "overall": {
            "recall": _r(evasive_stopped / evasive_subjects if evasive_subjects else None),
            "precision": _r(evasive_stopped / all_stopped if all_stopped else None),
            "false_positive_rate": _r(honest_stopped / honest_subjects if honest_subjects else None),
        },
        "personas": rows,
    }
    if chart is not None:
        plot(out, Path(chart))
        out["chart"] = str(chart)
    return out


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def plot(report: dict[str, Any], path: Path) -> None:
    """A bar chart: honest personas' false-positive rate, evasive personas' recall."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    rows = report["personas"]
    names = [r["persona"] + ("" if r["observable"] else " (unobservable)") for r in rows]
    values = [(r["false_positive_rate"] if r["should_allow"] else r["recall"]) or 0.0 for r in rows]
    colours = ["#d9534f" if r["should_allow"] else "#2e8b57" for r in rows]
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(rows) + 1.6))
    y = list(range(len(rows)))[::-1]
    ax.barh(y, values, color=colours)
    for yi, v, r in zip(y, values, rows, strict=True):
        ax.text(min(v + 0.01, 0.93), yi, f"{v:.0%}  (n={r['n']})", va="center", fontsize=8)
    ax.set_yticks(y, names, fontsize=8)
    ax.set_xlim(0, 1)
    ax.set_xlabel("red: false-positive rate (honest, lower is better) / green: recall (evasive, higher is better)")
    ax.set_title(
        f"geowarden eval — policy {report['policy_version']}, subjects stopped at >= "
        f"{report['subject_share']:.0%} of their requests",
        fontsize=9,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
