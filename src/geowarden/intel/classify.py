"""Which networks are hosting or VPN infrastructure, from evidence no single list gives.

The lists geowarden builds from name the well-known providers. The long tail — small VPS and
dedicated hosters, VPN providers' own ASNs, networks that only lease address space to VPNs — is
in no list, and that is where a list-only snapshot misses (docs/intel-quality.md). This module
labels autonomous systems from features every build has offline, each documented here and in
docs/intel.md:

``listed``
    the share of the ASN's IPv4 space that range lists (provider ranges, hosting and VPN lists,
    exit lists) already label hosting, VPN or proxy;
``countries``
    the number of countries holding at least ``SPREAD_MIN_SHARE`` of the ASN's space, by the
    geolocation source (DB-IP): a consumer ISP serves one country; a VPS or VPN network puts
    its blocks in many;
``size``
    the ASN's announced IPv4 space in addresses;
``name``
    words of the organisation's name (DB-IP / iptoasn ASN names): hosting words (``hosting``,
    ``server``, ``cloud``, ``datacenter``, ``vps``, ``colocation``...), VPN and proxy words
    (``vpn``, ``proxy``...), and **access** words (``telecom``, ``mobile``, ``broadband``,
    ``cable``, ``fibre``, ``satellite``...) plus the brand names of large consumer carriers whose
    names carry no such word ("Vodafone GmbH", "Bharti Airtel"); Starlink's "Space Exploration
    Technologies" is kept out by its size instead.

Rules, strongest first; a network whose name marks it as an access network (consumer ISP,
mobile carrier, satellite) is never labelled by a name or spread rule, only by list coverage:

====================  ==============================================================  ======
rule                  condition                                                       conf.
====================  ==============================================================  ======
``listed``            ``listed >= 0.5`` (at least a /24)                              0.9
``vpn-name``          a VPN word (``proxy-name``: a proxy word) in the name, not       0.8
                      an access network
``hosting-name``      a hosting word and one more feature: ``listed >= 0.02``,        0.7
                      ``countries >= 2`` or ``size <= SMALL``; not an access network
``spread-listed``     spread (``countries >= SPREAD_MIN_COUNTRIES``, ``size <=       0.7
                      SPREAD_MAX``) and some of it listed; not access
``partly-listed``     ``listed >= PARTLY_LISTED`` and ``size <= SPREAD_MAX``; not      0.6
                      access
``spread-large``      larger than ``SPREAD_MAX``, ``countries >= 5`` and at most 80 %  0.6
                      in one country (clouds; consumer ISPs keep 95-100 % at home);
                      not access
``spread``            spread alone: multinational companies' networks look the same   0.5
                      (a weak label: evidence, not a reason to act)
====================  ==============================================================  ======

A hosting word alone never labels; a VPN or proxy word does, as it says what the network sells;
and every name rule is refused on an access network. The thresholds were chosen on the tuning half of the
held-out evaluation (``scripts/eval_intel_holdout.py``) and are reported on the other half.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np
import numpy.typing as npt

#: The labels a verdict can carry.
LABELS = ("hosting", "vpn", "proxy")

LISTED_MIN_SHARE = 0.5
SPREAD_MIN_SHARE = 0.01  # a country counts when it holds at least this share of the ASN's space
SPREAD_MIN_COUNTRIES = 4
SPREAD_MAX = 1 << 16  # spread and partial listing only judge networks up to a /16
SMALL = 1 << 14  # a hosting word is supported by the network being this small (a /18)
PARTLY_LISTED = 0.1
#: A large network is a cloud when geolocation spreads it over this many countries with no more
#: than ``LARGE_SPREAD_TOP`` of it in one (consumer ISPs keep 95-100 % at home).
LARGE_SPREAD_COUNTRIES = 5
LARGE_SPREAD_TOP = 0.8
#: Confidence of a weak label: multinational companies' own networks are spread too, so spread
#: alone is evidence for the policy to combine, not a reason to act (the default policy acts on
#: labels from ``ACT`` up).
WEAK = 0.5
ACT = 0.6
NAME_LISTED = 0.02

_WORD = re.compile(r"[a-z0-9]+")
HOSTING_WORDS = frozenset({
    "colo", "colocation", "vps", "vds", "idc", "compute", "computing", "baremetal", "rack", "racks", "datacenter",
    "datacentre", "datacenters", "hosting", "server", "servers", "cloud",
})  # fmt: skip
#: A word that begins or ends with one of these is a hosting word too (company names compound
#: them: "HostHatch", "ServerMania", "GigaHost", "WebHosting").
HOSTING_STEMS = ("host", "hosting", "server", "servers", "datacent", "cloud", "dedi")
#: Consumer satellite operators whose organisation names carry no access word.
ACCESS_PHRASES = ("space exploration technologies",)
HOSTING_PHRASES = ("data center", "data centre", "data-center", "bare metal", "web services", "virtual server")
PROXY_STEMS = ("proxy", "proxies", "anonymizer")
ACCESS_WORDS = frozenset({
    "telecom", "telekom", "telecoms", "telecommunication", "telecommunications", "telco", "telefonica",
    "telefonia", "telecomunicacoes", "telecomunicaciones", "telekomunikasi", "mobile", "mobil", "mobilfunk",
    "wireless", "cellular", "gsm", "lte", "broadband", "cable", "cablevision", "kabel", "dsl", "adsl", "fibre",
    "fiber", "ftth", "fttx", "satellite", "residential", "isp", "ptt",
})  # fmt: skip
#: Large consumer carriers whose names carry no access word ("Vodafone GmbH", "Bharti Airtel").
CARRIER_BRANDS = frozenset({
    "vodafone", "orange", "movistar", "airtel", "beeline", "megafon", "telstra", "verizon", "comcast", "xfinity",
    "charter", "telenor", "telia", "swisscom", "proximus", "etisalat", "ooredoo", "digicel", "claro", "docomo",
    "kddi", "jio", "turkcell", "vivo", "optus", "rogers", "videotron", "bouygues", "sfr", "iliad", "talktalk",
    "ziggo", "kpn", "starlink", "viasat", "hughesnet", "oneweb",
})  # fmt: skip


@dataclass(frozen=True, slots=True)
class Verdict:
    """The classification of one ASN: its label, the rule that gave it, a confidence in 0-1."""

    label: str  # "hosting", "vpn" or "proxy"
    rule: str
    confidence: float
    detail: str


@dataclass(frozen=True, slots=True)
class Features:
    """Per-ASN features, parallel arrays sorted by ASN."""

    asns: npt.NDArray[np.uint32]
    sizes: npt.NDArray[np.float64]  # IPv4 addresses announced
    listed: npt.NDArray[np.float64]  # share of them range lists label hosting, VPN or proxy
    countries: npt.NDArray[np.int64]  # countries holding at least SPREAD_MIN_SHARE of them
    top: npt.NDArray[np.float64]  # the largest share in one country


@cache
def name_kind(org: str) -> str | None:
    """``"access"``, ``"vpn"``, ``"proxy"``, ``"hosting"`` or None, from the words of an organisation name."""
    low = org.lower()
    words = set(_WORD.findall(low))
    if words & ACCESS_WORDS or words & CARRIER_BRANDS or any(p in low for p in ACCESS_PHRASES):
        return "access"
    if any("vpn" in w for w in words):
        return "vpn"
    if any(stem in w for w in words for stem in PROXY_STEMS):
        return "proxy"
    if (
        words & HOSTING_WORDS
        or any(w.startswith(HOSTING_STEMS) or w.endswith(HOSTING_STEMS) for w in words if len(w) > 4)
        or any(p in low for p in HOSTING_PHRASES)
    ):
        return "hosting"
    return None


def judge(org: str, size: float, listed: float, countries: int, top: float = 1.0) -> Verdict | None:
    """The rule table above for one ASN (``listed`` is a share of ``size``)."""
    kind = name_kind(org)
    if listed >= LISTED_MIN_SHARE and size >= 256:
        return Verdict("hosting", "listed", 0.9, f"{listed:.0%} of its space in hosting or VPN lists")
    if kind == "access":
        return None
    if kind in ("vpn", "proxy"):
        return Verdict(kind, f"{kind}-name", 0.8, f"a {'VPN' if kind == 'vpn' else 'proxy'} network by name ({org})")
    spread = countries >= SPREAD_MIN_COUNTRIES and size <= SPREAD_MAX
    if kind == "hosting" and (listed >= NAME_LISTED or countries >= 2 or size <= SMALL):
        why = "listed in part" if listed >= NAME_LISTED else f"{countries} countries" if countries >= 2 else "small"
        return Verdict("hosting", "hosting-name", 0.7, f"a hosting network by name ({org}) and {why}")
    if spread and listed > 0:
        return Verdict(
            "hosting", "spread-listed", 0.7, f"{size:,.0f} addresses over {countries} countries, {listed:.1%} listed"
        )
    if size > SPREAD_MAX and countries >= LARGE_SPREAD_COUNTRIES and top <= LARGE_SPREAD_TOP:
        return Verdict(
            "hosting", "spread-large", 0.6, f"{size:,.0f} addresses, {countries} countries, at most {top:.0%} in one"
        )
    if listed >= PARTLY_LISTED and size <= SPREAD_MAX:
        return Verdict("hosting", "partly-listed", 0.6, f"{listed:.0%} of its {size:,.0f} addresses in lists")
    if spread:
        return Verdict("hosting", "spread", WEAK, f"{size:,.0f} addresses spread over {countries} countries")
    return None


def asn_features(
    asn: npt.NDArray[np.uint32],
    sizes: npt.NDArray[np.float64],
    listed: npt.NDArray[np.bool_],
    geo: npt.NDArray[np.uint16],
) -> Features:
    """Per ASN over IPv4 intervals: size, listed share, countries holding >= SPREAD_MIN_SHARE, top share.

    ``asn``, ``sizes``, ``listed`` and ``geo`` are parallel per interval (geo: a country index,
    0 = none)."""
    uniq, inv = np.unique(asn, return_inverse=True)
    total = np.bincount(inv, weights=sizes, minlength=len(uniq)).astype(np.float64)
    hit = np.bincount(inv, weights=sizes * listed, minlength=len(uniq))
    # Space per (ASN, country) pair, then how many countries pass the share threshold.
    ncc = int(geo.max()) + 1 if len(geo) else 1
    pair = inv.astype(np.int64) * ncc + geo.astype(np.int64)
    has_geo = geo != 0
    pu, pinv = np.unique(pair[has_geo], return_inverse=True)
    pspace = np.bincount(pinv, weights=sizes[has_geo], minlength=len(pu))
    owner = pu // ncc
    share = pspace / np.maximum(total[owner], 1.0)
    countries = np.bincount(owner[share >= SPREAD_MIN_SHARE], minlength=len(uniq)).astype(np.int64)
    top = np.zeros(len(uniq), dtype=np.float64)
    np.maximum.at(top, owner, share)
    return Features(uniq.astype(np.uint32), total, hit / np.maximum(total, 1.0), countries, top)


def classify(features: Features, orgs: Sequence[str]) -> dict[int, Verdict]:
    """A verdict for every ASN some rule labels (ASN 0, "no ASN", is never labelled)."""
    f = features
    out: dict[int, Verdict] = {}
    for i, a in enumerate(f.asns.tolist()):
        if a == 0:
            continue
        v = judge(orgs[i], float(f.sizes[i]), float(f.listed[i]), int(f.countries[i]), float(f.top[i]))
        if v is not None:
            out[int(a)] = v
    return out
