"""The inference routes answered straight from ASGI, without FastAPI's router and parameter parsing.

``POST /v1/models/{name}[/versions/{v}]:predict`` and ``POST /v2/models/{name}[/versions/{v}]/infer``
are the product (issue 5). Measured in-process, FastAPI's route matching, dependency solving and
``Request``/``Response`` objects cost about 50 us of CPU per request, a third of a one-image predict.
``ServiceMiddleware`` hands these two paths here (after request id, API key and body limit); the
FastAPI routes of the same paths stay for the OpenAPI schema and call the same ``service.inference``
functions, so both ways answer identically.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Mapping

import orjson
from starlette.types import Receive, Scope, Send

from service import inference
from service.dataplane import DataPlane
from service.errors import ServiceError
from service.logs import request_id

log = logging.getLogger("service.errors")
Handler = Callable[[DataPlane, inference.Call], Awaitable[inference.Answer]]
_ROUTES: tuple[tuple[re.Pattern[str], Handler], ...] = (
    (re.compile(r"^/v1/models/([^/]+?)(?:/versions/([^/]+?))?:predict$"), inference.predict),
    (re.compile(r"^/v2/models/([^/]+)(?:/versions/([^/]+))?/infer$"), inference.infer),
)
_HEADER_LENGTH = b"inference-header-content-length"


class ClientGone(Exception):  # noqa: N818 - not an error: the client hung up
    """The client disconnected before sending its whole body."""


def match(scope: Scope) -> tuple[Handler, str, str | None] | None:
    """The handler, model name and version of a fast-path request, else None."""
    if scope["method"] != "POST":
        return None
    path = scope["path"]
    for pattern, handler in _ROUTES:
        found = pattern.match(path)
        if found:
            return handler, found.group(1), found.group(2)
    return None


async def serve(
    plane: DataPlane,
    route: tuple[Handler, str, str | None],
    scope: Scope,
    request_headers: Mapping[bytes, bytes],
    receive: Receive,
    send: Send,
) -> None:
    """Answer an inference request; ``request_headers``: those the middleware read (``middleware.acted_on``)."""
    handler, name, version = route
    content_type = request_headers.get(b"content-type", b"").decode("latin-1")
    raw_length = request_headers.get(_HEADER_LENGTH)
    header_length = None if raw_length is None else raw_length.decode("latin-1")
    try:
        body = await _read_body(receive)
        call = inference.Call(name, version, body, content_type, header_length, scope.get("service"))
        answer = await handler(plane, call)
        status, media_type, content, headers = 200, answer.media_type, answer.body, answer.headers
    except ClientGone:
        return
    except Exception as e:
        (status, content), media_type, headers = error_answer(e), inference.JSON, None
    raw = [(b"content-type", media_type.encode()), (b"content-length", str(len(content)).encode())]
    if headers:
        raw += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": content})


def error_answer(error: Exception) -> tuple[int, bytes]:
    """The status and ``{"error": ...}`` body for an exception raised while answering: a
    ServiceError's own, else (a bug) a 500 like the app's last-resort handler, never a bare page."""
    if isinstance(error, ServiceError):
        return error.status_code, orjson.dumps({"error": error.message})
    log.error("unexpected error", exc_info=error)
    message = f"internal server error (request id {request_id.get()}); the server log has details"
    return 500, orjson.dumps({"error": message})


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)
