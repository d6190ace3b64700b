"""Claim evaluation for ``eval_latency.py``: landmark subsets, leave-clients-out, drift (docs/latency.md).

- **Landmarks**: N of the WonderNetwork servers (10, 20, 40, 60, 100), drawn at random or by
  farthest-point sampling, several seeds; ``all``: every server but the client (leave-one-out).
- **Clients**: every server that is not a landmark. The servers are dealt once into a tuning half
  and a reporting half (``SPLIT_SEED``). The rule's parameters are chosen on the tuning half only;
  the reporting half is scored with them and never tunes anything. Landmark speeds are calibrated
  on the mesh of the landmarks and the *tuning* clients, never a reporting client.
- **Expected-RTT ceiling** (``model.rtt_ceiling``): built from the same mesh, but never from
  the judged client's own pings: a tuning client's ceiling leaves it out (so the tuning half
  measures the ceiling as a held-out client would meet it); for "all", the ceiling, like the speeds,
  comes from every server but the client (leave-one-out: a deployment calibrates every PoP).
- **Claims**: the client's own listed point (true), and every other server >= 1,500 km away
  (false). A true claim answered ``false`` is a rejection; ``null`` is inconclusive (not a
  rejection); a false claim is caught only when answered ``false``.
- **Inner split** (``wn_cases(..., inner_seed=...)``, ``eval_latency.py --inner``): the tuning
  half alone, dealt again into a calibrating part and a part scored as held-out, so that a
  candidate rule meets held-out-like clients before it is frozen, without the reporting half.
- **Drift**: the rule tuned on the 2020 WonderNetwork pings, unchanged, on the 2025 AWS
  inter-region medians (each region the client of the others, speeds calibrated on the others).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from geowarden.latency import model as lm
from geowarden.latency.ceiling import RttCeiling
from geowarden.latency.ceiling import build as build_ceiling
from geowarden.latency.places import places
from geowarden.latency.rule import FALSE, NULL, TRUE, Tolerance, against, ceiling_against, outcome
from geowarden.latency.verify import PLACE_SLACK_KM, Discs, _candidates, region_is_empty

F64 = npt.NDArray[np.float64]
FALSE_KM = 1500.0
SPLIT_SEED = 20261203
COUNTS: tuple[int | str, ...] = (10, 20, 40, 60, 100, "all")


@dataclass
class Case:
    """One client under one landmark set: per-disc excess of its true point and of its false claims."""

    side: str  # "tune" or "report" (the inner split: "A" or "B")
    n: int | str
    strategy: str
    true_ex: F64  # (discs,)
    false_ex: F64  # (false claims, discs)
    weight: F64
    discs: Discs
    clean: bool = True  # False: the full mesh refutes the client's own listed location (its "truth" is not true)
    client: int = -1
    true_cx: F64 | None = None  # (discs,): RTT excess (ms) over the ceiling at the true point
    false_cx: F64 | None = None  # (false claims, discs)


@dataclass
class Tally:
    honest: list[int] = field(default_factory=lambda: [0, 0, 0])  # rejected, inconclusive, total
    false: list[int] = field(default_factory=lambda: [0, 0])  # caught, total

    def to_dict(self) -> dict[str, Any]:
        h, f = self.honest, self.false
        return {
            "honest_rejected": h[0] / h[2] if h[2] else None,
            "honest_inconclusive": h[1] / h[2] if h[2] else None,
            "false_caught": f[0] / f[1] if f[1] else None,
            "n_honest": h[2],
            "n_false": f[1],
        }


def spread(dist: F64, k: int, rng: np.random.Generator, pool: list[int]) -> list[int]:
    sel = [pool[int(rng.integers(len(pool)))]]
    dmin = dist[sel[0], pool].copy()
    while len(sel) < k:
        j = pool[int(np.argmax(dmin))]
        sel.append(j)
        dmin = np.minimum(dmin, dist[j, pool])
    return sel


def _discs(lat: F64, lon: F64, rtt_col: F64, pops: list[int], cal: lm.Calibration) -> tuple[list[int], F64, F64, F64]:
    use, radius, weight, speed = [], [], [], []
    for p in pops:
        a, b = float(lat[p]), float(lon[p])
        if np.isnan(rtt_col[p]) or cal.is_inconsistent(a, b):
            continue
        use.append(p)
        bound = cal.bound_for(a, b)
        radius.append(float(bound.max_km(rtt_col[p])))
        weight.append(cal.reliability_for(a, b))
        speed.append(bound.speed_km_per_ms)
    return use, np.array(radius), np.array(weight), np.array(speed)


def _case(
    side: str,
    n: int | str,
    strategy: str,
    c: int,
    pops: list[int],
    cal: lm.Calibration,
    mesh: Any,
    clean: bool = True,
    ceiling: RttCeiling | None = None,
) -> Case:
    use, radius, weight, speed = _discs(mesh.lat, mesh.lon, mesh.rtt[:, c], pops, cal)
    far = np.flatnonzero(mesh.dist[c] >= FALSE_KM)
    true_ex = mesh.dist[use, c] - radius
    false_ex = (mesh.dist[np.ix_(use, far)] - radius[:, None]).T
    lat, lon = mesh.lat[use], mesh.lon[use]
    xyz = lm.unit_vectors(lat, lon).reshape(-1, 3)
    own = None if ceiling is None else np.array([ceiling.extra_for(a, b) for a, b in zip(lat, lon, strict=True)])
    d = Discs(lat, lon, mesh.rtt[use, c], radius, xyz, weight, 0, speed, cal.default.slack_km, ceiling, own)
    pts = lm.unit_vectors(mesh.lat, mesh.lon).reshape(-1, 3)
    true_cx = d.ceiling_excess(pts[[c]])[0]
    false_cx = d.ceiling_excess(pts[far])
    return Case(side, n, strategy, true_ex, false_ex, weight, d, clean, c, true_cx, false_cx)


def _ceiling(mesh: Any, members: list[int], pops: list[int], skip: set[int]) -> RttCeiling | None:
    """The ceiling of the mesh of ``members`` (``skip``: its inconsistent members), extras for ``pops``."""
    m = np.asarray(members)
    pos = {x: k for k, x in enumerate(members)}
    return build_ceiling(
        mesh.lat[m],
        mesh.lon[m],
        mesh.dist[np.ix_(m, m)],
        mesh.rtt[np.ix_(m, m)],
        landmarks=[pos[p] for p in pops if p in pos],
        skip=[pos[x] for x in skip if x in pos],
    )


@dataclass
class Job:
    """One client under one landmark set, before its claims are scored (``wn_cases`` scores them)."""

    side: str
    n: int | str
    strategy: str
    client: int
    pops: list[int]
    cal: lm.Calibration
    clean: bool
    ceiling: RttCeiling | None
    members: list[int]  # the calibrating mesh this client is judged with: landmarks and calibrating clients


def split(mesh: Any, inner_seed: int | None = None) -> tuple[set[int], set[int], tuple[str, str], set[int]]:
    """(eligible clients, calibrating clients, side names, servers the full mesh refutes): the
    tuning/reporting split, or with ``inner_seed`` the inner split of the tuning half (see ``wn_cases``)."""
    refuted = {i for i, _ in lm.find_inconsistent(mesh.lat, mesh.lon, mesh.rtt)}
    perm = np.random.default_rng(SPLIT_SEED).permutation(mesh.n)
    tune = set(perm[: mesh.n // 2].tolist())
    if inner_seed is None:
        return set(range(mesh.n)), tune, ("tune", "report"), refuted
    order = perm[: mesh.n // 2].tolist()
    deal = np.random.default_rng(inner_seed).permutation(len(order))
    return tune, {order[i] for i in deal[: len(order) // 2]}, ("A", "B"), refuted


def jobs(
    mesh: Any,
    seeds: int,
    counts: tuple[int | str, ...] = COUNTS,
    *,
    inner_seed: int | None = None,
    strategies: tuple[str, ...] = ("random", "farthest"),
) -> list[Job]:
    """Every (client, landmark set) of the evaluation, calibrated (see ``wn_cases``)."""
    eligible, calib, sides, refuted = split(mesh, inner_seed)
    out: list[Job] = []
    for n in counts:
        if n == "all":
            for c in sorted(eligible):
                pops = [p for p in range(mesh.n) if p != c]
                cal = lm.calibrate(mesh.lat[pops], mesh.lon[pops], mesh.rtt[np.ix_(pops, pops)], ceiling=False)
                ceil = _ceiling(mesh, pops, pops, refuted)
                side = sides[0] if c in calib else sides[1]
                members = [p for p in pops if p not in refuted]
                out.append(Job(side, n, "all", c, pops, cal, c not in refuted, ceil, members))
            continue
        for strategy, seed in itertools.product(strategies, range(seeds)):
            rng = np.random.default_rng(SPLIT_SEED + 1000 * int(n) + seed)
            k = int(n)
            pops = (
                rng.choice(mesh.n, k, replace=False).tolist()
                if strategy == "random"
                else spread(mesh.dist, k, rng, list(range(mesh.n)))
            )
            sp = set(pops)
            clients = [c for c in range(mesh.n) if c not in sp and c in eligible]
            ref = pops + [c for c in clients if c in calib]
            cal = lm.calibrate(mesh.lat[ref], mesh.lon[ref], mesh.rtt[np.ix_(ref, ref)], only=range(k))
            bad = {ref[i] for i, _ in lm.find_inconsistent(mesh.lat[ref], mesh.lon[ref], mesh.rtt[np.ix_(ref, ref)])}
            for c in clients:
                side = sides[0] if c in calib else sides[1]
                # a calibrating client's ceiling leaves its own pings out (the mesh's inconsistent
                # members as found with it: leaving one client out hardly changes them)
                ceil = cal.ceiling if side == sides[1] else _ceiling(mesh, [x for x in ref if x != c], pops, bad)
                members = [x for x in ref if x != c and x not in bad]
                out.append(Job(side, n, strategy, c, pops, cal, c not in refuted, ceil, members))
    return out


def wn_cases(
    mesh: Any, seeds: int, counts: tuple[int | str, ...] = COUNTS, *, inner_seed: int | None = None
) -> list[Case]:
    """Every (client, landmark set) of the WonderNetwork evaluation.

    ``inner_seed``: the *inner split* instead, for choosing a rule without the reporting half. The
    tuning clients are dealt again (by ``inner_seed``) into ``A``, which calibrates as the whole
    tuning half otherwise does, and ``B``, scored as held-out clients are; reporting-half servers
    are never clients and never calibrate (they may be landmarks, as in the evaluation).
    """
    return [
        _case(j.side, j.n, j.strategy, j.client, j.pops, j.cal, mesh, j.clean, j.ceiling)
        for j in jobs(mesh, seeds, counts, inner_seed=inner_seed)
    ]


def score(cases: list[Case], tol: Tolerance, *, empty_check: bool = True) -> dict[tuple[str, str, str], Tally]:
    """Tallies by (side, strategy, n). ``empty_check``: a ``false`` against an empty region is ``null``."""
    out: dict[tuple[str, str, str], Tally] = {}
    for cs in cases:
        t = out.setdefault((cs.side, cs.strategy, str(cs.n)), Tally())
        nd, w = len(cs.weight), float(cs.weight.sum())
        if nd == 0:
            t.honest[1] += cs.clean
            t.honest[2] += cs.clean
            continue
        c_true, c_false = np.zeros(1), np.zeros(len(cs.false_ex))
        if cs.true_cx is not None and cs.false_cx is not None and tol.ceiling_weight > 0.0:
            r = cs.discs.radius_km
            reach = tol.ceiling_reach_km
            c_true = ceiling_against(np.where(cs.true_ex + r <= reach, cs.true_cx, -np.inf)[None, :], cs.weight, tol)
            c_false = ceiling_against(np.where(cs.false_ex + r <= reach, cs.false_cx, -np.inf), cs.weight, tol)
        s_true = against(cs.true_ex[None, :], cs.weight, tol) + c_true
        a_true = int(outcome(s_true, w, nd, tol, c_true)[0])
        a_false = outcome(against(cs.false_ex, cs.weight, tol) + c_false, w, nd, tol, c_false)
        if empty_check and (a_true == FALSE or (a_false == FALSE).any()) and region_is_empty(cs.discs, tol):
            a_true = NULL if a_true == FALSE else a_true
            a_false = np.where(a_false == FALSE, NULL, a_false)
        if cs.clean:  # a client whose listed location is refuted makes no true claim
            t.honest[0] += a_true == FALSE
            t.honest[1] += a_true == NULL
            t.honest[2] += 1
        t.false[0] += int((a_false == FALSE).sum())
        t.false[1] += len(a_false)
    return out


def tune(
    cases: list[Case], grid: dict[str, list[float]], base: Tolerance | None = None
) -> tuple[Tolerance, list[dict[str, Any]]]:
    """The rule that catches most false claims on the tuning half (random landmarks, N >= 40) while
    rejecting <= 1 % of true claims at every N >= 20 (also on a mobile last mile,
    ``score_last_mile``, when the ceiling is on) and leaving <= 5 % inconclusive at N >= 40
    (both strategies and "all"). ``grid``: values of ``Tolerance`` fields to try, the others from
    ``base``. Only the tuning half is scored."""
    tuning = [c for c in cases if c.side == "tune"]
    tried: list[dict[str, Any]] = []
    best: tuple[float, Tolerance] | None = None
    keys = list(grid)
    for values in itertools.product(*(grid[k] for k in keys)):
        setting = dict(zip(keys, values, strict=True))
        tol = dataclasses.replace(base or Tolerance(), **setting)
        tallies = score(tuning, tol)
        mobile = score_last_mile(tuning, tol) if tol.ceiling_weight > 0.0 else {}
        ok, catch = True, []
        for (_, _, n), t in mobile.items():  # the ceiling must also spare mobile last miles
            if (n == "all" or int(n) >= 20) and (t.to_dict()["honest_rejected"] or 0.0) > 0.01:
                ok = False
        for (_, strategy, n), t in tallies.items():
            d = t.to_dict()
            big = n == "all" or int(n) >= 40
            if (n == "all" or int(n) >= 20) and d["honest_rejected"] > 0.01:
                ok = False
            if big and d["honest_inconclusive"] > 0.05:
                ok = False
            if big and strategy == "random":
                catch.append(d["false_caught"])
        mean = float(np.mean(catch))
        worst = max(t.to_dict()["honest_rejected"] for (_, _, n), t in tallies.items() if n == "all" or int(n) >= 20)
        inc = max(t.to_dict()["honest_inconclusive"] for (_, _, n), t in tallies.items() if n == "all" or int(n) >= 40)
        tried.append({**setting, "ok": ok, "catch": mean, "worst_rejected": worst, "worst_inconclusive": inc})
        if ok and (best is None or mean > best[0]):
            best = (mean, tol)
    if best is None:  # nothing meets the constraints: the safest rule tried (fewest honest rejections)
        return base or Tolerance(), tried
    return best[1], tried


def load_aws(base: Path) -> Any:
    """The AWS inter-region medians as a mesh (lat, lon, rtt, dist, names)."""
    import csv  # noqa: PLC0415

    with (base / "aws_regions_locations.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    names = [r["region"] for r in rows]
    pos = {r: k for k, r in enumerate(names)}
    data = json.loads((base / "aws-ping-p50-1y.json").read_text(encoding="utf-8"))["data"]
    n = len(names)
    rtt = np.full((n, n), np.nan)
    for a, row in data.items():
        for b, ms in row.items():
            if a in pos and b in pos and a != b:
                rtt[pos[a], pos[b]] = float(ms)
    fill = np.isnan(rtt)
    rtt[fill] = rtt.T[fill]
    lat = np.array([float(r["lat"]) for r in rows])
    lon = np.array([float(r["lon"]) for r in rows])

    @dataclass
    class M:
        n: int
        name: list[str]
        lat: F64
        lon: F64
        rtt: F64
        dist: F64

    return M(n, names, lat, lon, rtt, lm.pair_distances(lat, lon))


def aws_cases(aws: Any, seeds: int) -> list[Case]:
    """Each AWS region the client of the others (all, and random subsets of 10 and 20)."""
    cases: list[Case] = []
    for c in range(aws.n):
        others = [p for p in range(aws.n) if p != c]
        for n, seed in [("all", 0)] + [(k, s) for k in (10, 20) for s in range(seeds)]:
            rng = np.random.default_rng(SPLIT_SEED + c * 100 + seed)
            pops = others if n == "all" else rng.choice(others, int(n), replace=False).tolist()
            cal = lm.calibrate(aws.lat[pops], aws.lon[pops], aws.rtt[np.ix_(pops, pops)], min_pairs=5)
            cases.append(_case("drift", n, "all" if n == "all" else "random", c, pops, cal, aws, True, cal.ceiling))
    return cases


def score_countries(cases: list[Case], tol: Tolerance, mesh: Any) -> dict[tuple[str, str, str], Tally]:
    """Country claims: the client's own country (true) and every country whose nearest populated
    place is >= 1,500 km from the client (false); a country is answered by its best place, with
    ``PLACE_SLACK_KM`` on every disc, as ``verify`` does."""
    pl = places()
    order = np.argsort(pl.country_idx, kind="stable")
    starts = np.searchsorted(pl.country_idx[order], np.arange(len(pl.codes)))
    far: dict[int, npt.NDArray[np.bool_]] = {}
    out: dict[tuple[str, str, str], Tally] = {}
    for cs in cases:
        t = out.setdefault((cs.side, cs.strategy, str(cs.n)), Tally())
        c, d = cs.client, cs.discs
        if c not in far:
            near = np.maximum.reduceat(pl.points.xyz[order] @ lm.unit_vectors(mesh.lat[c], mesh.lon[c]), starts)
            far[c] = lm.km_of_dot(near) >= FALSE_KM
        own = pl.codes.index(mesh.country[c]) if mesh.country[c] in pl.codes else None
        if d.n == 0:
            t.honest[1] += cs.clean and own is not None
            t.honest[2] += cs.clean and own is not None
            t.false[1] += int(far[c].sum())
            continue
        limit = tol.reject_at(d.total_weight)
        rows = _candidates(pl.points, d, tol, PLACE_SLACK_KM)
        sc = d.against(pl.points.xyz[rows], tol, PLACE_SLACK_KM, limit)
        cl = np.zeros(len(rows))
        live = sc <= limit
        cl[live] = d.ceiling_score(pl.points.xyz[rows[live]], tol, PLACE_SLACK_KM)
        total = sc + cl
        ok = (sc <= tol.accept) & (cl <= limit / 2.0)  # rule.outcome's test for true
        best = np.full(len(pl.codes), np.inf)
        np.minimum.at(best, pl.country_idx[rows], np.where(ok, -1.0, total))  # -1: some place is true
        ans = np.where(best < 0.0, TRUE, np.where(best <= limit, NULL, FALSE))
        if d.n < tol.min_discs:
            ans[ans == FALSE] = NULL
        if (ans == FALSE).any() and region_is_empty(d, tol):
            ans[ans == FALSE] = NULL
        if own is not None and cs.clean:
            t.honest[0] += ans[own] == FALSE
            t.honest[1] += ans[own] == NULL
            t.honest[2] += 1
        t.false[0] += int((ans[far[c]] == FALSE).sum())
        t.false[1] += int(far[c].sum())
    return out


def mobile_delay(rng: np.random.Generator, n: int) -> F64:
    """One client's mobile last mile over ``n`` landmarks (see ``score_last_mile``)."""
    delay = rng.uniform(15.0, 45.0) + rng.gamma(1.0, 10.0, n)
    spike = rng.random(n) < 0.05
    delay[spike] += rng.uniform(50.0, 300.0, int(spike.sum()))
    return delay


def delayed(cs: Case, ms: F64) -> tuple[F64, F64, F64]:
    """The client's true claim on RTTs ``ms`` instead of its own: each disc's radius, its excess
    (km) and each landmark's RTT excess over its ceiling (ms, every landmark; ``-inf`` without a
    ceiling), with the allowance formula of ``Discs.ceiling_excess``."""
    d = cs.discs
    speed = np.full(d.n, lm.FIBRE_KM_PER_MS) if d.speed is None else d.speed
    radius = np.minimum(speed * ms / 2.0 + d.slack_km, lm.HALF_CIRCUMFERENCE_KM)
    dist = cs.true_ex + d.radius_km
    cx = np.full(d.n, -np.inf)
    if cs.true_cx is not None and d.ceiling is not None:
        allowance = float((ms - 2.0 * np.maximum(dist - d.slack_km, 0.0) / speed).min())
        own = np.zeros(d.n) if d.ceiling_extra is None else d.ceiling_extra
        cx = ms - allowance - d.ceiling.at(dist) - own
    return radius, dist - radius, cx


def score_last_mile(cases: list[Case], tol: Tolerance, seed: int = 20261204) -> dict[tuple[str, str, str], Tally]:
    """True claims of clean clients on a mobile last mile (the LTE profile of the tunnel
    simulation): every RTT gets one shared base delay of 15-45 ms plus its own jitter (gamma,
    mean 10 ms, sd 10 ms) and, on 5 % of landmarks, a spike of 50-300 ms. The jitter and spikes
    differ per landmark, so they are not a pure last mile: they test the ceiling's tolerance."""
    rng = np.random.default_rng(seed)
    out: dict[tuple[str, str, str], Tally] = {}
    for cs in cases:
        d = cs.discs
        if not cs.clean or d.n == 0:
            continue
        t = out.setdefault((cs.side, cs.strategy, str(cs.n)), Tally())
        ms = d.ms + mobile_delay(rng, d.n)
        radius, ex, cx = delayed(cs, ms)
        moved = dataclasses.replace(d, ms=ms, radius_km=radius)
        cx = np.where(ex + radius <= tol.ceiling_reach_km, cx, -np.inf)
        c = ceiling_against(cx[None, :], cs.weight, tol) if tol.ceiling_weight > 0.0 else np.zeros(1)
        ans = int(outcome(against(ex[None, :], cs.weight, tol) + c, d.total_weight, d.n, tol, c)[0])
        if ans == FALSE and region_is_empty(moved, tol):
            ans = NULL
        t.honest[0] += ans == FALSE
        t.honest[1] += ans == NULL
        t.honest[2] += 1
    return out
