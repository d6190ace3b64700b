"""The Redis state store: behaviour state shared by many decision workers.

Same operations and the same answers as ``MemoryStore`` (``geowarden.state.base``), except that
distinct counts come from HyperLogLog sketches (exact in practice up to about a hundred
members, within about 1 % beyond, and never saturating as the memory store does).

**One round trip per batch.** ``apply`` sends one ``EVALSHA`` of ``apply.lua``, which runs the
whole batch inside Redis, atomically, and returns every result. A pipeline of plain commands
was measured against it (``bench/bench_state.py``) and is about four times slower: a decision
needs over a hundred commands, and several updates need a read first (places, first seen,
flags' expiry), which a pipeline cannot do in one trip. After a server restart or ``SCRIPT
FLUSH`` the first ``EVALSHA`` answers ``NOSCRIPT`` and the batch is re-sent once with
``EVAL``, which loads the script again.

The server's time is the shared resource (one Redis serves every worker), so the client does
what it can: it computes bucket numbers, key names and TTLs, and the script does only the
arithmetic and the commands, on small binary records (Lua's ``struct``) rather than text it
would have to parse and format.

**Keys** (``<p>`` is the prefix; ``name`` the operation's state key)::

    <p><name>|c:<window>        string  ring of 12 (bucket u32, sum f64)        Count
    <p><name>|d:<window>:<b>    HLL     members seen in bucket b                Distinct
    <p><name>|dc                string  per window (bucket, count, live mask)   Distinct (cache)
    <p><name>|p                 hash    place -> (last seen f64, order f64)     Places
    <p><name>|h                 hash    hour since epoch -> requests, and       Hours
                                        "P": the profile and last hour per hour of day (cache)
    <p><name>|f                 string  (first seen f64, expires f64)           FirstSeen
    <p><name>|g                 hash    code -> expires f64 + JSON value        Flags, put_flag

Times are the ``now`` the caller passes, kept inside the values, so the answers follow the
caller's clock exactly as the memory store's do; key TTLs (wall clock, relative to ``now``)
only bound memory: every key has one, no longer than its data can matter. A window's
distinct count is a ``PFCOUNT`` over its live bucket sketches (a union), cached with the
bucket it was computed in and recomputed only when ``PFADD`` changed a sketch or the window
moved on; a single live bucket is a one-key ``PFCOUNT`` (Redis caches that one). The hour
profile is kept up to date by increments and rebuilt from the hourly counts when a new hour
starts. A name must always be used with the same windows and days (they shape its records).

**Redis Cluster is not supported.** The client is a plain (non-cluster) one; every key the
script touches is in ``KEYS`` except the older bucket sketches a distinct count reads (built
from a base passed in ``ARGV``), which Cluster forbids; and one batch touches a key's and its
account's names, which hash to different slots (a script must stay in one). A hash-tag prefix
(``"{gw}:"``) would put every key in one slot, and so on one shard, which defeats the point.
Use a standalone server, or a primary with replicas under Sentinel.

**Failures.** Socket connect and read timeouts are ``timeout`` seconds and redis-py's own
retries are off. Any Redis error raises ``StateUnavailable`` with a one-line message (never
the URL's password) and counts in ``health()["failures"]``. A connection error or timeout
also opens a circuit breaker: for ``backoff`` seconds every call fails at once without
touching the network, so decisions do not each wait for the timeout; then one call probes,
and if Redis answers the store is back (a restarted server is reconnected to and the script
reloaded). An error the server answers with (out of memory, a wrong-type key) does not back
off: the server is up and answering fast, and one bad key must not stop every decision. The
client's connection pool is thread-safe; the breaker's few fields are guarded by a lock that
is never held across I/O.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from importlib import resources
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import redis
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from geowarden.errors import ConfigError, InputError
from geowarden.state.base import (
    BUCKETS,
    MAX_PLACES,
    Count,
    Distinct,
    FirstSeen,
    Flags,
    Hours,
    Op,
    Places,
    StateUnavailable,
    bucket_of,
    bucket_size,
    hour_of,
)

#: The batch script (``apply.lua`` beside this module: its header says what ``KEYS`` and ``ARGV`` hold).
SCRIPT = resources.files("geowarden.state").joinpath("apply.lua").read_text(encoding="utf-8")
SCRIPT_SHA = hashlib.sha1(SCRIPT.encode(), usedforsecurity=False).hexdigest()
if BUCKETS != 12:  # the script's records are laid out for 12: rings of 12 buckets, 12-bit masks
    raise ImportError(f"geowarden.state.redisstore is written for BUCKETS = 12, not {BUCKETS}")
_HEAD = str(MAX_PLACES)
_T = TypeVar("_T")
_F64 = struct.Struct("<d")


def _f(x: float) -> str:
    """A number as text that reads back exactly (``repr`` of a float; numpy scalars too)."""
    return repr(float(x))


def _ttl(seconds: float) -> str:
    """A key TTL: whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds)))


# -- operations out (KEYS and ARGV) and results back ----------------------------------------

Enc = Callable[[Any, float, str, list[str], list[Any]], None]


def _enc_count(op: Count, now: float, p: str, keys: list[str], args: list[Any]) -> None:
    args += ("c", _f(op.amount), str(len(op.windows)))
    for w in op.windows:
        bs = bucket_size(w)
        b = bucket_of(now, w)
        keys.append(f"{p}{op.name}|c:{w}")
        args += (str(b), _ttl((b + BUCKETS) * bs - now))


_DFMT: dict[int, str] = {}


def _enc_distinct(op: Distinct, now: float, p: str, keys: list[str], args: list[Any]) -> None:
    n = len(op.windows)
    fmt = _DFMT.get(n)
    if fmt is None:
        fmt = _DFMT[n] = "<" + "I4I4I2" * n
    longest = max(op.windows)
    args += ("d", op.member, str(n), fmt, str(longest + bucket_size(longest)))
    keys.append(f"{p}{op.name}|dc")
    for w in op.windows:
        bs = bucket_size(w)
        b = bucket_of(now, w)
        base = f"{p}{op.name}|d:{w}:"
        keys.append(f"{base}{b}")
        args += (str(b), _ttl((b + BUCKETS) * bs - now), base)


def _enc_places(op: Places, _now: float, p: str, keys: list[str], args: list[Any]) -> None:
    keys.append(f"{p}{op.name}|p")
    args += ("p", op.place, _f(op.ttl), _ttl(op.ttl))


def _enc_hours(op: Hours, now: float, p: str, keys: list[str], args: list[Any]) -> None:
    hour = hour_of(now)
    keys.append(f"{p}{op.name}|h")
    args += ("h", str(hour), str(int(op.days)), _ttl((hour // 24 + 1 + op.days) * 86400 - now))


def _enc_first(op: FirstSeen, _now: float, p: str, keys: list[str], args: list[Any]) -> None:
    keys.append(f"{p}{op.name}|f")
    args += ("f", _f(op.ttl), _ttl(op.ttl))


def _enc_flags(op: Flags, _now: float, p: str, keys: list[str], args: list[Any]) -> None:
    keys.append(f"{p}{op.name}|g")
    args.append("g")


def _counts(raw: Any) -> tuple[float, ...]:
    return tuple(float(x) for x in raw)


def _distinct(raw: Any) -> tuple[int, ...]:
    return tuple(raw)


def _places(raw: Any) -> dict[str, float]:
    f64 = _F64.unpack_from
    return {raw[i].decode(): f64(raw[i + 1])[0] for i in range(0, len(raw), 2)}


def _hours(raw: Any) -> tuple[tuple[int, ...], int]:
    return tuple(raw[:24]), raw[24]


def _first(raw: Any) -> float:
    return float(_F64.unpack_from(raw)[0])


def _flags(raw: Any) -> dict[str, dict[str, Any]]:
    return {raw[i].decode(): json.loads(raw[i + 1][8:]) for i in range(0, len(raw), 2)}


#: Each operation's KEYS and ARGV (see ``SCRIPT``), and how its result comes back.
_CODEC: dict[type, tuple[Enc, Callable[[Any], Any]]] = {
    Count: (_enc_count, _counts),
    Distinct: (_enc_distinct, _distinct),
    Places: (_enc_places, _places),
    Hours: (_enc_hours, _hours),
    FirstSeen: (_enc_first, _first),
    Flags: (_enc_flags, _flags),
}


def _where(url: str) -> str:
    """``host:port/db`` (or the socket path) of a Redis URL, without credentials."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return f"unix:{parts.path}"
    try:
        port = parts.port or 6379
    except ValueError:
        port = 0
    db = parts.path.strip("/") or "0"
    return f"{parts.hostname or 'localhost'}:{port}/{db}"


class RedisStore:
    """A ``StateStore`` in a Redis server (see this module's docstring)."""

    kind = "redis"

    def __init__(self, url: str, *, prefix: str = "gw:", timeout: float = 0.1, backoff: float = 1.0) -> None:
        if not timeout > 0:
            raise ConfigError(f"redis state store: timeout must be > 0 seconds, not {timeout!r}")
        if not backoff >= 0:
            raise ConfigError(f"redis state store: backoff must be >= 0 seconds, not {backoff!r}")
        self.prefix = prefix
        self.where = _where(url)
        parts = urlsplit(url)
        if parts.scheme != "unix" and not parts.path.strip("/").isdigit() and parts.path.strip("/"):
            raise ConfigError(f"redis state store URL {self.where}: the path must be a database number")
        password = urlsplit(url).password
        self._secret = unquote(password) if password else None
        self._backoff = backoff
        try:
            self._client = redis.Redis.from_url(
                url,
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
                retry=Retry(NoBackoff(), 0),  # the breaker below decides when to try again
                decode_responses=False,  # results are binary records; the decoders decode text
                health_check_interval=0,
            )
        except (ValueError, RedisError) as exc:
            raise ConfigError(f"redis state store URL {self.where}: {self._scrub(exc)}") from None
        self._exec: Callable[..., Any] = self._client.execute_command
        self._lock = threading.Lock()
        self._failures = 0  # calls that raised StateUnavailable
        self._skipped = 0  # of which failed fast while backing off
        self._last_error: str | None = None
        self._down = False
        self._retry_at = 0.0  # monotonic time before which calls fail fast

    # -- the interface ----------------------------------------------------------------------

    def apply(self, ops: Sequence[Op], now: float) -> list[Any]:
        if not ops:
            return []
        prefix = self.prefix
        keys: list[str] = []
        args: list[Any] = [_f(now), _HEAD]
        decoders = []
        for op in ops:
            codec = _CODEC.get(type(op))
            if codec is None:
                raise TypeError(f"unknown state operation {type(op).__name__}")
            codec[0](op, now, prefix, keys, args)
            decoders.append(codec[1])
        raw = self._run(keys, args)
        return [decode(r) for decode, r in zip(decoders, raw, strict=True)]

    def put_flag(self, name: str, code: str, value: Mapping[str, Any], ttl: int, now: float) -> None:
        try:
            text = json.dumps(dict(value), separators=(",", ":"), ensure_ascii=False)
        except (TypeError, ValueError) as exc:
            raise InputError(f"flag {code!r}: value is not JSON: {exc}") from None
        record = _F64.pack(now + ttl) + text.encode()
        self._run([f"{self.prefix}{name}|g"], [_f(now), _HEAD, "P", code, record, _ttl(ttl)])

    def clear(self) -> None:
        pattern = "".join("\\" + c if c in "*?[]\\" else c for c in self.prefix) + "*"

        def wipe() -> None:
            batch: list[str] = []
            for key in self._client.scan_iter(match=pattern, count=1000):
                batch.append(key)
                if len(batch) >= 500:
                    self._client.unlink(*batch)
                    batch.clear()
            if batch:
                self._client.unlink(*batch)

        self._guard(wipe)

    def health(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "server": self.where, "prefix": self.prefix}
        with self._lock:
            remaining = self._retry_at - time.monotonic() if self._down else 0.0
        if remaining > 0:
            ok = False
        else:
            try:
                info = self._client.info("memory")
                out.update(
                    used_memory=int(info.get("used_memory", 0)),
                    maxmemory=int(info.get("maxmemory", 0)),
                    maxmemory_policy=str(info.get("maxmemory_policy", "")),
                )
                ok = True
                with self._lock:
                    self._down = False
            except (RedisError, OSError) as exc:
                self._failed(exc, trip=True, count=False)
                ok = False
        with self._lock:
            remaining = self._retry_at - time.monotonic() if self._down else 0.0
            out.update(
                ok=ok,
                failures=self._failures,
                failed_fast=self._skipped,
                last_error=self._last_error,
                backing_off=remaining > 0,
                backoff_remaining_s=round(max(0.0, remaining), 3),
            )
        return out

    def close(self) -> None:
        self._client.close()

    # -- the round trip and the breaker -----------------------------------------------------

    def _run(self, keys: list[str], args: list[Any]) -> Any:
        def call() -> Any:
            try:
                return self._exec("EVALSHA", SCRIPT_SHA, len(keys), *keys, *args)
            except NoScriptError:  # a restarted or flushed server: load it again with this call
                return self._exec("EVAL", SCRIPT, len(keys), *keys, *args)

        return self._guard(call)

    def _guard(self, fn: Callable[[], _T]) -> _T:
        self._gate()
        try:
            result = fn()
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            raise StateUnavailable(self._failed(exc, trip=True)) from None
        except RedisError as exc:
            raise StateUnavailable(self._failed(exc, trip=False)) from None
        if self._down:
            with self._lock:
                self._down = False
        return result

    def _gate(self) -> None:
        """Fail fast while backing off; past the back-off, let this call probe (the others
        keep failing fast until it has answered)."""
        if not self._down:
            return
        with self._lock:
            if not self._down:
                return
            t = time.monotonic()
            if t < self._retry_at:
                self._failures += 1
                self._skipped += 1
                raise StateUnavailable(
                    f"redis state store at {self.where} unavailable (retrying in {self._retry_at - t:.2f} s): "
                    f"{self._last_error}"
                )
            self._retry_at = t + self._backoff

    def _failed(self, exc: BaseException, *, trip: bool, count: bool = True) -> str:
        error = f"{type(exc).__name__}: {self._scrub(exc)}"
        message = f"redis state store at {self.where}: {error}"
        with self._lock:
            if count:
                self._failures += 1
            self._last_error = error
            if trip:
                self._down = True
                self._retry_at = time.monotonic() + self._backoff
        return message

    def _scrub(self, exc: BaseException) -> str:
        text = " ".join(str(exc).split()) or "no detail"
        if self._secret:
            text = text.replace(self._secret, "***")
        return text[:300]
