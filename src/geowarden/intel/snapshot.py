"""A compiled, immutable intel snapshot: load (memory-mapped) and look addresses up.

The format on disk (``meta.json`` and one numpy array per column) is described in ``format.py``.

A lookup of an IPv4 address is one read of the /24 index (plus a binary search in the rare
split block) and one read per answer field: no Python objects are made until asked for.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from geowarden.errors import AddressError, SnapshotError
from geowarden.intel import addr
from geowarden.intel.format import (
    CLASSIFIED_SOURCE,
    FLAG_BITS,
    FLAG_DISAGREE,
    FLAG_RESERVED,
    FLAG_SPLIT24,
    FORMAT_VERSION,
    META_FILE,
    REQUIRED_ARRAYS,
    ROW_PREFIX,
    SHARED_LABEL,
    SHARED_PREFIX,
    V4_INDEX24,
    V4_ROWS,
    V4_STARTS,
    V6_ROWS,
    V6_STARTS,
    SnapshotMeta,
    country_field,
    field_of,
    label_word_field,
    parse_shared_slot,
)

NO_ROW = np.uint32(0xFFFF_FFFF)
_SPLIT = np.uint32(FLAG_SPLIT24)
_IDX_MASK = np.uint32(0x7FFF_FFFF)
_SOURCES_CACHE = 65_536  # answer rows whose provenance is kept ready


@dataclass(frozen=True, slots=True, kw_only=True)
class IPRecord:
    """What the snapshot knows about one address.

    ``sources`` says who said what: ``country`` maps each country source to its answer, and
    ``labels`` maps each label (hosting, vpn, ...) to the sources that gave it; a peer's shared
    indicator is the label ``shared-indicator`` from ``shared:<peer>``, and ``shared`` maps each
    such peer to its confidence (0-1).
    """

    ip: str
    version: int
    country: str | None
    asn: int | None
    org: str | None
    hosting: bool
    vpn: bool
    tor: bool
    proxy: bool
    relay: bool
    provider: str | None
    reserved: bool
    disagreement: bool
    contested: bool = False  # disagreement that neither a provider's statement nor a majority settles
    sources: dict[str, Any] = field(default_factory=dict)
    #: Per anonymiser label present (hosting, vpn, proxy, tor): how sure, 0-1 (see ``label_confidence``).
    confidence: dict[str, float] = field(default_factory=dict)
    #: The network classifier's verdict for this ASN, when it labelled it (``intel/classify.py``).
    classified: dict[str, Any] | None = None
    #: Peers whose shared indicators cover this address -> their confidence, 0-1 (``intel/sources/shared.py``).
    shared: dict[str, float] = field(default_factory=dict)

    @property
    def found(self) -> bool:
        """Whether any source knew anything about this address."""
        return self.country is not None or self.asn is not None or self.provider is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "ip": self.ip,
            "country": self.country,
            "asn": self.asn,
            "org": self.org,
            "hosting": self.hosting,
            "vpn": self.vpn,
            "tor": self.tor,
            "proxy": self.proxy,
            "relay": self.relay,
            "provider": self.provider,
            "reserved": self.reserved,
            "country_disagreement": self.disagreement,
            "country_contested": self.contested,
            "sources": self.sources,
            "confidence": self.confidence,
            "classified": self.classified,
            "shared": self.shared,
        }


_ANON_LABELS = ("tor", "vpn", "proxy", "hosting")


def label_confidence(flags: int, said: dict[str, list[str]], verdict: dict[str, Any] | None) -> dict[str, float]:
    """How sure each anonymiser label of an address is, 0-1.

    A label that range or ASN lists give: 0.6 + 0.2 per source that says it, the classifier
    included (at most 1). A label
    that only the network classifier gives: the confidence of its rule (0.5 for the weak
    ``spread`` rule up to 0.9; see ``intel/classify.py``)."""
    out: dict[str, float] = {}
    for label in _ANON_LABELS:
        if not flags & FLAG_BITS[label]:
            continue
        all_said = said.get(label, [])
        if any(s != CLASSIFIED_SOURCE for s in all_said):  # the classifier agreeing counts as one more source
            out[label] = round(min(1.0, 0.6 + 0.2 * len(all_said)), 2)
        elif verdict is not None and verdict.get("label") == label:
            out[label] = float(verdict.get("confidence", 0.5))
        else:
            out[label] = 0.6
    return out


@dataclass(frozen=True, slots=True)
class Lookups:
    """A columnar batch of answers, in input order. ``valid`` is False where the input was
    not an address (see ``errors`` for which and why). Columns are numpy arrays."""

    snapshot: Snapshot
    rows: npt.NDArray[np.uint32]  # answer row per input; NO_ROW where invalid
    errors: tuple[tuple[int, str], ...] = ()

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def valid(self) -> npt.NDArray[np.bool_]:
        out: npt.NDArray[np.bool_] = self.rows != NO_ROW
        return out

    def _col(self, name: str) -> npt.NDArray[Any]:
        col = self.snapshot.row_columns[name]
        out = np.zeros(len(self.rows), dtype=col.dtype)
        ok = self.valid
        out[ok] = col[self.rows[ok]]
        return out

    @property
    def country(self) -> npt.NDArray[np.str_]:
        """ISO alpha-2 codes, ``""`` where unknown."""
        out: npt.NDArray[np.str_] = self.snapshot.country_table[self._col("country")]
        return out

    @property
    def asn(self) -> npt.NDArray[np.uint32]:
        """Autonomous system numbers, 0 where unknown."""
        return self._col("asn")

    @property
    def org(self) -> npt.NDArray[np.object_]:
        out: npt.NDArray[np.object_] = self.snapshot.string_table[self._col("org")]
        return out

    @property
    def provider(self) -> npt.NDArray[np.object_]:
        out: npt.NDArray[np.object_] = self.snapshot.string_table[self._col("provider")]
        return out

    @property
    def flags(self) -> npt.NDArray[np.uint8]:
        return self._col("flags")

    def flag(self, name: str) -> npt.NDArray[np.bool_]:
        """One label (hosting, vpn, tor, proxy, relay, reserved, disagree, contested) as a bool array."""
        bit = self.snapshot.flag_bits[name]
        out: npt.NDArray[np.bool_] = (self.flags & bit) != 0
        return out

    def record(self, i: int, text: str) -> IPRecord:
        return self.snapshot.record_for_row(text, int(self.rows[i]))


class Snapshot:
    """A loaded snapshot. Open with ``Snapshot.open(path)``; safe to share between threads."""

    def __init__(self, path: Path, meta: SnapshotMeta, arrays: dict[str, npt.NDArray[Any]]):
        self.path = path
        self.meta = meta
        self.id: str = meta["id"]
        self.v4_starts = arrays[V4_STARTS]
        self.v4_rows = arrays[V4_ROWS]
        self.v4_index24 = arrays[V4_INDEX24]
        self.v6_starts = arrays[V6_STARTS]
        self.v6_rows = arrays[V6_ROWS]
        self.row_columns: dict[str, npt.NDArray[Any]] = {
            field_of(k): v for k, v in arrays.items() if k.startswith(ROW_PREFIX)
        }
        self.country_sources: list[str] = meta["country_sources"]
        #: (source, label) per bit of the ``src<k>`` columns: which source said which label.
        self.label_sources: list[tuple[str, str]] = [(n, lab) for n, lab in meta["label_sources"]]
        self.country_table = np.array(meta["countries"], dtype="<U2")
        self.string_table = np.array(meta["strings"], dtype=object)
        self.flag_bits: dict[str, int] = meta["flags"]
        # Snapshots built before the contested flag existed never mark an answer contested.
        self._contested_bit = int(self.flag_bits.get("contested", 0))
        self._classified: dict[int, dict[str, Any]] = {int(a): v for a, v in meta.get("classified", {}).items()}
        self._countries: list[str] = meta["countries"]
        self._strings: list[str] = meta["strings"]
        self._cc_cols = [(name, self.row_columns[country_field(name)]) for name in self.country_sources]
        words = (len(self.label_sources) + 63) // 64 or 1
        self._src_words = [self.row_columns[label_word_field(w)] for w in range(words)]
        self._col_country = self.row_columns["country"]
        self._col_asn = self.row_columns["asn"]
        self._col_org = self.row_columns["org"]
        self._col_flags = self.row_columns["flags"]
        self._col_provider = self.row_columns["provider"]
        self._sources_cache: dict[int, dict[str, Any]] = {}

    # -- loading ---------------------------------------------------------------------------

    @classmethod
    def open(cls, path: Path) -> Snapshot:
        path = Path(path)
        meta_path = path / META_FILE
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SnapshotError(f"not a snapshot (no {META_FILE}): {path}") from None
        except (OSError, ValueError) as exc:
            raise SnapshotError(f"unreadable snapshot metadata {meta_path}: {exc}") from None
        if meta.get("format") != FORMAT_VERSION:
            raise SnapshotError(
                f"snapshot {path.name} has format {meta.get('format')}, this geowarden reads "
                f"format {FORMAT_VERSION}: rebuild it with `geowarden intel build`"
            )
        arrays: dict[str, npt.NDArray[Any]] = {}
        try:
            for f in path.glob("*.npy"):
                # A plain ndarray view of the mapping: numpy's memmap indexing is Python code and
                # costs ~0.15 µs a read; the view reads the same mapped pages at C speed.
                arrays[f.stem] = np.load(f, mmap_mode="r", allow_pickle=False).view(np.ndarray)
        except (OSError, ValueError) as exc:
            raise SnapshotError(f"corrupt snapshot {path.name}: {exc}") from None
        missing = REQUIRED_ARRAYS - arrays.keys()
        if missing:
            raise SnapshotError(f"corrupt snapshot {path.name}: missing {', '.join(sorted(missing))}")
        return cls(path, meta, arrays)

    # -- single lookups --------------------------------------------------------------------

    def row_of(self, p: addr.Parsed) -> int:
        if p.version == 4:
            j = self.v4_index24[p.v4 >> 8]
            if j & _SPLIT:
                j = int(np.searchsorted(self.v4_starts, np.uint32(p.v4), side="right")) - 1
            return int(self.v4_rows[j])
        i = int(np.searchsorted(self.v6_starts, np.bytes_(p.v6), side="right")) - 1
        return int(self.v6_rows[i])

    def lookup(self, ip: str) -> IPRecord:
        """Look one address up. Raises ``AddressError`` if it is not one."""
        p = addr.parse(ip)
        return self.record_for_row(p.text, self.row_of(p), p.version)

    def record_for_row(self, text: str, row: int, version: int = 0) -> IPRecord:
        if row == int(NO_ROW):
            raise AddressError(f"not an IP address: {text[:64]!r}")
        flags = int(self._col_flags[row])
        cc = self._countries[int(self._col_country[row])] or None
        asn = int(self._col_asn[row]) or None
        org = self._strings[int(self._col_org[row])] or None
        provider = self._strings[int(self._col_provider[row])] or None
        sources = self._sources_of(row)
        verdict = self._classified.get(asn) if asn is not None else None
        return IPRecord(
            ip=text,
            version=version or (6 if ":" in text else 4),
            country=cc,
            asn=asn,
            org=org,
            hosting=bool(flags & FLAG_BITS["hosting"]),
            vpn=bool(flags & FLAG_BITS["vpn"]),
            tor=bool(flags & FLAG_BITS["tor"]),
            proxy=bool(flags & FLAG_BITS["proxy"]),
            relay=bool(flags & FLAG_BITS["relay"]),
            provider=provider,
            reserved=bool(flags & FLAG_RESERVED),
            disagreement=bool(flags & FLAG_DISAGREE),
            contested=bool(flags & self._contested_bit),
            sources=sources,
            confidence=label_confidence(flags, sources["labels"], verdict),
            classified=verdict,
            shared=sources["shared"],
        )

    def _sources_of(self, row: int) -> dict[str, Any]:
        """Who said what for an answer row (memoised: rows never change). Callers get a copy."""
        cached = self._sources_cache.get(row)
        if cached is None:
            if len(self._sources_cache) >= _SOURCES_CACHE:
                self._sources_cache.clear()
            cached = self._sources_cache[row] = self._compute_sources(row)
        shared = cached["shared"]
        return {
            "country": dict(cached["country"]),
            "labels": {k: list(v) for k, v in cached["labels"].items()},
            "shared": dict(shared) if shared else {},
        }

    def _compute_sources(self, row: int) -> dict[str, Any]:
        countries = {name: self._countries[int(col[row])] for name, col in self._cc_cols if col[row]}
        labels: dict[str, list[str]] = {}
        shared: dict[str, float] = {}
        for w, col in enumerate(self._src_words):
            bits = int(col[row])
            while bits:
                low = bits & -bits
                name, label = self.label_sources[w * 64 + low.bit_length() - 1]
                bits ^= low
                peer = parse_shared_slot(name) if label == SHARED_LABEL else None
                if peer is not None:  # one bit per confidence bucket: the highest wins
                    shared[peer[0]] = max(shared.get(peer[0], 0.0), peer[1] / 100)
                    continue
                labels.setdefault(label, []).append(name)
        if shared:
            labels[SHARED_LABEL] = [SHARED_PREFIX + peer for peer in sorted(shared)]
        return {"country": countries, "labels": labels, "shared": shared}

    # -- batch lookups ---------------------------------------------------------------------

    def rows_v4(self, values: npt.NDArray[np.uint32]) -> npt.NDArray[np.uint32]:
        """Answer rows for packed IPv4 addresses (vectorised)."""
        j = self.v4_index24[values >> np.uint32(8)]
        split = (j & _SPLIT) != 0
        if split.any():
            j = j.copy()
            j[split] = np.searchsorted(self.v4_starts, values[split], side="right") - 1
        rows: npt.NDArray[np.uint32] = self.v4_rows[j & _IDX_MASK]
        return rows

    def rows_v6(self, keys: npt.NDArray[np.bytes_]) -> npt.NDArray[np.uint32]:
        idx = np.searchsorted(self.v6_starts, keys, side="right") - 1
        return self.v6_rows[idx]

    def lookup_many(self, ips: Sequence[str] | npt.NDArray[Any]) -> Lookups:
        """Look up a batch: strings (IPv4 and IPv6 mixed) or packed IPv4 integers."""
        if isinstance(ips, np.ndarray) and ips.dtype.kind in "iu":
            return Lookups(self, self.rows_v4(addr.parse_v4_ints(ips)))
        batch = addr.parse_many(ips if not isinstance(ips, np.ndarray) else ips.tolist())
        if len(batch.v4_pos) == batch.n:
            return Lookups(self, self.rows_v4(batch.v4))
        rows = np.full(batch.n, NO_ROW, dtype=np.uint32)
        if len(batch.v4_pos):
            rows[batch.v4_pos] = self.rows_v4(batch.v4)
        if len(batch.v6_pos):
            rows[batch.v6_pos] = self.rows_v6(batch.v6)
        return Lookups(self, rows, batch.errors)

    # -- provenance ------------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "path": str(self.path),
            "built_at": self.meta["built_at"],
            "note": self.meta.get("note", ""),
            "counts": self.meta["counts"],
            "sources": self.meta["sources"],
        }
