"""``geowarden indicators``: analytics findings as a STIX 2.1 bundle for peers, and a peer's bundle
read back as ``shared-indicator`` records (see ``geowarden.sharing.stix``)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated

import typer

from geowarden.cli.common import JsonOpt, app_settings, emit_json, fail, out

app = typer.Typer(help="Indicators shared with peers (STIX 2.1).", no_args_is_help=True)
_PEER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@app.command("export")
def indicators_export(
    findings: Annotated[Path, typer.Option("--findings", help="findings.json written by `analyze --out`.")],
    out_file: Annotated[Path | None, typer.Option("--out", help="Write the bundle here (default: stdout).")] = None,
    producer: Annotated[str, typer.Option("--producer", help="Your organisation's name in the bundle.")] = "geowarden",
    tlp: Annotated[str, typer.Option("--tlp", help="TLP marking: white, green, amber or red.")] = "amber",
    valid_days: Annotated[float, typer.Option("--valid-days", help="How long the indicators hold.", min=0.01)] = 30.0,
    as_json: JsonOpt = False,
) -> None:
    """The network findings (ASNs, prefixes) as a STIX 2.1 bundle of indicators."""
    from geowarden.sharing.stix import export_bundle, read_findings  # noqa: PLC0415

    bundle, skipped = export_bundle(read_findings(findings), producer=producer, tlp=tlp, valid_days=valid_days)
    text = bundle.serialize(pretty=True)
    n = sum(1 for o in bundle.objects if o.type == "indicator")
    if out_file is None:
        if as_json:
            fail("--json needs --out (the bundle itself goes to stdout without it)", 2)
        out.file.write(text + "\n")
        return
    try:
        out_file.write_text(text + "\n", encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write {out_file}: {exc.strerror or exc}", 2)
    if as_json:
        emit_json({"out": str(out_file), "indicators": n, "skipped": skipped})
    else:
        out.print(
            f"wrote {n:,} indicators to {out_file} ({sum(skipped.values()):,} findings not shareable)", markup=False
        )


@app.command("import")
def indicators_import(
    bundle: Annotated[Path, typer.Argument(help="A peer's STIX 2.1 bundle (JSON).")],
    peer: Annotated[str, typer.Option("--peer", help="The peer's name (letters, digits, . _ -).")],
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Default: $GEOWARDEN_HOME/shared-indicators/PEER.json.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Read a peer's indicators (networks, ASNs) as shared-indicator records with the peer's name."""
    from geowarden.sharing.stix import import_bundle  # noqa: PLC0415

    if not _PEER.match(peer):
        fail(f"--peer {peer!r}: use letters, digits, '.', '_' or '-' (at most 64)", 2)
    records, skipped = import_bundle(bundle, peer=peer)
    target = out_file or app_settings().home / "shared-indicators" / f"{peer}.json"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(records, indent=1) + "\n", encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write {target}: {exc.strerror or exc}", 2)
    if as_json:
        emit_json({"out": str(target), "indicators": len(records), "skipped": skipped, "peer": peer})
    else:
        extra = f"; skipped {', '.join(f'{n} {r}' for r, n in skipped.items())}" if skipped else ""
        out.print(f"{len(records):,} indicators from {peer} in {target}{extra}", markup=False)
