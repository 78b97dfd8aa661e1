"""TensorFlow Serving REST routes (``api_rest.md``): model status, metadata and predict, each with
and without ``/versions/{version}``. Errors are ``{"error": "<message>"}`` like TF Serving's."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from service import inference, openapi
from service.dataplane import parse_version
from service.errors import InvalidInputError, ModelNotFoundError
from service.inference import Call
from service.registry import ModelVersion, State
from service.routes.common import Name, Version, dataplane, json_response, label
from service.runtime import TensorSpec

router = APIRouter(tags=["TensorFlow Serving REST"])
# the inference routes, included first: FastAPI matches routes in order and these are the hot path
hot = APIRouter(tags=["TensorFlow Serving REST"])

# numpy dtype name -> TensorFlow DataType enum name, as TF Serving prints metadata
_TF_DTYPES = {
    "float32": "DT_FLOAT",
    "float64": "DT_DOUBLE",
    "float16": "DT_HALF",
    "int8": "DT_INT8",
    "int16": "DT_INT16",
    "int32": "DT_INT32",
    "int64": "DT_INT64",
    "uint8": "DT_UINT8",
    "uint16": "DT_UINT16",
    "uint32": "DT_UINT32",
    "uint64": "DT_UINT64",
    "bool": "DT_BOOL",
}


def _version_status(version: ModelVersion) -> dict[str, Any]:
    failed = version.state is State.END and bool(version.error)
    return {
        "version": str(version.version),
        "state": version.state.value,
        "status": {"error_code": "UNKNOWN" if failed else "OK", "error_message": version.error},
    }


async def _status(request: Request, name: str, version: str | None) -> Response:
    entry = dataplane(request).entry(name)
    if entry.default is not None:
        label(request, entry.default)
    if version is None:
        versions = sorted(entry.versions.values(), key=lambda v: -v.version)
    else:
        number = parse_version(version)
        if number not in entry.versions:
            raise ModelNotFoundError.version(name, version, entry.versions)
        versions = [entry.versions[number]]
    return json_response({"model_version_status": [_version_status(v) for v in versions]})


def _tensor_info(spec: TensorSpec) -> dict[str, Any]:
    dims = [{"size": str(d), "name": ""} for d in spec.wire_shape]
    return {
        "dtype": _TF_DTYPES.get(spec.dtype.name, "DT_INVALID"),
        "tensor_shape": {"dim": dims, "unknown_rank": False},
        "name": spec.name,
    }


async def _metadata(request: Request, name: str, version: str | None) -> Response:
    found = dataplane(request).resolve(name, version)
    label(request, found)
    runtime = found.runtime
    assert runtime is not None
    signature = {
        "inputs": {t.name: _tensor_info(t) for t in runtime.inputs},
        "outputs": {t.name: _tensor_info(t) for t in runtime.outputs},
        "method_name": "tensorflow/serving/predict",
    }
    return json_response(
        {
            "model_spec": {"name": name, "signature_name": "", "version": str(found.version)},
            "metadata": {"signature_def": {"signature_def": {"serving_default": signature}}},
        }
    )


async def _predict(request: Request, name: str, version: str | None) -> Response:
    call = Call(
        name, version, await request.body(), request.headers.get("content-type", ""), None, request.scope.get("service")
    )
    answer = await inference.predict(dataplane(request), call)
    return Response(answer.body, media_type=answer.media_type, headers=answer.headers)


_STATUS: dict[str, Any] = {
    "summary": "Model status: every version (or one) with its state; a rejected version carries its error",
    "responses": {
        200: {
            "content": {
                "application/json": {
                    "example": {
                        "model_version_status": [
                            {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
                        ]
                    }
                }
            }
        },
        **openapi.errors(400, 401, 404),
    },
}
_METADATA: dict[str, Any] = {
    "summary": "Model metadata: the serving_default signature",
    "responses": openapi.errors(400, 401, 404, 503),
}
_PREDICT: dict[str, Any] = {
    "summary": "Predict: 'instances' (row format) or 'inputs' (columnar); {'b64': ...} instances for images",
    "openapi_extra": openapi.json_body(openapi.PREDICT_SCHEMA, openapi.PREDICT_EXAMPLE),
    "responses": {
        200: {
            "content": {"application/json": {"example": {"predictions": [{"probabilities": [0.1] * 10, "label": 1}]}}}
        },
        **openapi.errors(400, 401, 404, 413, 415, 503, 504),
    },
}


@router.get("/v1/models/{name}", **_STATUS)
async def status(request: Request, name: Name) -> Response:
    return await _status(request, name, None)


@router.get("/v1/models/{name}/versions/{version}", **_STATUS)
async def version_status(request: Request, name: Name, version: Version) -> Response:
    return await _status(request, name, version)


@router.get("/v1/models/{name}/metadata", **_METADATA)
async def metadata(request: Request, name: Name) -> Response:
    return await _metadata(request, name, None)


@router.get("/v1/models/{name}/versions/{version}/metadata", **_METADATA)
async def version_metadata(request: Request, name: Name, version: Version) -> Response:
    return await _metadata(request, name, version)


@hot.post("/v1/models/{name}:predict", **openapi.with_path_params(_PREDICT, "name"))
async def predict(request: Request) -> Response:
    return await _predict(request, request.path_params["name"], None)


@hot.post("/v1/models/{name}/versions/{version}:predict", **openapi.with_path_params(_PREDICT, "name", "version"))
async def version_predict(request: Request) -> Response:
    params = request.path_params
    return await _predict(request, params["name"], params["version"])


async def _unsupported_verb(request: Request) -> Response:
    """TF Serving's other verbs: clients moving over try them; say what to use instead (not a 405)."""
    params = request.path_params
    verb = request.url.path.rsplit(":", 1)[-1]
    where = f"/v1/models/{params['name']}" + (f"/versions/{params['version']}" if "version" in params else "")
    raise InvalidInputError(f"':{verb}' is not supported by this server: use ':predict' (POST {where}:predict)")


for _verb in ("classify", "regress"):
    router.add_api_route(f"/v1/models/{{name}}:{_verb}", _unsupported_verb, methods=["POST"], include_in_schema=False)
    router.add_api_route(
        f"/v1/models/{{name}}/versions/{{version}}:{_verb}",
        _unsupported_verb,
        methods=["POST"],
        include_in_schema=False,
    )
