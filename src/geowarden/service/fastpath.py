"""A lean path for the hot endpoint: ``POST /v1/decide`` with a valid token and a valid body.

FastAPI's request handling (dependency resolution, routing, response validation) costs several
times the decision itself. This ASGI wrapper answers the common case directly, with the same
pydantic model validating the body (in Rust) and the same Service doing the work, and hands every
other request — a bad token, a body that does not validate, any other path — to the FastAPI app
unchanged (the body it already read is replayed), so errors, documentation and schema stay the
FastAPI ones. Tests drive both paths against one schema.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from pydantic import ValidationError

from geowarden.errors import GeowardenError
from geowarden.service.core import Service, token_of
from geowarden.service.schemas import FactsIn

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_JSON = [(b"content-type", b"application/json")]


class DecideFastPath:
    def __init__(self, app: ASGIApp, service: Service) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != "/v1/decide":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", ())}
        limit = self.service.settings.max_body_bytes
        length = headers.get("content-length", "0").strip()
        if not (length.isascii() and length.isdigit()) or int(length) > limit:
            await self.app(scope, receive, send)  # refused unread by the limits behind (413, or 400)
            return
        body, complete = await _read(receive, limit)
        token = token_of(headers)
        facts_in = None
        is_json = headers.get("content-type", "").split(";", 1)[0].strip().lower() == "application/json"
        if complete and is_json and self.service.tokens.check(token, "decide") is not None:
            try:
                facts_in = FactsIn.model_validate_json(body)
            except ValidationError:
                facts_in = None
        if facts_in is None:
            await self.app(scope, _replay(body, receive, complete), send)
            return
        peer = scope["client"][0] if scope.get("client") else None
        facts = self.service.with_client(facts_in.to_facts(), peer, headers)
        status = 200
        try:
            d = await self.service.decide(facts, endpoint="decide")
            payload = self.service.decision_json(d, facts).encode()
        except GeowardenError as exc:  # the audit log cannot be written, say: the same answer as FastAPI's handler
            status, payload = exc.status, json.dumps({"detail": exc.message}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [*_JSON, (b"content-length", str(len(payload)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": payload})


async def _read(receive: Receive, limit: int) -> tuple[bytes, bool]:
    """The request body, and whether all of it was read (a large body is left to FastAPI)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), False
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), True
        if size > limit:
            return b"".join(chunks), False


def _replay(body: bytes, receive: Receive, complete: bool) -> Receive:
    """A receive callable that first gives back what was already read."""
    sent = False

    async def again() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": not complete}
        return await receive()

    return again
