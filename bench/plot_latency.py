"""Plot RTT against great-circle distance for every WonderNetwork pair, with the bounds drawn.

    python bench/plot_latency.py                      # writes docs/img/rtt-vs-distance.png
    python bench/plot_latency.py --out /tmp/x.png

Needs matplotlib (a bench tool, not a runtime dependency). Pairs faster than 2/3 c (a listed
location must be wrong) are drawn in red. Lines: 2/3 c (the naive bound; the default adds 25 km),
153 km/ms (Weinberg et al. 2018's empirical speed, for comparison) and a typical calibrated
landmark (the median of the per-landmark speeds ``model.calibrate`` gives on this mesh).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import matplotlib as mpl

mpl.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from eval_latency import ROOT, load_mesh

from geowarden.latency import model as lm

OUT = ROOT / "docs" / "img" / "rtt-vs-distance.png"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="RTT vs distance plot")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    mesh = load_mesh("min")
    removed = {i for i, _ in lm.find_inconsistent(mesh.lat, mesh.lon, mesh.rtt)}
    cal = lm.calibrate(mesh.lat, mesh.lon, mesh.rtt, names=mesh.name)
    speeds = np.array([x.bound.speed_km_per_ms for x in cal.landmarks])
    iu = np.triu_indices(mesh.n, 1)
    rtt = np.fmin(mesh.rtt, mesh.rtt.T)[iu]
    dist = mesh.dist[iu]
    ok = ~np.isnan(rtt)
    fast = ok & (dist > np.asarray(lm.NAIVE.max_km(np.nan_to_num(rtt))))  # faster than light in fibre
    flagged = np.array([a in removed or b in removed for a, b in zip(*iu, strict=True)])
    fig, ax = plt.subplots(figsize=(10, 6.5), dpi=110)
    label = f"pairs ({(ok & ~fast).sum():,})"
    ax.scatter(dist[ok & ~fast], rtt[ok & ~fast], s=2, alpha=0.25, color="#3b6ea8", label=label, rasterized=True)
    ax.scatter(
        dist[fast],
        rtt[fast],
        s=14,
        color="#d62728",
        label=f"faster than 2/3 c: a listed location is wrong ({fast.sum()} pairs, "
        f"{(fast & flagged).sum()} with a landmark found inconsistent)",
    )
    d = np.linspace(0, 20000, 400)
    # a bound d <= v * rtt/2 + s, drawn as the smallest RTT allowed at distance d: rtt = 2 (d - s) / v
    ax.plot(
        d,
        2 * d / lm.FIBRE_KM_PER_MS,
        color="black",
        lw=1.6,
        label="2/3 c: 100 km per ms of RTT (naive; +25 km: default)",
    )
    ax.plot(
        d, 2 * d / 153.0, color="#7f7f7f", lw=1.2, ls=":", label="153 km/ms one way (Weinberg et al. 2018 empirical)"
    )
    med = float(np.median(speeds))
    ax.plot(
        d,
        np.maximum(2 * (d - 25.0) / med, 0),
        color="#2ca02c",
        lw=1.3,
        ls="-.",
        label=f"a typical calibrated landmark: {med:.0f} km/ms + 25 km (per landmark: "
        f"{speeds.min():.0f}-{speeds.max():.0f}; each bounds its own pairs only)",
    )
    ax.set_xlabel("great-circle distance between the listed locations (km)")
    ax.set_ylabel("minimum RTT over 24 h (ms)")
    ax.set_xlim(0, 20000)
    ax.set_ylim(0, 450)
    ax.set_title(
        f"RTT vs distance, WonderNetwork pings 2020-07-19/20, {ok.sum():,} server pairs\n"
        "a point below a line is faster than that bound allows",
        fontsize=11,
    )
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8, markerscale=3, framealpha=0.9)
    inset = ax.inset_axes((0.62, 0.08, 0.35, 0.35))
    near = ok & (dist < 1500)
    inset.scatter(dist[near & ~fast], rtt[near & ~fast], s=3, alpha=0.4, color="#3b6ea8", rasterized=True)
    inset.scatter(dist[near & fast], rtt[near & fast], s=14, color="#d62728")
    dd = np.linspace(0, 1500, 100)
    inset.plot(dd, 2 * dd / lm.FIBRE_KM_PER_MS, color="black", lw=1.2)
    inset.plot(dd, 2 * dd / 153.0, color="#7f7f7f", lw=1.2, ls=":")
    inset.plot(dd, np.maximum(2 * (dd - 25.0) / med, 0), color="#2ca02c", lw=1.2, ls="-.")
    inset.set_xlim(0, 1500)
    inset.set_ylim(0, 40)
    inset.set_title("below 1,500 km", fontsize=8)
    inset.tick_params(labelsize=7)
    inset.grid(alpha=0.3)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
