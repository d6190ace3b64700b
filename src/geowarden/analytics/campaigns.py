"""Coordinated campaigns (near-duplicate prompts sent in step) and model shifts (a group moving to
a new model at its release together).

**Campaigns.** ``prompt_fingerprint`` is a 64-bit SimHash in 16 hex digits: near-duplicate prompts
differ in a few bits. Locality-sensitive hashing by banding: four bands of 16 bits (four hex
digits each); two fingerprints within 3 bits share a band. On the backend, one group-by per band
counts the requests of each band value; values far above chance (``band_z`` standard deviations
over the mean of a uniform spread, and ``band_min_events``) are candidates, and only their
requests, reduced to (account, fingerprint, time bucket) counts, come to Python. There each
candidate group is verified: from its most widely sent fingerprint, a bitwise-majority centre is
refined and the fingerprints within ``max_hamming`` bits of it are a near-duplicate set; sets of
different bands with close centres merge, and so do sets sent by mostly the same accounts
(``merge_jaccard``: a campaign with a few templates is one campaign). A set sent by
``min_accounts`` accounts or more is scored on what else is coordinated::

    sync     = share of its requests in "hot" time buckets: buckets where at least
               max(sync_min_accounts, sync_account_share * accounts) of its accounts send it and
               its requests are sync_lift times what the overall traffic of that bucket predicts
    new      = share of its accounts created within new_account_days before it started (without
               an accounts table: first seen at most new_margin_hours before it started, and not
               in the log's first new_margin_hours, where everybody is first seen)
    exposure = mean restricted exposure of its accounts (as in the graph analysis)
    score    = (1 - exp(-accounts / 5)) * (1 - (1 - 0.8 sync) (1 - 0.6 new) (1 - exposure))

A popular prompt (an SDK health check, a common template) sent by many unrelated accounts at
their own times has sync near 0 and the population's share of new and exposed accounts: it stays
under ``flag_score``. New and exposure of a set of more than ``profile_sample`` accounts are
estimated on a deterministic sample of that many.

Over ``sample_rows`` requests the campaign search works on a deterministic sample of about that
many (one request in ``rate``, by time), cached on the backend: the counts in its evidence are of
the sample (``sample_rate``); a campaign's accounts send many requests, so its members are kept.

**Model shifts.** A model first seen ``release_margin_hours`` or more after the log starts is
new, released when first seen. An account adopts it when its first request to it comes within
``adopt_hours`` of the release and ``move_share`` of its requests from then on (within
``shift_post_hours``) go to it. Adopters with restricted exposure are split into cohorts where
consecutive first requests are at most ``cohort_gap_minutes`` apart; a cohort of
``min_accounts`` or more scores::

    tightness = max(0, 1 - (p90 - p10 of first requests) / tight_hours)
    risk      = 1 - (1 - exposure) (1 - 0.5 anonymiser share) (1 - 0.5 new)
    score     = (1 - exp(-accounts / 5)) * (0.4 + 0.6 tightness) * risk

Honest early adopters come over hours and days, and without restricted exposure they are never
in a cohort. Thresholds are settings under ``[analytics.campaigns]``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import ibis
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from geowarden.analytics import graph
from geowarden.analytics.findings import AnalysisContext, Finding
from geowarden.analytics.graph import Profile, iso, short_hash

NAME = "campaigns"
CAMPAIGN = "campaign"
MODEL_SHIFT = "model_shift"

DEFAULTS: dict[str, float] = {
    "band_min_events": 20,  # requests of one band value before it is a candidate
    "band_z": 6.0,  # standard deviations above the uniform mean
    "max_candidate_groups": 4000,  # the most populous band values kept
    "sample_rows": 2_000_000,  # bigger logs: campaigns are looked for in a sample of about this many
    "max_hamming": 8,  # bits from the centre of a near-duplicate set (chance: 1e-9 per pair)
    "max_sets_per_group": 3,
    "merge_jaccard": 0.5,  # sets sent by mostly the same accounts are one campaign
    "min_accounts": 5,
    "bucket_minutes": 10,
    "sync_lift": 5.0,
    "sync_min_accounts": 3,
    "sync_account_share": 0.2,
    "new_account_days": 14,
    "new_margin_hours": 24,
    "flag_score": 0.5,
    "max_examples": 5,
    "profile_sample": 500,  # a bigger set's exposure and age are estimated on this many accounts
    # model shifts
    "release_margin_hours": 24,
    "adopt_hours": 12,
    "shift_post_hours": 48,
    "move_share": 0.7,
    "min_model_requests": 5,
    "cohort_gap_minutes": 30,
    "tight_hours": 6,
    "max_new_models": 10,
    "shift_flag_score": 0.5,
    # restricted exposure (as in the graph analysis)
    "leak_share": graph.DEFAULTS["leak_share"],
    "hint_share": graph.DEFAULTS["hint_share"],
}

BANDS = 4
BAND_BITS = 16
MINUTE = 60_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR


def run(ctx: AnalysisContext) -> list[Finding]:
    """Campaign and model-shift findings (only what is flagged)."""
    p = {name: graph.param(ctx, NAME, DEFAULTS, name) for name in DEFAULTS}
    bucket_ms = max(int(p["bucket_minutes"] * MINUTE), MINUTE)
    timeline = _timeline(ctx, bucket_ms)
    if timeline.total == 0:
        return []
    say = ctx.progress or (lambda _message: None)
    say("campaigns: prompt fingerprints")
    sets = near_duplicate_sets(ctx, p, bucket_ms, timeline.total)
    say(f"campaigns: {len(sets)} near-duplicate sets")
    say("campaigns: new models")
    shifts = _adopters(ctx, p, timeline)
    limit = int(p["profile_sample"])
    ids = sorted({a for s in sets for a in _some(s.accounts, limit)} | {a for m in shifts for a in m.adopters})
    profiles = graph.account_profiles(ctx, ids)
    findings = [f for s in sets if (f := _campaign(s, profiles, timeline, p)) is not None]
    for shift in shifts:
        findings.extend(_model_shift(shift, profiles, p, timeline.start_ms))
    findings.sort(key=lambda f: (f.kind, -f.score, f.subject))
    return findings


# -- time ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Timeline:
    """Requests per time bucket over the whole log, and its span."""

    bucket_ms: int
    counts: dict[int, int]
    total: int
    start_ms: int
    end_ms: int


def _timeline(ctx: AnalysisContext, bucket_ms: int) -> Timeline:
    ev = ctx.events
    bucket = ev.ts_ms // bucket_ms
    rows = (
        ev.group_by(bucket=bucket)
        .agg(n=ev.count(), first=ev.ts_ms.min(), last=ev.ts_ms.max())
        .filter(lambda t: t.bucket.notnull())
        .to_pyarrow()
    )
    if rows.num_rows == 0:
        return Timeline(bucket_ms, {}, 0, 0, 0)
    counts = dict(zip(rows["bucket"].to_pylist(), rows["n"].to_pylist(), strict=True))
    return Timeline(
        bucket_ms,
        counts,
        sum(counts.values()),
        min(rows["first"].to_pylist()),
        max(rows["last"].to_pylist()),
    )


def _new(profile: Profile, since_ms: int, p: dict[str, float], log_start: int) -> bool:
    """Created within ``new_account_days`` before ``since_ms``; without a creation time, first
    seen in the log at most ``new_margin_hours`` before ``since_ms`` (and not in the log's first
    ``new_margin_hours``, where everybody is first seen)."""
    if profile.created_ms is not None:
        return profile.created_ms >= since_ms - p["new_account_days"] * DAY
    margin = p["new_margin_hours"] * HOUR
    return profile.first_ms >= max(log_start + margin, since_ms - margin)


def _exposure(accounts: Sequence[str], profiles: dict[str, Profile], p: dict[str, float]) -> dict[str, Any]:
    """Restricted exposure of ``accounts``, over those profiled (all of them, or a sample of a big
    set: then ``profiled`` says how many)."""
    profs = [profiles[a] for a in accounts if a in profiles]
    values = [q.exposure(p["leak_share"], p["hint_share"]) for q in profs]
    events = sum(q.events for q in profs)
    restricted = sum(q.restricted for q in profs)
    return {
        "mean_exposure": round(sum(values) / len(profs), 4) if profs else 0.0,
        "exposed_accounts": sum(v > 0 for v in values),
        "profiled": len(profs),
        "restricted_requests": restricted,
        "restricted_traffic_share": round(restricted / events, 4) if events else 0.0,
        "anonymiser_share": round(sum(q.anonymised for q in profs) / events, 4) if events else 0.0,
    }


def _some(accounts: Sequence[str], limit: int) -> Sequence[str]:
    """``accounts``, or a deterministic sample of ``limit`` of them (the smallest hashes)."""
    if len(accounts) <= limit:
        return accounts
    return sorted(accounts, key=lambda a: short_hash(a, 16))[:limit]


# -- near-duplicate prompt sets ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NearDuplicates:
    """Near-duplicate fingerprints (one set, or several sent by mostly the same accounts: one per
    centre) and the requests that carry them."""

    centres: tuple[int, ...]  # the biggest set's first
    fingerprints: npt.NDArray[np.uint64]
    accounts: tuple[str, ...]
    account: npt.NDArray[np.int64]  # per row: index into ``accounts``
    bucket: npt.NDArray[np.int64]
    count: npt.NDArray[np.int64]
    distance: npt.NDArray[np.int64]  # per row: Hamming distance from its set's centre
    sample_rate: int = 1  # the rows are one request in ``sample_rate`` (see ``sample_rows``)


_NIBBLE = np.full(256, 255, dtype=np.uint8)
for _i, _c in enumerate(b"0123456789abcdef"):
    _NIBBLE[_c] = _NIBBLE[ord(chr(_c).upper())] = _i


def parse_fingerprints(values: Any) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.bool_]]:
    """64-bit integers of 16-hex-digit fingerprints (a list or an Arrow string array), and which
    values were valid; vectorised."""
    arr = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else pa.array(values, pa.string())
    n = len(arr)
    ok = np.asarray(pc.equal(pc.binary_length(arr), 16).fill_null(False), dtype=bool)
    filled = pc.if_else(pa.array(ok), arr, pa.scalar("0" * 16)).cast(pa.binary())
    offsets = np.frombuffer(filled.buffers()[1], dtype=np.int32)[filled.offset : filled.offset + n + 1]
    data = np.frombuffer(filled.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[0] + 16 * n].reshape(n, 16)
    nibbles = _NIBBLE[data]
    ok &= (nibbles != 255).all(axis=1)
    out = np.zeros(n, dtype=np.uint64)
    for k in range(16):
        out |= nibbles[:, k].astype(np.uint64) << np.uint64(4 * (15 - k))
    out[~ok] = 0
    return out, ok


def hamming(a: npt.NDArray[np.uint64], b: int | np.uint64) -> npt.NDArray[np.int64]:
    out: npt.NDArray[np.int64] = np.bitwise_count(a ^ np.uint64(b)).astype(np.int64)
    return out


def _majority(fps: npt.NDArray[np.uint64], weight: npt.NDArray[np.float64]) -> int:
    shifts = np.arange(64, dtype=np.uint64)
    bits = ((fps[:, None] >> shifts) & np.uint64(1)).astype(np.float64)
    ones = weight @ bits
    set_bits = shifts[ones * 2 > weight.sum()]
    return int(np.bitwise_or.reduce(np.uint64(1) << set_bits)) if len(set_bits) else 0


def _band_values(fps: npt.NDArray[np.uint64], band: int) -> npt.NDArray[np.uint64]:
    shift = np.uint64(BAND_BITS * (BANDS - 1 - band))
    return (fps >> shift) & np.uint64((1 << BAND_BITS) - 1)


def _working_set(ctx: AnalysisContext, p: dict[str, float], total: int) -> tuple[Any, int]:
    """The fingerprinted requests to work on (account, fingerprint, time), cached on the backend,
    and the sample rate: over ``sample_rows`` requests, a deterministic sample of about that many
    (by time: ``(ts_ms + ts_ms // 1000) % rate == 0``, also for logs in whole seconds)."""
    ev = ctx.events
    fp = ev.filter(ev.account_id.notnull() & ev.prompt_fingerprint.notnull() & (ev.prompt_fingerprint.length() == 16))
    rate = max(1, int(total // max(p["sample_rows"], 1)))
    if rate > 1:
        fp = fp.filter((fp.ts_ms + fp.ts_ms // 1000) % rate == 0)
    return fp.select("account_id", "prompt_fingerprint", "ts_ms").cache(), rate


def _candidates(sample: Any, p: dict[str, float], rate: int) -> list[list[str]]:
    """Per band, the values of the fingerprints of ``sample`` far above chance."""
    counts = None
    for band in range(BANDS):
        value = sample.prompt_fingerprint.substr(band * 4, 4)
        part = sample.group_by(value=value).agg(n=sample.count()).mutate(band=ibis.literal(band))
        counts = part if counts is None else counts.union(part, distinct=False)
    assert counts is not None
    table = counts.to_pyarrow()
    wanted: list[list[str]] = [[] for _ in range(BANDS)]
    if table.num_rows == 0:
        return wanted
    band_of = np.asarray(table["band"], dtype=np.int64)
    n = np.asarray(table["n"], dtype=np.float64)
    values = table["value"].to_pylist()
    mean = n[band_of == 0].sum() / 2**BAND_BITS
    threshold = max(p["band_min_events"] / rate, mean + p["band_z"] * math.sqrt(mean))
    # the most populous first (ties by band and value, so every backend keeps the same)
    hot = sorted(np.flatnonzero(n >= threshold).tolist(), key=lambda i: (-n[i], band_of[i], values[i]))
    for i in hot[: int(p["max_candidate_groups"])]:
        wanted[band_of[i]].append(values[i])
    return wanted


def _fetch(fp: Any, wanted: list[list[str]], bucket_ms: int) -> pa.Table:
    """The candidates' requests as (account, fingerprint, bucket) counts: one semi-join per band
    (far faster than long IN lists); a fingerprint matching in two bands gives the same row twice,
    which the distinct union drops."""
    parts = None
    for band, values in enumerate(wanted):
        if not values:
            continue
        cand = ibis.memtable(pa.table({"band_value": pa.array(values, pa.string())}))
        sel = fp.join(cand, fp.prompt_fingerprint.substr(band * 4, 4) == cand.band_value, how="semi")
        part = sel.group_by(["account_id", "prompt_fingerprint", (sel.ts_ms // bucket_ms).name("bucket")]).agg(
            n=sel.count()
        )
        parts = part if parts is None else parts.union(part, distinct=True)
    assert parts is not None
    return parts.to_pyarrow()


def near_duplicate_sets(ctx: AnalysisContext, p: dict[str, float], bucket_ms: int, total: int) -> list[NearDuplicates]:
    """Sets of near-duplicate fingerprints sent by ``min_accounts`` accounts or more."""
    fp, rate = _working_set(ctx, p, total)
    try:
        wanted = _candidates(fp, p, rate)
        if not any(wanted):
            return []
        rows = _fetch(fp, wanted, bucket_ms)
    finally:
        fp.release()
    parsed, ok = parse_fingerprints(rows["prompt_fingerprint"])
    keep = np.flatnonzero(ok)
    if len(keep) == 0:
        return []
    names_arr = pc.unique(rows["account_id"]).sort()
    acc_all = np.asarray(pc.index_in(rows["account_id"], value_set=names_arr), dtype=np.int64)
    bucket_all = np.asarray(rows["bucket"], dtype=np.int64)
    order = keep[np.lexsort((bucket_all[keep], acc_all[keep], parsed[keep]))]  # every backend: one order
    row_fp, row_acc, row_bucket = parsed[order], acc_all[order], bucket_all[order]
    row_n = np.asarray(rows["n"], dtype=np.int64)[order]
    names = names_arr.to_pylist()
    # distinct fingerprints and the distinct accounts that send each (its weight)
    uniq, inverse = np.unique(row_fp, return_inverse=True)
    pairs = np.unique(inverse * len(names) + row_acc)
    weight = np.bincount(pairs // len(names), minlength=len(uniq)).astype(np.float64)
    # a candidate value whose requests come from fewer than min_accounts accounts (one heavy
    # account repeating its app's prompt) cannot make a set: not refined
    pair_fp, pair_acc = pairs // len(names), pairs % len(names)
    for band in range(BANDS):
        bv = _band_values(uniq, band)[pair_fp].astype(np.int64)
        values, n_accounts = np.unique(np.unique(bv * len(names) + pair_acc) // len(names), return_counts=True)
        enough = {f"{int(v):04x}" for v in values[n_accounts >= p["min_accounts"]]}
        wanted[band] = [v for v in wanted[band] if v.lower() in enough]
    found = _find_sets(uniq, weight, wanted, p)
    merged = _merge(found, int(p["max_hamming"]), len(uniq))
    set_of = np.full(len(uniq), -1, dtype=np.int64)
    for k, (_, members) in enumerate(merged):
        set_of[members] = k
    row_set = set_of[inverse]
    by_set = np.argsort(row_set, kind="stable")
    cuts = np.searchsorted(row_set[by_set], np.arange(len(merged) + 1))
    out = []
    for k, (centre, members) in enumerate(merged):
        rows_k = by_set[cuts[k] : cuts[k + 1]]
        accs = np.unique(row_acc[rows_k])
        if len(accs) < p["min_accounts"]:
            continue
        out.append(
            NearDuplicates(
                centres=(centre,),
                fingerprints=uniq[members],
                accounts=tuple(names[i] for i in accs),
                account=np.searchsorted(accs, row_acc[rows_k]),
                bucket=row_bucket[rows_k],
                count=row_n[rows_k],
                distance=hamming(row_fp[rows_k], centre),
                sample_rate=rate,
            )
        )
    return _merge_by_accounts(out, p["merge_jaccard"])


def _merge_by_accounts(sets: list[NearDuplicates], threshold: float) -> list[NearDuplicates]:
    """One set for the sets sent by mostly the same accounts (Jaccard index of their accounts
    ``threshold`` or more): a campaign with several templates is one campaign; a popular prompt
    that its accounts also send (many more accounts) stays apart."""
    parent = list(range(len(sets)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    accounts = [set(s.accounts) for s in sets]
    for i in range(len(sets)):
        for j in range(i):
            union = len(accounts[i] | accounts[j])
            if union and len(accounts[i] & accounts[j]) / union >= threshold:
                parent[root(j)] = root(i)
    groups: dict[int, list[int]] = {}
    for i in range(len(sets)):
        groups.setdefault(root(i), []).append(i)
    out = []
    for members in groups.values():
        if len(members) == 1:
            out.append(sets[members[0]])
            continue
        parts = sorted((sets[i] for i in members), key=lambda x: (-int(x.count.sum()), x.centres))
        names = tuple(sorted(set().union(*(x.accounts for x in parts))))
        index = {a: k for k, a in enumerate(names)}
        out.append(
            NearDuplicates(
                centres=tuple(c for x in parts for c in x.centres),
                fingerprints=np.concatenate([x.fingerprints for x in parts]),
                accounts=names,
                account=np.concatenate([np.array([index[x.accounts[k]] for k in x.account], np.int64) for x in parts]),
                bucket=np.concatenate([x.bucket for x in parts]),
                count=np.concatenate([x.count for x in parts]),
                distance=np.concatenate([x.distance for x in parts]),
                sample_rate=parts[0].sample_rate,
            )
        )
    return sorted(out, key=lambda x: x.centres)


def _find_sets(
    uniq: npt.NDArray[np.uint64], weight: npt.NDArray[np.float64], wanted: list[list[str]], p: dict[str, float]
) -> list[tuple[int, npt.NDArray[np.int64]]]:
    """(centre, indexes into ``uniq``) of up to ``max_sets_per_group`` near-duplicate sets in
    each candidate band value, among the fingerprints no set has taken yet (``weight``: accounts
    per fingerprint; a pool sent by fewer than ``min_accounts`` cannot make a set)."""
    limit = int(p["max_hamming"])
    found: list[tuple[int, npt.NDArray[np.int64]]] = []  # (centre, indexes into uniq)
    taken = np.zeros(len(uniq), dtype=bool)
    for band, band_values in enumerate(wanted):
        bv = _band_values(uniq, band)
        order = np.argsort(bv, kind="stable")
        ordered = bv[order]
        for value in sorted(band_values):
            key = np.uint64(int(value, 16))
            lo, hi = np.searchsorted(ordered, key, "left"), np.searchsorted(ordered, key, "right")
            remaining = np.sort(order[lo:hi])
            for _ in range(int(p["max_sets_per_group"])):
                remaining = remaining[~taken[remaining]]
                if weight[remaining].sum() < p["min_accounts"]:
                    break
                centre, members = _refine(uniq, weight, remaining, limit)
                if len(members) == 0:
                    break
                if weight[members].sum() >= p["min_accounts"]:  # else too few accounts to matter
                    found.append((centre, members))
                    taken[members] = True
                else:
                    remaining = np.setdiff1d(remaining, members)
    return found


def _refine(
    uniq: npt.NDArray[np.uint64], weight: npt.NDArray[np.float64], pool: npt.NDArray[np.int64], limit: int
) -> tuple[int, npt.NDArray[np.int64]]:
    """From the most widely sent fingerprint of ``pool``, the majority centre of the fingerprints
    within ``limit`` bits, refined twice; and those fingerprints."""
    start = pool[np.lexsort((uniq[pool], -weight[pool]))[0]]
    centre = int(uniq[start])
    members = np.zeros(0, dtype=np.int64)
    for _ in range(3):
        members = pool[hamming(uniq[pool], centre) <= limit]
        if len(members) == 0:
            break
        new_centre = _majority(uniq[members], weight[members])
        if new_centre == centre:
            break
        centre = new_centre
    members = pool[hamming(uniq[pool], centre) <= limit]
    return centre, members


def _merge(
    found: list[tuple[int, npt.NDArray[np.int64]]], limit: int, n: int
) -> list[tuple[int, npt.NDArray[np.int64]]]:
    """Union of the sets whose centres are within ``limit`` bits or that share a fingerprint
    (``n``: how many fingerprints there are); the result's sets are disjoint."""
    parent = list(range(len(found)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    centres = np.array([c for c, _ in found], dtype=np.uint64)
    owner = np.full(n, -1, dtype=np.int64)
    for i, (centre, members) in enumerate(found):
        for j in np.flatnonzero(hamming(centres[:i], centre) <= limit):
            parent[root(int(j))] = root(i)
        previous = owner[members]
        for j in np.unique(previous[previous >= 0]):
            parent[root(int(j))] = root(i)
        owner[members] = i
    groups: dict[int, list[int]] = {}
    for i in range(len(found)):
        groups.setdefault(root(i), []).append(i)
    out = []
    for members_of in groups.values():
        members = np.unique(np.concatenate([found[i][1] for i in members_of]))
        biggest = max(members_of, key=lambda i: (len(found[i][1]), -i))
        out.append((found[biggest][0], members))
    return sorted(out, key=lambda x: x[0])


def _campaign(
    s: NearDuplicates, profiles: dict[str, Profile], timeline: Timeline, p: dict[str, float]
) -> Finding | None:
    n_acc = len(s.accounts)
    total = int(s.count.sum())
    buckets, where = np.unique(s.bucket, return_inverse=True)
    per_bucket = np.bincount(where, weights=s.count).astype(np.int64)
    accounts_per_bucket = np.bincount(np.unique(where * n_acc + s.account) // n_acc, minlength=len(buckets))
    expected = np.array([total * timeline.counts.get(int(b), 0) / timeline.total for b in buckets])
    need = max(p["sync_min_accounts"], p["sync_account_share"] * n_acc)
    hot = (accounts_per_bucket >= need) & (per_bucket >= p["sync_lift"] * expected)
    sync = float(per_bucket[hot].sum() / total) if total else 0.0
    start = int(buckets.min()) * timeline.bucket_ms
    profs = {a: profiles[a] for a in s.accounts if a in profiles}
    new = [a for a, q in profs.items() if _new(q, start, p, timeline.start_ms)]
    new_share = len(new) / len(profs) if profs else 0.0
    exposure = _exposure(s.accounts, profiles, p)
    coordination = 1 - (1 - 0.8 * sync) * (1 - 0.6 * new_share) * (1 - exposure["mean_exposure"])
    size_factor = 1 - math.exp(-n_acc / 5)
    score = size_factor * coordination
    if n_acc < p["min_accounts"] or score < p["flag_score"]:
        return None
    top = np.lexsort((buckets, -accounts_per_bucket, -per_bucket))[: int(p["max_examples"])]
    has_created = any(q.created_ms is not None for q in profs.values())
    evidence: dict[str, Any] = {
        "accounts": n_acc,
        "requests": total,
        "sample_rate": s.sample_rate,
        "fingerprints": len(s.fingerprints),
        "centres": [f"{c:016x}" for c in s.centres[: int(p["max_examples"])]],
        "hamming_max": int(s.distance.max()),
        "hamming_mean": round(float(np.average(s.distance, weights=s.count)), 2),
        "sync_share": round(sync, 4),
        "hot_buckets": int(hot.sum()),
        "bucket_minutes": int(timeline.bucket_ms // MINUTE),
        "busiest_buckets": [
            [iso(int(buckets[i]) * timeline.bucket_ms), int(accounts_per_bucket[i]), int(per_bucket[i])] for i in top
        ],
        "new_accounts": len(new),
        "new_basis": "created" if has_created else "first_seen",
        "exposure": exposure,
        "first_seen": iso(start),
        "last_seen": iso((int(buckets.max()) + 1) * timeline.bucket_ms),
        "factors": {"size": round(size_factor, 4), "coordination": round(coordination, 4)},
    }
    return Finding(CAMPAIGN, graph.group_id("campaign", s.accounts), min(score, 1.0), evidence, s.accounts)


# -- model shifts ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Shift:
    """The adopters of one new model."""

    model: str
    release_ms: int
    adopters: dict[str, tuple[int, int, int, int]]  # account -> (first request to it, pre, post, post on it)


def _adopters(ctx: AnalysisContext, p: dict[str, float], timeline: Timeline) -> list[Shift]:
    ev = ctx.events
    models = ev.filter(ev.model.notnull()).group_by("model").agg(first=ev.ts_ms.min()).to_pyarrow().to_pylist()
    cutoff = timeline.start_ms + p["release_margin_hours"] * HOUR
    new = sorted(
        (m for m in models if m["first"] >= cutoff),
        key=lambda m: (m["first"], m["model"]),
    )[: int(p["max_new_models"])]
    if not new:
        return []
    post = int(p["shift_post_hours"] * HOUR)
    parts = None
    for m in new:
        release, name = int(m["first"]), m["model"]
        win = ev.filter((ev.ts_ms >= release - post) & (ev.ts_ms < release + post))
        after = win.ts_ms >= release
        on_it = after & (win.model == name)
        part = (
            win.group_by("account_id")
            .agg(
                pre=(~after).cast("int64").sum(),
                post=after.cast("int64").sum(),
                post_on=on_it.fill_null(False).cast("int64").sum(),
                first_on=ibis.ifelse(on_it, win.ts_ms, None).min(),
            )
            .mutate(model=ibis.literal(name))
        )
        parts = part if parts is None else parts.union(part, distinct=False)
    assert parts is not None
    rows = parts.filter((parts.post_on >= max(p["min_model_requests"], 1)) & parts.first_on.notnull())
    rows = rows.to_pyarrow().to_pylist()
    out = []
    for m in new:
        release = int(m["first"])
        adopters = {
            r["account_id"]: (int(r["first_on"]), int(r["pre"]), int(r["post"]), int(r["post_on"]))
            for r in rows
            if r["model"] == m["model"]
            and r["first_on"] - release <= p["adopt_hours"] * HOUR
            and r["post_on"] >= p["move_share"] * r["post"]
        }
        if len(adopters) >= p["min_accounts"]:
            out.append(Shift(m["model"], release, adopters))
    return out


def _model_shift(shift: Shift, profiles: dict[str, Profile], p: dict[str, float], start_ms: int) -> list[Finding]:
    exposed = sorted(
        (a for a in shift.adopters if a in profiles and profiles[a].exposure(p["leak_share"], p["hint_share"]) > 0),
        key=lambda a: (shift.adopters[a][0], a),
    )
    cohorts: list[list[str]] = []
    for a in exposed:
        if cohorts and shift.adopters[a][0] - shift.adopters[cohorts[-1][-1]][0] <= p["cohort_gap_minutes"] * MINUTE:
            cohorts[-1].append(a)
        else:
            cohorts.append([a])
    out = []
    for cohort in cohorts:
        n = len(cohort)
        if n < p["min_accounts"]:
            continue
        firsts = np.array([shift.adopters[a][0] for a in cohort], dtype=np.float64)
        p10, p90 = np.percentile(firsts, [10, 90])
        tightness = max(0.0, 1 - (p90 - p10) / (p["tight_hours"] * HOUR))
        exposure = _exposure(cohort, profiles, p)
        new = [a for a in cohort if _new(profiles[a], shift.release_ms, p, start_ms)]
        new_share = len(new) / n
        size_factor = 1 - math.exp(-n / 5)
        anon = exposure["anonymiser_share"]
        risk = 1 - (1 - exposure["mean_exposure"]) * (1 - 0.5 * anon) * (1 - 0.5 * new_share)
        score = size_factor * (0.4 + 0.6 * tightness) * risk
        if score < p["shift_flag_score"]:
            continue
        lo, hi, members = firsts.min(), firsts.max(), set(cohort)
        background = sum(1 for a, v in shift.adopters.items() if lo <= v[0] <= hi and a not in members)
        post = sum(shift.adopters[a][2] for a in cohort)
        evidence: dict[str, Any] = {
            "model": shift.model,
            "release": iso(shift.release_ms),
            "accounts": n,
            "moved": sum(1 for a in cohort if shift.adopters[a][1] > 0),
            "new_accounts": len(new),
            "median_delay_minutes": round(float(np.median(firsts) - shift.release_ms) / MINUTE, 1),
            "spread_minutes": round(float(p90 - p10) / MINUTE, 1),
            "share_on_model": round(sum(shift.adopters[a][3] for a in cohort) / post, 4) if post else 0.0,
            "other_adopters_meanwhile": background,
            "exposure": exposure,
            "factors": {
                "size": round(size_factor, 4),
                "tightness": round(tightness, 4),
                "risk": round(risk, 4),
            },
        }
        ids = tuple(sorted(cohort))
        subject = f"shift-{short_hash(shift.model + chr(10) + chr(10).join(ids))}"
        out.append(Finding(MODEL_SHIFT, subject, min(score, 1.0), evidence, ids))
    return out
