"""Lookup speed: geowarden against the maxminddb C reader on the same DB-IP country file.

(a) single-lookup latency, one call per address: ``warden.lookup(ip)`` vs ``reader.get(ip)``;
(b) batch throughput, answer for answer (the country column included): ``lookup_many`` on
packed IPv4 ``uint32`` arrays, on IPv4 strings and on mixed IPv4/IPv6 strings, vs a loop of
``reader.get`` over the same strings and vs the fastest way found to drive the reader.

Run: ``python bench/bench_lookup.py --snapshot DIR`` (``--help`` for sizes; ``--json``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import numpy.typing as npt
from common import (
    Report,
    Throughput,
    base_parser,
    call_overhead_ns,
    fmt_rate,
    fmt_ratio,
    fmt_us,
    machine,
    measure_interleaved,
    measure_latency,
    measure_throughput,
    mixed,
    open_reader,
    open_warden,
    parse_checked,
    random_v4,
    random_v6,
    reader_country,
    rng_for,
    snapshot_info,
    v4_strings,
    verdict,
)

from geowarden.intel import addr

BUDGET_PACKED = 5_000_000  # addresses/s per core, DESIGN.md
BUDGET_STRINGS_X = 10.0  # lookup_many on strings vs a loop of reader.get

OURS = "geowarden lookup_many + .country"
ROWS = "geowarden lookup_many (rows only)"
LOOP = "reader.get loop"
FAST = "reader.get comprehension"


def reader_loop(reader: Any) -> Callable[[Sequence[str]], list[str]]:
    """The obvious way: a ``for`` loop calling ``reader.get`` and taking the country."""

    def run(ips: Sequence[str]) -> list[str]:
        out: list[str] = []
        for ip in ips:
            rec = reader.get(ip)
            out.append(rec["country"]["iso_code"] if rec and "country" in rec else "")
        return out

    return run


def reader_fastest(reader: Any) -> Callable[[Sequence[str]], list[str]]:
    """The fastest way found: one list comprehension, ``get`` bound to a local, no helper call.

    Tried and slower: ``list(map(reader.get, ips))`` then extracting (2.5x slower: keeping a
    million decoded records alive costs more than the lookups), ``get_with_prefix_len``
    (same cost plus a tuple), ``ipaddress`` objects instead of text (parsing in Python).
    """
    get = reader.get

    def run(ips: Sequence[str]) -> list[str]:
        return [r["country"]["iso_code"] if (r := get(ip)) and "country" in r else "" for ip in ips]

    return run


def geowarden_country(warden: Any) -> Callable[[Any], npt.NDArray[Any]]:
    def run(ips: Any) -> npt.NDArray[Any]:
        return warden.lookup_many(ips).country  # type: ignore[no-any-return]

    return run


@dataclass(frozen=True)
class Samples:
    v4: npt.NDArray[np.uint32]  # packed, as many as the largest batch
    v4_text: list[str]  # the first of them as text
    single_v4: list[str]
    single_v6: list[str]
    mix: list[str]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--single", type=int, default=50_000, help="addresses timed one by one")
    parser.add_argument(
        "--packed",
        type=int,
        nargs="+",
        default=[1_000_000, 10_000_000],
        help="sizes of the packed uint32 batches",
    )
    parser.add_argument("--strings", type=int, default=1_000_000, help="IPv4 string batch size")
    parser.add_argument("--mixed", type=int, default=500_000, help="mixed v4/v6 batch size")
    parser.add_argument("--v6-share", type=float, default=0.3, help="IPv6 share of the mix")
    return parse_checked(parser, argv)


def sample(args: argparse.Namespace) -> Samples:
    v4 = random_v4(max([*args.packed, args.strings, args.single, args.mixed]), rng_for(args.seed, "v4"))
    v4_text = v4_strings(v4[: max(args.strings, args.single, args.mixed)])
    n_mixed_v6 = round(args.mixed * args.v6_share)
    mix = mixed(
        v4_text[: args.mixed - n_mixed_v6],
        random_v6(n_mixed_v6, rng_for(args.seed, "mixed-v6")),
        rng_for(args.seed, "mix"),
    )
    return Samples(
        v4=v4,
        v4_text=v4_text,
        single_v4=v4_text[: args.single],
        single_v6=random_v6(args.single, rng_for(args.seed, "single-v6")),
        mix=mix,
    )


def agreement(warden: Any, reader: Any, ips: Sequence[str]) -> dict[str, float]:
    """Same answers? geowarden keeps DB-IP's own answer beside the fused one."""
    snap = warden.intel
    ours = warden.lookup_many(ips)
    theirs = np.array([reader_country(reader.get(ip)) for ip in ips])
    out = {"fused_country_equals_dbip": round(float((ours.country == theirs).mean()), 4)}
    dbip_col = snap.row_columns.get("cc:dbip-country")
    if dbip_col is not None:
        dbip = snap.country_table[dbip_col[ours.rows]]
        out["dbip_column_equals_reader"] = round(float((dbip == theirs).mean()), 4)
    return out


def single_section(rep: Report, warden: Any, reader: Any, s: Samples, repeat: int) -> None:
    snap = warden.intel
    overhead = call_overhead_ns()
    cases: list[tuple[str, Callable[[Any], object], Sequence[Any]]] = [
        ("geowarden warden.lookup  v4", warden.lookup, s.single_v4),
        ("maxminddb reader.get     v4", reader.get, s.single_v4),
        ("geowarden warden.lookup  v6", warden.lookup, s.single_v6),
        ("maxminddb reader.get     v6", reader.get, s.single_v6),
        ("  part: parse + row_of   v4", lambda ip: snap.row_of(addr.parse(ip)), s.single_v4),
        ("  part: addr.parse       v4", addr.parse, s.single_v4),
    ]
    lat = measure_latency(cases, repeat)
    rep.say(
        f"(a) single lookup latency: {len(s.single_v4):,} addresses, one call each, {repeat} passes; "
        f"timer+call overhead {overhead / 1e3:.2f} µs included"
    )
    rows: list[list[Any]] = []
    for name, _, _ in cases:
        x = lat[name]
        rows.append([name, fmt_us(x.p50_median), fmt_us(min(x.p50)), fmt_us(x.p99_median), fmt_us(min(x.p99))])
    rep.table(["call", "p50 (median)", "p50 (min)", "p99 (median)", "p99 (min)"], rows)
    single: dict[str, Any] = {" ".join(name.split()): lat[name].to_dict() for name, _, _ in cases}
    for fam in ("v4", "v6"):
        ours_p50 = lat[f"geowarden warden.lookup  {fam}"].p50_median
        peer_p50 = lat[f"maxminddb reader.get     {fam}"].p50_median
        ratio = peer_p50 / ours_p50
        single[f"ratio_reader_over_geowarden_p50_{fam}"] = round(ratio, 3)
        word = "faster" if ratio >= 1 else "slower"
        rep.say(f"    {fam}: reader.get p50 / warden.lookup p50 = {fmt_ratio(ratio)} (geowarden {word})")
    single["timer_overhead_us"] = round(overhead / 1e3, 3)
    rep.doc["single"] = single
    rep.say()


def batch_section(rep: Report, warden: Any, reader: Any, s: Samples, args: argparse.Namespace) -> None:
    repeat: int = args.repeat
    loop, fastest, ours_cc = reader_loop(reader), reader_fastest(reader), geowarden_country(warden)
    results: list[tuple[str, str, Throughput]] = []  # (workload, budget kind, timing)

    def run_strings(label: str, ips: list[str]) -> None:
        # The reader keeps no state worth warming: no untimed run, to keep the script short.
        cases: list[tuple[str, Callable[[], object], int]] = [
            (OURS, partial(ours_cc, ips), 1),
            (LOOP, partial(loop, ips), 0),
            (FAST, partial(fastest, ips), 0),
        ]
        timed = measure_interleaved(cases, len(ips), repeat)
        results.extend((label, "strings" if t.name == OURS else "", t) for t in timed)

    for n in args.packed:
        arr = s.v4[:n]
        label = f"packed uint32 {n:,}"
        rows_only = partial(warden.lookup_many, arr)
        results.append((label, "", measure_throughput(ROWS, rows_only, n, repeat)))
        results.append((label, "packed", measure_throughput(OURS, partial(ours_cc, arr), n, repeat)))
    strings_label = f"IPv4 strings {args.strings:,}"
    run_strings(strings_label, s.v4_text[: args.strings])
    run_strings(f"mixed strings {len(s.mix):,} ({args.v6_share:.0%} v6)", s.mix)

    # The reader has no packed-integer API: its peer figure for packed batches is its rate on
    # the same addresses as text (the IPv4 strings run).
    by_label: dict[str, dict[str, Throughput]] = {}
    for label, _, t in results:
        by_label.setdefault(label, {})[t.name] = t
    table: list[list[Any]] = []
    batch: list[dict[str, Any]] = []
    for label, budget, t in results:
        peers = by_label[label] if LOOP in by_label[label] else by_label[strings_label]
        vs_loop = t.rate / peers[LOOP].rate
        vs_fast = t.rate / peers[FAST].rate
        check = ""
        if budget == "packed":
            check = f">= 5 M/s: {verdict(t.rate >= BUDGET_PACKED)}"
        elif budget == "strings":
            check = f">= 10x loop: {verdict(vs_loop >= BUDGET_STRINGS_X)}"
        table.append(
            [
                label,
                t.name,
                f"{t.median_s:.3f}",
                f"{t.min_s:.3f}",
                fmt_rate(t.rate),
                "" if t.name == LOOP else fmt_ratio(vs_loop),
                "" if t.name == FAST else fmt_ratio(vs_fast),
                check,
            ]
        )
        batch.append(
            {
                "workload": label,
                "impl": t.name,
                **t.to_dict(),
                "ratio_vs_reader_loop": round(vs_loop, 3),
                "ratio_vs_reader_fastest": round(vs_fast, 3),
                "budget": check or None,
            }
        )
    rep.say(
        f"(b) batch throughput, answer for answer (country column included), {repeat} runs; "
        "ratios are rate / reader rate on the same addresses (packed: the IPv4 strings' peers)"
    )
    rep.table(
        ["workload", "implementation", "median s", "min s", "rate", "vs loop", "vs fastest", "budget"],
        table,
    )
    rep.doc["batch"] = batch


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    rep = Report("bench_lookup: geowarden vs maxminddb C reader", args.json)
    warden = open_warden(args.snapshot)
    snap = warden.intel
    reader, impl = open_reader(args.mmdb)
    env = machine()
    rep.doc.update(machine=env, snapshot=snapshot_info(snap), peer=impl, mmdb=str(args.mmdb))
    rep.say(f"machine  : {env['cpu']} x{env['cpus']} (shared, noisy), load {env['loadavg']}")
    rep.say(f"snapshot : {snap.id} ({snap.path})")
    rep.say(f"peer     : maxminddb.open_database({args.mmdb.name}, MODE_AUTO) -> {impl}")
    rep.say(f"repeats  : {args.repeat} (median and min reported), gc off while timing, seed {args.seed}")

    s = sample(args)
    split = float(((snap.v4_index24[s.v4[: args.strings] >> np.uint32(8)] >> 31) != 0).mean())
    rep.say(
        "addresses: IPv4 uniform over 1.0.0.0-223.255.255.255 minus special-purpose blocks; "
        "IPv6 inside RIR-allocated networks"
    )
    rep.say(f"           {split:.1%} of the IPv4 sample falls in /24 blocks split between answers")
    agree = agreement(warden, reader, s.v4_text[:100_000])
    rep.doc["sample"] = {"v4_in_split_24": round(split, 4), "seed": args.seed}
    rep.doc["agreement"] = agree
    rep.say("agreement on 100k IPv4: " + ", ".join(f"{k.replace('_', ' ')} {v:.2%}" for k, v in agree.items()))
    rep.say()

    single_section(rep, warden, reader, s, args.repeat)
    batch_section(rep, warden, reader, s, args)
    rep.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
