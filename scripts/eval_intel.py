"""Measure the quality of geowarden's IP intelligence on the real data in ../shared/data.

Two snapshots are built from the same parsed sources:

- ``production``: every source recognised under the data directory;
- ``held-out``: the same, minus the sources used as references below (iptoasn country, the RIR
  delegations from ipverse and the raw RIR statistics, and the labelled VPN exit list), with the
  RIR data that installs with the package (iptocc, a different vintage and pipeline) standing in
  as the registry voter. Figures from this build are out of sample.

Measures (IPv4 addresses sampled uniformly from 1.0.0.0-223.255.255.255 with a fixed seed, so
each figure is a share of addresses, not of ranges; IPv6: a random address in a random DB-IP IPv6
network, each network equally likely, as IPv6 address counts are dominated by a few huge allocations):

1. restricted recall: where the two references (routing: iptoasn; registry: ipverse RIR) agree
   an address is in a restricted country, the share the build places there;
2. restricted false placement: where they agree it is elsewhere, the share placed in a
   restricted country (DB-IP alone is shown as the baseline);
3. VPN exits of providers no build source was made from (the small providers of the labelled
   exit list; PIA and Proton feed X4BNet's lists, so they are reported apart): share flagged
   vpn, hosting, proxy or tor by the held-out build; X4BNet's two lists alone as the baseline;
4. consumer ISP addresses (Starlink's published ranges and the DB-IP ranges of large home and
   mobile ISPs): share flagged hosting, vpn, proxy or tor (should be ~0).

Usage::

    python scripts/eval_intel.py [--data DIR] [--samples N] [--json] [--write docs/intel-quality.md]
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from geowarden.intel.build import build_snapshot
from geowarden.intel.snapshot import Lookups, Snapshot
from geowarden.intel.sources import discover
from geowarden.intel.sources.base import V4_BASE, SourceData
from geowarden.intel.sources.pypi import iptocc_source
from geowarden.intel.sources.ranges import consumer_isp_reference
from geowarden.policy import default_restricted

RESTRICTED = default_restricted()

REFERENCE_COUNTRY = ("iptoasn-country", "ipverse-rir")
HELD_OUT = ("iptoasn-country", "ipverse-rir", "rir-delegated", "vpn-exits")
# Providers whose exits fed X4BNet's lists (its input_vpn_ips_* files): not out of sample.
KNOWN_TO_BUILD = ("pia", "protonvpn", "proton.me", "mullvad")
# Large home and mobile ISPs (AS numbers), for the false-positive check.
CONSUMER_ASNS = {
    7922: "Comcast", 20115: "Charter", 7018: "AT&T", 22394: "Verizon Wireless", 21928: "T-Mobile US",
    3320: "Deutsche Telekom", 3209: "Vodafone DE", 3215: "Orange FR", 12322: "Free", 2856: "BT",
    5089: "Virgin Media", 5607: "Sky UK", 3352: "Telefonica ES", 1221: "Telstra", 812: "Rogers",
    577: "Bell Canada", 2516: "KDDI", 9318: "SK Broadband", 4766: "Korea Telecom", 55836: "Reliance Jio",
    45609: "Bharti Airtel mobile", 26599: "Telefonica Brasil", 28573: "Claro BR", 8151: "Telmex",
    6830: "Liberty Global", 1136: "KPN", 3269: "Telecom Italia", 6327: "Shaw", 7545: "TPG",
}  # fmt: skip
ANON = ("hosting", "vpn", "proxy", "tor")


def say(msg: str) -> None:
    print(f"· {msg}", file=sys.stderr, flush=True)


def flagged(batch: Lookups, labels: Iterable[str] = ANON) -> np.ndarray:
    out = np.zeros(len(batch), dtype=bool)
    for label in labels:
        out |= batch.flag(label)
    return out


def col(snap: Snapshot, batch: Lookups, name: str) -> np.ndarray:
    """A per-source country column as ISO codes ('' where that source has no answer)."""
    values = snap.row_columns[f"cc:{name}"][batch.rows]
    return snap.country_table[values]


def country_eval(prod: Snapshot, held: Snapshot, v4: np.ndarray, v6: list[str]) -> dict[str, Any]:
    restricted = np.array(sorted(RESTRICTED))
    out: dict[str, Any] = {}
    for family, queries in (("ipv4", v4), ("ipv6", v6)):
        ref_batch = prod.lookup_many(queries)
        a, b = col(prod, ref_batch, REFERENCE_COUNTRY[0]), col(prod, ref_batch, REFERENCE_COUNTRY[1])
        agree = (a == b) & (a != "")
        agree_r = agree & np.isin(a, restricted)
        agree_other = agree & ~np.isin(a, restricted)
        res: dict[str, Any] = {
            "samples": len(queries),
            "references_agree": int(agree.sum()),
            "agree_restricted": int(agree_r.sum()),
            "agree_elsewhere": int(agree_other.sum()),
        }
        for label, snap in (("production", prod), ("held_out", held)):
            cc = snap.lookup_many(queries).country
            res[label] = {
                "restricted_recall": _share(cc[agree_r] == a[agree_r]),
                "restricted_false_placement": _share(np.isin(cc[agree_other], restricted)),
            }
        dbip = col(prod, ref_batch, "dbip-country")
        res["dbip_only"] = {
            "restricted_recall": _share(dbip[agree_r] == a[agree_r]),
            "restricted_false_placement": _share(np.isin(dbip[agree_other], restricted)),
        }
        out[family] = res
    return out


def vpn_eval(prod: Snapshot, held: Snapshot, vpn_src: SourceData) -> dict[str, Any]:
    groups: dict[str, list[str]] = {"unseen providers": [], "PIA and Proton (fed X4BNet)": []}
    providers: set[str] = set()
    for first, (_, provider) in zip(vpn_src.first, vpn_src.values, strict=True):
        ip = _text(first)
        known = any(k in provider.lower() for k in KNOWN_TO_BUILD)
        groups["PIA and Proton (fed X4BNet)" if known else "unseen providers"].append(ip)
        if not known:
            providers.add(provider)
    out: dict[str, Any] = {"unseen_provider_names": len(providers)}
    for name, ips in groups.items():
        hb = held.lookup_many(ips)
        x4 = _said_by(held, hb, ("x4bnet-vpn", "x4bnet-datacenter"))
        out[name] = {
            "n": len(ips),
            "held_out_flagged": _share(flagged(hb)),
            "held_out_vpn": _share(hb.flag("vpn")),
            "x4bnet_lists_only": _share(x4),
            "production_flagged": _share(flagged(prod.lookup_many(ips))),
        }
    return out


def consumer_eval(
    prod: Snapshot, sources: list[SourceData], data: Path, rng: np.random.Generator, n: int
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    starlink = consumer_isp_reference(data)
    asn_src = next(s for s in sources if s.meta.name == "dbip-asn")
    ranges: dict[str, list[tuple[int, int]]] = {"Starlink": list(zip(starlink.first, starlink.last, strict=True))}
    for first, last, (asn, _) in zip(asn_src.first, asn_src.last, asn_src.values, strict=True):
        if asn in CONSUMER_ASNS:
            ranges.setdefault("home and mobile ISPs", []).append((first, last))
    for name, rs in ranges.items():
        ips = _sample_ranges(rs, rng, n)
        batch = prod.lookup_many(ips)
        f = flagged(batch)
        by_label = {label: _share(batch.flag(label)) for label in ANON}
        out[name] = {
            "ranges": len(rs),
            "n": len(ips),
            "flagged": _share(f),
            "by_label": by_label,
            "examples": [ips[i] for i in np.flatnonzero(f)[:5].tolist()],
        }
    return out


def _said_by(snap: Snapshot, batch: Lookups, names: tuple[str, ...]) -> np.ndarray:
    hit = np.zeros(len(batch), dtype=bool)
    for bit, (name, _label) in enumerate(snap.label_sources):
        if name not in names:
            continue
        word = snap.row_columns[f"src{bit // 64}"][batch.rows]
        hit |= (word & np.uint64(1 << (bit % 64))) != 0
    return hit


def _sample_ranges(
    ranges: list[tuple[int, int]], rng: np.random.Generator, n: int, *, by_size: bool = True
) -> list[str]:
    """Addresses drawn from ``ranges``: uniformly over their union (``by_size``), or each range
    equally likely and then an address within it."""
    if by_size:
        sizes = np.array([float(last - first + 1) for first, last in ranges], dtype=np.float64)
        picks = rng.choice(len(ranges), size=n, p=sizes / sizes.sum())
    else:
        picks = rng.integers(0, len(ranges), size=n)
    out = []
    for i in picks.tolist():
        first, last = ranges[i]
        out.append(_text(first + int(rng.integers(0, min(last - first, (1 << 62) - 1) + 1))))
    return out


def _text(key: int) -> str:
    if V4_BASE <= key <= V4_BASE + 0xFFFF_FFFF:
        return str(ipaddress.IPv4Address(key - V4_BASE))
    return str(ipaddress.IPv6Address(key))


def _share(mask: np.ndarray) -> float | None:
    return round(float(mask.mean()), 5) if len(mask) else None


def markdown(result: dict[str, Any]) -> str:
    pct = lambda x: "n/a" if x is None else f"{100 * x:.2f} %"  # noqa: E731
    lines = [
        "# IP intelligence quality",
        "",
        f"Measured by `scripts/eval_intel.py` on {result['date']} over `../shared/data` "
        f"(seed {result['seed']}, {result['samples']:,} IPv4 samples). Regenerate with `make eval`.",
        "",
        "The **held-out** build leaves out every source used as a reference "
        f"({', '.join(HELD_OUT)}) and uses the RIR data installed with the package (iptocc) as its "
        "registry voter: its figures are out of sample. The **production** build uses everything; "
        "its country figures are in sample (the references vote in it) and shown for completeness.",
        "",
        "VPN and hosting providers held out whole (built without their own lists, or erased from every "
        "list so that only the network classifier can find them), with a tuning and a reporting half: "
        "docs/intel-holdout.md (`scripts/eval_intel_holdout.py`).",
        "",
        "## Countries: restricted jurisdictions",
        "",
        "References: iptoasn (routing) and ipverse (RIR registry). Target: recall >= 99.5 %, false placement <= 0.5 %.",
        "",
        "| family | addresses where references agree (restricted / elsewhere) | build | recall | false placement |",
        "|---|---|---|---|---|",
    ]
    for fam, r in result["country"].items():
        for label in ("held_out", "production", "dbip_only"):
            lines.append(
                f"| {fam} | {r['agree_restricted']:,} / {r['agree_elsewhere']:,} | {label.replace('_', ' ')} | "
                f"{pct(r[label]['restricted_recall'])} | {pct(r[label]['restricted_false_placement'])} |"
            )
    lines += [
        "",
        "## VPN exits of providers the build was not made from",
        "",
        "Target: >= 95 % flagged vpn, hosting, proxy or tor.",
        "",
        "| exits | n | held-out build flagged | of which vpn | X4BNet lists alone | production build |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in result["vpn"].items():
        if isinstance(r, dict):
            lines.append(
                f"| {name} | {r['n']:,} | {pct(r['held_out_flagged'])} | {pct(r['held_out_vpn'])} | "
                f"{pct(r['x4bnet_lists_only'])} | {pct(r['production_flagged'])} |"
            )
    lines += [
        "",
        f"Unseen providers: {result['vpn']['unseen_provider_names']} distinct names in the labelled exit list.",
        "",
        "## Consumer ISPs (must not be flagged)",
        "",
        "Target: <= 0.5 % flagged.",
        "",
        "| addresses | ranges | n | flagged | hosting | vpn | proxy | tor |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in result["consumer"].items():
        b = r["by_label"]
        lines.append(
            f"| {name} | {r['ranges']:,} | {r['n']:,} | {pct(r['flagged'])} | {pct(b['hosting'])} | "
            f"{pct(b['vpn'])} | {pct(b['proxy'])} | {pct(b['tor'])} |"
        )
    lines += ["", f"Build times: {result['build_seconds']}.", ""]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--samples", type=int, default=2_000_000)
    ap.add_argument("--seed", type=int, default=20261122)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--write", type=Path, help="write the markdown report to this file")
    args = ap.parse_args()
    if not args.data.is_dir():
        sys.exit(f"eval_intel: no data directory at {args.data}")
    rng = np.random.default_rng(args.seed)
    say(f"parsing sources under {args.data}")
    sources = discover(args.data)
    times: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        prod = Snapshot.open(build_snapshot(sources, Path(tmp) / "prod", progress=say))
        times["production"] = round(time.perf_counter() - t, 1)
        say("building the held-out snapshot (with iptocc as registry voter)")
        t = time.perf_counter()
        held_sources = [s for s in sources if s.meta.name not in HELD_OUT] + [iptocc_source()]
        held = Snapshot.open(build_snapshot(held_sources, Path(tmp) / "held", progress=say))
        times["held_out"] = round(time.perf_counter() - t, 1)

        say("evaluating")
        v4 = rng.integers(0x0100_0000, 0xE000_0000, size=args.samples, dtype=np.uint64).astype(np.uint32)
        dbip = next(s for s in sources if s.meta.name == "dbip-country")
        v6_ranges = [
            (f, la) for f, la in zip(dbip.first, dbip.last, strict=True) if f < V4_BASE or f > V4_BASE + 0xFFFF_FFFF
        ]
        v6 = _sample_ranges(v6_ranges, rng, min(args.samples, 300_000), by_size=False)
        vpn_src = next(s for s in sources if s.meta.name == "vpn-exits")
        result = {
            "date": time.strftime("%Y-%m-%d"),
            "seed": args.seed,
            "samples": args.samples,
            "country": country_eval(prod, held, v4, v6),
            "vpn": vpn_eval(prod, held, vpn_src),
            "consumer": consumer_eval(prod, sources, args.data, rng, 200_000),
            "build_seconds": times,
        }
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print(markdown(result))
    if args.write:
        args.write.write_text(markdown(result), encoding="utf-8")
        say(f"wrote {args.write}")


if __name__ == "__main__":
    main()
