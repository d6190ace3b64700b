"""Simulator speed: events/s for generation alone, and with JSON Lines (gzip) and Parquet output.

    python bench/bench_simulate.py [--events 10000000] [--jsonl-events 1000000] [--snapshot DIR]

Without --snapshot, the current snapshot under GEOWARDEN_HOME (or the default one) is used.
Prints one line per measurement.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from geowarden.simulate.scenario import build, have_pyarrow, load_scenario, resolve_snapshot, write_jsonl, write_parquet


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--jsonl-events", type=int, default=1_000_000)
    ap.add_argument("--snapshot", type=Path, default=None)
    ap.add_argument("--scenario", default="scale")
    args = ap.parse_args()
    snap = resolve_snapshot(args.snapshot)
    scen = load_scenario(args.scenario)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        gen = build(scen, args.events, 1, snap)
        dt = time.perf_counter() - t0
        print(f"generate  {args.events:>11,} events  {dt:7.2f} s  {args.events / dt:>12,.0f} events/s")
        if have_pyarrow():
            out = Path(tmp) / "logs.parquet"
            t1 = time.perf_counter()
            write_parquet(gen, out)
            dw = time.perf_counter() - t1
            print(
                f"parquet   {args.events:>11,} events  {dw:7.2f} s  {args.events / dw:>12,.0f} events/s (write), "
                f"{args.events / (dt + dw):,.0f} events/s end to end, {out.stat().st_size / 1e6:,.0f} MB"
            )
        else:
            print("parquet   skipped (pyarrow not installed)")
        n = args.jsonl_events
        small = build(scen, n, 1, snap)
        out = Path(tmp) / "logs.jsonl.gz"
        t2 = time.perf_counter()
        write_jsonl(small, out)
        dj = time.perf_counter() - t2
        print(
            f"jsonl.gz  {n:>11,} events  {dj:7.2f} s  {n / dj:>12,.0f} events/s (write), "
            f"{out.stat().st_size / 1e6:,.0f} MB"
        )


if __name__ == "__main__":
    main()
