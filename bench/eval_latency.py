"""Evaluate latency location verification on real pings (../shared/data/latency).

What it measures (docs/latency.md has the method and the results):

1. **Landmark consistency** of the whole WonderNetwork mesh: which servers' listed locations are
   physically impossible (``model.find_inconsistent`` at 2/3 c).
2. **Claims** (``latency_claims.py``): landmark subsets of 10, 20, 40, 60, 100 servers (random and
   farthest-point, ``--seeds`` draws each) and all (leave-one-out); clients dealt once into a
   tuning half and a reporting half, the landmarks calibrated on the landmarks + tuning clients
   only; true and false (>= 1,500 km) point and country claims; true claims rejected,
   inconclusive, false claims caught, in-sample and held-out side by side. ``--tune`` searches
   the rule's parameters on the tuning half. **Drift**: the same rule on the 2025 AWS
   inter-region medians.
3. **Tunnel detector** on simulated sessions built from real pings with last-mile jitter:
   honest clients (client -> PoP) and TCP-terminating tunnels (client -> exit -> PoP).

    python bench/eval_latency.py                 # ~75 s
    python bench/eval_latency.py --json > /tmp/lat.json && python bench/plot_latency_rates.py /tmp/lat.json
    python bench/eval_latency.py --tune          # + the parameter search on the tuning half
    python bench/eval_latency.py --inner 7 --inner 8   # the rule on the tuning half only
    python bench/eval_latency.py --inner 7 --inner 8 --set ceiling_trim=0.5   # a candidate rule there
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import datetime as dt
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import latency_claims as lc
import numpy as np
import numpy.typing as npt
import pycountry

from geowarden.latency import model as lm
from geowarden.latency.rule import DEFAULT_TOLERANCE
from geowarden.latency.tunnel import DEFAULT_CONFIG, TunnelConfig, tunnel_gap

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("GEOWARDEN_BENCH_DATA", ROOT.parent / "shared" / "data"))
WN = DATA / "latency" / "wondernetwork"
FALSE_KM = 1500.0
SEED = 20260901
#: Ceiling settings searched on the tuning half (``--tune``); weight 0 is the rule without a ceiling.
#: Weights stop at ``reject_base`` (0.5) by design: one landmark's ceiling alone must never reject.
CEILING_GRID: dict[str, list[float]] = {
    "ceiling_weight": [0.0, 0.25, 0.5],
    "ceiling_severity_ms": [100.0, 200.0],
    "ceiling_reach_km": [1000.0, 2000.0],
    "ceiling_trim": [0.0, 0.25],
}
F64 = npt.NDArray[np.float64]

# WonderNetwork country names that pycountry does not look up as written.
COUNTRY_FIX = {
    "Turkey": "TR",
    "Russia": "RU",
    "South Korea": "KR",
    "Vietnam": "VN",
    "Taiwan": "TW",
    "Moldova": "MD",
    "Iran": "IR",
}


@dataclass
class Mesh:
    ids: list[int]
    name: list[str]
    country: list[str]  # ISO alpha-2
    lat: F64
    lon: F64
    rtt: F64  # rtt[p, c]: p pinged c (min or avg), NaN if unmeasured; filled from c -> p if missing
    jitter_mean: F64  # avg - min
    jitter_sd: F64  # mdev
    dist: F64

    @property
    def n(self) -> int:
        return len(self.ids)


def _iso(name: str) -> str:
    if name in COUNTRY_FIX:
        return COUNTRY_FIX[name]
    try:
        return str(pycountry.countries.lookup(name).alpha_2)
    except LookupError:
        return str(pycountry.countries.search_fuzzy(name)[0].alpha_2)


def load_mesh(stat: str = "min", data: Path = WN) -> Mesh:
    with (data / "servers.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    ids = [int(r["id"]) for r in rows]
    pos = {i: k for k, i in enumerate(ids)}
    n = len(ids)
    rtt = np.full((n, n), np.nan)
    jm = np.full((n, n), np.nan)
    js = np.full((n, n), np.nan)
    with (data / "pings.csv").open(encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            s, d = int(r["source"]), int(r["destination"])
            if s == d or s not in pos or d not in pos:
                continue
            a, b = pos[s], pos[d]
            rtt[a, b] = float(r[stat])
            jm[a, b] = float(r["avg"]) - float(r["min"])
            js[a, b] = float(r["mdev"])
    for m in (rtt, jm, js):
        fill = np.isnan(m)
        m[fill] = m.T[fill]
    lat = np.array([float(r["latitude"]) for r in rows])
    lon = np.array([float(r["longitude"]) for r in rows])
    return Mesh(
        ids,
        [r["title"] for r in rows],
        [_iso(r["country"]) for r in rows],
        lat,
        lon,
        rtt,
        jm,
        js,
        lm.pair_distances(lat, lon),
    )


# ---------------------------------------------------------------- tunnel simulation

#: Last-mile profiles: (share, base ms lo-hi, jitter mean ms, jitter sd ms, spike prob, spike ms lo-hi).
PROFILES: dict[str, tuple[float, tuple[float, float], float, float, float, tuple[float, float]]] = {
    "wired": (0.30, (0.3, 3.0), 0.3, 0.3, 0.0, (0.0, 0.0)),
    "wifi": (0.33, (1.0, 8.0), 2.0, 3.0, 0.03, (20.0, 150.0)),
    "lte": (0.20, (15.0, 45.0), 10.0, 10.0, 0.05, (50.0, 300.0)),
    "5g": (0.06, (8.0, 25.0), 5.0, 5.0, 0.03, (30.0, 150.0)),
    "starlink": (0.09, (20.0, 45.0), 8.0, 6.0, 0.15, (15.0, 80.0)),
    "geo-satellite": (0.02, (480.0, 650.0), 30.0, 30.0, 0.05, (100.0, 500.0)),
}


def _gamma(rng: np.random.Generator, mean: float, sd: float, size: int) -> F64:
    if mean <= 0.0 or sd <= 0.0:
        return np.full(size, max(mean, 0.0))
    k = min((mean / sd) ** 2, 100.0)
    return rng.gamma(k, mean / k, size)


def _last_mile(rng: np.random.Generator, profile: str, base: float, size: int) -> F64:
    _, _, jm, jsd, p_spike, (s_lo, s_hi) = PROFILES[profile]
    x = base + _gamma(rng, jm, jsd, size)
    spikes = rng.random(size) < p_spike
    x[spikes] += rng.uniform(s_lo, s_hi, int(spikes.sum()))
    return x


def _path(rng: np.random.Generator, mesh: Mesh, a: int, b: int, size: int) -> F64:
    """RTT samples on a real path: its minimum plus gamma jitter with the series' mean and sd."""
    base = float(np.fmin(mesh.rtt[a, b], mesh.rtt[b, a]))
    return base + _gamma(
        rng, float(np.nan_to_num(mesh.jitter_mean[a, b])), float(np.nan_to_num(mesh.jitter_sd[a, b])), size
    )


def _app_overhead(rng: np.random.Generator, size: int) -> F64:
    x = 0.3 + rng.exponential(1.0, size)
    busy = rng.random(size) < 0.05
    x[busy] += rng.uniform(5.0, 60.0, int(busy.sum()))
    return x


def simulate_sessions(
    mesh: Mesh, n: int, n_tcp: int, n_app: int, seed: int, bad: set[int]
) -> tuple[list[tuple[str, F64, F64]], list[tuple[float, float, F64, F64]]]:
    """Honest sessions (profile, tcp, app) and tunnel sessions (far-leg ms, client-exit km, tcp, app)."""
    rng = np.random.default_rng(seed)
    good = [i for i in range(mesh.n) if i not in bad]
    names = list(PROFILES)
    shares = np.array([PROFILES[p][0] for p in names])
    honest: list[tuple[str, F64, F64]] = []
    tunnels: list[tuple[float, float, F64, F64]] = []
    while len(honest) < n:
        c, p = (int(x) for x in rng.choice(good, 2, replace=False))
        if np.isnan(mesh.rtt[p, c]):
            continue
        prof = names[int(rng.choice(len(names), p=shares / shares.sum()))]
        base = float(rng.uniform(*PROFILES[prof][1]))
        tcp = _path(rng, mesh, p, c, n_tcp) + _last_mile(rng, prof, base, n_tcp)
        app = _path(rng, mesh, p, c, n_app) + _last_mile(rng, prof, base, n_app) + _app_overhead(rng, n_app)
        honest.append((prof, tcp, app))
    while len(tunnels) < n:
        c, e, p = (int(x) for x in rng.choice(good, 3, replace=False))
        if np.isnan(mesh.rtt[e, p]) or np.isnan(mesh.rtt[c, e]):
            continue
        prof = names[int(rng.choice(len(names), p=shares / shares.sum()))]
        base = float(rng.uniform(*PROFILES[prof][1]))
        tcp = _path(rng, mesh, e, p, n_tcp) + rng.exponential(0.05, n_tcp)
        far = _path(rng, mesh, c, e, n_app) + _last_mile(rng, prof, base, n_app)
        app = _path(rng, mesh, e, p, n_app) + far + _app_overhead(rng, n_app) + rng.uniform(0.1, 2.0, n_app)
        far_leg = float(np.fmin(mesh.rtt[c, e], mesh.rtt[e, c])) + base
        tunnels.append((far_leg, float(mesh.dist[c, e]), tcp, app))
    return honest, tunnels


def _flag(tcp: F64, app: F64, cfg: TunnelConfig) -> bool:
    tmin, amin = float(tcp.min()), float(app.min())
    spread = float(np.median(tcp)) - tmin
    return amin - tmin > max(cfg.abs_ms, cfg.rel * tmin) + cfg.spread_factor * spread


def evaluate_tunnels(mesh: Mesh, n: int, n_tcp: int, n_app: int, bad: set[int], cfg: TunnelConfig) -> dict[str, Any]:
    honest, tunnels = simulate_sessions(mesh, n, n_tcp, n_app, SEED, bad)
    # the library's own function decides, sample for sample
    fp: dict[str, list[int]] = {}
    for prof, tcp, app in honest:
        flagged = tunnel_gap(list(tcp), list(app), cfg).tunnel
        assert flagged == _flag(tcp, app, cfg)
        x = fp.setdefault(prof, [0, 0])
        x[0] += flagged
        x[1] += 1
    total_fp = sum(v[0] for v in fp.values())
    buckets = ((0, 10), (10, 25), (25, 50), (50, 100), (100, 1e9))
    by_leg: dict[str, list[int]] = {f"{lo}-{hi if hi < 1e9 else 'inf'} ms": [0, 0] for lo, hi in buckets}
    far_km = [0, 0]
    for leg, km, tcp, app in tunnels:
        hit = tunnel_gap(list(tcp), list(app), cfg).tunnel
        for lo, hi in buckets:
            if lo <= leg < hi:
                b = by_leg[f"{lo}-{hi if hi < 1e9 else 'inf'} ms"]
                b[0] += hit
                b[1] += 1
        if km >= FALSE_KM:
            far_km[0] += hit
            far_km[1] += 1

    def rate(x: list[int]) -> dict[str, Any]:
        return {"rate": round(x[0] / x[1], 5) if x[1] else None, "n": x[1]}

    return {
        "config": {"abs_ms": cfg.abs_ms, "rel": cfg.rel, "spread_factor": cfg.spread_factor},
        "samples": {"tcp": n_tcp, "app": n_app},
        "honest_false_positive": rate([total_fp, len(honest)]),
        "honest_false_positive_by_profile": {k: rate(v) for k, v in fp.items()},
        "tunnel_detected_exit_ge_1500km": rate(far_km),
        "tunnel_detected_all": rate([sum(v[0] for v in by_leg.values()), len(tunnels)]),
        "tunnel_detected_by_far_leg": {k: rate(v) for k, v in by_leg.items()},
    }


# ---------------------------------------------------------------- output


def _pct(x: dict[str, Any]) -> str:
    return "-" if x["rate"] is None else f"{100 * x['rate']:.2f} % (n={x['n']})"


def _rate(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f} %"


def cell(d: dict[str, Any]) -> str:
    return (
        f"{_rate(d['honest_rejected'])} / {_rate(d['honest_inconclusive'])} / "
        f"{_rate(d['false_caught'])} (n={d['n_honest']}, {d['n_false']})"
    )


def mobile_section(cases: list[lc.Case], tol: Any, no_ceiling: Any, out: Any) -> dict[str, Any]:
    """True claims on a simulated mobile last mile, with and without the ceiling."""
    mobile = {"with_ceiling": lc.score_last_mile(cases, tol), "without_ceiling": lc.score_last_mile(cases, no_ceiling)}
    doc = {k: {f"{n[2]}/{n[1]}/{n[0]}": v.to_dict() for n, v in m.items()} for k, m in mobile.items()}
    print("\ntrue claims on a mobile last mile (15-45 ms shared, per-landmark jitter and 5 % spikes), "
          "true rejected / inconclusive, in-sample | held-out, with the ceiling / without:", file=out)  # fmt: skip
    for n in lc.COUNTS:
        strategy = "all" if n == "all" else "random"
        cells = []
        for key in ("with_ceiling", "without_ceiling"):
            for side in ("tune", "report"):
                d = mobile[key][(side, strategy, str(n))].to_dict()
                cells.append(f"{_rate(d['honest_rejected'])} / {_rate(d['honest_inconclusive'])}")
        print(f"  {n!s:<5} {strategy:<7} " + " | ".join(cells), file=out)
    return doc


def claims_section(args: argparse.Namespace, mesh: Mesh, out: Any) -> dict[str, Any]:
    """Landmark subsets x strategies x seeds, tuning half vs reporting half, and the AWS drift check."""
    t0 = time.perf_counter()
    cases = lc.wn_cases(mesh, args.seeds)
    tol = DEFAULT_TOLERANCE
    doc: dict[str, Any] = {"tolerance": dataclasses.asdict(tol), "cases": len(cases)}
    if args.tune:
        # severity >= 800 km: one disc alone must miss by more than 400 km to reject (a design
        # constraint, not a tuned value: one misplaced landmark must not reject a city's clients)
        disc_grid = {"severity_km": [800, 1200], "reject_base": [0.5, 0.7], "reject_share": [0.0, 0.0025, 0.005]}
        # the disc rule first (no ceiling), then the ceiling's weight and severity on top of it
        tuned, tried = lc.tune(cases, disc_grid, dataclasses.replace(tol, ceiling_weight=0.0))
        tuned_c, tried_c = lc.tune(cases, CEILING_GRID, dataclasses.replace(tuned, ceiling_weight=0.0))
        doc["tuning"] = {"chosen": dataclasses.asdict(tuned_c), "tried": tried, "tried_ceiling": tried_c}
        print(
            f"tuning half: chosen {tuned_c} (disc grid of {len(tried)}, {sum(t['ok'] for t in tried)} met the "
            f"constraints; ceiling grid of {len(tried_c)}, {sum(t['ok'] for t in tried_c)} met them)",
            file=out,
        )
        for t in tried_c:
            print(f"  ceiling {t}", file=out)
    no_ceiling = dataclasses.replace(tol, ceiling_weight=0.0)
    before = lc.score(cases, no_ceiling)
    doc["without_ceiling"] = {
        f"{k[2]}/{k[1]}/{k[0]}": v.to_dict() for k, v in before.items() if k[1] == "random" or k[1] == "all"
    }
    print(f"\nwithout the expected-RTT ceiling ({no_ceiling}), random landmarks and all:", file=out)
    for n in lc.COUNTS:
        strategy = "all" if n == "all" else "random"
        t, r = before[("tune", strategy, str(n))].to_dict(), before[("report", strategy, str(n))].to_dict()
        print(f"  {n!s:<10} {strategy:<9} {cell(t):<72} {cell(r)}", file=out)
    tallies = lc.score(cases, tol)
    rows: dict[str, Any] = {}
    print(f"\nclaims, rule {tol} ({len(cases)} client x landmark-set cases, {args.seeds} seeds):", file=out)
    head = "true rejected / inconclusive / false caught"
    print(
        f"  {'landmarks':<10} {'strategy':<9} {'in-sample (tuning half): ' + head:<72} held-out (reporting half)",
        file=out,
    )
    for n in lc.COUNTS:
        for strategy in ("random", "farthest", "all"):
            key_t, key_r = ("tune", strategy, str(n)), ("report", strategy, str(n))
            if key_t not in tallies:
                continue
            t, r = tallies[key_t].to_dict(), tallies[key_r].to_dict()
            rows[f"{n}/{strategy}"] = {"in_sample": t, "held_out": r}
            print(f"  {n!s:<10} {strategy:<9} {cell(t):<72} {cell(r)}", file=out)
    doc["wonder_network"] = rows
    doc["mobile_last_mile"] = mobile_section(cases, tol, no_ceiling, out)
    countries = lc.score_countries(cases, tol, mesh)
    doc["wonder_network_countries"] = {f"{k[2]}/{k[1]}/{k[0]}": v.to_dict() for k, v in countries.items()}
    print("\ncountry claims (own country true; countries >= 1,500 km away false), same cases:", file=out)
    for n in lc.COUNTS:
        for strategy in ("random", "farthest", "all"):
            if ("tune", strategy, str(n)) not in countries:
                continue
            t = countries[("tune", strategy, str(n))].to_dict()
            r = countries[("report", strategy, str(n))].to_dict()
            print(f"  {n!s:<10} {strategy:<9} {cell(t):<72} {cell(r)}", file=out)
    aws = lc.load_aws(DATA / "latency" / "aws-interregion")
    drift = lc.score(lc.aws_cases(aws, args.seeds), tol)
    doc["drift_aws_2025"] = {f"{k[2]}/{k[1]}": v.to_dict() for k, v in drift.items()}
    print("\ndrift: the same rule on AWS inter-region medians 2025 (32 regions, each the client of the others):",
          file=out)  # fmt: skip
    for k, v in sorted(drift.items(), key=lambda kv: str(kv[0])):
        d = v.to_dict()
        print(f"  {k[2]:<5} {k[1]:<7} true rejected {_rate(d['honest_rejected'])}, inconclusive "
              f"{_rate(d['honest_inconclusive'])}, false caught {_rate(d['false_caught'])} "
              f"(n={d['n_honest']}, {d['n_false']})", file=out)  # fmt: skip
    doc["elapsed_s"] = round(time.perf_counter() - t0, 1)
    return doc


def inner_section(args: argparse.Namespace, mesh: Mesh, out: Any) -> dict[str, Any]:
    """The default rule on the inner split of the tuning half (``latency_claims.wn_cases``): the
    part that calibrates against the part scored as held-out. The reporting half is not read."""
    tol = dataclasses.replace(DEFAULT_TOLERANCE, **args.set)
    doc: dict[str, Any] = {"tolerance": dataclasses.asdict(tol)}
    if args.set:
        print(f"candidate rule: {tol}", file=out)
    for seed in args.inner:
        cases = lc.wn_cases(mesh, args.seeds, inner_seed=seed)
        tallies, mobile = lc.score(cases, tol), lc.score_last_mile(cases, tol)
        doc[str(seed)] = {f"{k[2]}/{k[1]}/{k[0]}": v.to_dict() for k, v in tallies.items()}
        doc[f"{seed}/mobile"] = {f"{k[2]}/{k[1]}/{k[0]}": v.to_dict() for k, v in mobile.items()}
        print(f"\ninner split {seed} of the tuning half: true rejected / inconclusive / false caught, "
              "calibrating part (A) | scored as held-out (B); mobile last mile: true rejected / inconclusive",
              file=out)  # fmt: skip
        for n in lc.COUNTS:
            for strategy in ("random", "farthest", "all"):
                if ("A", strategy, str(n)) not in tallies:
                    continue
                a, b = tallies[("A", strategy, str(n))].to_dict(), tallies[("B", strategy, str(n))].to_dict()
                m = mobile.get(("B", strategy, str(n)))
                mb = {} if m is None else m.to_dict()
                mob = f"  mobile B {_rate(mb['honest_rejected'])} / {_rate(mb['honest_inconclusive'])}" if mb else ""
                print(f"  {n!s:<5} {strategy:<9} {cell(a):<60} {cell(b)}{mob}", file=out)
    return doc


def candidate(ap: argparse.ArgumentParser, items: list[str], inner: bool) -> dict[str, float]:
    """The ``--set FIELD=VALUE`` changes to the default rule, checked (a usage error otherwise)."""
    fields = [f.name for f in dataclasses.fields(DEFAULT_TOLERANCE)]
    changes: dict[str, float] = {}
    for item in items:
        key, _, value = item.partition("=")
        if key not in fields or not value:
            ap.error(f"--set {item}: expected FIELD=VALUE with FIELD one of {', '.join(fields)}")
        try:
            changes[key] = int(value) if key == "min_discs" else float(value)
        except ValueError:
            ap.error(f"--set {item}: {value!r} is not {'an integer' if key == 'min_discs' else 'a number'}")
    if changes and not inner:
        ap.error("--set scores a candidate on the inner split only: add --inner SEED")
    try:
        dataclasses.replace(DEFAULT_TOLERANCE, **changes)
    except ValueError as e:
        ap.error(f"--set: {e}")
    return changes


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    ap.add_argument("--seeds", type=int, default=5, help="landmark draws per count and strategy")
    ap.add_argument("--tune", action="store_true", help="also search the rule's parameters on the tuning half")
    ap.add_argument("--stat", choices=["min", "avg"], default="min", help="which RTT of the 24 h series a PoP sees")
    ap.add_argument("--sessions", type=int, default=20000, help="simulated sessions per class (tunnel detector)")
    ap.add_argument("--tcp-samples", type=int, default=3)
    ap.add_argument("--app-samples", type=int, default=5)
    ap.add_argument(
        "--inner",
        type=int,
        action="append",
        metavar="SEED",
        help="only the inner split of the tuning half, dealt by SEED (repeatable): choose rules here",
    )
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="with --inner: score a candidate rule, the default Tolerance with FIELD changed (repeatable)",
    )
    ap.add_argument("--json", action="store_true", help="one JSON document on stdout (the text goes to stderr)")
    args = ap.parse_args(argv)
    args.set = candidate(ap, args.set, bool(args.inner))
    out = sys.stderr if args.json else sys.stdout
    t0 = time.perf_counter()
    if not WN.is_dir():
        print(f"shared data not found at {WN}", file=sys.stderr)
        return 2
    mesh = load_mesh(args.stat)
    removed = lm.find_inconsistent(mesh.lat, mesh.lon, mesh.rtt)
    bad = {i for i, _ in removed}
    print(f"geowarden latency evaluation, {dt.date.today().isoformat()}", file=out)
    print(f"data: {WN} ({mesh.n} servers, RTT = {args.stat} of the 24 h series, 2020-07-19/20)", file=out)
    print(
        "inconsistent landmarks (full mesh, 2/3 c): " + ", ".join(f"{mesh.name[i]} ({k} pairs)" for i, k in removed),
        file=out,
    )
    doc: dict[str, Any] = {
        "date": dt.date.today().isoformat(),
        "data": {"servers": mesh.n, "stat": args.stat, "source": "WonderNetwork pings 2020-07-19/20"},
        "inconsistent_landmarks": [{"name": mesh.name[i], "violations": k} for i, k in removed],
    }
    if args.inner:
        doc["inner"] = inner_section(args, mesh, out)
        if args.json:
            sys.stdout.write(json.dumps(doc, indent=1) + "\n")
        return 0
    doc["claims"] = claims_section(args, mesh, out)
    tun = evaluate_tunnels(mesh, args.sessions, args.tcp_samples, args.app_samples, bad, DEFAULT_CONFIG)
    doc["tunnel"] = tun
    print(
        f"\ntunnel detector ({args.sessions} honest + {args.sessions} tunnelled sessions, "
        f"{args.tcp_samples} TCP + {args.app_samples} app samples; threshold {tun['config']}):",
        file=out,
    )
    print(f"  honest clients flagged: {_pct(tun['honest_false_positive'])}", file=out)
    for k, v in tun["honest_false_positive_by_profile"].items():
        print(f"    {k:<14} {_pct(v)}", file=out)
    print(f"  tunnels detected, exit >= 1,500 km from client: {_pct(tun['tunnel_detected_exit_ge_1500km'])}", file=out)
    print(f"  tunnels detected, all: {_pct(tun['tunnel_detected_all'])}", file=out)
    for k, v in tun["tunnel_detected_by_far_leg"].items():
        print(f"    far leg {k:<12} {_pct(v)}", file=out)
    doc["elapsed_s"] = round(time.perf_counter() - t0, 1)
    print(f"\nelapsed {doc['elapsed_s']} s", file=out)
    if args.json:
        sys.stdout.write(json.dumps(doc, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
