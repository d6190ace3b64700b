"""Batch name screening throughput and index build time, against a peer measured in the same run.

Names: ``--n`` names, half real unlisted organisation names (DB-IP ASN Lite) and half listed
primary names (OFAC SDN), sampled with a fixed seed. Cases, run round-robin so the machine's
noise spreads over all alike; the per-name caches are cleared before every run (new names):

- ``screen_names``   ``geowarden.screening.cli.screen_names`` (verdict, matches, explanations)
- ``peer_jw_cdist``  brute force plain Jaro-Winkler of every name against every listed name and
                     alias (``rapidfuzz.process.cdist``, one thread): what a screener without an
                     index pays, and the scorer Watchman uses

Index build (parse excluded) is timed ``--repeat`` times.

    python bench/bench_screening.py              # ~1 minute
    python bench/bench_screening.py --n 1000 --repeat 3 --json
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time

import maxminddb
import numpy as np
from common import DATA, machine, measure_interleaved
from rapidfuzz import process, utils
from rapidfuzz.distance import JaroWinkler

from geowarden.screening import match
from geowarden.screening.cli import screen_names
from geowarden.screening.lists import Entity, load_directory


def _names(entities: list[Entity], n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    with maxminddb.open_database(str(DATA / "ip" / "dbip-asn-lite.mmdb")) as reader:
        orgs = sorted(
            {
                r["autonomous_system_organization"]
                for _, r in reader
                if isinstance(r, dict) and r.get("autonomous_system_organization")
            }
        )
    listed = sorted(e.name for e in entities if e.list == "OFAC SDN")
    return rng.sample(orgs, n // 2) + rng.sample(listed, n - n // 2)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    entities, _ = load_directory(DATA / "sanctions")
    builds = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        index = match.NameIndex(entities)
        builds.append(time.perf_counter() - t0)
    names = _names(entities, args.n, args.seed)
    choices = [utils.default_process(a) for a in index._alias_text]  # the bench reads the index's columns

    def ours() -> None:
        match.normalise.cache_clear()
        getattr(match._token_sim, "cache_clear", lambda: None)()  # cached since this branch
        screen_names(names, index=index)

    def peer() -> None:
        qs = [utils.default_process(q) for q in names]
        for start in range(0, len(qs), 250):
            m = process.cdist(qs[start : start + 250], choices, scorer=JaroWinkler.normalized_similarity, workers=1)
            np.max(m, axis=1)

    runs = measure_interleaved([("screen_names", ours, 1), ("peer_jw_cdist", peer, 1)], args.n, args.repeat)
    result = {
        "machine": machine(),
        "lists": {"parties": len(entities), "names_and_aliases": len(index)},
        "index_build_s_median": round(statistics.median(builds), 3),
        "throughput": {r.name: r.to_dict() for r in runs},
        "ratio_ours_to_peer": round(runs[0].rate / runs[1].rate, 2),
    }
    lines = [
        f"lists: {len(entities)} parties, {len(index)} names and aliases; "
        f"index build {result['index_build_s_median']} s (median)",
        *(f"{r.name:14s} {r.rate:8.0f} names/s (median of {len(r.times_ns)}; {r.n} names)" for r in runs),
        f"ours / peer: {result['ratio_ours_to_peer']}x",
    ]
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
