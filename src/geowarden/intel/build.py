"""Compile parsed sources into one immutable snapshot directory.

How it works: every range boundary of every source becomes a breakpoint, so the address space
is cut into elementary intervals inside which no source changes its answer. Each source then
"paints" its answer onto the intervals it covers (country, ASN, labels, provider), neighbouring
intervals with identical answers are merged, and identical answer rows are stored once.
What goes on disk is columnar ``.npy`` arrays plus ``meta.json`` (see ``snapshot.py``).

Country fusion (the ``country`` field; every source's own answer is kept beside it):

1. a provider's own geofeed for its prefix wins (RFC 8805: the operator says where it is);
2. otherwise the majority of geolocation (DB-IP), routing (iptoasn) and registry (RIR) answers;
3. otherwise the first answer in the order geolocation, registry, routing.

Where the sources' answers differ, the interval carries ``FLAG_DISAGREE``: the disagreement is
evidence for the policy, never resolved silently.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from geowarden.errors import SourceError
from geowarden.intel.sources.base import (
    LABELS,
    MAX_KEY,
    V4_BASE,
    V4_LAST,
    SourceData,
    SourceKind,
    network_bounds,
)

FORMAT_VERSION = 1

FLAG_BITS = {"hosting": 1, "vpn": 2, "tor": 4, "proxy": 8, "relay": 16}
FLAG_RESERVED = 32
FLAG_DISAGREE = 64
FLAG_SPLIT24 = np.uint32(1 << 31)  # in the /24 index: the block holds more than one interval

# Roles of country sources in the vote, by source name.
GEOFEED_SOURCES = ("geofeed",)
GEOLOCATION_SOURCES = ("dbip-country",)
ROUTING_SOURCES = ("iptoasn-country",)
REGISTRY_SOURCES = ("ipverse-rir", "iptocc", "rir-delegated")
ASN_SOURCES = ("dbip-asn", "iptoasn-asn")

#: Special-purpose address blocks (RFC 6890 and friends). A request "from" one of these has
#: reached the decision through a misconfigured proxy chain; the network signal says so.
RESERVED_NETWORKS = (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
    "172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16",
    "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
    "::/128", "::1/128", "100::/64", "2001:db8::/32", "fc00::/7", "fe80::/10", "fec0::/10",
    "ff00::/8",
)  # fmt: skip

Progress = Callable[[str], None]


def _keys(values: Sequence[int]) -> npt.NDArray[np.bytes_]:
    return np.array([v.to_bytes(16, "big") for v in values], dtype="S16")


def _label_priority(name: str) -> int:
    """Lower wins when two label sources name a provider for the same addresses."""
    if name.startswith("tor"):
        return 0
    if name in ("vpn-exits",) or name.startswith("x4bnet-vpn-") and not name.endswith("asn"):
        return 1
    if name.startswith(("ipranges-", "cloud-more-")):
        return 3
    if name == "iporigin":
        return 4
    if name.startswith("x4bnet"):
        return 6 if name.endswith("asn") else 5
    return 2  # the providers' own published ranges


class _Painter:
    """Elementary intervals and helpers to paint per-range values onto them."""

    def __init__(self, sources: Sequence[SourceData], extra_bounds: Sequence[tuple[int, int]]):
        firsts: list[npt.NDArray[np.bytes_]] = []
        ends: list[npt.NDArray[np.bytes_]] = []
        fixed = [0, V4_BASE, V4_LAST + 1]
        for first, last in extra_bounds:
            fixed.append(first)
            if last < MAX_KEY:
                fixed.append(last + 1)
        for src in sources:
            if src.meta.kind == SourceKind.ASN_LABEL or not src.first:
                continue
            firsts.append(_keys(src.first))
            ends.append(_keys([x + 1 for x in src.last if x < MAX_KEY]))
        self.bp: npt.NDArray[np.bytes_] = np.unique(np.concatenate([_keys(fixed), *firsts, *ends]))
        self.n = len(self.bp)

    def positions(self, first: Sequence[int], last: Sequence[int]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Elementary-interval index range ``[s, e)`` of each inclusive key range."""
        s = np.searchsorted(self.bp, _keys(first)).astype(np.int64)
        lastp1 = [x + 1 for x in last]
        e = np.full(len(lastp1), self.n, dtype=np.int64)
        inside = np.fromiter((x <= MAX_KEY for x in lastp1), dtype=bool, count=len(lastp1))
        if inside.any():
            e[inside] = np.searchsorted(self.bp, _keys([x for x in lastp1 if x <= MAX_KEY]))
        return s, e

    def coverage(self, s: npt.NDArray[np.int64], e: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        diff = np.bincount(s, minlength=self.n + 1) - np.bincount(e, minlength=self.n + 1)
        return np.cumsum(diff[: self.n]) > 0

    def paint(self, col: npt.NDArray[Any], s: npt.NDArray[np.int64], e: npt.NDArray[np.int64], v: npt.NDArray[Any]) -> None:
        """Set ``col[s_i:e_i] = v_i``; ranges must be disjoint (see ``flatten``)."""
        lengths = e - s
        keep = lengths > 0
        s, lengths, v = s[keep], lengths[keep], v[keep]
        if not len(s):
            return
        total = int(lengths.sum())
        offsets = np.repeat(s - (np.cumsum(lengths) - lengths), lengths)
        col[np.arange(total, dtype=np.int64) + offsets] = np.repeat(v, lengths)


def flatten(s: npt.NDArray[np.int64], e: npt.NDArray[np.int64], v: npt.NDArray[Any]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[Any]]:
    """Make ranges ``[s, e)`` disjoint; where they nest, the innermost range's value wins."""
    order = np.lexsort((-e, s))
    s, e, v = s[order], e[order], v[order]
    if len(s) < 2 or bool((s[1:] >= e[:-1]).all()):
        return s, e, v
    out_s: list[int] = []
    out_e: list[int] = []
    out_v: list[Any] = []
    stack: list[tuple[int, Any]] = []
    pos = 0
    for si, ei, vi in zip(s.tolist(), e.tolist(), v.tolist(), strict=True):
        while stack and stack[-1][0] <= si:
            end, val = stack.pop()
            if pos < end:
                out_s.append(pos)
                out_e.append(end)
                out_v.append(val)
                pos = end
        if stack and pos < si:
            out_s.append(pos)
            out_e.append(si)
            out_v.append(stack[-1][1])
        pos = si
        stack.append((ei, vi))
    while stack:
        end, val = stack.pop()
        if pos < end:
            out_s.append(pos)
            out_e.append(end)
            out_v.append(val)
            pos = end
    return (
        np.asarray(out_s, dtype=np.int64),
        np.asarray(out_e, dtype=np.int64),
        np.asarray(out_v, dtype=v.dtype),
    )


class _Strings:
    def __init__(self) -> None:
        self.items: list[str] = [""]
        self.index: dict[str, int] = {"": 0}

    def get(self, text: str | None) -> int:
        if not text:
            return 0
        i = self.index.get(text)
        if i is None:
            i = self.index[text] = len(self.items)
            self.items.append(text)
        return i


def build_snapshot(
    sources: Sequence[SourceData],
    out_root: Path,
    *,
    note: str = "",
    progress: Progress | None = None,
) -> Path:
    """Compile ``sources`` into a new snapshot directory under ``out_root``; return its path.

    The directory is written under a temporary name and renamed into place when complete,
    so a failed or interrupted build never leaves a half-written snapshot behind.
    """
    say = progress or (lambda _msg: None)
    t0 = time.perf_counter()
    names = [s.meta.name for s in sources]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise SourceError(f"duplicate source names: {', '.join(sorted(dupes))}")
    range_sources = [s for s in sources if s.meta.kind != SourceKind.ASN_LABEL]
    if not any(len(s) for s in range_sources):
        raise SourceError("no usable source: nothing to build a snapshot from")

    reserved = [network_bounds(n) for n in RESERVED_NETWORKS]
    say(f"cutting the address space at the boundaries of {len(range_sources)} sources")
    painter = _Painter(range_sources, reserved)
    n = painter.n
    strings = _Strings()

    # Countries: one column per country source, then the fused answer.
    countries: list[str] = [""]
    cc_index: dict[str, int] = {"": 0}
    cc_cols: dict[str, npt.NDArray[np.uint16]] = {}
    for src in sources:
        if src.meta.kind != SourceKind.COUNTRY or not len(src):
            continue
        say(f"painting countries from {src.meta.name} ({len(src):,} ranges)")
        codes = np.empty(len(src.values), dtype=np.uint16)
        for i, cc in enumerate(src.values):
            j = cc_index.get(cc)
            if j is None:
                j = cc_index[cc] = len(countries)
                countries.append(cc)
            codes[i] = j
        s, e = painter.positions(src.first, src.last)
        s, e, codes = flatten(s, e, codes)
        col = np.zeros(n, dtype=np.uint16)
        painter.paint(col, s, e, codes)
        cc_cols[src.meta.name] = col

    def first_of(names: Sequence[str]) -> npt.NDArray[np.uint16]:
        out = np.zeros(n, dtype=np.uint16)
        for name in reversed(names):
            col = cc_cols.get(name)
            if col is not None:
                out = np.where(col != 0, col, out)
        return out

    geo, route, reg = first_of(GEOLOCATION_SOURCES), first_of(ROUTING_SOURCES), first_of(REGISTRY_SOURCES)
    majority = np.where(((geo == route) | (geo == reg)) & (geo != 0), geo, np.where((route == reg) & (route != 0), route, 0))
    fallback = np.where(geo != 0, geo, np.where(reg != 0, reg, route))
    fused = np.where(majority != 0, majority, fallback).astype(np.uint16)
    feed = first_of(GEOFEED_SOURCES)
    fused = np.where(feed != 0, feed, fused).astype(np.uint16)
    # Disagreement: two country sources give different non-empty answers.
    lo = np.full(n, np.iinfo(np.uint16).max, dtype=np.uint16)
    hi = np.zeros(n, dtype=np.uint16)
    for col in cc_cols.values():
        lo = np.where(col != 0, np.minimum(lo, col), lo)
        hi = np.maximum(hi, col)
    disagree = (hi != 0) & (lo != hi)

    # ASN: first source in ASN_SOURCES order that covers the interval.
    asn = np.zeros(n, dtype=np.uint32)
    org = np.zeros(n, dtype=np.uint32)
    asn_srcs = sorted(
        (s for s in sources if s.meta.kind == SourceKind.ASN and len(s)),
        key=lambda s: ASN_SOURCES.index(s.meta.name) if s.meta.name in ASN_SOURCES else len(ASN_SOURCES),
        reverse=True,
    )
    for src in asn_srcs:
        say(f"painting ASNs from {src.meta.name} ({len(src):,} ranges)")
        nums = np.fromiter((a for a, _ in src.values), dtype=np.uint32, count=len(src.values))
        orgs = np.fromiter((strings.get(o) for _, o in src.values), dtype=np.uint32, count=len(src.values))
        s, e = painter.positions(src.first, src.last)
        s2, e2, idx = flatten(s, e, np.arange(len(nums), dtype=np.int64))
        painter.paint(asn, s2, e2, nums[idx])
        painter.paint(org, s2, e2, orgs[idx])

    # Labels: flags, which sources said so, and the most specific provider name.
    flags = np.zeros(n, dtype=np.uint8)
    label_srcs = sorted(
        (s for s in sources if s.meta.kind in (SourceKind.LABEL, SourceKind.ASN_LABEL) and len(s)),
        key=lambda s: (_label_priority(s.meta.name), s.meta.name),
    )
    words = max(1, (len(label_srcs) + 63) // 64)
    srcbits = np.zeros((words, n), dtype=np.uint64)
    provider = np.zeros(n, dtype=np.uint32)
    for bit, src in reversed(list(enumerate(label_srcs))):
        say(f"painting labels from {src.meta.name} ({len(src):,} entries)")
        word, mask = bit // 64, np.uint64(1 << (bit % 64))
        if src.meta.kind == SourceKind.ASN_LABEL:
            for label in sorted({lab for lab, _ in src.asn_labels.values()}):
                if label not in FLAG_BITS:
                    raise SourceError(f"{src.meta.name}: unknown label {label!r}")
                keys = np.fromiter((a for a, (lab, _) in src.asn_labels.items() if lab == label), dtype=np.uint32)
                hit = np.isin(asn, keys) & (asn != 0)
                flags[hit] |= FLAG_BITS[label]
                srcbits[word, hit] |= mask
            names_by_asn = {a: strings.get(p) for a, (_, p) in src.asn_labels.items()}
            hit_all = np.isin(asn, np.fromiter(names_by_asn, dtype=np.uint32)) & (asn != 0)
            fill = hit_all & (provider == 0)
            if fill.any():
                lookup = np.vectorize(lambda a: names_by_asn.get(int(a), 0), otypes=[np.uint32])
                provider[fill] = lookup(asn[fill])
            continue
        s, e = painter.positions(src.first, src.last)
        labels = np.array([lab for lab, _ in src.values])
        for label in np.unique(labels).tolist():
            if label not in FLAG_BITS:
                raise SourceError(f"{src.meta.name}: unknown label {label!r} (known: {', '.join(LABELS)})")
            sel = labels == label
            flags[painter.coverage(s[sel], e[sel])] |= FLAG_BITS[label]
        srcbits[word, painter.coverage(s, e)] |= mask
        provs = np.fromiter((strings.get(p) for _, p in src.values), dtype=np.uint32, count=len(src.values))
        s2, e2, pv = flatten(s, e, provs)
        painter.paint(provider, s2, e2, pv)

    rs, re_ = painter.positions([f for f, _ in reserved], [la for _, la in reserved])
    flags[painter.coverage(rs, re_)] |= FLAG_RESERVED
    flags[disagree] |= FLAG_DISAGREE

    say("merging intervals and writing the snapshot")
    fields: dict[str, npt.NDArray[Any]] = {
        "country": fused,
        "asn": asn,
        "org": org,
        "flags": flags,
        "provider": provider,
    }
    for name, col in cc_cols.items():
        fields[f"cc:{name}"] = col
    for w in range(words):
        fields[f"src{w}"] = srcbits[w]
    dtype = np.dtype([(k, v.dtype) for k, v in fields.items()])
    table = np.empty(n, dtype=dtype)
    for k, v in fields.items():
        table[k] = v
    raw = table.view(np.dtype((np.void, dtype.itemsize)))
    change = np.ones(n, dtype=bool)
    change[1:] = raw[1:] != raw[:-1]
    # Keep the family split points even when the answers either side match.
    change[np.searchsorted(painter.bp, _keys([V4_BASE, V4_LAST + 1]))] = True
    starts = painter.bp[change]
    uniq, iv_row = np.unique(raw[change], return_inverse=True)
    rows = uniq.view(dtype)
    iv_row = iv_row.astype(np.uint32).ravel()

    in_v4 = (starts >= _keys([V4_BASE])[0]) & (starts <= _keys([V4_LAST])[0])
    # S16 items lose trailing NUL bytes when turned into Python bytes: slice the raw buffer.
    v4_bytes = np.ascontiguousarray(starts[in_v4]).view(np.uint8).reshape(-1, 16)[:, 12:]
    v4_starts = np.ascontiguousarray(v4_bytes).view(">u4").ravel().astype(np.uint32)
    v4_rows = iv_row[in_v4]
    # Outside the IPv4-mapped block the IPv6 table answers; inside it, the IPv4 table does.
    v6_starts = starts
    v6_rows = iv_row
    idx24 = _index24(v4_starts)

    label_meta = [s.meta.name for s in label_srcs]
    arrays: dict[str, npt.NDArray[Any]] = {
        "v4_starts": v4_starts,
        "v4_rows": v4_rows,
        "v4_index24": idx24,
        "v6_starts": v6_starts,
        "v6_rows": v6_rows,
    }
    for k in fields:
        arrays["row_" + k.replace(":", "__")] = np.ascontiguousarray(rows[k])
    digest = hashlib.sha256()
    for k in sorted(arrays):
        digest.update(k.encode())
        digest.update(np.ascontiguousarray(arrays[k]).tobytes())
    digest.update(json.dumps([s.meta.to_dict() for s in sources], sort_keys=True).encode())
    built = datetime.now(UTC)
    snap_id = f"{built:%Y%m%d}-{digest.hexdigest()[:12]}"
    meta: dict[str, Any] = {
        "format": FORMAT_VERSION,
        "id": snap_id,
        "built_at": built.isoformat(timespec="seconds"),
        "note": note,
        "sources": [
            {**s.meta.to_dict(), "entries": len(s), "skipped": s.skipped} for s in sources
        ],
        "country_sources": list(cc_cols),
        "label_sources": label_meta,
        "label_kinds": {
            s.meta.name: sorted(
                {lab for lab, _ in (s.asn_labels.values() if s.meta.kind == SourceKind.ASN_LABEL else s.values)}
            )
            for s in label_srcs
        },
        "countries": countries,
        "strings": strings.items,
        "flags": {**FLAG_BITS, "reserved": FLAG_RESERVED, "disagree": FLAG_DISAGREE},
        "counts": {
            "v4_intervals": len(v4_starts),
            "v6_intervals": len(v6_starts),
            "rows": len(rows),
            "build_seconds": round(time.perf_counter() - t0, 1),
        },
    }
    out_root.mkdir(parents=True, exist_ok=True)
    final = out_root / snap_id
    if final.exists():
        say(f"snapshot {snap_id} already exists; reusing it")
        return final
    tmp = Path(tempfile.mkdtemp(prefix=".building-", dir=out_root))
    try:
        for k, arr in arrays.items():
            np.save(tmp / f"{k}.npy", arr, allow_pickle=False)
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    say(f"snapshot {snap_id}: {len(v4_starts):,} IPv4 + {len(v6_starts):,} IPv6 intervals, {len(rows):,} rows")
    return final


def _index24(v4_starts: npt.NDArray[np.uint32]) -> npt.NDArray[np.uint32]:
    """For each /24 block, the interval holding its first address; high bit if it holds more."""
    blocks = np.arange(1 << 24, dtype=np.uint64) << np.uint64(8)
    starts64 = v4_starts.astype(np.uint64)
    first = np.searchsorted(starts64, blocks, side="right") - 1
    last = np.searchsorted(starts64, blocks + np.uint64(255), side="right") - 1
    idx = first.astype(np.uint32)
    idx[last != first] |= FLAG_SPLIT24
    return idx
