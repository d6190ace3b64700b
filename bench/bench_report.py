"""How long ``geowarden report`` takes over a large audit log, phase by phase, and 10 M rows
extrapolated.

Writes ``-n`` synthetic decisions over six months into a temporary SQLite audit database
(``report_data.fill``), then times, ``--repeat`` times: loading the range into DuckDB (the
database counts per day and group key and unique accounts and keys per period; those rows move
into Arrow), computing every table, and writing the JSON, CSV,
Parquet and HTML (the PDF is printed once, apart: its time does not grow with the rows). The
peer, measured in the same run, is one scan of the same rows by SQLite itself
(``SELECT action, count(*) ... GROUP BY action``): the floor for anything that reads them.
Medians; 10 M rows extrapolated linearly from the rate (load and scan are linear in rows).

Usage::

    python bench/bench_report.py [-n 1000000] [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common import Report, machine
from report_data import fill

from geowarden.audit.schema import make_engine, sqlite_url
from geowarden.reporting.figures import build, figures, load
from geowarden.reporting.render import write_pdf, write_report

CHROMIUM = Path("/usr/bin/chromium")


def time_phases(engine: Any, db: Path, tmp: Path, start: float, end: float, repeat: int) -> dict[str, list[float]]:
    """Each phase's seconds, ``repeat`` times: the peer scan, load, figures, write, and the whole."""
    phases: dict[str, list[float]] = {"peer: one SQLite scan": [], "load into DuckDB": [], "figures": [],
                                      "write json/csv/parquet/html": [], "report (total, no pdf)": []}  # fmt: skip
    for r in range(repeat):
        t = time.perf_counter()
        con = sqlite3.connect(db)
        con.execute("SELECT action, count(*) FROM decisions WHERE ts >= ? AND ts < ? GROUP BY action",
                    (start, end)).fetchall()  # fmt: skip
        con.close()
        phases["peer: one SQLite scan"].append(time.perf_counter() - t)
        t = time.perf_counter()
        ddb = load(engine, start, end)
        phases["load into DuckDB"].append(time.perf_counter() - t)
        t = time.perf_counter()
        figures(ddb, "month")
        phases["figures"].append(time.perf_counter() - t)
        ddb.close()
        t = time.perf_counter()
        doc = build(engine, start, end, "month", meta={"from": "2026-01-01", "to": "2026-06-30",
                                                      "generated_at": "bench"})  # fmt: skip
        built = time.perf_counter() - t
        t = time.perf_counter()
        write_report(doc, tmp / f"out{r}", pdf=False, chromium=CHROMIUM)
        wrote = time.perf_counter() - t
        phases["write json/csv/parquet/html"].append(wrote)
        phases["report (total, no pdf)"].append(built + wrote)
    return phases


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=1_000_000, help="decisions in the log")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    rep = Report("bench_report: geowarden report over a large audit log", args.json)
    env = machine()
    rep.say(f"machine  : {env['cpu']} x{env['cpus']} (shared, noisy), load {env['loadavg']}")
    start = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
    end = datetime(2026, 7, 1, tzinfo=UTC).timestamp()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "audit.db"
        t0 = time.perf_counter()
        fill(db, args.n, start, end)
        rep.say(f"generated {args.n:,} decisions in {time.perf_counter() - t0:.1f} s")
        engine = make_engine(sqlite_url(db))
        phases = time_phases(engine, db, Path(tmp), start, end, args.repeat)
        pdf_s = None
        if CHROMIUM.exists():
            t = time.perf_counter()
            write_pdf(Path(tmp) / "out0" / "report.html", Path(tmp) / "report.pdf", chromium=CHROMIUM)
            pdf_s = time.perf_counter() - t
        engine.dispose()
    med = {k: statistics.median(v) for k, v in phases.items()}
    total = med["report (total, no pdf)"]
    rows = [[k, v, args.n / v, v * 10_000_000 / args.n] for k, v in med.items()]
    rep.table(["phase", "seconds (median)", "rows/s", "10 M rows, s (extrapolated)"], rows)
    ratio = total / med["peer: one SQLite scan"]
    extrapolated = total * 10_000_000 / args.n + (pdf_s or 0.0)
    rep.say(f"report / one SQLite scan: {ratio:.1f}x; pdf: {pdf_s if pdf_s is None else round(pdf_s, 2)} s")
    rep.say(f"10 M rows extrapolated: {extrapolated:.0f} s including the pdf (target < 60 s: "
            f"{'ok' if extrapolated < 60 else 'MISSED'})")  # fmt: skip
    rep.doc.update(n=args.n, medians=med, pdf_seconds=pdf_s, ratio_to_scan=ratio, extrapolated_10m_s=extrapolated)
    rep.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
