"""Coordinated campaigns (``campaign``): near-duplicate prompts sent in step by many accounts;
and the entry of the campaigns analysis, which also looks for model shifts (``shifts``).

The near-duplicate sets come from ``neardup`` (SimHash banding, verified in Python). A set sent
by ``min_accounts`` accounts or more is scored on what else is coordinated::

    sync     = share of its requests in "hot" time buckets: buckets where at least
               max(sync_min_accounts, sync_account_share * accounts) of its accounts send it and
               its requests are sync_lift times what the overall traffic of that bucket predicts
    new      = share of its accounts created within new_account_days before it started (without
               an accounts table: first seen at most new_margin_hours before it started, and not
               in the log's first new_margin_hours, where everybody is first seen)
    exposure = mean restricted exposure of its accounts (``exposure``, as in the graph analysis)
    score    = (1 - exp(-accounts / 5)) * (1 - (1 - 0.8 sync) (1 - 0.6 new) (1 - exposure))

A popular prompt (an SDK health check, a common template) sent by many unrelated accounts at
their own times has sync near 0 and the population's share of new and exposed accounts: it stays
under ``flag_score``. New and exposure of a set of more than ``profile_sample`` accounts are
estimated on a deterministic sample of that many. Thresholds (``CampaignThresholds``) are
settings under ``[analytics.campaigns]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from geowarden.analytics.common import MINUTE_MS, crowd, group_id, iso, say, short_hash
from geowarden.analytics.exposure import Profile, account_profiles, group_exposure
from geowarden.analytics.findings import SEVERITIES, AnalysisContext, Finding
from geowarden.analytics.neardup import NearDuplicates, near_duplicate_sets
from geowarden.analytics.shifts import adopters, model_shifts
from geowarden.analytics.thresholds import CampaignThresholds

NAME = "campaigns"
CAMPAIGN = "campaign"
#: Mean exposure of its accounts from which a campaign's severity is ``restricted_origin_seen``
#: (the graph's ``min_exposure`` default).
CAMPAIGN_SEEN = 0.2
THRESHOLDS = CampaignThresholds
DEFAULTS = THRESHOLDS.defaults()


def run(ctx: AnalysisContext) -> list[Finding]:
    """Campaign and model-shift findings (only what is flagged)."""
    t = THRESHOLDS.read(ctx.settings)
    bucket_ms = max(int(t.bucket_minutes * MINUTE_MS), MINUTE_MS)
    timeline = _timeline(ctx, bucket_ms)
    if timeline.total == 0:
        return []
    say(ctx, "campaigns: prompt fingerprints")
    sets = near_duplicate_sets(ctx, t, bucket_ms, timeline.total)
    say(ctx, f"campaigns: {len(sets)} near-duplicate sets")
    say(ctx, "campaigns: new models")
    shifts = adopters(ctx, t, timeline.start_ms)
    limit = int(t.profile_sample)
    ids = sorted({a for s in sets for a in _some(s.accounts, limit)} | {a for m in shifts for a in m.adopters})
    profiles = account_profiles(ctx, ids)
    findings = [f for s in sets if (f := _campaign(s, profiles, timeline, t)) is not None]
    for shift in shifts:
        findings.extend(model_shifts(shift, profiles, t, timeline.start_ms))
    findings.sort(key=lambda f: (f.kind, -f.score, f.subject))
    return findings


@dataclass(frozen=True, slots=True)
class Timeline:
    """Requests per time bucket over the whole log, and its span."""

    bucket_ms: int
    counts: dict[int, int]
    total: int
    start_ms: int
    end_ms: int


def _timeline(ctx: AnalysisContext, bucket_ms: int) -> Timeline:
    ev = ctx.events
    bucket = ev.ts_ms // bucket_ms
    rows = (
        ev.group_by(bucket=bucket)
        .agg(n=ev.count(), first=ev.ts_ms.min(), last=ev.ts_ms.max())
        .filter(lambda t: t.bucket.notnull())
        .to_pyarrow()
    )
    if rows.num_rows == 0:
        return Timeline(bucket_ms, {}, 0, 0, 0)
    counts = dict(zip(rows["bucket"].to_pylist(), rows["n"].to_pylist(), strict=True))
    return Timeline(
        bucket_ms,
        counts,
        sum(counts.values()),
        min(rows["first"].to_pylist()),
        max(rows["last"].to_pylist()),
    )


def _some(accounts: Sequence[str], limit: int) -> Sequence[str]:
    """``accounts``, or a deterministic sample of ``limit`` of them (the smallest hashes)."""
    if len(accounts) <= limit:
        return accounts
    return sorted(accounts, key=lambda a: short_hash(a, 16))[:limit]


def _campaign(
    s: NearDuplicates, profiles: dict[str, Profile], timeline: Timeline, t: CampaignThresholds
) -> Finding | None:
    n_acc = len(s.accounts)
    total = int(s.count.sum())
    buckets, where = np.unique(s.bucket, return_inverse=True)
    per_bucket = np.bincount(where, weights=s.count).astype(np.int64)
    accounts_per_bucket = np.bincount(np.unique(where * n_acc + s.account) // n_acc, minlength=len(buckets))
    expected = np.array([total * timeline.counts.get(int(b), 0) / timeline.total for b in buckets])
    need = max(t.sync_min_accounts, t.sync_account_share * n_acc)
    hot = (accounts_per_bucket >= need) & (per_bucket >= t.sync_lift * expected)
    sync = float(per_bucket[hot].sum() / total) if total else 0.0
    start = int(buckets.min()) * timeline.bucket_ms
    profs = {a: profiles[a] for a in s.accounts if a in profiles}
    new = [a for a, q in profs.items() if q.new_since(start, t.new_account_days, t.new_margin_hours, timeline.start_ms)]
    new_share = len(new) / len(profs) if profs else 0.0
    exposure = group_exposure(s.accounts, profiles, t)
    coordination = 1 - (1 - 0.8 * sync) * (1 - 0.6 * new_share) * (1 - exposure["mean_exposure"])
    size_factor = crowd(n_acc)
    score = size_factor * coordination
    if n_acc < t.min_accounts or score < t.flag_score:
        return None
    top = np.lexsort((buckets, -accounts_per_bucket, -per_bucket))[: int(t.max_examples)]
    has_created = any(q.created_ms is not None for q in profs.values())
    evidence: dict[str, Any] = {
        "accounts": n_acc,
        "requests": total,
        "sample_rate": s.sample_rate,
        "fingerprints": len(s.fingerprints),
        "centres": [f"{c:016x}" for c in s.centres[: int(t.max_examples)]],
        "hamming_max": int(s.distance.max()),
        "hamming_mean": round(float(np.average(s.distance, weights=s.count)), 2),
        "sync_share": round(sync, 4),
        "hot_buckets": int(hot.sum()),
        "bucket_minutes": int(timeline.bucket_ms // MINUTE_MS),
        "busiest_buckets": [
            [iso(int(buckets[i]) * timeline.bucket_ms), int(accounts_per_bucket[i]), int(per_bucket[i])] for i in top
        ],
        "new_accounts": len(new),
        "new_basis": "created" if has_created else "first_seen",
        "exposure": exposure,
        "first_seen": iso(start),
        "last_seen": iso((int(buckets.max()) + 1) * timeline.bucket_ms),
        "factors": {"size": round(size_factor, 4), "coordination": round(coordination, 4)},
    }
    severity = SEVERITIES[1] if exposure["mean_exposure"] >= CAMPAIGN_SEEN else SEVERITIES[0]
    return Finding(CAMPAIGN, group_id("campaign", s.accounts), min(score, 1.0), evidence, s.accounts, severity)
