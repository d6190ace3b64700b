"""The real world the simulator draws from: addresses, cities, round trips, zones, languages.

- **Addresses** come from the intel snapshot's IPv4 interval table (``v4_starts``/``v4_rows``
  and the answer columns): a ``Selector`` (countries, labels required or forbidden, ASNs,
  provider) picks intervals, and addresses are drawn uniformly over the selected address
  space, vectorised (cumulative sizes + ``searchsorted``), so that a sampled address is placed
  by the snapshot exactly where the persona says it is.
- **Cities** are WonderNetwork's ping servers (id, coordinates, country); **round trips**
  between them are WonderNetwork's measured averages (``pings.csv``; real inter-city pings),
  read from the directory given (the CLI passes ``GEOWARDEN_PINGS``) or
  ``../shared/data/latency/wondernetwork``. Without that file
  a fibre model (great-circle distance at 2/3 c, 1.6 route inflation, 4 ms) stands in and
  ``rtt_source`` says so.
- **Time zones** are real IANA zones (the nearest ``zone.tab`` zone of the city's country, from
  the ``tzdata`` package); **languages** are Accept-Language headers as browsers send them.
"""

from __future__ import annotations

import csv
import functools
import importlib.resources
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from geowarden.errors import ConfigError
from geowarden.intel.snapshot import Snapshot
from geowarden.latency.pops import POPS as EDGE_POPS

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

#: WonderNetwork server id, city, ISO country, latitude, longitude.
CITIES: tuple[tuple[int, str, str, float, float], ...] = (
    (114, "Manhattan", "US", 40.7903, -73.9597),
    (16, "Washington", "US", 38.9694, -77.3864),
    (18, "Atlanta", "US", 33.7489, -84.3881),
    (12, "Dallas", "US", 32.7828, -96.8039),
    (71, "Denver", "US", 39.7392, -104.9842),
    (37, "LosAngeles", "US", 34.0522, -118.2428),
    (23, "SanJose", "US", 37.3542, -121.9542),
    (82, "Portland", "US", 45.5236, -122.675),
    (14, "Boston", "US", 42.3583, -71.0603),
    (15, "Miami", "US", 25.765, -80.2),
    (2, "Toronto", "CA", 43.6481, -79.4042),
    (53, "Vancouver", "CA", 49.2505, -123.1119),
    (11, "London", "GB", 51.5171, -0.1062),
    (77, "Manchester", "GB", 53.48, -2.24),
    (29, "Frankfurt", "DE", 50.1167, 8.6833),
    (210, "Munich", "DE", 48.1333, 11.5667),
    (203, "Hamburg", "DE", 53.5653, 10.0014),
    (4, "Paris", "FR", 48.8742, 2.347),
    (240, "Lyon", "FR", 45.7581, 4.7651),
    (198, "Rotterdam", "NL", 51.9167, 4.5),
    (17, "Barcelona", "ES", 41.3857, 2.1699),
    (32, "Warsaw", "PL", 52.23, 21.0108),
    (27, "Milan", "IT", 45.464, 9.1916),
    (10, "Stockholm", "SE", 59.32, 18.09),
    (35, "Zurich", "CH", 47.369, 8.538),
    (67, "Bucharest", "RO", 44.4167, 26.1),
    (66, "Istanbul", "TR", 41.0128, 28.9744),
    (6, "Tokyo", "JP", 35.6833, 139.7667),
    (159, "Sapporo", "JP", 43.0667, 141.35),
    (31, "Singapore", "SG", 1.3667, 103.75),
    (36, "Malaysia", "MY", 3.1333, 101.6833),
    (65, "Hanoi", "VN", 21.0409, 105.7981),
    (222, "Bangalore", "IN", 12.9716, 77.5946),
    (111, "Pune", "IN", 18.5236, 73.8478),
    (107, "Sydney", "AU", -33.8683, 151.2086),
    (125, "SaoPaulo", "BR", -23.55, -46.6333),
    (33, "Mexico", "MX", 19.4333, -99.1333),
    (133, "Dubai", "AE", 24.95, 55.3333),
    (180, "Shanghai", "CN", 31.2, 121.5),
    (221, "Shenzhen", "CN", 22.5431, 114.0579),
    (84, "Hangzhou", "CN", 30.25, 120.1667),
    (72, "HongKong", "HK", 22.3, 114.1667),
    (9, "Moscow", "RU", 55.7517, 37.6178),
    (149, "StPetersburg", "RU", 59.95, 30.3),
    (176, "Novosibirsk", "RU", 55.0167, 82.9333),
)

#: Edge locations (pop code -> city name in ``CITIES``): where the API terminates TCP
#: (``latency.pops.POPS``, whose coordinates are those cities').
POPS: dict[str, str] = {code: pop.city for code, pop in EDGE_POPS.items()}

#: Accept-Language headers as sent by browsers set to the country's main language.
LANGUAGES: dict[str, str] = {
    "US": "en-US,en;q=0.9",
    "CA": "en-CA,en;q=0.9,fr-CA;q=0.7",
    "GB": "en-GB,en;q=0.9",
    "DE": "de-DE,de;q=0.9,en;q=0.8",
    "FR": "fr-FR,fr;q=0.9,en;q=0.7",
    "NL": "nl-NL,nl;q=0.9,en;q=0.8",
    "ES": "es-ES,es;q=0.9,en;q=0.6",
    "PL": "pl-PL,pl;q=0.9,en;q=0.7",
    "IT": "it-IT,it;q=0.9,en;q=0.7",
    "SE": "sv-SE,sv;q=0.9,en;q=0.8",
    "CH": "de-CH,de;q=0.9,fr;q=0.7,en;q=0.6",
    "RO": "ro-RO,ro;q=0.9,en;q=0.7",
    "TR": "tr-TR,tr;q=0.9,en;q=0.6",
    "JP": "ja-JP,ja;q=0.9,en;q=0.6",
    "SG": "en-SG,en;q=0.9,zh-SG;q=0.6",
    "MY": "ms-MY,ms;q=0.9,en;q=0.8",
    "VN": "vi-VN,vi;q=0.9,en;q=0.6",
    "IN": "en-IN,en;q=0.9,hi;q=0.8",
    "AU": "en-AU,en;q=0.9",
    "BR": "pt-BR,pt;q=0.9,en;q=0.6",
    "MX": "es-MX,es;q=0.9,en;q=0.6",
    "AE": "ar-AE,ar;q=0.9,en;q=0.8",
    "CN": "zh-CN,zh;q=0.9",
    "HK": "zh-HK,zh;q=0.9,en;q=0.7",
    "RU": "ru-RU,ru;q=0.9,en;q=0.6",
}

#: Mobile carriers' ASNs by country (CGNAT: many users share few addresses).
MOBILE_ASNS: dict[str, tuple[int, ...]] = {
    "US": (21928, 22394, 6167, 20057),
    "DE": (3209, 6805, 3320),
    "GB": (12576, 25135, 206067),
    "FR": (3215, 51207, 15557),
    "IN": (55836, 45609, 38266),
    "JP": (9605, 2516, 17676),
    "BR": (26599, 28573, 26615),
    "ES": (12430, 3352),
    "NL": (33915, 1136),
}

#: Browser / SDK user agents.
UA_BROWSER = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 "
    "Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
)
UA_SDK = ("openai-python/1.30.1", "anthropic-python/0.25.0", "node-fetch/3.3.2", "curl/8.5.0", "python-httpx/0.27.0")

MODELS = ("large-2", "large-2", "medium-2", "medium-2", "medium-2", "small-2")

FLAG_NAMES = ("hosting", "vpn", "tor", "proxy", "relay", "reserved")


@dataclass(frozen=True, slots=True)
class Selector:
    """Which part of the address space to draw from. Empty tuples mean "any"."""

    countries: tuple[str, ...] = ()
    not_countries: tuple[str, ...] = ()
    any_flags: tuple[str, ...] = ()  # at least one of these labels
    no_flags: tuple[str, ...] = ("hosting", "vpn", "tor", "proxy", "relay", "reserved")
    asns: tuple[int, ...] = ()
    provider: str | None = None  # substring of the provider name, case-insensitive

    def relaxed(self) -> list[Selector]:
        """Looser selectors to fall back to when a snapshot (a small test one) has nothing."""
        out = [self]
        if self.asns or self.provider:
            out.append(Selector(self.countries, self.not_countries, self.any_flags, self.no_flags))
        if self.countries:
            out.append(Selector((), self.not_countries, self.any_flags, self.no_flags))
        out.append(Selector((), (), self.any_flags, ("reserved",)))
        if self.any_flags:  # a snapshot without such labels at all (the default one has no proxies)
            out.append(Selector(self.countries, (), (), ("reserved",)))
            out.append(Selector((), (), (), ("reserved",)))
        return out


@dataclass(slots=True)
class AddressSpace:
    """The snapshot's IPv4 intervals with their answers, ready for vectorised sampling."""

    snapshot: Snapshot
    starts: IntArray
    sizes: IntArray
    country: npt.NDArray[np.str_]
    asn: npt.NDArray[np.uint32]
    flags: npt.NDArray[np.uint8]
    provider_id: npt.NDArray[Any]
    fallbacks: list[str] = field(default_factory=list)
    _cache: dict[Selector, tuple[IntArray, IntArray]] = field(default_factory=dict)
    _in_country: dict[str, npt.NDArray[np.bool_]] = field(default_factory=dict)
    _provider_ids: dict[str, npt.NDArray[np.int64]] = field(default_factory=dict)

    @classmethod
    def of(cls, snap: Snapshot) -> AddressSpace:
        starts = snap.v4_starts.astype(np.int64)
        sizes: IntArray = np.diff(np.append(starts, np.int64(2**32))).astype(np.int64)
        rows = snap.v4_rows.astype(np.int64)
        cols = snap.row_columns
        return cls(
            snapshot=snap,
            starts=starts,
            sizes=sizes,
            country=snap.country_table[cols["country"][rows]],
            asn=cols["asn"][rows],
            flags=cols["flags"][rows],
            provider_id=cols["provider"][rows],
        )

    def _mask(self, sel: Selector) -> npt.NDArray[np.bool_]:
        bits = self.snapshot.flag_bits
        m = self.sizes > 0
        if sel.countries:
            m &= functools.reduce(np.logical_or, (self._country(c) for c in sel.countries))
        else:
            m &= self.country != ""
        if sel.not_countries:
            m &= ~functools.reduce(np.logical_or, (self._country(c) for c in sel.not_countries))
        if sel.any_flags:
            want = functools.reduce(lambda a, b: a | b, (bits[f] for f in sel.any_flags), 0)
            m &= (self.flags & want) != 0
        if sel.no_flags:
            bad = functools.reduce(lambda a, b: a | b, (bits[f] for f in sel.no_flags), 0)
            m &= (self.flags & bad) == 0
        if sel.asns:
            m &= np.isin(self.asn, np.array(sel.asns, dtype=np.uint32))
        if sel.provider:
            needle = sel.provider.lower()
            if needle not in self._provider_ids:
                ids = [i for i, s in enumerate(self.snapshot.string_table) if needle in str(s).lower()]
                self._provider_ids[needle] = np.array(ids or [-1], dtype=np.int64)
            m &= np.isin(self.provider_id, self._provider_ids[needle])
        return m

    def _country(self, cc: str) -> npt.NDArray[np.bool_]:
        """The intervals placed in ``cc`` (cached: every persona asks for the same few)."""
        hit = self._in_country.get(cc)
        if hit is None:
            hit = self._in_country[cc] = self.country == cc
        return hit

    def _table(self, sel: Selector) -> tuple[IntArray, IntArray]:
        """(starts, cumulative sizes) of the selected intervals, falling back when empty."""
        hit = self._cache.get(sel)
        if hit is not None:
            return hit
        for i, s in enumerate(sel.relaxed()):
            m = self._mask(s)
            if m.any():
                if i:
                    self.fallbacks.append(f"{sel} -> {s}")
                out = (self.starts[m], np.cumsum(self.sizes[m]))
                self._cache[sel] = out
                return out
        raise ConfigError(f"the intel snapshot has no IPv4 address matching {sel}")

    def sample(self, sel: Selector, n: int, rng: np.random.Generator) -> IntArray:
        """``n`` addresses (as integers) drawn uniformly from the selected address space."""
        starts, cum = self._table(sel)
        u = rng.integers(0, int(cum[-1]), size=n, dtype=np.int64)
        j = np.searchsorted(cum, u, side="right")
        before = np.where(j > 0, cum[np.maximum(j - 1, 0)], 0)
        out: IntArray = starts[j] + (u - before)
        return out

    def sample_prefixes(
        self,
        sel: Selector,
        prefixes: int,
        n: int,
        rng: np.random.Generator,
        seed_rng: np.random.Generator | None = None,
    ) -> IntArray:
        """``n`` addresses inside ``prefixes`` networks (/24 or smaller) of the selected space: an
        office's egress, a relay's servers. Each network is the /24 around an address drawn by
        ``sample`` (with ``seed_rng`` when given: a pool shared by several entries), cut to the
        snapshot interval that address is in (so its labels hold)."""
        seeds = self.sample(sel, prefixes, seed_rng if seed_rng is not None else rng)
        starts, cum = self._table(sel)
        j = np.searchsorted(starts, seeds, side="right") - 1
        size = cum[j] - np.where(j > 0, cum[np.maximum(j - 1, 0)], 0)
        base = seeds & ~np.int64(255)
        lo = np.maximum(starts[j], base + 1)
        hi = np.minimum(starts[j] + size, base + 255)
        lo, hi = np.where(hi > lo, lo, seeds), np.where(hi > lo, hi, seeds + 1)
        k = rng.integers(0, prefixes, size=n)
        out: IntArray = lo[k] + (rng.random(n) * (hi[k] - lo[k])).astype(np.int64)
        return out


def ip_strings(values: IntArray) -> list[str]:
    """Dotted-quad text of IPv4 integers (used on subject/client pools, not per event)."""
    v = values.astype(np.int64)
    a, b, c, d = (v >> 24) & 255, (v >> 16) & 255, (v >> 8) & 255, v & 255
    return [f"{w}.{x}.{y}.{z}" for w, x, y, z in zip(a.tolist(), b.tolist(), c.tolist(), d.tolist(), strict=True)]


# -- cities, round trips ------------------------------------------------------------------


def _default_pings_dir() -> Path | None:
    """``../shared/data/latency/wondernetwork`` beside the working directory or the source, if there."""
    here = Path(__file__).resolve()
    for base in (Path.cwd(), *here.parents):
        cand = base.parent / "shared" / "data" / "latency" / "wondernetwork"
        if (cand / "pings.csv").is_file():
            return cand
    return None


def _haversine_km(lat1: FloatArray, lon1: FloatArray, lat2: FloatArray, lon2: FloatArray) -> FloatArray:
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp, dl = p2 - p1, np.radians(lon2 - lon1)
    h = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    out: FloatArray = 2 * 6371.0 * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))
    return out


@dataclass(frozen=True, slots=True)
class Geo:
    """Cities, the pops, and the city-to-city RTT matrix (ms)."""

    names: tuple[str, ...]
    country: npt.NDArray[np.str_]
    lat: FloatArray
    lon: FloatArray
    rtt: FloatArray  # [city, city] average RTT in ms
    jitter: FloatArray  # [city, city] mean deviation in ms
    pop_codes: tuple[str, ...]
    pop_city: IntArray  # city index per pop
    nearest_pop: IntArray  # pop index per city (lowest RTT)
    rtt_source: str

    def cities_in(self, cc: str) -> IntArray:
        out: IntArray = np.flatnonzero(self.country == cc).astype(np.int64)
        return out

    def city(self, name: str) -> int:
        return self.names.index(name)


@functools.lru_cache(maxsize=4)
def load_geo(pings_dir: Path | None = None) -> Geo:
    names = tuple(c[1] for c in CITIES)
    ids = np.array([c[0] for c in CITIES])
    lat = np.array([c[3] for c in CITIES])
    lon = np.array([c[4] for c in CITIES])
    dist = _haversine_km(lat[:, None], lon[:, None], lat[None, :], lon[None, :])
    model = 4.0 + 2.0 * dist * 1.6 / 200.0  # fibre: 200 km/ms, 1.6x route inflation
    rtt, jitter, source = model.copy(), np.full_like(model, 1.0), "model"
    directory = pings_dir or _default_pings_dir()
    if directory is not None and (directory / "pings.csv").is_file():
        pos = {int(i): k for k, i in enumerate(ids)}
        seen = np.zeros_like(model, dtype=bool)
        with (directory / "pings.csv").open(encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                a, b = pos.get(int(row["source"])), pos.get(int(row["destination"]))
                if a is None or b is None:
                    continue
                avg, mdev = float(row["avg"]), float(row["mdev"] or 0.0)
                if not math.isfinite(avg) or avg <= 0:
                    continue
                for x, y in ((a, b), (b, a)):
                    if not seen[x, y] or x == a:
                        rtt[x, y], jitter[x, y], seen[x, y] = avg, max(mdev, 0.2), True
        np.fill_diagonal(seen, True)
        np.fill_diagonal(rtt, 2.0)  # within one metro area
        source = f"WonderNetwork pings ({directory.name}); fibre model for {int((~seen).sum())} missing pairs"
    pop_codes = tuple(POPS)
    pop_city = np.array([names.index(POPS[p]) for p in pop_codes], dtype=np.int64)
    nearest = np.argmin(rtt[:, pop_city], axis=1).astype(np.int64)
    return Geo(
        names,
        np.array([c[2] for c in CITIES], dtype="<U2"),
        lat,
        lon,
        rtt,
        jitter,
        pop_codes,
        pop_city,
        nearest,
        source,
    )


# -- time zones -------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _zone_tab() -> list[tuple[str, float, float, str]]:
    """(country, lat, lon, zone) from the tz database's zone.tab (tzdata package, else the system)."""
    text = ""
    try:
        text = importlib.resources.files("tzdata").joinpath("zoneinfo").joinpath("zone.tab").read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError, OSError):
        for d in ("/usr/share/zoneinfo",):
            p = Path(d) / "zone.tab"
            if p.is_file():
                text = p.read_text(encoding="utf-8")
    out: list[tuple[str, float, float, str]] = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) < 3:
            continue
        out.append((parts[0], *_iso6709(parts[1]), parts[2]))
    return out


def _iso6709(text: str) -> tuple[float, float]:
    """``+3114+12128`` or ``+404251-0740023`` -> (lat, lon) in degrees."""
    cut = max(text.rfind("+"), text.rfind("-"))

    def deg(s: str, w: int) -> float:
        sign = -1.0 if s[0] == "-" else 1.0
        d, rest = s[1 : 1 + w], s[1 + w :]
        mins = float(rest[:2]) if rest else 0.0
        secs = float(rest[2:4]) if len(rest) >= 4 else 0.0
        return sign * (float(d) + mins / 60 + secs / 3600)

    return deg(text[:cut], 2), deg(text[cut:], 3)


#: The IANA zone of each city where the nearest zone.tab point is not it.
CITY_ZONES: dict[str, str] = {
    "Atlanta": "America/New_York",
    "Dallas": "America/Chicago",
    "Miami": "America/New_York",
    "Portland": "America/Los_Angeles",
    "Frankfurt": "Europe/Berlin",
    "Munich": "Europe/Berlin",
}


@functools.lru_cache(maxsize=256)
def zone_of_city(cc: str, lat: float, lon: float, name: str = "") -> str:
    """The IANA zone of a city: ``CITY_ZONES``, else the zone.tab zone of ``cc`` nearest it."""
    if name in CITY_ZONES:
        return CITY_ZONES[name]
    rows = [r for r in _zone_tab() if r[0] == cc]
    if not rows:
        return "UTC"
    best = min(rows, key=lambda r: (r[1] - lat) ** 2 + ((r[2] - lon) * math.cos(math.radians(lat))) ** 2)
    return best[3]


def city_zones(geo: Geo) -> list[str]:
    return [
        zone_of_city(str(geo.country[i]), float(geo.lat[i]), float(geo.lon[i]), geo.names[i])
        for i in range(len(geo.names))
    ]


def language(cc: str) -> str:
    return LANGUAGES.get(cc, "en-US,en;q=0.9")
