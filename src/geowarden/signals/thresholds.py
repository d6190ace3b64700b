"""The behaviour signal's thresholds: the policy's ``behaviour:`` section.

They live apart from the signal so that the signal contract (``signals.base``) and the policy
spec can name them without importing the signal itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from geowarden.errors import ConfigError


@dataclass(frozen=True, slots=True, kw_only=True)
class BehaviourConfig:
    """The policy's ``behaviour:`` thresholds (every field optional in the file)."""

    networks_window: int = 3600
    networks_max: int = 12  # distinct /24 or /48 prefixes per window
    asns_max: int = 6  # distinct ASNs per window
    countries_window: int = 86400
    countries_max: int = 3  # distinct countries per window
    concurrent_seconds: int = 300
    concurrent_km: float = 1500.0
    travel_kmh: float = 1000.0  # faster than any airliner's ground speed, less tail winds
    round_the_clock_hours: int = 22  # active hours out of the last 24
    round_the_clock_min_requests: int = 100  # in the last 24 hours
    relay_hosting_share: float = 0.8  # of the last day's requests
    relay_min_requests: int = 50  # in the hour profile (7 days)
    relay_offset_gap_hours: float = 4.0  # inferred clock vs the addresses' countries
    volume_ratio: float = 10.0
    volume_min_tokens: int = 200_000  # in the last hour
    volume_min_history_hours: int = 48
    restricted_client_min_requests: int = 20  # requests elsewhere with a restricted-looking client (24 h) ...
    restricted_client_share: float = 0.8  # ... and their share of the requests from elsewhere: KEY_RESTRICTED_CLIENT
    group_min_accounts: int = 5  # accounts seen on one payment instrument in 7 days (families share one: 2-4) ...
    group_min_requests: int = 10  # ... the group's requests in the last 24 h, enough to read shares ...
    group_throwaway_share: float = 0.5  # ... from accounts on free-mail, disposable or restricted-provider e-mail ...
    group_anonymised_share: float = 0.25  # ... and through hosting/VPN/proxy/Tor exits ...
    group_new_share: float = 0.5  # ... or from accounts created within group_new_days: ACCOUNT_GROUP_COORDINATED
    group_new_days: float = 30.0

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any], where: str = "behaviour") -> BehaviourConfig:
        known = {f.name: f for f in fields(cls)}
        bad = sorted(set(raw) - set(known))
        if bad:
            raise ConfigError(f"{where}: unknown setting(s) {', '.join(bad)} (known: {', '.join(sorted(known))})")
        values: dict[str, Any] = {}
        for name, value in raw.items():
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ConfigError(f"{where}.{name}: must be a number >= 0, not {value!r}")
            values[name] = int(value) if known[name].type in ("int", int) else float(value)
        return cls(**values)


DEFAULT_BEHAVIOUR = BehaviourConfig()
