"""Decision latency: ``warden.decide(Facts(ip=...))`` over a realistic address mix, against the
peer cost of ``reader.get(ip)`` (maxminddb C reader, DB-IP country) for the same addresses.

The mix: ordinary IPv4 (uniform over unicast space) and IPv6 (inside RIR allocations),
addresses in restricted jurisdictions (RIR delegations of CN, RU, IR, ...), hosting addresses
(cloud providers' own published ranges) and Tor exit relays (``anonymizers/tor``).

Run: ``python bench/bench_decide.py --snapshot DIR`` (``--help`` for options; ``--json``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from common import (
    RESTRICTED,
    Report,
    base_parser,
    call_overhead_ns,
    fmt_ratio,
    fmt_us,
    hosting_prefixes,
    ipverse_prefixes,
    machine,
    open_reader,
    open_warden,
    parse_checked,
    per_call_ns,
    random_v4,
    random_v6,
    rng_for,
    sample_in,
    snapshot_info,
    tor_exits,
    v4_strings,
    verdict,
)

from geowarden.model import Facts

BUDGET_P50_US = 50.0
BUDGET_P99_X = 3.0

#: Share of each kind of address in the mix (the default; ``--mix`` changes it).
DEFAULT_MIX = {"ordinary-v4": 0.55, "ordinary-v6": 0.15, "hosting": 0.15, "restricted": 0.10, "tor": 0.05}


def parse_mix(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for part in text.split(","):
        name, _, share = part.partition("=")
        if name.strip() not in DEFAULT_MIX:
            raise argparse.ArgumentTypeError(f"unknown kind {name!r}; kinds: {', '.join(DEFAULT_MIX)}")
        out[name.strip()] = float(share)
    return out


def build_mix(n: int, shares: dict[str, float], seed: int) -> tuple[list[str], npt.NDArray[np.str_]]:
    """``n`` addresses in the given shares, shuffled, and the kind of each."""
    total = sum(shares.values())
    counts = {k: round(n * v / total) for k, v in shares.items() if v > 0}
    makers: dict[str, Callable[[int], list[str]]] = {
        "ordinary-v4": lambda k: v4_strings(random_v4(k, rng_for(seed, "decide-v4"))),
        "ordinary-v6": lambda k: random_v6(k, rng_for(seed, "decide-v6")),
        "hosting": lambda k: sample_in(hosting_prefixes(), k, rng_for(seed, "hosting"), by_size=False),
        "restricted": lambda k: sample_in(
            ipverse_prefixes(4, RESTRICTED), k, rng_for(seed, "restricted"), by_size=True
        ),
        "tor": lambda k: [str(x) for x in rng_for(seed, "tor").choice(tor_exits(), size=k)],
    }
    ips: list[str] = []
    kinds: list[str] = []
    for kind, k in counts.items():
        ips.extend(makers[kind](k))
        kinds.extend([kind] * k)
    order = rng_for(seed, "decide-order").permutation(len(ips))
    return [ips[i] for i in order.tolist()], np.array(kinds)[order]


Samples = dict[str, list[npt.NDArray[np.int64]]]  # case name -> per-call ns, one array per pass
DECIDE = "geowarden warden.decide(Facts)"
READER = "maxminddb reader.get(ip)"


def time_cases(cases: Sequence[tuple[str, Callable[[Any], object], Sequence[Any]]], repeat: int) -> Samples:
    """Per-call latencies; passes interleaved so machine noise falls on every case alike."""
    for _, fn, items in cases:
        for item in items[:2000]:
            fn(item)
    samples: Samples = {name: [] for name, _, _ in cases}
    for _ in range(repeat):
        for name, fn, items in cases:
            samples[name].append(per_call_ns(fn, items))
    return samples


def pct(samples: Samples, name: str, q: float, mask: npt.NDArray[np.bool_] | None = None) -> tuple[float, float]:
    """Median and min over passes of the q-th percentile, in µs."""
    per_pass = [float(np.percentile(s if mask is None else s[mask], q)) / 1e3 for s in samples[name]]
    return statistics.median(per_pass), min(per_pass)


def overall_section(rep: Report, samples: Samples) -> dict[str, Any]:
    rows: list[list[Any]] = []
    out: dict[str, Any] = {}
    for name in samples:
        p50, p50_min = pct(samples, name, 50)
        p99, p99_min = pct(samples, name, 99)
        rows.append([name, fmt_us(p50), fmt_us(p50_min), fmt_us(p99), fmt_us(p99_min), f"{p99 / p50:.2f}"])
        out[" ".join(name.split())] = {
            "p50_us_median": round(p50, 3),
            "p50_us_min": round(p50_min, 3),
            "p99_us_median": round(p99, 3),
            "p99_us_min": round(p99_min, 3),
        }
    overhead = call_overhead_ns()
    rep.say(f"all addresses (timer+call overhead {overhead / 1e3:.2f} µs included)")
    rep.table(["call", "p50 (median)", "p50 (min)", "p99 (median)", "p99 (min)", "p99/p50"], rows)

    d50, _ = pct(samples, DECIDE, 50)
    d99, _ = pct(samples, DECIDE, 99)
    r50, _ = pct(samples, READER, 50)
    ratio = d50 / r50
    rep.say(f"    decide p50 / reader.get p50 = {fmt_ratio(ratio)}  (a decision costs {ratio:.1f} reader lookups)")
    rep.say(f"    budget p50 < {BUDGET_P50_US:.0f} µs: {fmt_us(d50)} -> {verdict(d50 < BUDGET_P50_US)}")
    rep.say(f"    budget p99 < {BUDGET_P99_X:.0f}x p50: {d99 / d50:.2f}x -> {verdict(d99 < BUDGET_P99_X * d50)}")
    rep.say()
    out["ratio_decide_over_reader_p50"] = round(ratio, 3)
    out["budget_p50"] = verdict(d50 < BUDGET_P50_US)
    out["budget_p99"] = verdict(d99 < BUDGET_P99_X * d50)
    out["timer_overhead_us"] = round(overhead / 1e3, 3)
    return out


def kind_section(
    rep: Report, warden: Any, samples: Samples, ips: list[str], kinds: npt.NDArray[np.str_]
) -> dict[str, Any]:
    """Per kind of address, and what the policy made of them (a check that the mix is right)."""
    shares = Counter(kinds.tolist())
    actions: dict[str, Counter[str]] = {k: Counter() for k in shares}
    for ip, kind in zip(ips, kinds.tolist(), strict=True):
        actions[kind][warden.decide(Facts(ip=ip)).action.value] += 1
    rows: list[list[Any]] = []
    out: dict[str, Any] = {}
    for kind in shares:
        mask = kinds == kind
        k50, _ = pct(samples, DECIDE, 50, mask)
        k99, _ = pct(samples, DECIDE, 99, mask)
        g50, _ = pct(samples, READER, 50, mask)
        acts = ", ".join(f"{a} {c / shares[kind]:.0%}" for a, c in actions[kind].most_common(3))
        rows.append([kind, f"{shares[kind]:,}", fmt_us(k50), fmt_us(k99), fmt_us(g50), fmt_ratio(k50 / g50), acts])
        out[kind] = {
            "n": shares[kind],
            "decide_p50_us": round(k50, 3),
            "decide_p99_us": round(k99, 3),
            "reader_p50_us": round(g50, 3),
            "actions": dict(actions[kind]),
        }
    rep.say("per kind of address (medians over passes; ratio = decide p50 / reader.get p50)")
    rep.table(["kind", "n", "decide p50", "decide p99", "reader p50", "ratio", "actions"], rows)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=50_000, help="addresses (one decision each) per pass")
    parser.add_argument(
        "--mix",
        type=parse_mix,
        default=DEFAULT_MIX,
        help="shares of each kind, e.g. ordinary-v4=0.55,ordinary-v6=0.15,hosting=0.15,restricted=0.1,tor=0.05",
    )
    args = parse_checked(parser, argv)

    rep = Report("bench_decide: warden.decide vs maxminddb reader.get", args.json)
    warden = open_warden(args.snapshot)
    reader, impl = open_reader(args.mmdb)
    env = machine()
    rep.doc.update(machine=env, snapshot=snapshot_info(warden.intel), peer=impl, policy=warden.policy.version)
    rep.say(f"machine  : {env['cpu']} x{env['cpus']} (shared, noisy), load {env['loadavg']}")
    rep.say(f"snapshot : {warden.intel.id} ({warden.intel.path}); policy {warden.policy.version}")
    rep.say(f"peer     : {impl}")

    ips, kinds = build_mix(args.n, args.mix, args.seed)
    facts = [Facts(ip=ip) for ip in ips]  # built outside the timing, as a service receives them
    pairs = [(warden.evidence(f), f) for f in facts]
    # A second engine for the no-memo figure, so that clearing its memo leaves the Warden's alone.
    pol = warden.policy
    fresh = type(pol)(pol.spec, pol.rules, signer=pol.signer, egress=pol.egress) if hasattr(pol, "spec") else pol
    memo = getattr(fresh, "_memo", None)

    def judge_fresh(evidence: Any, fact: Facts) -> object:
        if memo is not None:
            memo.clear()
        return fresh.judge(evidence, fact)

    rep.say("mix      : " + ", ".join(f"{k} {v / len(ips):.0%}" for k, v in Counter(kinds.tolist()).items()))
    rep.say(f"repeats  : {args.repeat} passes of {len(ips):,} calls, one timed call each, gc off, seed {args.seed}")
    rep.say()

    cases: list[tuple[str, Callable[[Any], object], Sequence[Any]]] = [
        (DECIDE, warden.decide, facts),
        (READER, reader.get, ips),
        ("  part: warden.evidence(Facts)", warden.evidence, facts),
        ("  part: warden.lookup(ip)", warden.lookup, ips),
        # What the policy adds to a decision: judging evidence already found, with the engine's
        # memo of rule results as it runs in a service, and with every request a memo miss.
        ("  part: policy.judge (memo)", lambda pair: warden.policy.judge(*pair), pairs),
        ("  part: policy.judge (no memo)", lambda pair: judge_fresh(*pair), pairs),
    ]
    samples = time_cases(cases, args.repeat)
    out = overall_section(rep, samples)
    out["per_kind"] = kind_section(rep, warden, samples, ips, kinds)
    rep.doc["decide"] = out
    rep.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
