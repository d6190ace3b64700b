"""How well the snapshot labels VPN and hosting providers it was not built from.

The figure that matters for a VPN or hosting provider no list names is how much of its address
space the *rest* of the evidence flags. This script measures it by building snapshots with whole
providers taken out, and never looks at the held-out provider while building:

- **providers**: every VPN provider of the labelled exit list (``vpn-exits``; the exits that
  several providers share are one family, ``hoxx family``) and every hosting provider with its
  own ranges under ``cloud/`` (a provider's feeds, per-provider lists and community lists are one
  provider: Amazon = ``aws`` + ``ipranges-amazon`` + ``cloud-more-aws`` + ...);
- **two ways to hold a provider out**:

  ``own lists out``
      the build lacks the provider's own lists (its exits, its per-provider sources); the
      generic lists (X4BNet's datacenter and VPN lists and ASN lists) stay, as they would for a
      provider they happen to cover;
  ``unknown to every list``
      also every range of any other label source overlapping the provider's ranges (for a VPN:
      ranges of at most a /24 holding one of its exits), and its ASNs (those holding at least 5 %
      of its addresses) from the ASN lists (for a VPN: from the VPN ASN list only). Only
      the network classifier (``intel/classify.py``: list coverage of the ASN, geolocation
      spread, size, name) can find it. This is the long tail no list names.

- **halves**: providers are split by a hash of their name into a tuning half (A) and a reporting
  half (B). The classifier's thresholds were set looking at half A only; B is reported beside it.
  Within a half, providers are held out in folds of a few at once (stricter than one at a time:
  fold-mates cannot vouch for each other).
- **flagged**: hosting, vpn, proxy or tor by any source; **acted on**: the same, but a label that
  only the classifier's weak ``spread`` rule gives does not count (the default policy acts on
  labels with confidence >= 0.6). **lists only**: flagged by a source other than the classifier.
- **consumer ISPs**: the share of addresses of 29 large home and mobile ISPs and of Starlink
  flagged by the production build (every source): the cost side.

Only IPv4 is measured (the exit list is IPv4). Usage::

    python scripts/eval_intel_holdout.py [--data DIR] [--per-provider N] [--json] [--write FILE]
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from eval_intel import CONSUMER_ASNS, _said_by, _sample_ranges, _share, _text, say

from geowarden.intel.build import build_snapshot
from geowarden.intel.classify import ACT
from geowarden.intel.format import CLASSIFIED_SOURCE
from geowarden.intel.snapshot import Lookups, Snapshot
from geowarden.intel.sources import discover
from geowarden.intel.sources.base import V4_BASE, V4_LAST, SourceData, SourceKind
from geowarden.intel.sources.ranges import consumer_isp_reference

ANON_BITS = ("hosting", "vpn", "proxy", "tor")
FOLD_SIZE = 6

#: VPN providers whose per-provider lists are separate sources (held out with the provider).
VPN_SOURCES = {
    "proton": ("x4bnet-vpn-protonvpn", "x4bnet-datacenter-protonvpn", "ipranges-protonvpn"),
    "pia": ("x4bnet-vpn-pia",),
}
#: Hosting providers whose ranges come under several source names.
HOSTING_GROUPS = {
    "amazon": ("aws", "ipranges-amazon", "cloud-more-aws", "cloud-more-heroku-aws", "cloud-more-vercel-aws"),
    "google": ("gcp", "ipranges-google", "cloud-more-google-cloud", "ipranges-googlebot", "cloud-more-google-bot"),
    "microsoft": ("azure", "ipranges-microsoft", "cloud-more-microsoft-azure", "ipranges-bing", "cloud-more-bing-bot"),
    "oracle": ("oracle", "ipranges-oracle", "cloud-more-oracle-cloud"),
    "digitalocean": ("digitalocean", "ipranges-digitalocean", "cloud-more-digitalocean"),
    "linode": ("linode", "ipranges-linode", "cloud-more-linode"),
    "akamai": ("akamai", "cloud-more-akamai"),
    "vultr": ("vultr", "ipranges-vultr", "cloud-more-vultr", "cloud-more-choopa"),
    "cloudflare": ("cloudflare", "ipranges-cloudflare", "cloud-more-cloudflare"),
    "github": ("github", "ipranges-github", "cloud-more-github"),
    "fastly": ("fastly", "cloud-more-fastly"),
    "meta": ("ipranges-facebook", "cloud-more-meta-crawler", "cloud-more-whatsapp"),
    "telegram": ("ipranges-telegram", "cloud-more-telegram"),
    "openai": ("ipranges-openai", "cloud-more-openai"),
    "perplexity": ("ipranges-perplexity", "cloud-more-perplexity"),
    "zscaler": ("zscaler", "cloud-more-zscaler"),
}  # fmt: skip
#: ASN lists that name VPN providers' own networks.
VPN_ASN_LISTS = ("x4bnet-vpn-asn",)
#: Sources that are not a hosting provider's own ranges.
NOT_HOSTING = ("ipranges-apple-proxy", "ipranges-protonvpn")


@dataclasses.dataclass
class Provider:
    """One held-out unit: its kind, its own sources, its reference addresses and ranges."""

    name: str
    kind: str  # "vpn" or "hosting"
    sources: tuple[str, ...]
    ips: list[str]
    ranges: list[tuple[int, int]]
    exits: set[int] = dataclasses.field(default_factory=set)  # VPN: the exit keys (held out of vpn-exits)

    @property
    def half(self) -> str:
        return "A" if hashlib.sha256(self.name.encode()).digest()[0] % 2 == 0 else "B"


def v4_only(src: SourceData) -> SourceData:
    """The IPv4 part of a range source (ASN label sources unchanged)."""
    if src.meta.kind == SourceKind.ASN_LABEL:
        return src
    keep = [i for i, (f, la) in enumerate(zip(src.first, src.last, strict=True)) if f >= V4_BASE and la <= V4_LAST]
    return SourceData(
        meta=src.meta,
        first=[src.first[i] for i in keep],
        last=[src.last[i] for i in keep],
        values=[src.values[i] for i in keep],
        skipped=src.skipped,
    )


def vpn_family(name: str) -> str:
    low = name.lower()
    if "proton" in low:
        return "proton"
    if "," in low or "hoxx" in low:
        return "hoxx family"
    return low


def vpn_providers(sources: dict[str, SourceData], rng: np.random.Generator, n: int) -> list[Provider]:
    exits: dict[str, list[int]] = defaultdict(list)
    src = sources["vpn-exits"]
    for first, (_label, provider) in zip(src.first, src.values, strict=True):
        exits[vpn_family(provider)].append(first)
    out = []
    for name, keys in sorted(exits.items()):
        picks = keys if len(keys) <= n else [keys[i] for i in rng.choice(len(keys), n, replace=False)]
        out.append(
            Provider(
                name=name,
                kind="vpn",
                sources=VPN_SOURCES.get(name, ()),
                ips=[_text(k) for k in picks],
                ranges=[(k, k) for k in keys],
                exits=set(keys),
            )
        )
    return out


def hosting_providers(sources: dict[str, SourceData], rng: np.random.Generator, n: int) -> list[Provider]:
    grouped = {s: g for g, names in HOSTING_GROUPS.items() for s in names}
    members: dict[str, list[str]] = defaultdict(list)
    for name, src in sources.items():
        per_provider = name.startswith(("ipranges-", "cloud-more-")) or name in grouped
        if src.meta.kind != SourceKind.LABEL or not per_provider or name in NOT_HOSTING:
            continue
        if not any(label == "hosting" for label, _ in src.values):
            continue
        members[grouped.get(name, name.removeprefix("ipranges-").removeprefix("cloud-more-"))].append(name)
    out = []
    for group, names in sorted(members.items()):
        ranges = [(f, la) for s in names for f, la in zip(sources[s].first, sources[s].last, strict=True)]
        if not ranges:
            continue
        out.append(
            Provider(
                name=group,
                kind="hosting",
                sources=tuple(names),
                ips=_sample_ranges(ranges, rng, n),
                ranges=ranges,
            )
        )
    return out


def _overlaps(src: SourceData, starts: np.ndarray, ends: np.ndarray, max_size: int | None) -> list[bool]:
    """For each entry of ``src``: does it overlap one of the (sorted, disjoint-ish) ranges?"""
    if not src.first:
        return []
    fi = np.array([x - V4_BASE for x in src.first], dtype=np.int64)
    li = np.array([x - V4_BASE for x in src.last], dtype=np.int64)
    # An entry overlaps a reference range iff the last reference start <= entry end has end >= entry start.
    pos = np.searchsorted(starts, li, side="right") - 1
    cummax = np.maximum.accumulate(ends) if len(ends) else ends
    hit = (pos >= 0) & (cummax[np.clip(pos, 0, None)] >= fi)
    if max_size is not None:
        hit &= (li - fi + 1) <= max_size
    return hit.tolist()


def hold_out(
    sources: Sequence[SourceData], fold: Sequence[Provider], asn_of: dict[str, Any], *, erase: bool
) -> list[SourceData]:
    """The sources with ``fold``'s providers taken out (``erase``: unknown to every list)."""
    own = {s for p in fold for s in p.sources}
    exits = set().union(*(p.exits for p in fold))
    ref = sorted((f - V4_BASE, la - V4_BASE) for p in fold for f, la in p.ranges)
    starts = np.array([a for a, _ in ref], dtype=np.int64)
    ends = np.array([b for _, b in ref], dtype=np.int64)
    vpn_only = all(p.kind == "vpn" for p in fold)
    fold_asns = set().union(*(asn_of[p.name] for p in fold)) if erase else set()
    out = []
    for src in sources:
        name = src.meta.name
        if name in own:
            continue
        if name == "vpn-exits":
            out.append(_keep(src, [f not in exits for f in src.first]))
        elif erase and src.meta.kind == SourceKind.LABEL:
            out.append(_keep(src, [not h for h in _overlaps(src, starts, ends, 256 if vpn_only else None)]))
        elif erase and src.meta.kind == SourceKind.ASN_LABEL and (not vpn_only or name in VPN_ASN_LISTS):
            # A hosting provider's networks leave every ASN list; a VPN provider's only the VPN ASN
            # lists (the hosting networks its exits sit on are listed for their own sake).
            kept = {a: v for a, v in src.asn_labels.items() if a not in fold_asns}
            out.append(dataclasses.replace(src, asn_labels=kept))
        else:
            out.append(src)
    return out


def _keep(src: SourceData, mask: Sequence[bool]) -> SourceData:
    idx = [i for i, k in enumerate(mask) if k]
    return SourceData(
        meta=src.meta,
        first=[src.first[i] for i in idx],
        last=[src.last[i] for i in idx],
        values=[src.values[i] for i in idx],
    )


def provider_asns(providers: Iterable[Provider], asn_src: SourceData) -> dict[str, set[int]]:
    """The ASNs holding at least 5 % of each provider's sampled addresses (its own networks)."""
    firsts = np.array([f - V4_BASE for f in asn_src.first], dtype=np.int64)
    order = np.argsort(firsts)
    firsts = firsts[order]
    asns = np.array([asn_src.values[i][0] for i in order.tolist()], dtype=np.int64)
    out = {}
    for p in providers:
        keys = np.array([int.from_bytes(bytes(map(int, ip.split("."))), "big") for ip in p.ips], dtype=np.int64)
        pos = np.searchsorted(firsts, keys, side="right") - 1
        got = asns[np.clip(pos, 0, None)][pos >= 0]
        uniq, counts = np.unique(got, return_counts=True)
        out[p.name] = {int(a) for a, c in zip(uniq, counts, strict=True) if c >= 0.05 * len(p.ips) and a != 0}
    return out


def measure(snap: Snapshot, ips: list[str]) -> dict[str, float | None]:
    batch = snap.lookup_many(ips)
    any_flag = np.zeros(len(batch), dtype=bool)
    for label in ANON_BITS:
        any_flag |= batch.flag(label)
    others = tuple({n for n, _ in snap.label_sources} - {CLASSIFIED_SOURCE})
    by_lists = _said_by(snap, batch, others) & any_flag
    act = by_lists | (any_flag & _confident(snap, batch))
    return {"flagged": _share(any_flag), "acted": _share(act), "lists_only": _share(by_lists)}


def _confident(snap: Snapshot, batch: Lookups) -> np.ndarray:
    verdicts = snap.meta.get("classified", {})
    strong = {int(a) for a, v in verdicts.items() if v["confidence"] >= ACT}
    return np.isin(batch.asn, np.array(sorted(strong), dtype=np.uint32))


def run(data: Path, per_provider: int, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    sources = [v4_only(s) for s in discover(data)]
    by_name = {s.meta.name: s for s in sources}
    say(f"parsed {len(sources)} sources (IPv4) in {time.perf_counter() - t0:.0f} s")
    providers = vpn_providers(by_name, rng, per_provider) + hosting_providers(by_name, rng, per_provider)
    asn_of = provider_asns(providers, by_name["dbip-asn"])
    results: dict[str, dict[str, Any]] = defaultdict(dict)
    with tempfile.TemporaryDirectory() as tmp:
        prod = Snapshot.open(build_snapshot(sources, Path(tmp) / "production"))
        for p in providers:
            results[p.name]["in_sample"] = measure(prod, p.ips)
        consumer = consumer_check(prod, sources, data, rng)
        for kind in ("vpn", "hosting"):
            for half in ("A", "B"):
                members = [p for p in providers if p.kind == kind and p.half == half]
                nfolds = -(-len(members) // FOLD_SIZE)
                folds = [members[i::nfolds] for i in range(nfolds)]
                for erase in (False, True):
                    variant = "unknown_to_every_list" if erase else "own_lists_out"
                    for k, fold in enumerate(folds):
                        names = ", ".join(p.name for p in fold)
                        say(f"{kind} half {half}, {variant}, fold {k + 1}/{nfolds}: {names}")
                        kept = hold_out(sources, fold, asn_of, erase=erase)
                        snap = Snapshot.open(build_snapshot(kept, Path(tmp) / f"{kind}{half}{k}{erase}"))
                        for p in fold:
                            results[p.name][variant] = measure(snap, p.ips)
    return {
        "seed": seed,
        "per_provider": per_provider,
        "providers": [
            {
                "name": p.name,
                "kind": p.kind,
                "half": p.half,
                "n": len(p.ips),
                "sources": list(p.sources),
                **results[p.name],
            }
            for p in providers
        ],
        "consumer": consumer,
        "seconds": round(time.perf_counter() - t0),
    }


def consumer_check(prod: Snapshot, sources: list[SourceData], data: Path, rng: np.random.Generator) -> dict[str, Any]:
    asn_src = next(s for s in sources if s.meta.name == "dbip-asn")
    starlink = consumer_isp_reference(data)
    groups: dict[str, list[tuple[int, int]]] = {
        "Starlink": [(f, la) for f, la in zip(starlink.first, starlink.last, strict=True) if f >= V4_BASE]
    }
    for f, la, (asn, _) in zip(asn_src.first, asn_src.last, asn_src.values, strict=True):
        if asn in CONSUMER_ASNS:
            groups.setdefault(f"AS{asn} {CONSUMER_ASNS[asn]}", []).append((f, la))
    out = {}
    for name, ranges in groups.items():
        out[name] = {"n": 2000, **measure(prod, _sample_ranges(ranges, rng, 2000))}
    return out


VARIANTS = ("in_sample", "own_lists_out", "unknown_to_every_list")


def summary(result: dict[str, Any]) -> dict[str, Any]:
    """Macro averages (each provider counts once) per kind, half and variant, and the worst."""
    out: dict[str, Any] = {}
    for kind in ("vpn", "hosting"):
        for half in ("A", "B"):
            rows = [p for p in result["providers"] if p["kind"] == kind and p["half"] == half]
            cell: dict[str, Any] = {"providers": len(rows)}
            for variant in VARIANTS:
                got = [p[variant] for p in rows if variant in p]
                cell[variant] = {
                    m: round(float(np.mean([g[m] for g in got if g[m] is not None])), 4) if got else None
                    for m in ("flagged", "acted", "lists_only")
                }
                weights = [p["n"] for p in rows if variant in p]
                cell[variant]["pooled"] = (
                    round(float(np.average([g["flagged"] for g in got], weights=weights)), 4) if got else None
                )
                cell[variant]["worst"] = sorted(
                    ((p["name"], p[variant]["flagged"]) for p in rows if variant in p), key=lambda x: x[1]
                )[:3]
            out[f"{kind} {half}"] = cell
    cons = result["consumer"]
    out["consumer"] = {
        m: round(float(np.mean([c[m] for c in cons.values()])), 5) for m in ("flagged", "acted", "lists_only")
    }
    out["consumer"]["networks"] = len(cons)
    out["consumer"]["worst"] = sorted(((k, v["flagged"]) for k, v in cons.items()), key=lambda x: -x[1])[:3]
    return out


def _pct(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{100 * x:.2f} %" if 0 < x < 0.01 else f"{100 * x:.1f} %"


def markdown(result: dict[str, Any]) -> str:
    s = summary(result)
    lines = [
        "# IP intelligence on providers the build was not made from",
        "",
        f"Measured by `scripts/eval_intel_holdout.py` (seed {result['seed']}, up to {result['per_provider']} "
        f"addresses per provider, {result['seconds']} s). Regenerate with `make eval`. How it holds providers out, "
        "the two variants, the halves and the folds: see the script's docstring. Each figure is a mean over "
        "providers (each provider counts once; *pooled*: each address counts once, at most the cap per "
        "provider), IPv4.",
        "",
        "**Half A tuned the classifier's thresholds; half B is the figure to quote.** *in sample*: the "
        "production build (every source, the provider's own lists included); *own lists out*: built without the "
        "provider's own lists; *unknown to every list*: also erased from every other list, so only the network "
        "classifier can find it. *flagged*: any anonymiser label; *acted on*: what the default policy acts on "
        "(not the classifier's weak `spread` label alone); *lists only*: what the lists give without the "
        "classifier.",
        "",
        "| providers | half | n | variant | flagged | acted on | lists only | pooled flagged | worst (flagged) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for key, cell in s.items():
        if key == "consumer":
            continue
        kind, half = key.split()
        for variant in VARIANTS:
            c = cell[variant]
            worst = ", ".join(f"{n} {_pct(v)}" for n, v in c["worst"])
            lines.append(
                f"| {kind} | {half} | {cell['providers']} | {variant.replace('_', ' ')} | {_pct(c['flagged'])} | "
                f"{_pct(c['acted'])} | {_pct(c['lists_only'])} | {_pct(c['pooled'])} | {worst} |"
            )
    c = s["consumer"]
    lines += [
        "",
        f"## Consumer ISPs (the cost): {c['networks']} networks, 2,000 addresses each, production build",
        "",
        f"Mean flagged {_pct(c['flagged'])}, acted on {_pct(c['acted'])}, by lists alone {_pct(c['lists_only'])}. "
        "Highest: " + ", ".join(f"{n} {_pct(v)}" for n, v in c["worst"]) + ".",
        "",
        "## Every provider",
        "",
        "| provider | kind | half | in sample | own lists out | unknown to every list (lists only) |",
        "|---|---|---|---|---|---|",
    ]
    for p in sorted(result["providers"], key=lambda p: (p["kind"], p["half"], p["name"])):
        u = p.get("unknown_to_every_list", {})
        lines.append(
            f"| {p['name']} | {p['kind']} | {p['half']} | {_pct(p['in_sample']['flagged'])} | "
            f"{_pct(p.get('own_lists_out', {}).get('flagged'))} | {_pct(u.get('flagged'))} "
            f"({_pct(u.get('lists_only'))}) |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "data")
    ap.add_argument("--per-provider", type=int, default=500)
    ap.add_argument("--seed", type=int, default=20261203)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--write", type=Path, help="write the markdown report to this file")
    args = ap.parse_args(argv)
    if not args.data.is_dir():
        print(f"eval_intel_holdout: error: no data directory at {args.data}", file=sys.stderr)
        return 2
    result = run(args.data, args.per_provider, args.seed)
    if args.json:
        print(json.dumps({"summary": summary(result), **result}, indent=1))
    else:
        print(markdown(result))
    if args.write:
        args.write.write_text(markdown(result), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
