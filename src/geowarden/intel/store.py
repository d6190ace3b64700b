"""Where snapshots live under ``GEOWARDEN_HOME`` and which one is current.

Layout::

    $GEOWARDEN_HOME/intel/<id>/      one compiled snapshot each (immutable once renamed in)
    $GEOWARDEN_HOME/intel/CURRENT    the id in use, replaced atomically (os.replace)
    $GEOWARDEN_HOME/intel/.lock      held while building or switching

A reader that opened a snapshot keeps using its files even if ``CURRENT`` moves on; old
snapshots are pruned only beyond ``keep`` and never the current one.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
from collections.abc import Callable, Collection, Iterator, Sequence
from pathlib import Path

from geowarden.errors import NoSnapshotError, SnapshotError
from geowarden.intel.build import build_snapshot
from geowarden.intel.format import META_FILE
from geowarden.intel.snapshot import Snapshot
from geowarden.intel.sources.base import SourceData

Progress = Callable[[str], None]


class SnapshotStore:
    def __init__(self, intel_dir: Path, *, keep: int = 3) -> None:
        self.dir = Path(intel_dir)
        self.keep = keep

    @property
    def current_file(self) -> Path:
        return self.dir / "CURRENT"

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        self.dir.mkdir(parents=True, exist_ok=True)
        with (self.dir / ".lock").open("a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def current_path(self) -> Path | None:
        try:
            sid = self.current_file.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        path = self.dir / sid
        if not sid or not (path / META_FILE).is_file():
            raise SnapshotError(
                f"{self.current_file} names snapshot {sid!r}, which is missing: run `geowarden intel build`"
            )
        return path

    def snapshots(self) -> list[Path]:
        if not self.dir.is_dir():
            return []
        return sorted(
            p for p in self.dir.iterdir() if p.is_dir() and not p.name.startswith(".") and (p / META_FILE).is_file()
        )

    def activate(self, path: Path) -> None:
        """Make ``path`` (a snapshot under this store) the current one, atomically."""
        path = Path(path)
        if path.parent.resolve() != self.dir.resolve():
            raise SnapshotError(f"{path} is not a snapshot of {self.dir}")
        Snapshot.open(path)  # refuse to switch to something that does not load
        tmp = self.dir / f".CURRENT.{os.getpid()}"
        tmp.write_text(path.name + "\n", encoding="utf-8")
        tmp.replace(self.current_file)
        self._prune(current=path)

    def build_and_activate(
        self, sources: Sequence[SourceData], *, note: str, progress: Progress | None = None, activate: bool = True
    ) -> Path:
        """Lock, build, activate: compile ``sources`` into a new snapshot of this store and (unless
        ``activate`` is false) make it the current one; return its path.

        If the new snapshot does not load, the ``SnapshotError`` is raised with its name in
        ``context["snapshot"]``, a snapshot directory this call created is removed, and the
        previous snapshot stays current.
        """
        with self.lock():
            return self._build_locked(sources, note=note, progress=progress, activate=activate)

    def _build_locked(
        self, sources: Sequence[SourceData], *, note: str, progress: Progress | None, activate: bool
    ) -> Path:
        existing = {p.name for p in self.dir.iterdir()}
        path = build_snapshot(sources, self.dir, note=note, progress=progress)
        if activate:
            try:
                self.activate(path)
            except SnapshotError as exc:
                if path.name not in existing:
                    shutil.rmtree(path, ignore_errors=True)
                exc.context.setdefault("snapshot", path.name)
                raise
        return path

    def open_current(
        self, *, default_sources: Callable[[], list[SourceData]] | None = None, progress: Progress | None = None
    ) -> Snapshot:
        """Open the current snapshot; with none yet, build one from ``default_sources``."""
        path = self.current_path()
        if path is None:
            if default_sources is None:
                raise NoSnapshotError(f"no intel snapshot under {self.dir}: run `geowarden intel build`")
            with self.lock():
                path = self.current_path()  # another process may have built it meanwhile
                if path is None:
                    if progress:
                        progress("no intel snapshot yet: building the default one from installed data (once, ~30 s)")
                    path = self._build_locked(default_sources(), note="default", progress=progress, activate=True)
        return Snapshot.open(path)

    def _prune(self, *, current: Path, exclude: Collection[str] = ()) -> None:
        old = [p for p in self.snapshots() if p.name != current.name and p.name not in exclude]
        old.sort(key=lambda p: p.stat().st_mtime)
        for p in old[: max(0, len(old) - (self.keep - 1))]:
            shutil.rmtree(p, ignore_errors=True)
