"""Open Inference Protocol (KServe V2) REST routes: health, server and model metadata, readiness,
inference (JSON and the binary tensor extension). Each model route also exists under
``/versions/{version}``; without it the model's default (highest available) version answers."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from contracts import PRODUCER_NAME, PRODUCER_VERSION
from service import inference, openapi
from service.errors import ModelNotReadyError
from service.inference import Call
from service.protocols import binary, classification
from service.registry import State
from service.routes.common import Name, Version, dataplane, json_response, label
from service.workers import WorkerReadiness

router = APIRouter(tags=["Open Inference Protocol (V2)"])
# the inference routes, included first: FastAPI matches routes in order and these are the hot path
hot = APIRouter(tags=["Open Inference Protocol (V2)"])
EXTENSIONS = [binary.EXTENSION, classification.EXTENSION]


# health answers carry no body (V2 spec): documented without content so schema checks agree
_EMPTY_200: dict[int | str, dict[str, Any]] = {200: {"description": "true (empty body)"}}
_EMPTY_400: dict[int | str, dict[str, Any]] = {400: {"description": "false (empty body)"}}


@router.get("/v2/health/live", summary="Server live: 200, empty body", response_class=Response, responses=_EMPTY_200)
async def live() -> Response:
    return Response(status_code=200)


@router.get(
    "/v2/health/ready",
    summary="Server ready: 200 once every model's default version is loaded and warmed up, else 400",
    response_class=Response,
    responses={**_EMPTY_200, **_EMPTY_400},
)
async def ready(request: Request) -> Response:
    readiness: WorkerReadiness = request.app.state.readiness  # with several workers: all of them
    return Response(status_code=200 if readiness.ready(dataplane(request).registry.ready) else 400)


@router.get(
    "/v2",
    summary="Server metadata",
    responses={
        200: {
            "content": {
                "application/json": {"example": {"name": PRODUCER_NAME, "version": "0.1.0", "extensions": EXTENSIONS}}
            }
        }
    },
)
async def server_metadata() -> Response:
    return json_response({"name": PRODUCER_NAME, "version": PRODUCER_VERSION, "extensions": EXTENSIONS})


async def _model_metadata(request: Request, name: str, version: str | None) -> Response:
    plane = dataplane(request)
    found = plane.resolve(name, version)
    label(request, found)
    runtime = found.runtime
    assert runtime is not None
    entry = plane.entry(name)
    available = sorted(v.version for v in entry.versions.values() if v.state is State.AVAILABLE)
    tensors = lambda specs: [{"name": t.name, "datatype": t.datatype, "shape": t.wire_shape} for t in specs]  # noqa: E731
    return json_response(
        {
            "name": name,
            "versions": [str(v) for v in available],
            "platform": "onnxruntime_onnx",
            "inputs": tensors(runtime.inputs),
            "outputs": tensors(runtime.outputs),
        }
    )


async def _model_ready(request: Request, name: str, version: str | None) -> Response:
    plane = dataplane(request)
    try:
        found = plane.resolve(name, version)
    except ModelNotReadyError:  # the model exists but is still loading: "false" is a 4xx, empty body
        return Response(status_code=400)
    label(request, found)
    return Response(status_code=200)


async def _infer(request: Request, name: str, version: str | None) -> Response:
    headers = request.headers
    call = Call(
        name,
        version,
        await request.body(),
        headers.get("content-type", ""),
        headers.get(binary.HEADER_LENGTH),
        request.scope.get("service"),
    )
    answer = await inference.infer(dataplane(request), call)
    return Response(answer.body, media_type=answer.media_type, headers=answer.headers)


_META: dict[str, Any] = {"summary": "Model metadata: inputs and outputs with datatype and shape (-1: variable)"}
_INFER: dict[str, Any] = {
    "summary": "Inference: JSON tensors, or the binary tensor extension (Inference-Header-Content-Length)",
    "openapi_extra": openapi.json_body(openapi.INFER_SCHEMA, openapi.INFER_EXAMPLE),
    "responses": {
        200: {"content": {"application/json": {"example": openapi.INFER_RESPONSE_EXAMPLE}}},
        **openapi.errors(400, 401, 404, 413, 415, 503, 504),
    },
}


@router.get("/v2/models/{name}", **_META, responses=openapi.errors(400, 401, 404, 503))
async def model_metadata(request: Request, name: Name) -> Response:
    return await _model_metadata(request, name, None)


@router.get("/v2/models/{name}/versions/{version}", **_META, responses=openapi.errors(400, 401, 404, 503))
async def version_metadata(request: Request, name: Name, version: Version) -> Response:
    return await _model_metadata(request, name, version)


@router.get(
    "/v2/models/{name}/ready",
    summary="Model ready: 200, or 400 while loading",
    response_class=Response,
    responses={**_EMPTY_200, **_EMPTY_400, **openapi.errors(401, 404)},
)
async def model_ready(request: Request, name: Name) -> Response:
    return await _model_ready(request, name, None)


@router.get(
    "/v2/models/{name}/versions/{version}/ready",
    summary="Version ready: 200, or 400 while loading",
    response_class=Response,
    responses={**_EMPTY_200, **_EMPTY_400, **openapi.errors(401, 404)},
)
async def version_ready(request: Request, name: Name, version: Version) -> Response:
    return await _model_ready(request, name, version)


@hot.post("/v2/models/{name}/infer", **openapi.with_path_params(_INFER, "name"))
async def infer(request: Request) -> Response:
    return await _infer(request, request.path_params["name"], None)


@hot.post("/v2/models/{name}/versions/{version}/infer", **openapi.with_path_params(_INFER, "name", "version"))
async def version_infer(request: Request) -> Response:
    params = request.path_params
    return await _infer(request, params["name"], params["version"])
