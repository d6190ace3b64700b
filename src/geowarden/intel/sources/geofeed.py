"""Providers' RFC 8805 geofeeds: where an operator itself says each of its prefixes is.

Under ``cloud/`` of the build directory, ``prefix,CC,region,city,postal`` files: DigitalOcean
``digitalocean.csv``, Linode ``linode.txt``, Vultr's JSON rendering ``vultr-geofeed.json``
(``subnets[].ip_prefix/alpha2code``), and Apple's iCloud Private Relay egress list
``egress-ip-ranges.csv`` (the same CSV form; ``intel update`` fetches it). Each is a label source
under the provider's name (``hosting``; ``relay`` for Apple's egress), and together they are also
the ``geofeed`` country source: the operator's own statement of where each prefix is (for the
relay, the country the user is in). The providers' other published ranges are in :mod:`.cloud`.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from geowarden.intel.sources.base import SourceData, SourceKind, SourceMeta
from geowarden.intel.sources.lists import (
    Loader,
    add_networks,
    bounds,
    country,
    fail,
    finish,
    iso_date,
    json_list,
    read_json,
    read_text,
    rel,
)

_FEED_LICENCE = "provider's public feed (no licence stated)"

#: Source name -> geofeed file, provider name, title, url of the original.
_GEOFEEDS = {
    "apple-relay": (
        "egress-ip-ranges.csv",
        "Apple iCloud Private Relay",
        "iCloud Private Relay egress ranges with the users' country (RFC 8805 form)",
        "https://mask-api.icloud.com/egress-ip-ranges.csv",
    ),
    "digitalocean": (
        "digitalocean.csv",
        "DigitalOcean",
        "DigitalOcean geofeed (RFC 8805)",
        "https://digitalocean.com/geo/google.csv",
    ),
    "linode": (
        "linode.txt",
        "Linode",
        "Linode (Akamai) geofeed (RFC 8805)",
        "https://geoip.linode.com/",
    ),
    "vultr": (
        "vultr-geofeed.json",
        "Vultr",
        "Vultr geofeed (RFC 8805, JSON)",
        "https://geofeed.constant.com/?json",
    ),
}

#: Geofeeds whose ranges are not hosting: the label they carry.
_LABEL = {"apple-relay": "relay"}

SOURCES: dict[str, SourceMeta] = {
    **{
        name: SourceMeta(name=name, title=title, kind=SourceKind.LABEL, licence=_FEED_LICENCE, url=url)
        for name, (_f, _p, title, url) in _GEOFEEDS.items()
    },
    "geofeed": SourceMeta(
        name="geofeed",
        title="Providers' self-published geofeeds (RFC 8805): DigitalOcean, Linode, Vultr, Apple relay egress",
        kind=SourceKind.COUNTRY,
        licence="providers' public geofeeds (no licence stated)",
        url="https://datatracker.ietf.org/doc/html/rfc8805",
    ),
}

#: One geofeed row: (network text, country code or None).
GeofeedRow = tuple[str, str | None]


def read_geofeed(path: Path, directory: Path) -> tuple[list[GeofeedRow], int, str | None]:
    """Rows of a geofeed (RFC 8805 CSV, or Vultr's JSON form), malformed rows, and its date."""
    if path.suffix == ".json":
        doc = read_json(path, directory)
        try:
            subnets = json_list(doc, "subnets")
        except ValueError as exc:
            raise fail(rel(path, directory), f"unexpected format: {exc}") from exc
        rows: list[GeofeedRow] = []
        bad = 0
        for sub in subnets:
            if isinstance(sub, dict) and isinstance(sub.get("ip_prefix"), str):
                rows.append((sub["ip_prefix"].strip(), country(sub.get("alpha2code"))))
            else:
                bad += 1
        return rows, bad, iso_date(str(doc.get("updated", "")))
    rows, bad, date = [], 0, None
    for raw in read_text(path, directory).splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            if "modified" in line.lower() or "updated" in line.lower():
                date = date or iso_date(line)
            continue
        fields = line.split(",")
        if len(fields) < 2:
            bad += 1
            continue
        rows.append((fields[0].strip(), country(fields[1])))
    return rows, bad, date


def _geofeed_label(name: str, path: Path, directory: Path) -> SourceData:
    rows, bad, date = read_geofeed(path, directory)
    data = SourceData(meta=finish(SOURCES[name], directory, [path], date=date), skipped=bad)
    label = _LABEL.get(name, "hosting")
    if add_networks(data, [r[0] for r in rows], (label, _GEOFEEDS[name][1])) == 0 and bad:
        raise fail(rel(path, directory), f"no valid geofeed row ({data.skipped} bad rows)")
    return data


def _geofeed_country(files: list[Path], directory: Path) -> SourceData:
    data = SourceData(meta=SOURCES["geofeed"])
    dates = []
    for path in files:
        rows, bad, date = read_geofeed(path, directory)
        data.skipped += bad
        if date:
            dates.append(date)
        for net, cc in rows:
            if cc is None:
                data.skipped += 1  # a row without a (valid) country says nothing about where
                continue
            try:
                first, last = bounds(net)
            except ValueError:
                data.skipped += 1
                continue
            data.add(first, last, cc)
    data.meta = finish(SOURCES["geofeed"], directory, files, date=max(dates, default=None))
    return data


def loaders(cloud: Path, directory: Path) -> list[Loader]:
    """The geofeeds present in ``cloud`` (under ``directory``): one label source each, then the
    ``geofeed`` country source over all of them."""
    out: list[Loader] = []
    feeds = []
    for name, (fname, *_rest) in _GEOFEEDS.items():
        path = cloud / fname
        if path.is_file():
            feeds.append(path)
            out.append((name, partial(_geofeed_label, name, path, directory)))
    if feeds:
        out.append(("geofeed", partial(_geofeed_country, feeds, directory)))
    return out
