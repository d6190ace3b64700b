"""Writing the compliance report: ``report.json``, one CSV and one Parquet file per table,
``report.html`` (self-contained: inline SVG charts drawn by pygal without its script, inline
CSS, no request leaves the page; counts only, no personal data) and ``report.pdf`` printed from
that page by headless Chromium through Playwright.
"""

from __future__ import annotations

import csv
import html
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pygal
from pygal.style import Style

from geowarden.errors import ConfigError
from geowarden.reporting.figures import COLUMNS, SMALL

CHART_STYLE = Style(background="white", plot_background="white", font_family="sans-serif",
                    colors=("#b71c1c", "#ef6c00", "#f9a825", "#1565c0", "#2e7d32", "#6a1b9a", "#455a64"))  # fmt: skip
_SCRIPT = re.compile(r"<script\b.*?</script>", re.DOTALL)
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
CSS = """
body { font-family: sans-serif; margin: 2em auto; max-width: 60em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: .5em 0; font-size: .9em; }
th, td { border: 1px solid #ddd; padding: .2em .5em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.small { color: #a15c00; } .empty { font-size: 1.2em; padding: 1em; background: #fff8e1; border: 1px solid #f9a825; }
.note { color: #555; font-size: .9em; } svg { max-width: 100%; height: auto; }
@media print { h2 { break-after: avoid; } table, svg { break-inside: avoid; } }
"""


def write_tables(tables: Mapping[str, Sequence[Mapping[str, Any]]], out: Path) -> list[str]:
    """Each table as ``NAME.csv`` and ``NAME.parquet`` under ``out``; returns the file names."""
    written = []
    for name, cols in COLUMNS.items():
        rows = tables.get(name, [])
        with (out / f"{name}.csv").open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(cols)
            w.writerows([[r.get(c) for c in cols] for r in rows])
        data = {c: [r.get(c) for r in rows] for c in cols}
        table = pa.table(data) if rows else pa.table({c: pa.array([], type=pa.string()) for c in cols})
        pq.write_table(table, out / f"{name}.parquet")
        written += [f"{name}.csv", f"{name}.parquet"]
    return written


def _chart(chart: Any) -> str:
    """The chart as inline SVG, without pygal's configuration script and comments (the page runs
    no script: its tooltips would need pygal's JavaScript from the network)."""
    svg = str(chart.render(is_unicode=True))
    svg = svg.split("?>", 1)[-1] if svg.startswith("<?xml") else svg
    return _COMMENT.sub("", _SCRIPT.sub("", svg))


def _config(title: str) -> dict[str, Any]:
    return {"title": title, "style": CHART_STYLE, "js": [], "width": 900, "height": 360,
            "legend_at_bottom": True, "x_label_rotation": 30, "disable_xml_declaration": True}  # fmt: skip


def _table(rows: Sequence[Mapping[str, Any]], cols: Sequence[str], limit: int | None = None) -> str:
    head = "".join(f"<th>{html.escape(c.replace('_', ' '))}</th>" for c in cols)
    body = []
    for r in rows[:limit] if limit else rows:
        cls = ' class="small"' if r.get("small") else ""
        body.append(f"<tr{cls}>" + "".join(f"<td>{html.escape(_fmt(c, r.get(c)))}</td>" for c in cols) + "</tr>")
    if not rows:
        body.append(f'<tr><td colspan="{len(cols)}">none</td></tr>')
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _fmt(col: str, v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "small numbers" if v else ""
    if col in ("change", "ci_low", "ci_high", "false_positive_rate", "fp_ci_low", "fp_ci_high"):
        return f"{v * 100:+.1f} %" if col.startswith(("change", "ci")) else f"{v * 100:.1f} %"
    if isinstance(v, float):
        return f"{v:,.1f}"
    if isinstance(v, int) and col != "asn":
        return f"{v:,}"
    return str(v)


def render_html(doc: Mapping[str, Any], *, controls: str = "") -> str:
    """The self-contained page of the report ``doc`` (what ``report.json`` holds); ``controls``
    (trusted markup: the dashboard's period form) goes first in the body."""
    t = doc["tables"]
    meta = doc["meta"]
    parts = [
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>geowarden compliance report "
        f"{html.escape(meta['from'])} to {html.escape(meta['to'])}</title><style>{CSS}</style></head><body>{controls}",
        f"<h1>Export-control enforcement report: {html.escape(meta['from'])} to {html.escape(meta['to'])}</h1>",
        f"<p class='note'>By {html.escape(meta['by'])}; generated {html.escape(meta['generated_at'])} from the audit "
        f"log{' for policy version ' + html.escape(meta['policy_version']) if meta.get('policy_version') else ''}. "
        "An attempt is a decision that was not allowed (limited, challenged, held for review or blocked). "
        f"Counts under {SMALL} are marked <span class='small'>small numbers</span>: their percentages are not "
        "reliable. No address, account or key appears in this report.</p>",
    ]
    total = sum(int(p["decisions"]) for p in t["periods"])
    if total == 0:
        parts.append("<p class='empty' id='empty'>No audited decisions in this period: nothing to report.</p>")
    else:
        s = doc["summary"]
        parts.append(
            f"<p id='summary'><b>{s['decisions']:,}</b> decisions, <b>{s['attempts']:,}</b> attempts, from "
            f"<b>{s['accounts']:,}</b> accounts and <b>{s['keys']:,}</b> keys.</p>"
        )
        periods = [p["period"] for p in t["periods"]]
        actions = sorted({r["action"] for r in t["actions"]})
        colours = {"allow": "#2e7d32", "limited": "#1565c0", "challenge": "#f9a825", "review": "#ef6c00",
                   "block": "#b71c1c"}  # fmt: skip
        actions = [a for a in colours if a in actions] + [a for a in actions if a not in colours]
        style = Style(**{**CHART_STYLE.to_dict(), "colors": tuple(colours.get(a, "#455a64") for a in actions)})
        bar = pygal.StackedBar(**(_config("Decisions per period by action") | {"style": style}))
        bar.x_labels = periods
        for a in actions:
            bar.add(
                a, [sum(int(r["n"]) for r in t["actions"] if r["period"] == p and r["action"] == a) for p in periods]
            )
        parts.append(f"<h2>Decisions and attempts</h2>{_chart(bar)}")
        parts.append(_table(t["periods"], COLUMNS["periods"]))
        parts.append("<h2>Change from the previous period</h2><p class='note'>Attempts, overall and for the five "
                     "jurisdictions with most attempts; 95 % interval treating counts as Poisson.</p>")  # fmt: skip
        parts.append(_table(t["changes"], COLUMNS["changes"]))
        juris: dict[str, int] = {}
        for r in t["jurisdictions"]:
            juris[r["jurisdiction"]] = juris.get(r["jurisdiction"], 0) + int(r["n"])
        hb = pygal.HorizontalBar(**(_config("Attempts by jurisdiction (top 15)") | {"show_legend": False}))
        top = sorted(juris.items(), key=lambda kv: (-kv[1], kv[0]))[:15][::-1]
        hb.x_labels = [j for j, _ in top]
        hb.add("attempts", [n for _, n in top])
        parts.append(f"<h2>Jurisdictions</h2>{_chart(hb)}")
        parts.append(_table(t["jurisdictions"], COLUMNS["jurisdictions"], limit=60))
        tech: dict[str, int] = {}
        for r in t["techniques"]:
            tech[r["technique"]] = tech.get(r["technique"], 0) + int(r["n"])
        tb = pygal.Bar(**(_config("Attempts by evasion technique") | {"show_legend": False}))
        ranked = sorted(tech.items(), key=lambda kv: (-kv[1], kv[0]))
        tb.x_labels = [k for k, _ in ranked]
        tb.add("attempts", [n for _, n in ranked])
        parts.append(f"<h2>Evasion techniques</h2>{_chart(tb)}")
        parts.append(_table(t["techniques"], COLUMNS["techniques"]))
        parts.append("<h2>Networks with most attempts</h2>" + _table(t["asns"], COLUMNS["asns"]))
        parts.append("<h2>Outcomes</h2><p class='note'>False-positive rate: overturned among reviewed decisions "
                     "with a verdict (Wilson 95 % interval). Reviewed decisions are not a random sample of all "
                     "decisions, so this estimates the error rate of the decisions that reach review.</p>")  # fmt: skip
        parts.append(_table(t["outcomes"], COLUMNS["outcomes"]))
    parts.append("<h2>Policy versions and intel snapshot</h2>" + _table(t["policies"], COLUMNS["policies"]))
    snap = meta.get("snapshot")
    if snap:
        srcs = "".join(
            f"<li>{html.escape(str(x.get('name')))}: {html.escape(str(x.get('date') or 'undated'))}</li>"
            for x in snap.get("sources", [])
        )
        parts.append(f"<p class='note'>Intel snapshot in force when the report was made: "
                     f"{html.escape(str(snap.get('id')))} (built {html.escape(str(snap.get('built_at')))}); "
                     f"decisions do not record their snapshot.</p><ul class='note'>{srcs}</ul>")  # fmt: skip
    parts.append("</body></html>")
    return "\n".join(parts)


def write_pdf(html_path: Path, pdf_path: Path, *, chromium: Path) -> None:
    """Print ``html_path`` to ``pdf_path`` with headless Chromium (Playwright, no sandbox)."""
    try:
        from playwright.sync_api import Error as PlaywrightError  # noqa: PLC0415
        from playwright.sync_api import sync_playwright  # noqa: PLC0415
    except ImportError:
        raise ConfigError("report.pdf needs the playwright package (or give --no-pdf)") from None
    if not chromium.exists():
        raise ConfigError(f"report.pdf needs Chromium at {chromium} (give --chromium PATH or --no-pdf)")
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(chromium), args=["--no-sandbox"])
            try:
                page = browser.new_page()
                page.goto(html_path.resolve().as_uri())
                page.pdf(path=str(pdf_path), format="A4", print_background=True,
                         margin={"top": "1.5cm", "bottom": "1.5cm", "left": "1.2cm", "right": "1.2cm"})  # fmt: skip
            finally:
                browser.close()
    except PlaywrightError as exc:
        raise ConfigError(f"Chromium could not print the report: {str(exc).splitlines()[0][:160]}") from None


def write_report(doc: Mapping[str, Any], out: Path, *, pdf: bool, chromium: Path) -> list[str]:
    """Every file of the report under ``out`` (created); returns their names."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / "report.json").write_text(json.dumps(doc, indent=1, default=str) + "\n", encoding="utf-8")
        files = ["report.json", *write_tables(doc["tables"], out)]
        (out / "report.html").write_text(render_html(doc), encoding="utf-8")
        files.append("report.html")
    except OSError as exc:
        raise ConfigError(f"cannot write the report under {out}: {exc.strerror or exc}") from None
    if pdf:
        write_pdf(out / "report.html", out / "report.pdf", chromium=chromium)
        files.append("report.pdf")
    return files
