"""Image upload: ``POST /v1/models/{name}[/versions/{version}]/image`` with a PNG or JPEG as the
multipart field ``file`` (or as the raw body with an ``image/*`` content type). The image is made
MNIST-like (``service.images``) at the model's H x W and answered with label, name and top-k."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
from fastapi import APIRouter, Query, Request, Response
from starlette.datastructures import UploadFile

from service import openapi
from service.errors import InvalidInputError, UnsupportedMediaTypeError
from service.images import ImageError, preprocess_image
from service.registry import ModelVersion
from service.routes.common import Name, Version, dataplane, json_response, label
from service.runtime import ModelRuntime

router = APIRouter(tags=["Images"])


async def _image_bytes(request: Request) -> bytes:
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type.startswith("image/"):
        return await request.body()
    if content_type != "multipart/form-data":
        raise UnsupportedMediaTypeError(
            f"content type {content_type or 'none'!r} is not supported here: expected multipart/form-data with "
            "a 'file' field holding a PNG or JPEG (or the image itself as image/png or image/jpeg)"
        )
    try:
        form = await request.form()
    except Exception as e:  # python-multipart's errors for a malformed body
        raise InvalidInputError(f"malformed multipart body ({e}): expected a 'file' field with a PNG or JPEG") from None
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise InvalidInputError(
            f"no 'file' field in the form (fields: {sorted(form.keys())}): expected the image as 'file'"
        )
    return await upload.read()


def _probabilities(runtime: ModelRuntime, results: dict[str, np.ndarray]) -> np.ndarray:
    """The class distribution of the one image; logits (foreign models) go through a softmax."""
    assert runtime.classes_output is not None
    row = results[runtime.classes_output.name][0].astype(np.float64)
    if row.min() < 0 or abs(row.sum() - 1.0) > 1e-3:
        row = np.exp(row - row.max())
        row /= row.sum()
    return row


def _answer(found: ModelVersion, runtime: ModelRuntime, probs: np.ndarray, top_k: int) -> dict[str, Any]:
    labels = runtime.labels
    name_of = lambda i: labels[i] if i < len(labels) else str(i)  # noqa: E731
    order = np.argsort(-probs, kind="stable")[:top_k]
    best = int(order[0])
    return {
        "model_name": found.name,
        "model_version": str(found.version),
        "label": best,
        "label_name": name_of(best),
        "top_k": [{"label": int(i), "label_name": name_of(int(i)), "probability": float(probs[i])} for i in order],
        "probabilities": [float(p) for p in probs],
    }


async def _classify(request: Request, name: str, version: str | None, top_k: int) -> Response:
    data = await _image_bytes(request)
    plane = dataplane(request)
    found = plane.resolve(name, version)
    label(request, found)
    with found.lease() as runtime:
        size, spec = runtime.image_size, runtime.inputs[0]
        if size is None or runtime.classes_output is None:
            raise InvalidInputError(
                f"model {name!r} does not classify images (input {spec.name!r} {spec.describe()}): "
                "expected one image input and a [batch, classes] output"
            )
        try:
            image = await asyncio.to_thread(preprocess_image, data, *size)
        except ImageError as e:
            raise InvalidInputError(str(e)) from None
        x = image.reshape([1, *spec.shape[1:]]).astype(spec.dtype, copy=False)  # type: ignore[list-item]
        results = await plane.infer(found, runtime, {spec.name: x}, [runtime.classes_output.name])
        return json_response(_answer(found, runtime, _probabilities(runtime, results), top_k))


_IMAGE: dict[str, Any] = {
    "summary": "Classify an uploaded PNG/JPEG: label, label name, top-k probabilities",
    "openapi_extra": {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "properties": {"file": {"type": "string", "format": "binary"}},
                    }
                }
            },
        }
    },
    "responses": {
        200: {
            "content": {
                "application/json": {
                    "example": {
                        "model_name": "mnist",
                        "model_version": "1",
                        "label": 7,
                        "label_name": "7",
                        "top_k": [{"label": 7, "label_name": "7", "probability": 0.98}],
                        "probabilities": [0.0] * 7 + [0.98, 0.02, 0.0],
                    }
                }
            }
        },
        **openapi.errors(400, 401, 404, 413, 415, 503, 504),
    },
}
TopK = Query(5, ge=1, le=1000, description="how many of the most likely classes to list")


@router.post("/v1/models/{name}/image", **_IMAGE)
async def classify(request: Request, name: Name, top_k: int = TopK) -> Response:
    return await _classify(request, name, None, top_k)


@router.post("/v1/models/{name}/versions/{version}/image", **_IMAGE)
async def version_classify(request: Request, name: Name, version: Version, top_k: int = TopK) -> Response:
    return await _classify(request, name, version, top_k)
