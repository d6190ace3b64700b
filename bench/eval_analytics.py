"""Quality of batch analytics: are the planted networks found, and the honest heavy users not?

Generates the ``analytics`` scenario (honest heavy users built to look like networks — a company
team on one office /24 with a corporate card, 24/7 cloud automation, families, SDK developers
sending the same prompts, travellers — and planted account farms, key resellers, a relay carrying
unrelated CN accounts and a distillation campaign), runs ``geowarden analyze`` on it and scores
the findings against the labels:

- accounts: an account is *flagged* when it is a member of any finding (cluster, campaign,
  model shift, infrastructure with members); recall over planted accounts (labels with a
  ``network`` or ``campaign``), precision over every labelled account flagged, and the share
  flagged of each honest persona;
- networks: per planted network or campaign, the share of its accounts flagged;
- keys: key resellers' keys in ``key_shared`` findings, and honest keys there.

Run: ``python bench/eval_analytics.py [--scenario analytics] [--events 1000000] [--seed 7]
[--backend duckdb] [--json]`` (``--snapshot DIR`` for a snapshot built from ../shared/data;
default: the current one). ``--scenario hydra`` is the held-out family (its parameters vary by
seed); ``--seeds 1,2,3`` runs several seeds and prints one line each and their pooled figures.
The thresholds are frozen (the defaults): tuned on ``analytics`` seeds 1-3 only.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def score(findings: Sequence[dict[str, Any]], labels: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Precision and recall of findings (dicts as ``Finding.to_dict``) against labels."""
    accounts = {r["subject"]: r for r in labels if r.get("kind") == "account"}
    keys = {r["subject"]: r for r in labels if r.get("kind") == "key"}
    flagged: dict[str, set[str]] = defaultdict(set)  # account -> finding kinds
    flagged_keys: set[str] = set()
    for f in findings:
        for m in f.get("members", []):
            flagged[m].add(f["kind"])
        flagged_keys.update(f.get("keys", []))
        if f["kind"] == "key_shared":
            flagged_keys.add(f["subject"])
        elif f["kind"] in ("account_cluster", "campaign", "model_shift") and f["subject"] in accounts:
            flagged[f["subject"]].add(f["kind"])

    def planted(r: dict[str, Any]) -> str | None:
        tag = r.get("network") or r.get("campaign")
        return str(tag) if tag else None

    truth = {a for a, r in accounts.items() if planted(r)}
    hits = {a for a in flagged if a in accounts}
    tp = len(hits & truth)
    recall = tp / len(truth) if truth else None
    precision = tp / len(hits) if hits else None
    by_net: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for a in truth:
        tag = planted(accounts[a])
        assert tag is not None
        by_net[tag][1] += 1
        by_net[tag][0] += a in hits
    honest: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    kinds: dict[str, Counter[str]] = defaultdict(Counter)
    for a, r in accounts.items():
        if planted(r) or not r.get("should_allow", False):
            continue
        name = str(r.get("entry") or r.get("persona"))
        honest[name][1] += 1
        if a in hits:
            honest[name][0] += 1
            kinds[name].update(flagged[a])
    reseller = {k for k, r in keys.items() if not r.get("should_allow", True)}
    honest_keys = {k for k, r in keys.items() if r.get("should_allow", False)}
    return {
        "accounts": {
            "planted": len(truth),
            "flagged": len(hits),
            "true_positives": tp,
            "recall": _r(recall),
            "precision": _r(precision),
        },
        "networks": {tag: {"accounts": n, "flagged": k, "recall": _r(k / n)} for tag, (k, n) in sorted(by_net.items())},
        "honest": {
            name: {"accounts": n, "flagged": k, "rate": _r(k / n), "by": dict(kinds[name])}
            for name, (k, n) in sorted(honest.items())
        },
        "honest_flag_rate": _r(sum(k for k, _ in honest.values()) / max(1, sum(n for _, n in honest.values()))),
        "keys": {
            "resold": len(reseller),
            "resold_flagged": len(reseller & flagged_keys),
            "honest": len(honest_keys),
            "honest_flagged": len(honest_keys & flagged_keys),
            "other_flagged": len(flagged_keys - reseller),  # every flagged key that is not a resold one
        },
    }


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--seeds", default=None, help="several seeds, comma separated (pooled figures)")
    ap.add_argument("--scenario", default="analytics", help="analytics (tuning) or hydra (held out)")
    ap.add_argument("--backend", default="duckdb", choices=["duckdb", "spark"])
    ap.add_argument("--snapshot", type=Path, default=None, help="a snapshot directory (default: the current one)")
    ap.add_argument("--json", action="store_true", help="print one JSON document")
    args = ap.parse_args(argv)
    if args.seeds:
        return _many(args, [int(x) for x in args.seeds.split(",") if x.strip()])
    doc = run_one(args.scenario, args.events, args.seed, args.backend, args.snapshot)
    if args.json:
        print(json.dumps(doc, indent=2))
        return 0
    _print(doc)
    return 0


def _many(args: argparse.Namespace, seeds: list[int]) -> int:
    docs = [run_one(args.scenario, args.events, s, args.backend, args.snapshot) for s in seeds]
    planted = sum(d["accounts"]["planted"] for d in docs)
    tp = sum(d["accounts"]["true_positives"] for d in docs)
    flagged = sum(d["accounts"]["flagged"] for d in docs)
    honest_n = sum(v["accounts"] for d in docs for v in d["honest"].values())
    honest_k = sum(v["flagged"] for d in docs for v in d["honest"].values())
    pooled = {
        "scenario": args.scenario,
        "seeds": seeds,
        "recall": _r(tp / planted if planted else None),
        "precision": _r(tp / flagged if flagged else None),
        "honest_accounts": honest_n,
        "honest_flagged": honest_k,
        "honest_flag_rate": _r(honest_k / honest_n if honest_n else None),
    }
    if args.json:
        print(json.dumps({"runs": docs, "pooled": pooled}, indent=2))
        return 0
    for d in docs:
        _print(d)
        print()
    print(f"pooled over seeds {seeds}: recall {pooled['recall']}, precision {pooled['precision']}, "
          f"honest accounts in a finding {honest_k} / {honest_n} ({pooled['honest_flag_rate']})")  # fmt: skip
    return 0


def run_one(scenario: str, events: int, seed: int, backend: str, snapshot: Path | None) -> dict[str, Any]:
    """Generate ``scenario`` with ``seed``, analyse it, and score the findings against its labels."""
    from geowarden.analytics.run import analyze  # noqa: PLC0415
    from geowarden.intel.snapshot import Snapshot  # noqa: PLC0415
    from geowarden.simulate.scenario import resolve_snapshot, simulate  # noqa: PLC0415

    snap = Snapshot.open(snapshot) if snapshot else resolve_snapshot(None)
    with tempfile.TemporaryDirectory(prefix="gw-eval-analytics-") as tmp:
        d = Path(tmp)
        t0 = time.perf_counter()
        simulate(scenario, events, seed, d / "logs.parquet", d / "labels.jsonl", snapshot=snap,
                 accounts=d / "accounts.parquet")  # fmt: skip
        t_gen = time.perf_counter() - t0
        labels = [json.loads(line) for line in (d / "labels.jsonl").read_text().splitlines() if line.strip()]
        t0 = time.perf_counter()
        result = analyze([d / "logs.parquet"], accounts=d / "accounts.parquet", backend=backend, snapshot=snap)
        t_an = time.perf_counter() - t0
    severities = Counter(f.severity for f in result.findings)
    return {
        "scenario": scenario,
        "events": events,
        "seed": seed,
        "backend": backend,
        "generate_s": round(t_gen, 1),
        "analyze_s": round(t_an, 1),
        "findings_by_kind": result.stats.get("findings_by_kind"),
        "findings_by_severity": dict(severities),
        **score([f.to_dict() for f in result.findings], labels),
    }


def _print(doc: dict[str, Any]) -> None:
    a = doc["accounts"]
    print(f"{doc['scenario']} scenario: {doc['events']:,} events (seed {doc['seed']}), generated in "
          f"{doc['generate_s']} s, analysed on {doc['backend']} in {doc['analyze_s']} s")  # fmt: skip
    print(f"findings: {doc['findings_by_kind']} by severity {doc['findings_by_severity']}")
    print(f"planted accounts: recall {a['recall']}, precision {a['precision']} "
          f"({a['true_positives']} of {a['planted']} planted; {a['flagged']} labelled accounts flagged)")  # fmt: skip
    for tag, v in doc["networks"].items():
        print(f"  {tag:<12} {v['flagged']:>5} / {v['accounts']:<5} recall {v['recall']}")
    print(f"honest accounts flagged: {doc['honest_flag_rate']}")
    for name, v in doc["honest"].items():
        print(f"  {name:<20} {v['flagged']:>5} / {v['accounts']:<6} {v['rate']}  {v['by'] or ''}")
    k = doc["keys"]
    print(
        f"keys: resold flagged {k['resold_flagged']} / {k['resold']}; honest keys flagged {k['honest_flagged']}; "
        f"other keys flagged {k['other_flagged']} (planted accounts' keys)"
    )


if __name__ == "__main__":
    sys.exit(main())
