"""The hot path: the common inference request, answered in front of the general machinery.

Most inference traffic is one kind of request: ``POST /v1/models/{name}[/versions/{v}]:predict``
with ``{"instances": [<numbers>...]}``, or ``POST /v2/models/{name}[/versions/{v}]/infer`` with one
JSON tensor, sent with a Content-Length, uncompressed, with the right API key. The general path
(``ServiceMiddleware``, ``service.fastpath``, the protocol codecs) handles every case and every
mistake, and for one client sending one image at a time its generality is most of the latency: each
of its many small steps meets the cold CPU caches of a lone request (issue 5, goal 3;
docs/performance.md, "The hot path").

This layer sits in front of the whole app. It looks the path up in a table of exact paths, rebuilt
whenever the registry publishes a new snapshot, and answers a request only when its headers are
plain and its body fits the protocol's plain schema (``tfserving.decode_plain``,
``v2.decode_plain``); every other request, including any it has read the body of, goes to the
general path unchanged, so every refusal is the general path's, word for word. Answers are the same
encoders'. ``SERVICE_HOT_PATH=false`` turns it off.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.config import Settings
from service.dataplane import DataPlane
from service.fastpath import error_answer
from service.logs import request_id
from service.metrics import Metrics
from service.middleware import RequestIds, account, acted_on, bearer_ok
from service.protocols import tfserving, v2
from service.protocols.tensors import PLAIN_DTYPES
from service.registry import ModelEntry, ModelVersion, State
from service.runtime import ModelRuntime

# the content types a JSON body comes with (curl -d: form-urlencoded); any other goes the general way
_JSON_TYPES = frozenset({b"application/json", b"", b"application/x-www-form-urlencoded", b"text/plain"})
# headers that need the general path: compressed or chunked bodies, the V2 binary extension
_GENERAL_HEADERS = frozenset({b"content-encoding", b"transfer-encoding", b"inference-header-content-length"})
_JSON_HEADER = (b"content-type", b"application/json")


@dataclass(frozen=True, slots=True)
class Plan:
    """How a path is answered: the version that runs and the protocol (TF Serving predict or V2 infer)."""

    version: ModelVersion
    runtime: ModelRuntime
    v2: bool
    number: str  # the version number, as the metrics label it

    def decode(self, body: bytes, max_batch_size: int) -> Any:
        """The protocol's request when ``body`` is plainly valid, else None."""
        codec = v2.decode_plain if self.v2 else tfserving.decode_plain
        return codec(body, self.runtime, max_batch_size)

    def encode(self, request: Any, results: dict[str, np.ndarray]) -> bytes:
        if self.v2:  # a plain request asks for no binary outputs: JSON, no extra headers
            return v2.encode(request, self.runtime, self.version.name, self.version.version, results)[0]
        return tfserving.encode(request, results)


def plans(models: Mapping[str, ModelEntry]) -> dict[str, Plan]:
    """Exact path -> plan, for every available version with one float input (the models a plain
    request can be for) and for each such model's default version."""
    table = {}
    for name, entry in models.items():
        versions = [(f"/versions/{v.version}", v) for v in entry.versions.values() if v.state is State.AVAILABLE]
        if entry.default is not None:
            versions.append(("", entry.default))
        for at, version in versions:
            runtime = version.runtime
            if runtime is None or len(runtime.inputs) != 1 or runtime.inputs[0].dtype not in PLAIN_DTYPES:
                continue
            table[f"/v1/models/{name}{at}:predict"] = Plan(version, runtime, False, str(version.version))
            table[f"/v2/models/{name}{at}/infer"] = Plan(version, runtime, True, str(version.version))
    return table


class HotPath:
    """ASGI middleware, the outermost of the app's own (``service.app``): in front of CORS and
    ``ServiceMiddleware``, inside only Starlette's last-resort error middleware."""

    def __init__(self, app: ASGIApp, plane: DataPlane, settings: Settings, metrics: Metrics, ids: RequestIds) -> None:
        self.app = app
        self.plane = plane
        self.metrics = metrics
        self.ids = ids
        self.max_body = settings.max_body_bytes
        self.max_batch = settings.max_batch_size
        self.api_key = settings.api_key.encode() if settings.api_key else None
        self.cors = bool(settings.cors_origins)  # a request with an Origin then needs CORS headers
        self._snapshot: Mapping[str, ModelEntry] | None = None
        self._plans: dict[str, Plan] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        rid = self._plain_request_id(scope["headers"]) if self._plan(scope) is not None else None
        if rid is None:
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        message = await receive()
        # looked up again: versions may have come or gone while the body arrived; from here to the
        # lease there is no await, so a version being drained waits for this request
        plan, request = self._plan(scope), None
        if plan is not None and message["type"] == "http.request" and not message.get("more_body", False):
            request = plan.decode(message["body"], self.max_batch)
        if plan is None or request is None:
            await self.app(scope, _replay(message, receive), send)
            return
        await self._answer(plan, request, scope, send, rid, start)

    def _plan(self, scope: Scope) -> Plan | None:
        if scope["type"] != "http" or scope["method"] != "POST":
            return None
        models = self.plane.registry.models  # replaced, never changed, on every load or removal
        if models is not self._snapshot:
            self._plans, self._snapshot = plans(models), models
        return self._plans.get(scope["path"])

    def _plain_request_id(self, raw_headers: list[tuple[bytes, bytes]]) -> str | None:
        """The request's id when its headers are plain (see the module docstring), else None."""
        headers = acted_on(raw_headers)
        if not _GENERAL_HEADERS.isdisjoint(headers) or (self.cors and b"origin" in headers):
            return None
        length = headers.get(b"content-length")
        if length is None or not length.isdigit() or int(length) > self.max_body:
            return None
        if headers.get(b"content-type", b"") not in _JSON_TYPES:
            return None
        if self.api_key is not None and not bearer_ok(headers.get(b"authorization", b""), self.api_key):
            return None
        return self.ids.pick(headers.get(b"x-request-id", b""))

    async def _answer(self, plan: Plan, request: Any, scope: Scope, send: Send, rid: str, start: float) -> None:
        token = request_id.set(rid)
        plane, version = self.plane, plan.version
        status = 500  # if cancelled (shutdown): counted as the general path counts it
        plane.in_flight += 1
        plane.note_client(scope.get("client"))
        try:
            with version.lease() as runtime:
                try:
                    results = await plane.infer(version, runtime, request.feeds, [])
                    status, content = 200, plan.encode(request, results)
                except Exception as e:  # a timeout, an unloaded version, a model that refuses the input
                    status, content = error_answer(e)
            length, rid_header = (b"content-length", b"%d" % len(content)), (b"x-request-id", rid.encode("latin-1"))
            headers = [_JSON_HEADER, length, rid_header]
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": content})
        finally:
            plane.in_flight -= 1
            account(self.metrics, scope, version.name, plan.number, status, time.perf_counter() - start, rid)
            request_id.reset(token)


def _replay(first: Message, receive: Receive) -> Receive:
    """``receive`` as if ``first`` had not been read yet."""
    pending: list[Message] = [first]

    async def replayed() -> Message:
        return pending.pop() if pending else await receive()

    return replayed
