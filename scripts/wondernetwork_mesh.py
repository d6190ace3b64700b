"""Write the WonderNetwork pings (../shared/data/latency/wondernetwork) as a landmark mesh for
``geowarden latency calibrate``: one CSV row per measured pair, the minimum RTT of the 24 h series.

The data stays in ../shared/data (site terms): write the mesh outside the checkout.

Usage::

    python scripts/wondernetwork_mesh.py [--data DIR] [--only NAME,NAME,...] > /tmp/mesh.csv
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "latency" / "wondernetwork"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    ap.add_argument("--data", type=Path, default=DATA, help="the directory of servers.csv and pings.csv")
    ap.add_argument("--only", default="", help="comma-separated server titles to keep (default: all)")
    args = ap.parse_args(argv)
    if not (args.data / "pings.csv").is_file():
        print(f"no pings.csv under {args.data}", file=sys.stderr)
        return 2
    with (args.data / "servers.csv").open(encoding="utf-8") as fh:
        servers = {int(r["id"]): r for r in csv.DictReader(fh)}
    keep = {t.strip() for t in args.only.split(",") if t.strip()}
    if keep:
        servers = {i: r for i, r in servers.items() if r["title"] in keep}
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(["a_lat", "a_lon", "b_lat", "b_lon", "rtt_ms", "a_name", "b_name"])
    with (args.data / "pings.csv").open(encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            a, b = servers.get(int(r["source"])), servers.get(int(r["destination"]))
            if a is None or b is None or a is b:
                continue
            out.writerow(
                [a["latitude"], a["longitude"], b["latitude"], b["longitude"], r["min"], a["title"], b["title"]]
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
