"""``geowarden report``: the compliance report over the audit log (see ``geowarden.reporting``)."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer

from geowarden.cli.common import JsonOpt, app_settings, emit_json, fail, out

CHROMIUM = Path("/usr/bin/chromium")


def _day(text: str, flag: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        fail(f"{flag}: {text!r} is not a date (YYYY-MM-DD)", 2)


def report_cmd(
    date_from: Annotated[str, typer.Option("--from", help="First day (YYYY-MM-DD, UTC), included.")],
    date_to: Annotated[str, typer.Option("--to", help="Last day (YYYY-MM-DD, UTC), included.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Write the report's files into this directory.")],
    by: Annotated[str, typer.Option("--by", help="Periods: week, month or quarter.")] = "month",
    policy_version: Annotated[
        str | None, typer.Option("--policy-version", help="Only decisions made under this policy version.")
    ] = None,
    pdf: Annotated[bool, typer.Option("--pdf/--no-pdf", help="Print report.pdf with headless Chromium.")] = True,
    chromium: Annotated[Path, typer.Option("--chromium", help="The Chromium executable for the PDF.")] = CHROMIUM,
    as_json: JsonOpt = False,
) -> None:
    """Attempts by jurisdiction, action, evasion technique and network, period-over-period change with
    intervals, and outcomes: report.html, report.pdf, CSV and Parquet tables, report.json."""
    from geowarden.audit.store import open_default  # noqa: PLC0415
    from geowarden.cli.audit import _snapshot_summary  # noqa: PLC0415
    from geowarden.reporting.figures import PERIODS, build  # noqa: PLC0415
    from geowarden.reporting.render import write_report  # noqa: PLC0415

    if by not in PERIODS:
        fail(f"--by must be one of {', '.join(PERIODS)}, not {by!r}", 2)
    first, last = _day(date_from, "--from"), _day(date_to, "--to")
    if last < first:
        fail(f"--to {last} is before --from {first}", 2)
    start = datetime(first.year, first.month, first.day, tzinfo=UTC).timestamp()
    end = (datetime(last.year, last.month, last.day, tzinfo=UTC) + timedelta(days=1)).timestamp()
    settings = app_settings()
    audit = open_default(settings.home, url=settings.audit_url)
    t0 = time.perf_counter()
    try:
        doc = build(
            audit.engine, start, end, by, policy_version=policy_version,
            meta={"from": first.isoformat(), "to": last.isoformat(),
                  "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
                  "snapshot": _snapshot_summary(settings.intel_dir)},
        )  # fmt: skip
    finally:
        audit.close()
    files = write_report(doc, out_dir, pdf=pdf, chromium=chromium)
    took = time.perf_counter() - t0
    if as_json:
        emit_json({"out": str(out_dir), "files": files, "empty": doc["empty"], "summary": doc["summary"],
                   "seconds": round(took, 3)})  # fmt: skip
    elif doc["empty"]:
        out.print(f"no audited decisions from {first} to {last}: wrote an empty report to {out_dir}", markup=False)
    else:
        s = doc["summary"]
        out.print(f"{s['decisions']:,} decisions, {s['attempts']:,} attempts: wrote {len(files)} files to {out_dir} "
                  f"in {took:.1f} s", markup=False)  # fmt: skip
