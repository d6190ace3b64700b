"""Plot honest-claim rejection, inconclusive rate and false-claim catch rate against landmark count.

python bench/eval_latency.py --json > /tmp/lat.json
python bench/plot_latency_rates.py /tmp/lat.json     # writes docs/img/latency-vs-landmarks.png
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib as mpl

mpl.use("Agg")
import matplotlib.pyplot as plt

OUT = Path(__file__).resolve().parent.parent / "docs" / "img" / "latency-vs-landmarks.png"


def main() -> int:
    claims = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))["claims"]
    doc = claims["wonder_network"]
    before = claims.get("without_ceiling", {})
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.8), dpi=110)
    counts = ["10", "20", "40", "60", "100"]
    x = [int(c) for c in counts]
    for strategy, style in (("random", "-"), ("farthest", "--")):
        for side, colour in (("in_sample", "#999999"), ("held_out", "#c0392b")):
            rows = [doc[f"{c}/{strategy}"][side] for c in counts]
            label = f"{strategy}, {side.replace('_', '-')}"
            ax1.plot(x, [100 * r["honest_rejected"] for r in rows], style, color=colour, marker="o", label=label)
            ax2.plot(x, [100 * r["false_caught"] for r in rows], style, color=colour, marker="o", label=label)
    if before:  # the rule without the expected-RTT ceiling, held-out, random landmarks
        rows = [before[f"{c}/random/report"] for c in counts]
        ax2.plot(x, [100 * r["false_caught"] for r in rows], ":", color="#c0392b", marker="x",
                 label="random, held-out, without ceiling")  # fmt: skip
    ax1.axhline(1.0, color="black", lw=0.8, ls=":")
    ax2.axhline(95.0, color="black", lw=0.8, ls=":")
    ax1.set(xlabel="landmarks", ylabel="true claims rejected (%)", title="Honest claims rejected (goal <= 1 %)")
    ax2.set(xlabel="landmarks", ylabel="false claims >= 1,500 km caught (%)", title="False claims caught (goal 95 %)")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUT)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
