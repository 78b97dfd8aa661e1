"""Open Inference Protocol (KServe V2) inference codec: body bytes -> numpy feeds -> body bytes.

Request  ``{"id"?, "parameters"?, "inputs": [{"name", "shape", "datatype", "data"}], "outputs"?: [{"name"}]}``
Response ``{"model_name", "model_version", "id"?, "outputs": [{"name", "shape", "datatype", "data"}]}``

``data`` may be flat or nested (row-major); its length must match ``shape``. With the binary
tensor extension (``Inference-Header-Content-Length``) inputs arrive as raw bytes and outputs
may be returned that way (``service.protocols.binary``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Annotated, Any

import msgspec
import numpy as np
import orjson

from service.errors import InvalidInputError
from service.protocols import binary, classification
from service.protocols.tensors import PlainNumber, check_batch, load_json_object, plain_array, to_array
from service.runtime import ModelRuntime, TensorSpec


@dataclass
class InferRequest:
    header: dict[str, Any]  # the JSON (header) as sent: id, parameters, outputs
    feeds: dict[str, np.ndarray]
    outputs: list[str] = field(default_factory=list)  # requested output names; empty: all
    batch: int = 0
    classify: dict[str, int] = field(default_factory=dict)  # output -> k (classification extension)


def decode(body: bytes, header_length: str | None, model: ModelRuntime, max_batch_size: int) -> InferRequest:
    """Parse and check an inference request against the model's signature; InvalidInputError says why."""
    if header_length is not None:
        try:
            header, raw = binary.decode_request(body, header_length)
        except binary.BinaryDataError as e:
            raise InvalidInputError(str(e)) from None
    else:
        header, raw = load_json_object(body), {}
    tensors = header.get("inputs")
    if not isinstance(tensors, list) or not tensors:
        raise InvalidInputError("'inputs' must be a non-empty list of tensors ({name, shape, datatype, data})")
    if "instances" in header:
        raise InvalidInputError("'instances' is TF Serving's format: the V2 infer route expects 'inputs' only")
    feeds = {}
    for i, tensor in enumerate(tensors):
        name, array = _decode_input(tensor, i, model, raw)
        if name in feeds:
            raise InvalidInputError(f"input {name!r} appears twice: expected each model input once")
        feeds[name] = array
    missing = [t.name for t in model.inputs if t.name not in feeds]
    if missing:
        raise InvalidInputError(f"missing input(s) {missing}: the model expects {_signature(model.inputs)}")
    batch = next(iter(feeds.values())).shape[0]
    check_batch(batch, max_batch_size, "the request")
    outputs = _requested_outputs(header, model)
    return InferRequest(header, feeds, outputs, batch, classification.requested(header, model) if outputs else {})


class _PlainTensor(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    shape: list[Annotated[int, msgspec.Meta(ge=0)]]
    datatype: str
    data: list[PlainNumber]  # flat, as most clients send it; nested data goes the general way


class _PlainInfer(msgspec.Struct, forbid_unknown_fields=True):
    """The common request: tensors and an optional string id; no ``outputs``, no ``parameters``."""

    inputs: list[_PlainTensor]
    id: str | msgspec.UnsetType = msgspec.UNSET


_PLAIN_SCHEMA = msgspec.json.Decoder(_PlainInfer)


def decode_plain(body: bytes, model: ModelRuntime, max_batch_size: int) -> InferRequest | None:
    """The common request, one flat JSON tensor with the one input's name and datatype, when it is
    plainly valid; None for anything else, which ``decode`` accepts or refuses with its message
    (``service.hotpath``). The request's header holds only its ``id``, all ``encode`` reads."""
    if len(model.inputs) != 1:
        return None
    try:
        request = _PLAIN_SCHEMA.decode(body)
    except msgspec.DecodeError:  # not JSON, or not this schema
        return None
    spec = model.inputs[0]
    if len(request.inputs) != 1:
        return None
    tensor = request.inputs[0]
    shape = tensor.shape
    if tensor.name != spec.name or tensor.datatype != spec.datatype or not shape:
        return None
    if not 0 < shape[0] <= max_batch_size or math.prod(shape) != len(tensor.data) or not spec.fits(tuple(shape)):
        return None
    array = plain_array(tensor.data, spec.dtype)
    if array is None:
        return None
    header = {} if request.id is msgspec.UNSET else {"id": request.id}
    return InferRequest(header, {spec.name: array.reshape(shape)}, [], shape[0])


def _decode_input(tensor: Any, i: int, model: ModelRuntime, raw: dict[str, np.ndarray]) -> tuple[str, np.ndarray]:
    if not isinstance(tensor, dict):
        raise InvalidInputError(f"inputs[{i}] must be an object with name, shape, datatype and data")
    name = tensor.get("name")
    spec = model.input_by_name.get(name) if isinstance(name, str) else None
    if spec is None:
        raise InvalidInputError(f"inputs[{i}] is named {name!r}: the model expects {_signature(model.inputs)}")
    name = spec.name
    shape = _shape(tensor.get("shape"), name)
    datatype = tensor.get("datatype")
    try:
        declared = binary.numpy_dtype(datatype)
    except binary.BinaryDataError as e:
        raise InvalidInputError(f"input {name!r}: {e}") from None
    if datatype == "BYTES" or not np.can_cast(declared, spec.dtype, "same_kind"):
        raise InvalidInputError(f"input {name!r} has datatype {datatype}: expected {spec.datatype}")
    if name in raw:
        array = to_array(raw[name], spec.dtype, f"input {name!r}")
    else:
        if "data" not in tensor:
            raise InvalidInputError(f"input {name!r} has no 'data': expected its values (or binary_data_size)")
        target = spec.dtype if declared.kind == "f" else declared  # integers are checked as declared
        array = to_array(tensor["data"], target, f"input {name!r} ({datatype})").astype(spec.dtype, copy=False)
        if array.size != math.prod(shape):
            raise InvalidInputError(
                f"input {name!r}: shape {shape} holds {math.prod(shape)} values but data has {array.size}"
            )
        array = array.reshape(shape)
    model.check_input(spec, array)
    return name, array


def _shape(shape: Any, name: str) -> list[int]:
    if not isinstance(shape, list) or not shape or not all(type(d) is int and d >= 0 for d in shape):
        raise InvalidInputError(
            f"input {name!r}: 'shape' must be a non-empty list of non-negative integers, got {shape!r}"
        )
    return shape


def _requested_outputs(header: dict[str, Any], model: ModelRuntime) -> list[str]:
    requested = header.get("outputs")
    if requested is None:
        return []
    if not isinstance(requested, list):
        raise InvalidInputError("'outputs' must be a list of {name} objects")
    names = []
    for i, output in enumerate(requested):
        name = output.get("name") if isinstance(output, dict) else None
        if name not in model.output_names:
            raise InvalidInputError(
                f"outputs[{i}] asks for {name!r}: the model's outputs are {list(model.output_names)}"
            )
        names.append(name)
    return names


def _signature(tensors: tuple[TensorSpec, ...]) -> str:
    return ", ".join(f"{t.name!r} {t.datatype} {t.describe()}" for t in tensors)


def encode(
    request: InferRequest, model: ModelRuntime, name: str, version: int, results: dict[str, np.ndarray]
) -> tuple[bytes, dict[str, str]]:
    """The response body and its extra headers (binary extension: header length, content type)."""
    datatypes = {**model.output_datatypes} if request.classify else model.output_datatypes
    for classified, k in request.classify.items():
        labels = model.labels if model.has_labels else None
        results = {**results, classified: classification.classify(results[classified], k, labels)}
        datatypes[classified] = "BYTES"
    outputs = [
        {"name": n, "datatype": datatypes[n], "shape": list(a.shape), "data": _flat(a)} for n, a in results.items()
    ]
    response: dict[str, Any] = {"model_name": name, "model_version": str(version), "outputs": outputs}
    if "id" in request.header:
        response["id"] = request.header["id"]
    as_binary = binary.binary_outputs(request.header, results) if _wants_binary(request.header) else set()
    if as_binary:
        for output in outputs:
            if output["name"] in as_binary:
                del output["data"]
        body, length = binary.encode_response(response, {n: results[n] for n in as_binary})
        return body, {binary.HEADER_LENGTH: str(length), "content-type": binary.CONTENT_TYPE}
    return orjson.dumps(response, option=orjson.OPT_SERIALIZE_NUMPY), {}


def _flat(array: np.ndarray) -> Any:
    # orjson writes numeric arrays itself; strings (classification) go as a list. Cheap tests first:
    # this runs per output of every request (`dtype == object` would build a dtype each time)
    flat = array if array.ndim == 1 else array.reshape(-1)
    return flat.tolist() if array.dtype.kind == "O" else flat


def _wants_binary(header: dict[str, Any]) -> bool:
    # cheap test first: the JSON path for one image should not walk the outputs list
    params = header.get("parameters")
    return bool(header.get("outputs")) or (isinstance(params, dict) and "binary_data_output" in params)
