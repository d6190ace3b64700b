"""Cloud providers' published regions as a country source: the provider's own geofeed.

AWS (``region``), Google Cloud (``scope``), Azure ServiceTags (``properties.region``) and Oracle
(``regions[].region``) say which region every published prefix belongs to; ``intel/regions.yaml``
says which country each region is in. Together they are the ``provider-region`` country source,
which wins the country vote beside the RFC 8805 geofeeds: a VM in AWS ``ap-east-1`` is in Hong
Kong, whatever the registry (Amazon, US) and the routing origin (US) say.

A prefix listed under a global or empty region is anycast and gets no country; a region missing
from the table gives no country and is named in the source's ``unknown_regions`` (so a new
region is noticed, never guessed); a prefix given two different countries is left out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import cache, partial
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from geowarden.intel.sources.base import SourceData, SourceKind, SourceMeta
from geowarden.intel.sources.lists import Loader, bounds, country, fail, finish, iso_date, read_json, rel

SOURCE = "provider-region"
SOURCES: dict[str, SourceMeta] = {
    SOURCE: SourceMeta(
        name=SOURCE,
        title="Cloud providers' published regions (AWS, Google Cloud, Azure, Oracle) mapped to countries",
        kind=SourceKind.COUNTRY,
        licence="providers' public feeds (no licence stated); region table: geowarden (Apache-2.0)",
        url="https://github.com/geowarden/geowarden/blob/main/src/geowarden/intel/regions.yaml",
    ),
}

#: Regions that are not a place: anycast or provider-wide prefixes.
GLOBAL_REGIONS = frozenset({"", "global"})

#: (network, region) pairs of one provider document.
Pairs = Iterator[tuple[object, str]]


@cache
def region_table() -> dict[str, dict[str, str]]:
    """Provider -> region -> ISO country, from the packaged ``regions.yaml``."""
    text = resources.files("geowarden.intel").joinpath("regions.yaml").read_text(encoding="utf-8")
    raw = yaml.safe_load(text)
    table: dict[str, dict[str, str]] = {}
    for provider, regions in raw.items():
        table[str(provider)] = {}
        for region, cc in regions.items():
            code = country(cc)
            if code is None:
                raise ValueError(f"regions.yaml: {provider} {region}: {cc!r} is not an ISO country code")
            table[str(provider)][str(region).lower()] = code
    return table


def _rows(doc: Any, key: str) -> list[Any]:
    rows = doc.get(key, []) if isinstance(doc, dict) else []
    return rows if isinstance(rows, list) else []


def _aws(doc: Any) -> Pairs:
    for row in [*_rows(doc, "prefixes"), *_rows(doc, "ipv6_prefixes")]:
        if isinstance(row, dict):
            yield row.get("ip_prefix") or row.get("ipv6_prefix"), str(row.get("region", ""))


def _gcp(doc: Any) -> Pairs:
    for row in _rows(doc, "prefixes"):
        if isinstance(row, dict):
            yield row.get("ipv4Prefix") or row.get("ipv6Prefix"), str(row.get("scope", ""))


def _azure(doc: Any) -> Pairs:
    for tag in _rows(doc, "values"):
        props = tag.get("properties") if isinstance(tag, dict) else None
        if isinstance(props, dict) and isinstance(props.get("addressPrefixes"), list):
            for net in props["addressPrefixes"]:
                yield net, str(props.get("region", ""))


def _oracle(doc: Any) -> Pairs:
    for region in _rows(doc, "regions"):
        if isinstance(region, dict):
            for cidr in region.get("cidrs") or []:
                yield (cidr.get("cidr") if isinstance(cidr, dict) else None), str(region.get("region", ""))


def _date(doc: Any) -> str | None:
    if not isinstance(doc, dict):
        return None
    for key in ("createDate", "creationTime", "last_updated_timestamp"):
        if key in doc:
            return iso_date(str(doc[key]))
    return None


#: Provider (key of regions.yaml) -> its file under cloud/ and the reader of its (network, region) pairs.
FEEDS: dict[str, tuple[str, Callable[[Any], Pairs]]] = {
    "aws": ("aws-ip-ranges.json", _aws),
    "gcp": ("google-cloud-ip-ranges.json", _gcp),
    "azure": ("microsoft-azure-ip-ranges.json", _azure),
    "oracle": ("oracle-cloud-ip-ranges.json", _oracle),
}


def _provider_regions(files: list[tuple[str, Path]], directory: Path) -> SourceData:
    table = region_table()
    data = SourceData(meta=SOURCES[SOURCE])
    placed: dict[tuple[int, int], str] = {}
    conflicts: set[tuple[int, int]] = set()
    unknown: set[str] = set()
    dates = []
    for provider, path in files:
        doc = read_json(path, directory)
        if not isinstance(doc, dict):
            raise fail(rel(path, directory), "unexpected format: not a JSON object")
        dates.append(_date(doc))
        regions = table.get(provider, {})
        for net, region in FEEDS[provider][1](doc):
            key = region.strip().lower()
            if key in GLOBAL_REGIONS:
                continue
            cc = regions.get(key)
            if cc is None:
                unknown.add(f"{provider}:{key}")
                data.skipped += 1
                continue
            if not isinstance(net, str):
                data.skipped += 1
                continue
            try:
                span = bounds(net.strip())
            except ValueError:
                data.skipped += 1
                continue
            if placed.setdefault(span, cc) != cc:
                conflicts.add(span)
    for span, cc in placed.items():
        if span in conflicts:
            data.skipped += 1
            continue
        data.add(span[0], span[1], cc)
    data.meta = finish(
        SOURCES[SOURCE],
        directory,
        [p for _, p in files],
        date=max((d for d in dates if d), default=None),
        notes=f"unknown regions: {', '.join(sorted(unknown))}" if unknown else None,
    )
    return data


def loaders(cloud: Path, directory: Path) -> list[Loader]:
    """The ``provider-region`` source over the providers' region-bearing feeds present in ``cloud``."""
    files = [(prov, cloud / fname) for prov, (fname, _read) in FEEDS.items() if (cloud / fname).is_file()]
    return [(SOURCE, partial(_provider_regions, files, directory))] if files else []
