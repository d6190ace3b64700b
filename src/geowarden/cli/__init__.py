"""The ``geowarden`` command line: thin verbs over the Warden.

Every reporting command takes ``--json`` and then prints exactly one JSON document on stdout.
Errors go to stderr as one line, with a non-zero exit, never a traceback.

The settings are read from the environment once per invocation (the app's callback), the
``geowarden`` logger is configured from them, and every command takes them from
``common.app_settings()``. One module per group of verbs:

- ``ip``: address lookups; ``check``: ``check``, ``verify-location``, ``screen``;
- ``intel``, ``policy``, ``allow``, ``audit``, ``latency`` (the landmark calibration): those command
  groups; ``report``: the compliance report;
  ``indicators``: STIX 2.1 sharing with peers;
- ``sim``: ``simulate`` and ``eval``; ``service``: ``serve`` and ``token``;
- ``analyze`` lives with the analytics (``geowarden.analytics.cli``).
"""

from __future__ import annotations

import sys

import typer

from geowarden.analytics.cli import analyze_cmd
from geowarden.cli import allow, audit, check, indicators, intel, ip, latency, policy, report, service, sim
from geowarden.cli.common import (
    JsonOpt,
    QuietOpt,
    app_settings,
    emit_json,
    err,
    fail,
    open_warden,
    out,
    progress,
    read_lines,
    use_settings,
)
from geowarden.errors import GeowardenError
from geowarden.logconfig import configure_logging
from geowarden.settings import Settings

app = typer.Typer(
    name="geowarden",
    help="Decide whether an AI API request may come from where it really comes from.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _start() -> None:
    settings = Settings.from_env()  # the one read of the environment for this invocation
    configure_logging(settings)
    use_settings(settings)


app.command("ip")(ip.ip_cmd)
app.command("check")(check.check_cmd)
app.command("verify-location")(check.verify_location)
app.command("screen")(check.screen_cmd)
app.command("simulate")(sim.simulate_cmd)
app.command("eval")(sim.eval_cmd)
app.command("serve")(service.serve)
app.command("analyze")(analyze_cmd)
app.command("report")(report.report_cmd)
app.add_typer(intel.app, name="intel")
app.add_typer(policy.app, name="policy")
app.add_typer(allow.app, name="allow")
app.add_typer(audit.app, name="audit")
app.add_typer(indicators.app, name="indicators")
app.add_typer(latency.app, name="latency")
app.add_typer(service.token_app, name="token")

__all__ = [
    "JsonOpt",
    "QuietOpt",
    "app",
    "app_settings",
    "emit_json",
    "err",
    "fail",
    "main",
    "open_warden",
    "out",
    "progress",
    "read_lines",
    "use_settings",
]


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
