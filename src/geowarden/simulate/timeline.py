"""When requests happen: the scenario's timeline, hours of activity and synchronised windows.

A scenario whose personas are all flat in time keeps the original timeline: one homogeneous
Poisson process (sorted times from cumulated exponential gaps), each event given to an entry by
its ``share``. When any persona has a time profile — ``diurnal`` (people's local hours of
activity), ``windows_per_day`` (traffic only in synchronised windows) or ``active_from_day`` —
the timeline is cut into one-minute buckets and

- each entry gets a weight per bucket (``share`` x its profile, the profile's mean kept at 1 so
  that shares still hold over the whole timeline);
- the total rate of a bucket is the sum of the weights: the same sorted uniform times are
  mapped through the inverse of the cumulative rate (piecewise linear, so order is kept and the
  cost is one ``searchsorted``);
- each event's entry is drawn from its bucket's weights (one ``searchsorted`` over a
  flattened, row-offset table of cumulative weights).

Inside an entry, ``pick_accounts`` gives each event to an account in proportion to the
account's activity times the diurnal curve at the account's local hour.
"""

from __future__ import annotations

import datetime as dt
import functools
import zoneinfo
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from geowarden.errors import ConfigError

if TYPE_CHECKING:
    from geowarden.simulate.personas import Persona
    from geowarden.simulate.world import Geo

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

T0_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z (a Thursday)
DAY_MS = 86_400_000
HOUR_MS = 3_600_000
BUCKET_MS = 60_000

#: Relative request rate of people by local hour (0-23): asleep at night, a working-day peak,
#: a quieter evening. Normalised to a mean of 1.
_CURVE = np.array(
    [0.35, 0.2, 0.12, 0.08, 0.07, 0.08, 0.15, 0.35, 0.7, 1.0, 1.2, 1.3,
     1.25, 1.25, 1.35, 1.35, 1.3, 1.15, 1.0, 0.95, 0.95, 0.9, 0.75, 0.55],
)  # fmt: skip
DIURNAL: FloatArray = _CURVE / _CURVE.mean()


def diurnal(local_hour: FloatArray, amplitude: float) -> FloatArray:
    """Activity weight at a local hour (0-24, fractional): ``1 - a + a * curve`` (mean 1)."""
    h = np.mod(local_hour, 24.0)
    lo = np.floor(h).astype(np.int64) % 24
    frac = h - np.floor(h)
    curve = DIURNAL[lo] * (1.0 - frac) + DIURNAL[(lo + 1) % 24] * frac
    out: FloatArray = (1.0 - amplitude) + amplitude * curve
    return out


@functools.lru_cache(maxsize=512)
def utc_offset_hours(zone: str, at_ms: int = T0_MS) -> float:
    """The zone's offset from UTC in hours at ``at_ms`` (DST as of that moment)."""
    try:
        tz = zoneinfo.ZoneInfo(zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return 0.0
    off = dt.datetime.fromtimestamp(at_ms / 1000, tz).utcoffset()
    return 0.0 if off is None else off.total_seconds() / 3600.0


def city_offsets(zones: Sequence[str], at_ms: int = T0_MS) -> FloatArray:
    """UTC offset (hours) of each city of ``world.CITIES`` (``zones`` from ``world.city_zones``)."""
    return np.array([utc_offset_hours(z, at_ms) for z in zones], dtype=np.float64)


def has_profile(p: Persona) -> bool:
    return p.diurnal > 0 or p.windows_per_day > 0 or p.active_from_day > 0


def entry_profile(
    p: Persona, n_buckets: int, bucket_ms: float, geo: Geo, offsets: FloatArray, rng: np.random.Generator
) -> FloatArray:
    """The persona's relative rate per bucket (mean 1 over the timeline)."""
    centres = (np.arange(n_buckets) + 0.5) * bucket_ms  # ms since T0 (midnight UTC)
    utc_hour = (centres % DAY_MS) / HOUR_MS
    prof = np.ones(n_buckets)
    if p.diurnal > 0:
        per_country = []
        for cc in p.location or p.origin:
            cities = [int(c) for c in geo.cities_in(cc) if not p.cities or geo.names[int(c)] in p.cities]
            if cities:
                per_country.append(np.mean([diurnal(utc_hour + offsets[c], p.diurnal) for c in cities], axis=0))
        if per_country:
            prof *= np.mean(per_country, axis=0)
    first = int(np.ceil(p.active_from_day * DAY_MS / bucket_ms))
    if first >= n_buckets:
        raise ConfigError(f"persona {p.kind}: active_from_day is after the end of the timeline")
    prof[:first] = 0.0
    if p.windows_per_day > 0:
        width = max(1, round(p.window_minutes * 60_000 / bucket_ms))
        active_days = (n_buckets - first) * bucket_ms / DAY_MS
        n_windows = max(1, round(p.windows_per_day * active_days))
        # one window at a random time in each of n_windows equal slots (a schedule with jitter)
        slot = max(1, n_buckets - width - first) / n_windows
        starts = (first + (np.arange(n_windows) + rng.random(n_windows)) * slot).astype(np.int64)
        mask = np.zeros(n_buckets + 1)
        np.add.at(mask, starts, 1.0)
        np.add.at(mask, np.minimum(starts + width, n_buckets), -1.0)
        prof *= np.cumsum(mask)[:n_buckets] > 0
    total = prof.sum()
    if total <= 0:
        raise ConfigError(f"persona {p.kind}: its time profile leaves no time to send requests")
    out: FloatArray = prof * (n_buckets / total)
    return out


def warp(cum: FloatArray, rate: FloatArray, bucket_ms: float) -> tuple[IntArray, IntArray]:
    """Map sorted homogeneous times (``cum``, cumulated gaps) onto a piecewise-constant ``rate``
    per bucket: (ms since T0, bucket) per event, still sorted."""
    n = len(cum)
    u = cum / (cum[-1] * (1.0 + 1.0 / max(n, 1)))
    lam = np.cumsum(rate)
    lam /= lam[-1]
    b = np.minimum(np.searchsorted(lam, u, side="right"), len(rate) - 1)
    lo = np.where(b > 0, lam[np.maximum(b - 1, 0)], 0.0)
    width = np.maximum(lam[b] - lo, 1e-300)
    frac = np.clip((u - lo) / width, 0.0, 1.0 - 1e-9)
    ms: IntArray = ((b + frac) * bucket_ms).astype(np.int64)
    return ms, b.astype(np.int64)


def assign(bucket: IntArray, weights: FloatArray, u: FloatArray) -> IntArray:
    """Each event's entry, drawn from its bucket's column of ``weights`` (entries x buckets)."""
    k, n_buckets = weights.shape
    total = np.maximum(weights.sum(axis=0), 1e-300)
    table = np.cumsum(weights, axis=0) / total  # entries x buckets, each column ends at 1
    flat = (np.arange(n_buckets)[:, None] + table.T).ravel()
    idx = np.searchsorted(flat, bucket + u, side="right") - bucket * k
    out: IntArray = np.clip(idx, 0, k - 1).astype(np.int64)
    return out


def pick_accounts(
    rng: np.random.Generator, ts: IntArray, act: FloatArray, acc_offset: FloatArray, amplitude: float
) -> IntArray:
    """An account per event (timestamps ``ts``, epoch ms), in proportion to the account's
    activity ``act`` times the diurnal weight at its local hour (``acc_offset`` from UTC)."""
    steps = 96  # quarter hours of the UTC day
    offs, group = np.unique(acc_offset, return_inverse=True)
    n_groups = len(offs)
    mass = np.bincount(group, weights=act, minlength=n_groups)
    centres = (np.arange(steps) + 0.5) * (24.0 / steps)
    w = mass[None, :] * diurnal(centres[:, None] + offs[None, :], amplitude)
    table = np.cumsum(w, axis=1) / w.sum(axis=1, keepdims=True)
    flat = (np.arange(steps)[:, None] + table).ravel()
    step = ((ts % DAY_MS) * steps // DAY_MS).astype(np.int64)
    g = np.clip(np.searchsorted(flat, step + rng.random(len(ts)), side="right") - step * n_groups, 0, n_groups - 1)
    order = np.argsort(group, kind="stable")
    g_sorted = group[order]
    cs = np.cumsum(act[order])
    before = np.concatenate([[0.0], np.cumsum(mass)[:-1]])
    flat2 = g_sorted + (cs - before[g_sorted]) / mass[g_sorted]
    pos = np.clip(np.searchsorted(flat2, g + rng.random(len(ts)), side="right"), 0, len(act) - 1)
    out: IntArray = order[pos].astype(np.int64)
    return out
