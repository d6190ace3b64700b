"""``geowarden audit``: ``prune`` (retention, once; the service prunes hourly), ``key`` (the public
key of the chain), ``verify`` (the hash chain of the database, or a signed evidence package
offline) and ``export`` (a signed evidence package)."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from geowarden.cli.common import JsonOpt, QuietOpt, app_settings, emit_json, fail, out, progress

log = logging.getLogger("geowarden.audit")
app = typer.Typer(help="The audit log of decisions.", no_args_is_help=True)


@app.command("prune")
def audit_prune(
    older_than: Annotated[
        float | None,
        typer.Option("--older-than", help="Days to keep (default: GEOWARDEN_AUDIT_RETENTION_DAYS)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Delete audited decisions (and their review trail) older than the retention period."""
    from geowarden.audit.store import open_default  # noqa: PLC0415

    settings = app_settings()
    days = older_than if older_than is not None else settings.audit_retention_days
    if days is None:
        fail("give --older-than DAYS or set GEOWARDEN_AUDIT_RETENTION_DAYS", 2)
    if not 0 < days < float("inf"):
        fail(f"--older-than must be a positive number of days, not {days:g}", 2)
    audit = open_default(settings.home, url=settings.audit_url, retention_days=days)
    now = time.time()
    try:
        deleted = audit.prune(now=now)
    finally:
        audit.close()
    cutoff = datetime.fromtimestamp(now - days * 86400, UTC).isoformat(timespec="seconds")
    log.info("pruned the audit log", extra={"deleted": deleted, "older_than_days": days, "cutoff": cutoff})
    if as_json:
        emit_json({"deleted": deleted, "older_than_days": days, "cutoff": cutoff})
    else:
        out.print(f"deleted {deleted:,} decisions audited before {cutoff}", markup=False)


PublicKeyOpt = Annotated[
    str | None,
    typer.Option("--public-key", help="Verify with this Ed25519 public key (64 hex digits, or a file holding them)."),
]


def _public_key(given: str | None) -> Any:
    """The key a verifier trusts: --public-key, else the one under GEOWARDEN_HOME."""
    from geowarden.audit.chain import ChainKey, PublicKey  # noqa: PLC0415
    from geowarden.audit.store import signing_seed  # noqa: PLC0415

    if given is None:
        return ChainKey(signing_seed(app_settings().home)).public
    text = given
    if len(given) != 64:
        try:
            text = Path(given).read_text(encoding="utf-8").strip()
        except (OSError, ValueError) as exc:
            fail(f"--public-key: cannot read {given}: {getattr(exc, 'strerror', None) or exc}", 2)
    try:
        return PublicKey.from_hex(text)
    except ValueError as exc:
        fail(f"--public-key: {exc}", 2)


@app.command("key")
def audit_key(as_json: JsonOpt = False) -> None:
    """Print the public key that signs the audit chain and evidence packages (created the first time)."""
    pub = _public_key(None)
    if as_json:
        emit_json({"public_key": pub.hex, "key_id": pub.key_id, "algorithm": "Ed25519"})
    else:
        out.print(f"{pub.hex}  (Ed25519, key id {pub.key_id})", markup=False)


@app.command("verify")
def audit_verify(
    package: Annotated[
        Path | None, typer.Argument(help="A signed evidence package; without it, the audit database.")
    ] = None,
    public_key: PublicKeyOpt = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Check the audit hash chain (or a signed evidence package, offline); name every bad row. Exit 1 when any."""
    pub = _public_key(public_key)
    if package is not None:
        from geowarden.audit.package import verify_package  # noqa: PLC0415

        doc = verify_package(package, pub)
    else:
        from geowarden.audit.store import open_default  # noqa: PLC0415
        from geowarden.audit.verify import verify_database  # noqa: PLC0415

        settings = app_settings()
        audit = open_default(settings.home, url=settings.audit_url)
        try:
            doc = verify_database(audit.engine, pub, progress=progress(quiet)).to_dict()
        finally:
            audit.close()
    if as_json:
        emit_json(doc)
    elif doc["ok"]:
        what = f"evidence package {package}" if package is not None else "audit chain"
        out.print(f"{what}: ok ({doc['rows']:,} rows verified, key {doc['key_id']})", markup=False)
    else:
        for p in doc["problems"]:
            out.print(p["message"], markup=False)
        out.print(f"{doc['problem_count']:,} problems", markup=False)
    if not doc["ok"]:
        raise typer.Exit(1)


@app.command("export")
def audit_export(
    out_file: Annotated[Path, typer.Option("--out", help="Write the signed evidence package (JSON) here.")],
    account: Annotated[str | None, typer.Option("--account", help="Every decision about this account.")] = None,
    key: Annotated[str | None, typer.Option("--key", help="Every decision about this API key id.")] = None,
    decision: Annotated[str | None, typer.Option("--decision", help="This one decision.")] = None,
    include_pii: Annotated[
        bool, typer.Option("--include-pii", help="Keep addresses, account and key ids (needs --admin-token).")
    ] = False,
    admin_token: Annotated[
        str | None, typer.Option("--admin-token", help="An admin-scope token, or - to read it from stdin.")
    ] = None,
    policy_files: Annotated[
        list[Path] | None,
        typer.Option("--policy", help="A policy file whose text to include when a decision used its version (repeat)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Write a signed evidence package: decisions, evidence, policy, snapshot, review trail, chain proof."""
    import sys  # noqa: PLC0415

    from geowarden.audit.package import build_package, policy_texts, write_package  # noqa: PLC0415
    from geowarden.audit.store import open_default  # noqa: PLC0415
    from geowarden.policy.engine import DEFAULT_POLICY  # noqa: PLC0415
    from geowarden.service.auth import TokenStore  # noqa: PLC0415

    settings = app_settings()
    if sum(v is not None for v in (account, key, decision)) != 1:
        fail("give exactly one of --account, --key, --decision", 2)
    if include_pii:
        token = sys.stdin.readline().strip() if admin_token == "-" else admin_token  # noqa: S105 - "-" is stdin
        if not token:
            fail("--include-pii needs --admin-token (an admin-scope token; - reads it from stdin)", 2)
        if TokenStore(settings.home / "tokens.json").check(token, "admin") is None:
            fail("--include-pii: the token is not a valid admin-scope token", 1)
    texts = policy_texts([*(policy_files or []), settings.policy or DEFAULT_POLICY])
    audit = open_default(settings.home, url=settings.audit_url)
    try:
        doc = build_package(
            audit, account=account, key=key, decision=decision, include_pii=include_pii,
            policies=texts, snapshot=_snapshot_summary(settings.intel_dir),
        )  # fmt: skip
    finally:
        audit.close()
    n = len(doc["body"]["decisions"])
    if n == 0:
        fail("no audited decision matches; nothing written", 1)
    write_package(doc, out_file)
    summary = {
        "out": str(out_file),
        "decisions": n,
        "chain_rows": len(doc["body"]["proof"]["rows"]),
        "include_pii": include_pii,
        "key_id": doc["body"]["key_id"],
    }
    if as_json:
        emit_json(summary)
    else:
        out.print(f"wrote {out_file}: {n:,} decisions, signed by key {summary['key_id']}", markup=False)


def _snapshot_summary(intel_dir: Path) -> dict[str, Any] | None:
    """The current snapshot's id, build date and sources (name, title, date, licence), or None."""
    import json  # noqa: PLC0415

    from geowarden.errors import SnapshotError  # noqa: PLC0415
    from geowarden.intel.store import SnapshotStore  # noqa: PLC0415

    try:
        path = SnapshotStore(intel_dir).current_path()
        if path is None:
            return None
        meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
    except (SnapshotError, OSError, ValueError):
        return None
    keep = ("name", "title", "kind", "date", "licence", "url")
    return {
        "id": meta.get("id"),
        "built_at": meta.get("built_at"),
        "sources": [{k: s.get(k) for k in keep} for s in meta.get("sources", []) if isinstance(s, dict)],
    }
