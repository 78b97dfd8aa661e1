"""Small helpers every route module uses."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import Path, Request, Response

from service.dataplane import DataPlane
from service.registry import ModelVersion

# path parameters with the examples /docs pre-fills ("Try it out" works against `make run`'s model)
Name = Annotated[str, Path(description="model name (a folder of the repository)", examples=["mnist"])]
Version = Annotated[str, Path(description="version number (a sub-folder of the model)", examples=["1"])]
FileName = Annotated[str, Path(description="a file of the version folder", examples=["model.onnx"])]


def dataplane(request: Request) -> DataPlane:
    plane: DataPlane = request.app.state.dataplane
    return plane


def label(request: Request, version: ModelVersion) -> None:
    """Name the model and version in this request's metrics (see service.middleware)."""
    labels = request.scope.get("service")
    if labels is not None:
        labels["model"] = version.name
        labels["version"] = str(version.version)


def json_response(content: Any, status_code: int = 200) -> Response:
    """orjson-encoded JSON without response-model validation (the fast path of issue 5)."""
    body = orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)
    return Response(body, status_code=status_code, media_type="application/json")
