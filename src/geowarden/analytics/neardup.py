"""Near-duplicate prompt sets: SimHash fingerprints found in groups by banding.

``prompt_fingerprint`` is a 64-bit SimHash in 16 hex digits: near-duplicate prompts differ in a
few bits. Locality-sensitive hashing by banding: four bands of 16 bits (four hex digits each);
two fingerprints within 3 bits share a band. On the backend, one group-by per band counts the
requests of each band value; values far above chance (``band_z`` standard deviations over the
mean of a uniform spread, and ``band_min_events``) are candidates, and only their requests,
reduced to (account, fingerprint, time bucket) counts, come to Python. There each candidate
group is verified: from its most widely sent fingerprint, a bitwise-majority centre is refined
and the fingerprints within ``max_hamming`` bits of it are a near-duplicate set; sets of
different bands with close centres merge, and so do sets sent by mostly the same accounts
(``merge_jaccard``: a campaign with a few templates is one campaign). Only sets sent by
``min_accounts`` accounts or more are kept (``near_duplicate_sets``).

Over ``sample_rows`` requests the search works on a deterministic sample of about that many
(one request in ``rate``, by time), cached on the backend: the counts of a set are of the sample
(``sample_rate``); a campaign's accounts send many requests, so its members are kept.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import ibis
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from geowarden.analytics.findings import AnalysisContext
from geowarden.analytics.thresholds import CampaignThresholds

BANDS = 4
BAND_BITS = 16


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


def _working_set(ctx: AnalysisContext, t: CampaignThresholds, total: int) -> tuple[Any, int]:
    """The fingerprinted requests to work on (account, fingerprint, time), cached on the backend,
    and the sample rate: over ``sample_rows`` requests, a deterministic sample of about that many
    (by time: ``(ts_ms + ts_ms // 1000) % rate == 0``, also for logs in whole seconds)."""
    ev = ctx.events
    fp = ev.filter(ev.account_id.notnull() & ev.prompt_fingerprint.notnull() & (ev.prompt_fingerprint.length() == 16))
    rate = max(1, int(total // max(t.sample_rows, 1)))
    if rate > 1:
        fp = fp.filter((fp.ts_ms + fp.ts_ms // 1000) % rate == 0)
    return fp.select("account_id", "prompt_fingerprint", "ts_ms").cache(), rate


def _candidates(sample: Any, t: CampaignThresholds, rate: int) -> list[list[str]]:
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
    threshold = max(t.band_min_events / rate, mean + t.band_z * math.sqrt(mean))
    # the most populous first (ties by band and value, so every backend keeps the same)
    hot = sorted(np.flatnonzero(n >= threshold).tolist(), key=lambda i: (-n[i], band_of[i], values[i]))
    for i in hot[: int(t.max_candidate_groups)]:
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


def near_duplicate_sets(
    ctx: AnalysisContext, t: CampaignThresholds, bucket_ms: int, total: int
) -> list[NearDuplicates]:
    """Sets of near-duplicate fingerprints sent by ``min_accounts`` accounts or more."""
    fp, rate = _working_set(ctx, t, total)
    try:
        wanted = _candidates(fp, t, rate)
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
        enough = {f"{int(v):04x}" for v in values[n_accounts >= t.min_accounts]}
        wanted[band] = [v for v in wanted[band] if v.lower() in enough]
    found = _find_sets(uniq, weight, wanted, t)
    merged = _merge(found, int(t.max_hamming), len(uniq))
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
        if len(accs) < t.min_accounts:
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
    return _merge_by_accounts(out, t.merge_jaccard)


def _merge_by_accounts(sets: list[NearDuplicates], threshold: float) -> list[NearDuplicates]:
    """One set for the sets sent by mostly the same accounts (Jaccard index of their accounts
    ``threshold`` or more): a campaign with several templates is one campaign; a popular prompt
    that its accounts also send (many more accounts) stays apart."""
    accounts = [set(s.accounts) for s in sets]
    close: list[tuple[int, int]] = []
    for i in range(len(sets)):
        for j in range(i):
            union = len(accounts[i] | accounts[j])
            if union and len(accounts[i] & accounts[j]) / union >= threshold:
                close.append((i, j))
    out = []
    for members in _connected(len(sets), close):
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
    uniq: npt.NDArray[np.uint64], weight: npt.NDArray[np.float64], wanted: list[list[str]], t: CampaignThresholds
) -> list[tuple[int, npt.NDArray[np.int64]]]:
    """(centre, indexes into ``uniq``) of up to ``max_sets_per_group`` near-duplicate sets in
    each candidate band value, among the fingerprints no set has taken yet (``weight``: accounts
    per fingerprint; a pool sent by fewer than ``min_accounts`` cannot make a set)."""
    limit = int(t.max_hamming)
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
            for _ in range(int(t.max_sets_per_group)):
                remaining = remaining[~taken[remaining]]
                if weight[remaining].sum() < t.min_accounts:
                    break
                centre, members = _refine(uniq, weight, remaining, limit)
                if len(members) == 0:
                    break
                if weight[members].sum() >= t.min_accounts:  # else too few accounts to matter
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
    centres = np.array([c for c, _ in found], dtype=np.uint64)
    owner = np.full(n, -1, dtype=np.int64)
    close: list[tuple[int, int]] = []
    for i, (centre, members) in enumerate(found):
        close.extend((i, int(j)) for j in np.flatnonzero(hamming(centres[:i], centre) <= limit))
        previous = owner[members]
        close.extend((i, int(j)) for j in np.unique(previous[previous >= 0]))
        owner[members] = i
    out = []
    for members_of in _connected(len(found), close):
        members = np.unique(np.concatenate([found[i][1] for i in members_of]))
        biggest = max(members_of, key=lambda i: (len(found[i][1]), -i))
        out.append((found[biggest][0], members))
    return sorted(out, key=lambda x: x[0])


def _connected(n: int, pairs: Iterable[tuple[int, int]]) -> list[list[int]]:
    """The groups of ``0 .. n-1`` that ``pairs`` join (union-find), each in ascending order, in
    the order of their smallest member."""
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in pairs:
        parent[root(j)] = root(i)
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(root(i), []).append(i)
    return list(groups.values())
