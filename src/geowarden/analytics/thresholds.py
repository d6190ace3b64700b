"""The thresholds of every analysis, their defaults, and the one way they are read.

Each analysis has a frozen dataclass of numbers here; its fields are the names accepted under
``settings[<analysis>]`` (``{"keys": {"min_score": 0.6}}``, the ``[analytics.<analysis>]``
tables of the configuration, ``geowarden analyze --settings``) and the comment beside each is its
documentation. An analysis reads its thresholds once, at the start of its run::

    t = GraphThresholds.read(ctx.settings)
    if score < t.flag_score: ...

Every value, default or given, is a finite non-negative number and is kept as a ``float``; a name
the analysis does not have, or any other value, is a ``ConfigError`` naming it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from types import MappingProxyType
from typing import Any, ClassVar, Self

from geowarden.errors import ConfigError


def number(analysis: str, name: str, value: Any) -> float:
    """A threshold as a float; anything but a finite non-negative number (text, a boolean, a
    negative number, infinity) is a ConfigError naming it."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ConfigError(f"settings: analytics.{analysis}.{name} must be a non-negative number, not {value!r}")
    return float(value)


@dataclass(frozen=True, slots=True, kw_only=True)
class Thresholds:
    """The base of every analysis' thresholds: reading them from the settings, their defaults."""

    #: The analysis these are the thresholds of (its key in the settings).
    ANALYSIS: ClassVar[str] = ""

    def __post_init__(self) -> None:
        for f in fields(self):
            object.__setattr__(self, f.name, number(self.ANALYSIS, f.name, getattr(self, f.name)))

    @classmethod
    def read(cls, settings: Mapping[str, Mapping[str, Any]]) -> Self:
        """The thresholds of ``settings[cls.ANALYSIS]`` over the defaults."""
        given = settings.get(cls.ANALYSIS, {})
        unknown = sorted(set(given) - {f.name for f in fields(cls)})
        if unknown:
            raise ConfigError(f"settings: {cls.ANALYSIS} has no threshold {', '.join(unknown)}")
        return cls(**given)

    @classmethod
    def defaults(cls) -> Mapping[str, float]:
        """Every threshold's default, by name (read-only)."""
        default = cls()
        return MappingProxyType({f.name: getattr(default, f.name) for f in fields(cls)})


@dataclass(frozen=True, slots=True, kw_only=True)
class ExposureThresholds(Thresholds):
    """When an account counts as exposed to a restricted jurisdiction (graph, campaigns, infra)."""

    leak_share: float = 0.01  # share of its requests from restricted countries that exposes it
    hint_share: float = 0.5  # share of its requests with a restricted time zone or language region


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyThresholds(Thresholds):
    """``keys``: shared and resold keys."""

    ANALYSIS: ClassVar[str] = "keys"

    min_events: float = 30  # requests a key needs before it is judged
    min_asns: float = 4  # networks that make a one-country key a candidate
    bucket_minutes: float = 5  # "at the same time"
    countries_at_once: float = 4  # countries in one bucket that count as fully spread (2 at once: a third)
    concurrent_share: float = 0.2  # share of busy buckets (>= 2 requests) with >= 2 countries: fully concurrent
    concurrent_buckets: float = 6  # buckets with >= 2 countries for full confidence (one is a VPN reconnecting)
    prefixes_few: float = 2  # prefixes one job or one person uses (a job in two regions: two)
    prefixes_many: float = 8  # prefixes that mean many people
    asns_normal: float = 3  # networks one team or job uses
    asns_many: float = 20  # networks that mean many unrelated users
    restricted_share: float = 0.05  # share of requests from restricted countries that is full exposure
    client_share: float = 0.25  # share of the other requests with restricted-looking clients: full exposure
    floor: float = 0.35  # the score of a fully shared key with no restricted exposure
    min_score: float = 0.5  # findings below this are not reported
    top_countries: float = 8  # countries listed in the evidence


@dataclass(frozen=True, slots=True, kw_only=True)
class InfraThresholds(ExposureThresholds):
    """``infra``: networks carrying traffic for many unrelated accounts."""

    ANALYSIS: ClassVar[str] = "infra"

    min_accounts: float = 8  # accounts on a prefix before it is scored
    many_accounts: float = 40  # accounts on a prefix that is fully crowded
    min_asn_accounts: float = 20  # accounts on an ASN before it is scored
    many_asn_accounts: float = 200
    concentration: float = 5.0  # accounts per prefix / the ASN's typical prefix: fully concentrated
    exposed_share: float = 0.5  # share of exposed accounts that is full exposure (prefix)
    asn_exposed_share: float = 0.3  # the same for an ASN
    floor: float = 0.35
    min_score: float = 0.5
    examples: float = 10  # exposed accounts listed in the evidence


@dataclass(frozen=True, slots=True, kw_only=True)
class GraphThresholds(ExposureThresholds):
    """``graph``: account clusters."""

    ANALYSIS: ClassVar[str] = "graph"

    cap_payment: float = 500  # accounts on one payment fingerprint before it is a platform, not a link
    cap_phone: float = 50
    cap_device: float = 25
    cap_prefix: float = 50  # a /24 with more of our accounts is an ISP, CGNAT or big egress
    ua_popular_accounts: float = 50  # a user agent of more accounts makes no device link
    anon_discount: float = 0.5  # prefix and device links on VPN/proxy networks
    burst_minutes: float = 30
    min_edge: float = 0.3  # pair strength that joins a component
    pair_limit: float = 30  # bigger groups link as a star (first member to each other)
    min_size: float = 3
    flag_score: float = 0.5
    min_exposure: float = 0.2  # exposure from which a cluster's severity is restricted_origin_seen
    max_examples: float = 12
    org_max_accounts: float = 1000  # a sign-up domain of more accounts is a mail provider, not an employer
    legit_low: float = 0.3  # members on one organisational domain: where legitimacy starts ...
    legit_high: float = 0.8  # ... and where it cancels the coordination of an unexposed cluster
    new_account_days: float = 14  # a member created this soon before its first request is new
    hours_low: float = 0.15  # unused since the restricted-clock fit is evidence only (kept: settings stay valid)
    hours_high: float = 0.35  # unused, as hours_low
    hours_min_requests: float = 200  # fewer requests in a cluster say nothing about its hours
    clock_low: float = 0.45  # share of requests outside the declared zone's waking hours: where it starts ...
    clock_high: float = 0.7  # ... and where it is full (round-the-clock automation: 10/24 = 0.42)


@dataclass(frozen=True, slots=True, kw_only=True)
class CampaignThresholds(ExposureThresholds):
    """``campaigns``: near-duplicate prompt campaigns and model shifts."""

    ANALYSIS: ClassVar[str] = "campaigns"

    band_min_events: float = 20  # requests of one band value before it is a candidate
    band_z: float = 6.0  # standard deviations above the uniform mean
    max_candidate_groups: float = 4000  # the most populous band values kept
    sample_rows: float = 2_000_000  # bigger logs: campaigns are looked for in a sample of about this many
    max_hamming: float = 8  # bits from the centre of a near-duplicate set (chance: 1e-9 per pair)
    max_sets_per_group: float = 3
    merge_jaccard: float = 0.5  # sets sent by mostly the same accounts are one campaign
    min_accounts: float = 5
    bucket_minutes: float = 10
    sync_lift: float = 5.0
    sync_min_accounts: float = 3
    sync_account_share: float = 0.2
    new_account_days: float = 14
    new_margin_hours: float = 24
    flag_score: float = 0.5
    max_examples: float = 5
    profile_sample: float = 500  # a bigger set's exposure and age are estimated on this many accounts
    # model shifts
    release_margin_hours: float = 24
    adopt_hours: float = 12
    shift_post_hours: float = 48
    move_share: float = 0.7
    min_model_requests: float = 5
    cohort_gap_minutes: float = 30
    tight_hours: float = 6
    max_new_models: float = 10
    shift_flag_score: float = 0.5


#: The thresholds of each analysis, by its name in the settings.
@dataclass(frozen=True, slots=True, kw_only=True)
class RestrictedThresholds(Thresholds):
    """``restricted``: keys and accounts used from restricted jurisdictions, or by clients that
    report a restricted clock or language behind foreign exits."""

    ANALYSIS: ClassVar[str] = "restricted"

    use_requests: float = 20  # requests from restricted countries before a key or account is a finding
    use_share: float = 0.1  # ... and their share of its requests
    client_requests: float = 50  # requests elsewhere with a restricted-looking client before it is one
    client_share: float = 0.8  # ... their share of its requests from elsewhere (persistent, not one request)
    client_anon_share: float = 0.5  # ... and the share of those requests through hosting, VPN or proxy exits


BY_ANALYSIS: Mapping[str, type[Thresholds]] = MappingProxyType(
    {t.ANALYSIS: t for t in (KeyThresholds, InfraThresholds, GraphThresholds, CampaignThresholds, RestrictedThresholds)}
)
