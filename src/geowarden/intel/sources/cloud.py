"""Cloud, CDN and hosting providers' own published ranges, and their geofeeds.

Under ``cloud/`` of the build directory:

- the providers' official formats: AWS ``aws-ip-ranges.json``, Google Cloud
  ``google-cloud-ip-ranges.json``, Azure ServiceTags ``microsoft-azure-ip-ranges.json``, Oracle
  ``oracle-cloud-ip-ranges.json``, GitHub ``github-ip-ranges.json`` (its meta API: every list of
  CIDRs), Fastly ``fastly-ip-ranges.json``, Zscaler ``zscaler-cloud-ip-ranges.json``, and the
  Akamai / Cloudflare ``*-v{4,6}-ip-ranges.txt`` lists. Each is a ``label`` source, ``hosting``
  with the provider's name, except Zscaler: a security proxy cloud, labelled ``proxy``.
- RFC 8805 geofeeds (``prefix,CC,region,city,postal``): DigitalOcean ``digitalocean.csv``,
  Linode ``linode.txt`` and Vultr's JSON rendering ``vultr-geofeed.json``
  (``subnets[].ip_prefix/alpha2code``). Each is a ``hosting`` label source under the provider's
  name, and together they are also the ``geofeed`` country source: the operator's own statement
  of where each prefix is.
- ``by-provider/`` (lord-alfred/ipranges, CC0): ``<provider>_ipv{4,6}[_merged].txt`` (or the
  upstream ``<provider>/ipv{4,6}[_merged].txt``), one ``ipranges-<provider>`` source each, from
  the merged files when present. ``apple-proxy`` is ``relay``, ``protonvpn`` ``vpn``, the rest
  (clouds, crawlers, service networks such as facebook/telegram/twitter) ``hosting``. The
  aggregate ``all_*`` files are not a provider and are ignored.
- ``more/*.csv`` (disposable/cloud-ip-ranges, ``Type,Address``): one ``cloud-more-<provider>``
  source each, ``hosting`` (Zscaler: ``proxy``). ``starlink.csv`` is a consumer satellite ISP,
  not hosting: it is never a source, only :func:`consumer_isp_reference` for evaluations.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import partial
from pathlib import Path
from typing import Any

from geowarden.intel.sources.base import SourceData, SourceKind, SourceMeta
from geowarden.intel.sources.lists import (
    Loader,
    add_list_file,
    add_networks,
    bounds,
    country,
    fail,
    finish,
    iso_date,
    read_json,
    read_text,
    rel,
)

CLOUD_DIR = Path("cloud")
BY_PROVIDER_DIR = CLOUD_DIR / "by-provider"
MORE_DIR = CLOUD_DIR / "more"
STARLINK_FILE = MORE_DIR / "starlink.csv"

_FEED_LICENCE = "provider's public feed (no licence stated)"


def _meta(
    name: str,
    title: str,
    url: str | None,
    licence: str = _FEED_LICENCE,
    kind: SourceKind = SourceKind.LABEL,
) -> SourceMeta:
    return SourceMeta(name=name, title=title, kind=kind, licence=licence, url=url)


# -- the providers' own formats --------------------------------------------------------------


def _json_list(doc: Any, *path: str) -> list[Any]:
    """``doc[path[0]][path[1]]...`` if that is a list, else ValueError naming the path."""
    node = doc
    for key in path:
        if not isinstance(node, dict) or key not in node:
            raise ValueError(f"no '{'.'.join(path)}'")
        node = node[key]
    if not isinstance(node, list):
        raise ValueError(f"'{'.'.join(path)}' is not a list")
    return node


def _items(rows: list[Any], key: str) -> list[object]:
    """``row[key]`` of each row (a row without it is passed on as None, counted as bad)."""
    return [row.get(key) if isinstance(row, dict) else None for row in rows]


def _aws(doc: Any) -> tuple[list[object], str | None]:
    v4 = _items(_json_list(doc, "prefixes"), "ip_prefix")
    v6 = _items(doc.get("ipv6_prefixes", []), "ipv6_prefix")
    return v4 + v6, iso_date(str(doc.get("createDate", "")))


def _gcp(doc: Any) -> tuple[list[object], str | None]:
    rows = _json_list(doc, "prefixes")
    nets = [(row.get("ipv4Prefix") or row.get("ipv6Prefix")) if isinstance(row, dict) else None for row in rows]
    return nets, iso_date(str(doc.get("creationTime", "")))


def _azure(doc: Any) -> tuple[list[object], str | None]:
    nets: list[object] = []
    for tag in _json_list(doc, "values"):
        props = tag.get("properties") if isinstance(tag, dict) else None
        prefixes = props.get("addressPrefixes") if isinstance(props, dict) else None
        if not isinstance(prefixes, list):
            raise ValueError("a service tag without 'properties.addressPrefixes'")
        nets.extend(prefixes)
    return nets, None


def _oracle(doc: Any) -> tuple[list[object], str | None]:
    nets: list[object] = []
    for region in _json_list(doc, "regions"):
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
    return _json_list(doc, "addresses") + list(doc.get("ipv6_addresses", [])), None


def _zscaler(doc: Any) -> tuple[list[object], str | None]:
    return _json_list(doc, "hubPrefixes"), None


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

#: Source name -> geofeed file, provider name, title, url of the original.
_GEOFEEDS = {
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

# -- lord-alfred/ipranges and disposable/cloud-ip-ranges ------------------------------------

#: lord-alfred/ipranges provider directory -> (label, provider name).
IPRANGES_PROVIDERS: dict[str, tuple[str, str]] = {
    "amazon": ("hosting", "Amazon AWS"),
    "apple-proxy": ("relay", "Apple iCloud Private Relay"),
    "bing": ("hosting", "Bingbot"),
    "cloudflare": ("hosting", "Cloudflare"),
    "digitalocean": ("hosting", "DigitalOcean"),
    "facebook": ("hosting", "Facebook (Meta)"),
    "github": ("hosting", "GitHub"),
    "google": ("hosting", "Google"),
    "googlebot": ("hosting", "Googlebot"),
    "linode": ("hosting", "Linode"),
    "microsoft": ("hosting", "Microsoft"),
    "openai": ("hosting", "OpenAI"),
    "oracle": ("hosting", "Oracle Cloud"),
    "perplexity": ("hosting", "Perplexity"),
    "protonvpn": ("vpn", "Proton VPN"),
    "telegram": ("hosting", "Telegram"),
    "twitter": ("hosting", "X (Twitter)"),
    "vultr": ("hosting", "Vultr"),
}

#: disposable/cloud-ip-ranges file stem -> (label, provider name). Starlink is not here.
MORE_PROVIDERS: dict[str, tuple[str, str]] = {
    "a2hosting": ("hosting", "A2 Hosting"),
    "ahrefs": ("hosting", "Ahrefs (crawler)"),
    "akamai": ("hosting", "Akamai"),
    "alibaba": ("hosting", "Alibaba Cloud"),
    "aws": ("hosting", "Amazon AWS"),
    "bing-bot": ("hosting", "Bingbot"),
    "choopa": ("hosting", "Choopa (Vultr)"),
    "cloudflare": ("hosting", "Cloudflare"),
    "digitalocean": ("hosting", "DigitalOcean"),
    "dreamhost": ("hosting", "DreamHost"),
    "fastly": ("hosting", "Fastly"),
    "github": ("hosting", "GitHub"),
    "godaddy": ("hosting", "GoDaddy"),
    "google-bot": ("hosting", "Googlebot"),
    "google-cloud": ("hosting", "Google Cloud"),
    "heroku-aws": ("hosting", "Heroku (AWS)"),
    "hetzner": ("hosting", "Hetzner"),
    "huawei-cloud": ("hosting", "Huawei Cloud"),
    "linode": ("hosting", "Linode"),
    "meta-crawler": ("hosting", "Meta (crawler)"),
    "microsoft-azure": ("hosting", "Microsoft Azure"),
    "nforce": ("hosting", "NFOrce"),
    "onlinesas": ("hosting", "Online SAS (Scaleway)"),
    "openai": ("hosting", "OpenAI"),
    "oracle-cloud": ("hosting", "Oracle Cloud"),
    "ovh": ("hosting", "OVHcloud"),
    "perplexity": ("hosting", "Perplexity"),
    "rackspace": ("hosting", "Rackspace"),
    "softlayer-ibm": ("hosting", "IBM Cloud (SoftLayer)"),
    "telegram": ("hosting", "Telegram"),
    "tencent": ("hosting", "Tencent Cloud"),
    "ucloud": ("hosting", "UCloud"),
    "vercel-aws": ("hosting", "Vercel (AWS)"),
    "vultr": ("hosting", "Vultr"),
    "whatsapp": ("hosting", "WhatsApp (Meta)"),
    "zscaler": ("proxy", "Zscaler"),
}

#: Files under ``more/`` that are never a label source (consumer ISPs).
MORE_NOT_SOURCES = frozenset({"starlink"})


def ipranges_meta(slug: str) -> SourceMeta:
    label, provider = IPRANGES_PROVIDERS.get(slug, ("hosting", slug))
    return _meta(
        f"ipranges-{slug}",
        f"{provider} ranges ({label}; lord-alfred/ipranges)",
        f"https://github.com/lord-alfred/ipranges/tree/main/{slug}",
        licence="CC0-1.0",
    )


def more_meta(slug: str) -> SourceMeta:
    label, provider = MORE_PROVIDERS.get(slug, ("hosting", slug))
    return _meta(
        f"cloud-more-{slug}",
        f"{provider} ranges ({label}; disposable/cloud-ip-ranges)",
        "https://github.com/disposable/cloud-ip-ranges",
        licence="none stated",
    )


SOURCES: dict[str, SourceMeta] = {
    **{
        name: _meta(name, title, url, kind=SourceKind.LABEL)
        for name, (_f, _p, _l, _prov, title, url) in _JSON_FEEDS.items()
    },
    **{name: _meta(name, title, url) for name, (_s, _p, title, url) in _TEXT_FEEDS.items()},
    **{name: _meta(name, title, url) for name, (_f, _p, title, url) in _GEOFEEDS.items()},
    "geofeed": _meta(
        "geofeed",
        "Providers' self-published geofeeds (RFC 8805): DigitalOcean, Linode, Vultr",
        "https://datatracker.ietf.org/doc/html/rfc8805",
        licence="providers' public geofeeds (no licence stated)",
        kind=SourceKind.COUNTRY,
    ),
    **{f"ipranges-{slug}": ipranges_meta(slug) for slug in IPRANGES_PROVIDERS},
    **{f"cloud-more-{slug}": more_meta(slug) for slug in MORE_PROVIDERS},
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


#: One geofeed row: (network text, country code or None).
GeofeedRow = tuple[str, str | None]


def read_geofeed(path: Path, directory: Path) -> tuple[list[GeofeedRow], int, str | None]:
    """Rows of a geofeed (RFC 8805 CSV, or Vultr's JSON form), malformed rows, and its date."""
    if path.suffix == ".json":
        doc = read_json(path, directory)
        try:
            subnets = _json_list(doc, "subnets")
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
    if add_networks(data, [r[0] for r in rows], ("hosting", _GEOFEEDS[name][1])) == 0 and bad:
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


def _list_files(meta: SourceMeta, files: list[Path], directory: Path) -> SourceData:
    label, provider = _value_of(meta.name)
    data = SourceData(meta=finish(meta, directory, files))
    for path in files:
        add_list_file(data, path, directory, (label, provider))
    return data


def _value_of(name: str) -> tuple[str, str]:
    if name.startswith("ipranges-"):
        slug = name.removeprefix("ipranges-")
        return IPRANGES_PROVIDERS.get(slug, ("hosting", slug))
    slug = name.removeprefix("cloud-more-")
    return MORE_PROVIDERS.get(slug, ("hosting", slug))


def _read_more_csv(data: SourceData, path: Path, directory: Path, value: Any) -> None:
    """``Type,Address`` CSV (CRLF line ends); a row that is not ``<type>,<network>`` is bad."""
    lines = read_text(path, directory).splitlines()
    nets: list[object] = []
    for i, raw in enumerate(lines):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split(",")
        if i == 0 and fields[0].strip().lower() == "type":
            continue
        nets.append(fields[1] if len(fields) == 2 else None)
    before = data.skipped
    if add_networks(data, nets, value) == 0 and data.skipped > before:
        raise fail(rel(path, directory), f"no valid network ({data.skipped - before} bad rows)")


def _more(meta: SourceMeta, path: Path, directory: Path) -> SourceData:
    data = SourceData(meta=finish(meta, directory, [path]))
    _read_more_csv(data, path, directory, _value_of(meta.name))
    return data


def consumer_isp_reference(directory: Path) -> SourceData:
    """Starlink's ranges (``cloud/more/starlink.csv``): consumer satellite internet.

    For evaluation only (e.g. "how many home users would be called hosting?"): never part of
    :func:`geowarden.intel.sources.discover`, never to be given to the snapshot builder. The
    values are ``("consumer", "Starlink")``, and ``consumer`` is deliberately not in ``LABELS``.
    Raises SourceError when the file is missing or unreadable.
    """
    path = directory / STARLINK_FILE
    if not path.is_file():
        raise fail(STARLINK_FILE.as_posix(), "not found")
    meta = SourceMeta(
        name="starlink",
        title="Starlink consumer ISP ranges (reference, not a source)",
        kind=SourceKind.LABEL,
        licence="none stated",
        url="https://github.com/disposable/cloud-ip-ranges",
        files=(rel(path, directory),),
    )
    data = SourceData(meta=meta)
    _read_more_csv(data, path, directory, ("consumer", "Starlink"))
    return data


_FAMILY = re.compile(r"^(?P<slug>.+?)_?(?P<file>ipv(?P<v>[46])(?P<merged>_merged)?)\.txt$")


def _ipranges_files(base: Path) -> dict[str, list[Path]]:
    """Provider slug -> files to read: per family the merged file if present, else the plain."""
    found: dict[tuple[str, str], dict[bool, Path]] = {}
    candidates = [(p.name, p) for p in base.iterdir() if p.is_file()]
    for sub in (p for p in base.iterdir() if p.is_dir()):  # upstream layout <provider>/ipv4.txt
        candidates += [(f"{sub.name}_{p.name}", p) for p in sub.iterdir() if p.is_file()]
    for fname, path in candidates:
        m = _FAMILY.match(fname)
        if m is None or not m["slug"] or m["slug"] == "all":
            continue
        found.setdefault((m["slug"], m["v"]), {})[bool(m["merged"])] = path
    out: dict[str, list[Path]] = {}
    for (slug, _v), variants in sorted(found.items()):
        out.setdefault(slug, []).append(variants.get(True) or variants[False])
    return out


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
    feeds = []
    for name, (fname, *_rest) in _GEOFEEDS.items():
        path = cloud / fname
        if path.is_file():
            feeds.append(path)
            out.append((name, partial(_geofeed_label, name, path, directory)))
    if feeds:
        out.append(("geofeed", partial(_geofeed_country, feeds, directory)))
    by_provider = directory / BY_PROVIDER_DIR
    if by_provider.is_dir():
        for slug, files in _ipranges_files(by_provider).items():
            meta = SOURCES.get(f"ipranges-{slug}") or ipranges_meta(slug)
            out.append((meta.name, partial(_list_files, meta, files, directory)))
    more = directory / MORE_DIR
    if more.is_dir():
        for path in sorted(more.glob("*.csv")):
            slug = path.stem.lower()
            if slug in MORE_NOT_SOURCES or not path.is_file():
                continue
            meta = SOURCES.get(f"cloud-more-{slug}") or more_meta(slug)
            out.append((meta.name, partial(_more, meta, path, directory)))
    return out
