"""Shortcuts for the verification's hot path that leave every answer bit for bit the same.

- ``dots``/``dot``: the dot products of unit vectors through BLAS, as before, in row blocks small
  enough that OpenBLAS keeps each product on one thread (it starts threads above
  ``m * n * k = 4 * 65536`` for a matrix product and ``m * n = 4 * 2304`` for a matrix-vector
  one). The products are (points x 3) by (3 x landmarks): starting threads for each costs more
  than the product itself, by 10-100x on a loaded machine. Every block has at least two rows (a
  one-row block would take another BLAS path, which rounds differently), and BLAS computes each
  entry of a product the same way whatever the block, so the values are those of one product.
  ``dots_of``: some columns of such a product, with the same values.
- ``Cap``: a spherical cap around a set of points, which bounds every point's distance to a
  landmark, with a margin (``CAP_MARGIN_RAD``) far above any rounding of a distance.
- ``gathered_score``: the rule's score, summed left to right over the discs (as ``running_sum``)
  from the discs each point is outside of only. Skipping a term that is exactly 0 leaves such a
  sum unchanged, so no score moves by a single bit.
- ``ceiling_nil``: points whose expected-RTT ceiling evidence is provably 0, so that it need not be
  computed (it needs every landmark's distance).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from geowarden.latency.model import EARTH_RADIUS_KM, FloatArray, cos_of_km, km_of_dot

#: Output entries of one matrix product (OpenBLAS threads at 3 * entries >= 4 * 65536).
GEMM_ENTRIES = 65_536
#: Rows of one matrix-vector product of (rows, 3) by (3,) (OpenBLAS threads at 3 * rows >= 4 * 2304).
GEMV_ROWS = 2_048
#: Slack (radians, ~64 m) on every cap bound: rounding moves a distance by less than 1e-7 rad.
CAP_MARGIN_RAD = 1e-5
#: Slack (ms) on ``ceiling_nil``'s bound: rounding moves an RTT excess by less than 1e-9 ms.
NIL_MARGIN_MS = 1e-6

BoolArray = npt.NDArray[np.bool_]


def _blocks(n: int, rows: int) -> list[tuple[int, int]]:
    """``[a, b)`` row ranges of at most ``rows`` rows (``rows`` >= 2), none of a single row."""
    k = -(-n // rows)  # ceil
    size = -(-n // k)
    edges = [*range(0, n, size), n]
    if edges[-1] - edges[-2] == 1 and len(edges) > 2:  # the last block would hold one row
        edges.pop(-2)
    return list(itertools.pairwise(edges))


def dots(a: FloatArray, b: FloatArray) -> FloatArray:
    """``a @ b.T`` for (n, 3) and (m, 3) arrays, the values of that one product, each BLAS call on
    one thread (blocks of at least two rows: BLAS computes each row alike whatever the block)."""
    rows = max(2, GEMM_ENTRIES // max(len(b), 1))
    if len(a) <= rows:
        small: FloatArray = a @ b.T
        return small
    out: FloatArray = np.empty((len(a), len(b)))
    bt = b.T
    for lo, hi in _blocks(len(a), rows):
        np.matmul(a[lo:hi], bt, out=out[lo:hi])
    return out


def dots_of(a: FloatArray, b: FloatArray, cols: npt.NDArray[np.intp]) -> FloatArray:
    """``dots(a, b)[:, cols]`` without the other columns. A one-row or one-column product takes
    another BLAS path than a matrix product and rounds differently, so a single column of a matrix
    product is computed beside a copy of itself."""
    if len(a) < 2 or len(b) < 2:
        return dots(a, b)[:, cols]
    if len(cols) == 1:
        return dots(a, b[np.repeat(cols, 2)])[:, :1]
    return dots(a, b[cols])


def dot(a: FloatArray, v: FloatArray) -> FloatArray:
    """``a @ v`` for an (n, 3) array and a (3,) vector, each BLAS call on one thread (same values)."""
    if len(a) <= GEMV_ROWS:
        small: FloatArray = a @ v
        return small
    out: FloatArray = np.empty(len(a))
    for lo, hi in _blocks(len(a), GEMV_ROWS):
        np.matmul(a[lo:hi], v, out=out[lo:hi])
    return out


@dataclass(frozen=True, slots=True)
class Cap:
    """A cap that holds every point of a set: ``centre`` (unit vector) and angular ``radius``.

    ``radius`` is pi (the whole sphere) for an empty set or one whose mean is near the origin,
    so that no bound then proves anything.
    """

    centre: FloatArray
    radius: float

    @classmethod
    def around(cls, xyz: FloatArray) -> Cap:
        s = xyz.sum(axis=0)
        norm = float(np.linalg.norm(s))
        if len(xyz) == 0 or norm < 1e-6 * len(xyz):
            return cls(np.array([0.0, 0.0, 1.0]), np.pi)
        c = s / norm
        near = float((xyz[:, 0] * c[0] + xyz[:, 1] * c[1] + xyz[:, 2] * c[2]).min())  # no BLAS: a bound only
        return cls(c, float(np.arccos(np.clip(near, -1.0, 1.0))) + CAP_MARGIN_RAD)

    def angles(self, xyz: FloatArray) -> FloatArray:
        """Angle (radians) from the centre to each row of ``xyz`` (small sets: the discs)."""
        out: FloatArray = np.arccos(np.clip(xyz @ self.centre, -1.0, 1.0))
        return out

    def distance_range(self, xyz: FloatArray) -> tuple[FloatArray, FloatArray]:
        """For each centre: km below and above every point's distance to it (margins included)."""
        a = self.angles(xyz)
        lo = np.maximum(a - self.radius - CAP_MARGIN_RAD, 0.0) * EARTH_RADIUS_KM
        hi = np.minimum(a + self.radius + CAP_MARGIN_RAD, np.pi) * EARTH_RADIUS_KM
        return lo, hi


def running_sum(start: FloatArray, terms: FloatArray) -> FloatArray:
    """``start + terms[:, 0] + terms[:, 1] + ...``, added left to right in each row."""
    if terms.shape[1] == 0:
        return start.copy()
    acc = np.empty((len(start), terms.shape[1] + 1))
    acc[:, 0] = start
    acc[:, 1:] = terms
    out: FloatArray = np.cumsum(acc, axis=1)[:, -1]
    return out


def gathered_score(
    d: FloatArray, r: FloatArray, severity_km: float, weight: FloatArray, start: FloatArray
) -> FloatArray:
    """``start`` plus each point's score against some discs: ``d`` holds the dot products (points,
    discs), ``r`` the radii (km), the discs in the order the terms are added.

    The rule's term of a disc is its weight times ``min(1, excess / severity_km)`` for a point
    outside it, 0 for a point inside it (``dot >= cos(r)``). Only the nonzero terms are gathered,
    point by point and each point's in disc order, and summed left to right (``np.bincount`` adds
    its weights in array order), as ``running_sum`` over every disc would. A distance is computed
    only for a partly violated disc.
    """
    flat = np.flatnonzero(d < cos_of_km(r)[None, :])  # row-major: point by point, each point's discs in order
    n, m = d.shape
    pt, disc = flat // m, flat % m
    v = d.ravel()[flat]
    part = np.flatnonzero(v >= cos_of_km(r + severity_km)[disc])  # the others: fully violated
    g = np.ones(len(v))
    g[part] = np.clip((km_of_dot(v[part]) - r[disc[part]]) / severity_km, 0.0, 1.0)
    out: FloatArray = np.bincount(
        np.concatenate([np.arange(n), pt]), np.concatenate([start, g * weight[disc]]), minlength=n
    ).astype(np.float64, copy=False)
    return out


def ceiling_nil(slowest: FloatArray, worst_km: FloatArray, grant: float, speed: float, ceiling_low: float) -> BoolArray:
    """Points whose ceiling evidence is exactly 0: every landmark in reach answers within its
    smallest possible ceiling, after the least allowance the point can get.

    ``slowest``: per point, the largest ``ms - own extra`` of the landmarks in reach (or more);
    ``worst_km``: how far the point is outside its farthest disc; ``grant``: the least allowance
    of a point inside every disc (``min_i ms_i - floor_i(radius_i)``, 0 unless a radius is capped);
    ``speed``: the slowest disc's speed; ``ceiling_low``: the smallest ceiling at any distance.
    A point ``worst_km`` outside some discs is at most that much farther from each, which costs at
    most ``2 * worst_km / speed`` ms of allowance: an RTT excess over the ceiling is then at most
    ``slowest - allowance - ceiling_low``, and a negative one is no evidence.
    """
    low = grant - 2.0 * np.maximum(worst_km, 0.0) / speed
    out: BoolArray = slowest - low - ceiling_low < -NIL_MARGIN_MS
    return out
