"""When: the daily rhythm of a key's traffic and the clocks of countries, for the behaviour signal.

A person's day has a quiet night; a 24-hour profile of requests per UTC hour therefore implies a
UTC offset (``profile_offset``), which can be held against the offsets of a country's time zones
(``country_offsets``).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

NIGHT_HOURS = 6  # the quietest run of hours in a person's day
NIGHT_CENTRE_LOCAL = 3.0  # its middle, local time
DAY_CENTRE_LOCAL = 14.0  # the middle of a person's activity, local time
FITS_HOURS = 1.5  # how near an inferred offset must be to a country's to fit it


def _circular_mean(hours: Sequence[float], weights: Sequence[float]) -> float:
    x = sum(w * math.cos(h * math.pi / 12.0) for h, w in zip(hours, weights, strict=True))
    y = sum(w * math.sin(h * math.pi / 12.0) for h, w in zip(hours, weights, strict=True))
    return (math.atan2(y, x) * 12.0 / math.pi) % 24.0


def _wrap(hours: float) -> float:
    """An offset in hours on (-12, 12]."""
    return -((12.0 - hours) % 24.0 - 12.0)


def profile_offset(profile: Sequence[int], max_night_share: float = 0.05) -> tuple[float, float] | None:
    """The UTC offset a 24-hour profile (requests per UTC hour) implies, or None when it has no
    clear night (round the clock, or no traffic): ``(offset hours, share of requests in the
    quietest hours)``. Two readings are averaged: the middle of the quietest hours is taken as
    03:00 local time, and the middle of the activity as 14:00."""
    total = sum(profile)
    if total <= 0:
        return None
    sums = [sum(profile[(start + i) % 24] for i in range(NIGHT_HOURS)) for start in range(24)]
    quiet = min(sums)
    share = quiet / total
    if share > max_night_share:
        return None
    centres = [(start + NIGHT_HOURS / 2.0) % 24 for start in range(24) if sums[start] == quiet]
    night = _circular_mean(centres, [1.0] * len(centres))
    day = _circular_mean([h + 0.5 for h in range(24)], [float(n) for n in profile])
    by_night = _wrap(NIGHT_CENTRE_LOCAL - night)
    by_day = _wrap(DAY_CENTRE_LOCAL - day)
    offset = _wrap(_circular_mean([by_night % 24.0, by_day % 24.0], [1.0, 1.0]))
    return round(offset * 2.0) / 2.0, share


@functools.lru_cache(maxsize=512)
def country_offsets(cc: str) -> tuple[float, ...]:
    """The UTC offsets (hours, standard and summer time) of a country's time zones."""
    from geowarden.signals.client import zones  # noqa: PLC0415

    year = datetime.now().year
    winter, summer = datetime(year, 1, 15), datetime(year, 7, 15)
    out: set[float] = set()
    for zone, countries in zones().countries.items():
        if cc not in countries:
            continue
        try:
            tz = ZoneInfo(zone)
        except (KeyError, ValueError, OSError):
            continue
        for moment in (winter, summer):
            delta = tz.utcoffset(moment)
            if delta is not None:
                out.add(delta.total_seconds() / 3600.0)
    return tuple(sorted(out))


def gap_hours(offset: float, offsets: Sequence[float]) -> float:
    """Hours between an offset and the nearest of ``offsets`` (on the 24-hour circle)."""
    if not offsets:
        return 0.0
    return min(min(abs(offset - o) % 24.0, 24.0 - abs(offset - o) % 24.0) for o in offsets)
