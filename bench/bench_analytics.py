"""Batch analytics speed: N simulated events through every analysis on DuckDB (``geowarden analyze``).

    python bench/bench_analytics.py [--events 1000000,3000000,10000000] [--snapshot DIR]
                                    [--scenario scale] [--format parquet|jsonl.gz] [--json]

For each size the events are generated once with the simulator's Python API (``build`` +
``write_parquet``; cached under ``--cache``, default ``$TMPDIR/geowarden-bench-analytics``, so
later runs skip generation), then analysed in a fresh Python process (so each peak RSS is its
own): wall seconds per phase, CPU seconds per phase (all threads of the process; on a shared
machine wall time also measures the neighbours, CPU time does not), events/s, peak RSS
(``resource.getrusage``), the load average before and after. The last table shows how time grows
from the smallest size to the largest (time ratio / size ratio: 1.0 is linear).

``--scenario hydra --events 16000000`` is the hydra family (``--seed``) scaled to 25,000 accounts,
the size of the public account of the February 2026 campaigns.

Target (../shared/DESIGN.md, the issue): 10 million events through all analyses in under 60 s on
this 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from geowarden.analytics.run import analyze
from geowarden.intel.snapshot import Snapshot

DEFAULT_SIZES = "1000000,3000000,10000000"


def generate(scenario: str, n: int, seed: int, snapshot: Snapshot, cache: Path, fmt: str) -> Path:
    """The events file for (scenario, n, seed), made once."""
    from geowarden.simulate.accounts import write_accounts  # noqa: PLC0415
    from geowarden.simulate.scenario import build, load_scenario, write_jsonl, write_parquet  # noqa: PLC0415

    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"{scenario}-{n}-seed{seed}-{snapshot.id}.{fmt}"
    if path.exists():
        return path
    t0 = time.perf_counter()
    scen = load_scenario(scenario, seed)
    if scenario == "hydra":  # the hydra family at the public account's scale: 25,000 accounts
        scen = _scaled(scen, HYDRA_ACCOUNTS)
    gen = build(scen, n, seed, snapshot)
    if scenario == "hydra":  # its networks are linked by the accounts table (cards, creation waves)
        write_accounts(gen.accounts, accounts_of(path))
    tmp = path.with_name(path.name + ".part")
    if fmt == "parquet":
        write_parquet(gen, tmp)
    else:
        write_jsonl(gen, tmp.with_suffix(".gz"))
        tmp.with_suffix(".gz").rename(tmp)
    tmp.rename(path)
    print(f"generated {n:,} events in {time.perf_counter() - t0:.1f} s -> {path}", file=sys.stderr)
    return path


HYDRA_ACCOUNTS = 25_000


def _scaled(scen: Any, accounts: int) -> Any:
    """``scen`` with every entry's accounts multiplied so that they total ``accounts``."""
    import dataclasses  # noqa: PLC0415

    factor = accounts / sum(e.accounts for e in scen.entries)
    entries = tuple(dataclasses.replace(e, accounts=max(1, round(e.accounts * factor))) for e in scen.entries)
    return dataclasses.replace(scen, entries=entries)


def accounts_of(path: Path) -> Path:
    """The accounts table generated with an events file (the hydra family has one)."""
    return path.with_name(path.name.split(".")[0] + ".accounts.parquet")


def run_one(path: Path, snapshot: Path) -> dict[str, Any]:
    """Analyse one file (with its accounts table when there is one) in this process; figures as a dict."""
    snap = Snapshot.open(snapshot)
    load_before = os.getloadavg()[0]
    accounts = accounts_of(path) if accounts_of(path).exists() else None
    t0 = time.perf_counter()
    result = analyze([path], snapshot=snap, accounts=accounts)
    wall = time.perf_counter() - t0
    use = resource.getrusage(resource.RUSAGE_SELF)
    st = result.stats
    return {
        "file": str(path),
        "events": st["events"],
        "seconds": st["seconds"],
        "cpu_seconds": st["cpu_seconds"],
        "wall": round(wall, 2),
        "events_per_second": round(st["events"] / wall),
        "peak_rss_mb": round(use.ru_maxrss / 1024),
        "findings": st["findings_by_kind"],
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", default=DEFAULT_SIZES, help="comma-separated sizes")
    ap.add_argument("--scenario", default="scale")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--format", choices=("parquet", "jsonl.gz"), default="parquet")
    ap.add_argument("--snapshot", type=Path, default=None, help="default: GEOWARDEN_SNAPSHOT or the current one")
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "geowarden-bench-analytics")
    ap.add_argument("--json", action="store_true", help="one JSON document on stdout")
    ap.add_argument("--run-one", type=Path, help=argparse.SUPPRESS)  # internal: analyse one file
    args = ap.parse_args()
    if args.run_one is not None:
        print(json.dumps(run_one(args.run_one, args.snapshot)))
        return
    from geowarden.simulate.scenario import resolve_snapshot  # noqa: PLC0415

    snap = resolve_snapshot(args.snapshot)
    sizes = [int(x) for x in args.events.split(",") if x.strip()]
    out = []
    for n in sizes:
        path = generate(args.scenario, n, args.seed, snap, args.cache, args.format)
        cmd = [sys.executable, __file__, "--run-one", str(path), "--snapshot", str(snap.path)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            sys.exit(f"analysis of {n:,} events failed:\n{proc.stderr[-2000:]}")
        fig = json.loads(proc.stdout.strip().splitlines()[-1])
        out.append(fig)
        _print_one(fig)
    _print_growth(out)
    if args.json:
        print(json.dumps({"scenario": args.scenario, "format": args.format, "runs": out}))


def _print_one(fig: dict[str, Any]) -> None:
    err = sys.stderr
    n = fig["events"]
    print(
        f"\n{n:>12,} events  wall {fig['wall']:7.1f} s  {fig['events_per_second']:>10,} events/s  "
        f"peak RSS {fig['peak_rss_mb']:,} MB  load average {fig['load_average'][0]} -> {fig['load_average'][1]}",
        file=err,
    )
    print(f"  {'phase':<10} {'wall s':>8} {'cpu s':>8}", file=err)
    secs, cpu = fig["seconds"], fig["cpu_seconds"]
    loading = [k for k in ("read", "lookup", "validate", "accounts") if k in secs]
    rows = [("load", sum(secs[k] for k in loading), cpu.get("load"))]
    rows += [(k, v, cpu.get(k)) for k, v in secs.items() if k not in loading]
    for phase, wall, used in rows:
        used_text = f"{used:8.1f}" if isinstance(used, (int, float)) else ""
        print(f"  {phase:<10} {wall:8.1f} {used_text}", file=err)
    print(f"  findings: {fig['findings']}", file=err)


def _print_growth(figs: list[dict[str, Any]]) -> None:
    if len(figs) < 2:
        return
    base = figs[0]
    print(f"\ngrowth from {base['events']:,} events (time ratio / size ratio; 1.0 = linear):", file=sys.stderr)
    for fig in figs[1:]:
        k = fig["events"] / base["events"]
        wall = fig["wall"] / base["wall"]
        cpu = fig["cpu_seconds"]["total"] / max(base["cpu_seconds"]["total"], 1e-9)
        line = f"  {fig['events']:>12,} events: x{k:.1f} size, wall x{wall:.1f} ({wall / k:.2f}), "
        print(line + f"cpu x{cpu:.1f} ({cpu / k:.2f})", file=sys.stderr)


if __name__ == "__main__":
    main()
