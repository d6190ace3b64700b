"""``geowarden analyze``: batch analytics over API logs (registered in ``geowarden.cli``).

Kept light at import time (``geowarden --help`` must stay fast): Ibis, DuckDB and Spark are
imported when the command runs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from geowarden.errors import ConfigError

DEFAULT_TTL_DAYS = 7.0
SHOWN_PROBLEMS = 20
TOP_FINDINGS = 15


def analyze_cmd(
    logs: Annotated[
        list[Path] | None, typer.Argument(help="Log files or directories (.jsonl[.gz], .json, .parquet).")
    ] = None,
    accounts: Annotated[
        Path | None, typer.Option(help="Accounts table (JSON Lines, CSV or Parquet): id, created, payment, ...")
    ] = None,
    backend: Annotated[str, typer.Option(help="duckdb (embedded, default) or spark.")] = "duckdb",
    out: Annotated[
        Path | None, typer.Option("--out", help="Write report.html, findings.json and findings.parquet here.")
    ] = None,
    feed_state: Annotated[
        str | None,
        typer.Option("--feed-state", help="Put flags on keys and accounts in this state store (memory, redis://...)."),
    ] = None,
    findings: Annotated[
        Path | None,
        typer.Option(
            "--findings",
            help="With --feed-state and no LOGS: put the flags of this findings.json (from --out) instead.",
        ),
    ] = None,
    feed_ttl_days: Annotated[float, typer.Option("--feed-ttl-days", help="Lifetime of the flags.", min=0.01)] = (
        DEFAULT_TTL_DAYS
    ),
    spark_master: Annotated[
        str | None, typer.Option("--spark-master", help="Spark master URL (default: GEOWARDEN_SPARK_MASTER, local[2]).")
    ] = None,
    settings: Annotated[
        str | None, typer.Option(help='Thresholds as JSON, e.g. \'{"keys": {"min_score": 0.6}}\', or @FILE.')
    ] = None,
    min_severity: Annotated[
        str,
        typer.Option(
            "--min-severity",
            help="Report findings of this severity or above: origin_hidden (all) or restricted_origin_seen.",
        ),
    ] = "origin_hidden",
    as_json: Annotated[bool, typer.Option("--json", help="Print exactly one JSON document on stdout.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress or problem lines on stderr.")] = False,
) -> None:
    """Batch analytics over API logs: shared keys, account networks, campaigns, infrastructure."""
    from geowarden.analytics.run import analyze, feed_back, settings_from_json  # noqa: PLC0415
    from geowarden.cli.common import app_settings  # noqa: PLC0415
    from geowarden.warden import Warden  # noqa: PLC0415

    err = Console(stderr=True, highlight=False, soft_wrap=True)
    if backend not in ("duckdb", "spark"):
        raise ConfigError(f"unknown backend {backend!r} (one of duckdb, spark)")
    thresholds = settings_from_json(_settings_text(settings)) if settings else None
    if findings is not None:
        _feed_file(findings, logs, feed_state, feed_ttl_days, as_json)
        return
    store = None
    if feed_state is not None:
        from geowarden.state import open_store  # noqa: PLC0415

        store = open_store(feed_state)
    say = None if quiet else (lambda msg: err.print(f"[dim]· {msg}[/dim]"))
    config = app_settings()
    warden = Warden.open(config, progress=say)
    result = analyze(
        logs or [],
        accounts=accounts,
        backend=backend,
        snapshot=warden.intel,
        restricted=frozenset(warden.policy.restricted),
        settings=thresholds,
        progress=not quiet and err.is_terminal,
        say=say if not err.is_terminal else None,
        out_dir=out,
        spark_master=spark_master or config.spark_master,
        spark_conf=config.spark_conf,
        min_severity=min_severity,
    )
    if not quiet:
        _print_problems(err, result.problems, "events")
        if result.account_problems is not None:
            _print_problems(err, result.account_problems, "accounts")
    flags = None
    if store is not None:
        try:
            flags = feed_back(result.findings, store, ttl=int(feed_ttl_days * 86_400))
        finally:
            store.close()
        result.stats["flags_put"] = flags
    if as_json:
        doc = {"findings": [f.to_dict() for f in result.findings], "problems": result.problems_dict()}
        doc["stats"] = result.stats
        sys.stdout.write(json.dumps(doc, ensure_ascii=False, default=str) + "\n")
    else:
        _print_summary(result, out, flags)
    _exit_for_problems(err, result)


def _feed_file(path: Path, logs: list[Path] | None, feed_state: str | None, ttl_days: float, as_json: bool) -> None:
    """``--findings FILE --feed-state URL``: the file's flags into the store. The whole file is
    read and checked first (``read_findings``): a file of an older version is refused, not
    half-applied."""
    from geowarden.analytics.run import feed_back, read_findings  # noqa: PLC0415
    from geowarden.state import open_store  # noqa: PLC0415

    if feed_state is None:
        raise ConfigError("--findings needs --feed-state (the state store to put the flags in)")
    if logs:
        raise ConfigError("give either LOGS to analyse or --findings to feed, not both")
    found = read_findings(path)
    store = open_store(feed_state)
    try:
        flags = feed_back(found, store, ttl=int(ttl_days * 86_400))
    finally:
        store.close()
    if as_json:
        sys.stdout.write(json.dumps({"findings": len(found), "flags_put": flags}) + "\n")
    else:
        Console(highlight=False).print(f"{flags:,} flags put on keys and accounts from {len(found):,} findings")


def _exit_for_problems(err: Console, result: Any) -> None:
    """Exit 3 when rows were skipped (each was reported with its file and line) and, said in one
    line, when the logs or the accounts table held nothing usable: an empty result must not
    read as "nothing suspicious"."""
    skipped = result.problems.skipped
    acc = result.account_problems
    empty = []
    if result.stats["events"] == 0:
        empty.append(f"no usable events in the logs ({result.problems.rows_read:,} rows read, {skipped:,} malformed)")
    if acc is not None and acc.rows_read - acc.skipped == 0:
        empty.append(f"no usable rows in the accounts table ({acc.rows_read:,} read, {acc.skipped:,} malformed)")
    for message in empty:
        err.print(f"geowarden: error: {message}", markup=False)
    if empty or skipped or (acc is not None and acc.skipped):
        raise typer.Exit(3)


def _settings_text(value: str) -> str:
    if not value.startswith("@"):
        return value
    path = Path(value[1:])
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read settings file {path}: {exc.strerror or exc}") from None


def _print_problems(err: Console, problems: Any, what: str) -> None:
    for p in problems.listed[:SHOWN_PROBLEMS]:
        err.print(f"geowarden: {p}", markup=False)
    more = problems.skipped - min(len(problems.listed), SHOWN_PROBLEMS)
    if more > 0:
        err.print(f"geowarden: ... and {more:,} more malformed {what} rows", markup=False)
    checks = problems.checks or {}
    for row in checks.get("rows", [])[:SHOWN_PROBLEMS]:
        err.print(f"geowarden: {row['file']} line {row['line']}: {row['reason']} (kept)", markup=False)
    more = checks.get("found", 0) - min(len(checks.get("rows", [])), SHOWN_PROBLEMS)
    if more > 0:
        err.print(f"geowarden: ... and {more:,} more suspect {what} rows (kept)", markup=False)


def _print_summary(result: Any, out_dir: Path | None, flags: int | None) -> None:
    out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 160)
    st = result.stats
    secs = st["seconds"]["total"]
    out.print(
        f"[bold]{st['events']:,} events[/bold] ({st['skipped']:,} malformed rows skipped) from "
        f"{st['accounts']:,} accounts and {st['keys']:,} keys, on {st['backend']} in {secs:.1f} s"
    )
    table = Table(title="findings by kind", box=None, header_style="bold", title_justify="left")
    for col in ("kind", "findings"):
        table.add_column(col)
    for kind, n in st["findings_by_kind"].items():
        table.add_row(kind, f"{n:,}")
    out.print(table)
    if result.findings:
        top = sorted(result.findings, key=lambda f: (-f.score, f.kind, f.subject))[:TOP_FINDINGS]
        t2 = Table(title="top findings", box=None, header_style="bold", title_justify="left")
        for col in ("score", "kind", "subject", "members", "evidence"):
            t2.add_column(col)
        for f in top:
            t2.add_row(f"{f.score:.2f}", f.kind, f.subject, str(len(f.members) or ""), _brief(f))
        out.print(t2)
    if st.get("analyses_missing"):
        out.print(f"not run (module not installed): {', '.join(st['analyses_missing'])}")
    if flags is not None:
        out.print(f"{flags:,} flags put on keys and accounts")
    if out_dir is not None:
        out.print(f"report and findings written to {out_dir}", markup=False)


def _brief(f: Any) -> str:
    """A few of the finding's numbers, for the table."""
    ev = f.evidence
    keys = [
        k
        for k in ("events", "accounts", "countries", "max_countries_at_once", "asns", "exposed_share", "size")
        if k in ev and not isinstance(ev[k], (dict, list))
    ]
    return ", ".join(f"{k}={ev[k]}" for k in keys[:5])
