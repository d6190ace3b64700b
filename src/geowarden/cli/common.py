"""What every command module shares: the consoles, the common options, the one-line failure,
progress messages, the single JSON document on stdout, and the settings of this invocation."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console

from geowarden.settings import Settings

if TYPE_CHECKING:
    from geowarden.warden import Warden

err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 160)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print exactly one JSON document on stdout.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress messages on stderr.")]


def fail(message: str, code: int = 1) -> NoReturn:
    err.print(f"geowarden: error: {message}", markup=False)
    raise typer.Exit(code)


def progress(quiet: bool) -> Callable[[str], None] | None:
    """A progress callback printing dim lines on stderr, or None with --quiet."""
    if quiet:
        return None
    return lambda msg: err.print(f"[dim]· {msg}[/dim]")


def emit_json(doc: Any) -> None:
    """The one JSON document a --json command prints on stdout."""
    sys.stdout.write(json.dumps(doc, ensure_ascii=False) + "\n")


_settings: ContextVar[Settings] = ContextVar("geowarden_cli_settings")


def use_settings(settings: Settings) -> None:
    """Make ``settings`` this invocation's (the app's callback, once per invocation)."""
    _settings.set(settings)


def app_settings() -> Settings:
    """The settings of this invocation, read from the environment once by the app's callback."""
    try:
        return _settings.get()
    except LookupError:  # a command function called outside the app: its callback did not run
        raise RuntimeError("geowarden.cli.app_settings() called outside a geowarden command") from None


def open_warden(quiet: bool = False, policy: Path | None = None) -> Warden:
    from geowarden.warden import Warden  # noqa: PLC0415 - keep --help fast

    return Warden.open(app_settings(), policy=policy, progress=progress(quiet))


def warn_stale_lists(warden: Warden) -> None:
    """One stderr line when an anonymiser list of the current snapshot is older than 30 days."""
    from geowarden.intel.freshness import stale_lists, stale_warning  # noqa: PLC0415

    snap = warden.intel
    line = stale_warning(stale_lists(snap.meta["sources"], snap.label_sources))
    if line:
        err.print(f"geowarden: warning: {line}", markup=False)


def exit_for_rows(read: int, skipped: int, what: str = "events") -> None:
    """The end of a command over log rows: exit 3 when rows were skipped (each was reported with
    its file and line), and say so in one line when none was usable."""
    if read - skipped <= 0:
        err.print(f"geowarden: error: no usable {what} in the logs ({read:,} rows read, {skipped:,} malformed)")
    if skipped or read - skipped <= 0:
        raise typer.Exit(3)


def read_lines(path: str) -> Iterator[tuple[int, str]]:
    """(line number, text) of each non-blank, non-comment line of a file or stdin ('-').

    Read as UTF-8 whatever the locale: a byte-order mark is dropped, bytes that are not UTF-8 are
    replaced (the line is then reported by the command, not fatal), and lines end at ``\n``,
    ``\r\n`` or ``\r``."""
    try:
        if path == "-":
            raw = getattr(sys.stdin, "buffer", None)
            fh: IO[str] = (
                io.TextIOWrapper(raw, encoding="utf-8-sig", errors="replace") if raw is not None else sys.stdin
            )
        else:
            fh = Path(path).open(encoding="utf-8-sig", errors="replace")  # noqa: SIM115
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        fail(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}", 2)
    try:
        for n, line in enumerate(fh, 1):
            text = line.removeprefix("\ufeff").split("#", 1)[0].strip()
            if text:
                yield n, text
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror or exc}", 2)
    finally:
        if path == "-":
            if isinstance(fh, io.TextIOWrapper) and fh is not sys.stdin:
                fh.detach()  # leave the process's stdin open
        else:
            fh.close()
