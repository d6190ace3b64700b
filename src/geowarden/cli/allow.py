"""``geowarden allow create | verify``: allowlist tokens."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from geowarden.cli.common import JsonOpt, app_settings, emit_json, fail, out

app = typer.Typer(help="Allowlist tokens that clear a false positive for one account or key.", no_args_is_help=True)


@app.command("create")
def allow_create(
    account: Annotated[str | None, typer.Option(help="Clear this account.")] = None,
    api_key: Annotated[str | None, typer.Option("--api-key", help="Clear this API key id.")] = None,
    days: Annotated[float, typer.Option(help="Days until the token expires.", min=0.001, max=3650)] = 30,
    reason: Annotated[str, typer.Option(help="Why (kept in the token, e.g. a review id).")] = "",
    clears: Annotated[
        list[str] | None,
        typer.Option(
            "--clears",
            help="Also clear these blocks (repeatable): restricted (jurisdictions), tor, sanctions. "
            "Without it the token clears only the softer rules (VPN, hosting, origin signals).",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Issue a signed, expiring allowlist token (printed once)."""
    from geowarden.policy.allowlist import CLEARABLE, TokenSigner  # noqa: PLC0415

    if (account is None) == (api_key is None):
        fail("give exactly one of --account or --api-key", 2)
    bad = [c for c in clears or [] if c not in CLEARABLE]
    if bad:
        fail(f"--clears must be one of {', '.join(CLEARABLE)}, not {bad[0]!r}", 2)
    subject = f"account:{account}" if account is not None else f"key:{api_key}"
    signer = TokenSigner.from_settings(app_settings())
    token = signer.issue(subject, seconds=int(days * 86400), reason=reason, clears=clears or [])
    if as_json:
        grant = signer.verify(token)
        token_id = grant.token_id if grant else None
        emit_json({"token": token, "subject": subject, "days": days, "token_id": token_id, "clears": clears or []})
    else:
        out.print(token, markup=False)


@app.command("verify")
def allow_verify(token: Annotated[str, typer.Argument(help="The token.")], as_json: JsonOpt = False) -> None:
    """Check a token: genuine and unexpired, and whom it clears."""
    from geowarden.policy.allowlist import TokenSigner  # noqa: PLC0415

    grant = TokenSigner.from_settings(app_settings()).verify(token)
    doc: dict[str, Any] = {"valid": grant is not None}
    if grant is not None:
        expires = datetime.fromtimestamp(grant.expires, UTC).isoformat(timespec="seconds")
        doc.update(
            {
                "subject": grant.subject,
                "expires": expires,
                "expires_epoch": grant.expires,
                "reason": grant.reason,
                "token_id": grant.token_id,
                "clears": sorted(grant.clears),
            }
        )
    if as_json:
        emit_json(doc)
    else:
        out.print(
            f"valid: {grant.subject}, expires {doc['expires']}" if grant else "not valid (forged, damaged or expired)",
            markup=False,
        )
    if grant is None:
        raise typer.Exit(1)
