"""The analysis report: ``report.html``, one self-contained page (the orchestrator writes every
finding as ``findings.json`` and ``findings.parquet`` next to it: ``run.write_findings``).

``write(out_dir, result)`` takes the orchestrator's ``AnalysisResult`` (attributes ``findings``,
``stats``, ``summary``, ``problems``), or the same parts as keyword arguments:

- ``findings``: list of ``Finding``;
- ``stats``: run figures shown as they are (``events``, ``accounts``, ``keys``, ``skipped``,
  ``backend``, ``seconds``, ...: scalars and short lists; nested dicts are flattened one level);
- ``summary``: ``volume_by_country_day`` (rows ``{day, country, events}``), ``top_asns`` (rows
  ``{asn, org, accounts, events}``); what is missing is taken from the findings where it can be
  (top ASNs from ``infrastructure`` findings) or its chart says so;
- ``problems``: the loader's ``Problems`` (or its ``to_dict()``): counts by reason.

The page has inline CSS and charts as base64 PNG drawn with matplotlib; without matplotlib it
still renders, with tables, and says the charts need it. Every value is HTML-escaped, and strings
that look like personal data (a full IP address, an e-mail address, a long run of digits) are
masked: the report carries ids, hashes, prefixes and counts only.
"""

from __future__ import annotations

import base64
import html
import io
import ipaddress
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from geowarden.analytics.findings import KINDS, Finding
from geowarden.errors import ConfigError

REPORT = "report.html"
TOP_FINDINGS = 25  # per kind, in the table of top findings
TOP_COUNTRIES = 8  # lines in the volume chart; the rest is "other"
TOP_ASNS = 15
MAX_ITEMS = 12  # items of a list shown in evidence
MAX_MEMBERS = 10

_IPV4 = re.compile(r"(?<![\w.])(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?![\w.]|/\d)")
_IPV6 = re.compile(
    r"(?<![\w:.])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:(?<=:)\d{1,3}(?:\.\d{1,3}){3})?(?![\w:.]|/\d)"
)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_DIGITS = re.compile(r"(?<![\w.:/#-])\+?\d[\d \-().]{7,}\d(?![\w.:/])")


def _ipv6(m: re.Match[str]) -> str:
    try:
        ipaddress.IPv6Address(m[0])
    except ValueError:
        return m[0]
    return "[ipv6]"


def _digits(m: re.Match[str]) -> str:
    return "[number]" if sum(c.isdigit() for c in m[0]) >= 10 else m[0]


def scrub(text: str) -> str:
    """``text`` with what looks like personal data masked: a full IPv4 address becomes its /24,
    an IPv6 address ``[ipv6]``, an e-mail address ``[email]``, a run of 10+ digits (a phone or a
    card number) ``[number]``. Prefixes (``1.2.3.0/24``), ids, hashes and times pass."""
    text = _EMAIL.sub("[email]", text)
    text = _IPV4.sub(lambda m: f"{m[1]}.{m[2]}.{m[3]}.0/24", text)
    text = _IPV6.sub(_ipv6, text)
    return _DIGITS.sub(_digits, text)


def _e(value: Any) -> str:
    return html.escape(scrub(str(value)), quote=True)


# -- inputs ----------------------------------------------------------------------------------


def _parts(
    result: Any, findings: Sequence[Finding] | None, stats: Mapping[str, Any] | None, summary: Mapping[str, Any] | None
) -> tuple[list[Finding], dict[str, Any], dict[str, Any], Any]:
    problems = None
    if result is not None:
        findings = getattr(result, "findings", findings)
        stats = getattr(result, "stats", stats)
        summary = getattr(result, "summary", summary)
        merged = getattr(result, "problems_dict", None)  # the log's and the accounts file's
        problems = merged() if callable(merged) else getattr(result, "problems", None)
    if findings is None:
        raise ConfigError("report.write needs a result or findings")
    return list(findings), dict(stats or {}), dict(summary or {}), problems


def _problems(problems: Any) -> dict[str, Any]:
    if problems is None:
        return {}
    if hasattr(problems, "to_dict"):
        problems = problems.to_dict()
    return dict(problems) if isinstance(problems, Mapping) else {}


def _rows(value: Any) -> list[dict[str, Any]]:
    """Rows from a list of dicts or a dict of columns (JSON shapes of an Arrow table)."""
    if isinstance(value, Mapping):
        keys = list(value)
        columns = [list(value[k]) for k in keys]
        return [dict(zip(keys, row, strict=True)) for row in zip(*columns, strict=True)] if keys else []
    if isinstance(value, Iterable) and not isinstance(value, str):
        return [dict(r) for r in value if isinstance(r, Mapping)]
    return []


def _count(row: Mapping[str, Any], *names: str) -> int:
    for n in names:
        if row.get(n) is not None:
            return int(row[n])
    return 0


def volume_series(summary: Mapping[str, Any]) -> tuple[list[str], dict[str, list[int]]]:
    """Days and, per country (the top ``TOP_COUNTRIES`` by volume, then ``other``), events a day."""
    rows = _rows(summary.get("volume_by_country_day", summary.get("volume_by_country", [])))
    per: dict[tuple[str, str], int] = defaultdict(int)
    totals: Counter[str] = Counter()
    days = set()
    for r in rows:
        day = str(r.get("day") or r.get("date") or "")[:10]
        if not day:
            continue
        country = str(r.get("country") or "unknown")
        n = _count(r, "events", "requests", "n", "count")
        per[day, country] += n
        totals[country] += n
        days.add(day)
    top = [c for c, _ in sorted(totals.items(), key=lambda x: (-x[1], x[0]))[:TOP_COUNTRIES]]
    ordered = sorted(days)
    series = {c: [per.get((d, c), 0) for d in ordered] for c in top}
    rest = [sum(n for (d2, c), n in per.items() if d2 == d and c not in top) for d in ordered]
    if any(rest):
        series["other"] = rest
    return ordered, series


def top_asns(summary: Mapping[str, Any], findings: Sequence[Finding]) -> list[dict[str, Any]]:
    """``{asn, org, accounts, events}`` rows, most accounts first: from the summary, else from the
    ``infrastructure`` findings about ASNs."""
    rows = _rows(summary.get("top_asns", []))
    if not rows:
        for f in findings:
            if f.kind == "infrastructure" and f.subject.upper().startswith("AS"):
                ev = f.evidence
                rows.append(
                    {
                        "asn": f.subject,
                        "org": ev.get("org"),
                        "accounts": _count(ev, "accounts", "distinct_accounts"),
                        "events": _count(ev, "events", "requests"),
                    }
                )
    out: list[dict[str, Any]] = [
        {
            "asn": r.get("asn"),
            "org": r.get("org"),
            "accounts": _count(r, "accounts", "distinct_accounts"),
            "events": _count(r, "events", "requests"),
        }
        for r in rows
    ]
    out.sort(key=lambda r: (-r["accounts"], -r["events"], str(r["asn"])))
    return out[:TOP_ASNS]


def cluster_sizes(findings: Sequence[Finding]) -> list[int]:
    return sorted(int(f.evidence.get("size", len(f.members))) for f in findings if f.kind == "account_cluster")


# -- charts ----------------------------------------------------------------------------------


def _matplotlib() -> Any | None:
    """matplotlib's ``Figure`` (drawn without pyplot: no global backend is touched), or None."""
    try:
        from matplotlib.figure import Figure  # noqa: PLC0415 - optional: the report renders without charts
    except ImportError:
        return None
    return Figure


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=90)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _img(data: str, alt: str) -> str:
    return f'<img src="data:image/png;base64,{data}" alt="{_e(alt)}">'


def _charts(
    figure: Any, days: list[str], series: dict[str, list[int]], sizes: list[int], asns: list[dict[str, Any]]
) -> dict[str, str]:
    out: dict[str, str] = {}
    if days:
        fig = figure(figsize=(9, 3.6))
        ax = fig.subplots()
        x = list(range(len(days)))
        for country, values in series.items():
            ax.plot(x, values, marker="o" if len(days) < 40 else None, label=scrub(country))
        step = max(1, len(days) // 10)
        ax.set_xticks(x[::step], [d[5:] for d in days[::step]])
        ax.set_ylabel("requests a day")
        ax.legend(loc="upper left", fontsize=8, ncols=min(len(series), 5))
        ax.grid(alpha=0.3)
        out["volume"] = _png(fig)
    if sizes:
        fig = figure(figsize=(5, 3.2))
        ax = fig.subplots()
        lo, hi = min(sizes), max(sizes)
        bins: Any = [b - 0.5 for b in range(lo, hi + 2)] if hi - lo <= 40 else 20  # one bar per size
        ax.hist(sizes, bins=bins, color="#8a3b3b", rwidth=0.9)
        ax.yaxis.get_major_locator().set_params(integer=True)
        ax.set_xlabel("accounts in the cluster")
        ax.set_ylabel("flagged clusters")
        ax.grid(alpha=0.3)
        out["clusters"] = _png(fig)
    if asns:
        fig = figure(figsize=(6, 0.3 * len(asns) + 1.2))
        ax = fig.subplots()
        labels = [scrub(f"AS{str(r['asn']).removeprefix('AS')} {r['org'] or ''}")[:40] for r in asns]
        ax.barh(range(len(asns)), [r["accounts"] for r in asns], color="#3b5a8a")
        ax.set_yticks(range(len(asns)), labels, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel("accounts")
        ax.grid(alpha=0.3, axis="x")
        out["asns"] = _png(fig)
    return out


# -- HTML ------------------------------------------------------------------------------------


def _value(value: Any, depth: int = 0) -> str:
    """Evidence as HTML: dicts as nested definition lists, lists bounded, scalars escaped."""
    if isinstance(value, Mapping):
        if not value:
            return "—"
        items = "".join(f"<dt>{_e(k)}</dt><dd>{_value(v, depth + 1)}</dd>" for k, v in value.items())
        return f"<dl>{items}</dl>"
    if isinstance(value, list | tuple):
        shown = [_value(v, depth + 1) for v in value[:MAX_ITEMS]]
        more = f" … {len(value) - MAX_ITEMS} more" if len(value) > MAX_ITEMS else ""
        if depth and all(not isinstance(v, Mapping | list | tuple) for v in value):
            return "[" + ", ".join(shown) + "]" + _e(more)
        return "<ul>" + "".join(f"<li>{s}</li>" for s in shown) + "</ul>" + _e(more)
    if isinstance(value, bool | int):
        return html.escape(str(value))  # numbers are counts, scores and times: never masked
    if isinstance(value, float):
        return html.escape(f"{value:.4g}")
    if value is None:
        return "—"
    return _e(value)


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_value(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _flat(stats: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """``(name, value)`` rows: nested dicts one level deep (``seconds.total``), lists joined."""
    out: list[tuple[str, Any]] = []

    def show(v: Any) -> Any:
        if isinstance(v, list | tuple):
            text = ", ".join(str(x) for x in v[:MAX_ITEMS])
            return text + (f" … {len(v) - MAX_ITEMS} more" if len(v) > MAX_ITEMS else "") if v else "—"
        return v

    for k, v in stats.items():
        if isinstance(v, Mapping):
            out.extend((f"{k}.{k2}", show(v2)) for k2, v2 in v.items() if not isinstance(v2, Mapping))
        else:
            out.append((str(k), show(v)))
    return out


CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1200px;color:#222;padding:0 16px}
h1{font-size:22px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:8px 0;width:100%}th,td{border:1px solid #ddd;padding:4px 6px;
vertical-align:top;text-align:left}th{background:#f4f4f4}td dl{margin:0}dt{font-weight:600;float:left;
clear:left;margin-right:6px}dd{margin:0 0 2px 0}ul{margin:0;padding-left:18px}.note{color:#777}
.score{font-weight:700}.grid{display:flex;flex-wrap:wrap;gap:16px}img{max-width:100%}
.kind{white-space:nowrap}
"""


def _findings_section(findings: Sequence[Finding], by_kind: Mapping[str, int]) -> str:
    """The top ``TOP_FINDINGS`` findings of each kind, with their evidence."""
    parts = ["<h2>Top findings</h2>"]
    if not findings:
        parts.append("<p>Nothing flagged.</p>")
    for kind in [k for k in KINDS if k in by_kind] + sorted(set(by_kind) - set(KINDS)):
        top = sorted((f for f in findings if f.kind == kind), key=lambda f: (-f.score, f.subject))[:TOP_FINDINGS]
        parts.append(f"<h3 class='kind'>{_e(kind)} <span class='note'>({by_kind[kind]} flagged)</span></h3>")
        rows = []
        for f in top:
            members = list(f.members[:MAX_MEMBERS])
            more = f" … {len(f.members) - MAX_MEMBERS} more" if len(f.members) > MAX_MEMBERS else ""
            rows.append(
                "<tr>"
                f"<td class='kind'>{_e(f.subject)}</td>"
                f"<td class='score'>{_e(f'{f.score:.2f}')}</td>"
                f"<td>{_e(len(f.members)) if f.members else '—'}"
                f"{'<br>' + _e(', '.join(members) + more) if members else ''}</td>"
                f"<td>{_value(f.evidence)}</td>"
                "</tr>"
            )
        parts.append(
            "<table><thead><tr><th>subject</th><th>score</th><th>members</th><th>evidence</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>"
        )
    return "\n".join(parts)


def _skipped(problems: Mapping[str, Any]) -> str:
    """Skipped rows: how many, by reason (the log's, then the accounts file's)."""
    parts = []
    for title, prob in (("log", problems), ("accounts file", problems.get("accounts") or {})):
        if not isinstance(prob, Mapping) or "skipped" not in prob:
            continue
        parts.append(f"<p>{_e(prob.get('skipped', 0))} malformed rows skipped in the {_e(title)}.</p>")
        reasons = sorted(dict(prob.get("by_reason") or {}).items(), key=lambda x: (-int(x[1]), str(x[0])))
        if reasons:
            parts.append(_table(["reason", "rows"], reasons[:20]))
    return "<h2>Skipped rows</h2>" + "".join(parts) if parts else ""


def render(
    findings: Sequence[Finding],
    stats: Mapping[str, Any],
    summary: Mapping[str, Any],
    problems: Mapping[str, Any] | None = None,
    *,
    charts: bool = True,
) -> str:
    """The report page as a string (``charts=False``: tables only, as without matplotlib)."""
    figure = _matplotlib() if charts else None
    days, series = volume_series(summary)
    sizes = cluster_sizes(findings)
    asns = top_asns(summary, findings)
    images = _charts(figure, days, series, sizes, asns) if figure is not None else {}
    by_kind = Counter(f.kind for f in findings)
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<title>geowarden analyze report</title>",
        f"<style>{CSS}</style></head><body>",
        "<h1>geowarden analyze — report</h1>",
        f"<p class='note'>Generated {_e(datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC'))}. Ids, hashes, "
        "prefixes and counts only: no addresses, prompts, phone or card numbers.</p>",
        "<h2>Summary</h2>",
        _table(["figure", "value"], _flat(stats) or [("runs", "no figures given")]),
        _table(
            ["finding kind", "flagged"], [(k, by_kind.get(k, 0)) for k in [*KINDS, *sorted(set(by_kind) - set(KINDS))]]
        ),
    ]
    parts.append(_skipped(problems or {}))
    parts.append("<h2>Charts</h2>")
    if figure is None:
        parts.append("<p class='note'>Charts need matplotlib (<code>pip install matplotlib</code>); tables follow.</p>")
    parts.append("<h3>Volume by country over time</h3>")
    if "volume" in images:
        parts.append(_img(images["volume"], "requests a day by country"))
    elif days:
        parts.append(_table(["day", *series], [(d, *(series[c][i] for c in series)) for i, d in enumerate(days)]))
    else:
        parts.append("<p class='note'>No volume by country in this run's summary.</p>")
    parts.append("<div class='grid'><div><h3>Cluster sizes</h3>")
    if "clusters" in images:
        parts.append(_img(images["clusters"], "sizes of flagged clusters"))
    elif sizes:
        parts.append(_table(["accounts", "clusters"], sorted(Counter(sizes).items())))
    else:
        parts.append("<p class='note'>No account clusters flagged.</p>")
    parts.append("</div><div><h3>Top ASNs by accounts</h3>")
    if "asns" in images:
        parts.append(_img(images["asns"], "ASNs with the most accounts"))
    elif asns:
        parts.append(_table(["ASN", "organisation", "accounts", "requests"], [tuple(r.values()) for r in asns]))
    else:
        parts.append("<p class='note'>No ASN figures in this run.</p>")
    parts.append("</div></div>")
    parts.append(_findings_section(findings, by_kind))
    parts.append("</body></html>")
    return "\n".join(parts)


def write(
    out_dir: Path,
    result: Any = None,
    *,
    findings: Sequence[Finding] | None = None,
    stats: Mapping[str, Any] | None = None,
    summary: Mapping[str, Any] | None = None,
    problems: Any = None,
    charts: bool = True,
) -> Path:
    """Write ``report.html`` under ``out_dir`` (created if missing); returns its path.
    ``result``: an ``AnalysisResult`` (its ``findings``, ``stats``, ``summary``, ``problems``),
    else the keyword arguments."""
    found, st, summ, prob = _parts(result, findings, stats, summary)
    if problems is not None:
        prob = problems
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"cannot create the report directory {out_dir}: {e.strerror}") from None
    if not out_dir.is_dir():
        raise ConfigError(f"report directory {out_dir} is not a directory")
    page = render(found, st, summ, _problems(prob), charts=charts)
    path = out_dir / REPORT
    path.write_text(page, encoding="utf-8")
    return path
