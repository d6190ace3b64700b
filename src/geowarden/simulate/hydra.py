"""The ``hydra`` scenario family: coordinated abuse without a restricted trace, among the honest
crowds that look like it. Its parameters are drawn from the seed, so every seed is another
world; it was written from the public description of the distillation campaigns of February
2026, independently of the ``analytics`` scenario (on which the detectors were tuned).

Planted (labels ``network: hydra-<i>``): two to four commercial "hydra" networks of light
accounts behind rotating residential proxies, VPN exits and cloud hosts; accounts created in
waves; cards shared by about ten accounts each; free-mail (some disposable) addresses; templated
prompts blended with ordinary ones; requests in a restricted country's working hours; clocks and
languages mostly set to the exit, with occasional leaks (one network in two never leaks: origin
hidden); a rush onto the model released mid-timeline.

Honest (hard negatives): company teams in Europe and East Asia on shared corporate cards behind
one cloud egress, onboarded together (some recently) and working office hours that "fit" a
restricted clock; families sharing a card and a home address; SDK users sending the same
quick-start prompt (many of them new sign-ups); 24/7 automation in cloud ranges that are
co-tenants of the hydra's cloud /24s; travellers; students behind a university NAT (with
international students from restricted countries on the same /24s); ordinary people at home
and on mobile networks.
"""

from __future__ import annotations

from typing import Any

import numpy as np

NAME = "hydra"
#: A stress variant: the same networks with accounts aged months before use (no fresh waves).
AGED = "hydra-aged"
DAYS = 4.0
EVENTS = 1_000_000

_PROXY_EXITS = ("US", "GB", "DE", "JP", "SG", "CA", "NL")
_TEAM_PLACES = {  # country -> cities (Europe and East Asia: every office "fits" a restricted clock)
    "DE": ["Frankfurt", "Munich", "Hamburg"],
    "FR": ["Paris", "Lyon"],
    "NL": ["Rotterdam"],
    "PL": ["Warsaw"],
    "SE": ["Stockholm"],
    "RO": ["Bucharest"],
    "JP": ["Tokyo", "Sapporo"],
    "SG": ["Singapore"],
}
_UNIVERSITIES = {"US": ["Boston"], "GB": ["Manchester"], "DE": ["Munich"]}


def hydra_raw(seed: int, events: int = EVENTS, aged: bool = False) -> dict[str, Any]:
    """The hydra scenario of ``seed`` (its parameters drawn from it), as the mapping a scenario
    YAML holds (``scenario.parse_scenario`` reads it). ``aged``: the planted accounts were created
    60 to 300 days before their first request (the same draws otherwise)."""
    rng = np.random.default_rng([0x48, 0x59, seed])  # its own stream: the events' seed is apart
    mix: list[dict[str, Any]] = []
    pools = _hydra(rng, mix)
    if aged:
        for i, entry in enumerate(e for e in mix if e.get("planted_network")):
            entry["params"]["burst_age_days"] = 60.0 + 240.0 * ((seed * 7 + i * 13) % 10) / 9
    _honest(rng, mix, pools)
    return {
        "name": f"{AGED if aged else NAME}-{seed}",
        "events": events,
        "days": DAYS,
        "model_release": {"model": "large-3", "day": round(float(rng.uniform(1.5, 2.5)), 2)},
        "mix": mix,
    }


def _u(rng: np.random.Generator, lo: float, hi: float, digits: int = 3) -> float:
    return round(float(rng.uniform(lo, hi)), digits)


def _pick(rng: np.random.Generator, options: tuple[str, ...] | list[str], k: int) -> list[str]:
    return [str(x) for x in rng.choice(np.array(options), size=min(k, len(options)), replace=False)]


def _hydra(rng: np.random.Generator, mix: list[dict[str, Any]]) -> list[tuple[int, str]]:
    """The planted networks; returns the (pool, country) of their cloud exits (for co-tenants)."""
    n_networks = int(rng.integers(2, 5))
    hidden = int(rng.integers(0, n_networks)) if rng.random() < 0.5 else -1
    cloud_pools: list[tuple[int, str]] = []
    for i in range(n_networks):
        accounts = int(rng.integers(40, 220))
        origin = ["CN"] if rng.random() < 0.7 else ["RU"]
        cities = ["Shanghai", "Shenzhen"] if origin == ["CN"] else []
        exits = _pick(rng, _PROXY_EXITS, int(rng.integers(1, 4)))
        cloud_cc = exits[0]
        shares = rng.dirichlet([3.0, 1.5, 1.5])
        pool = 100 + i
        cloud_pools.append((pool, cloud_cc))
        network = [
            {"via": "resi_proxy", "share": round(float(shares[0]), 3), "countries": exits},
            {"via": "vpn", "share": round(float(shares[1]), 3), "countries": exits,
             "prefixes": int(rng.integers(2, 6))},
            {"via": "cloud", "share": round(float(shares[2]), 3), "countries": [cloud_cc],
             "prefixes": int(rng.integers(1, 4)), "pool": pool},
        ]  # fmt: skip
        leak = 1.0 if i == hidden else _u(rng, 0.85, 0.98)
        params: dict[str, Any] = {
            "origin": origin,
            "network": network,
            "tz_spoof": leak,
            "lang_spoof": 1.0 if i == hidden else _u(rng, 0.85, 0.98),
            "diurnal": _u(rng, 0.6, 0.9),
            "ua": str(rng.choice(["sdk", "mixed"])),
            "clients_per_account": int(rng.integers(1, 3)),
            "burst": _u(rng, 3.0, 20.0, 1),
            "email": {"personal": _u(rng, 0.6, 0.95), "disposable": _u(rng, 0.0, 0.3)},
            "shared_bins": 0,
            "shared_cards": max(1, round(accounts / float(rng.uniform(8, 12)))),
            "shared_phones": 0 if rng.random() < 0.5 else max(1, accounts // int(rng.integers(5, 15))),
            "created_bursts": max(1, accounts // int(rng.integers(15, 45))),
            "burst_minutes": _u(rng, 10.0, 60.0, 1),
            "burst_age_days": _u(rng, 0.2, 5.0, 2),
            "activity_sigma": _u(rng, 0.3, 0.7),
            "prompts": {"campaign": (c := _u(rng, 0.4, 0.6)), "unique": round(0.9 - c, 3), "app": 0.1},
            "campaign_templates": int(rng.integers(3, 9)),
            "windows_per_day": float(rng.choice([0.0, 0.0, 6.0, 12.0])),
            "window_minutes": _u(rng, 10.0, 30.0, 1),
            "active_from_day": _u(rng, 0.0, 1.0, 2),
            "adopt_hours": _u(rng, 1.0, 6.0, 2),
            "adopt_share": _u(rng, 0.5, 0.9),
        }
        if cities:
            params["cities"] = cities
        mix.append({
            "persona": "account_farm", "name": f"hydra_{i + 1}", "planted_network": f"hydra-{i + 1}",
            "accounts": accounts, "share": round(accounts * _u(rng, 0.6, 1.2) / 10_000, 5), "params": params,
        })  # fmt: skip
    return cloud_pools


def _honest(rng: np.random.Generator, mix: list[dict[str, Any]], cloud_pools: list[tuple[int, str]]) -> None:
    mix.append({"persona": "local_residential", "accounts": int(rng.integers(2500, 4000)), "share": 0.30,
                "params": {"diurnal": 1.0, "family_share": _u(rng, 0.2, 0.5)}})  # fmt: skip
    mix.append({"persona": "local_mobile", "accounts": int(rng.integers(800, 1500)), "share": 0.08,
                "params": {"diurnal": 1.0, "family_share": 0.05}})  # fmt: skip
    for j, cc in enumerate(_pick(rng, tuple(_TEAM_PLACES), int(rng.integers(4, 8)))):
        fresh = rng.random() < 0.4  # onboarded days before the log starts: every member is new
        mix.append({
            "persona": "company_team", "name": f"team_{cc.lower()}_{j}",
            "accounts": int(rng.integers(15, 70)), "share": _u(rng, 0.01, 0.04, 4),
            "params": {
                "origin": [cc], "cities": _TEAM_PLACES[cc],
                "network": [{"via": "cloud", "share": _u(rng, 0.8, 0.95), "prefixes": 1},
                            {"via": "local", "share": 0.1}],
                "ua": str(rng.choice(["sdk", "mixed"])),
                "shared_cards": int(rng.integers(1, 3)), "shared_card_share": _u(rng, 0.5, 1.0),
                "created_bursts": int(rng.integers(1, 3)), "burst_minutes": _u(rng, 30.0, 180.0, 1),
                "burst_age_days": _u(rng, 0.5, 5.0, 2) if fresh else _u(rng, 30.0, 300.0, 1),
                "prompts": {"unique": 0.6, "app": 0.3, "popular": 0.1},
                "adopt_hours": _u(rng, 2.0, 24.0, 1), "adopt_share": _u(rng, 0.3, 0.8),
            },
        })  # fmt: skip
    mix.append({"persona": "local_residential", "name": "sdk_quickstart", "accounts": int(rng.integers(600, 1500)),
                "share": 0.05, "params": {"ua": "sdk", "diurnal": 0.7, "new_share": _u(rng, 0.2, 0.6),
                                          "prompts": {"popular": _u(rng, 0.4, 0.7), "unique": 0.3, "app": 0.1},
                                          "adopt_hours": 3.0, "adopt_share": 0.6}})  # fmt: skip
    for j, (pool, cc) in enumerate(cloud_pools):
        mix.append({"persona": "cloud_automation", "name": f"automation_{j}", "accounts": int(rng.integers(4, 15)),
                    "share": _u(rng, 0.02, 0.06, 4),
                    "params": {"origin": [cc], "network": [{"via": "cloud", "prefixes": int(rng.integers(2, 5)),
                                                            "pool": pool}]}})  # fmt: skip
    mix.append({"persona": "traveller", "accounts": int(rng.integers(80, 200)), "share": 0.03,
                "params": {"origin": ["DE", "GB", "FR", "US"], "location": ["JP", "SG", "TR", "AE"], "diurnal": 0.8,
                           "flight_hours": 12}})  # fmt: skip
    cc = str(rng.choice(list(_UNIVERSITIES)))
    uni = f"uni{int(rng.integers(100, 999))}"
    campus = [{"via": "local", "share": 1.0, "prefixes": 2, "pool": 200}]
    common = {"cities": _UNIVERSITIES[cc], "network": campus, "users_per_address": 30.0,
              "email": {"corporate": 1.0}, "organisation": f"University {uni}", "email_domain": f"{uni}.example.edu",
              "created_bursts": 2, "burst_minutes": 720.0, "burst_age_days": _u(rng, 20.0, 200.0, 1)}  # fmt: skip
    mix.append({"persona": "local_residential", "name": "students", "accounts": int(rng.integers(200, 500)),
                "share": 0.04, "params": {"origin": [cc], "diurnal": 1.0, **common}})  # fmt: skip
    mix.append({"persona": "expat", "name": "international_students", "accounts": int(rng.integers(40, 120)),
                "share": 0.01,
                "params": {"origin": ["CN", "IN"], "location": [cc], "diurnal": 1.0, **common}})  # fmt: skip
