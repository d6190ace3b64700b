"""Simulator speed: events/s for generation alone, and with JSON Lines (gzip) and Parquet output.

    python bench/bench_simulate.py [--events 10000000] [--jsonl-events 1000000] [--snapshot DIR]
                                   [--scenario scale] [--analytics-events 10000000]

Without --snapshot, the current snapshot under GEOWARDEN_HOME (or the default one) is used.
Prints one line per measurement: the ``--scenario`` (``scale``: flat in time), then the
``analytics`` scenario (time profiles, prompt fingerprints, the accounts table; 0 skips it).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from geowarden.intel.snapshot import Snapshot
from geowarden.simulate.accounts import write_accounts
from geowarden.simulate.scenario import build, have_pyarrow, load_scenario, resolve_snapshot, write_jsonl, write_parquet


def measure(name: str, events: int, snap: Snapshot, tmp: Path, *, accounts: bool = False) -> None:
    scen = load_scenario(name)
    t0 = time.perf_counter()
    gen = build(scen, events, 1, snap)
    dt = time.perf_counter() - t0
    print(f"{name:<10} generate  {events:>11,} events  {dt:7.2f} s  {events / dt:>12,.0f} events/s", flush=True)
    if have_pyarrow():
        out = tmp / f"{name}.parquet"
        t1 = time.perf_counter()
        write_parquet(gen, out)
        dw = time.perf_counter() - t1
        print(
            f"{name:<10} parquet   {events:>11,} events  {dw:7.2f} s  {events / dw:>12,.0f} events/s (write), "
            f"{events / (dt + dw):,.0f} events/s end to end, {out.stat().st_size / 1e6:,.0f} MB",
            flush=True,
        )
    else:
        print(f"{name:<10} parquet   skipped (pyarrow not installed)")
    if accounts:
        out = tmp / f"{name}-accounts.parquet" if have_pyarrow() else tmp / f"{name}-accounts.jsonl.gz"
        t2 = time.perf_counter()
        write_accounts(gen.accounts, out)
        da = time.perf_counter() - t2
        print(f"{name:<10} accounts  {len(gen.accounts):>11,} rows    {da:7.2f} s  ({out.suffix})", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--jsonl-events", type=int, default=1_000_000)
    ap.add_argument("--analytics-events", type=int, default=10_000_000)
    ap.add_argument("--snapshot", type=Path, default=None)
    ap.add_argument("--scenario", default="scale")
    args = ap.parse_args()
    snap = resolve_snapshot(args.snapshot)
    with tempfile.TemporaryDirectory() as tmp:
        measure(args.scenario, args.events, snap, Path(tmp))
        if args.analytics_events:
            measure("analytics", args.analytics_events, snap, Path(tmp), accounts=True)
        n = args.jsonl_events
        small = build(load_scenario(args.scenario), n, 1, snap)
        out = Path(tmp) / "logs.jsonl.gz"
        t2 = time.perf_counter()
        write_jsonl(small, out)
        dj = time.perf_counter() - t2
        print(
            f"{args.scenario:<10} jsonl.gz  {n:>11,} events  {dj:7.2f} s  {n / dj:>12,.0f} events/s (write), "
            f"{out.stat().st_size / 1e6:,.0f} MB"
        )


if __name__ == "__main__":
    main()
