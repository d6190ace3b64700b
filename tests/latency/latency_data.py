"""The WonderNetwork mesh (../shared/data/latency/wondernetwork) for the latency tests."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from geowarden.latency.model import pair_distances
from geowarden.model import RTTSample


@dataclass
class WN:
    name: list[str]
    lat: npt.NDArray[np.float64]
    lon: npt.NDArray[np.float64]
    rtt: npt.NDArray[np.float64]  # min RTT, rtt[p, c] = p pinged c (filled from c -> p if missing), NaN unmeasured
    dist: npt.NDArray[np.float64]

    def idx(self, name: str) -> int:
        return self.name.index(name)

    def samples(self, client: str, pops: list[str]) -> tuple[RTTSample, ...]:
        """The real RTTs that the PoPs measured to the client."""
        c = self.idx(client)
        out = []
        for p in pops:
            k = self.idx(p)
            if not np.isnan(self.rtt[k, c]):
                out.append(RTTSample(lat=float(self.lat[k]), lon=float(self.lon[k]), ms=float(self.rtt[k, c])))
        return tuple(out)

    def point(self, name: str) -> tuple[float, float]:
        k = self.idx(name)
        return float(self.lat[k]), float(self.lon[k])


def load_wn(base: Path) -> WN:
    with (base / "servers.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    pos = {int(r["id"]): k for k, r in enumerate(rows)}
    n = len(rows)
    rtt = np.full((n, n), np.nan)
    with (base / "pings.csv").open(encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            s, d = int(r["source"]), int(r["destination"])
            if s != d and s in pos and d in pos:
                rtt[pos[s], pos[d]] = float(r["min"])
    fill = np.isnan(rtt)
    rtt[fill] = rtt.T[fill]
    lat = np.array([float(r["latitude"]) for r in rows])
    lon = np.array([float(r["longitude"]) for r in rows])
    return WN([r["title"] for r in rows], lat, lon, rtt, pair_distances(lat, lon))
