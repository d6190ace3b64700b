"""Community-collected CIDR lists of clouds and services, one source per provider.

Under ``cloud/`` of the build directory:

- ``by-provider/`` (lord-alfred/ipranges, CC0): ``<provider>_ipv{4,6}[_merged].txt`` (or the
  upstream ``<provider>/ipv{4,6}[_merged].txt``), one ``ipranges-<provider>`` source each, from
  the merged files when present. ``apple-proxy`` is ``relay``, ``protonvpn`` ``vpn``, the rest
  (clouds, crawlers, service networks such as facebook/telegram/twitter) ``hosting``. The
  aggregate ``all_*`` files are not a provider and are ignored.
- ``more/*.csv`` (disposable/cloud-ip-ranges, ``Type,Address``): one ``cloud-more-<provider>``
  source each, ``hosting`` (Zscaler: ``proxy``). ``starlink.csv`` is a consumer satellite ISP,
  not hosting: it is never a source, only :func:`consumer_isp_reference` for evaluations.

The providers' own published formats are in :mod:`.cloud`, their geofeeds in :mod:`.geofeed`.
"""

from __future__ import annotations

import re
from functools import partial
from pathlib import Path
from typing import Any

from geowarden.intel.sources.base import SourceData, SourceKind, SourceMeta
from geowarden.intel.sources.lists import (
    Loader,
    add_list_file,
    add_networks,
    fail,
    finish,
    read_text,
    rel,
)

BY_PROVIDER_DIR = Path("cloud") / "by-provider"
MORE_DIR = Path("cloud") / "more"
STARLINK_FILE = MORE_DIR / "starlink.csv"


def _meta(name: str, title: str, url: str, licence: str) -> SourceMeta:
    return SourceMeta(name=name, title=title, kind=SourceKind.LABEL, licence=licence, url=url)


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
    **{f"ipranges-{slug}": ipranges_meta(slug) for slug in IPRANGES_PROVIDERS},
    **{f"cloud-more-{slug}": more_meta(slug) for slug in MORE_PROVIDERS},
}


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
    """The per-provider lists present under ``directory``, each with its parser (not yet run)."""
    out: list[Loader] = []
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
