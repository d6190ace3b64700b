"""Personas: who sends the traffic, as parameters over the real world (``world``).

A persona says where its people are (``location``), where their identity comes from
(``origin``: phone, card, e-mail, language, clock), which networks their requests leave from
(``network``: a mix of ``local``, ``mobile``, ``corp_proxy``, ``cloud``, ``vpn``,
``resi_proxy``, each with exit countries and optionally confined to a few /24 ``prefixes``),
how they set their client (time zone and language from origin, location or exit), how many
accounts, keys and clients (devices, end users) they have, and whether the policy *should*
allow them. Further parameters shape what batch analytics look at: prompts (``prompts``), time
(``diurnal``, ``windows_per_day``, ``active_from_day``, ``flight_hours``), the adoption of a
newly released model, and the accounts table (shared cards and phones, families,
organisation, creation bursts). ``blocks.generate`` turns a persona into events.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from geowarden.errors import ConfigError
from geowarden.simulate.prompts import KINDS
from geowarden.simulate.world import CITIES

RESTRICTED_HOMES = ("CN", "RU")
NETWORK_KINDS = ("local", "mobile", "corp_proxy", "cloud", "vpn", "resi_proxy", "restricted_local")


@dataclass(frozen=True, slots=True)
class Route:
    """One way out to the Internet: a network kind, its share, and its exit countries."""

    via: str
    share: float = 1.0
    countries: tuple[str, ...] = ()  # exit countries; empty: the client's own country
    prefixes: int = 0  # > 0: addresses confined to this many /24 networks per exit country
    pool: int = 0  # > 0: routes of the same pool, kind and country draw the same /24s (co-tenants)


@dataclass(frozen=True, slots=True)
class Persona:
    kind: str
    should_allow: bool
    description: str
    origin: tuple[str, ...]
    location: tuple[str, ...] = ()  # empty: the origin
    network: tuple[Route, ...] = (Route("local"),)
    label: str = "account"  # what is judged: "account" or "key"
    observable: bool = True  # False: no signal geowarden has can see it (documented as such)
    tz_from: str = "location"  # origin | location | exit | utc
    tz_spoof: float = 0.0  # share of clients that set the clock to the exit's zone
    lang_from: str = "origin"  # origin | location | none
    lang_spoof: float = 0.0  # share of clients that send en-US instead
    ua: str = "browser"  # browser | sdk | mixed
    keys_per_account: int = 1
    clients_per_account: int = 2
    users_per_address: float = 1.0  # > 1: CGNAT or shared exits
    phone: dict[str, float] = field(default_factory=lambda: {"origin": 1.0})  # origin|location|voip|none
    card: dict[str, float] = field(default_factory=lambda: {"visa": 0.6, "mastercard": 0.4})  # + mir, unionpay
    billing: str = "origin"  # origin | location | exit
    email: dict[str, float] = field(default_factory=lambda: {"personal": 1.0})  # corporate|restricted|disposable
    shared_bins: int = 0  # > 0: the whole persona pays with this many BINs
    burst: float = 0.0  # mean length of a run of consecutive requests by one account (0: none)
    activity_sigma: float = 1.0  # lognormal spread of events per account
    # clients
    cities: tuple[str, ...] = ()  # client cities (names in world.CITIES); empty: any in the country
    user_agents: tuple[str, ...] = ()  # replaces the ``ua`` pool (one scripted client, say)
    # prompts: the prompt_fingerprint column
    prompts: dict[str, float] = field(default_factory=lambda: {"unique": 0.8, "app": 0.17, "popular": 0.03})
    app_prompts: int = 2  # fixed prompts per account
    campaign_templates: int = 4  # templates of the campaign (``prompts: {campaign: ...}``)
    # when requests happen
    diurnal: float = 0.0  # 0: flat; 1: follows people's local hours of activity
    windows_per_day: float = 0.0  # > 0: requests only in this many synchronised windows a day
    window_minutes: float = 15.0
    active_from_day: float = 0.0  # no requests before this day of the timeline
    flight_hours: float = 0.0  # > 0: each account flies once, origin -> location; no requests in the air
    adopt_hours: float = 36.0  # mean delay before an account moves to a newly released model
    adopt_share: float = 0.4  # its share of requests on the new model after that
    # the accounts table
    organisation: str = ""  # "": none (corporate e-mail: its domain's company); "auto": one made up; else a name
    email_domain: str = ""  # with an organisation: every corporate e-mail's domain
    family_share: float = 0.0  # share of accounts in families of 2-4 sharing a card (30 %: also a phone)
    shared_cards: int = 0  # > 0: accounts pay with this many shared cards
    shared_card_share: float = 1.0  # the share of accounts on those cards
    shared_phones: int = 0  # > 0: accounts reuse this many phone numbers
    created_bursts: int = 0  # > 0: accounts are created in this many bursts
    burst_minutes: float = 30.0  # width of a creation burst
    burst_age_days: float = 3.0  # a burst comes at most this long before its first request
    age_days: float = 400.0  # mean account age at its first request (no bursts)
    new_share: float = 0.05  # share signing up minutes to hours before their first request (no bursts)

    def with_params(self, params: dict[str, Any]) -> Persona:
        """A copy with scenario overrides (unknown names are a ConfigError)."""
        names = {f.name for f in dataclasses.fields(self)}
        bad = sorted(set(params) - names)
        if bad:
            raise ConfigError(f"persona {self.kind}: unknown parameter(s) {', '.join(bad)}")
        fixed: dict[str, Any] = {}
        try:
            for k, v in params.items():
                if k == "network":
                    fixed[k] = tuple(
                        Route(
                            str(r["via"]),
                            float(r.get("share", 1.0)),
                            tuple(str(c).upper() for c in r.get("countries", ())),
                            int(r.get("prefixes", 0)),
                            int(r.get("pool", 0)),
                        )
                        for r in v
                    )
                elif k in ("origin", "location"):
                    fixed[k] = tuple(str(c).upper() for c in v)
                elif k in ("cities", "user_agents"):
                    fixed[k] = tuple(str(c) for c in v)
                elif k == "prompts":
                    fixed[k] = {str(a): float(b) for a, b in dict(v).items()}
                elif isinstance(getattr(self, k), float):
                    fixed[k] = float(v)
                elif isinstance(getattr(self, k), int) and not isinstance(getattr(self, k), bool):
                    fixed[k] = int(v)
                else:
                    fixed[k] = v
        except (TypeError, ValueError, KeyError, AttributeError):
            raise ConfigError(f"persona {self.kind}: malformed parameter(s)") from None
        out = dataclasses.replace(self, **fixed)
        out.validate()
        return out

    def validate(self) -> None:
        for r in self.network:
            if r.via not in NETWORK_KINDS:
                raise ConfigError(f"persona {self.kind}: unknown network {r.via!r} (one of {', '.join(NETWORK_KINDS)})")
        if self.label not in ("account", "key"):
            raise ConfigError(f"persona {self.kind}: label must be account or key")
        if self.clients_per_account < 1 or self.keys_per_account < 1:
            raise ConfigError(f"persona {self.kind}: clients_per_account and keys_per_account must be >= 1")
        bad = sorted(set(self.prompts) - set(KINDS))
        if bad or any(v < 0 for v in self.prompts.values()) or sum(self.prompts.values()) <= 0:
            kinds = ", ".join(KINDS)
            raise ConfigError(f"persona {self.kind}: prompts is a mix of {kinds} with positive weights")
        if self.prompts.get("campaign", 0) > 0 and self.campaign_templates < 1:
            raise ConfigError(f"persona {self.kind}: a campaign needs campaign_templates >= 1")
        names = {c[1] for c in CITIES}
        unknown = sorted(set(self.cities) - names)
        if unknown:
            raise ConfigError(f"persona {self.kind}: unknown cities {', '.join(unknown)} (see world.CITIES)")
        for name in ("diurnal", "adopt_share", "family_share", "shared_card_share", "new_share"):
            if not 0.0 <= float(getattr(self, name)) <= 1.0:
                raise ConfigError(f"persona {self.kind}: {name} must be between 0 and 1")
        for name in ("windows_per_day", "window_minutes", "active_from_day", "flight_hours", "adopt_hours",
                     "shared_cards", "shared_phones", "created_bursts", "burst_minutes", "burst_age_days",
                     "age_days", "app_prompts", "campaign_templates"):  # fmt: skip
            if float(getattr(self, name)) < 0:
                raise ConfigError(f"persona {self.kind}: {name} must be >= 0")
        if any(r.prefixes < 0 or r.pool < 0 for r in self.network):
            raise ConfigError(f"persona {self.kind}: prefixes and pool must be >= 0")


_EXITS_EAST = ("JP", "SG", "US", "DE", "NL", "GB")
_EXITS_WEST = ("DE", "NL", "PL", "RO", "SE", "GB", "US")
_HONEST = ("US", "DE", "GB", "FR", "JP", "IN", "BR", "NL", "ES", "PL", "AU", "CA")

PERSONAS: dict[str, Persona] = {
    p.kind: p
    for p in (
        Persona("local_residential", True, "People at home on residential broadband.", _HONEST, ua="mixed"),
        Persona(
            "local_mobile",
            True,
            "People on mobile networks behind carrier-grade NAT (many users per address).",
            ("US", "DE", "GB", "FR", "IN", "JP", "BR", "ES", "NL"),
            network=(Route("mobile"),),
            users_per_address=25.0,
            clients_per_account=1,
        ),
        Persona(
            "corporate_vpn",
            True,
            "Employees behind a company secure-web gateway (Zscaler) or a cloud egress in their own country.",
            ("US", "DE", "GB", "FR", "JP", "IN", "NL"),
            network=(Route("corp_proxy", 0.6), Route("cloud", 0.4)),
            ua="sdk",
            keys_per_account=3,
            clients_per_account=6,
            users_per_address=8.0,
            email={"corporate": 1.0},
            card={"visa": 0.5, "mastercard": 0.5},
        ),
        Persona(
            "traveller",
            True,
            "People abroad for a while: foreign network, home phone, card and language; clock often switched.",
            ("US", "DE", "GB", "FR", "NL", "AU"),
            location=("JP", "SG", "ES", "IT", "MX", "TR", "AE", "VN"),
            network=(Route("local", 0.6), Route("mobile", 0.4)),
            tz_from="location",
            tz_spoof=0.0,
            ua="mixed",
        ),
        Persona(
            "expat",
            True,
            "People from CN, RU, IN, BR or TR living abroad: home language, often home clock and phone, local network.",
            ("CN", "RU", "IN", "BR", "TR"),
            location=("US", "DE", "GB", "NL", "CA", "AU", "SG", "JP"),
            tz_from="origin",
            phone={"origin": 0.3, "location": 0.7},
            billing="location",
            email={"personal": 0.7, "restricted": 0.3},
        ),
        Persona(
            "cloud_automation",
            True,
            "Heavy legitimate automation (batch jobs, agents) running in a cloud region.",
            ("US", "DE", "SG", "JP", "GB"),
            network=(Route("cloud"),),
            tz_from="utc",
            lang_from="none",
            ua="sdk",
            keys_per_account=2,
            clients_per_account=4,
            email={"corporate": 1.0},
            activity_sigma=0.5,
            prompts={"unique": 0.4, "app": 0.55, "popular": 0.05},
            app_prompts=3,
        ),
        Persona(
            "cn_vpn",
            False,
            "People in mainland China on commercial VPNs or rented servers abroad; "
            "client clock and language stay Chinese.",
            ("CN",),
            network=(Route("vpn", 0.6, _EXITS_EAST), Route("cloud", 0.4, _EXITS_EAST)),
            tz_from="origin",
            tz_spoof=0.15,
            lang_spoof=0.15,
            clients_per_account=3,
            users_per_address=4.0,
            phone={"voip": 0.5, "origin": 0.2, "none": 0.3},
            card={"unionpay": 0.4, "visa": 0.6},
            billing="exit",
            email={"restricted": 0.4, "personal": 0.6},
        ),
        Persona(
            "ru_vpn",
            False,
            "People in Russia on commercial VPNs or rented servers abroad; Russian clock and language.",
            ("RU",),
            network=(Route("vpn", 0.7, _EXITS_WEST), Route("cloud", 0.3, _EXITS_WEST)),
            tz_from="origin",
            tz_spoof=0.15,
            lang_spoof=0.15,
            clients_per_account=3,
            users_per_address=4.0,
            phone={"voip": 0.4, "origin": 0.3, "none": 0.3},
            card={"mir": 0.3, "visa": 0.7},
            billing="exit",
            email={"restricted": 0.5, "personal": 0.5},
        ),
        Persona(
            "residential_proxy",
            False,
            "People in CN or RU renting residential proxy exits abroad; many also fake clock and language.",
            ("CN", "RU"),
            network=(Route("resi_proxy", 1.0, ("US", "GB", "DE", "JP", "SG", "CA")),),
            tz_from="origin",
            tz_spoof=0.6,
            lang_spoof=0.5,
            clients_per_account=4,
            phone={"voip": 0.7, "none": 0.3},
            card={"visa": 0.7, "mastercard": 0.3},
            billing="exit",
        ),
        Persona(
            "key_reseller",
            False,
            "One paid key resold to hundreds of end users in CN: direct from Chinese networks, via relays and proxies.",
            ("CN",),
            network=(
                Route("restricted_local", 0.25),
                Route("cloud", 0.5, ("SG", "JP", "US")),
                Route("resi_proxy", 0.25, ("US", "JP", "SG")),
            ),
            label="key",
            tz_from="origin",
            tz_spoof=0.3,
            ua="sdk",
            clients_per_account=400,
            phone={"voip": 1.0},
            card={"visa": 1.0},
            billing="exit",
            activity_sigma=0.3,
        ),
        Persona(
            "cloud_reseller",
            False,
            "A service in a cloud region that relays CN end users' requests through its own account.",
            ("CN",),
            network=(Route("cloud", 1.0, ("US", "SG", "JP")),),
            tz_from="utc",
            lang_from="none",
            ua="sdk",
            keys_per_account=2,
            clients_per_account=8,
            phone={"location": 1.0},
            card={"visa": 1.0},
            billing="exit",
            email={"corporate": 1.0},
            activity_sigma=0.4,
        ),
        Persona(
            "account_farm",
            False,
            "Many throw-away accounts from one CN operation: bursts, VoIP numbers, shared card BINs, proxies.",
            ("CN",),
            network=(Route("resi_proxy", 0.7, ("US",)), Route("vpn", 0.3, ("US", "GB"))),
            tz_from="origin",
            tz_spoof=0.7,
            lang_spoof=0.7,
            ua="sdk",
            clients_per_account=1,
            phone={"voip": 1.0},
            card={"visa": 1.0},
            billing="exit",
            email={"disposable": 0.6, "personal": 0.4},
            shared_bins=3,
            burst=25.0,
            shared_cards=6,
            created_bursts=2,
            burst_age_days=2.0,
        ),
        Persona(
            "front_company",
            False,
            "A company registered and operating in the US but owned from a restricted country: every signal is clean.",
            ("US",),
            network=(Route("local", 0.5), Route("cloud", 0.5)),
            observable=False,
            ua="sdk",
            keys_per_account=2,
            clients_per_account=4,
            email={"corporate": 1.0},
        ),
        Persona(
            "company_team",
            True,
            "A company's team: one organisation and e-mail domain, some on the corporate card, heavy use "
            "from one office egress /24 in office hours, onboarded in bursts.",
            ("US",),
            network=(Route("local", 0.85, prefixes=1), Route("local", 0.15)),
            ua="mixed",
            keys_per_account=2,
            clients_per_account=2,
            users_per_address=10.0,
            email={"corporate": 1.0},
            activity_sigma=0.8,
            organisation="auto",
            shared_cards=2,
            shared_card_share=0.4,
            created_bursts=3,
            burst_minutes=120.0,
            burst_age_days=300.0,
            diurnal=1.0,
        ),
        Persona(
            "distillation",
            False,
            "A distillation campaign from CN: accounts send a few templated prompts (near-duplicate "
            "fingerprints) in synchronised windows through relays and move to a new model within hours.",
            ("CN",),
            network=(Route("cloud", 0.6, ("US", "SG", "JP")), Route("resi_proxy", 0.4, ("US", "SG", "JP"))),
            tz_from="origin",
            tz_spoof=0.8,
            lang_spoof=0.8,
            ua="sdk",
            phone={"voip": 0.7, "none": 0.3},
            card={"visa": 0.6, "mastercard": 0.4},
            billing="exit",
            activity_sigma=0.4,
            prompts={"campaign": 0.9, "unique": 0.1},
            windows_per_day=6.0,
            window_minutes=12.0,
            adopt_hours=2.0,
            adopt_share=0.95,
        ),
    )
}
