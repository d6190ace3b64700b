"""``geowarden policy check | backtest | doc | test | explain``: policy files."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, cast

import typer
from rich.table import Table

from geowarden.cli.common import (
    JsonOpt,
    QuietOpt,
    app_settings,
    emit_json,
    err,
    exit_for_rows,
    fail,
    open_warden,
    out,
    progress,
)
from geowarden.model import Facts

app = typer.Typer(help="Validate, explain, test and backtest policy files.", no_args_is_help=True)


@app.command("check")
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
        emit_json(doc)
    else:
        n_rules, n_restricted = len(spec.rules), len(spec.restricted)
        out.print(f"{file}: ok — policy {spec.version}, {n_rules} rules, {n_restricted} restricted jurisdictions")


@app.command("backtest")
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

    settings = app_settings()
    candidate = load_policy(settings, policy)
    warden = open_warden(quiet, against)
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
        emit_json(doc)
    else:
        _print_backtest(doc, reader.skipped)
    exit_for_rows(reader.read, reader.skipped)


def _print_backtest(doc: dict[str, Any], skipped: int) -> None:
    out.print(f"[bold]{doc['events']:,} events[/bold] replayed ({skipped:,} malformed rows skipped)")
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


@app.command("doc")
def policy_doc(
    file: Annotated[Path | None, typer.Argument(help="Policy file (default: the shipped policy).")] = None,
) -> None:
    """Print a markdown reference of a policy: jurisdictions, rules, thresholds, fail modes."""
    from geowarden.policy.engine import PolicyEngine, reference  # noqa: PLC0415

    sys.stdout.write(reference(PolicyEngine.load(file)))


@app.command("test")
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

            state["warden"] = Warden.open(app_settings(), policy=eng, progress=progress(quiet))
        return state["warden"].evidence(facts)

    results = run_cases(engine, path, evidence_for=evidence_for)
    if as_json:
        emit_json({"policy": engine.version, "cases": [r.to_dict() for r in results], "summary": summary(results)})
    else:
        for r in results:
            mark = "[green]pass[/green]" if r.passed else "[red]FAIL[/red]"
            out.print(
                f"{mark} {r.name} [dim](line {r.line})[/dim]" + ("" if r.passed else ": " + "; ".join(r.problems))
            )
        out.print(summary(results))
    if not all(r.passed for r in results):
        raise typer.Exit(1)


@app.command("explain")
def policy_explain(
    ip: Annotated[str | None, typer.Option(help="Client IP address.")] = None,
    account: Annotated[str | None, typer.Option(help="Account id.")] = None,
    api_key: Annotated[str | None, typer.Option("--api-key", help="API key id.")] = None,
    allow_token: Annotated[str | None, typer.Option("--allow-token", help="Allowlist token presented.")] = None,
    timezone: Annotated[str | None, typer.Option(help="Client-reported IANA time zone.")] = None,
    accept_language: Annotated[str | None, typer.Option("--accept-language")] = None,
    phone: Annotated[str | None, typer.Option(help="Phone number (E.164), for a signup.")] = None,
    card_bin: Annotated[str | None, typer.Option("--card-bin", help="Payment card BIN (first 6-8 digits).")] = None,
    billing_country: Annotated[
        str | None, typer.Option("--billing-country", help="Billing country (ISO alpha-2).")
    ] = None,
    email: Annotated[str | None, typer.Option(help="Account email.")] = None,
    org: Annotated[str | None, typer.Option(help="Organisation name.")] = None,
    owner: Annotated[
        list[str] | None, typer.Option("--owner", help="An owner of the organisation (repeatable).")
    ] = None,
    policy: Annotated[Path | None, typer.Option(help="Policy file (default: the shipped policy).")] = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Explain one decision step by step (a request or a signup): evidence, what the rules see,
    each rule, the score."""
    from geowarden.errors import ConfigError  # noqa: PLC0415

    if ip is not None:
        from geowarden.intel import addr  # noqa: PLC0415

        addr.parse(ip)
    if billing_country is not None and not (len(billing_country) == 2 and billing_country.isalpha()):
        raise ConfigError("--billing-country must be an ISO alpha-2 code such as DE")
    if card_bin is not None:
        from geowarden.signals.card import check_bin  # noqa: PLC0415

        check_bin(card_bin)
    facts = Facts(
        ip=ip, account_id=account, api_key_id=api_key, allow_token=allow_token, timezone=timezone,
        accept_language=accept_language, phone=phone, card_bin=card_bin,
        billing_country=billing_country.upper() if billing_country else None, email=email, org_name=org,
        org_owners=tuple(owner or ()),
    )  # fmt: skip
    from geowarden.policy.engine import PolicyEngine  # noqa: PLC0415

    warden = open_warden(quiet, policy)
    engine = cast(PolicyEngine, warden.policy)  # Warden.open loads a policy file into an engine
    facts, allow_ev = warden.allowlist(facts)
    evidence = warden.evidence(facts) + ([allow_ev] if allow_ev is not None else [])
    doc = engine.explain(evidence, facts)
    if as_json:
        emit_json(doc)
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
