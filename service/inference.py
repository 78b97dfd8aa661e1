"""The two inference calls, TF Serving predict and V2 infer, independent of how HTTP reached them:
the FastAPI routes (``service.routes``) and the pure-ASGI fast path (``service.fastpath``) both
call these, so both answer exactly the same."""

from __future__ import annotations

from dataclasses import dataclass

from service.dataplane import DataPlane
from service.images import preprocess_image
from service.protocols import tfserving, v2
from service.protocols.tensors import check_json_content_type
from service.registry import ModelVersion

JSON = "application/json"


@dataclass(frozen=True)
class Call:
    """What an inference request brings: model, version (None: default), body and two headers."""

    name: str
    version: str | None
    body: bytes
    content_type: str = ""
    header_length: str | None = None  # Inference-Header-Content-Length (V2 binary extension)
    labels: dict[str, str] | None = None  # the request's metrics labels (service.middleware)


@dataclass(frozen=True)
class Answer:
    body: bytes
    media_type: str = JSON
    headers: dict[str, str] | None = None


def _label(call: Call, version: ModelVersion) -> None:
    if call.labels is not None:
        call.labels["model"] = version.name
        call.labels["version"] = str(version.version)


async def predict(plane: DataPlane, call: Call) -> Answer:
    """``POST /v1/models/{name}[/versions/{v}]:predict``."""
    check_json_content_type(call.content_type)
    found = plane.resolve(call.name, call.version)
    _label(call, found)
    with found.lease() as runtime:  # no await between resolve and lease: draining sees this request
        parsed = tfserving.decode(call.body, runtime, plane.settings.max_batch_size, preprocess_image)
        results = await plane.infer(found, runtime, parsed.feeds, [])
    return Answer(tfserving.encode(parsed, results))


async def infer(plane: DataPlane, call: Call) -> Answer:
    """``POST /v2/models/{name}[/versions/{v}]/infer``, JSON or binary tensor extension."""
    if call.header_length is None:
        check_json_content_type(call.content_type)
    found = plane.resolve(call.name, call.version)
    _label(call, found)
    with found.lease() as runtime:  # no await between resolve and lease: draining sees this request
        parsed = v2.decode(call.body, call.header_length, runtime, plane.settings.max_batch_size)
        results = await plane.infer(found, runtime, parsed.feeds, parsed.outputs)
        content, headers = v2.encode(parsed, runtime, found.name, found.version, results)
    media_type = headers.pop("content-type", JSON)
    return Answer(content, media_type, headers or None)
