"""The state store interface: what the live behaviour signals remember between requests.

One decision sends one batch of operations and gets one list of results back, in order
(``StateStore.apply``): one round trip to Redis at most. Every operation updates and reads in
the same step, so the features a decision sees include the request being decided.

Operations (``name`` is a state key without the store's prefix, e.g. ``"k:ak_1:ip"``):

- ``Count(name, amount, windows)``: add ``amount`` to a sliding-window counter and return the
  sum over each window (a tuple of floats, one per window, this request included).
- ``Distinct(name, member, windows)``: add ``member`` to a distinct-count sketch and return the
  number of distinct members over each window (a tuple of ints; Redis answers with HyperLogLog,
  within about 1 % for large counts and exact for small ones in practice).
- ``Places(name, place, ttl)``: record that ``place`` was seen now and return every place seen
  before this update with the time it was last seen (``dict[str, float]``, epoch seconds; the
  current place's previous time included if it was seen before). At most ``MAX_PLACES`` are
  kept (the least recently seen go first).
- ``Hours(name, days)``: count this request in an hour-of-day (UTC) histogram and return
  ``(profile, active_24h)``: 24 counts over the last ``days`` calendar days (UTC) and the
  number of the last 24 clock hours (this one included) with at least one request.
- ``FirstSeen(name, ttl)``: the time ``name`` was first seen (set to now the first time).
- ``Flags(name)``: the flags put on ``name`` by ``put_flag`` that have not expired
  (``dict[str, dict]``: code -> value).

Windows are seconds. A window of ``w`` seconds is kept in ``BUCKETS`` buckets of ``w //
BUCKETS`` seconds, so it covers between ``(BUCKETS - 1) / BUCKETS`` of ``w`` and ``w`` of
history (both stores bucket the same way, so their answers agree). Everything expires:
counters and sketches after their longest window, places and flags after their ``ttl``, hour
profiles after ``days`` days. Memory is bounded by the traffic of the longest window.

A store that cannot answer raises ``StateUnavailable``: the signal that asked becomes
``SIGNAL_UNAVAILABLE`` and the policy's fail mode decides. Stores never hang: the Redis store
has bounded timeouts and, after a failure, stops trying for a short back-off instead of making
every decision wait for the timeout.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from geowarden.errors import GeowardenError

BUCKETS = 12  # buckets per sliding window
MAX_PLACES = 32  # places kept per name
MAX_MEMBERS = 4096  # distinct members kept per name by the memory store (counts saturate)


class StateUnavailable(GeowardenError):  # noqa: N818 - reads as a condition, like the signal it causes
    """The state store could not answer (unreachable, timed out, or backing off after a failure)."""

    status = 503


@dataclass(frozen=True, slots=True)
class Count:
    name: str
    amount: float
    windows: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Distinct:
    name: str
    member: str
    windows: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Places:
    name: str
    place: str
    ttl: int


@dataclass(frozen=True, slots=True)
class Hours:
    name: str
    days: int = 7


@dataclass(frozen=True, slots=True)
class FirstSeen:
    name: str
    ttl: int


@dataclass(frozen=True, slots=True)
class Flags:
    name: str


Op = Count | Distinct | Places | Hours | FirstSeen | Flags


def bucket_size(window: int) -> int:
    """Seconds per bucket of a window."""
    return max(1, window // BUCKETS)


def bucket_of(now: float, window: int) -> int:
    """The index of the bucket ``now`` falls in, for a window."""
    return int(now // bucket_size(window))  # the memory store inlines this same formula


def hour_of(now: float) -> int:
    """Hours since the epoch (UTC)."""
    return math.floor(now / 3600)


class StateStore(Protocol):
    """Where behaviour state lives: ``MemoryStore`` (default, one process) or ``RedisStore``
    (shared by many decision workers)."""

    #: ``memory`` or ``redis``: for metrics and messages.
    kind: str

    def apply(self, ops: Sequence[Op], now: float) -> list[Any]:
        """Run ``ops`` at time ``now`` (epoch seconds) as one step; their results, in order."""
        ...

    def put_flag(self, name: str, code: str, value: Mapping[str, Any], ttl: int, now: float) -> None:
        """Put a flag (e.g. a batch-analytics finding) on ``name`` for ``ttl`` seconds."""
        ...

    def clear(self) -> None:
        """Forget everything this store holds under its prefix (tests, ``state reset``)."""
        ...

    def health(self) -> dict[str, Any]:
        """``kind``, ``ok`` (answering now), ``failures`` (calls that could not answer), and
        back-end details; never raises."""
        ...

    def close(self) -> None: ...
