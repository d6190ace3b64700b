"""Cloud, CDN and hosting providers' own published ranges, in the providers' formats.

Under ``cloud/`` of the build directory: AWS ``aws-ip-ranges.json``, Google Cloud
``google-cloud-ip-ranges.json``, Azure ServiceTags ``microsoft-azure-ip-ranges.json``, Oracle
``oracle-cloud-ip-ranges.json``, GitHub ``github-ip-ranges.json`` (its meta API: every list of
CIDRs), Fastly ``fastly-ip-ranges.json``, Zscaler ``zscaler-cloud-ip-ranges.json``, and the
Akamai / Cloudflare ``*-v{4,6}-ip-ranges.txt`` lists. Each is a ``label`` source, ``hosting``
with the provider's name, except Zscaler: a security proxy cloud, labelled ``proxy``.

The rest of ``cloud/`` has its own modules: the providers' RFC 8805 geofeeds in :mod:`.geofeed`,
the regions of the AWS, Google Cloud, Azure and Oracle feeds as a country source in
:mod:`.regions`, the community-collected per-provider lists (``by-provider/``, ``more/``) in
:mod:`.ranges`.
:data:`SOURCES` and :func:`loaders` cover the whole of ``cloud/``, in that order.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from pathlib import Path
from typing import Any

from geowarden.intel.sources.base import SourceData, SourceKind, SourceMeta
from geowarden.intel.sources.geofeed import SOURCES as GEOFEED_SOURCES
from geowarden.intel.sources.geofeed import loaders as geofeed_loaders
from geowarden.intel.sources.lists import (
    Loader,
    add_list_file,
    add_networks,
    fail,
    finish,
    iso_date,
    json_list,
    read_json,
    rel,
)
from geowarden.intel.sources.ranges import SOURCES as RANGES_SOURCES
from geowarden.intel.sources.ranges import loaders as ranges_loaders
from geowarden.intel.sources.regions import SOURCES as REGION_SOURCES
from geowarden.intel.sources.regions import loaders as region_loaders

CLOUD_DIR = Path("cloud")

_FEED_LICENCE = "provider's public feed (no licence stated)"


def _meta(
    name: str,
    title: str,
    url: str | None,
    licence: str = _FEED_LICENCE,
    kind: SourceKind = SourceKind.LABEL,
) -> SourceMeta:
    return SourceMeta(name=name, title=title, kind=kind, licence=licence, url=url)


def _items(rows: list[Any], key: str) -> list[object]:
    """``row[key]`` of each row (a row without it is passed on as None, counted as bad)."""
    return [row.get(key) if isinstance(row, dict) else None for row in rows]


def _aws(doc: Any) -> tuple[list[object], str | None]:
    v4 = _items(json_list(doc, "prefixes"), "ip_prefix")
    v6 = _items(doc.get("ipv6_prefixes", []), "ipv6_prefix")
    return v4 + v6, iso_date(str(doc.get("createDate", "")))


def _gcp(doc: Any) -> tuple[list[object], str | None]:
    rows = json_list(doc, "prefixes")
    nets = [(row.get("ipv4Prefix") or row.get("ipv6Prefix")) if isinstance(row, dict) else None for row in rows]
    return nets, iso_date(str(doc.get("creationTime", "")))


def _azure(doc: Any) -> tuple[list[object], str | None]:
    nets: list[object] = []
    for tag in json_list(doc, "values"):
        props = tag.get("properties") if isinstance(tag, dict) else None
        prefixes = props.get("addressPrefixes") if isinstance(props, dict) else None
        if not isinstance(prefixes, list):
            raise ValueError("a service tag without 'properties.addressPrefixes'")
        nets.extend(prefixes)
    return nets, None


def _oracle(doc: Any) -> tuple[list[object], str | None]:
    nets: list[object] = []
    for region in json_list(doc, "regions"):
        cidrs = region.get("cidrs") if isinstance(region, dict) else None
        if not isinstance(cidrs, list):
            raise ValueError("a region without 'cidrs'")
        nets.extend(_items(cidrs, "cidr"))
    return nets, iso_date(str(doc.get("last_updated_timestamp", "")))


#: Keys of GitHub's meta API that are lists but not of networks.
_GITHUB_NOT_NETWORKS = frozenset({"ssh_keys"})


def _github(doc: Any) -> tuple[list[object], str | None]:
    if not isinstance(doc, dict):
        raise ValueError("not a JSON object")
    nets: list[object] = []
    for key, value in doc.items():
        if isinstance(value, list) and key not in _GITHUB_NOT_NETWORKS:
            nets.extend(value)
    if not nets:
        raise ValueError("no list of networks (not GitHub's meta API)")
    return nets, None


def _fastly(doc: Any) -> tuple[list[object], str | None]:
    return json_list(doc, "addresses") + list(doc.get("ipv6_addresses", [])), None


def _zscaler(doc: Any) -> tuple[list[object], str | None]:
    return json_list(doc, "hubPrefixes"), None


#: Source name -> file, its parser, label, provider name, title, url of the original.
_JSON_FEEDS = {
    "aws": (
        "aws-ip-ranges.json",
        _aws,
        "hosting",
        "Amazon AWS",
        "Amazon Web Services IP ranges",
        "https://ip-ranges.amazonaws.com/ip-ranges.json",
    ),
    "gcp": (
        "google-cloud-ip-ranges.json",
        _gcp,
        "hosting",
        "Google Cloud",
        "Google Cloud IP ranges",
        "https://www.gstatic.com/ipranges/cloud.json",
    ),
    "azure": (
        "microsoft-azure-ip-ranges.json",
        _azure,
        "hosting",
        "Microsoft Azure",
        "Microsoft Azure service tags (public cloud)",
        "https://www.microsoft.com/en-us/download/details.aspx?id=56519",
    ),
    "oracle": (
        "oracle-cloud-ip-ranges.json",
        _oracle,
        "hosting",
        "Oracle Cloud",
        "Oracle Cloud Infrastructure public IP ranges",
        "https://docs.oracle.com/en-us/iaas/tools/public_ip_ranges.json",
    ),
    "github": (
        "github-ip-ranges.json",
        _github,
        "hosting",
        "GitHub",
        "GitHub meta API networks (hooks, web, actions, ...)",
        "https://api.github.com/meta",
    ),
    "fastly": (
        "fastly-ip-ranges.json",
        _fastly,
        "hosting",
        "Fastly",
        "Fastly public IP list",
        "https://api.fastly.com/public-ip-list",
    ),
    "zscaler": (
        "zscaler-cloud-ip-ranges.json",
        _zscaler,
        "proxy",
        "Zscaler",
        "Zscaler cloud (zscaler.net) hub prefixes",
        "https://config.zscaler.com/api/zscaler.net/hubs/cidr/json/recommended",
    ),
}

#: Source name -> file stem (``<stem>-v{4,6}-ip-ranges.txt``), provider name, title, url.
_TEXT_FEEDS = {
    "akamai": (
        "akamai",
        "Akamai",
        "Akamai origin IP ACL ranges",
        "https://techdocs.akamai.com/origin-ip-acl/docs/update-your-origin-server",
    ),
    "cloudflare": (
        "cloudflare",
        "Cloudflare",
        "Cloudflare IP ranges",
        "https://www.cloudflare.com/ips/",
    ),
}


#: The sources of ``cloud/``: the providers' formats, their geofeeds, the per-provider lists.
SOURCES: dict[str, SourceMeta] = {
    **{
        name: _meta(name, title, url, kind=SourceKind.LABEL)
        for name, (_f, _p, _l, _prov, title, url) in _JSON_FEEDS.items()
    },
    **{name: _meta(name, title, url) for name, (_s, _p, title, url) in _TEXT_FEEDS.items()},
    **GEOFEED_SOURCES,
    **REGION_SOURCES,
    **RANGES_SOURCES,
}

# -- parsers ---------------------------------------------------------------------------------


def _dedup(items: Iterable[object]) -> list[object]:
    """Order-preserving de-duplication (feeds repeat a prefix under several services)."""
    return list(dict.fromkeys(i.strip() if isinstance(i, str) else i for i in items))


def _json_feed(name: str, path: Path, directory: Path) -> SourceData:
    _file, parse, label, provider, _title, _url = _JSON_FEEDS[name]
    doc = read_json(path, directory)
    if not isinstance(doc, dict):
        raise fail(rel(path, directory), "unexpected format: not a JSON object")
    try:
        nets, date = parse(doc)
    except (ValueError, AttributeError, TypeError) as exc:
        raise fail(rel(path, directory), f"unexpected format: {exc}") from exc
    data = SourceData(meta=finish(SOURCES[name], directory, [path], date=date))
    if add_networks(data, _dedup(nets), (label, provider)) == 0 and data.skipped:
        raise fail(rel(path, directory), f"no valid network ({data.skipped} bad entries)")
    return data


def _text_feed(name: str, files: list[Path], directory: Path) -> SourceData:
    provider = _TEXT_FEEDS[name][1]
    data = SourceData(meta=finish(SOURCES[name], directory, files))
    for path in files:
        add_list_file(data, path, directory, ("hosting", provider))
    return data


def loaders(directory: Path) -> list[Loader]:
    """The cloud sources present under ``directory``, each with its parser (not yet run)."""
    out: list[Loader] = []
    cloud = directory / CLOUD_DIR
    if not cloud.is_dir():
        return out
    for name, (fname, *_rest) in _JSON_FEEDS.items():
        path = cloud / fname
        if path.is_file():
            out.append((name, partial(_json_feed, name, path, directory)))
    for name, (stem, *_rest) in _TEXT_FEEDS.items():
        pair = (cloud / f"{stem}-v4-ip-ranges.txt", cloud / f"{stem}-v6-ip-ranges.txt")
        files = [p for p in pair if p.is_file()]
        if files:
            out.append((name, partial(_text_feed, name, files, directory)))
    out += geofeed_loaders(cloud, directory)
    out += region_loaders(cloud, directory)
    out += ranges_loaders(directory)
    return out
