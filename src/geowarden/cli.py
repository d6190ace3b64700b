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

from geowarden.analytics.cli import analyze_cmd
from geowarden.errors import ConfigError, GeowardenError, InputError
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
policy_app = typer.Typer(help="Validate, explain, test and backtest policy files.", no_args_is_help=True)
app.add_typer(policy_app, name="policy")
allow_app = typer.Typer(
    help="Allowlist tokens that clear a false positive for one account or key.", no_args_is_help=True
)
app.add_typer(allow_app, name="allow")
app.command("analyze")(analyze_cmd)

err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 160)

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
    from geowarden.warden import Warden  # noqa: PLC0415 - keep --help fast

    return Warden.open(Settings.from_env(), policy=policy, progress=_progress(quiet))


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
    account: Annotated[str | None, typer.Option(help="Account id.")] = None,
    api_key: Annotated[str | None, typer.Option("--api-key", help="API key id (never the secret).")] = None,
    allow_token: Annotated[str | None, typer.Option("--allow-token", help="Allowlist token presented.")] = None,
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
    if card_bin is not None:
        from geowarden.signals.card import check_bin  # noqa: PLC0415

        check_bin(card_bin)  # a full card number is refused here (InputError, no digits): it goes no further
    facts = Facts(
        ip=ip,
        account_id=account,
        api_key_id=api_key,
        allow_token=allow_token,
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


# -- policy ------------------------------------------------------------------------------


@policy_app.command("check")
def policy_check(
    file: Annotated[Path, typer.Argument(help="Policy file (YAML).")],
    as_json: JsonOpt = False,
) -> None:
    """Validate a policy: parse, check every field and code, compile every rule."""
    from geowarden.policy.engine import PolicyEngine  # noqa: PLC0415

    engine = PolicyEngine.load(file)
    spec = engine.spec
    doc = {
        "policy": spec.name,
        "version": spec.version,
        "rules": [r.name for r in spec.rules],
        "restricted": sorted(spec.restricted),
        "thresholds": {a.value: t for t, a in spec.thresholds},
        "fail_modes": spec.fail_modes,
        "ok": True,
    }
    if as_json:
        _emit_json(doc)
    else:
        n_rules, n_restricted = len(spec.rules), len(spec.restricted)
        out.print(f"{file}: ok — policy {spec.version}, {n_rules} rules, {n_restricted} restricted jurisdictions")


@policy_app.command("backtest")
def policy_backtest(
    logs: Annotated[list[Path], typer.Argument(help="API log files (JSON Lines, .gz, or Parquet).")],
    policy: Annotated[Path, typer.Option(help="The candidate policy file.")],
    against: Annotated[Path | None, typer.Option(help="The policy to compare with (default: the active one).")] = None,
    examples: Annotated[int, typer.Option(help="Examples kept per transition.", min=0, max=1000)] = 5,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Replay API logs under a candidate policy and report the decisions that would change."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn  # noqa: PLC0415

    from geowarden.events import EventReader  # noqa: PLC0415
    from geowarden.policy.backtest import backtest  # noqa: PLC0415
    from geowarden.warden import load_policy  # noqa: PLC0415

    settings = Settings.from_env()
    candidate = load_policy(settings, policy)
    warden = _open_warden(quiet, against)
    reader = EventReader(logs)
    columns = (SpinnerColumn(), TextColumn("replaying {task.completed:,} events"), TimeElapsedColumn())
    with Progress(*columns, console=err, disable=quiet or not err.is_terminal, transient=True) as bar:
        task = bar.add_task("backtest", total=None)
        report = backtest(
            reader, warden.policy, candidate, warden.evidence, max_examples=examples,
            progress=lambda n: bar.update(task, completed=n),
        )  # fmt: skip
    for problem in reader.problems:
        err.print(f"geowarden: {problem}", markup=False)
    doc = report.to_dict()
    doc["skipped"] = reader.skipped
    if as_json:
        _emit_json(doc)
        return
    out.print(f"[bold]{doc['events']:,} events[/bold] replayed ({reader.skipped:,} malformed rows skipped)")
    share = f"{doc['changed_share']:.2%}"
    out.print(f"  {doc['old_policy']} -> {doc['new_policy']}: {doc['changed']:,} decisions change ({share})")
    table = Table(box=None, header_style="bold")
    for col in ("action", "old", "new"):
        table.add_column(col)
    for act in ("allow", "limited", "challenge", "review", "block"):
        table.add_row(act, f"{doc['old_actions'].get(act, 0):,}", f"{doc['new_actions'].get(act, 0):,}")
    out.print(table)
    for t in doc["transitions"]:
        out.print(f"  {t['from']} -> {t['to']}: {t['n']:,}")
    for name, n in doc["rules_added"].items():
        out.print(f"  rule now firing: {name} ({n:,})")
    for name, n in doc["rules_removed"].items():
        out.print(f"  rule no longer firing: {name} ({n:,})")
    for ex in doc["examples"]:
        rules = f"+{ex['rules_added']} -{ex['rules_removed']}"
        out.print(f"  e.g. {ex['request_id']} {ex['ip']}: {ex['old']} -> {ex['new']} ({rules})", markup=False)


@policy_app.command("doc")
def policy_doc(
    file: Annotated[Path | None, typer.Argument(help="Policy file (default: the shipped policy).")] = None,
) -> None:
    """Print a markdown reference of a policy: jurisdictions, rules, thresholds, fail modes."""
    from geowarden.policy.engine import PolicyEngine, reference  # noqa: PLC0415

    sys.stdout.write(reference(PolicyEngine.load(file)))


@policy_app.command("test")
def policy_test(
    file: Annotated[Path, typer.Argument(help="Policy file (YAML); cases are read from <name>.tests.yaml beside it.")],
    cases: Annotated[Path | None, typer.Option(help="Cases file, if not beside the policy.")] = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Run the policy's test cases (facts or evidence in, action and reasons out)."""
    from geowarden.policy.engine import PolicyEngine  # noqa: PLC0415
    from geowarden.policy.testing import cases_path, run_cases, summary  # noqa: PLC0415

    engine = PolicyEngine.load(file)
    path = cases or cases_path(file)
    if not path.is_file():
        fail(f"no test cases for {file}: expected {path}", 2)
    state: dict[str, Any] = {}

    def evidence_for(facts: Facts, eng: Any) -> Any:
        if "warden" not in state:
            from geowarden.warden import Warden  # noqa: PLC0415

            state["warden"] = Warden.open(Settings.from_env(), policy=eng, progress=_progress(quiet))
        return state["warden"].evidence(facts)

    results = run_cases(engine, path, evidence_for=evidence_for)
    if as_json:
        _emit_json({"policy": engine.version, "cases": [r.to_dict() for r in results], "summary": summary(results)})
    else:
        for r in results:
            mark = "[green]pass[/green]" if r.passed else "[red]FAIL[/red]"
            out.print(
                f"{mark} {r.name} [dim](line {r.line})[/dim]" + ("" if r.passed else ": " + "; ".join(r.problems))
            )
        out.print(summary(results))
    if not all(r.passed for r in results):
        raise typer.Exit(1)


@policy_app.command("explain")
def policy_explain(
    ip: Annotated[str | None, typer.Option(help="Client IP address.")] = None,
    account: Annotated[str | None, typer.Option(help="Account id.")] = None,
    api_key: Annotated[str | None, typer.Option("--api-key", help="API key id.")] = None,
    allow_token: Annotated[str | None, typer.Option("--allow-token", help="Allowlist token presented.")] = None,
    timezone: Annotated[str | None, typer.Option(help="Client-reported IANA time zone.")] = None,
    accept_language: Annotated[str | None, typer.Option("--accept-language")] = None,
    policy: Annotated[Path | None, typer.Option(help="Policy file (default: the shipped policy).")] = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Explain one decision step by step: evidence, what the rules see, each rule, the score."""
    if ip is not None:
        from geowarden.intel import addr  # noqa: PLC0415

        addr.parse(ip)
    facts = Facts(
        ip=ip, account_id=account, api_key_id=api_key, allow_token=allow_token, timezone=timezone,
        accept_language=accept_language,
    )  # fmt: skip
    warden = _open_warden(quiet, policy)
    doc = warden.policy.explain(warden.evidence(facts), facts)
    if as_json:
        _emit_json(doc)
        return
    out.print(f"[bold]policy {doc['policy']}[/bold]")
    out.print("evidence:")
    for e in doc["evidence"]:
        out.print(f"  {e['code']} ({e['confidence']}): {e['detail']}", markup=False)
    out.print(
        f"rules see: ip={json.dumps(doc['context']['ip'])} allow={json.dumps(doc['context']['allow'])}", markup=False
    )
    for r in doc["rules"]:
        state = (
            "[red]error[/red] " + str(r["error"])
            if r["error"]
            else ("[bold]fired[/bold]" if r["fired"] else "[dim]no[/dim]")
        )
        act = f" -> {r['action']}" if r["action"] else ""
        out.print(f"  line {r['line']}: {r['name']}{act} weight {r['weight']}: {state}")
        out.print(f"    [dim]{r['when']}[/dim]", markup=True)
    out.print(f"score {doc['score']:.3f} (thresholds {doc['thresholds']}) -> [bold]{doc['action'].upper()}[/bold]")
    if doc["reasons"]:
        out.print(f"reasons: {', '.join(doc['reasons'])}")


# -- allow -------------------------------------------------------------------------------


@allow_app.command("create")
def allow_create(
    account: Annotated[str | None, typer.Option(help="Clear this account.")] = None,
    api_key: Annotated[str | None, typer.Option("--api-key", help="Clear this API key id.")] = None,
    days: Annotated[float, typer.Option(help="Days until the token expires.", min=0.001, max=3650)] = 30,
    reason: Annotated[str, typer.Option(help="Why (kept in the token, e.g. a review id).")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Issue a signed, expiring allowlist token (printed once)."""
    from geowarden.policy.allowlist import TokenSigner  # noqa: PLC0415

    if (account is None) == (api_key is None):
        fail("give exactly one of --account or --api-key", 2)
    subject = f"account:{account}" if account is not None else f"key:{api_key}"
    token = TokenSigner.from_home(Settings.from_env().home).issue(subject, seconds=int(days * 86400), reason=reason)
    if as_json:
        _emit_json({"token": token, "subject": subject, "days": days})
    else:
        out.print(token, markup=False)


@allow_app.command("verify")
def allow_verify(token: Annotated[str, typer.Argument(help="The token.")], as_json: JsonOpt = False) -> None:
    """Check a token: genuine and unexpired, and whom it clears."""
    from geowarden.policy.allowlist import TokenSigner  # noqa: PLC0415

    grant = TokenSigner.from_home(Settings.from_env().home).verify(token)
    doc: dict[str, Any] = {"valid": grant is not None}
    if grant is not None:
        doc.update({"subject": grant.subject, "expires": grant.expires, "reason": grant.reason})
    if as_json:
        _emit_json(doc)
    else:
        out.print(
            f"valid: {grant.subject}, expires {grant.expires}" if grant else "not valid (forged, damaged or expired)"
        )
    if grant is None:
        raise typer.Exit(1)


# -- verify-location ---------------------------------------------------------------------


@app.command("verify-location")
def verify_location(
    claimed: Annotated[str | None, typer.Option(help="Claimed location: a country code (CC) or LAT,LON.")] = None,
    rtt: Annotated[list[str] | None, typer.Option(help="A measured round trip: LAT,LON=MS (repeatable).")] = None,
    file: Annotated[str | None, typer.Option("--file", "-f", help="JSON Lines of claims ('-' = stdin).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Is a claimed location physically possible given round-trip times from known places?"""
    from geowarden.latency.cli import claim_from_args, parse_claim_line, verify_claims  # noqa: PLC0415

    if (claimed is None) == (file is None):
        fail("give --claimed with --rtt, or --file", 2)
    claims = []
    bad = 0
    if file is not None:
        for n, text in _read_lines(file):
            try:
                claims.append(parse_claim_line(text, n))
            except InputError as exc:
                bad += 1
                err.print(f"geowarden: {'stdin' if file == '-' else file} {exc.message}", markup=False)
    else:
        if not rtt:
            fail("give at least one --rtt LAT,LON=MS", 2)
        claims.append(claim_from_args(claimed or "", rtt))
    results = verify_claims(claims)
    if as_json:
        _emit_json(results)
    else:
        for r in results:
            verdict = (
                "[green]feasible[/green]" if r["feasible"] else f"[red]impossible[/red] by {r['violation_km']:,.0f} km"
            )
            where = ", ".join(r.get("region", {}).get("countries", [])[:10])
            out.print(f"{verdict}; the client can be in: {where or '-'}")
    if bad:
        raise typer.Exit(3)


# -- screen ------------------------------------------------------------------------------


@app.command("screen")
def screen_cmd(
    names: Annotated[list[str] | None, typer.Argument(help="Organisation or person names.", show_default=False)] = None,
    country: Annotated[
        str | None, typer.Option(help="The name's country (ISO alpha-2): a hint, never a filter.")
    ] = None,
    file: Annotated[str | None, typer.Option("--file", "-f", help="Names one a line ('-' = stdin).")] = None,
    data: Annotated[
        Path | None, typer.Option(help="Sanctions lists directory (default: GEOWARDEN_SCREENING_DATA).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Screen names against sanctions and export-control lists, in any script (docs/screening.md)."""
    from geowarden.screening.cli import screen_names  # noqa: PLC0415

    items = list(names or [])
    if file is not None:
        items += [text for _, text in _read_lines(file)]
    if not items:
        fail("give names as arguments or --file FILE ('-' for stdin)", 2)
    results = screen_names(items, country.upper() if country else None, directory=data)
    if as_json:
        _emit_json(results)
        return
    for name, matches in zip(items, results, strict=True):
        out.print(f"[bold]{name}[/bold]: " + ("no match" if not matches else f"{len(matches)} match(es)"))
        for m in matches[:5]:
            out.print(
                f"  {m['score']:.2f} {m['name']} ({m['list']}, {m['entity_id']}): {m['explanation']}", markup=False
            )


# -- simulate and eval --------------------------------------------------------------------


@app.command("simulate")
def simulate_cmd(
    scenario: Annotated[str, typer.Option(help="A shipped scenario (baseline, analytics, ...) or a YAML file.")],
    out: Annotated[Path, typer.Option(help="Log file to write (.jsonl, .jsonl.gz or .parquet).")],
    events: Annotated[int, typer.Option(help="Events to generate (0: the scenario's default).", min=0)] = 0,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 1,
    labels: Annotated[Path | None, typer.Option(help="Ground-truth labels file (JSON Lines).")] = None,
    accounts: Annotated[Path | None, typer.Option(help="Accounts table to write (.jsonl[.gz] or .parquet).")] = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Generate realistic API log events with known ground truth (see docs/simulate.md)."""
    from geowarden.simulate.scenario import simulate  # noqa: PLC0415

    snapshot = _open_warden(quiet).intel
    summary = simulate(scenario, events, seed, out, labels, snapshot=snapshot, accounts=accounts)
    if as_json:
        _emit_json(summary)
    else:
        out_n = summary.get("events", events)
        out.parent.mkdir(parents=True, exist_ok=True)
        extra = (f" and labels to {labels}" if labels else "") + (f" and accounts to {accounts}" if accounts else "")
        err.print(f"wrote {out_n:,} events to {out}" + extra, markup=False)


@app.command("eval")
def eval_cmd(
    logs: Annotated[str, typer.Argument(help="API log file, or a shipped scenario name to simulate first.")],
    labels: Annotated[Path | None, typer.Option(help="Ground-truth labels (JSON Lines) for LOGS.")] = None,
    policy: Annotated[Path | None, typer.Option(help="Policy file (default: the shipped policy).")] = None,
    events: Annotated[int, typer.Option(help="With a scenario: events to generate (0: its default).", min=0)] = 0,
    seed: Annotated[int, typer.Option(help="With a scenario: random seed.")] = 1,
    chart: Annotated[Path | None, typer.Option(help="Write a PNG chart of the figures here.")] = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Measure detection per persona: recall, precision, false-positive rate, top reasons."""
    import tempfile  # noqa: PLC0415

    from geowarden.simulate.eval import evaluate  # noqa: PLC0415
    from geowarden.simulate.scenario import scenario_names, simulate  # noqa: PLC0415

    warden = _open_warden(quiet)
    with tempfile.TemporaryDirectory(prefix="geowarden-eval-") as tmp:
        log_path = Path(logs)
        if labels is None:
            if logs not in scenario_names() and not (log_path.suffix in (".yaml", ".yml") and log_path.is_file()):
                fail(f"{logs}: give --labels for a log file, or a scenario ({', '.join(scenario_names())})", 2)
            log_path, labels = Path(tmp) / "events.jsonl.gz", Path(tmp) / "labels.jsonl"
            simulate(logs, events, seed, log_path, labels, snapshot=warden.intel)
        elif not log_path.is_file():
            fail(f"{logs}: no such log file", 2)
        report = evaluate(log_path, labels, policy, warden.intel, chart=chart)
    if as_json:
        _emit_json(report)
        return
    o = report["overall"]
    out.print(
        f"[bold]{report['events']:,} events[/bold], policy {report['policy_version']}: overall recall "
        f"{o['recall']}, precision {o['precision']}, false-positive rate {o['false_positive_rate']}"
    )
    table = Table(box=None, header_style="bold")
    for col in ("persona", "honest", "n", "recall", "precision", "false positives", "top reasons"):
        table.add_column(col)
    for r in report["personas"]:
        reasons = ", ".join(x["code"] for x in r["top_reasons"][:3])
        table.add_row(
            r["persona"], "yes" if r["should_allow"] else "no", str(r["n"]), _pct(r["recall"]),
            _pct(r["precision"]), _pct(r["false_positive_rate"]), reasons,
        )  # fmt: skip
    out.print(table)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f} %"


# -- service -----------------------------------------------------------------------------

token_app = typer.Typer(help="API tokens for the service (scopes: decide, review, admin).", no_args_is_help=True)
app.add_typer(token_app, name="token")


@token_app.command("create")
def token_create(
    scope: Annotated[list[str], typer.Option(help="decide, review or admin (repeatable).")],
    name: Annotated[str | None, typer.Option(help="A name shown in the audit trail.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create an API token and print it once (only its hash is kept)."""
    from geowarden.service.auth import TokenStore  # noqa: PLC0415

    store = TokenStore(Settings.from_env().home / "tokens.json")
    token = store.create(scope, name=name)
    if as_json:
        _emit_json({"token": token, "scopes": sorted(scope)})
    else:
        out.print(token, markup=False)


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.", min=1, max=65535)] = 8080,
    workers: Annotated[int, typer.Option(help="Worker processes.", min=1, max=64)] = 1,
    quiet: QuietOpt = False,
) -> None:
    """Run the HTTP decision service (uvicorn): /v1/decide, edge adapters, review, dashboard, metrics."""
    import uvicorn  # noqa: PLC0415

    from geowarden.service.app import build_service  # noqa: PLC0415

    # Build once in this process first: a bad setting, snapshot or policy fails here, in one line.
    build_service(Settings.from_env()).audit.close()
    if not quiet:
        err.print(f"[dim]· serving on http://{host}:{port} ({workers} worker{'s' if workers > 1 else ''})[/dim]")
    uvicorn.run(
        "geowarden.service.app:create_app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,
        # geowarden reads forwarding headers itself, only from GEOWARDEN_TRUSTED_PROXIES; uvicorn's own
        # proxy-header handling (on by default, trusting 127.0.0.1) would let a local peer forge its address.
        proxy_headers=False,
        forwarded_allow_ips="",
    )


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
