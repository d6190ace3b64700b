"""Personas: who sends the traffic, as parameters over the real world (``world``).

A persona says where its people are (``location``), where their identity comes from
(``origin``: phone, card, e-mail, language, clock), which networks their requests leave from
(``network``: a mix of ``local``, ``mobile``, ``corp_proxy``, ``cloud``, ``vpn``,
``resi_proxy``, each with exit countries), how they set their client (time zone and language
from origin, location or exit), how many accounts, keys and clients (devices, end users) they
have, and whether the policy *should* allow them. ``generate`` turns one persona, a number of
subjects and a number of events into a ``Block`` of columns, vectorised with numpy: strings
live in small per-block pools and events carry indices into them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import phonenumbers
from phonenumbers import PhoneNumberType

from geowarden.errors import ConfigError
from geowarden.simulate import world
from geowarden.simulate.world import AddressSpace, Geo, IntArray, Selector

RESTRICTED_HOMES = ("CN", "RU")
NETWORK_KINDS = ("local", "mobile", "corp_proxy", "cloud", "vpn", "resi_proxy", "restricted_local")


@dataclass(frozen=True, slots=True)
class Route:
    """One way out to the Internet: a network kind, its share, and its exit countries."""

    via: str
    share: float = 1.0
    countries: tuple[str, ...] = ()  # exit countries; empty: the client's own country


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

    def with_params(self, params: dict[str, Any]) -> Persona:
        """A copy with scenario overrides (unknown names are a ConfigError)."""
        names = {f.name for f in dataclasses.fields(self)}
        bad = sorted(set(params) - names)
        if bad:
            raise ConfigError(f"persona {self.kind}: unknown parameter(s) {', '.join(bad)}")
        fixed: dict[str, Any] = {}
        for k, v in params.items():
            if k == "network":
                fixed[k] = tuple(
                    Route(str(r["via"]), float(r.get("share", 1.0)), tuple(r.get("countries", ()))) for r in v
                )
            elif k in ("origin", "location"):
                fixed[k] = tuple(str(c).upper() for c in v)
            else:
                fixed[k] = v
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
    )
}


@dataclass(slots=True)
class Block:
    """The events of one scenario entry: per-event indices into small string pools."""

    accounts: list[str]
    keys: list[str]
    key_account: IntArray  # account index per key
    addresses: list[str]
    pools: dict[str, list[str | None]]  # column -> values (None: absent)
    ev: dict[str, npt.NDArray[Any]]  # column -> per-event index (into pools / accounts / keys / addresses) or value
    subjects: list[str]  # the labelled subjects (accounts or keys)
    client_country: list[str]  # where each client's address is placed (for tests)
    client_tz: list[str | None]


def _choice(rng: np.random.Generator, weights: dict[str, float], n: int) -> list[str]:
    names = list(weights)
    p = np.array([weights[k] for k in names], dtype=float)
    if p.sum() <= 0:
        raise ConfigError("a choice needs a positive weight")
    pick = rng.choice(len(names), size=n, p=p / p.sum())
    return [names[i] for i in pick.tolist()]


def _hex_ids(rng: np.random.Generator, prefix: str, n: int) -> list[str]:
    return [f"{prefix}_{v:012x}" for v in rng.integers(0, 2**48, size=n, dtype=np.int64).tolist()]


def _selector(via: str, country: str) -> Selector:
    cc = (country,)
    if via in {"local", "restricted_local"}:
        return Selector(countries=cc)
    if via == "mobile":
        return Selector(countries=cc, asns=world.MOBILE_ASNS.get(country, ()))
    if via == "corp_proxy":
        return Selector(countries=cc, any_flags=("proxy",), no_flags=("tor", "reserved"), provider="zscaler")
    if via == "cloud":
        return Selector(countries=cc, any_flags=("hosting",), no_flags=("vpn", "tor", "proxy", "relay", "reserved"))
    if via == "vpn":
        return Selector(countries=cc, any_flags=("vpn",), no_flags=("tor", "relay", "reserved"))
    if via == "resi_proxy":  # residential proxy exits: ordinary home addresses abroad
        return Selector(countries=cc)
    raise ConfigError(f"unknown network {via!r}")


_PHONE_EXAMPLES: dict[tuple[str, str], str] = {}


def _phone(cc: str, kind: str, suffix: int) -> str | None:
    """A synthetic number: the country's example number with its last four digits replaced."""
    key = (cc, kind)
    if key not in _PHONE_EXAMPLES:
        t = PhoneNumberType.VOIP if kind == "voip" else PhoneNumberType.MOBILE
        num = phonenumbers.example_number_for_type(cc, t)
        _PHONE_EXAMPLES[key] = (
            phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164) if num is not None else ""
        )
    base = _PHONE_EXAMPLES[key]
    return f"{base[:-4]}{suffix:04d}" if base else None


_PERSONAL_MAIL = {"DE": "web.de", "FR": "orange.fr", "JP": "yahoo.co.jp", "BR": "uol.com.br", "GB": "outlook.com"}
_RESTRICTED_MAIL = {"CN": ("qq.com", "163.com"), "RU": ("mail.ru", "yandex.ru")}


def _email(kind: str, cc: str, i: int, rng: np.random.Generator) -> str:
    if kind == "corporate":
        return f"dev{i}@corp{int(rng.integers(1, 500))}.example.com"
    if kind == "restricted" and cc in _RESTRICTED_MAIL:
        opts = _RESTRICTED_MAIL[cc]
        return f"user{i}@{opts[int(rng.integers(len(opts)))]}"
    if kind == "disposable":
        return f"x{i}@mailinator.com"
    return f"user{i}@{_PERSONAL_MAIL.get(cc, 'gmail.com')}"


def _bin(kind: str, rng: np.random.Generator) -> str:
    r = int(rng.integers(0, 10_000))
    if kind == "mir":
        return f"220{int(rng.integers(0, 5))}{r % 100:02d}"
    if kind == "unionpay":
        return f"62{r:04d}"
    if kind == "mastercard":
        return f"5{int(rng.integers(1, 6))}{r:04d}"
    return f"4{r:04d}{int(rng.integers(0, 10))}"


def generate(  # noqa: PLR0915 - one pass over a persona's accounts, clients and events
    p: Persona,
    n_accounts: int,
    n_events: int,
    rng: np.random.Generator,
    space: AddressSpace,
    geo: Geo,
    zones: list[str],
) -> Block:
    """Accounts, keys, clients and ``n_events`` events of one persona (events in timeline order)."""
    n_accounts = max(1, n_accounts)
    location = p.location or p.origin
    # -- accounts ---------------------------------------------------------------------------
    acc_origin = rng.choice(np.array(p.origin), size=n_accounts)
    acc_location = rng.choice(np.array(location), size=n_accounts) if p.location else acc_origin.copy()
    accounts = _hex_ids(rng, "acct", n_accounts)
    n_keys = n_accounts * p.keys_per_account
    keys = _hex_ids(rng, "key", n_keys)
    key_account = np.repeat(np.arange(n_accounts, dtype=np.int64), p.keys_per_account)
    # -- clients (devices, offices, end users) ------------------------------------------------
    n_clients = n_accounts * p.clients_per_account
    cl_account = np.repeat(np.arange(n_accounts, dtype=np.int64), p.clients_per_account)
    cl_loc_cc = acc_location[cl_account]
    cities = np.empty(n_clients, dtype=np.int64)
    for cc in np.unique(cl_loc_cc).tolist():
        m = cl_loc_cc == cc
        options = geo.cities_in(cc)
        if len(options) == 0:
            raise ConfigError(f"persona {p.kind}: no city known in {cc} (see geowarden.simulate.world.CITIES)")
        cities[m] = rng.choice(options, size=int(m.sum()))
    shares = np.array([r.share for r in p.network], dtype=float)
    route = rng.choice(len(p.network), size=n_clients, p=shares / shares.sum())
    exit_cc = cl_loc_cc.copy()
    exit_city = cities.copy()
    relayed = np.zeros(n_clients, dtype=bool)
    addr_idx = np.empty(n_clients, dtype=np.int64)
    addresses: list[str] = []
    client_country: list[str] = [""] * n_clients
    for ri, r in enumerate(p.network):
        m = route == ri
        if not m.any():
            continue
        if r.countries:
            exit_cc[m] = rng.choice(np.array(r.countries), size=int(m.sum()))
        moved = m & (exit_cc != cl_loc_cc)
        for cc in np.unique(exit_cc[moved]).tolist():
            mm = moved & (exit_cc == cc)
            options = geo.cities_in(cc)
            if len(options):
                exit_city[mm] = rng.choice(options, size=int(mm.sum()))
        # the request leaves through a relay (TCP ends there) unless the client *is* in the cloud
        relayed[m] = r.via in ("corp_proxy", "vpn", "resi_proxy") or (r.via == "cloud" and p.kind != "cloud_automation")
        for cc in np.unique(exit_cc[m]).tolist():
            mm = np.flatnonzero(m & (exit_cc == cc))
            n_addr = max(1, int(np.ceil(len(mm) / max(p.users_per_address, 1.0))))
            pool = space.sample(_selector(r.via, cc), n_addr, rng)
            base = len(addresses)
            addresses.extend(world.ip_strings(pool))
            addr_idx[mm] = base + rng.integers(0, n_addr, size=len(mm))
            for i in mm.tolist():
                client_country[i] = cc
    # -- client settings: clock, language, user agent -------------------------------------------
    cl_origin = acc_origin[cl_account]
    tz: list[str | None] = []
    lang: list[str | None] = []
    spoof_tz = rng.random(n_clients) < p.tz_spoof
    spoof_lang = rng.random(n_clients) < p.lang_spoof
    origin_city: dict[str, int] = {}
    for i in range(n_clients):
        o = str(cl_origin[i])
        if o not in origin_city:
            opts = geo.cities_in(o)
            origin_city[o] = int(opts[0]) if len(opts) else int(cities[i])
        if spoof_tz[i] or p.tz_from == "exit":
            tz.append(zones[int(exit_city[i])])
        elif p.tz_from == "utc":
            tz.append("UTC")
        elif p.tz_from == "origin":
            tz.append(zones[origin_city[o]])
        else:
            tz.append(zones[int(cities[i])])
        if p.lang_from == "none":
            lang.append(None)
        elif spoof_lang[i]:
            lang.append("en-US,en;q=0.9")
        else:
            lang.append(world.language(o if p.lang_from == "origin" else str(cl_loc_cc[i])))
    if p.ua == "browser":
        ua_pool = list(world.UA_BROWSER)
    elif p.ua == "sdk":
        ua_pool = list(world.UA_SDK)
    else:
        ua_pool = [*world.UA_BROWSER, *world.UA_SDK]
    cl_ua = rng.integers(0, len(ua_pool), size=n_clients)
    # -- account facts: phone, card, billing, e-mail ---------------------------------------------
    acc_exit = np.empty(n_accounts, dtype="<U2")
    acc_exit[cl_account[::-1]] = exit_cc[::-1]  # the first client's exit country
    phone_kind = _choice(rng, p.phone, n_accounts)
    card_kind = _choice(rng, p.card, n_accounts)
    mail_kind = _choice(rng, p.email, n_accounts)
    farm_bins = [_bin(card_kind[0], rng) for _ in range(p.shared_bins)]
    phones: list[str | None] = []
    bins: list[str | None] = []
    billing: list[str | None] = []
    emails: list[str | None] = []
    suffix = rng.integers(0, 10_000, size=n_accounts).tolist()
    for a in range(n_accounts):
        o, loc, ex = str(acc_origin[a]), str(acc_location[a]), str(acc_exit[a])
        pk = phone_kind[a]
        if pk == "none":
            phones.append(None)
        elif pk == "voip":
            phones.append(_phone("GB" if suffix[a] % 2 else "NL", "voip", suffix[a]))
        else:
            phones.append(_phone(o if pk == "origin" else (ex if p.billing == "exit" else loc), "mobile", suffix[a]))
        bins.append(farm_bins[a % len(farm_bins)] if farm_bins else _bin(card_kind[a], rng))
        billing.append({"origin": o, "location": loc, "exit": ex}.get(p.billing, o))
        emails.append(_email(mail_kind[a], o, int(suffix[a]) * 1000 + a, rng))
    # -- events ---------------------------------------------------------------------------------
    if p.burst > 0:  # runs of consecutive requests by one account
        runs = max(1, int(np.ceil(n_events / p.burst)))
        lengths = rng.geometric(1.0 / p.burst, size=runs)
        while lengths.sum() < n_events:
            lengths = np.concatenate([lengths, rng.geometric(1.0 / p.burst, size=runs)])
        ev_acc = np.repeat(rng.integers(0, n_accounts, size=len(lengths)), lengths)[:n_events]
    else:
        act = rng.lognormal(0.0, p.activity_sigma, size=n_accounts)
        ev_acc = rng.choice(n_accounts, size=n_events, p=act / act.sum())
    ev_client = ev_acc * p.clients_per_account + rng.integers(0, p.clients_per_account, size=n_events)
    ev_key = ev_acc * p.keys_per_account + rng.integers(0, p.keys_per_account, size=n_events)
    ev_exit_city = exit_city[ev_client]
    ev_city = cities[ev_client]
    pop = geo.nearest_pop[ev_exit_city]
    pop_city = geo.pop_city[pop]
    noise = np.abs(rng.standard_normal(n_events))
    tcp = geo.rtt[ev_exit_city, pop_city] + noise * geo.jitter[ev_exit_city, pop_city]
    leg = geo.rtt[ev_city, ev_exit_city] + np.abs(rng.standard_normal(n_events)) * geo.jitter[ev_city, ev_exit_city]
    app = np.where(relayed[ev_client], tcp + leg + 2.0, tcp + 0.5 * noise)
    inp = np.minimum(rng.lognormal(6.5, 1.2, size=n_events), 200_000).astype(np.int64)
    out = np.minimum(rng.lognormal(5.5, 1.0, size=n_events), 16_000).astype(np.int64)
    status = np.where(rng.random(n_events) < 0.02, 429, 200)
    subjects = keys if p.label == "key" else accounts
    return Block(
        accounts=accounts,
        keys=keys,
        key_account=key_account,
        addresses=addresses,
        pools={
            "user_agent": list(ua_pool),
            "accept_language": lang,
            "client_tz": tz,
            "pop": list(geo.pop_codes),
            "model": list(world.MODELS),
            "phone": phones,
            "card_bin": bins,
            "billing_country": billing,
            "email": emails,
        },
        ev={
            "account_id": ev_acc,
            "api_key_id": ev_key,
            "ip": addr_idx[ev_client],
            "user_agent": cl_ua[ev_client],
            "accept_language": ev_client,
            "client_tz": ev_client,
            "pop": pop,
            "model": rng.integers(0, len(world.MODELS), size=n_events),
            "phone": ev_acc,
            "card_bin": ev_acc,
            "billing_country": ev_acc,
            "email": ev_acc,
            "rtt_ms": np.round(tcp, 2),
            "rtt_app_ms": np.round(app, 2),
            "input_tokens": inp,
            "output_tokens": out,
            "status": status,
        },
        subjects=subjects,
        client_country=client_country,
        client_tz=tz,
    )
