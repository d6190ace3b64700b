"""The service's outermost layer: how much a request may send, and in what form.

Every request passes here before anything reads its body:

- a ``Content-Length`` above the limit (``GEOWARDEN_MAX_BODY_BYTES``, 64 KiB by default) is
  answered 413 at once, without reading a byte of the body;
- a body without a length (chunked) is counted as it arrives and stopped with a 413 as soon as it
  passes the limit: the rest is never read (the application is told the client left);
- a ``POST`` to a JSON route (:data:`JSON_POSTS`, ``/v1/review/{id}``) without
  ``Content-Type: application/json`` is answered 415.

The answers are short fixed sentences: nothing the client sent is echoed back.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from geowarden.errors import InputError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

DEFAULT_MAX_BODY = 64 * 1024


def too_large(limit: int) -> InputError:
    """The error of a body over ``limit`` bytes (HTTP 413)."""
    return InputError(f"the request body is larger than {limit} bytes", status=413)


#: The JSON API's POST routes (a path elsewhere is left to the router: 404 or 405).
JSON_POSTS = frozenset(
    {"/v1/decide", "/v1/signup", "/v1/screen", "/v1/appeals", "/v1/challenge", "/v1/challenge/verify"}
)


def _json_route(path: str) -> bool:
    return path in JSON_POSTS or path.startswith("/v1/review/")


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


class RequestGuard:
    """ASGI middleware enforcing the body limit and the JSON API's content type (see the module)."""

    def __init__(self, app: ASGIApp, *, max_body: int = DEFAULT_MAX_BODY) -> None:
        self.app = app
        self.max_body = max_body

    def __getattr__(self, name: str) -> Any:
        """The wrapped application's attributes (``state``, ``openapi``, ...), as if unwrapped."""
        if name == "app":
            raise AttributeError(name)
        return getattr(self.app, name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length: str | None = None
        content_type = ""
        for k, v in scope.get("headers", ()):
            if k == b"content-length":
                length = v.decode("latin-1").strip()
            elif k == b"content-type":
                content_type = v.decode("latin-1")
        numeric = length is not None and length.isascii() and length.isdigit()
        if length is not None and (not numeric or int(length) > self.max_body):
            status = 413 if numeric else 400
            msg = too_large(self.max_body).message if status == 413 else "the Content-Length header is not a number"
            await _answer(send, status, msg)
            return
        if scope["method"] == "POST" and _json_route(scope["path"]) and not _is_json(content_type):
            await _answer(send, 415, "send the body as JSON with Content-Type: application/json")
            return
        started = answered = False
        seen = 0
        limit = self.max_body

        async def counted() -> Message:
            # Past the limit: answer 413 here and now, and tell the application the client left,
            # so it stops reading (whatever it answers then is dropped).
            nonlocal seen, answered
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    if not started and not answered:
                        answered = True
                        await _answer(send, 413, too_large(limit).message)
                    return {"type": "http.disconnect"}
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            if answered:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, counted, tracked)


async def _answer(send: Send, status: int, message: str) -> None:
    body = json.dumps({"detail": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 413:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
