"""The ``geowarden`` command line: thin verbs over the Warden.

Every reporting command takes ``--json`` and then prints exactly one JSON document on stdout.
Errors go to stderr as one line, with a non-zero exit, never a traceback.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from geowarden.errors import ConfigError, GeowardenError
from geowarden.model import Facts
from geowarden.settings import Settings

app = typer.Typer(
    name="geowarden",
    help="Decide whether an AI API request may come from where it really comes from.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
intel_app = typer.Typer(help="Build, update and inspect the IP-intelligence snapshot.", no_args_is_help=True)
app.add_typer(intel_app, name="intel")

err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print exactly one JSON document on stdout.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress messages on stderr.")]

BATCH = 200_000  # addresses per lookup_many call when reading a file


def fail(message: str, code: int = 1) -> NoReturn:
    err.print(f"geowarden: error: {message}", markup=False)
    raise typer.Exit(code)


def _progress(quiet: bool) -> Any:
    if quiet:
        return None
    return lambda msg: err.print(f"[dim]· {msg}[/dim]")


def _open_warden(quiet: bool = False, policy: Path | None = None) -> Any:
    from geowarden.policy.default import DefaultPolicy  # noqa: PLC0415 - keep --help fast
    from geowarden.warden import Warden  # noqa: PLC0415

    pol = DefaultPolicy.from_file(policy) if policy is not None else None
    return Warden.open(Settings.from_env(), policy=pol, progress=_progress(quiet))


def _emit_json(doc: Any) -> None:
    sys.stdout.write(json.dumps(doc, ensure_ascii=False) + "\n")


# -- ip ----------------------------------------------------------------------------------


def _read_lines(path: str) -> Iterator[tuple[int, str]]:
    """(line number, text) of each non-blank, non-comment line of a file or stdin ('-')."""
    try:
        fh = sys.stdin if path == "-" else Path(path).open(encoding="utf-8", errors="replace")  # noqa: SIM115
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror or exc}", 2)
    with fh:
        for n, line in enumerate(fh, 1):
            text = line.split("#", 1)[0].strip()
            if text:
                yield n, text


@app.command("ip")
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
        items += [(f"{label} line {n}", text) for n, text in _read_lines(file)]
    warden = _open_warden(quiet)
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
        _emit_json(results)
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
        countries = r["sources"]["country"]
        srcs = " ".join(f"{s}={cc}" for s, cc in countries.items())
        org = " / ".join(x for x in (r.get("org"), r.get("provider")) if x)
        table.add_row(r["ip"], r["country"] or "-", f"AS{r['asn']}" if r["asn"] else "-", org, ",".join(labels), srcs)
    out.print(table)


# -- check -------------------------------------------------------------------------------


@app.command("check")
def check_cmd(
    ip: Annotated[str | None, typer.Option(help="Client IP address.")] = None,
    phone: Annotated[str | None, typer.Option(help="Phone number (E.164).")] = None,
    card_bin: Annotated[str | None, typer.Option("--card-bin", help="Payment card BIN (first 6-8 digits).")] = None,
    billing_country: Annotated[
        str | None, typer.Option("--billing-country", help="Billing country (ISO alpha-2).")
    ] = None,
    accept_language: Annotated[str | None, typer.Option("--accept-language", help="Accept-Language header.")] = None,
    timezone: Annotated[str | None, typer.Option(help="Client-reported IANA time zone.")] = None,
    email: Annotated[str | None, typer.Option(help="Account email.")] = None,
    org: Annotated[str | None, typer.Option(help="Organisation name.")] = None,
    policy: Annotated[Path | None, typer.Option(help="Policy file (YAML) instead of the default policy.")] = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Decide on one request from its facts and print the Decision with its reasons."""
    if ip is not None:
        from geowarden.intel import addr  # noqa: PLC0415

        addr.parse(ip)  # a malformed address is a usage error here, not a decision
    if billing_country is not None and not (len(billing_country) == 2 and billing_country.isalpha()):
        raise ConfigError("--billing-country must be an ISO alpha-2 code such as DE")
    facts = Facts(
        ip=ip,
        phone=phone,
        card_bin=card_bin,
        billing_country=billing_country.upper() if billing_country else None,
        accept_language=accept_language,
        timezone=timezone,
        email=email,
        org_name=org,
    )
    warden = _open_warden(quiet, policy)
    decision = warden.decide(facts)
    if as_json:
        _emit_json(decision.to_dict())
        return
    colour = {"allow": "green", "limited": "cyan", "challenge": "yellow", "review": "magenta", "block": "red"}
    out.print(f"[bold {colour[decision.action.value]}]{decision.action.value.upper()}[/] score {decision.score:.2f}")
    for ev in decision.reasons:
        out.print(f"  {ev.code}: {ev.detail}", markup=False)
    if decision.user_message:
        out.print(f"  end user sees: {decision.user_message}", markup=False)
    others = [e for e in decision.evidence if e not in decision.reasons]
    for ev in others:
        out.print(f"  [dim]{ev.code}: {ev.detail}[/dim]")
    out.print(
        f"  [dim]policy {decision.policy_version}, decision {decision.decision_id}, {decision.elapsed_us:.0f} µs[/dim]"
    )


# -- intel -------------------------------------------------------------------------------


@intel_app.command("build")
def intel_build(
    from_dir: Annotated[
        Path | None, typer.Option("--from", help="Directory of source files (the layout of shared/data).")
    ] = None,
    exclude: Annotated[list[str] | None, typer.Option(help="Leave this source out (repeatable).")] = None,
    activate: Annotated[bool, typer.Option(help="Make the new snapshot the current one.")] = True,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Compile a snapshot from every source recognised under DIR (or from the installed data)."""
    from geowarden.intel import sources  # noqa: PLC0415
    from geowarden.intel.build import build_snapshot  # noqa: PLC0415
    from geowarden.intel.snapshot import Snapshot  # noqa: PLC0415
    from geowarden.intel.store import SnapshotStore  # noqa: PLC0415

    say = _progress(quiet)
    settings = Settings.from_env()
    if from_dir is None:
        from geowarden.intel.sources.pypi import default_sources  # noqa: PLC0415

        if say:
            say("reading the data installed with geowarden's dependencies (iptocc, iporigin)")
        srcs = [s for s in default_sources() if s.meta.name not in set(exclude or ())]
        note = "default"
    else:
        if not from_dir.is_dir():
            fail(f"--from {from_dir}: not a directory", 2)
        if say:
            say(f"reading sources under {from_dir}")
        srcs = sources.discover(from_dir, exclude=exclude or ())
        if not srcs:
            fail(f"no known source under {from_dir} (see `geowarden intel info` for what is recognised)", 4)
        note = f"built from {from_dir}"
    store = SnapshotStore(settings.intel_dir)
    with store.lock():
        path = build_snapshot(srcs, store.dir, note=note, progress=say)
        if activate:
            store.activate(path)
    info = Snapshot.open(path).info()
    info["active"] = activate
    if as_json:
        _emit_json(info)
    else:
        _print_info(info)


@intel_app.command("info")
def intel_info(as_json: JsonOpt = False, quiet: QuietOpt = False) -> None:
    """Show the current snapshot: its sources, their dates, licences and required attributions."""
    warden = _open_warden(quiet)
    info = warden.intel.info()
    if as_json:
        _emit_json(info)
    else:
        _print_info(info)


@intel_app.command("update")
def intel_update(
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Download the public originals, verify them, build, and switch atomically."""
    from geowarden.intel.update import run_update  # noqa: PLC0415

    settings = Settings.from_env()
    result = run_update(settings, quiet=quiet, console=err)
    if as_json:
        _emit_json(result)
    else:
        out.print(f"snapshot {result['snapshot']} is now current ({len(result['downloaded'])} files downloaded)")
        for s in result["skipped"]:
            out.print(f"  skipped {s['name']}: {s['reason']}", markup=False)


def _print_info(info: dict[str, Any]) -> None:
    out.print(f"[bold]snapshot {info['id']}[/bold]  built {info['built_at']}  {info.get('note', '')}")
    c = info["counts"]
    out.print(f"  {c['v4_intervals']:,} IPv4 and {c['v6_intervals']:,} IPv6 intervals, {c['rows']:,} distinct answers")
    table = Table(box=None, header_style="bold")
    for col in ("source", "kind", "entries", "date", "licence", "attribution"):
        table.add_column(col)
    for s in info["sources"]:
        table.add_row(
            s["name"], s["kind"], f"{s['entries']:,}", s.get("date") or "-", s["licence"], s.get("attribution") or ""
        )
    out.print(table)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app, turning geowarden errors into one line on stderr."""
    try:
        rc = app(args=argv, standalone_mode=False)
        # Outside standalone mode click returns the code of a typer.Exit instead of raising it.
        if isinstance(rc, int) and rc:
            sys.exit(rc)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except GeowardenError as exc:
        err.print(f"geowarden: error: {exc.message}", markup=False)
        sys.exit(exc.code)
    except KeyboardInterrupt:
        err.print("geowarden: interrupted", markup=False)
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)
    except Exception as exc:  # usage errors of the argument parser, and the unexpected
        show = getattr(exc, "show", None)
        if callable(show):  # typer's (click's) usage errors print their own message and usage
            show(file=sys.stderr)
            sys.exit(getattr(exc, "exit_code", 2))
        if type(exc).__name__ == "Abort":
            sys.exit(1)
        err.print(f"geowarden: internal error: {type(exc).__name__}: {exc}", markup=False)
        sys.exit(70)
