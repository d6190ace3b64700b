"""Compile parsed sources into one immutable snapshot directory.

How it works: every range boundary of every source becomes a breakpoint, so the address space
is cut into elementary intervals inside which no source changes its answer. Each source then
"paints" its answer onto the intervals it covers (country, ASN, labels, provider), neighbouring
intervals with identical answers are merged, and identical answer rows are stored once.
What goes on disk is columnar ``.npy`` arrays plus ``meta.json`` (see ``format.py``).

Country fusion (the ``country`` field; every source's own answer is kept beside it):

1. a provider's own statement for its prefix wins: its RFC 8805 geofeed (``geofeed``) or the
   region it publishes for the prefix (``provider-region``: AWS, Google Cloud, Azure, Oracle);
2. otherwise the majority of geolocation (DB-IP), routing (iptoasn) and registry (RIR) answers;
3. otherwise the first answer in the order geolocation, registry, routing.

Where the sources' answers differ, the interval carries ``FLAG_DISAGREE``: the disagreement is
evidence for the policy, never resolved silently. Where the answer was only reached by step 3
(the sources disagree and neither a provider's statement nor a majority settles it), it also
carries ``FLAG_CONTESTED``: the default policy challenges a contested restricted answer rather
than blocking on it. A provider's statement settles the question: no disagreement is flagged
there (the other sources' answers are still kept beside it).

A location-preserving relay (a provider's relay egress list, e.g. iCloud Private Relay) is not a
VPN nor a hosting address for the policy: where a relay source labels an interval, the ``vpn``
and ``hosting`` flags other lists give the same addresses are cleared (who said them is kept).

Peers' shared indicators (sources ``shared:<peer>``, ``sources/shared.py``) are labels beside
the local evidence, never part of it: they set no flag and name no provider; one label-source bit
per (peer, confidence bucket) records who said ``shared-indicator`` of an interval, and how sure.

This module is one concept, the snapshot compiler, and stays one module: cutting the address
space, painting and fusing the answers, and writing the arrays are the stages of one pass over
the same intervals and share its intermediate arrays; the on-disk format it writes is already
apart (``format.py``), as are the parsers that feed it (``sources/``).
"""

from __future__ import annotations

import hashlib
import json
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
from geowarden.intel import classify
from geowarden.intel.format import (
    CLASSIFIED_SOURCE,
    FLAG_BITS,
    FLAG_CONTESTED,
    FLAG_DISAGREE,
    FLAG_RESERVED,
    FLAG_SPLIT24,
    FORMAT_VERSION,
    META_FILE,
    PROVIDER_STATEMENT_SOURCES,
    SHARED_LABEL,
    SHARED_PREFIX,
    V4_INDEX24,
    V4_ROWS,
    V4_STARTS,
    V6_ROWS,
    V6_STARTS,
    SnapshotMeta,
    country_field,
    label_word_field,
    row_array,
    shared_slot,
)
from geowarden.intel.sources.base import (
    LABELS,
    MAX_KEY,
    V4_BASE,
    V4_LAST,
    SourceData,
    SourceKind,
    SourceMeta,
    network_bounds,
)

# Roles of country sources in the vote, by source name.
GEOFEED_SOURCES = PROVIDER_STATEMENT_SOURCES
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

CLASSIFIED_META = SourceMeta(
    name=CLASSIFIED_SOURCE,
    title="ASNs classified hosting, VPN or proxy from list coverage, geolocation spread, size and name "
    "(geowarden.intel.classify)",
    kind=SourceKind.ASN_LABEL,
    licence="derived from the other sources of this snapshot",
)

Progress = Callable[[str], None]


def _keys(values: Sequence[int]) -> npt.NDArray[np.bytes_]:
    return np.array([v.to_bytes(16, "big") for v in values], dtype="S16")


def _label_priority(name: str) -> int:
    """Lower wins when two label sources name a provider for the same addresses."""
    if name.startswith("tor"):
        return 0
    if name == "vpn-exits" or (name.startswith("x4bnet-vpn-") and not name.endswith("asn")):
        return 1
    if name.startswith("ipranges-"):
        return 3
    if name.startswith("cloud-more-") or name == "iporigin":  # community aggregations: noisier
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

    def positions(
        self, first: Sequence[int], last: Sequence[int]
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
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

    def paint(
        self, col: npt.NDArray[Any], s: npt.NDArray[np.int64], e: npt.NDArray[np.int64], v: npt.NDArray[Any]
    ) -> None:
        """Set ``col[s_i:e_i] = v_i``; ranges must be disjoint (see ``flatten``)."""
        lengths = e - s
        keep = lengths > 0
        s, lengths, v = s[keep], lengths[keep], v[keep]
        if not len(s):
            return
        total = int(lengths.sum())
        offsets = np.repeat(s - (np.cumsum(lengths) - lengths), lengths)
        col[np.arange(total, dtype=np.int64) + offsets] = np.repeat(v, lengths)


def flatten(
    s: npt.NDArray[np.int64], e: npt.NDArray[np.int64], v: npt.NDArray[Any]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[Any]]:
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
    t0 = time.perf_counter()
    names = [s.meta.name for s in sources]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise SourceError(f"duplicate source names: {', '.join(sorted(dupes))}")
    if not any(len(s) for s in sources if s.meta.kind != SourceKind.ASN_LABEL):
        raise SourceError("no usable source: nothing to build a snapshot from")
    c = _Compiler(sources, progress or (lambda _msg: None))
    c.countries()
    c.asns()
    c.labels()
    arrays, meta = c.tables()
    meta["note"] = note
    meta["counts"]["build_seconds"] = round(time.perf_counter() - t0, 1)
    return _write(arrays, meta, out_root, c.say)


class _Compiler:
    """The columns of one build, painted onto the elementary intervals."""

    def __init__(self, sources: Sequence[SourceData], say: Progress) -> None:
        self.sources = sources
        self.say = say
        self.reserved = [network_bounds(n) for n in RESERVED_NETWORKS]
        range_sources = [s for s in sources if s.meta.kind != SourceKind.ASN_LABEL]
        say(f"cutting the address space at the boundaries of {len(range_sources)} sources")
        self.painter = _Painter(range_sources, self.reserved)
        self.n = n = self.painter.n
        self.strings = _Strings()
        self.countries_list: list[str] = [""]
        self.cc_cols: dict[str, npt.NDArray[np.uint16]] = {}
        self.fused = np.zeros(n, dtype=np.uint16)
        self.asn = np.zeros(n, dtype=np.uint32)
        self.org = np.zeros(n, dtype=np.uint32)
        self.flags = np.zeros(n, dtype=np.uint8)
        self.provider = np.zeros(n, dtype=np.uint32)
        self.shared_srcs = [s for s in sources if s.meta.name.startswith(SHARED_PREFIX) and (s.first or s.asn_labels)]
        self.label_srcs = sorted(
            (
                s
                for s in sources
                if s.meta.kind in (SourceKind.LABEL, SourceKind.ASN_LABEL)
                and len(s)
                and not s.meta.name.startswith(SHARED_PREFIX)
            ),
            key=lambda s: (_label_priority(s.meta.name), s.meta.name),
        )
        self.inferred: SourceData | None = None
        self.verdicts: dict[int, classify.Verdict] = {}
        if any(s.meta.kind == SourceKind.ASN for s in sources) and any(
            s.meta.kind == SourceKind.LABEL and not s.meta.name.startswith(SHARED_PREFIX) for s in sources
        ):
            self.inferred = SourceData(meta=CLASSIFIED_META)
            self.label_srcs.append(self.inferred)
        # One bit per (source, label) pair: which source said which label of an interval.
        self.slots: list[tuple[str, str]] = [
            (src.meta.name, label)
            for src in self.label_srcs
            for label in (classify.LABELS if src is self.inferred else _labels_of(src) or ["hosting"])
        ]
        self.slots += [(slot, SHARED_LABEL) for src in self.shared_srcs for slot in _shared_slots(src)]
        self.slot_index = {slot: i for i, slot in enumerate(self.slots)}
        self.srcbits = np.zeros((max(1, (len(self.slots) + 63) // 64), n), dtype=np.uint64)

    def countries(self) -> None:
        """One column per country source, the fused answer, and the disagreement flag."""
        cc_index: dict[str, int] = {"": 0}
        for src in self.sources:
            if src.meta.kind != SourceKind.COUNTRY or not len(src):
                continue
            self.say(f"painting countries from {src.meta.name} ({len(src):,} ranges)")
            codes = np.empty(len(src.values), dtype=np.uint16)
            for i, cc in enumerate(src.values):
                j = cc_index.get(cc)
                if j is None:
                    j = cc_index[cc] = len(self.countries_list)
                    self.countries_list.append(cc)
                codes[i] = j
            s, e = self.painter.positions(src.first, src.last)
            s, e, codes = flatten(s, e, codes)
            col = np.zeros(self.n, dtype=np.uint16)
            self.painter.paint(col, s, e, codes)
            self.cc_cols[src.meta.name] = col

        geo, route, reg = (
            self._first_of(GEOLOCATION_SOURCES),
            self._first_of(ROUTING_SOURCES),
            self._first_of(REGISTRY_SOURCES),
        )
        majority = np.where(
            ((geo == route) | (geo == reg)) & (geo != 0), geo, np.where((route == reg) & (route != 0), route, 0)
        )
        fallback = np.where(geo != 0, geo, np.where(reg != 0, reg, route))
        fused = np.where(majority != 0, majority, fallback)
        feed = self._first_of(GEOFEED_SOURCES)
        self.fused = np.where(feed != 0, feed, fused).astype(np.uint16)
        lo = np.full(self.n, np.iinfo(np.uint16).max, dtype=np.uint16)
        hi = np.zeros(self.n, dtype=np.uint16)
        for name, col in self.cc_cols.items():
            if name in GEOFEED_SOURCES:
                continue
            lo = np.where(col != 0, np.minimum(lo, col), lo)
            hi = np.maximum(hi, col)
        disagree = (hi != 0) & (lo != hi) & (feed == 0)  # a provider's own statement settles it
        self.flags[disagree] |= FLAG_DISAGREE
        self.flags[disagree & (majority == 0)] |= FLAG_CONTESTED

    def _first_of(self, names: Sequence[str]) -> npt.NDArray[np.uint16]:
        out = np.zeros(self.n, dtype=np.uint16)
        for name in reversed(names):
            col = self.cc_cols.get(name)
            if col is not None:
                out = np.where(col != 0, col, out)
        return out

    def asns(self) -> None:
        """ASN and organisation from the first source in ``ASN_SOURCES`` order that covers."""
        asn_srcs = sorted(
            (s for s in self.sources if s.meta.kind == SourceKind.ASN and len(s)),
            key=lambda s: ASN_SOURCES.index(s.meta.name) if s.meta.name in ASN_SOURCES else len(ASN_SOURCES),
            reverse=True,
        )
        for src in asn_srcs:
            self.say(f"painting ASNs from {src.meta.name} ({len(src):,} ranges)")
            nums = np.fromiter((a for a, _ in src.values), dtype=np.uint32, count=len(src.values))
            orgs = np.fromiter((self.strings.get(o) for _, o in src.values), dtype=np.uint32, count=len(src.values))
            s, e = self.painter.positions(src.first, src.last)
            s2, e2, idx = flatten(s, e, np.arange(len(nums), dtype=np.int64))
            self.painter.paint(self.asn, s2, e2, nums[idx])
            self.painter.paint(self.org, s2, e2, orgs[idx])

    def labels(self) -> None:
        """Label flags, which sources said so, and the most specific provider name."""
        for src in reversed(self.label_srcs):
            if src.meta.kind == SourceKind.LABEL:
                self.say(f"painting labels from {src.meta.name} ({len(src):,} entries)")
                self._range_labels(src)
        self._infer_hosting_asns()
        for src in reversed(self.label_srcs):
            if src.meta.kind == SourceKind.ASN_LABEL:
                self.say(f"labelling by ASN from {src.meta.name} ({len(src):,} ASNs)")
                self._asn_labels(src)
        for src in self.shared_srcs:
            self.say(f"labelling indicators shared by {src.meta.name.removeprefix(SHARED_PREFIX)}")
            self._shared_labels(src)
        relay = (self.flags & FLAG_BITS["relay"]) != 0
        self.flags[relay] &= np.uint8(0xFF ^ (FLAG_BITS["vpn"] | FLAG_BITS["hosting"]))
        rs, re_ = self.painter.positions([f for f, _ in self.reserved], [la for _, la in self.reserved])
        self.flags[self.painter.coverage(rs, re_)] |= FLAG_RESERVED

    def _infer_hosting_asns(self) -> None:
        """Label the ASNs no list names from what the build knows of them (``intel/classify.py``):
        the share of their IPv4 space the range lists label, how many countries geolocation puts
        it in, its size and the organisation's name. Source ``classified-asn``; each verdict's
        rule and confidence go in the snapshot's meta (``classified``)."""
        src = self.inferred
        if src is None:
            return
        bp = self.painter.bp
        lo, hi = np.searchsorted(bp, _keys([V4_BASE, V4_LAST + 1]))
        starts = _v4_values(bp[lo:hi]).astype(np.uint64)
        sizes = np.diff(np.append(starts, np.uint64(1 << 32))).astype(np.float64)
        anon = FLAG_BITS["hosting"] | FLAG_BITS["vpn"] | FLAG_BITS["proxy"]
        listed = (self.flags[lo:hi] & anon) != 0
        geo = self._first_of(GEOLOCATION_SOURCES)[lo:hi]
        features = classify.asn_features(self.asn[lo:hi], sizes, listed, geo)
        asns = features.asns
        first_org = np.zeros(len(asns), dtype=np.uint32)
        pos = np.searchsorted(asns, self.asn[lo:hi])
        first_org[pos[::-1]] = self.org[lo:hi][::-1]  # any interval's organisation (one per ASN)
        orgs = [self.strings.items[int(i)] for i in first_org]
        known = {a for s in self.label_srcs if s.meta.kind == SourceKind.ASN_LABEL for a in s.asn_labels}
        verdicts = classify.classify(features, orgs)
        for a, v in verdicts.items():
            if a not in known:
                src.asn_labels[a] = (v.label, f"AS{a} {orgs[int(np.searchsorted(asns, a))]}".strip())
                self.verdicts[a] = v
        rules = sorted({v.rule for v in self.verdicts.values()})
        counts = ", ".join(f"{r} {sum(1 for v in self.verdicts.values() if v.rule == r):,}" for r in rules)
        self.say(f"classified {len(src.asn_labels):,} ASNs ({counts})")

    def _said(self, name: str, label: str, where: npt.NDArray[np.bool_]) -> None:
        bit = self.slot_index[(name, label)]
        self.srcbits[bit // 64, where] |= np.uint64(1 << (bit % 64))

    def _range_labels(self, src: SourceData) -> None:
        s, e = self.painter.positions(src.first, src.last)
        labels = np.array([lab for lab, _ in src.values])
        for label in np.unique(labels).tolist():
            if label not in FLAG_BITS:
                raise SourceError(f"{src.meta.name}: unknown label {label!r} (known: {', '.join(LABELS)})")
            sel = labels == label
            covered = self.painter.coverage(s[sel], e[sel])
            self.flags[covered] |= FLAG_BITS[label]
            self._said(src.meta.name, label, covered)
        provs = np.fromiter((self.strings.get(p) for _, p in src.values), dtype=np.uint32, count=len(src.values))
        s2, e2, pv = flatten(s, e, provs)
        self.painter.paint(self.provider, s2, e2, pv)

    def _shared_labels(self, src: SourceData) -> None:
        """A peer's networks and ASNs: only the bit of (peer, confidence bucket), no flag, no provider."""
        peer = src.meta.name.removeprefix(SHARED_PREFIX)
        if src.first:
            s, e = self.painter.positions(src.first, src.last)
            slots = np.array([shared_slot(peer, int(conf)) for _, conf in src.values])
            for slot in np.unique(slots).tolist():
                sel = slots == slot
                self._said(slot, SHARED_LABEL, self.painter.coverage(s[sel], e[sel]))
        by_slot: dict[str, list[int]] = {}
        for asn, (_, conf) in src.asn_labels.items():
            by_slot.setdefault(shared_slot(peer, int(conf)), []).append(asn)
        for slot, asns in sorted(by_slot.items()):
            self._said(slot, SHARED_LABEL, np.isin(self.asn, np.array(asns, dtype=np.uint32)) & (self.asn != 0))

    def _asn_labels(self, src: SourceData) -> None:
        if not src.asn_labels:
            return
        asn = self.asn
        for label in sorted({lab for lab, _ in src.asn_labels.values()}):
            if label not in FLAG_BITS:
                raise SourceError(f"{src.meta.name}: unknown label {label!r} (known: {', '.join(LABELS)})")
            keys = np.fromiter((a for a, (lab, _) in src.asn_labels.items() if lab == label), dtype=np.uint32)
            hit = np.isin(asn, keys) & (asn != 0)
            self.flags[hit] |= FLAG_BITS[label]
            self._said(src.meta.name, label, hit)
        keys = np.array(sorted(src.asn_labels), dtype=np.uint32)
        names = np.array([self.strings.get(src.asn_labels[int(a)][1]) for a in keys], dtype=np.uint32)
        pos = np.clip(np.searchsorted(keys, asn), 0, max(0, len(keys) - 1))
        fill = (keys[pos] == asn) & (asn != 0) & (self.provider == 0)
        self.provider[fill] = names[pos[fill]]

    def tables(self) -> tuple[dict[str, npt.NDArray[Any]], SnapshotMeta]:
        """Merge equal neighbours, store each distinct answer row once, split the families."""
        self.say("merging intervals")
        fields: dict[str, npt.NDArray[Any]] = {
            "country": self.fused,
            "asn": self.asn,
            "org": self.org,
            "flags": self.flags,
            "provider": self.provider,
        }
        for name, col in self.cc_cols.items():
            fields[country_field(name)] = col
        for w in range(len(self.srcbits)):
            fields[label_word_field(w)] = self.srcbits[w]
        dtype = np.dtype([(k, v.dtype) for k, v in fields.items()])
        table = np.empty(self.n, dtype=dtype)
        for k, v in fields.items():
            table[k] = v
        raw = table.view(np.dtype((np.void, dtype.itemsize)))
        change = np.ones(self.n, dtype=bool)
        change[1:] = raw[1:] != raw[:-1]
        bp = self.painter.bp
        change[np.searchsorted(bp, _keys([V4_BASE, V4_LAST + 1]))] = True  # keep the family split points
        starts = bp[change]
        uniq, inverse = np.unique(raw[change], return_inverse=True)
        rows = uniq.view(dtype)
        iv_row = inverse.astype(np.uint32).ravel()

        in_v4 = (starts >= _keys([V4_BASE])[0]) & (starts <= _keys([V4_LAST])[0])
        v4_starts = _v4_values(starts[in_v4])
        arrays: dict[str, npt.NDArray[Any]] = {
            V4_STARTS: v4_starts,
            V4_ROWS: iv_row[in_v4],
            V4_INDEX24: _index24(v4_starts),
            # The IPv6 table covers the whole key space; IPv4 queries never reach its mapped block.
            V6_STARTS: starts,
            V6_ROWS: iv_row,
        }
        for k in fields:
            arrays[row_array(k)] = np.ascontiguousarray(rows[k])
        meta: SnapshotMeta = {
            "format": FORMAT_VERSION,
            "sources": [
                {
                    **s.meta.to_dict(),
                    "entries": len(s) + (len(s.asn_labels) if s.meta.name.startswith(SHARED_PREFIX) else 0),
                    "skipped": s.skipped,
                }
                for s in [*self.sources, *([self.inferred] if self.inferred else [])]
            ],
            "country_sources": list(self.cc_cols),
            "label_sources": [list(slot) for slot in self.slots],
            "countries": self.countries_list,
            "strings": self.strings.items,
            "flags": {**FLAG_BITS, "reserved": FLAG_RESERVED, "disagree": FLAG_DISAGREE, "contested": FLAG_CONTESTED},
            "counts": {"v4_intervals": len(v4_starts), "v6_intervals": len(starts), "rows": len(rows)},
            "classified": {
                str(a): {"label": v.label, "rule": v.rule, "confidence": v.confidence, "detail": v.detail}
                for a, v in sorted(self.verdicts.items())
            },
        }
        return arrays, meta


def _shared_slots(src: SourceData) -> list[str]:
    """The label-source names of a peer's confidence buckets (``format.shared_slot``)."""
    peer = src.meta.name.removeprefix(SHARED_PREFIX)
    confs = [int(c) for _, c in src.values] + [int(c) for _, c in src.asn_labels.values()]
    return sorted({shared_slot(peer, c) for c in confs})


def _labels_of(src: SourceData) -> list[str]:
    values = src.asn_labels.values() if src.meta.kind == SourceKind.ASN_LABEL else src.values
    return sorted({label for label, _ in values})


def _v4_values(keys: npt.NDArray[np.bytes_]) -> npt.NDArray[np.uint32]:
    """The IPv4 addresses of IPv4-mapped keys. (S16 items lose trailing NUL bytes when turned into
    Python bytes, so slice the raw buffer instead.)"""
    raw = np.ascontiguousarray(keys).view(np.uint8).reshape(-1, 16)[:, 12:]
    return np.ascontiguousarray(raw).view(">u4").ravel().astype(np.uint32)


def _write(arrays: dict[str, npt.NDArray[Any]], meta: SnapshotMeta, out_root: Path, say: Progress) -> Path:
    """Write under a temporary name, then rename: a snapshot directory is complete or absent."""
    digest = hashlib.sha256()
    for k in sorted(arrays):
        digest.update(k.encode())
        digest.update(np.ascontiguousarray(arrays[k]).tobytes())
    # Everything that changes an answer is hashed; the build's duration and note are not.
    digest.update(json.dumps({k: v for k, v in meta.items() if k not in ("counts", "note")}, sort_keys=True).encode())
    built = datetime.now(UTC)
    snap_id = f"{built:%Y%m%d}-{digest.hexdigest()[:12]}"
    meta = {"format": meta["format"], "id": snap_id, "built_at": built.isoformat(timespec="seconds"), **meta}
    out_root.mkdir(parents=True, exist_ok=True)
    final = out_root / snap_id
    if final.exists():
        say(f"snapshot {snap_id} already exists; reusing it")
        return final
    tmp = Path(tempfile.mkdtemp(prefix=".building-", dir=out_root))
    try:
        for k, arr in arrays.items():
            np.save(tmp / f"{k}.npy", arr, allow_pickle=False)
        (tmp / META_FILE).write_text(json.dumps(meta, indent=1, ensure_ascii=False), encoding="utf-8")
        tmp.replace(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    c = meta["counts"]
    say(f"snapshot {snap_id}: {c['v4_intervals']:,} IPv4 + {c['v6_intervals']:,} IPv6 intervals, {c['rows']:,} rows")
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
