"""The HTTP service: ``geowarden serve`` and its API tokens (``geowarden token create``)."""

from __future__ import annotations

import shutil
from typing import Annotated, Any

import typer

from geowarden.cli.common import JsonOpt, QuietOpt, app_settings, emit_json, err, out

token_app = typer.Typer(help="API tokens for the service (scopes: decide, review, admin).", no_args_is_help=True)


@token_app.command("create")
def token_create(
    scope: Annotated[list[str], typer.Option(help="decide, review or admin (repeatable).")],
    name: Annotated[str | None, typer.Option(help="A name shown in the audit trail.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create an API token and print it once (only its hash is kept)."""
    from geowarden.service.auth import TokenStore  # noqa: PLC0415

    store = TokenStore(app_settings().home / "tokens.json")
    token = store.create(scope, name=name)
    if as_json:
        emit_json({"token": token, "scopes": sorted(scope)})
    else:
        out.print(token, markup=False)


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.", min=1, max=65535)] = 8080,
    workers: Annotated[int, typer.Option(help="Worker processes.", min=1, max=64)] = 1,
    quiet: QuietOpt = False,
) -> None:
    """Run the HTTP decision service (uvicorn): /v1/decide, edge adapters, review, dashboard, metrics."""
    import uvicorn  # noqa: PLC0415

    from geowarden.service.app import build_service  # noqa: PLC0415
    from geowarden.settings import default_public_url, prepare_worker_metrics  # noqa: PLC0415

    default_public_url(host, port)  # appeal links name the port served, unless GEOWARDEN_PUBLIC_URL says otherwise
    # Build once in this process first: a bad setting, snapshot or policy fails here, in one line.
    build_service(app_settings()).audit.close()
    if not quiet:
        err.print(f"[dim]· serving on http://{host}:{port} ({workers} worker{'s' if workers > 1 else ''})[/dim]")
    metrics_dir = prepare_worker_metrics(workers)  # every worker's counters in each scrape
    try:
        _run(uvicorn, host, port, workers)
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def _run(uvicorn: Any, host: str, port: int, workers: int) -> None:
    """uvicorn with the service's factory (each worker builds its own Service)."""
    uvicorn.run(
        "geowarden.service.app:create_app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,
        # geowarden reads forwarding headers itself, only from GEOWARDEN_TRUSTED_PROXIES; uvicorn's own
        # proxy-header handling (on by default, trusting 127.0.0.1) would let a local peer forge its address.
        proxy_headers=False,
        forwarded_allow_ips="",
    )
