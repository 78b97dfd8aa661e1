"""One pure ASGI middleware for what every request needs: request id, API key, body limit,
metrics and a log line. Pure ASGI (not ``BaseHTTPMiddleware``) because it runs on every
request and the serving path is the product (issue 5): it reads the headers once and wraps
``send`` to add ``X-Request-ID`` and learn the status code.

Routes label a request for metrics by filling ``scope["service"]`` (``model``, ``version``).
"""

from __future__ import annotations

import hmac
import itertools
import logging
import os
import re
import time
import zlib
from collections.abc import Iterable
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service import fastpath
from service.config import Settings
from service.dataplane import DataPlane
from service.errors import InvalidInputError, PayloadTooLargeError
from service.logs import request_id
from service.metrics import Metrics

log = logging.getLogger("service.access")
_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._:/+=-]{1,128}$")
# prefixes that need the API key when one is set; health, metrics, docs and the page stay open
PROTECTED = ("/v1/", "/v2/models", "/api/")


def protocol_of(path: str) -> str:
    """The ``protocol`` metrics label of a path; empty for routes that are not counted."""
    if path.startswith("/v1/models/"):
        return "image" if path.endswith("/image") else "tfserving"
    if path.startswith("/v2/models/"):
        return "v2"
    if path.startswith("/api/"):
        return "api"
    return ""


# the request headers the service acts on (uvicorn gives their names in lower case)
_ACTED_ON = frozenset(
    {
        b"authorization",
        b"content-encoding",
        b"content-length",
        b"content-type",
        b"inference-header-content-length",  # the V2 binary tensor extension
        b"origin",
        b"transfer-encoding",
        b"x-request-id",
    }
)


def acted_on(headers: Iterable[tuple[bytes, bytes]]) -> dict[bytes, bytes]:
    """The headers among ``_ACTED_ON`` a request carries, by name; of a repeated one, the last.
    One scan serves the middleware, the fast path it calls and ``service.hotpath``."""
    return {name: value for name, value in headers if name in _ACTED_ON}


class RequestIds:
    """Request ids: the client's ``X-Request-ID`` when it is a sane token, else a new one (16 random
    hex digits per process and a counter: unique like uuid4, ~100x cheaper)."""

    def __init__(self) -> None:
        self._prefix = os.urandom(8).hex()
        self._count = itertools.count(1)

    def pick(self, sent: bytes) -> str:
        if sent and _REQUEST_ID.match(sent):
            return sent.decode("latin-1")
        return self._prefix + next(self._count).to_bytes(8, "big").hex()  # cheaper than f"{n:016x}"


def account(metrics: Metrics, scope: Scope, model: str, version: str, status: int, seconds: float, rid: str) -> None:
    """The metrics and the log line of one finished request, however it was served."""
    protocol = protocol_of(scope["path"])
    if protocol:
        metrics.observe_request(model, version, protocol, status, seconds)
    if status >= 400 or log.isEnabledFor(logging.DEBUG):
        extra = {
            "request_id": rid,
            "method": scope["method"],
            "path": scope["path"],
            "status": status,
            "ms": round(seconds * 1e3, 3),
        }
        log.log(logging.INFO if status >= 400 else logging.DEBUG, "request", extra=extra)


def bearer_ok(auth: bytes, key: bytes) -> bool:
    scheme, _, token = auth.partition(b" ")
    return scheme.lower() == b"bearer" and hmac.compare_digest(token.strip(), key)


class ServiceMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        settings: Settings,
        metrics: Metrics,
        dataplane: DataPlane | None = None,
        ids: RequestIds | None = None,
    ) -> None:
        self.app = app
        self.dataplane = dataplane  # when given, the inference routes take the fast path
        self.max_body = settings.max_body_bytes
        self.api_key = settings.api_key.encode() if settings.api_key else None
        self.metrics = metrics
        self.ids = ids or RequestIds()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = acted_on(scope["headers"])
        length, auth = headers.get(b"content-length"), headers.get(b"authorization", b"")
        encoding = headers.get(b"content-encoding", b"").strip().lower()
        rid_text = self.ids.pick(headers.get(b"x-request-id", b""))
        token = request_id.set(rid_text)
        labels = scope["service"] = {"model": "", "version": ""}
        status = 0  # set when the response starts
        rid_header = (b"x-request-id", rid_text.encode("latin-1"))

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), rid_header]
            await send(message)

        start = time.perf_counter()
        plane = self.dataplane
        if plane is not None:
            plane.in_flight += 1
            plane.note_client(scope.get("client"))
        try:
            refusal = self._refusal(scope["path"], length, auth) or _encoding_refusal(encoding)
            body_receive = receive if length is not None else self._limited(receive)
            if encoding in _ENCODINGS:
                body_receive = self._decompressed(body_receive, _ENCODINGS[encoding])
            fast = fastpath.match(scope) if self.dataplane is not None else None
            if refusal is not None:
                await _send_error(send_with_id, *refusal)
            elif fast is not None and self.dataplane is not None:
                await fastpath.serve(self.dataplane, fast, scope, headers, body_receive, send_with_id)
            else:
                await self.app(scope, body_receive, send_with_id)
        except BaseException:
            status = status or 500  # ServerErrorMiddleware answers 500 after us
            raise
        finally:
            if plane is not None:
                plane.in_flight -= 1
            # returned without answering: the client hung up (499, nginx's "client closed request")
            elapsed = time.perf_counter() - start
            account(self.metrics, scope, labels["model"], labels["version"], status or 499, elapsed, rid_text)
            request_id.reset(token)

    def _refusal(self, path: str, length: bytes | None, auth: bytes) -> tuple[int, str, dict[str, str]] | None:
        if self.api_key is not None and path.startswith(PROTECTED) and not bearer_ok(auth, self.api_key):
            message = "missing or wrong API key: send the header 'Authorization: Bearer <key>'"
            return 401, message, {"www-authenticate": "Bearer"}
        if length is not None:
            if not length.isdigit():
                return 400, f"Content-Length {length.decode('latin-1')!r} is not a number of bytes", {}
            if int(length) > self.max_body:
                return 413, _too_large(self.max_body), {}
        return None

    def _limited(self, receive: Receive) -> Receive:
        """A body without Content-Length (chunked): count it as it arrives."""
        seen = 0

        async def receive_limited() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_body:
                raise PayloadTooLargeError(_too_large(self.max_body))
            return message

        return receive_limited

    def _decompressed(self, receive: Receive, wbits: int) -> Receive:
        """A gzip or deflate body (tritonclient's request_compression_algorithm), inflated at most to
        ``max_body_bytes`` so a small compressed body cannot expand into a huge one."""
        done = False

        async def receive_inflated() -> Message:
            nonlocal done
            if done:
                return await receive()
            inflater, parts, size = zlib.decompressobj(wbits), [], 0
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    return message
                try:
                    part = inflater.decompress(message.get("body", b""), self.max_body + 1 - size)
                except zlib.error as e:
                    raise InvalidInputError(
                        f"the compressed body is corrupt ({e}): expected valid gzip or deflate data"
                    ) from None
                size += len(part)
                if size > self.max_body or inflater.unconsumed_tail:
                    raise PayloadTooLargeError(_too_large(self.max_body) + " (after decompression)")
                parts.append(part)
                if not message.get("more_body", False):
                    done = True
                    return {"type": "http.request", "body": b"".join(parts), "more_body": False}

        return receive_inflated


# Content-Encoding -> zlib wbits: gzip framing, or HTTP "deflate" (the zlib format)
_ENCODINGS = {b"gzip": 31, b"x-gzip": 31, b"deflate": 15}


def _encoding_refusal(encoding: bytes) -> tuple[int, str, dict[str, str]] | None:
    if not encoding or encoding == b"identity" or encoding in _ENCODINGS:
        return None
    name = encoding.decode("latin-1")
    return 415, f"Content-Encoding {name!r} is not supported: send the body as gzip, deflate or uncompressed", {}


def _too_large(limit: int) -> str:
    return f"the request body is larger than the limit of {limit} bytes (max_body_bytes): send smaller batches"


async def _send_error(send: Send, status: int, message: str, headers: dict[str, str]) -> None:
    body = orjson.dumps({"error": message})
    raw: list[Any] = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
