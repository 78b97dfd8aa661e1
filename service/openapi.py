"""OpenAPI request bodies and examples for the raw-body routes.

Routes read the body themselves (orjson straight into numpy, issue 5), so FastAPI cannot derive
their schemas; these are declared with ``openapi_extra`` instead. Examples use a 28 x 28 blank
image, which the ``mnist`` model of ``make run`` accepts as is.
"""

from __future__ import annotations

from typing import Any

IMAGE = [[0.0] * 28 for _ in range(28)]

_NUMBERS: dict[str, Any] = {"type": "array", "items": {}}  # nested lists of numbers, any depth

PREDICT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Exactly one of 'instances' (row format) or 'inputs' (columnar format).",
    "properties": {
        "signature_name": {"type": "string", "enum": ["serving_default"]},
        "instances": {**_NUMBERS, "description": "one entry per example; {'b64': ...} for an image"},
        "inputs": {"description": "the whole batch, or an object keyed by input name"},
    },
}

INFER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["inputs"],
    "properties": {
        "id": {"type": "string"},
        "parameters": {"type": "object"},
        "inputs": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "shape", "datatype", "data"],
                "properties": {
                    "name": {"type": "string"},
                    "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
                    "datatype": {"type": "string"},
                    "parameters": {"type": "object"},
                    "data": _NUMBERS,
                },
            },
        },
        "outputs": {
            "type": "array",
            "items": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}},
        },
    },
}

PREDICT_EXAMPLE = {"instances": [IMAGE]}
INFER_EXAMPLE = {
    "id": "42",
    "inputs": [{"name": "images", "shape": [1, 28, 28], "datatype": "FP32", "data": IMAGE}],
    "outputs": [{"name": "label"}],
}
INFER_RESPONSE_EXAMPLE = {
    "model_name": "mnist",
    "model_version": "1",
    "id": "42",
    "outputs": [{"name": "label", "datatype": "INT64", "shape": [1], "data": [1]}],
}
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string"}},
}


def json_body(schema: dict[str, Any], example: Any) -> dict[str, Any]:
    """``openapi_extra`` for a route that reads a JSON body itself."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema, "example": example}}}}


def path_params(*names: str) -> list[dict[str, Any]]:
    """Path parameters of a route that reads them from ``request.path_params`` (no FastAPI parsing)."""
    examples = {"name": "mnist", "version": "1"}
    return [
        {"name": n, "in": "path", "required": True, "schema": {"type": "string"}, "example": examples.get(n, "")}
        for n in names
    ]


def with_path_params(route: dict[str, Any], *names: str) -> dict[str, Any]:
    """Route keyword arguments with ``names`` declared as path parameters in ``openapi_extra``."""
    return {**route, "openapi_extra": {**route.get("openapi_extra", {}), "parameters": path_params(*names)}}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` entries for the ``{"error": ...}`` answers a route can give."""
    return {code: {"description": "error", "content": {"application/json": {"schema": ERROR_SCHEMA}}} for code in codes}


def without_422(schema: dict[str, Any]) -> dict[str, Any]:
    """FastAPI documents 422 for parameter errors; this service answers them 400 ``{"error": ...}``."""
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.get("responses", {})
            if responses.pop("422", None) is not None and "400" not in responses:
                responses.update({str(k): v for k, v in errors(400).items()})
    for name in ("HTTPValidationError", "ValidationError"):
        schema.get("components", {}).get("schemas", {}).pop(name, None)
    return schema
