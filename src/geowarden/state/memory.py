"""The in-memory state store: the embedded default, for one decision process.

Plain dicts, no locks held across I/O (there is none); one lock makes a batch atomic when the
service runs decisions on several threads. Everything expires as ``base`` says: an expired entry
is dropped when it is next touched, and a sweep every ``SWEEP_EVERY`` batches drops the ones
nobody touches any more, so memory follows the traffic of the longest window.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from geowarden.state.base import (
    BUCKETS,
    MAX_MEMBERS,
    MAX_PLACES,
    Count,
    Distinct,
    FirstSeen,
    Flags,
    Hours,
    Op,
    Places,
    hour_of,
)

SWEEP_EVERY = 10_000  # batches between sweeps of expired entries


@dataclass(slots=True)
class _Counter:
    # window -> {bucket index: sum}
    buckets: dict[int, dict[int, float]] = field(default_factory=dict)
    expires: float = 0.0


@dataclass(slots=True)
class _Sketch:
    # member -> bucket index (of the finest window) it was last seen in, in last-seen order
    last: dict[str, float] = field(default_factory=dict)
    expires: float = 0.0


@dataclass(slots=True)
class _Places:
    seen: dict[str, float] = field(default_factory=dict)
    expires: float = 0.0


@dataclass(slots=True)
class _Hours:
    # hour since the epoch -> requests
    hours: dict[int, int] = field(default_factory=dict)
    expires: float = 0.0


class MemoryStore:
    """A ``StateStore`` in this process's memory (see ``geowarden.state.base``)."""

    kind = "memory"

    def __init__(self) -> None:
        self._counters: dict[str, _Counter] = {}
        self._sketches: dict[str, _Sketch] = {}
        self._places: dict[str, _Places] = {}
        self._hours: dict[str, _Hours] = {}
        self._first: dict[str, tuple[float, float]] = {}  # name -> (first seen, expires)
        self._flags: dict[str, dict[str, tuple[dict[str, Any], float]]] = {}  # name -> code -> (value, expires)
        self._lock = threading.Lock()
        self._batches = 0

    # -- the interface ----------------------------------------------------------------------

    def apply(self, ops: Sequence[Op], now: float) -> list[Any]:
        with self._lock:
            self._batches += 1
            if self._batches % SWEEP_EVERY == 0:
                self._sweep(now)
            return [self._one(op, now) for op in ops]

    def put_flag(self, name: str, code: str, value: Mapping[str, Any], ttl: int, now: float) -> None:
        with self._lock:
            self._flags.setdefault(name, {})[code] = (dict(value), now + ttl)

    def clear(self) -> None:
        with self._lock:
            for table in (self._counters, self._sketches, self._places, self._hours, self._first, self._flags):
                table.clear()

    def health(self) -> dict[str, Any]:
        return {"kind": self.kind, "ok": True, "failures": 0, "entries": self.size()}

    def close(self) -> None:
        return None

    def size(self) -> int:
        """Entries held (names across all kinds of state)."""
        return sum(
            len(t) for t in (self._counters, self._sketches, self._places, self._hours, self._first, self._flags)
        )

    # -- operations -------------------------------------------------------------------------

    def _one(self, op: Op, now: float) -> Any:
        method = _DISPATCH.get(type(op))
        if method is None:
            raise TypeError(f"unknown state operation {type(op).__name__}")
        return method(self, op, now)

    def _count(self, op: Count, now: float) -> tuple[float, ...]:
        c = self._counters.get(op.name)
        if c is None or c.expires <= now:
            c = self._counters[op.name] = _Counter()
        out: list[float] = []
        longest = 0
        for w in op.windows:
            size = w // BUCKETS or 1
            idx = int(now // size)
            b = c.buckets.get(w)
            if b is None:
                b = c.buckets[w] = {}
            b[idx] = b.get(idx, 0.0) + op.amount
            oldest = idx - BUCKETS + 1
            if len(b) > BUCKETS:
                for k in [k for k in b if k < oldest]:
                    del b[k]
            out.append(sum(v for k, v in b.items() if k >= oldest))
            longest = w if w > longest else longest
        expires = now + longest + (longest // BUCKETS or 1)
        c.expires = max(c.expires, expires)
        return tuple(out)

    def _distinct(self, op: Distinct, now: float) -> tuple[int, ...]:
        s = self._sketches.get(op.name)
        if s is None or s.expires <= now:
            s = self._sketches[op.name] = _Sketch()
        last = s.last
        last.pop(op.member, None)
        last[op.member] = now  # insertion order = last-seen order
        if len(last) > MAX_MEMBERS:
            del last[next(iter(last))]
        # The start of each window (its oldest bucket), and the number of members seen since.
        starts = _starts(op.windows, now)
        counts = [0] * len(starts)
        if len(last) == 1:
            counts = [1] * len(starts)
        else:
            order = sorted(range(len(starts)), key=starts.__getitem__, reverse=True)  # latest start first
            n = 0
            j = 0
            for ts in reversed(last.values()):
                while j < len(order) and ts < starts[order[j]]:
                    counts[order[j]] = n
                    j += 1
                if j == len(order):
                    break
                n += 1
            while j < len(order):
                counts[order[j]] = n
                j += 1
            if len(last) > 64 and n < len(last):  # drop what has left the longest window
                first = min(starts)
                for m in [m for m, ts in last.items() if ts < first]:
                    del last[m]
        longest = max(op.windows)
        expires = now + longest + (longest // BUCKETS or 1)
        s.expires = max(s.expires, expires)
        return tuple(counts)

    def _place(self, op: Places, now: float) -> dict[str, float]:
        p = self._places.get(op.name)
        if p is None or p.expires <= now:
            p = self._places[op.name] = _Places()
        before = {k: v for k, v in p.seen.items() if v > now - op.ttl}
        p.seen.pop(op.place, None)
        p.seen[op.place] = now
        if len(p.seen) > MAX_PLACES:
            del p.seen[next(iter(p.seen))]
        p.expires = now + op.ttl
        return before

    def _hour(self, op: Hours, now: float) -> tuple[tuple[int, ...], int]:
        h = self._hours.get(op.name)
        if h is None or h.expires <= now:
            h = self._hours[op.name] = _Hours()
        hour = hour_of(now)
        h.hours[hour] = h.hours.get(hour, 0) + 1
        day = hour // 24
        first_hour = (day - op.days + 1) * 24  # the first hour of the oldest day kept
        if len(h.hours) > op.days * 24:
            keep = min(first_hour, hour - 23)  # the profile's days, and the last 24 hours for active_24h
            for k in [k for k in h.hours if k < keep]:
                del h.hours[k]
        profile = [0] * 24
        active = 0
        for k, n in h.hours.items():
            if k >= first_hour:
                profile[k % 24] += n
            if hour - 24 < k <= hour and n > 0:
                active += 1
        h.expires = (day + 1) * 86400 + op.days * 86400
        return tuple(profile), active

    def _first_seen(self, op: FirstSeen, now: float) -> float:
        got = self._first.get(op.name)
        if got is None or got[1] <= now:
            self._first[op.name] = (now, now + op.ttl)
            return now
        return got[0]

    def _read_flags(self, op: Flags, now: float) -> dict[str, dict[str, Any]]:
        flags = self._flags.get(op.name)
        if not flags:
            return {}
        live = {code: value for code, (value, expires) in flags.items() if expires > now}
        if len(live) < len(flags):
            if live:
                self._flags[op.name] = {c: v for c, v in flags.items() if c in live}
            else:
                del self._flags[op.name]
        return live

    def _sweep(self, now: float) -> None:
        for table in (self._counters, self._sketches, self._places, self._hours):
            for name in [n for n, e in table.items() if e.expires <= now]:
                del table[name]
        for name in [n for n, (_, e) in self._first.items() if e <= now]:
            del self._first[name]
        for name in list(self._flags):
            self._read_flags(Flags(name), now)


def _starts(windows: tuple[int, ...], now: float) -> list[float]:
    """When each window's oldest bucket starts (``base``'s bucketing)."""
    out: list[float] = []
    for w in windows:
        size = w // BUCKETS or 1
        out.append((int(now // size) - BUCKETS + 1) * size)
    return out


_DISPATCH: dict[type, Any] = {
    Count: MemoryStore._count,
    Distinct: MemoryStore._distinct,
    Places: MemoryStore._place,
    Hours: MemoryStore._hour,
    FirstSeen: MemoryStore._first_seen,
    Flags: MemoryStore._read_flags,
}
