"""Progress of long commands drawn on the command line's stderr console (rich).

The library layers report progress through plain callbacks and small protocols and know
nothing of a terminal; this module is where the command line turns those reports into lines
and bars.
"""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)


class ConsoleUpdateProgress:
    """``intel update``'s ``UpdateProgress`` on a console: a dim line per step and a bar per
    download (both hidden when ``quiet``), and each skipped source in yellow (always shown)."""

    def __init__(self, console: Console, *, quiet: bool = False) -> None:
        self.console = console
        self.quiet = quiet
        self._bars: Progress | None = None

    def step(self, message: str) -> None:
        if not self.quiet:
            self.console.print(f"[dim]· {escape(message)}[/dim]")

    def skipped(self, name: str, reason: str) -> None:
        self.console.print(f"[yellow]skipped[/yellow] {name}: {escape(reason)}")

    def download(self, name: str, total: int | None) -> Callable[[int], None]:
        if self._bars is None:
            self._bars = Progress(
                TextColumn("{task.description:<24}"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=self.console,
                disable=self.quiet,
            )
            self._bars.start()
        bars = self._bars
        task = bars.add_task(name, total=total)
        return lambda completed: bars.update(task, completed=completed)

    def downloads_done(self) -> None:
        if self._bars is not None:
            self._bars.stop()
            self._bars = None
