"""CEL engines for the policy rules: correctness and speed of the three maintained engines on PyPI.

- ``common-expression-language`` (import ``cel``): Python bindings of the Rust ``cel`` crate;
- ``cel-expr-python`` (import ``cel_expr_python.cel``): Google's bindings of the C++ runtime (cel-cpp);
- ``cel-python`` (import ``celpy``): pure Python (lark parser), with its default tree-walking
  ``InterpretedRunner`` and its transpiling ``CompiledRunner``.

What it checks, per engine:

- correctness: eight representative rules against four request contexts, with ``restricted`` as a
  list, as a map and inlined as a list literal, each through a context bound once and through the
  one-shot path (conversion inside the call); results are compared with a Python reference;
- error behaviour: syntax errors (and the line/column each engine reports), unknown fields, type
  errors, undeclared names, ``has()``, error absorption by ``||``, int/double mixing;
- reuse: the compiled object shared by four threads, each with its own context;
- speed: compile time per rule; evaluation per rule against a bound context and with the
  conversion of the Python context included; the conversion alone; and the headline, one request:
  convert the context once and evaluate all eight rules (p50 and p99 over ``--n`` requests).

The engines are not dependencies of geowarden: ``pip install common-expression-language
cel-expr-python cel-python``. An engine that is not installed is skipped with a line saying so.

Run: ``python bench/bench_cel.py`` (``--help`` for options; ``--quick`` for a short run). The
garbage collector stays on while timing (a server collects the per-request garbage too);
``--gc-off`` turns it off.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import datetime as dt
import gc
import importlib
import importlib.metadata
import logging
import os
import platform
import re
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

BUDGET_P50_US = 50.0
RESTRICTED = ("CN", "HK", "MO", "RU", "BY", "IR", "KP", "CU", "SY")
EAST_ASIA_OK = ("JP", "KR", "SG", "TW", "IN")
SHAPES = ("list", "map", "inlined")


# -- rules and contexts ------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    name: str
    source: str
    reference: Callable[[dict[str, Any]], bool]


def _r1(c: dict[str, Any]) -> bool:
    return c["ip"]["country"] in c["restricted"] and not c["allow"]["matched"]


def _r2(c: dict[str, Any]) -> bool:
    ip = c["ip"]
    return bool(ip["tor"] or (ip["vpn"] and ip["country"] not in c["restricted"]))


def _r3(c: dict[str, Any]) -> bool:
    return bool(c["ip"]["disagreement"] and any(x in c["restricted"] for x in c["ip"]["countries"]))


def _r4(c: dict[str, Any]) -> bool:
    return "billing_country" in c["facts"] and c["facts"]["billing_country"] != c["ip"]["country"]


def _r5(c: dict[str, Any]) -> bool:
    return c["facts"]["timezone"].startswith("Asia/") and c["ip"]["country"] not in EAST_ASIA_OK


def _r6(c: dict[str, Any]) -> bool:
    return "IP_HOSTING" in c["evidence"] and c["score"] > 0.3


def _r7(c: dict[str, Any]) -> bool:
    return len(c["evidence"]) >= 2


def _r8(c: dict[str, Any]) -> bool:
    return re.search("^zh", c["facts"]["accept_language"]) is not None


RULES = (
    Rule("r1", "ip.country in restricted && !allow.matched", _r1),
    Rule("r2", "ip.tor || (ip.vpn && !(ip.country in restricted))", _r2),
    Rule("r3", "ip.disagreement && ip.countries.exists(c, c in restricted)", _r3),
    Rule("r4", "has(facts.billing_country) && facts.billing_country != ip.country", _r4),
    Rule("r5", 'facts.timezone.startsWith("Asia/") && !(ip.country in ["JP","KR","SG","TW","IN"])', _r5),
    Rule("r6", '"IP_HOSTING" in evidence && score > 0.3', _r6),
    Rule("r7", "size(evidence) >= 2", _r7),
    Rule("r8", 'facts.accept_language.matches("^zh")', _r8),
)

RESTRICTED_LITERAL = "[" + ",".join(f'"{c}"' for c in RESTRICTED) + "]"


def rule_source(rule: Rule, shape: str) -> str:
    """The rule as compiled for a shape: ``inlined`` folds the restricted list into the source."""
    if shape == "inlined":
        return re.sub(r"\brestricted\b", RESTRICTED_LITERAL, rule.source)
    return rule.source


def _ip(country: str, **flags: Any) -> dict[str, Any]:
    ip: dict[str, Any] = {
        "country": country,
        "asn": 0,
        "hosting": False,
        "vpn": False,
        "tor": False,
        "proxy": False,
        "relay": False,
        "disagreement": False,
        "countries": [country],
        "reserved": False,
        "known": True,
    }
    ip.update(flags)
    return ip


def base_contexts() -> dict[str, dict[str, Any]]:
    """Four requests; ``A`` is the one from the design note (and the one timed)."""
    facts = {"account_id": "a1", "api_key_id": "k1"}
    return {
        "A": {
            "ip": _ip("CN", asn=4134, disagreement=True, countries=["CN", "SG"]),
            "evidence": ["IP_COUNTRY_RESTRICTED", "IP_HOSTING"],
            "allow": {"matched": False},
            "facts": facts
            | {"billing_country": "DE", "timezone": "Asia/Shanghai", "accept_language": "zh-CN,zh;q=0.9"},
            "score": 0.4,
        },
        "B": {  # Tor exit in the US; no billing country on file
            "ip": _ip("US", asn=396507, tor=True, relay=True),
            "evidence": ["IP_TOR"],
            "allow": {"matched": False},
            "facts": facts | {"timezone": "America/New_York", "accept_language": "en-US,en;q=0.9"},
            "score": 0.2,
        },
        "C": {  # VPN in Japan whose sources disagree (JP vs HK); score on the 0.3 boundary
            "ip": _ip("JP", asn=2516, vpn=True, disagreement=True, countries=["JP", "HK"]),
            "evidence": ["IP_VPN", "IP_HOSTING", "IP_DISAGREEMENT"],
            "allow": {"matched": True},
            "facts": facts | {"billing_country": "JP", "timezone": "Asia/Tokyo", "accept_language": "ja,zh;q=0.5"},
            "score": 0.3,
        },
        "D": {  # Hong Kong, allow-listed, hosting
            "ip": _ip("HK", asn=4760, hosting=True),
            "evidence": ["IP_HOSTING"],
            "allow": {"matched": True},
            "facts": facts | {"billing_country": "HK", "timezone": "Asia/Hong_Kong", "accept_language": ""},
            "score": 0.9,
        },
    }


def with_restricted(ctx: dict[str, Any], shape: str) -> dict[str, Any]:
    """The context as the rules see it: ``restricted`` as a list or a map; none when inlined."""
    out = copy.deepcopy(ctx)
    if shape == "list":
        out["restricted"] = list(RESTRICTED)
    elif shape == "map":
        out["restricted"] = dict.fromkeys(RESTRICTED, "export controls")
    return out


def reference_context(ctx: dict[str, Any]) -> dict[str, Any]:
    return ctx if "restricted" in ctx else ctx | {"restricted": list(RESTRICTED)}


# -- engines -----------------------------------------------------------------------------------


class EngineError(Exception):
    """An evaluation error that the engine returned as a value (cel-expr-python)."""


class Engine:
    """One engine behind a common interface: compile once, bind a context, run, report errors."""

    key: ClassVar[str]
    label: ClassVar[str]
    dist: ClassVar[str]
    module: ClassVar[str]

    def __init__(self) -> None:
        self.mod: Any = importlib.import_module(self.module)

    @property
    def version(self) -> str:
        return importlib.metadata.version(self.dist)

    def compile(self, source: str) -> Any:
        raise NotImplementedError

    def bind(self, ctx: dict[str, Any]) -> Any:
        """Convert one request's context into the engine's values, once for all rules."""
        raise NotImplementedError

    def run(self, program: Any, bound: Any) -> Any:
        """Evaluate against a bound context; a plain Python value, or an exception."""
        raise NotImplementedError

    def run_once(self, program: Any, ctx: dict[str, Any]) -> Any:
        """Evaluate straight from the Python context (conversion inside the call)."""
        raise NotImplementedError

    def position(self, exc: Exception) -> tuple[int | None, int | None, str]:
        """(line, column, reason) of a compile error, as far as the engine tells them."""
        return _position_from_text(str(exc))

    def error_kind(self, exc: Exception) -> str:
        return type(exc).__name__


_POS = re.compile(r"<input>:(\d+):(\d+): ?([^\n]*)")


def _position_from_text(text: str) -> tuple[int | None, int | None, str]:
    m = _POS.search(text)
    if m is None:
        return None, None, text.splitlines()[0] if text else ""
    return int(m.group(1)), int(m.group(2)), m.group(3)


class RustCel(Engine):
    key = "rust"
    label = "common-expression-language"
    dist = "common-expression-language"
    module = "cel"

    def compile(self, source: str) -> Any:
        return self.mod.compile(source)

    def bind(self, ctx: dict[str, Any]) -> Any:
        return self.mod.Context(variables=ctx)

    def run(self, program: Any, bound: Any) -> Any:
        return program.execute(bound)

    def run_once(self, program: Any, ctx: dict[str, Any]) -> Any:
        return program.execute(ctx)


class GoogleCel(Engine):
    """Type-checked environment: the variables are declared (``ip`` is ``map(string, dyn)``)."""

    key = "google"
    label = "cel-expr-python"
    dist = "cel-expr-python"
    module = "cel_expr_python.cel"

    def __init__(self) -> None:
        super().__init__()
        t = self.mod.Type
        self.env = self.mod.NewEnv(
            variables={
                "ip": t.Map(t.STRING, t.DYN),
                "restricted": t.DYN,  # a list or a map, depending on the shape measured
                "evidence": t.List(t.STRING),
                "allow": t.Map(t.STRING, t.BOOL),
                "facts": t.Map(t.STRING, t.STRING),
                "score": t.DOUBLE,
            }
        )
        self.error_type = t.ERROR

    def compile(self, source: str) -> Any:
        return self.env.compile(source)

    def bind(self, ctx: dict[str, Any]) -> Any:
        return self.env.Activation(ctx)

    def _value(self, value: Any) -> Any:
        # Evaluation errors come back as a Value of type ERROR whose .value() is the message (a
        # truthy str): never test the truthiness of .value(). A bool result cannot be an error, so
        # only other results pay for the type check (0.3 µs).
        result = value.value()
        if result.__class__ is bool:
            return result
        if value.type() == self.error_type:
            raise EngineError(result)
        return result

    def run(self, program: Any, bound: Any) -> Any:
        return self._value(program.eval(bound))

    def run_once(self, program: Any, ctx: dict[str, Any]) -> Any:
        return self._value(program.eval(data=ctx))

    def error_kind(self, exc: Exception) -> str:
        if isinstance(exc, EngineError):
            return "error value " + str(exc).split(":", 1)[0]
        return type(exc).__name__


class CelPy(Engine):
    key = "celpy"
    label = "cel-python"
    dist = "cel-python"
    module = "celpy"
    runner = "InterpretedRunner"

    def __init__(self) -> None:
        super().__init__()
        # CompiledRunner logs every evaluation error at ERROR level; keep the table readable.
        logger = logging.getLogger("celpy")
        logger.addHandler(logging.NullHandler())
        logger.propagate = False
        self.env = self.mod.Environment(runner_class=getattr(self.mod, self.runner))
        self.bool_type = self.mod.celtypes.BoolType

    def compile(self, source: str) -> Any:
        return self.env.program(self.env.compile(source))

    def bind(self, ctx: dict[str, Any]) -> Any:
        return self.mod.json_to_cel(ctx)

    def run(self, program: Any, bound: Any) -> Any:
        return self._plain(program.evaluate(bound))

    def run_once(self, program: Any, ctx: dict[str, Any]) -> Any:
        return self._plain(program.evaluate(self.mod.json_to_cel(ctx)))

    def _plain(self, value: Any) -> Any:
        return bool(value) if isinstance(value, self.bool_type) else value

    def position(self, exc: Exception) -> tuple[int | None, int | None, str]:
        line, column = getattr(exc, "line", None), getattr(exc, "column", None)
        if line is None:
            return _position_from_text(str(exc))
        # CELParseError carries the position and the source line with a caret, but not lark's reason.
        snippet = " | ".join(x for x in str(exc).splitlines() if x.strip())
        return line, column, f"(no reason given) {snippet}"

    def error_kind(self, exc: Exception) -> str:
        if type(exc).__name__ == "CELEvalError" and len(exc.args) > 1 and isinstance(exc.args[1], type):
            return f"CELEvalError({exc.args[1].__name__})"
        return type(exc).__name__


class CelPyCompiled(CelPy):
    key = "celpy-compiled"
    label = "cel-python (CompiledRunner)"
    runner = "CompiledRunner"

    def __init__(self) -> None:
        # celpy keeps one lark parser per process, built with the tree class of the first Environment
        # created. CompiledRunner needs TranspilerTree nodes, so a process whose first Environment was an
        # InterpretedRunner one fails with "'Tree' object has no attribute 'checked_exception'". The
        # reset below is the one celpy's docstring gives; TranspilerTree subclasses Tree, so the
        # interpreted runner keeps working with the new parser.
        importlib.import_module("celpy.celparser").CELParser.CEL_PARSER = None
        super().__init__()


ENGINES: tuple[type[Engine], ...] = (RustCel, GoogleCel, CelPy, CelPyCompiled)


# -- correctness -------------------------------------------------------------------------------


def _outcome(engine: Engine, fn: Callable[[], Any]) -> tuple[str, Any]:
    try:
        return "value", fn()
    except Exception as exc:  # every engine raises its own classes
        return "error", engine.error_kind(exc)


def _both_paths(engine: Engine, program: Any, ctx: dict[str, Any]) -> dict[str, tuple[str, Any]]:
    """The outcome through a context bound first, and through the one-shot call."""
    bound = engine.bind(ctx)
    return {
        "bound": _outcome(engine, lambda: engine.run(program, bound)),
        "once": _outcome(engine, lambda: engine.run_once(program, ctx)),
    }


def check_rules(engine: Engine, contexts: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    """Per rule, the problems found (empty: every context, shape and path agrees with Python)."""
    problems: dict[str, list[str]] = {rule.name: [] for rule in RULES}
    for shape in SHAPES:
        for rule in RULES:
            try:
                program = engine.compile(rule_source(rule, shape))
            except Exception as exc:
                problems[rule.name].append(f"{shape}: compile error {engine.error_kind(exc)}")
                continue
            for cname, base in contexts.items():
                ctx = with_restricted(base, shape)
                want = rule.reference(reference_context(ctx))
                for path, (kind, got) in _both_paths(engine, program, ctx).items():
                    if kind == "error":
                        problems[rule.name].append(f"{shape}/{cname}/{path}: error {got}")
                    elif got is not want:
                        problems[rule.name].append(f"{shape}/{cname}/{path}: {got!r}, want {want}")
    return problems


@dataclass(frozen=True)
class Probe:
    name: str
    source: str
    overrides: dict[str, Any] = field(default_factory=dict)


PROBES = (
    Probe("syntax error", "ip.country in"),
    Probe("syntax error, line 3", 'ip.country ==\n  "CN" &&\n  ip.asn >> 3'),
    Probe("unknown field", "ip.nonexistent == 1"),
    Probe("has() of unknown field", "has(ip.nonexistent)"),
    Probe("unknown field || true", "ip.nonexistent == 1 || true"),
    Probe("type error (int + string)", 'ip.asn + "x"'),
    Probe("type error in literals", '1 + "x"'),
    Probe("undeclared variable", 'ipx.country == "CN"'),
    Probe("string extension", 'ip.country.lowerAscii() == "cn"'),
    Probe("double > int literal", "score > 1"),
    Probe("score is an int (1)", "score > 0.3", {"score": 1}),
    Probe("non-bool result", "size(evidence)"),
    Probe("evidence is a tuple", "size(evidence) >= 2", {"evidence": ("IP_HOSTING", "IP_TOR")}),
    Probe("division by zero", "ip.asn / 0 == 1"),
)


def run_probe(engine: Engine, probe: Probe, ctx: dict[str, Any]) -> tuple[str, str]:
    """(short outcome for the table, full message)."""
    try:
        program = engine.compile(probe.source)
    except Exception as exc:
        line, col, reason = engine.position(exc)
        where = f"{line}:{col}" if line is not None else "no position"
        return f"compile error @{where}", reason
    try:
        value = engine.run_once(program, ctx | probe.overrides)
    except Exception as exc:
        return f"run-time {engine.error_kind(exc)}", str(exc).splitlines()[0] if str(exc) else ""
    return f"{value!r}", ""


def thread_check(engine: Engine, contexts: dict[str, dict[str, Any]], iters: int, threads: int = 4) -> str:
    """The compiled programs shared by ``threads`` threads, each evaluating its own context."""
    programs = [engine.compile(rule.source) for rule in RULES]
    ctxs = [with_restricted(c, "list") for c in contexts.values()]

    def request(ctx: dict[str, Any]) -> list[tuple[str, Any]]:
        bound = engine.bind(ctx)
        return [_outcome(engine, lambda p=p: engine.run(p, bound)) for p in programs]

    # Compared with the engine's own single-threaded outcome (errors included), not with Python's:
    # this checks sharing, not correctness.
    wants = [request(c) for c in ctxs]
    wrong: list[str] = []
    lock = threading.Lock()

    def worker(t: int) -> None:
        ctx, want = ctxs[t % len(ctxs)], wants[t % len(ctxs)]
        for _ in range(iters):
            got = request(ctx)
            if got != want:
                with lock:
                    wrong.append(repr(got))

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
        for th in pool:
            th.start()
        for th in pool:
            th.join()
    finally:
        sys.setswitchinterval(old)
    total = threads * iters
    if not wrong:
        return f"ok ({total} requests)"
    return f"WRONG {len(wrong)}/{total}, e.g. {wrong[0][:90]}"


# -- timing ------------------------------------------------------------------------------------


@contextlib.contextmanager
def gc_state(off: bool) -> Iterator[None]:
    gc.collect()
    if not off:
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@dataclass
class Lat:
    p50: float  # µs
    p99: float

    def cell(self) -> str:
        return f"{fmt(self.p50)} / {fmt(self.p99)}"


def percentile(sorted_ns: Sequence[int], q: float) -> float:
    idx = min(len(sorted_ns) - 1, max(0, round(q * (len(sorted_ns) - 1))))
    return sorted_ns[idx] / 1e3


def latency(fn: Callable[[int], object], n: int, warmup: int, gc_off: bool) -> Lat:
    """p50/p99 of ``fn(i)`` over ``n`` calls after ``warmup`` calls (µs; one timer read included)."""
    for i in range(warmup):
        fn(i)
    out = [0] * n
    clock = time.perf_counter_ns
    with gc_state(gc_off):
        for i in range(n):
            t0 = clock()
            fn(i)
            out[i] = clock() - t0
    out.sort()
    return Lat(percentile(out, 0.50), percentile(out, 0.99))


def compile_us(engine: Engine, source: str, n: int) -> float:
    engine.compile(source)
    clock = time.perf_counter_ns
    samples = []
    for _ in range(n):
        t0 = clock()
        engine.compile(source)
        samples.append(clock() - t0)
    return statistics.median(samples) / 1e3


def timer_overhead_us(n: int = 50_000) -> float:
    return latency(lambda _i: None, n, 1000, gc_off=True).p50


@dataclass
class Timings:
    compile: dict[str, float] = field(default_factory=dict)
    bound: dict[str, Lat] = field(default_factory=dict)
    once: dict[str, Lat] = field(default_factory=dict)
    bind: dict[str, Lat] = field(default_factory=dict)  # per shape
    request: dict[str, Lat] = field(default_factory=dict)  # per shape: bind + all rules


def pool_of(ctx: dict[str, Any], size: int = 256) -> list[dict[str, Any]]:
    """Distinct but equal context objects, one per request (no identity caching)."""
    return [copy.deepcopy(ctx) for _ in range(size)]


def time_engine(engine: Engine, base: dict[str, Any], args: argparse.Namespace, log: Callable[[str], None]) -> Timings:
    out = Timings()
    n, warm, gc_off = args.n, args.warmup, args.gc_off
    pool = pool_of(with_restricted(base, "list"))
    size = len(pool)
    programs = {rule.name: engine.compile(rule.source) for rule in RULES}
    bound0 = engine.bind(pool[0])
    for rule in RULES:
        log(f"{engine.label}: {rule.name}")
        prog = programs[rule.name]
        out.compile[rule.name] = compile_us(engine, rule.source, args.compile_n)
        out.bound[rule.name] = latency(lambda _i, p=prog: engine.run(p, bound0), n, warm, gc_off)
        out.once[rule.name] = latency(lambda i, p=prog: engine.run_once(p, pool[i % size]), n, warm, gc_off)
    for shape in SHAPES:
        log(f"{engine.label}: request, restricted {shape}")
        spool = pool_of(with_restricted(base, shape))
        progs = [engine.compile(rule_source(rule, shape)) for rule in RULES]
        want = [rule.reference(reference_context(spool[0])) for rule in RULES]
        got = [engine.run(p, engine.bind(spool[0])) for p in progs]
        if got != want:
            raise SystemExit(f"{engine.label}: wrong results for shape {shape}: {got} != {want}")

        def request(i: int, spool: list[dict[str, Any]] = spool, progs: list[Any] = progs) -> list[Any]:
            bound = engine.bind(spool[i % size])
            return [engine.run(p, bound) for p in progs]

        out.bind[shape] = latency(lambda i, spool=spool: engine.bind(spool[i % size]), n, warm, gc_off)
        out.request[shape] = latency(request, n, warm, gc_off)
    return out


# -- output ------------------------------------------------------------------------------------


def fmt(us: float) -> str:
    if us >= 1000:
        return f"{us / 1000:.2f} ms"
    if us >= 100:
        return f"{us:.0f}"
    if us >= 10:
        return f"{us:.1f}"
    return f"{us:.2f}"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[str(c) for c in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for j, row in enumerate(cells):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if j == 0:
            print("  ".join("-" * w for w in widths))
    print()


def machine_line() -> str:
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(encoding="ascii", errors="replace").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    return f"{now}; {cpu or platform.machine()}; {os.cpu_count()} cpus; load {load}; Python {platform.python_version()}"


# -- main --------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    keys = [e.key for e in ENGINES]
    parser.add_argument("--engines", nargs="+", choices=keys, default=keys, metavar="ENGINE", help=f"of {keys}")
    parser.add_argument("--n", type=int, default=20_000, help="timed evaluations (or requests) per figure")
    parser.add_argument("--warmup", type=int, default=1_000, help="untimed calls before each figure")
    parser.add_argument("--compile-n", type=int, default=200, help="compilations per rule for the compile time")
    parser.add_argument("--thread-iters", type=int, default=300, help="requests per thread in the thread check")
    parser.add_argument("--quick", action="store_true", help="short run: --n 2000 --warmup 200 --compile-n 20")
    parser.add_argument("--no-timing", action="store_true", help="correctness and error behaviour only")
    parser.add_argument("--gc-off", action="store_true", help="disable the garbage collector while timing")
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.warmup, args.compile_n, args.thread_iters = 2_000, 200, 20, 50
    if args.n < 100:
        parser.error("--n must be at least 100")
    return args


def load_engines(keys: Sequence[str]) -> list[Engine]:
    engines: list[Engine] = []
    for cls in ENGINES:
        if cls.key not in keys:
            continue
        try:
            engines.append(cls())
        except ImportError as exc:
            print(f"skipped {cls.label}: not installed ({exc}); pip install {cls.dist}")
    return engines


def report_correctness(engines: Sequence[Engine], contexts: dict[str, dict[str, Any]], thread_iters: int) -> None:
    print(
        "Correctness: 4 contexts x restricted as list / map / inlined literal x (bound once, one-shot);"
        " 'ok' = all 24 agree with Python"
    )
    checks = {e.key: check_rules(e, contexts) for e in engines}
    rows = []
    for rule in RULES:
        row: list[str] = [rule.name]
        for e in engines:
            bad = checks[e.key][rule.name]
            row.append("ok" if not bad else f"{len(bad)} wrong: {bad[0]}")
        rows.append(row)
    table(["rule", *[e.label for e in engines]], rows)

    print("Error behaviour (context A, restricted as a list; one-shot path)")
    ctx_a = with_restricted(contexts["A"], "list")
    results = {e.key: [run_probe(e, p, ctx_a) for p in PROBES] for e in engines}
    rows = [[p.name, *[results[e.key][i][0] for e in engines]] for i, p in enumerate(PROBES)]
    table(["probe", *[e.label for e in engines]], rows)
    print("Messages (line:column as reported; the reason as the engine words it)")
    for i, p in enumerate(PROBES):
        for e in engines:
            short, full = results[e.key][i]
            if full:
                print(f"  {p.name:<26} {e.label:<28} {short}: {full[:150]}")
    print()

    print("Reuse: compiled programs shared by 4 threads, each binding and evaluating its own context")
    table(["engine", "result"], [[e.label, thread_check(e, contexts, thread_iters)] for e in engines])


def report_timing(engines: Sequence[Engine], timed: dict[str, Timings], args: argparse.Namespace) -> None:
    overhead = timer_overhead_us()
    gc_word = "off" if args.gc_off else "on"
    print(f"Timing: context A, {args.n} timed calls after {args.warmup} warm-up; µs, p50 / p99; gc {gc_word};")
    print(f"a timer read and a Python call add ~{overhead:.2f} µs to each figure; compile: median of {args.compile_n}")
    print()
    print("Per rule: compile | evaluate against a context bound once | evaluate with the conversion of the context")
    rows = []
    for rule in RULES:
        row = [rule.name]
        for e in engines:
            t = timed[e.key]
            row += [fmt(t.compile[rule.name]), t.bound[rule.name].cell(), t.once[rule.name].cell()]
        rows.append(row)
    heads = ["rule"]
    for e in engines:
        heads += [f"{e.key} compile", f"{e.key} bound", f"{e.key} +convert"]
    table(heads, rows)

    print("Per request: converting the context alone (bind), and bind + all 8 rules (the headline)")
    rows = []
    for e in engines:
        t = timed[e.key]
        row = [e.label]
        for shape in SHAPES:
            row += [t.bind[shape].cell(), t.request[shape].cell()]
        p50 = t.request["list"].p50
        row.append(f"{'within' if p50 <= BUDGET_P50_US else 'OVER'} ({p50 / BUDGET_P50_US:.0%})")
        rows.append(row)
    heads = ["engine"]
    for shape in SHAPES:
        heads += [f"bind ({shape})", f"8 rules ({shape})"]
    heads.append(f"budget {BUDGET_P50_US:.0f} µs p50")
    table(heads, rows)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)

    def log(text: str) -> None:
        print(f"  ... {text}", file=sys.stderr, flush=True)

    print(f"CEL engines for geowarden policy rules -- {machine_line()}")
    engines = load_engines(args.engines)
    if not engines:
        print("no engine installed: pip install common-expression-language cel-expr-python cel-python")
        return 1
    print()
    table(["engine", "version", "import"], [[e.label, e.version, e.module] for e in engines])
    print("Rules")
    table(["rule", "source"], [[r.name, r.source] for r in RULES])

    contexts = base_contexts()
    report_correctness(engines, contexts, args.thread_iters)
    if not args.no_timing:
        timed = {e.key: time_engine(e, contexts["A"], args, log) for e in engines}
        report_timing(engines, timed, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
