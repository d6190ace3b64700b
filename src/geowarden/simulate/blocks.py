"""Blocks: one scenario entry's accounts, keys, clients and events, vectorised with numpy.

``generate`` turns one persona, a number of subjects and the entry's event times into a
``Block`` of columns: strings live in small per-block pools and events carry indices into them.
Everything the simulator drew before prompts, accounts, flights and model releases existed
comes from the main generator in the same order, so a persona with default parameters makes
the same events as it always did; what was added draws from the block's own generator
(``Context.rng``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import phonenumbers
from phonenumbers import PhoneNumberType

from geowarden.errors import ConfigError
from geowarden.simulate.accounts import AccountFacts, accounts_on_card, created_times, first_seen, share_identity
from geowarden.simulate.personas import Persona
from geowarden.simulate.prompts import Popular, U64Array, fingerprints, hex_strings, popular
from geowarden.simulate.timeline import DAY_MS, HOUR_MS, T0_MS, city_offsets, pick_accounts
from geowarden.simulate.world import (
    MOBILE_ASNS,
    MODELS,
    UA_BROWSER,
    UA_SDK,
    AddressSpace,
    Geo,
    IntArray,
    Selector,
    ip_strings,
    language,
)

Column = npt.NDArray[np.int64] | npt.NDArray[np.float64] | npt.NDArray[np.uint64]


@dataclass(frozen=True, slots=True)
class Context:
    """What a block shares with its scenario: its own generator for the added columns, the
    timeline's bounds, the world's popular prompts, its campaign's templates, and the models
    (with ``release_ms``, the last one appears at that time)."""

    rng: np.random.Generator
    t0: int
    end: int
    popular: Popular
    templates: U64Array = field(default_factory=lambda: np.zeros(0, dtype=np.uint64))
    models: tuple[str, ...] = MODELS
    release_ms: int | None = None

    @classmethod
    def default(cls, rng: np.random.Generator, days: float = 1.0) -> Context:
        own = rng.spawn(1)[0]  # does not move ``rng``
        return cls(own, T0_MS, T0_MS + int(days * DAY_MS), popular(own))


@dataclass(slots=True)
class Block:
    """The events of one scenario entry: per-event indices into small string pools."""

    accounts: list[str]
    keys: list[str]
    key_account: IntArray  # account index per key
    addresses: list[str]
    pools: dict[str, list[str | None]]  # column -> values (None: absent)
    ev: dict[str, Column]  # column -> per-event index (into pools / accounts / keys / addresses) or value
    subjects: list[str]  # the labelled subjects (accounts or keys)
    client_country: list[str]  # where each client's address is placed (for tests)
    client_tz: list[str | None]
    client_account: IntArray  # account index per client
    facts: AccountFacts  # the accounts table rows


@dataclass(slots=True)
class _Clients:
    """Devices (or end users) and the network each one leaves from."""

    cities: IntArray
    exit_cc: npt.NDArray[np.str_]
    exit_city: IntArray
    relayed: npt.NDArray[np.bool_]
    addr_idx: IntArray
    country: list[str]
    tz: list[str | None]
    lang: list[str | None]

    def extend(self, other: _Clients) -> _Clients:
        return _Clients(
            np.concatenate([self.cities, other.cities]),
            np.concatenate([self.exit_cc, other.exit_cc]),
            np.concatenate([self.exit_city, other.exit_city]),
            np.concatenate([self.relayed, other.relayed]),
            np.concatenate([self.addr_idx, other.addr_idx]),
            self.country + other.country,
            self.tz + other.tz,
            self.lang + other.lang,
        )


def _choice(rng: np.random.Generator, weights: dict[str, float], n: int) -> list[str]:
    names = list(weights)
    p = np.array([weights[k] for k in names], dtype=float)
    if p.sum() <= 0:
        raise ConfigError("a choice needs a positive weight")
    pick = rng.choice(len(names), size=n, p=p / p.sum())
    return [names[i] for i in pick.tolist()]


def _hex_ids(rng: np.random.Generator, prefix: str, n: int) -> list[str]:
    return [f"{prefix}_{v:012x}" for v in rng.integers(0, 2**48, size=n, dtype=np.int64).tolist()]


def _pool_rng(pool: int, via: str, cc: str) -> np.random.Generator:
    """The generator that picks a shared pool's /24s: the same for every route of that pool,
    network kind and country, so that their entries are co-tenants of the same networks."""
    return np.random.default_rng([pool, *via.encode(), *cc.encode()])


def _selector(via: str, country: str) -> Selector:
    cc = (country,)
    if via in {"local", "restricted_local"}:
        return Selector(countries=cc)
    if via == "mobile":
        return Selector(countries=cc, asns=MOBILE_ASNS.get(country, ()))
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


def _email(kind: str, cc: str, i: int, rng: np.random.Generator, domain: str = "") -> str:
    if kind == "corporate":
        return f"dev{i}@{domain}" if domain else f"dev{i}@corp{int(rng.integers(1, 500))}.example.com"
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


def _organisation(p: Persona, rng: np.random.Generator) -> tuple[str | None, str]:
    """(name, e-mail domain) of the entry's one organisation, if it has one."""
    if p.organisation == "auto":
        tag = f"{int(rng.integers(0, 16**4)):04x}"
        return f"Company {tag} Inc.", p.email_domain or f"company-{tag}.example.com"
    if p.organisation:
        slug = "".join(c if c.isalnum() else "-" for c in p.organisation.lower()).strip("-")
        return p.organisation, p.email_domain or f"{slug}.example.com"
    return None, p.email_domain


def _org_of(kind: str, email: str | None, name: str | None) -> str | None:
    """The organisation a corporate account declares: the entry's, else its domain's company."""
    if kind != "corporate" or email is None:
        return None
    if name is not None:
        return name
    return email.rsplit("@", 1)[-1].split(".", 1)[0].capitalize() + " Ltd"


def _clients(
    p: Persona,
    cl_loc_cc: npt.NDArray[np.str_],
    cl_origin: npt.NDArray[np.str_],
    rng: np.random.Generator,
    space: AddressSpace,
    geo: Geo,
    zones: list[str],
    addresses: list[str],
) -> _Clients:
    """Clients located in ``cl_loc_cc``: city, route, exit, address (appended to
    ``addresses``), clock and language."""
    n_clients = len(cl_loc_cc)
    cities = np.empty(n_clients, dtype=np.int64)
    for cc in np.unique(cl_loc_cc).tolist():
        m = cl_loc_cc == cc
        options = geo.cities_in(cc)
        if len(options) == 0:
            raise ConfigError(f"persona {p.kind}: no city known in {cc} (see geowarden.simulate.world.CITIES)")
        if p.cities:
            named = options[np.isin(np.array(geo.names)[options], p.cities)]
            options = named if len(named) else options
        cities[m] = rng.choice(options, size=int(m.sum()))
    shares = np.array([r.share for r in p.network], dtype=float)
    route = rng.choice(len(p.network), size=n_clients, p=shares / shares.sum())
    exit_cc = cl_loc_cc.copy()
    exit_city = cities.copy()
    relayed = np.zeros(n_clients, dtype=bool)
    addr_idx = np.empty(n_clients, dtype=np.int64)
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
            sel = _selector(r.via, cc)
            seed_rng = _pool_rng(r.pool, r.via, cc) if r.pool else None
            pool = (
                space.sample_prefixes(sel, r.prefixes, n_addr, rng, seed_rng)
                if r.prefixes
                else space.sample(sel, n_addr, rng)
            )
            base = len(addresses)
            addresses.extend(ip_strings(pool))
            addr_idx[mm] = base + rng.integers(0, n_addr, size=len(mm))
            for i in mm.tolist():
                client_country[i] = cc
    tz, lang = _settings(p, cities, exit_city, cl_loc_cc, cl_origin, rng, geo, zones)
    return _Clients(cities, exit_cc, exit_city, relayed, addr_idx, client_country, tz, lang)


def _settings(
    p: Persona,
    cities: IntArray,
    exit_city: IntArray,
    cl_loc_cc: npt.NDArray[np.str_],
    cl_origin: npt.NDArray[np.str_],
    rng: np.random.Generator,
    geo: Geo,
    zones: list[str],
) -> tuple[list[str | None], list[str | None]]:
    """Each client's clock (IANA zone) and Accept-Language."""
    n_clients = len(cities)
    spoof_tz = rng.random(n_clients) < p.tz_spoof
    spoof_lang = rng.random(n_clients) < p.lang_spoof
    # the origin country's first city (or, with none known, the city of its first client)
    origins, first, inverse = np.unique(cl_origin, return_index=True, return_inverse=True)
    home = [
        int(geo.cities_in(str(o))[0]) if len(geo.cities_in(str(o))) else int(cities[f])
        for o, f in zip(origins, first, strict=True)
    ]
    origin_city = np.array(home, dtype=np.int64)[inverse]
    utc = len(zones)  # index of "UTC" in the table below
    if p.tz_from == "exit":
        tz_idx = exit_city
    elif p.tz_from == "utc":
        tz_idx = np.full(n_clients, utc)
    else:
        tz_idx = origin_city if p.tz_from == "origin" else cities
    tz_idx = np.where(spoof_tz, exit_city, tz_idx)
    table = [*zones, "UTC"]
    tz: list[str | None] = [table[j] for j in tz_idx.tolist()]
    if p.lang_from == "none":
        return tz, [None] * n_clients
    lang_cc = cl_origin if p.lang_from == "origin" else cl_loc_cc
    codes, which = np.unique(lang_cc, return_inverse=True)
    langs = [language(str(c)) for c in codes] + ["en-US,en;q=0.9"]
    lang_idx = np.where(spoof_lang, len(codes), which)
    lang: list[str | None] = [langs[j] for j in lang_idx.tolist()]
    return tz, lang


def _grounded(ev_acc: IntArray, ts: IntArray, dep: IntArray, arr: IntArray, rng: np.random.Generator) -> IntArray:
    """``ev_acc`` with every request that falls in its account's flight given to an account
    on the ground at that time."""
    out = ev_acc.copy()
    for _ in range(8):
        bad = np.flatnonzero((ts >= dep[out]) & (ts < arr[out]))
        if not len(bad):
            return out
        out[bad] = rng.integers(0, len(dep), size=len(bad))
    for i in np.flatnonzero((ts >= dep[out]) & (ts < arr[out])).tolist():
        ok = np.flatnonzero((ts[i] < dep) | (ts[i] >= arr))
        if len(ok):
            out[i] = ok[int(rng.integers(len(ok)))]
    return out


def generate(  # noqa: PLR0915 - one pass over a persona's accounts, clients and events
    p: Persona,
    n_accounts: int,
    n_events: int,
    rng: np.random.Generator,
    space: AddressSpace,
    geo: Geo,
    zones: list[str],
    *,
    ts: IntArray | None = None,
    ctx: Context | None = None,
) -> Block:
    """Accounts, keys, clients and ``n_events`` events of one persona at times ``ts`` (epoch ms,
    sorted; default: evenly over the context's timeline)."""
    n_accounts = max(1, n_accounts)
    ctx = ctx or Context.default(rng)
    xr = ctx.rng
    if ts is None:
        ts = ctx.t0 + (np.arange(n_events, dtype=np.int64) * (ctx.end - ctx.t0)) // max(n_events, 1)
    location = p.location or p.origin
    # -- accounts ---------------------------------------------------------------------------
    acc_origin = rng.choice(np.array(p.origin), size=n_accounts)
    acc_location = rng.choice(np.array(location), size=n_accounts) if p.location else acc_origin.copy()
    account_ids = _hex_ids(rng, "acct", n_accounts)
    n_keys = n_accounts * p.keys_per_account
    keys = _hex_ids(rng, "key", n_keys)
    key_account = np.repeat(np.arange(n_accounts, dtype=np.int64), p.keys_per_account)
    # -- clients (devices, offices, end users); a flyer has the same devices at home too --------
    cpa = p.clients_per_account
    n_clients = n_accounts * cpa
    cl_account = np.repeat(np.arange(n_accounts, dtype=np.int64), cpa)
    addresses: list[str] = []
    away = _clients(p, acc_location[cl_account], acc_origin[cl_account], rng, space, geo, zones, addresses)
    flying = p.flight_hours > 0
    cl = away
    if flying:
        home = _clients(p, acc_origin[cl_account], acc_origin[cl_account], rng, space, geo, zones, addresses)
        cl = away.extend(home)
    ua_pool: list[str | None]
    if p.user_agents:
        ua_pool = list(p.user_agents)
    elif p.ua == "browser":
        ua_pool = list(UA_BROWSER)
    elif p.ua == "sdk":
        ua_pool = list(UA_SDK)
    else:
        ua_pool = [*UA_BROWSER, *UA_SDK]
    cl_ua = rng.integers(0, len(ua_pool), size=n_clients)
    if flying:
        cl_ua = np.concatenate([cl_ua, cl_ua])
    # -- account facts: phone, card, billing, e-mail ---------------------------------------------
    acc_exit = np.empty(n_accounts, dtype="<U2")
    acc_exit[cl_account[::-1]] = away.exit_cc[::-1]  # the first client's exit country
    phone_kind = _choice(rng, p.phone, n_accounts)
    card_kind = _choice(rng, p.card, n_accounts)
    mail_kind = _choice(rng, p.email, n_accounts)
    farm_bins = [_bin(card_kind[0], rng) for _ in range(p.shared_bins)]
    org_name, domain = _organisation(p, xr)
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
        emails.append(_email(mail_kind[a], o, int(suffix[a]) * 1000 + a, rng, domain))
    payment, phone_line = share_identity(p, phones, bins, xr)
    # -- events ---------------------------------------------------------------------------------
    if p.burst > 0:  # runs of consecutive requests by one account
        runs = max(1, int(np.ceil(n_events / p.burst)))
        lengths = rng.geometric(1.0 / p.burst, size=runs)
        while lengths.sum() < n_events:
            lengths = np.concatenate([lengths, rng.geometric(1.0 / p.burst, size=runs)])
        ev_acc = np.repeat(rng.integers(0, n_accounts, size=len(lengths)), lengths)[:n_events]
    else:
        act = rng.lognormal(0.0, p.activity_sigma, size=n_accounts)
        if p.diurnal > 0:  # people send when it is day where they are
            offsets = city_offsets(zones)[away.cities[::cpa]]
            ev_acc = pick_accounts(rng, ts, act, offsets, p.diurnal)
        else:
            ev_acc = rng.choice(n_accounts, size=n_events, p=act / act.sum())
    if flying:  # one flight each, origin -> location, nothing sent in the air
        room = max(ctx.end - ctx.t0 - p.flight_hours * HOUR_MS, 0.0)
        dep = (ctx.t0 + room * (0.1 + 0.8 * xr.random(n_accounts))).astype(np.int64)
        arr = dep + int(p.flight_hours * HOUR_MS)
        ev_acc = _grounded(ev_acc, ts, dep, arr, xr)
    ev_client = ev_acc * cpa + rng.integers(0, cpa, size=n_events)
    if flying:
        ev_client = np.where(ts < dep[ev_acc], ev_client + n_clients, ev_client)
    ev_key = ev_acc * p.keys_per_account + rng.integers(0, p.keys_per_account, size=n_events)
    ev_exit_city = cl.exit_city[ev_client]
    ev_city = cl.cities[ev_client]
    pop = geo.nearest_pop[ev_exit_city]
    pop_city = geo.pop_city[pop]
    noise = np.abs(rng.standard_normal(n_events))
    tcp = geo.rtt[ev_exit_city, pop_city] + noise * geo.jitter[ev_exit_city, pop_city]
    leg = geo.rtt[ev_city, ev_exit_city] + np.abs(rng.standard_normal(n_events)) * geo.jitter[ev_city, ev_exit_city]
    app = np.where(cl.relayed[ev_client], tcp + leg + 2.0, tcp + 0.5 * noise)
    inp = np.minimum(rng.lognormal(6.5, 1.2, size=n_events), 200_000).astype(np.int64)
    out = np.minimum(rng.lognormal(5.5, 1.0, size=n_events), 16_000).astype(np.int64)
    status = np.where(rng.random(n_events) < 0.02, 429, 200)
    model = rng.integers(0, len(MODELS), size=n_events)
    if ctx.release_ms is not None:  # each account moves to the new model some time after its release
        switch = ctx.release_ms + xr.gamma(4.0, p.adopt_hours * HOUR_MS / 4.0, size=n_accounts)
        model[(ts >= switch[ev_acc]) & (xr.random(n_events) < p.adopt_share)] = len(ctx.models) - 1
    fingerprint = fingerprints(p.prompts, ev_acc, n_accounts, p.app_prompts, xr, ctx.popular, ctx.templates)
    first = first_seen(ev_acc, ts, n_accounts, ctx.end)
    facts = AccountFacts(
        ids=account_ids,
        created=created_times(p, first, xr),
        payment=payment,
        phone_line=phone_line,
        phones=phones,
        emails=emails,
        organisation=[_org_of(k, e, org_name) for k, e in zip(mail_kind, emails, strict=True)],
        declared=billing,
    )
    return Block(
        accounts=account_ids,
        keys=keys,
        key_account=key_account,
        addresses=addresses,
        pools={
            "user_agent": ua_pool,
            "accept_language": cl.lang,
            "client_tz": cl.tz,
            "pop": list(geo.pop_codes),
            "model": list(ctx.models),
            "phone": phones,
            "card_bin": bins,
            "billing_country": billing,
            "email": emails,
            "payment_fingerprint": list[str | None](hex_strings(payment)),
        },
        ev={
            "account_id": ev_acc,
            "api_key_id": ev_key,
            "ip": cl.addr_idx[ev_client],
            "user_agent": cl_ua[ev_client],
            "accept_language": ev_client,
            "client_tz": ev_client,
            "pop": pop,
            "model": model,
            "phone": ev_acc,
            "card_bin": ev_acc,
            "billing_country": ev_acc,
            "email": ev_acc,
            "payment_fingerprint": ev_acc,
            "account_created": facts.created[ev_acc],
            "payment_accounts": accounts_on_card(payment, facts.created, ev_acc, ts),
            "rtt_ms": np.round(tcp, 2),
            "rtt_app_ms": np.round(app, 2),
            "input_tokens": inp,
            "output_tokens": out,
            "status": status,
            "prompt_fingerprint": fingerprint,
        },
        subjects=keys if p.label == "key" else account_ids,
        client_country=cl.country,
        client_tz=cl.tz,
        client_account=np.concatenate([cl_account, cl_account]) if flying else cl_account,
        facts=facts,
    )
