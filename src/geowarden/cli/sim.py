"""``geowarden simulate`` and ``geowarden eval``: synthetic traffic with ground truth, and
detection measured against it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from geowarden.cli.common import JsonOpt, QuietOpt, app_settings, emit_json, err, exit_for_rows, fail, open_warden
from geowarden.cli.common import out as console


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

    snapshot = open_warden(quiet).intel
    pings = app_settings().pings
    summary = simulate(scenario, events, seed, out, labels, snapshot=snapshot, pings=pings, accounts=accounts)
    if as_json:
        emit_json(summary)
    else:
        out_n = summary.get("events", events)
        out.parent.mkdir(parents=True, exist_ok=True)
        extra = (f" and labels to {labels}" if labels else "") + (f" and accounts to {accounts}" if accounts else "")
        err.print(f"wrote {out_n:,} events to {out}" + extra, markup=False)


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

    settings = app_settings()
    warden = open_warden(quiet)
    with tempfile.TemporaryDirectory(prefix="geowarden-eval-") as tmp:
        log_path = Path(logs)
        if labels is None:
            if logs not in scenario_names() and not (log_path.suffix in (".yaml", ".yml") and log_path.is_file()):
                fail(f"{logs}: give --labels for a log file, or a scenario ({', '.join(scenario_names())})", 2)
            log_path, labels = Path(tmp) / "events.jsonl.gz", Path(tmp) / "labels.jsonl"
            simulate(logs, events, seed, log_path, labels, snapshot=warden.intel, pings=settings.pings)
        elif not log_path.is_file():
            fail(f"{logs}: no such log file", 2)
        report = evaluate(log_path, labels, policy, warden.intel, settings=settings, chart=chart)
    if as_json:
        emit_json(report)
    else:
        _print_eval(report)
    for problem in report["problems"]:
        err.print(f"geowarden: {problem}", markup=False)
    exit_for_rows(report["events"], report["skipped"])


def _print_eval(report: dict[str, Any]) -> None:
    o = report["overall"]
    console.print(
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
    console.print(table)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f} %"
