"""The batch job behind ``geowarden analyze``: load, run every analysis, summarise, report.

::

    from geowarden.analytics.run import analyze, write_findings, feed_back
    result = analyze([Path("logs/")], accounts=Path("accounts.parquet"))   # DuckDB
    result = analyze([Path("logs/")], backend="spark")                      # Spark (local[2])
    write_findings(result.findings, Path("out"))                             # findings.json, .parquet
    feed_back(result.findings, open_store("redis://..."), ttl=7 * 86400)    # flags for the live path

The analyses are the modules of this package named in ``ANALYSES``, each with
``run(ctx: AnalysisContext) -> list[Finding]``, run in that order. With ``out_dir``,
``write_report`` writes the findings and the HTML report (``report.write``).
"""

from __future__ import annotations

import json
import resource
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from geowarden.analytics import campaigns, graph, infra, keys, report, restricted
from geowarden.analytics.findings import KINDS, SEVERITIES, AnalysisContext, Finding, at_least
from geowarden.analytics.load import Problems
from geowarden.analytics.thresholds import BY_ANALYSIS
from geowarden.errors import ConfigError

if TYPE_CHECKING:
    from geowarden.intel.snapshot import Snapshot

#: Analysis modules, in the order they run.
#: Every analysis, in the order it runs.
ANALYSES: dict[str, Callable[[AnalysisContext], list[Finding]]] = {
    "keys": keys.run,
    "infra": infra.run,
    "graph": graph.run,
    "campaigns": campaigns.run,
    "restricted": restricted.run,
}
TOP_ASNS = 20
FINDINGS_JSON = "findings.json"
FINDINGS_PARQUET = "findings.parquet"
#: Version of the findings files: every finding in ``findings.json`` carries it as
#: ``findings_version``, ``findings.parquet`` in its schema metadata. Files without it are older
#: (version 1) and ``read_findings`` refuses them.
FINDINGS_VERSION = 2
#: Flag code prefix on keys and accounts (``ANALYTICS_KEY_SHARED``, ...).
FLAG_PREFIX = "ANALYTICS_"


@dataclass(slots=True)
class AnalysisResult:
    findings: list[Finding]
    problems: Problems
    account_problems: Problems | None
    stats: dict[str, Any]
    summary: dict[str, Any] = field(default_factory=dict)

    def problems_dict(self) -> dict[str, Any]:
        doc = self.problems.to_dict()
        if self.account_problems is not None:
            doc["accounts"] = self.account_problems.to_dict()
        return doc

    def to_dict(self) -> dict[str, Any]:
        return {
            "findings": [f.to_dict() for f in self.findings],
            "problems": self.problems_dict(),
            "stats": self.stats,
            "summary": self.summary,
        }


def analyze(
    paths: Sequence[Path],
    *,
    accounts: Path | None = None,
    backend: str = "duckdb",
    snapshot: Snapshot | None = None,
    restricted: frozenset[str] | None = None,
    settings: dict[str, dict[str, Any]] | None = None,
    progress: bool = False,
    out_dir: Path | None = None,
    spark_master: str | None = None,
    spark_conf: Sequence[tuple[str, str]] = (),
    threads: int | None = None,
    say: Callable[[str], None] | None = None,
    min_severity: str = SEVERITIES[0],
) -> AnalysisResult:
    """Run every analysis over the logs in ``paths`` (files or directories) on ``backend``.

    ``snapshot``: the intel snapshot (default: the current one, as ``Warden.open`` finds it);
    ``restricted``: jurisdictions (default: the default policy's); ``settings``: thresholds per
    analysis (``{"keys": {"min_score": 0.6}}``); ``spark_master`` and ``spark_conf``: the Spark
    backend's master URL (default ``local[2]``) and extra settings; ``progress``: a rich progress display on
    stderr; ``say``: a callback for phase messages instead; ``min_severity``: keep the findings of
    this severity or above (``findings.SEVERITIES``; default: every finding, ``origin_hidden`` too)."""
    from geowarden.analytics.backends import BACKENDS, open_engine  # noqa: PLC0415
    from geowarden.analytics.common import sharing  # noqa: PLC0415
    from geowarden.analytics.load import load  # noqa: PLC0415

    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend {backend!r} (one of {', '.join(BACKENDS)})")
    for p in paths:
        if not Path(p).exists():
            raise ConfigError(f"{p}: no such file or directory")
    if accounts is not None and not Path(accounts).is_file():
        raise ConfigError(f"{accounts}: no such accounts file")
    check_settings(settings or {})
    if min_severity not in SEVERITIES:
        raise ConfigError(f"unknown severity {min_severity!r} (one of {', '.join(SEVERITIES)})")
    t_start = time.perf_counter()
    cpu: dict[str, float] = {}
    c_start = _cpu()
    snap = snapshot if snapshot is not None else _default_snapshot()
    if restricted is None:
        from geowarden.policy import default_restricted  # noqa: PLC0415

        restricted = default_restricted()
    with _phases(progress, say) as phase:
        engine = open_engine(backend, threads=threads, spark_master=spark_master, spark_conf=spark_conf)
        try:
            with phase("loading logs") as note:
                c = _cpu()
                loaded = load(engine, list(paths), snap, restricted, accounts=accounts, progress=note)
                cpu["load"] = round(_cpu() - c, 3)
            ctx = AnalysisContext(
                events=loaded.events,
                accounts=loaded.accounts,
                backend=backend,
                restricted=frozenset(restricted),
                settings=dict(settings or {}),
            )
            seconds = {k: round(v, 3) for k, v in loaded.seconds.items()}
            with sharing(ctx):
                findings, ran, missing = _run_analyses(ctx, phase, seconds, cpu)
                with phase("summary"):
                    t, c = time.perf_counter(), _cpu()
                    summary, counts = _summary(ctx)
                    seconds["summary"] = round(time.perf_counter() - t, 3)
                    cpu["summary"] = round(_cpu() - c, 3)
        finally:
            engine.close()
    order = {k: i for i, k in enumerate(KINDS)}
    findings = at_least(findings, min_severity)
    findings.sort(key=lambda f: (order.get(f.kind, len(order)), -f.score, f.subject))
    seconds["total"] = round(time.perf_counter() - t_start, 3)
    cpu["total"] = round(_cpu() - c_start, 3)
    stats = _stats(backend, loaded, counts, findings, ran, missing, snap, restricted, seconds, cpu)
    result = AnalysisResult(findings, loaded.problems, loaded.account_problems, stats, summary)
    if out_dir is not None:
        write_report(result, out_dir)
    return result


def _stats(
    backend: str,
    loaded: Any,
    counts: dict[str, int],
    findings: list[Finding],
    ran: list[str],
    missing: list[str],
    snap: Any,
    restricted: frozenset[str],
    seconds: dict[str, float],
    cpu: dict[str, float],
) -> dict[str, Any]:
    """The run's figures (``AnalysisResult.stats``)."""
    by_kind = {k: sum(1 for f in findings if f.kind == k) for k in KINDS}
    return {
        "backend": backend,
        "files": loaded.files,
        "rows_read": loaded.problems.rows_read,
        "events": counts["events"],
        "skipped": loaded.problems.skipped,
        "accounts": counts["accounts"],
        "keys": counts["keys"],
        "distinct_ips": loaded.distinct_ips,
        "accounts_table": counts.get("accounts_table"),
        "accounts_skipped": loaded.account_problems.skipped if loaded.account_problems else None,
        "findings": len(findings),
        "findings_by_kind": by_kind,
        "findings_by_severity": {v: sum(1 for f in findings if f.severity == v) for v in SEVERITIES},
        "analyses": ran,
        "analyses_missing": missing,
        "snapshot": getattr(snap, "id", None),
        "restricted": sorted(restricted),
        "seconds": seconds,
        "cpu_seconds": cpu,
        "events_per_second": round(counts["events"] / seconds["total"]) if seconds["total"] > 0 else None,
    }


def check_settings(settings: Mapping[str, Mapping[str, Any]]) -> None:
    """Settings name analyses and only their thresholds, each a non-negative number
    (``thresholds``): a typo is a ConfigError before anything runs, not a silently ignored
    threshold."""
    for name in settings:
        if name not in ANALYSES:
            raise ConfigError(f"settings: no analysis named {name!r} (one of {', '.join(ANALYSES)})")
        if name in BY_ANALYSIS:
            BY_ANALYSIS[name].read(settings)


def _run_analyses(
    ctx: AnalysisContext, phase: Any, seconds: dict[str, float], cpu: dict[str, float]
) -> tuple[list[Finding], list[str], list[str]]:
    """Every analysis of ``ANALYSES``: (findings, ran, missing — always empty, kept in the stats
    for readers of older result files)."""
    findings: list[Finding] = []
    ran: list[str] = []
    missing: list[str] = []
    for name, run in ANALYSES.items():
        with phase(f"analysis: {name}") as note:
            ctx.progress = _unprefixed(note, name)
            t, c = time.perf_counter(), _cpu()
            findings.extend(run(ctx))
            seconds[name] = round(time.perf_counter() - t, 3)
            cpu[name] = round(_cpu() - c, 3)
        ran.append(name)
    return findings, ran, missing


def _cpu() -> float:
    """CPU seconds of this process so far, every thread (DuckDB's included; not Spark's JVM)."""
    use = resource.getrusage(resource.RUSAGE_SELF)
    return use.ru_utime + use.ru_stime


def _default_snapshot() -> Snapshot:
    from geowarden.warden import Warden  # noqa: PLC0415

    return Warden.open().intel  # the current snapshot under GEOWARDEN_HOME


def _unprefixed(note: Callable[[str], None], name: str) -> Callable[[str], None]:
    """``note`` without the analysis name that some analyses put in front of their messages."""
    return lambda msg: note(msg[len(name) + 2 :] if msg.startswith(f"{name}: ") else msg)


# -- summary ---------------------------------------------------------------------------------


def _summary(ctx: AnalysisContext) -> tuple[dict[str, Any], dict[str, int]]:
    """What the report draws: events by country and day, the ASNs carrying the most accounts."""
    from geowarden.analytics.common import DAY_MS, asn_orgs, rows, usage  # noqa: PLC0415

    ev = ctx.events
    day = (ev.ts_ms // DAY_MS).name("day")
    vol = ev.group_by([day, ev.country]).aggregate(events=ev.count())
    volume = [
        {
            "day": datetime.fromtimestamp(int(r["day"]) * 86_400, UTC).strftime("%Y-%m-%d"),
            "country": r["country"],
            "events": int(r["events"]),
        }
        for r in rows(vol)
    ]
    volume.sort(key=lambda r: (r["day"], -r["events"], r["country"] or ""))
    with usage(ctx) as use:
        b = use.filter(use.asn.notnull())
        per_asn = b.group_by("asn").aggregate(accounts=b.account_id.nunique(), events=b.n.sum())
        top = rows(per_asn.order_by([per_asn.accounts.desc(), per_asn.events.desc(), per_asn.asn]).limit(TOP_ASNS))
        totals = rows(use.aggregate(events=use.n.sum(), accounts=use.account_id.nunique(), keys=use.key.nunique()))[0]
    orgs = asn_orgs(ctx, {r["asn"] for r in top})
    for r in top:
        r["org"] = orgs.get(r["asn"])
    counts = {k: int(v or 0) for k, v in totals.items()}
    if ctx.accounts is not None:
        counts["accounts_table"] = int(rows(ctx.accounts.aggregate(n=ctx.accounts.count()))[0]["n"])
    summary = {
        "volume_by_country_day": volume,
        "top_asns": [
            {"asn": int(r["asn"]), "org": r["org"], "accounts": int(r["accounts"]), "events": int(r["events"])}
            for r in top
        ],
    }
    return summary, counts


# -- output ----------------------------------------------------------------------------------


def write_findings(findings: Sequence[Finding], out_dir: Path) -> tuple[Path, Path]:
    """Every finding as ``DIR/findings.json`` (a list of ``Finding.to_dict()``) and
    ``DIR/findings.parquet`` (kind, subject, score, members, severity, keys, evidence as JSON text),
    both marked with ``FINDINGS_VERSION``."""
    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.parquet as pq  # noqa: PLC0415

    out = _out_dir(out_dir)
    dicts = [{**f.to_dict(), "findings_version": FINDINGS_VERSION} for f in findings]
    json_path = out / FINDINGS_JSON
    json_path.write_text(json.dumps(dicts, indent=1, default=str) + "\n", encoding="utf-8")
    table = pa.table(
        {
            "kind": pa.array([d["kind"] for d in dicts], pa.string()),
            "subject": pa.array([d["subject"] for d in dicts], pa.string()),
            "score": pa.array([d["score"] for d in dicts], pa.float64()),
            "members": pa.array([d["members"] for d in dicts], pa.list_(pa.string())),
            "severity": pa.array([d["severity"] for d in dicts], pa.string()),
            "keys": pa.array([d.get("keys", []) for d in dicts], pa.list_(pa.string())),
            "evidence": pa.array([json.dumps(d["evidence"], default=str) for d in dicts], pa.string()),
        }
    )
    table = table.replace_schema_metadata({"geowarden.findings_version": str(FINDINGS_VERSION)})
    parquet_path = out / FINDINGS_PARQUET
    pq.write_table(table, parquet_path)
    return json_path, parquet_path


def write_report(result: AnalysisResult, out_dir: Path) -> Path | None:
    """Findings files and ``report.html`` (its path)."""
    write_findings(result.findings, out_dir)
    return report.write(_out_dir(out_dir), result)


def _out_dir(out_dir: Path) -> Path:
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the output directory {out}: {exc.strerror or exc}") from None
    return out


# -- feeding findings back to the live decision ---------------------------------------------------


def flags_of(findings: Sequence[Finding]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """``(state name, code, value)`` for each flag the findings put: ``k:<key id>`` for a shared
    key, ``a:<account id>`` for each member of a cluster, campaign or model shift (and of an
    infrastructure finding that lists members)."""
    for f in findings:
        code = FLAG_PREFIX + f.kind.upper()
        value = {"score": round(f.score, 4), "subject": f.subject, "finding": f.kind}
        if f.kind == "key_shared":
            yield f"k:{f.subject}", code, value
        for key in f.keys:
            yield f"k:{key}", code, value
        for member in f.members:
            yield f"a:{member}", code, value


def read_findings(path: Path) -> list[Finding]:
    """The findings of a ``findings.json`` written by ``write_findings``, all checked before any is
    returned: a file of another version (an older one has no ``findings_version``) or with a
    malformed finding is refused whole (``ConfigError``, one line), so it is never half-applied."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ConfigError(f"{path}: not JSON ({str(exc)[:80]})") from None
    if not isinstance(doc, list) or not all(isinstance(f, dict) for f in doc):
        raise ConfigError(f"{path}: not a findings file (a JSON list of findings, as `analyze --out` writes)")
    out: list[Finding] = []
    for i, d in enumerate(doc, 1):
        version = d.get("findings_version")
        if version != FINDINGS_VERSION:
            was = "an older version (no findings_version)" if version is None else f"version {version!r}"
            raise ConfigError(
                f"{path}: findings file of {was}, this geowarden reads version {FINDINGS_VERSION}; "
                "run `geowarden analyze --out` again"
            )
        out.append(_finding(path, i, d))
    return out


def _finding(path: Path, i: int, d: dict[str, Any]) -> Finding:
    members, keys_ = d.get("members", []), d.get("keys", [])
    score: Any = d.get("score")
    ok = (
        d.get("kind") in KINDS
        and isinstance(d.get("subject"), str)
        and isinstance(score, (int, float))
        and not isinstance(score, bool)
        and 0 <= score <= 1
        and d.get("severity", SEVERITIES[-1]) in SEVERITIES
        and isinstance(members, list)
        and isinstance(keys_, list)
        and all(isinstance(m, str) for m in (*members, *keys_))
        and isinstance(d.get("evidence", {}), dict)
    )
    if not ok:
        raise ConfigError(
            f"{path}: finding {i} is malformed (kind, subject, score 0-1, members, keys); nothing applied"
        )
    return Finding(
        d["kind"], d["subject"], float(score), d.get("evidence", {}), tuple(members),
        d.get("severity", SEVERITIES[-1]), tuple(keys_),
    )  # fmt: skip


def feed_back(findings: Sequence[Finding], store: Any, ttl: int, now: float | None = None) -> int:
    """Put the findings' flags (``flags_of``) on keys and accounts in a state store (anything
    with ``put_flag(name, code, value, ttl, now)``: ``geowarden.state.open_store(url)``), where
    the live decision reads them (``Flags``). Returns how many flags were put. When a key or an
    account is in several findings of one kind, the highest score wins."""
    if ttl <= 0:
        raise ConfigError("the flag lifetime (ttl) must be positive")
    at = time.time() if now is None else now
    best: dict[tuple[str, str], dict[str, Any]] = {}
    for name, code, value in flags_of(findings):
        cur = best.get((name, code))
        if cur is None or value["score"] > cur["score"]:
            best[name, code] = value
    for (name, code), value in best.items():
        store.put_flag(name, code, value, int(ttl), at)
    return len(best)


# -- progress ------------------------------------------------------------------------------------


@contextmanager
def _phases(progress: bool, say: Callable[[str], None] | None) -> Iterator[Any]:
    """A ``phase(title)`` context manager that shows each phase (rich, on stderr) or reports it to
    ``say``; inside, ``note(message)`` updates the phase's line."""
    if not progress:

        @contextmanager
        def quiet(title: str) -> Iterator[Callable[[str], None]]:
            if say is not None:
                say(title)
            yield (lambda msg: say(f"{title}: {msg}")) if say is not None else (lambda _msg: None)

        yield quiet
        return
    from rich.console import Console  # noqa: PLC0415
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn  # noqa: PLC0415

    console = Console(stderr=True)
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as bar:

        @contextmanager
        def shown(title: str) -> Iterator[Callable[[str], None]]:
            task = bar.add_task(title, total=1)
            try:
                yield lambda msg: bar.update(task, description=f"{title}: {msg}")
            finally:
                bar.update(task, description=title, completed=1)

        yield shown


def settings_from_json(text: str) -> dict[str, dict[str, Any]]:
    """Analysis thresholds from a JSON object ``{"keys": {"min_score": 0.6}}`` (the CLI's
    ``--settings``)."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"settings are not JSON: {exc.msg}") from None
    if not isinstance(doc, Mapping) or not all(isinstance(v, Mapping) for v in doc.values()):
        raise ConfigError('settings must be a JSON object of objects: {"keys": {"min_score": 0.6}}')
    return {str(k): dict(v) for k, v in doc.items()}
