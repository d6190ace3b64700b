"""``geowarden allow create | verify``: allowlist tokens."""

from __future__ import annotations

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
    as_json: JsonOpt = False,
) -> None:
    """Issue a signed, expiring allowlist token (printed once)."""
    from geowarden.policy.allowlist import TokenSigner  # noqa: PLC0415

    if (account is None) == (api_key is None):
        fail("give exactly one of --account or --api-key", 2)
    subject = f"account:{account}" if account is not None else f"key:{api_key}"
    token = TokenSigner.from_settings(app_settings()).issue(subject, seconds=int(days * 86400), reason=reason)
    if as_json:
        emit_json({"token": token, "subject": subject, "days": days})
    else:
        out.print(token, markup=False)


@app.command("verify")
def allow_verify(token: Annotated[str, typer.Argument(help="The token.")], as_json: JsonOpt = False) -> None:
    """Check a token: genuine and unexpired, and whom it clears."""
    from geowarden.policy.allowlist import TokenSigner  # noqa: PLC0415

    grant = TokenSigner.from_settings(app_settings()).verify(token)
    doc: dict[str, Any] = {"valid": grant is not None}
    if grant is not None:
        doc.update({"subject": grant.subject, "expires": grant.expires, "reason": grant.reason})
    if as_json:
        emit_json(doc)
    else:
        out.print(
            f"valid: {grant.subject}, expires {grant.expires}" if grant else "not valid (forged, damaged or expired)"
        )
    if grant is None:
        raise typer.Exit(1)
