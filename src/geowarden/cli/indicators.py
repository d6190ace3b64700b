"""``geowarden indicators``: analytics findings as a STIX 2.1 bundle for peers (with the phones and
payment instruments the findings' members share, as keyed fingerprints under a salt agreed with the
peer), and a peer's bundle read back as ``shared-indicator`` / ``shared-fingerprint`` records (see
``geowarden.sharing.stix`` and ``geowarden.sharing.fingerprints``)."""

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
    contacts: Annotated[
        Path | None,
        typer.Option(
            help="Accounts' phone / payment_fingerprint (CSV or JSON Lines): share what members hold in common."
        ),
    ] = None,
    salt_file: Annotated[
        Path | None,
        typer.Option("--salt-file", help="The salt agreed with the peer (fingerprints are HMACs under it)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """The network findings (ASNs, prefixes) as a STIX 2.1 bundle of indicators; with --contacts and
    --salt-file, the phones and payment instruments the findings' members share, as keyed fingerprints."""
    from geowarden.sharing import fingerprints as fp  # noqa: PLC0415
    from geowarden.sharing.stix import export_bundle, read_findings  # noqa: PLC0415

    if (contacts is None) != (salt_file is None):
        fail("--contacts and --salt-file go together (fingerprints are only shared hashed under the agreed salt)", 2)
    found = read_findings(findings)
    shared = fp.shared_values(found, fp.read_contacts(contacts)) if contacts is not None else {}
    salt = fp.read_salt(salt_file) if salt_file is not None else None
    bundle, skipped = export_bundle(
        found, producer=producer, tlp=tlp, valid_days=valid_days, fingerprints=shared, salt=salt
    )
    text = bundle.serialize(pretty=True)
    n = sum(1 for o in bundle.objects if o.type == "indicator") - len(shared)
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
        emit_json({"out": str(out_file), "indicators": n, "fingerprints": len(shared), "skipped": skipped})
    else:
        extra = f" and {len(shared):,} keyed fingerprints" if shared else ""
        out.print(
            f"wrote {n:,} indicators{extra} to {out_file} ({sum(skipped.values()):,} findings not shareable)",
            markup=False,
        )


@app.command("import")
def indicators_import(
    bundle: Annotated[Path, typer.Argument(help="A peer's STIX 2.1 bundle (JSON).")],
    peer: Annotated[str, typer.Option("--peer", help="The peer's name (letters, digits, . _ -).")],
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Default: $GEOWARDEN_HOME/shared-indicators/PEER.json.")
    ] = None,
    salt_file: Annotated[
        Path | None,
        typer.Option("--salt-file", help="The salt agreed with this peer: kept beside the records (mode 0600)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Read a peer's indicators (networks, ASNs; phone and payment fingerprints) as shared-indicator
    and shared-fingerprint records with the peer's name; `intel build` and the live path use them."""
    from geowarden.sharing.fingerprints import read_salt  # noqa: PLC0415
    from geowarden.sharing.stix import import_bundle  # noqa: PLC0415

    if not _PEER.match(peer):
        fail(f"--peer {peer!r}: use letters, digits, '.', '_' or '-' (at most 64)", 2)
    salt = read_salt(salt_file) if salt_file is not None else None
    records, skipped = import_bundle(bundle, peer=peer, salt=salt)
    target = out_file or app_settings().home / "shared-indicators" / f"{peer}.json"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(records, indent=1) + "\n", encoding="utf-8")
        if salt is not None:  # the live path hashes requests' phones with it
            keep = target.with_suffix(".salt")
            keep.touch(mode=0o600, exist_ok=True)
            keep.chmod(0o600)
            keep.write_bytes(salt)
    except OSError as exc:
        fail(f"cannot write {target}: {exc.strerror or exc}", 2)
    n_fp = sum(1 for r in records if r["label"] == "shared-fingerprint")
    if as_json:
        emit_json(
            {"out": str(target), "indicators": len(records) - n_fp, "fingerprints": n_fp, "skipped": skipped,
             "peer": peer}
        )  # fmt: skip
    else:
        extra = f"; skipped {', '.join(f'{n} {r}' for r, n in skipped.items())}" if skipped else ""
        fps = f" and {n_fp:,} fingerprints" if n_fp else ""
        out.print(f"{len(records) - n_fp:,} indicators{fps} from {peer} in {target}{extra}", markup=False)
