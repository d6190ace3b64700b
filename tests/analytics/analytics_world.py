"""A small, fully known world for the analytics tests, and logs planted in it.

``NETS`` are real-looking networks, each a /16 with a country, an ASN and organisation, and for
some a hosting, VPN or proxy label, as the public sources would say; ``world_sources`` turns
them into intel sources (the ``world_snapshot`` fixture builds a real snapshot from them).
``addr(net, i)`` is the ``i``-th address of a network (``i // 256`` picks the /24), so a test
chooses prefixes as it chooses addresses. ``LogWriter`` writes events as JSON Lines or Parquet.

``keys_scenario`` and ``infra_scenario`` plant shared keys and reseller infrastructure next to
honest heavy users that look like them at first sight; each returns the events and the subjects
that must and must not be found.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from geowarden.intel.sources.base import SourceData, SourceKind, SourceMeta
from helpers import source

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
MIN = 60_000
HOUR = 60 * MIN
DAY = 24 * HOUR

#: name -> (network, country, ASN, organisation, label or None)
NETS: dict[str, tuple[str, str, int, str, str | None]] = {
    "cn_home": ("1.2.0.0/16", "CN", 4134, "Chinanet", None),
    "cn_mobile": ("1.3.0.0/16", "CN", 9808, "China Mobile", None),
    "ru_home": ("2.60.0.0/16", "RU", 12389, "Rostelecom", None),
    "us_home": ("24.0.0.0/16", "US", 7922, "Comcast", None),
    "us_mobile": ("172.56.0.0/16", "US", 21928, "T-Mobile USA", None),
    "de_home": ("5.0.0.0/16", "DE", 3320, "Deutsche Telekom", None),
    "gb_home": ("81.0.0.0/16", "GB", 2856, "British Telecommunications", None),
    "jp_home": ("126.0.0.0/16", "JP", 17676, "SoftBank", None),
    "sg_home": ("116.0.0.0/16", "SG", 9506, "Singtel", None),
    "fr_home": ("90.0.0.0/16", "FR", 3215, "Orange", None),
    "us_cloud": ("3.0.0.0/16", "US", 16509, "Amazon.com", "hosting"),
    "sg_cloud": ("13.0.0.0/16", "SG", 16509, "Amazon.com", "hosting"),
    "jp_cloud": ("18.0.0.0/16", "JP", 16509, "Amazon.com", "hosting"),
    "de_cloud": ("35.0.0.0/16", "DE", 15169, "Google", "hosting"),
    "nl_vpn": ("185.0.0.0/16", "NL", 9009, "M247", "vpn"),
    "us_vpn": ("185.1.0.0/16", "US", 9009, "M247", "vpn"),
    "us_zscaler": ("165.225.0.0/16", "US", 62044, "Zscaler", "proxy"),
}
V6_NET = ("2a00:1450::/32", "DE", 15169, "Google")


def addr(net: str, i: int) -> str:
    """The ``i``-th address of network ``net`` (0 <= i < 65536)."""
    base = NETS[net][0].split("/")[0].split(".")
    return f"{base[0]}.{base[1]}.{i // 256}.{i % 256}"


def prefix(net: str, i: int) -> str:
    base = NETS[net][0].split("/")[0].split(".")
    return f"{base[0]}.{base[1]}.{i // 256}.0/24"


def world_sources() -> list[SourceData]:
    countries = [(n, cc) for n, cc, _, _, _ in NETS.values()] + [(V6_NET[0], V6_NET[1])]
    asns = [(n, (asn, org)) for n, _, asn, org, _ in NETS.values()] + [(V6_NET[0], (V6_NET[2], V6_NET[3]))]
    out = [source("dbip-country", SourceKind.COUNTRY, countries), source("dbip-asn", SourceKind.ASN, asns)]
    for label, name in (("hosting", "aws"), ("vpn", "vpn-exits"), ("proxy", "zscaler")):
        nets = [(n, (label, org)) for n, _, _, org, lab in NETS.values() if lab == label]
        out.append(source(name, SourceKind.LABEL, nets))
    out.append(
        SourceData(meta=SourceMeta(name="x4bnet-hosting-asn", title="asn", kind=SourceKind.ASN_LABEL, licence="t"))
    )
    return out


def event(ts_ms: int, account: str, ip: str, key: str | None = None, **extra: Any) -> dict[str, Any]:
    """One log event (``request_id`` is filled in by ``LogWriter``)."""
    return {"ts": ts_ms, "account_id": account, "api_key_id": key or f"key-{account}", "ip": ip, **extra}


class LogWriter:
    """Numbers request ids and writes events as JSON Lines (optionally gzipped) or Parquet."""

    def __init__(self) -> None:
        self.n = 0

    def _ids(self, rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for r in rows:
            self.n += 1
            out.append({"request_id": f"r{self.n}", **r})
        return out

    def jsonl(self, path: Path, rows: Iterable[dict[str, Any]]) -> Path:
        text = "".join(json.dumps(r) + "\n" for r in self._ids(rows))
        if path.suffix == ".gz":
            import gzip

            path.write_bytes(gzip.compress(text.encode()))
        else:
            path.write_text(text, encoding="utf-8")
        return path

    def parquet(self, path: Path, rows: Iterable[dict[str, Any]], schema: Any = None) -> Path:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(self._ids(rows), schema=schema), path)
        return path


@dataclass
class Planted:
    """Events, and the subjects an analysis must find (``planted``) and must not (``honest``)."""

    events: list[dict[str, Any]] = field(default_factory=list)
    planted: set[str] = field(default_factory=set)
    honest: set[str] = field(default_factory=set)

    def __add__(self, other: Planted) -> Planted:
        return Planted(self.events + other.events, self.planted | other.planted, self.honest | other.honest)


def _client(tz: str | None, lang: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {"user_agent": "sdk/1.0"}
    if tz:
        out["client_tz"] = tz
    if lang:
        out["accept_language"] = lang
    return out


def keys_scenario(seed: int = 7) -> Planted:
    """Two planted shared keys; seven honest heavy users that share some of their traits."""
    rng = random.Random(seed)
    p = Planted()
    bucket = 5 * MIN

    def add(ts: int, account: str, key: str, net: str, host: int, tz: str | None, lang: str | None = None) -> None:
        p.events.append(event(ts, account, addr(net, host), key, **_client(tz, lang)))

    # planted: a key resold to end users in CN, used directly from Chinese networks and through
    # relays in three other countries, in the same minutes
    for b in range(200):
        t = T0 + b * 12 * bucket
        for j, net in enumerate(("cn_home", "us_cloud", "sg_cloud", "jp_home")):
            host = rng.randrange(0, 40 * 256) if net in ("cn_home", "jp_home") else rng.randrange(0, 2 * 256)
            tz = "Asia/Shanghai" if net == "cn_home" or rng.random() < 0.5 else "UTC"
            add(t + j * 20_000, "acct-resold", "k-resold", net, host, tz, "zh-CN,zh;q=0.9")
    p.planted.add("k-resold")
    # planted: a key behind relays only (four clouds, a dozen /24s); the clients behind look Chinese
    for b in range(150):
        t = T0 + 3_600_000 + b * 15 * bucket
        for j, net in enumerate(("us_cloud", "sg_cloud", "jp_cloud", "de_cloud")):
            host = 10 * 256 + rng.randrange(0, 3 * 256)
            tz = "Asia/Shanghai" if rng.random() < 0.6 else None
            add(t + j * 30_000, "acct-relay", "k-relay", net, host, tz, "zh-CN" if tz else None)
    p.planted.add("k-relay")
    # honest: one company's key, a big team behind its secure web gateway (three /24s)
    for i in range(400):
        t = T0 + (i % 2) * DAY + 13 * HOUR + rng.randrange(0, 9 * HOUR)
        add(t, "acct-team", "k-team", "us_zscaler", rng.randrange(0, 3 * 256), "America/New_York", "en-US")
    # honest: automation in one cloud region, around the clock
    for i in range(500):
        add(T0 + i * 345_600 // 2, "acct-auto", "k-auto", "us_cloud", 20 * 256 + rng.randrange(0, 64), "UTC")
    # honest: a job balanced over two cloud regions at once
    for i in range(300):
        net = "us_cloud" if i % 2 else "sg_cloud"
        add(T0 + i * 4 * MIN, "acct-2reg", "k-2reg", net, 30 * 256 + (i % 2), "UTC")
    # honest: a traveller: Germany, then Japan, then the US, never two at once
    for d, (net, tz) in enumerate(
        (("de_home", "Europe/Berlin"), ("jp_home", "Asia/Tokyo"), ("us_home", "America/Chicago"))
    ):
        for i in range(40):
            add(T0 + d * DAY + 8 * HOUR + i * 15 * MIN, "acct-trav", "k-trav", net, 50 * 256 + d, tz, "de-DE")
    # honest: a global company with offices in five countries on one key, all day long
    offices = (("us_home", "America/New_York"), ("de_home", "Europe/Berlin"), ("gb_home", "Europe/London"),
               ("jp_home", "Asia/Tokyo"), ("fr_home", "Europe/Paris"))  # fmt: skip
    for b in range(120):
        t = T0 + b * 3 * bucket
        for j, (net, tz) in enumerate(offices):
            add(t + j * 10_000, "acct-global", "k-global", net, 60 * 256 + rng.randrange(0, 512), tz, "en-US")
    # honest for this analysis (not shared): one person in China on a home line
    for i in range(100):
        add(T0 + i * 20 * MIN, "acct-cn", "k-cn", "cn_home", 70 * 256 + 5, "Asia/Shanghai", "zh-CN")
    # not shared: one person in Russia on a VPN that changes exit about every hour
    for i in range(80):
        net = "nl_vpn" if (i // 6) % 2 else "us_vpn"
        add(T0 + i * 10 * MIN, "acct-hop", "k-hop", net, 80 * 256 + (i // 6) % 3, "Europe/Moscow", "ru-RU")
    p.honest |= {"k-team", "k-auto", "k-2reg", "k-trav", "k-global", "k-cn", "k-hop"}
    return p


def infra_scenario(seed: int = 11) -> Planted:
    """A reseller's relay /24 and a VPN provider full of restricted clients (planted); a secure
    web gateway, a mobile carrier's NAT, an office, expats at home and cloud jobs (honest)."""
    rng = random.Random(seed)
    p = Planted()

    def add(account: str, net: str, host: int, tz: str | None, lang: str | None, n: int = 10) -> None:
        for _ in range(n):
            ts = T0 + rng.randrange(0, DAY)
            p.events.append(event(ts, account, addr(net, host), **_client(tz, lang)))

    for i in range(30):  # unrelated CN accounts behind one US cloud /24
        add(f"acct-relay-{i:02d}", "us_cloud", 7 * 256 + rng.randrange(1, 255), "Asia/Shanghai", "zh-CN,zh;q=0.9")
    p.planted.add(prefix("us_cloud", 7 * 256))
    for i in range(25):  # RU clients spread over a VPN provider's exits, two or three per /24
        add(f"acct-vpnru-{i:02d}", "nl_vpn", (i % 10) * 256 + 9, "Europe/Moscow", "ru-RU")
    for i in range(5):
        add(f"acct-vpnus-{i:02d}", "us_vpn", 256 + i, "America/Denver", "en-US")
    p.planted.add("AS9009")
    for i in range(40):  # employees of many companies behind one secure web gateway
        add(f"acct-zs-{i:02d}", "us_zscaler", 256 + rng.randrange(0, 255), "America/Los_Angeles", "en-US")
    p.honest |= {prefix("us_zscaler", 256), "AS62044"}
    for i in range(60):  # a mobile carrier's NAT: every /24 is crowded
        add(f"acct-mob-{i:02d}", "us_mobile", (i % 3) * 256 + rng.randrange(0, 4), "America/Chicago", "en-US", 5)
    p.honest |= {prefix("us_mobile", k * 256) for k in range(3)} | {"AS21928"}
    for i in range(30):  # one office
        add(f"acct-office-{i:02d}", "us_home", 3 * 256 + rng.randrange(0, 16), "America/New_York", "en-US")
    p.honest |= {prefix("us_home", 3 * 256), "AS7922"}
    for i in range(12):  # expats at home: Chinese habits, American lines, one each
        add(f"acct-expat-{i:02d}", "us_home", (100 + i) * 256 + 7, "Asia/Shanghai", "zh-CN")
    for i in range(10):  # cloud automation, one /24 each
        add(f"acct-job-{i:02d}", "us_cloud", (40 + i) * 256 + 3, "UTC", None, 30)
    p.honest.add("AS16509")
    return p
