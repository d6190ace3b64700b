"""``geowarden latency calibrate | info``: the landmark calibration the rtt signal and
``verify-location`` use (docs/latency.md, "Calibrating your landmarks")."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from geowarden.cli.common import JsonOpt, QuietOpt, app_settings, emit_json, err, fail, out, progress, read_lines
from geowarden.errors import InputError

if TYPE_CHECKING:
    from geowarden.latency.calibration import Mesh
    from geowarden.latency.model import Calibration

app = typer.Typer(help="Calibrate the latency landmarks from a mesh of their pings.", no_args_is_help=True)

#: Bad mesh rows shown one a line; past this, one line counts the rest.
SHOWN_BAD_ROWS = 20
#: The reading bar appears only when reading takes longer than this (seconds).
BAR_AFTER_S = 2.0


class _LateBar:
    """A bar of bytes read on stderr that appears only once reading has taken ``BAR_AFTER_S``
    (never with ``--quiet`` or when stderr is not a terminal)."""

    def __init__(self, total: int | None, quiet: bool) -> None:
        self.total, self.done, self.lines = total, 0, 0
        self.enabled = not quiet and err.is_terminal
        self.start = time.monotonic()
        self.bar: Progress | None = None

    def advance(self, nbytes: int) -> None:
        self.done += nbytes
        self.lines += 1
        if not self.enabled or self.lines % 2000:
            return
        if self.bar is None:
            if time.monotonic() - self.start < BAR_AFTER_S:
                return
            columns = (TextColumn("reading the mesh"), BarColumn(), TextColumn("{task.fields[rows]} rows"))
            self.bar = Progress(*columns, TimeElapsedColumn(), console=err, transient=True)
            self.bar.start()
            self.task = self.bar.add_task("mesh", total=self.total, rows="0")
        self.bar.update(self.task, completed=self.done, rows=f"{self.lines:,}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


def _size(path: str) -> int | None:
    if path == "-":
        return None
    try:
        return Path(path).stat().st_size
    except (OSError, ValueError):
        return None  # read_lines says why in one line


@app.command("calibrate")
def calibrate_cmd(
    mesh: Annotated[
        str,
        typer.Option(
            "--mesh",
            help="Landmark-to-landmark pings: CSV a_lat,a_lon,b_lat,b_lon,rtt_ms[,a_name,b_name] (a header "
            "or none), or JSON Lines with those keys ('-' = stdin).",
        ),
    ],
    out_path: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Where to save it (default: $GEOWARDEN_HOME/latency/calibration.json, which is used by default).",
        ),
    ] = None,
    skip_bad: Annotated[
        bool, typer.Option("--skip-bad", help="Calibrate on the good rows even when some are bad (still exit 3).")
    ] = False,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Build a calibration from a mesh of pings between your landmarks and save it."""
    from geowarden.latency.calibration import calibrate, save, summary  # noqa: PLC0415

    settings = app_settings()
    say = progress(quiet)
    where = "stdin" if mesh == "-" else mesh
    found, read, bad = _read_mesh(mesh, where, quiet)
    if bad > SHOWN_BAD_ROWS:
        err.print(f"geowarden: {where}: ... and {bad - SHOWN_BAD_ROWS:,} more bad rows", markup=False)
    if found.rows == 0:
        fail(f"{where}: no usable mesh rows ({read:,} read, {bad:,} bad)", 3)
    if bad and not skip_bad:
        fail(f"no calibration written: {bad:,} bad row(s) in {where}; fix them, or pass --skip-bad to calibrate "
             f"on the other {found.rows:,}", 3)  # fmt: skip
    if say:
        say(f"calibrating {found.n:,} landmarks on {found.pairs:,} measured pairs ({found.rows:,} rows)")
    cal = calibrate(found)
    dest = out_path or settings.default_latency_calibration
    save(cal, dest, found)
    doc: dict[str, Any] = {"out": str(dest), **summary(cal, found), "bad_rows": bad}
    doc["in_use"] = _in_use(dest)
    if as_json:
        emit_json(doc)
    else:
        out.print(f"calibration saved to {dest}", markup=False)
        _print_summary(doc)
        if doc["in_use"]:
            out.print("  the rtt signal uses it (restart running services to load it)", markup=False)
        else:
            out.print(f"  to use it: GEOWARDEN_LATENCY_CALIBRATION={dest}, or verify-location --calibration {dest}",
                      markup=False)  # fmt: skip
    if bad:
        raise typer.Exit(3)


def _read_mesh(mesh: str, where: str, quiet: bool) -> tuple[Mesh, int, int]:
    """The mesh of a file or stdin, the rows read and the bad ones (each reported with its line)."""
    from geowarden.latency.calibration import Mesh, MeshHeaderError, MeshParser  # noqa: PLC0415

    parser, found = MeshParser(), Mesh()
    read = bad = 0
    bar = _LateBar(_size(mesh), quiet)
    try:
        for n, text in read_lines(mesh):
            read += 1
            bar.advance(len(text) + 1)
            try:
                row = parser.parse(text, n)
                if row is None:
                    read -= 1  # the header is no row
                    continue
                try:
                    found.add(row, n)
                except InputError as exc:
                    raise InputError(f"line {n}: {exc.message}") from None
            except MeshHeaderError as exc:
                bar.close()
                fail(f"{where} {exc.message}", 3)
            except InputError as exc:
                bad += 1
                if bad <= SHOWN_BAD_ROWS:
                    bar.close()
                    err.print(f"geowarden: {where} {exc.message}", markup=False)
    finally:
        bar.close()
    return found, read, bad


def _in_use(dest: Path) -> bool:
    current = app_settings().latency_calibration_file
    try:
        return current is not None and current.resolve() == dest.resolve()
    except OSError:
        return False


def _print_summary(doc: dict[str, Any]) -> None:
    mesh = doc.get("mesh")
    seen = f" from {mesh['pairs']:,} measured pairs ({mesh['rows']:,} rows)" if mesh else ""
    speed = doc["median_speed_km_per_ms"]
    out.print(
        f"  {doc['landmarks']:,} landmarks{seen}: {doc['calibrated']:,} calibrated"
        + (f" (median speed {speed} km/ms one way, 2/3 c = 199.9)" if speed is not None else "")
        + f", {doc['physical']:,} on the physical bound (fewer than 8 consistent pairs)",
        markup=False,
    )

    def names(items: list[dict[str, Any]]) -> str:
        return ", ".join(x["name"] or f"({x['lat']:g}, {x['lon']:g})" for x in items[:20]) + (
            f" and {len(items) - 20} more" if len(items) > 20 else ""
        )

    if doc["inconsistent"]:
        out.print(f"  inconsistent, never trusted (fix their coordinates): {names(doc['inconsistent'])}", markup=False)
    if doc["suspect"]:
        out.print(f"  suspect, half weight: {names(doc['suspect'])}", markup=False)
    out.print(f"  expected-RTT ceiling: {'yes' if doc['ceiling'] else 'no (too few pairs)'}", markup=False)


def load_calibration(path: Path) -> Calibration:
    """The calibration in ``path`` (a one-line ``ConfigError`` when unusable)."""
    from geowarden.latency.calibration import load  # noqa: PLC0415

    return load(path)


@app.command("info")
def info_cmd(
    file: Annotated[
        Path | None,
        typer.Argument(help="A calibration file (default: the one the rtt signal uses).", show_default=False),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """What a calibration holds: landmarks calibrated, inconsistent and suspect, and its ceiling."""
    from geowarden.latency.calibration import summary  # noqa: PLC0415

    path = file or app_settings().latency_calibration_file
    if path is None:
        if as_json:
            emit_json({"file": None})
        else:
            out.print(
                "no latency calibration configured (GEOWARDEN_LATENCY_CALIBRATION, or "
                "$GEOWARDEN_HOME/latency/calibration.json): every landmark gets the physical bound",
                markup=False,
            )
        return
    doc: dict[str, Any] = {"file": str(path), **summary(load_calibration(path)), "in_use": _in_use(path)}
    if as_json:
        emit_json(doc)
    else:
        out.print(f"{path}{' (in use)' if doc['in_use'] else ''}", markup=False)
        _print_summary(doc)


def calibration_for(path: Path | None, off: bool) -> tuple[Calibration | None, Path | None]:
    """``verify-location``'s calibration: ``--calibration FILE``, else the configured one, none with
    ``--no-calibration``."""
    if off:
        if path is not None:
            fail("give --calibration FILE or --no-calibration, not both", 2)
        return None, None
    chosen = path or app_settings().latency_calibration_file
    return (load_calibration(chosen), chosen) if chosen is not None else (None, None)
