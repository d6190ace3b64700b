"""``geowarden audit prune``: the audit log's retention, once (the service prunes hourly)."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Annotated

import typer

from geowarden.cli.common import JsonOpt, app_settings, emit_json, fail, out

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
