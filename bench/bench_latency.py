"""Cost of one location verification (``latency.verify.verify``) at 20 and 200 landmarks.

    python bench/bench_latency.py            # medians over 60 runs, claim only and with the region

Landmarks at random places on land-ish latitudes; each measures a client in Frankfurt with the
RTT an honest route gives (distance at 100 km/ms plus 2 ms). Each case runs without a
calibration (discs at 2/3 c only) and with one that carries an expected-RTT ceiling (the
ceiling's evidence is then scored too). The 20-landmark run is the peer measured in the same
process (the machine is shared and noisy: compare ratios).

Last, the live rtt signal on requests that carry one edge RTT (the pop's), as most do: 2,000
requests from 30 pops with RTTs of 1-150 ms (two decimals), the region from the signal's cache
(the RTT rounded up to 0.5 ms) against the same requests with the cache emptied before each one
(the peer, interleaved in the same process).
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from geowarden.latency.ceiling import CEILING_EDGES_KM, RttCeiling
from geowarden.latency.model import Calibration, haversine_km
from geowarden.latency.places import places
from geowarden.latency.verify import ClaimedCountry, ClaimedPoint, verify
from geowarden.model import Facts, RTTSample
from geowarden.signals import rtt

CLIENT = (50.11, 8.68)
#: A ceiling shaped like the WonderNetwork tuning half's (ms per distance bin), 20 ms extra per landmark.
CEILING = Calibration(
    ceiling=RttCeiling(
        CEILING_EDGES_KM,
        (12.0, 25.0, 30.0, 40.0, 50.0, 60.0, 75.0, 95.0, 120.0, 160.0, 200.0, 250.0, 300.0, 330.0),
        default_extra_ms=20.0,
    )
)


def samples(n: int, seed: int = 7) -> tuple[RTTSample, ...]:
    rng = np.random.default_rng(seed)
    lat, lon = rng.uniform(-50.0, 65.0, n), rng.uniform(-180.0, 180.0, n)
    ms = haversine_km(lat, lon, *CLIENT) / 100.0 + 2.0
    return tuple(RTTSample(lat=float(a), lon=float(b), ms=float(m)) for a, b, m in zip(lat, lon, ms, strict=True))


def median_ms(fn: object, runs: int = 60) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append((time.perf_counter() - t) * 1000.0)
    return statistics.median(times)


def main() -> int:
    places()  # loaded once per process; not part of a verification
    for cal, label in ((None, "no calibration"), (CEILING, "with ceiling")):
        for n in (20, 200):
            s = samples(n)
            for name, claim in (("point (true)", ClaimedPoint(*CLIENT)), ("country AU (false)", ClaimedCountry("AU"))):
                a = median_ms(lambda s=s, claim=claim, cal=cal: verify(s, claim, calibration=cal, with_region=False))
                b = median_ms(lambda s=s, claim=claim, cal=cal: verify(s, claim, calibration=cal))
                print(f"{label:<15} {n:>4} landmarks, {name:<19} claim only {a:7.2f} ms   with region {b:7.2f} ms")
    edge_rtt()
    return 0


def edge_rtt(n: int = 20000, seed: int = 11) -> None:
    """The rtt signal on one edge RTT per request: how often the region comes from the cache over
    a stream of requests, and a cached answer's cost against a recomputed one (the peer)."""
    rng = np.random.default_rng(seed)
    pops = [(float(a), float(b)) for a, b in zip(rng.uniform(-40, 60, 30), rng.uniform(-180, 180, 30), strict=True)]
    reqs = [
        Facts(rtt=(RTTSample(lat=pops[i][0], lon=pops[i][1], ms=round(float(m), 2)),))
        for i, m in zip(rng.integers(0, 30, n), 1.0 + rng.gamma(2.0, 12.0, n).clip(0, 149), strict=True)
    ]
    rtt._REGIONS.clear()
    misses = 0
    for f in reqs:  # the stream, in order: a miss is a new region in the cache
        before = len(rtt._REGIONS)
        rtt.evaluate(f)
        misses += len(rtt._REGIONS) > before
    cached, fresh = [], []
    for f in reqs[:500]:  # interleaved: each request from the cache, then recomputed
        t = time.perf_counter()
        rtt.evaluate(f)
        cached.append(time.perf_counter() - t)
        saved = dict(rtt._REGIONS)
        rtt._REGIONS.clear()
        t = time.perf_counter()
        rtt.evaluate(f)
        fresh.append(time.perf_counter() - t)
        rtt._REGIONS.update(saved)
    c, r = statistics.median(cached) * 1000, statistics.median(fresh) * 1000
    print(f"rtt signal, one edge RTT from 30 pops: {n:,} requests, {1 - misses / n:.1%} answered from the cache; "
          f"median cached {c:.3f} ms, recomputed {r:.3f} ms (ratio {r / c:.0f}x)")  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
