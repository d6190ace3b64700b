"""Issue 18, fourth round: neighbour-reference evidence, and where the missed claims are.

Scored on the *inner split* of the tuning half only (``latency_claims.wn_cases(inner_seed=...)``:
part A calibrates, part B is scored as held-out clients are); the reporting half is never read,
except by ``--labels``, which audits the evaluation's labels on both halves and chooses nothing.

**Neighbour references** (a candidate, not in the library; docs/latency.md says why). The mesh
members (landmarks and calibrating clients) between 50 km and ``--radius`` km from a claimed
point P are its references. A client really at P should answer each landmark ``i`` about as its
neighbours there do, at any distance (shared upstream routes and detours), up to a shared last
mile:

    hi_i = max_refs (rtt(m, i) + delta(d(m, P))),  lo_i = max(physical floor, min_refs (rtt(m, i) - delta))
    a    = min_i (rtt_i - lo_i),  excess_i = rtt_i - a - hi_i

``delta(d)``: the ``--quantile`` of neighbour differences ``rtt(m1, i) - rtt(m2, i)`` in part A, by
neighbour distance. The excess joins the expected-RTT ceiling's (the larger of the two per
landmark) and is weighed by the default rule. The 50 km gap keeps a false claim placed on a mesh
server from using that server as its own reference.

    python bench/latency_neighbours.py                       # R 1,000 km, q 0.99, inner seeds 7 and 8
    python bench/latency_neighbours.py --radius 1000 --quantile 0.9
    python bench/latency_neighbours.py --misses 40           # missed false claims by client (seed 7)
    python bench/latency_neighbours.py --scores              # how close the missed claims come to rejection
    python bench/latency_neighbours.py --explain Fez London  # one false claim taken apart
    python bench/latency_neighbours.py --fitted 250 10 100   # ceilings fitted to the other servers' pings
    python bench/latency_neighbours.py --labels              # without the mislabelled clients' false claims
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import itertools
import time
from collections.abc import Sequence
from typing import Any

import eval_latency as ev
import latency_claims as lc
import numpy as np

from geowarden.latency import model as lm
from geowarden.latency.ceiling import CEILING_ADD_MS
from geowarden.latency.places import places
from geowarden.latency.rule import DEFAULT_TOLERANCE as TOL
from geowarden.latency.rule import FALSE, NULL, against, ceiling_against, outcome
from geowarden.latency.verify import region_is_empty

GAP_KM = 50.0
BINS = np.array([GAP_KM, 250.0, 500.0, 750.0, 1000.0, 1500.0, 2000.0])
F64 = lc.F64


def deltas(mesh: Any, members: set[int], q: float) -> F64:
    """The ``q`` quantile of neighbour differences, per neighbour-distance bin, non-decreasing."""
    m = sorted(members)
    out = []
    for lo, hi in itertools.pairwise(BINS):
        d = []
        for a, b in itertools.permutations(m, 2):
            if lo < mesh.dist[a, b] <= hi:
                x = mesh.rtt[a] - mesh.rtt[b]
                x[[a, b]] = np.nan
                d.append(x[np.isfinite(x)])
        out.append(float(np.quantile(np.concatenate(d), q)) if d else np.inf)
    return np.maximum.accumulate(np.array(out))


def neighbour_excess(mesh: Any, ms: F64, use: list[int], speed: F64, q: int, members: list[int], dl: F64,
                     radius: float, slack: float) -> F64:  # fmt: skip
    """(landmarks,): RTT excess (ms) over the neighbours' band at claim server ``q``; -inf: no reference."""
    mem = np.array([m for m in members if GAP_KM < mesh.dist[m, q] <= radius], dtype=np.intp)
    out = np.full(len(use), -np.inf)
    if len(mem) == 0:
        return out
    ref = mesh.rtt[np.ix_(mem, use)].copy()
    ref[mem[:, None] == np.asarray(use)[None, :]] = np.nan
    dd = dl[np.clip(np.searchsorted(BINS, mesh.dist[mem, q]) - 1, 0, len(dl) - 1)][:, None]
    seen = np.isfinite(ref).any(axis=0)
    hi = np.where(seen, np.nanmax(np.where(np.isfinite(ref), ref + dd, -np.inf), axis=0), np.inf)
    lo = np.nanmin(np.where(np.isfinite(ref), ref - dd, np.inf), axis=0)
    floor = 2.0 * np.maximum(mesh.dist[use, q] - slack, 0.0) / speed
    lo = np.maximum(np.where(np.isfinite(lo), lo, -np.inf), floor)
    a = float((ms - lo).min())
    out[seen] = ms[seen] - a - hi[seen]
    return out


def answers(mesh: Any, cs: lc.Case, use: list[int], members: list[int], dl: F64, radius: float,
            ms: F64 | None = None, *, refs: bool) -> Any:  # fmt: skip
    """The rule's answers: true claim first, then the false ones (``ms``: the true claim only, on
    those delayed RTTs, as ``latency_claims.score_last_mile`` does)."""
    d = cs.discs
    assert cs.true_cx is not None
    assert cs.false_cx is not None
    assert d.ceiling is not None
    speed = np.full(d.n, lm.FIBRE_KM_PER_MS) if d.speed is None else d.speed
    r = d.radius_km
    if ms is None:
        rtt, qs = d.ms, [cs.client, *np.flatnonzero(mesh.dist[cs.client] >= lc.FALSE_KM).tolist()]
        ex, cx = np.vstack([cs.true_ex[None, :], cs.false_ex]), np.vstack([cs.true_cx[None, :], cs.false_cx])
    else:
        rtt, qs = ms, [cs.client]
        r, moved_ex, moved_cx = lc.delayed(cs, ms)
        ex, cx = moved_ex[None, :], moved_cx[None, :]
    cxm = np.where(ex + r <= TOL.ceiling_reach_km, cx, -np.inf)
    if refs:
        nx = [neighbour_excess(mesh, rtt, use, speed, q, members, dl, radius, d.slack_km) for q in qs]
        cxm = np.maximum(cxm, np.vstack(nx))
    c = ceiling_against(cxm, cs.weight, TOL)
    ans = outcome(against(ex, cs.weight, TOL) + c, float(cs.weight.sum()), d.n, TOL, c)
    if (ans == FALSE).any() and region_is_empty(d if ms is None else dataclasses.replace(d, ms=ms, radius_km=r), TOL):
        ans = np.where(ans == FALSE, NULL, ans)
    return ans


def compare(mesh: Any, args: argparse.Namespace) -> None:
    for inner in args.inner:
        tallies: dict[tuple[str, str, str], list[int]] = {}
        rng = np.random.default_rng(20261204)  # the mobile last mile of score_last_mile
        _, calib, _, refuted = lc.split(mesh, inner)
        calib -= refuted
        dl = deltas(mesh, calib, args.quantile)
        for n in (40, 60, "all"):
            todo = lc.jobs(mesh, args.seeds, (n,), inner_seed=inner, strategies=("random",))
            if n == 40:
                bands = ", ".join(
                    f"{lo:.0f}-{hi:.0f} km {x:.1f}" for lo, hi, x in zip(BINS, BINS[1:], dl, strict=False)
                )
                print(f"inner split {inner}: delta (ms) by neighbour distance: {bands}")
            for j in todo:
                side, members = j.side, j.members
                cs = lc._case(j.side, n, j.strategy, j.client, j.pops, j.cal, mesh, j.clean, j.ceiling)
                use = lc._discs(mesh.lat, mesh.lon, mesh.rtt[:, j.client], j.pops, j.cal)[0]
                if cs.discs.n == 0:
                    continue
                delay = lc.mobile_delay(rng, cs.discs.n)
                for rule in ("current", "neighbours"):
                    t = tallies.setdefault((rule, side, str(n)), [0] * 7)
                    a = answers(mesh, cs, use, members, dl, args.radius, refs=rule == "neighbours")
                    t[3] += int((a[1:] == FALSE).sum())
                    t[4] += len(a) - 1
                    if cs.clean:
                        m = answers(mesh, cs, use, members, dl, args.radius, cs.discs.ms + delay,
                                    refs=rule == "neighbours")  # fmt: skip
                        t[0] += int(a[0] == FALSE)
                        t[1] += int(a[0] == NULL)
                        t[2] += 1
                        t[5] += int(m[0] == FALSE)
                        t[6] += int(m[0] == NULL)
        print(
            f"\ninner split {inner}, radius {args.radius:.0f} km, quantile {args.quantile} (true rejected / "
            "inconclusive of n; false caught; mobile last mile rejected / inconclusive):"
        )
        for (rule, side, n), t in sorted(tallies.items(), key=lambda kv: (kv[0][1], kv[0][2], kv[0][0])):
            print(f"  {side} {n:<4} {rule:<11} {t[0]:>3} / {t[1]:>2} of {t[2]:<4} caught {100 * t[3] / t[4]:6.2f} % "
                  f"({t[4]:,})   mobile {t[5]} / {t[6]}")  # fmt: skip


def misses(mesh: Any, n: int | str, seeds: int) -> None:
    """Which tuning-half clients the missed false claims come from (inner split 7, current rule)."""
    count: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    counts = (n if n == "all" else int(n),)
    for cs in lc.wn_cases(mesh, seeds, counts=counts, inner_seed=7):
        if cs.strategy not in ("random", "all") or cs.false_cx is None:
            continue
        r = cs.discs.radius_km
        c = ceiling_against(np.where(cs.false_ex + r <= TOL.ceiling_reach_km, cs.false_cx, -np.inf), cs.weight, TOL)
        a = outcome(against(cs.false_ex, cs.weight, TOL) + c, float(cs.weight.sum()), cs.discs.n, TOL, c)
        total[mesh.name[cs.client]] += len(a)
        count[mesh.name[cs.client]] += int((a != FALSE).sum())
    missed, claims = sum(count.values()), sum(total.values())
    label = "all landmarks (leave-one-out)" if n == "all" else f"{n} random landmarks"
    print(f"{label}, tuning half: {missed:,} of {claims:,} false claims missed "
          f"({100 * missed / claims:.2f} %); by client:")  # fmt: skip
    acc = 0
    for name, k in count.most_common(15):
        acc += k
        print(f"  {name:<16} {k:>5} of {total[name]:>5} missed   (cumulative share {100 * acc / missed:5.1f} %)")


def scores(mesh: Any, seeds: int, inner: list[int]) -> None:
    """How far below the rejection threshold the missed false claims sit, against the true claims
    (part B of each inner split, random landmarks, the current rule): the room any threshold has."""
    for seed in inner:
        cases = lc.wn_cases(mesh, seeds, counts=(40, 60), inner_seed=seed)
        for n in (40, 60):
            honest: list[float] = []
            false: list[float] = []
            near: list[bool] = []  # per false claim: a landmark within 500 km of it
            above: list[bool] = []  # per false claim: some landmark in reach above its ceiling (before the trim)
            for cs in cases:
                if cs.side != "B" or cs.strategy != "random" or cs.n != n or cs.discs.n == 0 or cs.false_cx is None:
                    continue
                limit, r = TOL.reject_at(float(cs.weight.sum())), cs.discs.radius_km
                assert cs.true_cx is not None
                for ex, cx, sink in ((cs.true_ex[None, :], cs.true_cx[None, :], honest if cs.clean else None),
                                     (cs.false_ex, cs.false_cx, false)):  # fmt: skip
                    if sink is not None:
                        c = ceiling_against(np.where(ex + r <= TOL.ceiling_reach_km, cx, -np.inf), cs.weight, TOL)
                        sink.extend(((against(ex, cs.weight, TOL) + c) / limit).tolist())
                dist = cs.false_ex + r
                near.extend((dist.min(axis=1) <= 500.0).tolist())
                above.extend(((dist <= TOL.ceiling_reach_km) & (cs.false_cx > 0.0)).any(axis=1).tolist())
            h, f = np.array(honest), np.array(false)
            zero = f == 0
            print(f"inner split {seed}, {n} random landmarks, part B: false caught {100 * (f > 1).mean():.2f} %; "
                  f"missed with some evidence (score 0-1 of the threshold) {100 * ((f > 0) & (f <= 1)).mean():.2f} %, "
                  f"with none {100 * (f == 0).mean():.2f} %; true claims' largest scores "
                  f"{', '.join(f'{x:.2f}' for x in np.sort(h)[-3:])} (n={len(h)}); of the claims with none, "
                  f"{100 * np.array(near)[zero].mean():.0f} % have a landmark within 500 km and "
                  f"{100 * np.array(above)[zero].mean():.0f} % one above its ceiling before the trim")  # fmt: skip


def fitted(mesh: Any, inner: list[int], seeds: int, window: float, add: float, severity: float, cap: float) -> None:
    """An upper bound for any ceiling: each landmark's ceiling at the claim's distance is the largest
    RTT to it from the other tuning servers and landmarks at that distance (+-``window`` km), plus
    ``add``, the rule otherwise as it is with ``severity``. It reads pings that no deployment has
    (the other clients'), so it bounds what a better calibration of the ceiling could give. ``cap``:
    the most access delay a claim is granted (``inf``: as the rule grants it; 0: none at all)."""
    tol = dataclasses.replace(TOL, ceiling_severity_ms=severity)
    for seed, n in itertools.product(inner, (40, 60)):
        tune, _, _, refuted = lc.split(mesh, seed)
        t = [0, 0, 0, 0, 0]
        for j in lc.jobs(mesh, seeds, (n,), inner_seed=seed, strategies=("random",)):
            if j.side != "B":
                continue
            c, pops = j.client, j.pops
            cs = lc._case(j.side, n, j.strategy, c, pops, j.cal, mesh, j.clean, j.ceiling)
            d = cs.discs
            if d.n == 0:
                continue
            use = np.array(lc._discs(mesh.lat, mesh.lon, mesh.rtt[:, c], pops, j.cal)[0])
            others = np.array(sorted((tune | set(pops)) - {c} - refuted))
            rtt = np.where(others[:, None] == use[None, :], np.nan, mesh.rtt[np.ix_(others, use)])
            km = mesh.dist[np.ix_(others, use)]
            speed = np.full(d.n, lm.FIBRE_KM_PER_MS) if d.speed is None else d.speed
            qs = [c, *np.flatnonzero(mesh.dist[c] >= lc.FALSE_KM).tolist()]
            ex = np.vstack([cs.true_ex[None, :], cs.false_ex])
            cx = np.full(ex.shape, -np.inf)
            for k, q in enumerate(qs):
                dq = mesh.dist[q, use]
                access = min(cap, float((d.ms - 2.0 * np.maximum(dq - d.slack_km, 0.0) / speed).min()))
                win = (np.abs(km - dq[None, :]) <= window) & np.isfinite(rtt)
                top = np.max(np.where(win, rtt, -np.inf), axis=0) + add
                ok = win.any(axis=0) & (dq <= tol.ceiling_reach_km)
                cx[k, ok] = d.ms[ok] - access - top[ok]
            c_ = ceiling_against(cx, cs.weight, tol)
            ans = outcome(against(ex, cs.weight, tol) + c_, float(cs.weight.sum()), d.n, tol, c_)
            if (ans == FALSE).any() and region_is_empty(d, tol):
                ans = np.where(ans == FALSE, NULL, ans)
            if cs.clean:
                t[0] += int(ans[0] == FALSE)
                t[1] += int(ans[0] == NULL)
                t[2] += 1
            t[3] += int((ans[1:] == FALSE).sum())
            t[4] += len(ans) - 1
        print(f"inner split {seed}, {n} random, part B, ceilings fitted within {window:.0f} km + {add:.0f} ms, "
              f"severity {severity:.0f} ms, access delay up to {cap:g} ms: true rejected {t[0]} / inconclusive "
              f"{t[1]} of {t[2]}; "
              f"false caught {100 * t[3] / t[4]:.2f} %")  # fmt: skip


def labels(mesh: Any, seeds: int) -> None:
    """The catch with and without the false claims of the clients whose listed position is wrong:
    refuted by the mesh, or listed in another country than the nearest populated place. This one
    reads both halves (it audits the evaluation's labels; it chooses nothing)."""
    pl = places()
    nearest = np.argmax(pl.points.xyz @ lm.unit_vectors(mesh.lat, mesh.lon).reshape(-1, 3).T, axis=0)
    swapped = {i for i in range(mesh.n) if pl.codes[pl.country_idx[nearest[i]]] != mesh.country[i]}
    wrong = lc.split(mesh)[3] | swapped
    print("listed position wrong: " + ", ".join(sorted(mesh.name[i] for i in wrong)))
    cases = lc.wn_cases(mesh, seeds, counts=(40, 60, 100, "all"))
    every, kept = lc.score(cases, TOL), lc.score([c for c in cases if c.client not in wrong], TOL)
    for key in sorted(every, key=str):
        if key[1] != "farthest":
            a, b = every[key].to_dict(), kept[key].to_dict()
            print(f"  {key[0]:<6} {key[2]:<4} {key[1]:<7} false caught {100 * a['false_caught']:.2f} % -> "
                  f"{100 * b['false_caught']:.2f} % without their false claims "
                  f"({a['n_false']:,} -> {b['n_false']:,})")  # fmt: skip


def explain(mesh: Any, client: str, claim: str) -> None:
    """One false claim taken apart: the client's RTTs near the claim, the access delay granted and
    the landmark that sets it, and the ceiling of the claim's own server (inner split 7, every
    other server a landmark, the current rule)."""
    ix = {name: i for i, name in enumerate(mesh.name)}
    for name in (client, claim):
        if name not in ix:
            raise SystemExit(f"no server named {name!r} (names as in servers.csv, e.g. Fez, London)")
    c, q = ix[client], ix[claim]
    found = [cs for cs in lc.wn_cases(mesh, 1, counts=("all",), inner_seed=7) if cs.client == c]
    if not found:
        raise SystemExit(f"{client} is not a client of the tuning half (only those are taken apart here)")
    cs = found[0]
    d = cs.discs
    assert d.ceiling is not None
    assert d.ceiling_extra is not None
    speed = np.full(d.n, lm.FIBRE_KM_PER_MS) if d.speed is None else d.speed
    p = lm.unit_vectors(mesh.lat[[q]], mesh.lon[[q]]).reshape(-1, 3)
    km = lm.km_of_dot(p @ d.xyz.T)[0]
    left = d.ms - 2.0 * np.maximum(km - d.slack_km, 0.0) / speed
    k = int(np.argmin(left))
    pos = {(round(float(mesh.lat[i]), 4), round(float(mesh.lon[i]), 4)): i for i in range(mesh.n)}
    who = [mesh.name[pos[(round(float(a), 4), round(float(b), 4))]] for a, b in zip(d.lat, d.lon, strict=True)]
    print(f"{client} claiming {claim} ({mesh.dist[c, q]:,.0f} km away); {d.n} landmarks")
    print(f"access delay granted: {left[k]:.1f} ms, set by {who[k]} ({d.ms[k]:.1f} ms from {client}, "
          f"{km[k]:,.0f} km from {claim}: at least {d.ms[k] - left[k]:.1f} ms from there)")  # fmt: skip
    print(f"the landmarks nearest {claim}: RTT from {client} | from {claim} | ceiling there (base + extra + "
          f"{CEILING_ADD_MS:.0f}) | excess after the access delay")  # fmt: skip
    for i in np.argsort(km)[:6]:
        base = float(d.ceiling.at(np.array([km[i]]))[0])
        own = float(d.ceiling_extra[i])
        ceiling = base + own + CEILING_ADD_MS
        from_claim = mesh.rtt[q, pos[(round(float(d.lat[i]), 4), round(float(d.lon[i]), 4))]]
        print(f"  {who[i]:<14} {km[i]:>6,.0f} km  {d.ms[i]:6.1f} ms | {from_claim:6.1f} ms | {ceiling:5.1f} ms "
              f"({base:.1f} + {own:.1f} + {CEILING_ADD_MS:.0f}) | {d.ms[i] - left[k] - ceiling:+6.1f} ms")  # fmt: skip
    r = d.radius_km
    far = np.flatnonzero(mesh.dist[c] >= lc.FALSE_KM).tolist()
    if q in far:
        j = far.index(q)
        assert cs.false_cx is not None
        x = np.where(cs.false_ex[j] + r <= TOL.ceiling_reach_km, cs.false_cx[j], -np.inf)[None, :]
        ce = ceiling_against(x, cs.weight, TOL)
        sc = against(cs.false_ex[j][None, :], cs.weight, TOL) + ce
        caught = outcome(sc, float(cs.weight.sum()), d.n, TOL, ce)[0] == FALSE
        print(f"score {float(sc[0]):.3f} of a threshold {TOL.reject_at(float(cs.weight.sum())):.3f} "
              f"(ceiling part {float(ce[0]):.3f}): {'caught' if caught else 'missed'}")  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    ap.add_argument("--radius", type=float, default=1000.0, help="references within this many km of the claim")
    ap.add_argument("--quantile", type=float, default=0.99, help="of neighbour RTT differences (the band's width)")
    ap.add_argument("--inner", type=int, action="append", help="inner split seeds (default 7 and 8)")
    ap.add_argument("--seeds", type=int, default=5, help="landmark draws per count")
    ap.add_argument(
        "--fitted",
        nargs=3,
        type=float,
        metavar=("WINDOW_KM", "ADD_MS", "SEVERITY_MS"),
        help="an upper bound: ceilings fitted to the other servers' own pings at each distance",
    )
    ap.add_argument("--access-cap", type=float, default=np.inf, metavar="MS", help="with --fitted: grant at most this")
    ap.add_argument("--labels", action="store_true", help="the catch without the mislabelled clients' false claims")
    ap.add_argument("--explain", nargs=2, metavar=("CLIENT", "CLAIM"), help="take one false claim apart")
    ap.add_argument("--scores", action="store_true", help="only the scores of missed false and of true claims")
    ap.add_argument("--misses", metavar="N", help="only list the missed false claims by client, N landmarks or 'all'")
    args = ap.parse_args(argv)
    if not ev.WN.is_dir():
        print(f"shared data not found at {ev.WN}")
        return 2
    if not 0.0 < args.quantile < 1.0 or args.radius <= GAP_KM:
        ap.error(f"--quantile must be in (0, 1) and --radius above {GAP_KM:.0f} km")
    args.inner = args.inner or [7, 8]
    t0 = time.perf_counter()
    mesh = ev.load_mesh()
    if args.labels:
        labels(mesh, args.seeds)
    elif args.fitted:
        fitted(mesh, args.inner, args.seeds, *args.fitted, args.access_cap)
    elif args.explain:
        explain(mesh, *args.explain)
    elif args.scores:
        scores(mesh, args.seeds, args.inner)
    elif args.misses:
        misses(mesh, args.misses, args.seeds)
    else:
        compare(mesh, args)
    print(f"\nelapsed {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
