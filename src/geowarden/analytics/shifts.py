"""Model shifts (``model_shift``): a group of accounts moving to a new model at its release
together.

A model first seen ``release_margin_hours`` or more after the log starts is new, released when
first seen. An account adopts it when its first request to it comes within ``adopt_hours`` of the
release and ``move_share`` of its requests from then on (within ``shift_post_hours``) go to it.
Adopters with restricted exposure are split into cohorts where consecutive first requests are at
most ``cohort_gap_minutes`` apart; a cohort of ``min_accounts`` or more scores::

    tightness = max(0, 1 - (p90 - p10 of first requests) / tight_hours)
    risk      = 1 - (1 - exposure) (1 - 0.5 anonymiser share) (1 - 0.5 new)
    score     = (1 - exp(-accounts / 5)) * (0.4 + 0.6 tightness) * risk

and is reported from ``shift_flag_score``. Honest early adopters come over hours and days, and
without restricted exposure they are never in a cohort. The thresholds are the campaigns'
(``CampaignThresholds``, ``[analytics.campaigns]``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import ibis
import numpy as np

from geowarden.analytics.common import HOUR_MS, MINUTE_MS, crowd, iso, rows, short_hash
from geowarden.analytics.exposure import Profile, group_exposure
from geowarden.analytics.findings import AnalysisContext, Finding
from geowarden.analytics.thresholds import CampaignThresholds

KIND = "model_shift"


@dataclass(frozen=True, slots=True)
class Shift:
    """The adopters of one new model."""

    model: str
    release_ms: int
    adopters: dict[str, tuple[int, int, int, int]]  # account -> (first request to it, pre, post, post on it)


def adopters(ctx: AnalysisContext, t: CampaignThresholds, log_start_ms: int) -> list[Shift]:
    """The new models (first seen ``release_margin_hours`` after ``log_start_ms`` or later; the
    first ``max_new_models``) with ``min_accounts`` adopters or more, and their adopters."""
    ev = ctx.events
    models = rows(ev.filter(ev.model.notnull()).group_by("model").agg(first=ev.ts_ms.min()))
    cutoff = log_start_ms + t.release_margin_hours * HOUR_MS
    new = sorted(
        (m for m in models if m["first"] >= cutoff),
        key=lambda m: (m["first"], m["model"]),
    )[: int(t.max_new_models)]
    if not new:
        return []
    post = int(t.shift_post_hours * HOUR_MS)
    parts = None
    for m in new:
        release, name = int(m["first"]), m["model"]
        win = ev.filter((ev.ts_ms >= release - post) & (ev.ts_ms < release + post))
        after = win.ts_ms >= release
        on_it = after & (win.model == name)
        part = (
            win.group_by("account_id")
            .agg(
                pre=(~after).cast("int64").sum(),
                post=after.cast("int64").sum(),
                post_on=on_it.fill_null(False).cast("int64").sum(),
                first_on=ibis.ifelse(on_it, win.ts_ms, None).min(),
            )
            .mutate(model=ibis.literal(name))
        )
        parts = part if parts is None else parts.union(part, distinct=False)
    assert parts is not None
    found = rows(parts.filter((parts.post_on >= max(t.min_model_requests, 1)) & parts.first_on.notnull()))
    out = []
    for m in new:
        release = int(m["first"])
        by_account = {
            r["account_id"]: (int(r["first_on"]), int(r["pre"]), int(r["post"]), int(r["post_on"]))
            for r in found
            if r["model"] == m["model"]
            and r["first_on"] - release <= t.adopt_hours * HOUR_MS
            and r["post_on"] >= t.move_share * r["post"]
        }
        if len(by_account) >= t.min_accounts:
            out.append(Shift(m["model"], release, by_account))
    return out


def model_shifts(shift: Shift, profiles: dict[str, Profile], t: CampaignThresholds, log_start_ms: int) -> list[Finding]:
    """The flagged cohorts of one new model's exposed adopters."""
    exposed = sorted(
        (a for a in shift.adopters if a in profiles and profiles[a].exposure(t) > 0),
        key=lambda a: (shift.adopters[a][0], a),
    )
    cohorts: list[list[str]] = []
    for a in exposed:
        if cohorts and shift.adopters[a][0] - shift.adopters[cohorts[-1][-1]][0] <= t.cohort_gap_minutes * MINUTE_MS:
            cohorts[-1].append(a)
        else:
            cohorts.append([a])
    out = []
    for cohort in cohorts:
        n = len(cohort)
        if n < t.min_accounts:
            continue
        firsts = np.array([shift.adopters[a][0] for a in cohort], dtype=np.float64)
        p10, p90 = np.percentile(firsts, [10, 90])
        tightness = max(0.0, 1 - (p90 - p10) / (t.tight_hours * HOUR_MS))
        exposure = group_exposure(cohort, profiles, t)
        new = [
            a
            for a in cohort
            if profiles[a].new_since(shift.release_ms, t.new_account_days, t.new_margin_hours, log_start_ms)
        ]
        new_share = len(new) / n
        size_factor = crowd(n)
        anon = exposure["anonymiser_share"]
        risk = 1 - (1 - exposure["mean_exposure"]) * (1 - 0.5 * anon) * (1 - 0.5 * new_share)
        score = size_factor * (0.4 + 0.6 * tightness) * risk
        if score < t.shift_flag_score:
            continue
        lo, hi, members = firsts.min(), firsts.max(), set(cohort)
        background = sum(1 for a, v in shift.adopters.items() if lo <= v[0] <= hi and a not in members)
        post = sum(shift.adopters[a][2] for a in cohort)
        evidence: dict[str, Any] = {
            "model": shift.model,
            "release": iso(shift.release_ms),
            "accounts": n,
            "moved": sum(1 for a in cohort if shift.adopters[a][1] > 0),
            "new_accounts": len(new),
            "median_delay_minutes": round(float(np.median(firsts) - shift.release_ms) / MINUTE_MS, 1),
            "spread_minutes": round(float(p90 - p10) / MINUTE_MS, 1),
            "share_on_model": round(sum(shift.adopters[a][3] for a in cohort) / post, 4) if post else 0.0,
            "other_adopters_meanwhile": background,
            "exposure": exposure,
            "factors": {
                "size": round(size_factor, 4),
                "tightness": round(tightness, 4),
                "risk": round(risk, 4),
            },
        }
        ids = tuple(sorted(cohort))
        subject = f"shift-{short_hash(shift.model + chr(10) + chr(10).join(ids))}"
        out.append(Finding(KIND, subject, min(score, 1.0), evidence, ids))
    return out
