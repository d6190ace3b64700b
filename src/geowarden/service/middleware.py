"""Protect any ASGI application (Starlette, FastAPI, ...) in process.

::

    from geowarden import Warden
    from geowarden.service.middleware import GeowardenMiddleware

    app.add_middleware(GeowardenMiddleware, warden=Warden.open(), trusted_proxies="10.0.0.0/8")

Each HTTP request is decided before the application sees it. ``block`` and ``review`` answer
403 with the user-safe message (and an appeal URL when ``appeal_url`` is given); ``allow``,
``limited`` and ``challenge`` pass through, with the decision in ``scope["state"]["geowarden"]``
and in ``x-geowarden-*`` response headers, so the application can limit or step up. Paths in
``exempt`` (health checks, say) are not decided. The account and key ids come from request
headers (``x-geowarden-account``, ``x-geowarden-api-key-id`` by default) or a callable.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from geowarden.model import Action, Decision, Facts
from geowarden.service.clientip import TrustedProxies, client_ip
from geowarden.warden import Warden

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class GeowardenMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        warden: Warden,
        trusted_proxies: str = "",
        exempt: tuple[str, ...] = ("/healthz",),
        facts_from: Callable[[Scope, dict[str, str], str | None], Facts] | None = None,
        on_decision: Callable[[Decision, Facts], None] | None = None,
        appeal_url: Callable[[Decision], str | None] | None = None,
    ) -> None:
        self.app = app
        self.warden = warden
        self.trusted = TrustedProxies.parse(trusted_proxies)
        self.exempt = exempt
        self.facts_from = facts_from or (
            lambda scope, headers, ip: facts_from_headers(headers, ip, from_edge=_peer(scope) in self.trusted)
        )
        self.on_decision = on_decision
        self.appeal_url = appeal_url

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path", "") in self.exempt:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        facts = self.facts_from(scope, headers, client_ip(_peer(scope), headers, self.trusted))
        decision = self.warden.decide(facts)
        if self.on_decision is not None:
            self.on_decision(decision, facts)
        extra = [
            (b"x-geowarden-action", decision.action.value.encode()),
            (b"x-geowarden-decision", decision.decision_id.encode()),
        ]
        if decision.action in (Action.BLOCK, Action.REVIEW):
            body = json.dumps(
                {
                    "message": decision.user_message,
                    "decision_id": decision.decision_id,
                    "appeal_url": self.appeal_url(decision) if self.appeal_url else None,
                }
            ).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 403,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                        *extra,
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        scope.setdefault("state", {})["geowarden"] = decision

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = dict(message)
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _peer(scope: Scope) -> str | None:
    return scope["client"][0] if scope.get("client") else None


#: The edge's TCP RTT of the client connection in microseconds (nginx ``$tcpinfo_rtt``, HAProxy
#: ``fc_rtt(us)``); one value or a comma-separated list. 0 means unmeasured.
RTT_TCP_HEADER = "x-geowarden-rtt-us"
#: Application-level RTTs of the same client in milliseconds (a nonce echo), comma-separated.
RTT_APP_HEADER = "x-geowarden-app-rtt-ms"
_MAX_RTT_MS = 10_000.0
_MAX_VALUES = 16


def _rtts(value: str | None, scale: float) -> tuple[float, ...]:
    """Positive finite RTTs (ms) below 10 s from a comma-separated header; anything else is not a measurement."""
    out: list[float] = []
    for part in (value or "").split(",")[:_MAX_VALUES]:
        try:
            ms = float(part.strip()) * scale
        except ValueError:
            continue
        if 0.0 < ms < _MAX_RTT_MS:  # NaN fails both comparisons
            out.append(ms)
    return tuple(out)


def edge_rtts(headers: Mapping[str, str]) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(TCP RTTs, application RTTs) in ms from the edge's headers, for the tunnel-gap check."""
    return _rtts(headers.get(RTT_TCP_HEADER), 0.001), _rtts(headers.get(RTT_APP_HEADER), 1.0)


def facts_from_headers(headers: Mapping[str, str], ip: str | None, *, from_edge: bool = True) -> Facts:
    """The facts an edge forwards in request headers (lower-case names); shared by the middleware
    and the ext_authz / auth_request adapters.

    The RTT headers are read only ``from_edge``: the adapters are called by an edge holding a
    decide token; the middleware believes them only from a trusted proxy (a client could set them).
    """
    tcp, app = edge_rtts(headers) if from_edge else ((), ())
    return Facts(
        ip=ip,
        account_id=headers.get("x-geowarden-account"),
        api_key_id=headers.get("x-geowarden-api-key-id"),
        accept_language=headers.get("accept-language"),
        timezone=headers.get("x-client-timezone"),
        user_agent=headers.get("user-agent"),
        allow_token=headers.get("x-geowarden-allow"),
        rtt_tcp_ms=tcp,
        rtt_app_ms=app,
    )
