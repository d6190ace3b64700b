"""Origin signals: the cost of one call of each (phone, card, email, client), p50 and p99.

- phone: ``phone.evaluate`` over a pool of real-looking numbers of many countries, repeated as a
  service sees them (parsing is cached on the normalised text), plus the parse alone, cached
  (a number seen again: budget under 5 µs) and uncached (libphonenumber's own cost);
- card: ``card.evaluate`` over BINs of every shipped scheme, with the shared binlist table as the
  operator's BIN table when ``../shared/data`` is there;
- email: ``email.evaluate`` over providers, ccTLDs, disposable and ordinary domains;
- client: ``client.evaluate`` over time zones and Accept-Language headers;
- with a snapshot (``--snapshot`` or ``GEOWARDEN_SNAPSHOT``): ``warden.decide`` with the IP only
  and with every fact (budget: p50 under 150 µs, p99 under 3x p50).

Run: ``python bench/bench_signals.py [--snapshot DIR] [-n 20000] [--json]``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence, Set
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import (
    DATA,
    Report,
    base_parser,
    call_overhead_ns,
    fmt_us,
    machine,
    measure_latency,
    parse_checked,
    rng_for,
    verdict,
)

from geowarden.model import Facts
from geowarden.policy import default_restricted
from geowarden.signals import card, client, email, phone

PARSE_CACHED_BUDGET_US = 5.0
DECIDE_ALL_BUDGET_US = 150.0
P99_X = 3.0

PHONES = [
    "+86 138 0013 8000", "+86 10 6552 9988", "+852 9123 4567", "+7 495 123 45 67", "+7 727 250 00 00",
    "+7 701 123 4567", "+98 912 123 4567", "+850 2 381 5926", "+1 650 253 0000", "+1 202 555 0123",
    "+1 800 555 0199", "+49 30 123456", "+49 151 23456789", "+81 90 1234 5678", "+81 50 1234 5678",
    "+65 8123 4567", "+65 6123 4567", "+44 20 7946 0000", "+44 56 1234 5678", "+33 6 12 34 56 78",
    "8613800138000", "+44 7700 900123",
]  # fmt: skip
BINS = ["411111", "510510", "222100", "378282", "601100", "352800", "622202", "220000", "911234", "603799",
        "409666", "434691", "427938", "414912", "453450", "411911", "45717360", "12345"]  # fmt: skip
EMAILS = ["li.wei@qq.com", "a@163.com", "ivan@mail.ru", "ivan@yandex.ru", "ops@company.com.cn", "a@corp.hk",
          "john@gmail.com", "hans@web.de", "taro@example.co.jp", "x@mailinator.com", "a@пример.рф",
          "not-an-address"]  # fmt: skip
ZONES = ["Asia/Shanghai", "Europe/Moscow", "Asia/Tehran", "America/New_York", "Europe/Berlin", "Asia/Tokyo",
         "Asia/Singapore", "Asia/Almaty", "UTC", "PRC", "Mars/Base"]  # fmt: skip
LANGS = ["zh-CN,zh;q=0.9,en;q=0.8", "en-US,en;q=0.9", "ru-RU,ru;q=0.9", "de-DE,de;q=0.9,en;q=0.8", "fa-IR",
         "ja-JP", "en-GB,en;q=0.9", "es-419,es;q=0.9"]  # fmt: skip
ACCOUNTS = "warden.decide, every fact, 500 accounts (zipf)"
IP_COUNTRIES = ["US", "DE", "CN", "JP", "SG", "RU", None]


@dataclass(frozen=True, slots=True)
class Ctx:
    restricted: Set[str]
    ip_country: str | None


def sample(pool: Sequence[Any], n: int, seed: int, stream: str) -> list[Any]:
    idx = rng_for(seed, stream).integers(0, len(pool), size=n)
    return [pool[i] for i in idx.tolist()]


def distinct_numbers(n: int, seed: int) -> list[str]:
    """``n`` different valid numbers (so the parse cache never hits), from the example numbers
    of many regions with random subscriber digits."""
    import phonenumbers  # noqa: PLC0415

    rng = rng_for(seed, "phones-cold")
    bases: list[str] = []
    for region in ("CN", "RU", "US", "DE", "JP", "SG", "HK", "IR", "KZ", "GB", "FR", "IN", "BR"):
        ex = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
        if ex is not None:
            bases.append(phonenumbers.format_number(ex, phonenumbers.PhoneNumberFormat.E164))
    out = []
    for i in range(n):
        base = bases[i % len(bases)]
        tail = f"{int(rng.integers(0, 10_000)):04d}"
        out.append(base[:-4] + tail)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=20_000, help="calls per signal per pass")
    parser.add_argument("--no-decide", action="store_true", help="skip the warden.decide figures")
    parser.add_argument("--state-url", default="redis://127.0.0.1:6379/0", help="Redis for the key-state case")
    args = parse_checked(parser, argv)
    n, seed = args.n, args.seed

    rep = Report("bench_signals: origin signals per call", args.json)
    env = machine()
    rep.doc["machine"] = env
    rep.say(f"machine  : {env['cpu']} x{env['cpus']} (shared, noisy), load {env['loadavg']}")
    restricted = frozenset(default_restricted())
    ctxs = [Ctx(restricted, cc) for cc in sample(IP_COUNTRIES, n, seed, "ip-country")]

    binlist = DATA / "payment" / "binlist-ranges.csv"
    table = card.BinTable.from_csv(binlist) if binlist.is_file() else None
    rep.say(f"BIN table: {table!r}" if table else "BIN table: none (shared data not found): schemes only")
    card_signal = card.CardSignal(table)

    phone_facts = [Facts(phone=p) for p in sample(PHONES, n, seed, "phones")]
    card_facts = [Facts(card_bin=b, billing_country=c) for b, c in zip(sample(BINS, n, seed, "bins"),
                  sample(["US", "DE", "CN", None], n, seed, "billing"), strict=True)]  # fmt: skip
    email_facts = [Facts(email=e) for e in sample(EMAILS, n, seed, "emails")]
    client_facts = [Facts(timezone=z, accept_language=a) for z, a in zip(sample(ZONES, n, seed, "zones"),
                    sample(LANGS, n, seed, "langs"), strict=True)]  # fmt: skip
    repeated = sample(PHONES, n, seed, "phones-parse")
    cold = distinct_numbers(n, seed)
    uncached = phone._parse.__wrapped__  # libphonenumber's cost without the cache

    def pairs(fn: Callable[[Facts, Ctx], object], fs: list[Facts]) -> tuple[Callable[[int], object], list[int]]:
        return (lambda i: fn(fs[i], ctxs[i])), list(range(n))

    cases: list[tuple[str, Callable[[Any], object], Sequence[Any]]] = [
        ("phone.evaluate (repeated numbers)", *pairs(phone.evaluate, phone_facts)),
        ("phone.parse, number seen before (cached)", phone.parse, repeated),
        ("phone.parse, uncached (libphonenumber)", lambda s: uncached(phone.normalise(s)), cold),
        ("card.evaluate (BIN table + schemes)", *pairs(card_signal.evaluate, card_facts)),
        ("email.evaluate", *pairs(email.evaluate, email_facts)),
        ("client.evaluate (time zone + languages)", *pairs(client.evaluate, client_facts)),
    ]
    overhead = call_overhead_ns() / 1e3
    lat = measure_latency(cases, args.repeat)
    rows = []
    for name, lt in lat.items():
        rows.append([name, fmt_us(lt.p50_median), fmt_us(lt.p99_median), fmt_us(min(lt.p50))])
    rep.say(f"{n:,} calls per case, {args.repeat} passes; timing overhead per call ~{overhead:.2f} µs (included)")
    rep.table(["case", "p50", "p99", "best p50"], rows)
    cached = lat["phone.parse, number seen before (cached)"].p50_median
    rep.say(f"repeated phone number parse p50 {fmt_us(cached)} (budget < {PARSE_CACHED_BUDGET_US:g} µs): "
            f"{verdict(cached < PARSE_CACHED_BUDGET_US)}")  # fmt: skip
    rep.doc["signals"] = {name: lt.to_dict() for name, lt in lat.items()}
    rep.doc["phone_parse_cached_ok"] = cached < PARSE_CACHED_BUDGET_US
    rep.say()

    if not args.no_decide:
        decide_section(rep, args, n, seed)
    rep.finish()
    return 0


def decide_section(rep: Report, args: Any, n: int, seed: int) -> None:
    snap = args.snapshot or (Path(p) if (p := os.environ.get("GEOWARDEN_SNAPSHOT")) else None)
    if snap is None:
        rep.say("warden.decide: skipped (give --snapshot DIR or GEOWARDEN_SNAPSHOT)")
        return
    from common import open_warden  # noqa: PLC0415

    warden = open_warden(snap)
    rep.say(f"snapshot : {warden.intel.id}; policy {warden.policy.version}")
    ips = sample(["8.8.8.8", "1.2.4.8", "5.3.0.1", "81.2.69.160", "2a00:1450:4001::1", "203.0.113.9"], n, seed, "ips")
    ip_only = [Facts(ip=ip) for ip in ips]
    with_key = [Facts(ip=ip, api_key_id=f"ak-{i % 500}", account_id=f"acct-{i % 500}") for i, ip in enumerate(ips)]
    # Accounts: each keeps its phone, card, email, clock and language across its requests (as
    # real traffic does), so the policy's memo of rule results works as it would in service.
    accounts = [
        {"phone": p, "card_bin": b, "billing_country": "DE", "email": e, "timezone": z, "accept_language": a,
         "account_id": f"acct-{i}", "api_key_id": f"ak-{i}"}
        for i, (p, b, e, z, a) in enumerate(zip(sample(PHONES, 500, seed, "a-phones"),
                                                sample(BINS[:-1], 500, seed, "a-bins"),
                                                sample(EMAILS, 500, seed, "a-emails"),
                                                sample(ZONES, 500, seed, "a-zones"),
                                                sample(LANGS, 500, seed, "a-langs"), strict=True))
    ]  # fmt: skip
    who = (rng_for(seed, "who").zipf(1.3, size=n) - 1) % len(accounts)
    by_account = [Facts(ip=ip, **accounts[i]) for ip, i in zip(ips, who.tolist(), strict=True)]
    # Worst case: every request a new combination of facts (the memo of rule results never hits).
    fresh = [
        Facts(ip=ip, phone=p, card_bin=b, billing_country="DE", email=e, timezone=z, accept_language=a)
        for ip, p, b, e, z, a in zip(ips, sample(PHONES, n, seed, "d-phones"), sample(BINS[:-1], n, seed, "d-bins"),
                                     sample(EMAILS, n, seed, "d-emails"), sample(ZONES, n, seed, "d-zones"),
                                     sample(LANGS, n, seed, "d-langs"), strict=True)
    ]  # fmt: skip
    cases: list[tuple[str, Any, list[Facts]]] = []
    redis_warden = _redis_warden(warden, args.state_url)
    if redis_warden is not None:
        cases.append(("warden.decide, IP + key state (Redis)", redis_warden.decide, with_key))
    else:
        rep.say(f"Redis at {args.state_url} is not answering: the Redis case is skipped")
    lat = measure_latency(
        [
            ("warden.decide, IP only", warden.decide, ip_only),
            ("warden.decide, IP + key state (memory)", warden.decide, with_key),
            *cases,
            (ACCOUNTS, warden.decide, by_account),
            ("warden.decide, every fact, all new", warden.decide, fresh),
            ("warden.evidence (signals only), every fact", warden.evidence, fresh),
        ],
        args.repeat,
    )
    rows = [
        [k, fmt_us(v.p50_median), fmt_us(v.p99_median), f"{v.p99_median / v.p50_median:.2f}x"] for k, v in lat.items()
    ]
    rep.table(["case", "p50", "p99", "p99/p50"], rows)
    full = lat[ACCOUNTS]
    ok = full.p50_median < DECIDE_ALL_BUDGET_US and full.p99_median < P99_X * full.p50_median
    rep.say(f"every fact, accounts: p50 {fmt_us(full.p50_median)} (budget < {DECIDE_ALL_BUDGET_US:g} µs), "
            f"p99 {full.p99_median / full.p50_median:.2f}x p50 (budget < {P99_X:g}x): {verdict(ok)}")  # fmt: skip
    rep.doc["decide"] = {k: v.to_dict() for k, v in lat.items()}
    rep.doc["decide_every_fact_ok"] = ok


def _redis_warden(warden: Any, url: str) -> Any:
    """A second Warden over the same snapshot and policy with its key state in Redis (or None)."""
    from geowarden.state import StateUnavailable  # noqa: PLC0415
    from geowarden.state.redisstore import RedisStore  # noqa: PLC0415
    from geowarden.warden import Warden  # noqa: PLC0415

    store = RedisStore(url, prefix="gwbench:", timeout=1.0)
    try:
        store.clear()
    except StateUnavailable:
        return None
    return Warden(warden.intel, warden.policy, state=store)


if __name__ == "__main__":
    sys.exit(main())
