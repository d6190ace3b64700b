"""State stores: the cost of one decision's batch, memory vs Redis (EVALSHA script vs pipeline).

A realistic decision batch (20 operations): for the API key and for its account, distinct
counts of addresses, /24 prefixes, ASNs and countries over (600, 3600, 86400) s; request and
token counts over (3600, 604800) s; places; the hour profile; first seen; flags. Plus the
behaviour signal's own batch (``geowarden.signals.keystate.operations``, 11 operations).

Traffic: ``--keys`` API keys (three per account), most used from one to three addresses of
their own country, and ``--hot`` hot keys taking ``--hot-share`` of all requests from a pool
of 2,000 addresses in 40 countries (a resold key: every distinct count keeps moving). The
clock advances ``1 / --rate`` seconds per decision, so windows slide and buckets turn over.

Cases, each with its own store (Redis ones under their own key prefix, cleared at the end):

- ``memory``: ``MemoryStore``;
- ``redis script``: ``RedisStore``, one ``EVALSHA`` per batch (what geowarden ships);
- ``redis pipeline``: the same batch as one pipelined round trip of plain commands (about 130),
  a prototype kept here only to measure that design: it leaves out what a pipeline cannot do
  in one trip (evicting places, expiring first-seen by the caller's clock, caching counts).

Each figure is the latency of ``apply`` alone (operations built beforehand), p50 and p99 over
``-n`` decisions, median over ``--repeat`` passes run round-robin; the Redis server's own time
per batch comes from ``INFO commandstats``. Never run by the tests.

Run: ``python bench/bench_state.py [--redis redis://127.0.0.1:6379/0] [-n 5000] [--repeat 3] [--json]``.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import redis
from common import Latency, Report, fmt_us, machine, per_call_ns, rng_for

from geowarden.state.base import (
    BUCKETS,
    Count,
    Distinct,
    FirstSeen,
    Flags,
    Hours,
    Op,
    Places,
    StateStore,
    bucket_of,
    bucket_size,
    hour_of,
)
from geowarden.state.memory import MemoryStore
from geowarden.state.redisstore import RedisStore

WINDOWS = (600, 3600, 86400)
VOLUME = (3600, 604800)
COUNTRIES = ["US", "DE", "GB", "FR", "JP", "SG", "NL", "CA", "BR", "IN", "CN", "RU", "HK", "IR", "KR", "AU"]


@dataclass(frozen=True, slots=True)
class Request:
    key: str
    account: str
    ip: str
    prefix: str
    asn: str
    country: str
    anonymised: bool
    tokens: float
    now: float


def traffic(n: int, keys: int, hot: int, hot_share: float, rate: float, seed: int, start: float) -> list[Request]:
    rng = rng_for(seed, "state-traffic")
    homes = {}
    out: list[Request] = []
    pool = [
        (f"{rng.integers(1, 224)}.{rng.integers(0, 256)}.{rng.integers(0, 256)}.{rng.integers(1, 255)}", c)
        for c in rng.choice(COUNTRIES + [f"X{i}" for i in range(24)], size=2000).tolist()
    ]
    for i in range(n):
        if rng.random() < hot_share:
            k = int(rng.integers(0, hot))
            ip, country = pool[int(rng.integers(0, len(pool)))]
        else:
            k = hot + int(rng.integers(0, keys))
            if k not in homes:
                country = str(rng.choice(COUNTRIES))
                homes[k] = [
                    (f"{rng.integers(1, 224)}.{rng.integers(0, 256)}.{rng.integers(0, 256)}.{j + 1}", country)
                    for j in range(int(rng.integers(1, 4)))
                ]
            ip, country = homes[k][int(rng.integers(0, len(homes[k])))]
        prefix = ip.rsplit(".", 1)[0] + ".0/24"
        out.append(
            Request(
                key=f"k:ak_{k}",
                account=f"a:acct_{k // 3}",
                ip=ip,
                prefix=prefix,
                asn=str(int(ip.split(".")[0]) * 100 + int(ip.split(".")[1]) % 7),
                country=country,
                anonymised=k < hot,
                tokens=float(rng.integers(50, 4000)),
                now=start + i / rate,
            )
        )
    return out


def decision_batch(r: Request) -> list[Op]:
    """The 20-operation batch: the same features for the key and for its account."""
    ops: list[Op] = []
    for s in (r.key, r.account):
        ops += [
            Distinct(s + ":ip", r.ip, WINDOWS),
            Distinct(s + ":net", r.prefix, WINDOWS),
            Distinct(s + ":asn", r.asn, WINDOWS),
            Distinct(s + ":cc", r.country, WINDOWS),
            Count(s + ":req", 1.0, VOLUME),
            Count(s + ":tok", r.tokens, VOLUME),
            Places(s + ":places", r.country, 86400),
            Hours(s + ":hours", 7),
            FirstSeen(s + ":first", 90 * 86400),
            Flags(s),
        ]
    return ops


def signal_batch(r: Request) -> list[Op] | None:
    """The behaviour signal's own batch, when that module is there."""
    try:
        from geowarden.signals.keystate import Observation, operations  # noqa: PLC0415
    except ImportError:
        return None
    obs = Observation(
        subject=r.key,
        account=r.account,
        ip=r.ip,
        prefix=r.prefix,
        asn=r.asn,
        country=r.country,
        anonymised=r.anonymised,
        tokens=r.tokens,
    )
    return list(operations(obs))


class PipelineStore:
    """The pipelined alternative to the script, for measurement only (see the module docstring)."""

    kind = "redis-pipeline"

    def __init__(self, url: str, prefix: str) -> None:
        self.prefix = prefix
        self.client = redis.Redis.from_url(url, socket_timeout=2.0, decode_responses=True)

    def apply(self, ops: Sequence[Op], now: float) -> list[Any]:
        p = self.client.pipeline(transaction=False)
        sizes: list[int] = []
        for op in ops:
            n0 = len(p.command_stack)
            self._queue(p, op, now)
            sizes.append(len(p.command_stack) - n0)
        raw = p.execute()
        out: list[Any] = []
        i = 0
        for op, n in zip(ops, sizes, strict=True):
            out.append(self._decode(op, raw[i : i + n], now))
            i += n
        return out

    def _queue(self, p: Any, op: Op, now: float) -> None:
        k = self.prefix + op.name
        if isinstance(op, Count):
            for w in op.windows:
                b, bs = bucket_of(now, w), bucket_size(w)
                hk = f"{k}|pc:{w}"
                p.hincrbyfloat(hk, str(b), op.amount)
                p.hmget(hk, [str(x) for x in range(b - BUCKETS + 1, b + 1)])
                p.expire(hk, w + bs)
        elif isinstance(op, Distinct):
            for w in op.windows:
                b, bs = bucket_of(now, w), bucket_size(w)
                base = f"{k}|pd:{w}:"
                p.pfadd(base + str(b), op.member)
                p.expire(base + str(b), w + bs)
                p.pfcount(*[base + str(x) for x in range(b - BUCKETS + 1, b + 1)])
        elif isinstance(op, Places):
            p.hgetall(k + "|pp")
            p.hset(k + "|pp", op.place, repr(now))
            p.expire(k + "|pp", op.ttl)
        elif isinstance(op, Hours):
            day = hour_of(now) // 24
            p.hincrby(f"{k}|ph:{day}", str(hour_of(now) % 24), 1)
            p.expire(f"{k}|ph:{day}", (op.days + 1) * 86400)
            for d in range(day - max(op.days, 2) + 1, day + 1):
                p.hgetall(f"{k}|ph:{d}")
        elif isinstance(op, FirstSeen):
            p.set(k + "|pf", repr(now), nx=True, ex=op.ttl)
            p.get(k + "|pf")
        else:
            p.hgetall(k + "|pg")

    @staticmethod
    def _decode(op: Op, part: list[Any], now: float) -> Any:
        if isinstance(op, Count):
            return tuple(sum(float(v) for v in part[j + 1] if v) for j in range(0, len(part), 3))
        if isinstance(op, Distinct):
            return tuple(part[j + 2] for j in range(0, len(part), 3))
        if isinstance(op, Places):
            return {c: float(t) for c, t in part[0].items() if float(t) > now - op.ttl}
        if isinstance(op, Hours):
            prof = [0] * 24
            for h in part[2:]:
                for hh, c in h.items():
                    prof[int(hh)] += int(c)
            return tuple(prof), 0
        if isinstance(op, FirstSeen):
            return float(part[1])
        return part[0]

    def clear(self) -> None:
        keys = list(self.client.scan_iter(match=self.prefix + "*", count=1000))
        for j in range(0, len(keys), 500):
            self.client.unlink(*keys[j : j + 500])

    def close(self) -> None:
        self.client.close()


def evalsha_stats(client: redis.Redis) -> tuple[int, int]:
    """(calls, microseconds) of EVALSHA and EVAL on the server so far."""
    stats = client.info("commandstats")
    calls = usec = 0
    for name in ("cmdstat_evalsha", "cmdstat_eval"):
        if name in stats:
            calls += int(stats[name]["calls"])
            usec += int(stats[name]["usec"])
    return calls, usec


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0", help="Redis server URL")
    parser.add_argument("-n", type=int, default=5000, help="decisions per pass")
    parser.add_argument("--keys", type=int, default=20000, help="ordinary API keys")
    parser.add_argument("--hot", type=int, default=5, help="hot (resold) keys")
    parser.add_argument("--hot-share", type=float, default=0.2, help="share of requests from the hot keys")
    parser.add_argument("--rate", type=float, default=200.0, help="simulated decisions per second")
    parser.add_argument("--repeat", type=int, default=3, help="passes per case (round-robin)")
    parser.add_argument("--seed", type=int, default=20260901)
    parser.add_argument("--no-pipeline", action="store_true", help="leave out the pipeline prototype (slow)")
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout, the table on stderr")
    return parser.parse_args(argv)


Case = tuple[str, str, Any]  # (name, batch kind, store)


def make_cases(args: argparse.Namespace, kinds: Sequence[str], run: str) -> list[Case]:
    cases: list[Case] = []
    for kind in kinds:
        tag = kind.split()[0]
        script = RedisStore(args.redis, prefix=f"gwbench:{run}:{tag}:s:", timeout=2.0)
        cases += [(f"{kind}: memory", kind, MemoryStore()), (f"{kind}: redis script", kind, script)]
        if not args.no_pipeline and tag == "decision":
            pipe = PipelineStore(args.redis, prefix=f"gwbench:{run}:{tag}:p:")
            cases.append((f"{kind}: redis pipeline", kind, pipe))
    return cases


def measure(
    cases: Sequence[Case], batches: dict[str, list[list[Op]]], reqs: Sequence[Request], args: argparse.Namespace,
    probe: redis.Redis,
) -> tuple[dict[str, Latency], dict[str, list[float]]]:  # fmt: skip
    """Per-call latency of every case, passes round-robin, and the server's time per script call."""
    lat = {name: Latency(name) for name, _, _ in cases}
    server: dict[str, list[float]] = {name: [] for name, _, _ in cases}
    span = args.n / args.rate
    for p in range(args.repeat):
        shift = p * span  # time keeps moving forward across passes: the state stays warm
        for name, kind, store in cases:
            items = [(ops, r.now + shift) for ops, r in zip(batches[kind], reqs, strict=True)]

            def call(item: tuple[list[Op], float], store: StateStore = store) -> object:
                return store.apply(item[0], item[1])

            before = evalsha_stats(probe)
            lat[name].add(per_call_ns(call, items))
            calls, usec = (a - b for a, b in zip(evalsha_stats(probe), before, strict=True))
            if calls and "script" in name:
                server[name].append(usec / calls)
    return lat, server


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    rep = Report("bench_state: one decision's state batch, memory vs Redis", args.json)
    env = machine()
    probe = redis.Redis.from_url(args.redis, socket_timeout=2.0)
    try:
        server = probe.info("server")
    except redis.RedisError as exc:
        sys.exit(f"Redis not answering at {args.redis}: {exc}")
    rep.doc.update(machine=env, redis_version=server.get("redis_version"), args=vars(args))
    rep.say(f"machine : {env['cpu']} x{env['cpus']} (shared, noisy), load {env['loadavg']}")
    rep.say(f"redis   : {server.get('redis_version')} at {args.redis}; redis-py {redis.__version__}")

    reqs = traffic(args.n, args.keys, args.hot, args.hot_share, args.rate, args.seed, time.time())
    batches = {"decision (20 ops)": [decision_batch(r) for r in reqs]}
    sig = [signal_batch(r) for r in reqs]
    if sig and sig[0] is not None:
        batches["signal (11 ops)"] = [b for b in sig if b is not None]
    rep.say(
        f"traffic : {args.n} decisions per pass over {args.n / args.rate:.0f} simulated s, {args.keys} keys + "
        f"{args.hot} hot ({args.hot_share:.0%} of requests), {args.repeat} passes"
    )
    rep.say()

    run = uuid.uuid4().hex[:8]
    cases = make_cases(args, list(batches), run)
    mem_before = int(probe.info("memory")["used_memory"])
    try:
        lat, server_time = measure(cases, batches, reqs, args, probe)
        mem_after = int(probe.info("memory")["used_memory"])
        rows = []
        for name, _, _ in cases:
            srv = float(np.median(server_time[name])) if server_time[name] else None
            rows.append([name, lat[name].p50_median, lat[name].p99_median, min(lat[name].p50), srv])
            rep.doc.setdefault("cases", {})[name] = {**lat[name].to_dict(), "server_us_per_batch": srv}
        rep.table(["case", "p50 µs", "p99 µs", "best p50 µs", "server µs/batch"], rows)
        dec = "decision (20 ops)"
        script_p50 = lat[f"{dec}: redis script"].p50_median
        rep.say(f"redis script vs memory, decision batch: {script_p50 / lat[f'{dec}: memory'].p50_median:.1f}x at p50")
        if f"{dec}: redis pipeline" in lat:
            pipe_p50 = lat[f"{dec}: redis pipeline"].p50_median
            rep.say(f"pipeline vs script, decision batch: {pipe_p50 / script_p50:.1f}x at p50 ({fmt_us(pipe_p50)})")
        subjects = len({r.key for r in reqs}) + len({r.account for r in reqs})
        keys = list(probe.scan_iter(match=f"gwbench:{run}:decision:s:*", count=1000))
        sample = keys[:: max(1, len(keys) // 2000)]
        per_key = float(np.mean([probe.memory_usage(k) or 0 for k in sample])) if sample else 0.0
        per_subject = per_key * len(keys) / subjects
        rep.say(
            f"redis memory: {(mem_after - mem_before) / 1e6:,.1f} MB for every case's keys; the script's decision "
            f"store: {len(keys):,} keys for {subjects:,} subjects ({len(keys) / subjects:.1f} each), "
            f"~{per_key:,.0f} B a key (MEMORY USAGE), ~{per_subject / 1e3:,.1f} kB a subject"
        )
        rep.doc.update(
            redis_used_memory_delta=mem_after - mem_before,
            script_keys=len(keys),
            subjects=subjects,
            bytes_per_key=round(per_key),
            bytes_per_subject=round(per_subject),
        )
    finally:
        for _, _, store in cases:
            store.clear()
            store.close()
        probe.close()
    rep.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
