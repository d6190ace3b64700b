"""Cost of one location verification (``latency.verify.verify``) at 20 and 200 landmarks.

    python bench/bench_latency.py            # medians over 60 runs, claim only and with the region

Landmarks at random places on land-ish latitudes; each measures a client in Frankfurt with the
RTT an honest route gives (distance at 100 km/ms plus 2 ms). Each case runs without a
calibration (discs at 2/3 c only) and with one that carries an expected-RTT ceiling (the
ceiling's evidence is then scored too). The 20-landmark run is the peer measured in the same
process (the machine is shared and noisy: compare ratios).
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from geowarden.latency.ceiling import CEILING_EDGES_KM, RttCeiling
from geowarden.latency.model import Calibration, haversine_km
from geowarden.latency.places import places
from geowarden.latency.verify import ClaimedCountry, ClaimedPoint, verify
from geowarden.model import RTTSample

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
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
