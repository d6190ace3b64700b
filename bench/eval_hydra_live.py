"""The live path on the held-out hydra family: how soon is a hydra account at ``review`` or
``block``, and are honest teams left alone?

Generates a ``hydra`` scenario (``--seed``; parameters drawn from it), then decides every event
in time order with the shipped policy and behaviour state in memory, twice:

- ``live only``: the Warden on its own;
- ``with flags``: ``geowarden analyze`` runs on the events before ``--batch-day`` (a daily batch)
  and its findings are fed to the state store as flags (``analyze --feed-state``); the decisions
  after that are made with them.

Reported per group: accounts with at least ``--nth`` requests (after the batch, for the second
run), and the share of them at ``review`` or ``block`` by their ``--nth`` request; the honest
company teams are decided with their cloud egress registered (``allow.egress``: the /24 most of
the team's requests leave from, for every member) and their highest action is reported.

``--scenario analytics`` runs the same on the scenario the detectors were tuned on (its planted
networks are the ``farm-*`` account farms and the ``relay-1`` customers); the group signal's
thresholds were chosen there (seeds 1-3), and the ``hydra`` seeds are held out.

Run: ``python bench/eval_hydra_live.py [--scenario hydra] [--seed 21] [--events 300000] [--nth 20]``
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

RANK = {"allow": 0, "limited": 1, "challenge": 2, "review": 3, "block": 4}


def main(argv: Sequence[str] | None = None) -> int:  # noqa: PLR0915 - one straight script
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenario", default="hydra", help="hydra, hydra-aged or analytics")
    ap.add_argument("--seed", type=int, default=21)
    ap.add_argument("--events", type=int, default=300_000)
    ap.add_argument("--nth", type=int, default=20)
    ap.add_argument("--batch-day", type=float, default=2.0)
    ap.add_argument("--snapshot", type=Path, default=None)
    ap.add_argument("--live-only", action="store_true", help="skip the run with the batch's flags (half the time)")
    ap.add_argument("--no-billing-count", action="store_true",
                    help="drop payment_accounts from the facts: the group is sized by what traffic shows")  # fmt: skip
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    from geowarden.analytics.run import analyze, feed_back  # noqa: PLC0415
    from geowarden.events import EventReader, event_facts  # noqa: PLC0415
    from geowarden.intel.snapshot import Snapshot  # noqa: PLC0415
    from geowarden.policy.allowlist import EgressRanges  # noqa: PLC0415
    from geowarden.policy.engine import PolicyEngine  # noqa: PLC0415
    from geowarden.simulate.scenario import resolve_snapshot, simulate  # noqa: PLC0415
    from geowarden.simulate.timeline import T0_MS  # noqa: PLC0415
    from geowarden.warden import Warden  # noqa: PLC0415

    snap = Snapshot.open(args.snapshot) if args.snapshot else resolve_snapshot(None)
    split_ms = T0_MS + int(args.batch_day * 86_400_000)
    with tempfile.TemporaryDirectory(prefix="gw-hydra-live-") as tmp:
        d = Path(tmp)
        simulate(args.scenario, args.events, args.seed, d / "logs.jsonl", d / "labels.jsonl", snapshot=snap,
                 accounts=d / "accounts.jsonl")  # fmt: skip
        labels = {}
        for line in (d / "labels.jsonl").read_text().splitlines():
            r = json.loads(line)
            labels[r["subject"]] = r
        events = sorted(EventReader([d / "logs.jsonl"]), key=lambda e: e.ts_ms)
        before = d / "before.jsonl"
        with (d / "logs.jsonl").open() as src, before.open("w") as out:
            for line in src:
                if json.loads(line)["ts"] < split_ms:
                    out.write(line)
        t0 = time.perf_counter()
        result = analyze([before], accounts=d / "accounts.jsonl", snapshot=snap)
        t_batch = time.perf_counter() - t0
        egress = EgressRanges(_team_egress(events, labels))
        runs: dict[str, Any] = {}
        modes = (("live only", False),) if args.live_only else (("live only", False), ("with flags", True))
        for name, flags in modes:
            warden = Warden(snap, PolicyEngine.load(None, egress=egress))
            if flags:
                feed_back(result.findings, warden.state, ttl=7 * 86_400, now=split_ms / 1000)
            seen: dict[str, int] = defaultdict(int)
            hit: dict[str, bool] = {}
            top: dict[str, int] = defaultdict(int)
            team_reasons: Counter[str] = Counter()
            honest_rules: Counter[str] = Counter()
            missed: Counter[str] = Counter()  # why planted accounts were not reviewed by their nth request
            t0 = time.perf_counter()
            n = 0
            for ev, given in event_facts(events):
                lab = labels.get(ev.account_id)
                if lab is None or (flags and ev.ts_ms < split_ms):
                    continue
                facts = dataclasses.replace(given, payment_accounts=None) if args.no_billing_count else given
                decision = warden.decide(facts)
                action = decision.action.value
                if action != "allow" and lab["persona"].startswith("team_"):
                    team_reasons.update(r.code for r in decision.reasons)
                n += 1
                seen[ev.account_id] += 1
                if lab.get("should_allow") and RANK[action] >= RANK["review"] and ev.account_id not in hit:
                    honest_rules.update(f"{lab['persona']}: {r}" for r in decision.rules)
                top[ev.account_id] = max(top[ev.account_id], RANK[action])
                if seen[ev.account_id] <= args.nth and RANK[action] >= RANK["review"]:
                    hit[ev.account_id] = True
                if seen[ev.account_id] == args.nth and lab.get("network") and not hit.get(ev.account_id):
                    missed[f"{lab['network']}: {_why_not(decision, warden)}"] += 1
            runs[name] = _report(labels, seen, hit, top, args.nth, n, time.perf_counter() - t0)
            runs[name]["teams"]["reasons_not_allowed"] = dict(team_reasons.most_common(5))
            runs[name]["honest_rules"] = dict(honest_rules.most_common(8))
            runs[name]["missed"] = dict(missed.most_common(12))
    doc = {"scenario": args.scenario, "seed": args.seed, "billing_count": not args.no_billing_count,
           "events": args.events, "nth": args.nth,
           "batch_day": args.batch_day, "batch_seconds": round(t_batch, 1), "findings": len(result.findings),
           "runs": runs}  # fmt: skip
    if args.json:
        print(json.dumps(doc, indent=2))
        return 0
    print(f"{args.scenario} seed {args.seed}: {args.events:,} events; batch on days 0-{args.batch_day:g} "
          f"({len(result.findings)} findings, {t_batch:.1f} s)")  # fmt: skip
    for name, r in runs.items():
        print(f"{name}: {r['decisions']:,} decisions in {r['seconds']} s")
        for family, h in r["planted"].items():
            print(f"  {family} accounts with {args.nth}+ requests: {h['accounts']}, at review/block by their "
                  f"{args.nth}th: {h['reviewed']} ({h['share']})")  # fmt: skip
        t = r["teams"]
        print(f"  team accounts (registered egress): {t['accounts']}, highest action: {t['highest']}, "
              f"reasons when not allowed: {t['reasons_not_allowed']}")  # fmt: skip
        print(f"  other honest accounts at review/block by their {args.nth}th: {r['honest_reviewed']} "
              f"(of {r['honest_accounts']}); rules: {r['honest_rules']}")  # fmt: skip
        print(f"  planted accounts not at review by their {args.nth}th, and why: {r['missed']}")
    return 0


def _why_not(decision: Any, warden: Any) -> str:
    """Which of the group rule's conditions a planted account missed at its nth request."""
    group = next((e.value for e in decision.evidence if e.code == "ACCOUNT_GROUP"), None)
    if group is None:
        return f"{decision.action.value}, no payment group"
    from geowarden.signals.group import shortfalls  # noqa: PLC0415

    short = shortfalls(group, warden.policy.behaviour)
    return f"{decision.action.value}, group short of " + ("/".join(short) or "nothing (allowlisted?)")


def _team_egress(events: Sequence[Any], labels: dict[str, Any]) -> dict[str, list[str]]:
    """Each team account's registered egress: the /24 most of its team's requests leave from
    (the company's cloud egress, as the company registers it for every member)."""
    per: dict[str, Counter[str]] = defaultdict(Counter)
    members: dict[str, set[str]] = defaultdict(set)
    for ev in events:
        lab = labels.get(ev.account_id)
        if lab is not None and lab["persona"].startswith("team_") and ev.ip and "." in ev.ip:
            per[lab["persona"]][ev.ip.rsplit(".", 1)[0] + ".0/24"] += 1
            members[lab["persona"]].add(ev.account_id)
    return {a: [per[team].most_common(1)[0][0]] for team, accounts in members.items() for a in accounts}


def _report(labels: dict[str, Any], seen: dict[str, int], hit: dict[str, bool], top: dict[str, int], nth: int,
            n: int, seconds: float) -> dict[str, Any]:  # fmt: skip
    names = {v: k for k, v in RANK.items()}
    planted: dict[str, list[str]] = defaultdict(list)
    for a, c in seen.items():
        if c >= nth and labels[a].get("network"):
            planted[labels[a]["network"].split("-")[0]].append(a)
            planted[labels[a]["network"]].append(a)
    teams = [a for a in seen if labels[a]["persona"].startswith("team_")]
    honest = [a for a in seen if labels[a].get("should_allow") and not labels[a]["persona"].startswith("team_")]
    highest: dict[str, int] = defaultdict(int)
    for a in teams:
        highest[names[top[a]]] += 1
    families = {}
    for family, accounts in sorted(planted.items()):
        reviewed = sum(1 for a in accounts if hit.get(a))
        families[family] = {
            "accounts": len(accounts),
            "reviewed": reviewed,
            "share": round(reviewed / len(accounts), 4) if accounts else None,
        }
    return {
        "decisions": n,
        "seconds": round(seconds, 1),
        "planted": families,
        "teams": {"accounts": len(teams), "highest": dict(highest)},
        "honest_reviewed": sum(1 for a in honest if hit.get(a)),
        "honest_accounts": len(honest),
    }


if __name__ == "__main__":
    sys.exit(main())
