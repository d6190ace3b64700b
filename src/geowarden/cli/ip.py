"""``geowarden ip``: look addresses up, from arguments, a file or stdin."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from geowarden.cli.common import JsonOpt, QuietOpt, emit_json, err, fail, open_warden, out, read_lines, warn_stale_lists

BATCH = 200_000  # addresses per lookup_many call when reading a file


def ip_cmd(
    addresses: Annotated[list[str] | None, typer.Argument(help="IPv4 or IPv6 addresses.", show_default=False)] = None,
    file: Annotated[str | None, typer.Option("--file", "-f", help="Read addresses one a line ('-' = stdin).")] = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Look addresses up: country, ASN and organisation, hosting/VPN/Tor/proxy labels, and sources."""
    if not addresses and file is None:
        fail("give addresses as arguments or --file FILE ('-' for stdin)", 2)
    items: list[tuple[str, str]] = [(f"argument {i}", a) for i, a in enumerate(addresses or [], 1)]
    if file is not None:
        label = "stdin" if file == "-" else file
        items += [(f"{label} line {n}", text) for n, text in read_lines(file)]
        if not items:
            fail(f"{label}: no addresses to look up (every line is blank or a comment)", 3)
    warden = open_warden(quiet)
    warn_stale_lists(warden)
    results: list[dict[str, Any]] = []
    bad = 0
    for start in range(0, len(items), BATCH):
        chunk = items[start : start + BATCH]
        texts = [t for _, t in chunk]
        found = warden.lookup_many(texts)
        errors = dict(found.errors)
        for i, (where, text) in enumerate(chunk):
            if i in errors:
                bad += 1
                err.print(f"geowarden: {where}: {errors[i]}", markup=False)
                results.append({"ip": text[:64], "error": errors[i]})
            else:
                results.append(found.record(i, text.strip()).to_dict())
    if as_json:
        emit_json(results)
    else:
        _print_ip_table(results)
    if bad:
        raise typer.Exit(3)


def _print_ip_table(results: list[dict[str, Any]]) -> None:
    table = Table(box=None, show_header=True, header_style="bold")
    for col in ("ip", "country", "asn", "org / provider", "labels", "sources"):
        table.add_column(col)
    for r in results:
        if "error" in r:
            table.add_row(r["ip"], "-", "-", r["error"], "", "")
            continue
        labels = [k for k in ("hosting", "vpn", "tor", "proxy", "relay", "reserved") if r.get(k)]
        if r.get("country_disagreement"):
            labels.append("disagreement")
        labels += [f"shared-indicator:{peer}@{conf:g}" for peer, conf in (r.get("shared") or {}).items()]
        countries = r["sources"]["country"]
        srcs = " ".join(f"{s}={cc}" for s, cc in countries.items())
        org = " / ".join(x for x in (r.get("org"), r.get("provider")) if x)
        table.add_row(r["ip"], r["country"] or "-", f"AS{r['asn']}" if r["asn"] else "-", org, ",".join(labels), srcs)
    out.print(table)
