"""The core of ``geowarden verify-location``: parsing claims and verifying them.

::

    geowarden verify-location --claimed CC|LAT,LON --rtt LAT,LON=MS [--rtt ...]
    geowarden verify-location --file F     # JSON Lines: {"claimed": "CC" or [lat, lon], "rtt": [[lat, lon, ms], ...]}

Per claim, in input order: ``feasible`` (true, false, or null when inconclusive), ``confidence``,
``violation_km``, ``landmarks``, ``region``, ``reasons`` (and ``inconclusive``: why, when null).
Malformed input raises ``InputError`` with a one-line reason (``parse_claim_line`` starts it with
``line N:``); nothing from the input beyond the offending token is echoed. Refused: RTTs that
are not finite, not positive or above ``MAX_RTT_MS``; positions outside the globe; the same
landmark twice in one claim (give each once, with its smallest RTT); unknown country codes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from typing import Any

from geowarden.errors import InputError
from geowarden.latency.model import Calibration
from geowarden.latency.places import places
from geowarden.latency.verify import (
    DEFAULT_TOLERANCE,
    Claim,
    Claimed,
    ClaimedCountry,
    ClaimedPoint,
    Tolerance,
    verify,
)
from geowarden.model import RTTSample

__all__ = [
    "Claim",
    "claim_from_args",
    "parse_claim_line",
    "parse_claimed_arg",
    "parse_rtt_arg",
    "verify_claims",
    "verify_each",
]

_MAX_TOKEN = 40  # characters of an offending token quoted in an error message
#: No round trip on Earth takes this long (a geostationary hop is ~600 ms): a unit error (us, not ms).
MAX_RTT_MS = 10_000.0


def _quote(text: str) -> str:
    return repr(text if len(text) <= _MAX_TOKEN else text[:_MAX_TOKEN] + "...")


def _number(text: str, what: str) -> float:
    try:
        x = float(text)
    except ValueError:
        raise InputError(f"{what} is not a number: {_quote(text.strip())}") from None
    if not math.isfinite(x):
        raise InputError(f"{what} is not a finite number: {_quote(text.strip())}")
    return x


def _check_position(lat: float, lon: float) -> None:
    if not -90.0 <= lat <= 90.0:
        raise InputError(f"latitude {lat:g} is outside [-90, 90]")
    if not -180.0 <= lon <= 180.0:
        raise InputError(f"longitude {lon:g} is outside [-180, 180]")


def _check_ms(ms: float) -> None:
    if not ms > 0.0:
        raise InputError(f"RTT {ms:g} ms is not positive")
    if ms > MAX_RTT_MS:
        raise InputError(f"RTT {ms:g} ms is above {MAX_RTT_MS:,.0f} ms (microseconds given as ms?)")


def _check_unique(samples: Sequence[RTTSample]) -> None:
    seen: dict[tuple[float, float], int] = {}
    for k, s in enumerate(samples):
        j = seen.setdefault((s.lat, s.lon), k)
        if j != k:
            raise InputError(
                f"rtt {k} repeats the landmark of rtt {j} ({s.lat:g}, {s.lon:g}): give each landmark once, "
                "with its smallest RTT"
            )


def _country(code: str) -> ClaimedCountry:
    cc = code.strip().upper()
    if len(cc) != 2 or not cc.isalpha():
        raise InputError(f"claimed location must be a 2-letter country code or LAT,LON: {_quote(code.strip())}")
    if cc not in places().by_country:
        raise InputError(f"unknown country code or no populated places known for it: {cc}")
    return ClaimedCountry(cc)


def parse_rtt_arg(text: str) -> RTTSample:
    """``"LAT,LON=MS"`` (e.g. ``50.11,8.68=3.2``) as an RTT sample."""
    where, sep, ms_text = text.partition("=")
    if not sep:
        raise InputError(f"RTT must be LAT,LON=MS: {_quote(text.strip())}")
    parts = where.split(",")
    if len(parts) != 2:
        raise InputError(f"RTT must be LAT,LON=MS: {_quote(text.strip())}")
    lat, lon = _number(parts[0], "latitude"), _number(parts[1], "longitude")
    ms = _number(ms_text, "RTT")
    _check_position(lat, lon)
    _check_ms(ms)
    return RTTSample(lat=lat, lon=lon, ms=ms)


def parse_claimed_arg(text: str) -> Claimed:
    """``"CC"`` (ISO 3166-1 alpha-2, any case) or ``"LAT,LON"``."""
    if "," in text:
        parts = text.split(",")
        if len(parts) != 2:
            raise InputError(f"claimed point must be LAT,LON: {_quote(text.strip())}")
        lat, lon = _number(parts[0], "latitude"), _number(parts[1], "longitude")
        _check_position(lat, lon)
        return ClaimedPoint(lat, lon)
    return _country(text)


def claim_from_args(claimed: str, rtts: Sequence[str]) -> Claim:
    """A claim from the command-line options ``--claimed`` and ``--rtt`` (repeated)."""
    samples = tuple(parse_rtt_arg(r) for r in rtts)
    _check_unique(samples)
    return Claim(parse_claimed_arg(claimed), samples)


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _parse_object(doc: Any) -> Claim:
    if not isinstance(doc, dict):
        raise InputError("expected a JSON object with 'claimed' and 'rtt'")
    if "claimed" not in doc:
        raise InputError("missing 'claimed'")
    if "rtt" not in doc:
        raise InputError("missing 'rtt'")
    raw = doc["claimed"]
    claimed: Claimed
    if isinstance(raw, str):
        claimed = _country(raw)
    elif isinstance(raw, list) and len(raw) == 2 and all(_is_number(x) for x in raw):
        lat, lon = float(raw[0]), float(raw[1])
        if not (math.isfinite(lat) and math.isfinite(lon)):
            raise InputError("'claimed' position is not finite")
        _check_position(lat, lon)
        claimed = ClaimedPoint(lat, lon)
    else:
        raise InputError("'claimed' must be a country code string or [lat, lon]")
    rtt = doc["rtt"]
    if not isinstance(rtt, list):
        raise InputError("'rtt' must be a list of [lat, lon, ms]")
    samples: list[RTTSample] = []
    for k, item in enumerate(rtt):
        if not (isinstance(item, list) and len(item) == 3 and all(_is_number(x) for x in item)):
            raise InputError(f"'rtt'[{k}] must be [lat, lon, ms] numbers")
        lat, lon, ms = (float(x) for x in item)
        if not all(math.isfinite(x) for x in (lat, lon, ms)):
            raise InputError(f"'rtt'[{k}] is not finite")
        try:
            _check_position(lat, lon)
            _check_ms(ms)
        except InputError as e:
            raise InputError(f"'rtt'[{k}]: {e.message}") from None
        samples.append(RTTSample(lat=lat, lon=lon, ms=ms))
    _check_unique(samples)
    return Claim(claimed, tuple(samples))


def parse_claim_line(text: str, line_no: int) -> Claim:
    """One JSON Lines record: ``{"claimed": "CC" or [lat, lon], "rtt": [[lat, lon, ms], ...]}``.

    Raises ``InputError("line N: reason")``.
    """
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"line {line_no}: not valid JSON ({e.msg} at column {e.colno})") from None
    except RecursionError:
        raise InputError(f"line {line_no}: not valid JSON (nested too deeply)") from None
    try:
        return _parse_object(doc)
    except InputError as e:
        raise InputError(f"line {line_no}: {e.message}") from None


def verify_claims(
    claims: Iterable[Claim],
    *,
    calibration: Calibration | None = None,
    tolerance: Tolerance = DEFAULT_TOLERANCE,
) -> list[dict[str, Any]]:
    """Verify each claim; one JSON-ready dict per claim, in input order.

    A claim that cannot be checked (a country with no known places) raises ``InputError``;
    ``verify_each`` reports such problems per claim instead.
    """
    out: list[dict[str, Any]] = []
    for res in verify_each(claims, calibration=calibration, tolerance=tolerance):
        if isinstance(res, InputError):
            raise res
        out.append(res)
    return out


def verify_each(
    claims: Iterable[Claim],
    *,
    calibration: Calibration | None = None,
    tolerance: Tolerance = DEFAULT_TOLERANCE,
) -> list[dict[str, Any] | InputError]:
    """Verify each claim: its JSON-ready result, or the ``InputError`` that stopped it, in input order."""
    out: list[dict[str, Any] | InputError] = []
    for claim in claims:
        try:
            out.append(verify(claim.rtt, claim.claimed, calibration=calibration, tolerance=tolerance).to_dict())
        except KeyError:
            out.append(
                InputError(f"unknown country code or no populated places known for it: {claim.claimed.to_json()}")
            )
    return out
