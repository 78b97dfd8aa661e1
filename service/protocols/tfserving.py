"""TensorFlow Serving REST predict codec (``api_rest.md``): body bytes -> numpy feeds -> body bytes.

Row format ``{"instances": [...]}`` answers ``{"predictions": [...]}``: one entry per example,
a plain value for a single-output model, an object keyed by output name otherwise. Columnar
``{"inputs": ...}`` answers ``{"outputs": ...}``: the whole batch per output. An instance
``{"b64": "<base64 PNG/JPEG>"}`` is an image for a model with one image input.
"""

from __future__ import annotations

import base64
import binascii
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec
import numpy as np
import orjson

from service.errors import InvalidInputError
from service.protocols.tensors import check_batch, load_json_object, nested_list, plain_array, to_array
from service.runtime import ModelRuntime, TensorSpec

# (image bytes, height, width) -> float32 [H, W] in 0..255; service.images.preprocess_image
ImageDecoder = Callable[[bytes, int, int], np.ndarray]
SIGNATURES = ("serving_default", "")


@dataclass
class PredictRequest:
    feeds: dict[str, np.ndarray]
    row_format: bool
    batch: int


def decode(body: bytes, model: ModelRuntime, max_batch_size: int, decode_image: ImageDecoder) -> PredictRequest:
    payload = load_json_object(body)
    signature = payload.get("signature_name", "")
    if signature not in SIGNATURES:
        raise InvalidInputError(f"signature_name {signature!r} not found: this model has only 'serving_default'")
    has_rows, has_columns = "instances" in payload, "inputs" in payload
    if has_rows == has_columns:
        raise InvalidInputError(
            "expected exactly one of 'instances' (row format) or 'inputs' (columnar format), got "
            + ("both" if has_rows else "neither")
        )
    if has_rows:
        feeds = _rows(payload["instances"], model, decode_image)
    else:
        feeds = _columns(payload["inputs"], model, decode_image)
    batch = next(iter(feeds.values())).shape[0]
    check_batch(batch, max_batch_size, "'instances'" if has_rows else "'inputs'")
    return PredictRequest(feeds, has_rows, batch)


@functools.cache
def _plain_schema(rank: int) -> msgspec.json.Decoder[Any]:
    """``{"instances": [...]}`` and nothing else, with numbers ``rank`` lists deep (the input's rank)."""
    schema = msgspec.defstruct("PlainPredict", [("instances", nested_list(rank))], forbid_unknown_fields=True)
    return msgspec.json.Decoder(schema)


def decode_plain(body: bytes, model: ModelRuntime, max_batch_size: int) -> PredictRequest | None:
    """The common request, ``{"instances": [<example>, ...]}`` of plain numbers for a one-input model,
    when it is plainly valid; None for anything else, which ``decode`` accepts or refuses with its
    message (``service.hotpath``)."""
    if len(model.inputs) != 1:
        return None
    spec = model.inputs[0]
    try:
        instances = _plain_schema(len(spec.shape)).decode(body).instances
    except msgspec.DecodeError:  # not JSON, or not this schema
        return None
    if not 0 < len(instances) <= max_batch_size:
        return None
    array = plain_array(instances, spec.dtype)
    if array is None or not spec.fits(array.shape):
        return None
    return PredictRequest({spec.name: array}, True, len(instances))


def _rows(instances: Any, model: ModelRuntime, decode_image: ImageDecoder) -> dict[str, np.ndarray]:
    if not isinstance(instances, list) or not instances:
        raise InvalidInputError("'instances' must be a non-empty list with one entry per example")
    if len(model.inputs) == 1:
        spec = model.inputs[0]
        first = instances[0]
        if isinstance(first, dict) and "b64" in first:
            return {spec.name: _images(instances, model, decode_image)}
        if isinstance(first, dict):
            instances = [_field(inst, spec.name, i) for i, inst in enumerate(instances)]
        return {spec.name: _checked(instances, spec, model)}
    columns = {t.name: [_field(inst, t.name, i) for i, inst in enumerate(instances)] for t in model.inputs}
    return {t.name: _checked(columns[t.name], t, model) for t in model.inputs}


def _columns(inputs: Any, model: ModelRuntime, decode_image: ImageDecoder) -> dict[str, np.ndarray]:
    if len(model.inputs) == 1:
        spec = model.inputs[0]
        if isinstance(inputs, dict) and spec.name in inputs and len(inputs) == 1:
            inputs = inputs[spec.name]
        if isinstance(inputs, list) and inputs and isinstance(inputs[0], dict) and "b64" in inputs[0]:
            return {spec.name: _images(inputs, model, decode_image)}
        if isinstance(inputs, dict):
            raise InvalidInputError(
                f"'inputs' is an object with keys {sorted(inputs)}: expected {spec.name!r} or a list"
            )
        return {spec.name: _checked(inputs, spec, model)}
    if not isinstance(inputs, dict):
        raise InvalidInputError(f"'inputs' must be an object keyed by input name: {[t.name for t in model.inputs]}")
    return {t.name: _checked(_field(inputs, t.name, None), t, model) for t in model.inputs}


def _field(obj: Any, name: str, index: int | None) -> Any:
    where = "'inputs'" if index is None else f"instance {index}"
    if not isinstance(obj, dict) or name not in obj:
        raise InvalidInputError(f"{where} has no input {name!r}: expected an object with a value for each model input")
    return obj[name]


def _checked(value: Any, spec: TensorSpec, model: ModelRuntime) -> np.ndarray:
    if not isinstance(value, list) or not value:
        raise InvalidInputError(f"input {spec.name!r} must be a non-empty list (one entry per example)")
    array = to_array(value, spec.dtype, f"input {spec.name!r}")
    model.check_input(spec, array)
    return array


def _images(items: list[Any], model: ModelRuntime, decode_image: ImageDecoder) -> np.ndarray:
    size = model.image_size
    if size is None:
        shape = model.inputs[0].describe()
        raise InvalidInputError(f"this model does not take images (input shape {shape}): send numbers, not {{'b64'}}")
    spec = model.inputs[0]
    images = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("b64"), str):
            raise InvalidInputError(f"instance {i} must be {{'b64': '<base64 PNG or JPEG>'}} like the others")
        try:
            data = base64.b64decode(item["b64"], validate=True)
        except (binascii.Error, ValueError):
            raise InvalidInputError(f"instance {i}: 'b64' is not valid base64") from None
        try:
            image = decode_image(data, *size)
        except ValueError as e:  # images.ImageError: corrupt or not an image
            raise InvalidInputError(f"instance {i}: {e}") from None
        images.append(image.reshape([d for d in spec.shape[1:]]))  # type: ignore[misc]
    return np.stack(images).astype(spec.dtype, copy=False)


def encode(request: PredictRequest, results: dict[str, np.ndarray]) -> bytes:
    if request.row_format:
        if len(results) == 1:
            body: dict[str, Any] = {"predictions": next(iter(results.values()))}
        else:
            # rows of 2-D outputs stay numpy (float32 printed short; rows of onnxruntime's C-contiguous
            # outputs are C-contiguous, as orjson needs); 1-D ones become Python scalars, since orjson
            # refuses numpy scalars of some dtypes (onnxruntime's int64 is "longlong")
            columns = {n: a.tolist() if a.ndim == 1 else a for n, a in results.items()}
            body = {"predictions": [{n: c[i] for n, c in columns.items()} for i in range(request.batch)]}
    else:
        body = {"outputs": next(iter(results.values())) if len(results) == 1 else results}
    return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)
