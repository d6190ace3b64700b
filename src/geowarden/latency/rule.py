"""The decision rule: from per-disc excess distances to ``true``, ``false`` or ``null`` (inconclusive).

Each disc that excludes a point does so by an *excess* ``e`` km (distance minus radius). One
violated disc proves little: a landmark may be misplaced, a route may beat the landmark's
calibrated speed. So the rule weighs the evidence against a point:

    against = sum_i  w_i * min(1, max(0, e_i) / severity_km)

``w_i`` is the landmark's reliability (1 for a sound landmark, less for one whose own listed
location contradicts physics in the calibration mesh; ``model.Landmark.reliability``). A disc
missed by a few km counts a little, a disc missed by ``severity_km`` or more counts fully, and no
single disc counts more than its weight. Then, with ``W = sum_i w_i``:

- ``against <= accept``: ``true`` (the discs agree with the claim);
- ``against > reject_base + reject_share * W``: ``false`` (the claim is outside what honest routes
  produce, by a margin that grows with the evidence: more landmarks, more room for a few wrong
  ones);
- in between: ``null``, inconclusive: violations within what honest routes produce.

**Expected-RTT ceiling** (``ceiling.RttCeiling``, when the calibration has one). A client that
claims a place near a landmark but answers that landmark far more slowly than any honest client at
that distance did (Tokyo claiming Frankfurt: 230 ms where honest neighbours show < 20 ms) adds

    ceiling = ceiling_weight * sum_i  w_i * min(1, max(0, x_i) / ceiling_severity_ms)

over the landmarks within ``ceiling_reach_km`` of the point, less the largest ``ceiling_trim``
share of the terms (at least the largest one: a spike or a detour on a few routes is dropped),
where ``x_i`` is the landmark's RTT beyond its ceiling (``latency.ceiling``), after the largest
last-mile delay that the upper bounds allow for the claim (``verify.Discs.ceiling_excess``).
``ceiling_weight`` is at most ``reject_base``, and the largest term is always dropped: one
landmark's ceiling alone never counts at all. Far landmarks say nothing here: routes between
continents detour (from inside China, RTTs to Europe run 50-90 ms over any ceiling). The score is
``against + ceiling``; ``true`` also needs ``ceiling <= reject_at / 2`` (a little statistical
evidence alone does not make an honest claim inconclusive).

Fewer than ``min_discs`` discs can never give ``false`` (``null`` instead): with one or two
landmarks there is no majority to outvote a misplaced one.

**Monotone.** ``against`` only falls when an RTT grows (every excess shrinks) and the thresholds
depend only on which landmarks answered, never on their RTTs. The ceiling term does not move when
the same delay is added to every RTT (a last mile: the allowance grows with it), and the answer
never improves when either term grows. So adding the same delay to every RTT never moves an
answer from ``true`` towards ``null`` or ``false``, nor from ``null`` to ``false`` for a given
point; without a ceiling, that holds for any added delays. The defaults were chosen on the tuning
half of the WonderNetwork clients (``bench/eval_latency.py``, docs/latency.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from geowarden.latency.model import FloatArray

TRUE, NULL, FALSE = 1, 0, -1
#: ``violation_km`` of a point that the expected-RTT ceiling alone rules out, beyond its discs: the
#: claim is not physically impossible, only far outside what honest clients there show.
CEILING_KM = 1.0


@dataclass(frozen=True, slots=True)
class Tolerance:
    """Parameters of the rule (see the module docstring)."""

    severity_km: float = 800.0
    accept: float = 0.05
    reject_base: float = 0.5
    reject_share: float = 0.0025
    min_discs: int = 3
    ceiling_weight: float = 0.5
    ceiling_severity_ms: float = 100.0
    ceiling_reach_km: float = 2000.0
    ceiling_trim: float = 0.25

    def __post_init__(self) -> None:
        if not (self.severity_km > 0.0 and 0.0 <= self.accept <= self.reject_base and self.reject_share >= 0.0):
            raise ValueError("tolerance needs severity_km > 0, 0 <= accept <= reject_base, reject_share >= 0")
        if not (
            0.0 <= self.ceiling_weight <= self.reject_base
            and self.ceiling_severity_ms > 0.0
            and self.ceiling_reach_km >= 0.0
        ):
            raise ValueError(
                "tolerance needs 0 <= ceiling_trim < 1, 0 <= ceiling_weight <= reject_base, ceiling_severity_ms > 0 "
                "and ceiling_reach_km >= 0"
            )

    def reject_at(self, total_weight: float) -> float:
        """Evidence against a point above which it is ruled out, for this much landmark weight."""
        return self.reject_base + self.reject_share * total_weight


#: Every disc trusted as it is: any disc that excludes a point by any distance rules it out.
STRICT = Tolerance(severity_km=1e-6, accept=0.0, reject_base=0.0, reject_share=0.0, min_discs=1, ceiling_weight=0.0)
DEFAULT_TOLERANCE = Tolerance()


def against(excess_km: FloatArray, weight: FloatArray, tol: Tolerance) -> FloatArray:
    """Weighted evidence against each point (excesses along the last axis)."""
    g = np.clip(excess_km / tol.severity_km, 0.0, 1.0)
    out: FloatArray = g @ weight
    return out


def ceiling_against(excess_ms: FloatArray, weight: FloatArray, tol: Tolerance) -> FloatArray:
    """Weighted expected-RTT evidence against each point (RTT excesses over the ceilings along the
    last axis; ``-inf``: a landmark out of reach). The largest ``ceiling_trim`` share of the
    contributions of the landmarks in reach, and at least the largest one, is dropped: a detour or
    a jitter spike on a few routes is not evidence, all the landmarks near a claim being slow is."""
    e = np.atleast_2d(excess_ms)
    g = np.clip(np.nan_to_num(e / tol.ceiling_severity_ms, neginf=0.0), 0.0, 1.0) * weight
    k = np.isfinite(e).sum(axis=-1)
    drop = np.where(k > 0, np.maximum(1, np.ceil(tol.ceiling_trim * k)), 0).astype(np.intp)
    top = -np.sort(-g, axis=-1)
    kept = top.sum(axis=-1) - np.where(
        drop > 0, np.take_along_axis(np.cumsum(top, axis=-1), drop[:, None] - 1, -1)[:, 0], 0.0
    )
    out: FloatArray = (tol.ceiling_weight * np.maximum(kept, 0.0)).reshape(np.shape(excess_ms)[:-1])
    return out


def outcome(
    score: FloatArray, total_weight: float, n_discs: int, tol: Tolerance, ceiling: FloatArray | None = None
) -> npt.NDArray[np.int8]:
    """``TRUE`` (1), ``NULL`` (0) or ``FALSE`` (-1) for each evidence score.

    ``score`` is the whole evidence (discs and ceiling); ``ceiling`` its ceiling part, if any.
    """
    limit = tol.reject_at(total_weight)
    ok = score <= tol.accept if ceiling is None else (score - ceiling <= tol.accept) & (ceiling <= limit / 2.0)
    out = np.where(ok, TRUE, NULL).astype(np.int8)
    if n_discs >= tol.min_discs:
        out[score > limit] = FALSE
    return out


def violation_km(
    excess_km: FloatArray, weight: FloatArray, tol: Tolerance, iterations: int = 40, ceiling: FloatArray | None = None
) -> FloatArray:
    """How far past the rejection rule each point is: the smallest distance ``d`` such that growing
    every disc by ``d`` km would no longer rule the point out (0 when it is not ruled out).

    With ``ceiling`` (each point's ceiling evidence, which growing discs does not lower) a point
    that the ceiling alone rules out gets the distance that clears its discs plus ``CEILING_KM``.
    """
    e = np.atleast_2d(excess_km)
    c = np.zeros(len(e)) if ceiling is None else np.asarray(ceiling, dtype=np.float64).reshape(-1)
    limit = tol.reject_at(float(weight.sum())) - c
    hi = np.maximum(e.max(axis=-1, initial=0.0), 0.0)
    lo = np.zeros_like(hi)
    bad = against(e, weight, tol) > limit
    for _ in range(iterations):
        mid = (lo + hi) / 2.0
        still = against(e - mid[:, None], weight, tol) > limit
        lo = np.where(still, mid, lo)
        hi = np.where(still, hi, mid)
    hi = np.where(limit < 0.0, hi + CEILING_KM, hi)  # the ceiling alone rules it out
    out: FloatArray = np.where(bad, hi, 0.0).reshape(np.shape(excess_km)[:-1])
    return out


def confidence(answer: int, score: float, total_weight: float, tol: Tolerance) -> float:
    """How strongly the evidence supports the answer, 0.5..0.99 (a margin, not a probability).

    ``false``: how far the evidence against the point exceeds the rejection threshold;
    ``true``: how much landmark weight agrees (more landmarks, more confidence);
    ``null``: 0.5, no evidence either way.
    """
    if answer == FALSE:
        limit = tol.reject_at(total_weight)
        return round(0.6 + 0.39 * min(1.0, (score - limit) / max(limit, 1.0)), 3)
    if answer == TRUE:
        return round(0.5 + 0.45 * min(1.0, total_weight / 40.0), 3)
    return 0.5
