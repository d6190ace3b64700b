"""Shared helpers for the geowarden benchmarks (``bench/bench_*.py``).

- where the snapshot is (``--snapshot DIR``, else ``GEOWARDEN_SNAPSHOT``, else the current one
  under ``GEOWARDEN_HOME``) and where the peer, the ``maxminddb`` C reader, reads from;
- realistic addresses with a fixed seed: IPv4 uniform over unicast space (1.0.0.0 to
  223.255.255.255 minus the special-purpose blocks), IPv6 inside networks the RIRs allocated,
  plus restricted-country, hosting and Tor exit addresses from ``../shared/data``;
- timing with ``time.perf_counter_ns`` and the garbage collector off while timing;
- a plain-text table printer, and ``--json`` output (one JSON document on stdout; the table
  then goes to stderr).

The scripts add the ``bench`` directory to ``sys.path`` by being run as files
(``python bench/bench_lookup.py``), so this module is imported as ``common``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import functools
import gc
import ipaddress
import json
import os
import platform
import socket
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("GEOWARDEN_BENCH_DATA", ROOT.parent / "shared" / "data"))
MMDB = DATA / "ip" / "dbip-country-lite.mmdb"
DEFAULT_SEED = 20260901

#: Special-purpose IPv4 blocks inside 1.0.0.0-223.255.255.255 that no client comes from.
RESERVED_V4 = (
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.88.99.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
)
V4_LOW = 0x0100_0000  # 1.0.0.0
V4_HIGH = 0xE000_0000  # 224.0.0.0 (exclusive)

#: Jurisdictions the default policy restricts (``geowarden.policy.default.RESTRICTED``).
RESTRICTED = ("CN", "HK", "MO", "RU", "BY", "IR", "KP", "CU", "SY")
#: Hosting providers' own published ranges (``cloud/by-provider/<name>_ipv4_merged.txt``).
HOSTING_PROVIDERS = ("amazon", "google", "microsoft", "digitalocean", "linode", "oracle", "vultr")

Net = ipaddress.IPv4Network | ipaddress.IPv6Network


# -- arguments and opening -----------------------------------------------------------------


def base_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument(
        "--snapshot",
        type=Path,
        default=None,
        help="snapshot directory; default: GEOWARDEN_SNAPSHOT, else the current snapshot under GEOWARDEN_HOME",
    )
    parser.add_argument("--mmdb", type=Path, default=MMDB, help="MMDB file the maxminddb peer reads")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="address sampling seed")
    parser.add_argument("--repeat", type=int, default=5, help="times each measurement is repeated (>= 5)")
    parser.add_argument(
        "--json",
        action="store_true",
        help="print one JSON document on stdout (the table goes to stderr)",
    )
    return parser


def parse_checked(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.repeat < 5:
        print(f"warning: --repeat {args.repeat}: fewer than 5 repeats, figures are not comparable", file=sys.stderr)
    return args


def resolve_snapshot(arg: Path | None) -> Path:
    """The snapshot directory to benchmark; exits with a hint when there is none.

    Unlike a bare ``Warden.open()`` this never builds the default snapshot as a side effect:
    a benchmark that silently spent a minute building would report nonsense.
    """
    if arg is not None:
        return arg
    from geowarden.intel.store import SnapshotStore  # noqa: PLC0415
    from geowarden.settings import Settings  # noqa: PLC0415

    settings = Settings.from_env()
    if settings.snapshot is not None:
        return settings.snapshot
    current = SnapshotStore(settings.intel_dir).current_path()
    if current is None:
        sys.exit(
            f"no snapshot under {settings.intel_dir}: pass --snapshot DIR or build one with "
            "`GEOWARDEN_HOME=... geowarden intel build --from ../shared/data`"
        )
    return current


def open_warden(arg: Path | None) -> Any:
    """``Warden.open(snapshot=...)`` on the resolved snapshot directory."""
    from geowarden.errors import GeowardenError  # noqa: PLC0415
    from geowarden.warden import Warden  # noqa: PLC0415

    try:
        return Warden.open(snapshot=resolve_snapshot(arg))
    except GeowardenError as exc:
        sys.exit(f"cannot open the snapshot: {exc}")


def open_reader(path: Path) -> tuple[Any, str]:
    """The maxminddb reader in ``MODE_AUTO`` and which implementation it is."""
    import maxminddb  # noqa: PLC0415

    reader = maxminddb.open_database(str(path), mode=maxminddb.MODE_AUTO)
    module = reader.__class__.__module__
    if module == "maxminddb.extension":
        impl = f"C extension ({module}.{reader.__class__.__name__}, maxminddb {maxminddb.__version__})"
    else:
        impl = f"PURE PYTHON ({module}) - the C extension is NOT in use; peer figures are unfair"
        print(f"warning: maxminddb reader is {impl}", file=sys.stderr)
    return reader, impl


def reader_country(rec: Any) -> str:
    """The country a maxminddb DB-IP/GeoIP country record gives, ``""`` for none."""
    if rec and "country" in rec:
        return str(rec["country"]["iso_code"])
    return ""


# -- timing --------------------------------------------------------------------------------


@contextlib.contextmanager
def gc_off() -> Iterator[None]:
    """Collect once, then keep the cyclic garbage collector off while timing."""
    was = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def repeat_ns(fn: Callable[[], object], repeat: int, *, warmup: int = 1) -> list[int]:
    """Wall time of ``fn()`` in ns, ``repeat`` times after ``warmup`` untimed runs."""
    for _ in range(warmup):
        fn()
    out: list[int] = []
    clock = time.perf_counter_ns
    for _ in range(repeat):
        with gc_off():
            t0 = clock()
            fn()
            out.append(clock() - t0)
    return out


def per_call_ns(fn: Callable[[Any], object], items: Sequence[Any]) -> npt.NDArray[np.int64]:
    """Latency of each ``fn(item)`` call in ns (includes ~one ``perf_counter_ns`` read)."""
    out = np.empty(len(items), dtype=np.int64)
    clock = time.perf_counter_ns
    with gc_off():
        for i, item in enumerate(items):
            t0 = clock()
            fn(item)
            out[i] = clock() - t0
    return out


def _noop(_item: object) -> None:
    return None


def call_overhead_ns(n: int = 50_000) -> float:
    """Median cost of timing one call of a do-nothing function: what ``per_call_ns`` adds."""
    return float(np.median(per_call_ns(_noop, range(n))))


@dataclass
class Latency:
    """p50/p99 of per-call latencies over ``repeat`` passes: median and min across passes."""

    name: str
    p50: list[float] = field(default_factory=list)  # µs, one per pass
    p99: list[float] = field(default_factory=list)

    def add(self, samples_ns: npt.NDArray[np.int64]) -> None:
        p50, p99 = np.percentile(samples_ns, [50, 99])
        self.p50.append(float(p50) / 1e3)
        self.p99.append(float(p99) / 1e3)

    @property
    def p50_median(self) -> float:
        return statistics.median(self.p50)

    @property
    def p99_median(self) -> float:
        return statistics.median(self.p99)

    def to_dict(self) -> dict[str, Any]:
        return {
            "p50_us_median": round(self.p50_median, 3),
            "p50_us_min": round(min(self.p50), 3),
            "p99_us_median": round(self.p99_median, 3),
            "p99_us_min": round(min(self.p99), 3),
            "passes": len(self.p50),
        }


def measure_latency(
    cases: Sequence[tuple[str, Callable[[Any], object], Sequence[Any]]], repeat: int
) -> dict[str, Latency]:
    """Per-call latency of each ``(name, fn, items)`` case, the cases interleaved pass by pass
    so that noise from the shared machine spreads over all of them alike."""
    out = {name: Latency(name) for name, _, _ in cases}
    for _, fn, items in cases:  # warm up: caches, page faults, lazy imports
        for item in items[: min(2000, len(items))]:
            fn(item)
    for _ in range(repeat):
        for name, fn, items in cases:
            out[name].add(per_call_ns(fn, items))
    return out


@dataclass
class Throughput:
    """Wall times of one batch operation over ``n`` items, ``repeat`` times."""

    name: str
    n: int
    times_ns: list[int]

    @property
    def median_s(self) -> float:
        return statistics.median(self.times_ns) / 1e9

    @property
    def min_s(self) -> float:
        return min(self.times_ns) / 1e9

    @property
    def rate(self) -> float:
        """Items per second at the median time."""
        return self.n / self.median_s

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "median_s": round(self.median_s, 6),
            "min_s": round(self.min_s, 6),
            "rate_per_s_median": round(self.rate),
            "rate_per_s_best": round(self.n / self.min_s),
            "runs": len(self.times_ns),
        }


def measure_throughput(name: str, fn: Callable[[], object], n: int, repeat: int, *, warmup: int = 1) -> Throughput:
    return Throughput(name, n, repeat_ns(fn, repeat, warmup=warmup))


def measure_interleaved(
    cases: Sequence[tuple[str, Callable[[], object], int]], n: int, repeat: int
) -> list[Throughput]:
    """Wall times of each ``(name, fn, warmup runs)`` case over the same ``n`` items, run
    round-robin (one run of each case per round) so machine noise spreads over all alike."""
    for _, fn, warmup in cases:
        for _ in range(warmup):
            fn()
    times: dict[str, list[int]] = {name: [] for name, _, _ in cases}
    clock = time.perf_counter_ns
    for _ in range(repeat):
        for name, fn, _ in cases:
            with gc_off():
                t0 = clock()
                fn()
                times[name].append(clock() - t0)
    return [Throughput(name, n, times[name]) for name, _, _ in cases]


# -- address sampling ----------------------------------------------------------------------


def rng_for(seed: int, stream: str) -> np.random.Generator:
    """Independent, reproducible generator per named stream."""
    return np.random.default_rng([seed, *stream.encode()])


@functools.cache
def _reserved_v4_bounds() -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.uint32]]:
    nets = [ipaddress.IPv4Network(n) for n in RESERVED_V4]
    lo = np.array([int(n.network_address) for n in nets], dtype=np.uint32)
    hi = np.array([int(n.broadcast_address) for n in nets], dtype=np.uint32)
    return lo, hi


def random_v4(n: int, rng: np.random.Generator) -> npt.NDArray[np.uint32]:
    """``n`` packed IPv4 addresses uniform over unicast space (1.0.0.0-223.255.255.255 minus
    private, loopback, CGN, link-local, documentation and benchmark blocks)."""
    lo, hi = _reserved_v4_bounds()
    out = rng.integers(V4_LOW, V4_HIGH, size=n, dtype=np.uint32)
    while True:
        bad = np.zeros(n, dtype=bool)
        for a, b in zip(lo, hi, strict=True):
            bad |= (out >= a) & (out <= b)
        k = int(bad.sum())
        if not k:
            return out
        out[bad] = rng.integers(V4_LOW, V4_HIGH, size=k, dtype=np.uint32)


def v4_strings(values: npt.NDArray[np.uint32]) -> list[str]:
    """Dotted-quad text of packed IPv4 addresses."""
    buf = np.ascontiguousarray(values, dtype=">u4").tobytes()
    ntoa = socket.inet_ntoa
    return [ntoa(buf[i : i + 4]) for i in range(0, len(buf), 4)]


def _prefixes_from_file(path: Path) -> list[str]:
    out: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        text = line.split("#", 1)[0].strip()
        if text:
            out.append(text)
    return out


@functools.cache
def ipverse_prefixes(version: int, countries: tuple[str, ...] = ()) -> list[Net]:
    """Networks the RIRs delegated (``ip/ipverse-country``), all countries or the given ones."""
    root = DATA / "ip" / "ipverse-country" / "country"
    dirs = [root / c.lower() for c in countries] if countries else sorted(root.iterdir())
    key = "ipv4" if version == 4 else "ipv6"
    nets: list[Net] = []
    for d in dirs:
        path = d / "aggregated.json"
        if not path.is_file():
            continue
        doc = json.loads(path.read_text(encoding="utf-8"))
        nets.extend(ipaddress.ip_network(p) for p in doc.get("prefixes", {}).get(key, []))
    return nets


@functools.cache
def hosting_prefixes() -> list[Net]:
    """IPv4 networks cloud/hosting providers publish as theirs."""
    nets: list[Net] = []
    for name in HOSTING_PROVIDERS:
        path = DATA / "cloud" / "by-provider" / f"{name}_ipv4_merged.txt"
        if path.is_file():
            nets.extend(ipaddress.ip_network(p, strict=False) for p in _prefixes_from_file(path))
    return nets


@functools.cache
def tor_exits() -> list[str]:
    """Tor exit relay addresses (IPv4 and IPv6), from the newest list in ``anonymizers/tor``."""
    files = sorted((DATA / "anonymizers" / "tor").glob("exit-nodes-*.txt"))
    if not files:
        raise SystemExit(f"no Tor exit list under {DATA / 'anonymizers' / 'tor'}")
    return _prefixes_from_file(files[-1])


def sample_in(nets: Sequence[Net], n: int, rng: np.random.Generator, *, by_size: bool) -> list[str]:
    """``n`` random addresses inside ``nets``: networks chosen by size (share of addresses)
    or uniformly (each network alike, right for IPv6 where sizes span 2**100), then a
    uniformly random address inside the network chosen."""
    if by_size:
        sizes = np.array([float(x.num_addresses) for x in nets])
        picks = rng.choice(len(nets), size=n, p=sizes / sizes.sum())
    else:
        picks = rng.integers(0, len(nets), size=n)
    out: list[str] = []
    for k in picks.tolist():
        net = nets[k]
        host_bits = net.max_prefixlen - net.prefixlen
        offset = 0
        for shift in range(0, host_bits, 32):
            offset |= int(rng.integers(0, 1 << min(32, host_bits - shift))) << shift
        out.append(str(net.network_address + offset))
    return out


def random_v6(n: int, rng: np.random.Generator) -> list[str]:
    """``n`` IPv6 addresses inside RIR-allocated networks (each network equally likely)."""
    return sample_in(ipverse_prefixes(6), n, rng, by_size=False)


def mixed(v4: Sequence[str], v6: Sequence[str], rng: np.random.Generator) -> list[str]:
    """``v4`` and ``v6`` shuffled together."""
    items = [*v4, *v6]
    order = rng.permutation(len(items))
    return [items[i] for i in order.tolist()]


# -- memory --------------------------------------------------------------------------------


def proc_status_kb() -> dict[str, int]:
    """VmRSS, RssAnon, RssFile and VmHWM of this process, in kB (Linux)."""
    out: dict[str, int] = {}
    with Path("/proc/self/status").open(encoding="ascii") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile", "RssShmem", "VmHWM"):
                out[key] = int(value.split()[0])
    return out


def dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


# -- reporting -----------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """Where the figures were taken."""
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(encoding="ascii", errors="replace").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    import maxminddb  # noqa: PLC0415

    import geowarden  # noqa: PLC0415

    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "numpy": np.__version__,
        "maxminddb": maxminddb.__version__,
        "geowarden": getattr(geowarden, "__version__", "?"),
    }


def snapshot_info(snap: Any) -> dict[str, Any]:
    counts = snap.meta.get("counts", {})
    return {
        "id": snap.id,
        "path": str(snap.path),
        "note": snap.meta.get("note", ""),
        "sources": len(snap.meta.get("sources", [])),
        "v4_intervals": counts.get("v4_intervals"),
        "v6_intervals": counts.get("v6_intervals"),
        "rows": counts.get("rows"),
    }


class Report:
    """Collects tables; prints them to stdout, or to stderr with ``--json`` (then the JSON
    document alone goes to stdout)."""

    def __init__(self, title: str, as_json: bool) -> None:
        self.as_json = as_json
        self.out: TextIO = sys.stderr if as_json else sys.stdout
        self.doc: dict[str, Any] = {"benchmark": title}
        self.say(f"== {title} ==")

    def say(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        cells = [[_cell(v) for v in row] for row in rows]
        widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]

        def line(values: Sequence[str]) -> str:
            first = values[0].ljust(widths[0])
            rest = [v.rjust(w) for v, w in zip(values[1:], widths[1:], strict=True)]
            return "  ".join([first, *rest]).rstrip()

        self.say(line(list(headers)))
        self.say("  ".join("-" * w for w in widths))
        for r in cells:
            self.say(line(r))
        self.say()

    def finish(self) -> None:
        load = [round(x, 2) for x in os.getloadavg()]
        self.doc["loadavg_end"] = load
        self.say(f"load average at the end: {load} (2 shared cores: above ~0.5 the figures are noisier)")
        if self.as_json:
            sys.stdout.write(json.dumps(self.doc, indent=1, ensure_ascii=False) + "\n")


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def fmt_rate(per_s: float) -> str:
    if per_s >= 1e6:
        return f"{per_s / 1e6:,.2f} M/s"
    return f"{per_s / 1e3:,.1f} k/s"


def fmt_us(us: float) -> str:
    return f"{us:,.2f} µs"


def fmt_ratio(x: float) -> str:
    return f"{x:,.1f}x" if x >= 10 else f"{x:,.2f}x"


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"
