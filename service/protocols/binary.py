"""The Open Inference Protocol's binary tensor extension (Triton ``extension_binary_data.md``).

A binary request or response body is a JSON header followed by raw tensors::

    <JSON header, Inference-Header-Content-Length bytes><tensor 0 bytes><tensor 1 bytes>...

Tensors appear in the order of the header's ``inputs`` (or ``outputs``) that carry
``parameters.binary_data_size``; they are little-endian and row-major, BOOL is one byte per
element, and each BYTES element is a 4-byte little-endian length followed by its bytes.

This module also holds the one table from V2 datatype strings to numpy dtypes; the JSON codec
imports it from here.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

import numpy as np
import orjson

HEADER_LENGTH = "Inference-Header-Content-Length"
EXTENSION = "binary_tensor_data"
CONTENT_TYPE = "application/octet-stream"

# V2 datatype -> numpy dtype, little-endian as the wire format is. BF16 has no numpy dtype and
# is left out, so it gets the "unsupported datatype" message rather than a wrong decoding.
DATATYPES: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype("?"),
    "UINT8": np.dtype("u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
    "BYTES": np.dtype(object),
}
_BY_KIND = {(dt.kind, dt.itemsize): name for name, dt in DATATYPES.items() if name != "BYTES"}
_LENGTH = struct.Struct("<I")


class BinaryDataError(ValueError):
    """A binary tensor body that does not add up; the message says what and what is expected."""


class BinaryRequest(NamedTuple):
    header: dict[str, Any]  # the JSON header, as sent
    tensors: dict[str, np.ndarray]  # input name -> array, for the inputs sent as binary data


def datatype_of(dtype: np.dtype[Any] | type) -> str:
    """The V2 datatype string of a numpy dtype (object and string dtypes are BYTES)."""
    dt = np.dtype(dtype)
    if dt.kind in "OSU":
        return "BYTES"
    try:
        return _BY_KIND[(dt.kind, dt.itemsize)]
    except KeyError:
        raise BinaryDataError(f"numpy dtype {dt} has no Open Inference Protocol datatype") from None


def numpy_dtype(datatype: object) -> np.dtype[Any]:
    """The numpy dtype of a V2 datatype string; BinaryDataError names the supported ones."""
    if not isinstance(datatype, str) or datatype not in DATATYPES:
        raise BinaryDataError(f"unsupported datatype {datatype!r}: expected one of {', '.join(DATATYPES)}")
    return DATATYPES[datatype]


def parse_header_length(value: str | int | None, body_length: int) -> int:
    """Validate the ``Inference-Header-Content-Length`` header against the body it describes."""
    try:
        length = int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise BinaryDataError(
            f"{HEADER_LENGTH} must be a non-negative integer (the byte length of the JSON header), got {value!r}"
        ) from None
    if not 0 < length <= body_length:
        raise BinaryDataError(
            f"{HEADER_LENGTH} is {length} but the body has {body_length} bytes: "
            "expected the byte length of the JSON header at the start of the body"
        )
    return length


def decode_request(body: bytes, header_length: str | int | None) -> BinaryRequest:
    """Split a binary inference request into its JSON header and the arrays of its binary inputs.

    Arrays of fixed-size types are read-only views of ``body`` (no copy).
    """
    return BinaryRequest(*_decode(body, header_length, "inputs"))


def binary_outputs(request: Mapping[str, Any], output_names: Iterable[str]) -> set[str]:
    """Which outputs go back as binary data.

    An output's own ``parameters.binary_data`` decides; otherwise the request's
    ``parameters.binary_data_output`` (default false) applies to every returned output.
    """
    params = request.get("parameters")
    default = bool(params.get("binary_data_output", False)) if isinstance(params, Mapping) else False
    own: dict[str, bool] = {}
    for output in request.get("outputs") or ():
        if isinstance(output, Mapping) and isinstance(output.get("parameters"), Mapping):
            if "binary_data" in output["parameters"]:
                own[str(output.get("name"))] = bool(output["parameters"]["binary_data"])
    return {name for name in output_names if own.get(name, default)}


def encode_response(response: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> tuple[bytes, int]:
    """Build a binary response body; returns it and the value of ``Inference-Header-Content-Length``.

    Outputs of ``response["outputs"]`` whose name is in ``arrays`` are sent as raw data (their
    ``data`` is dropped, ``datatype``/``shape`` filled from the array, ``binary_data_size`` set);
    the others stay JSON. Buffers follow in the order of ``response["outputs"]``.
    """
    return _encode(response, "outputs", arrays)


def encode_request(request: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> tuple[bytes, int]:
    """The client side of :func:`decode_request` (used by tests and the benchmark)."""
    return _encode(request, "inputs", arrays)


def decode_response(body: bytes, header_length: str | int | None) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The client side of :func:`encode_response`: the JSON header and the binary outputs, shaped,
    checked as strictly as the server checks a request."""
    return _decode(body, header_length, "outputs")


def _decode(body: bytes, header_length: str | int | None, key: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The JSON header of a binary message and the arrays of its ``key`` ("inputs" or "outputs")
    sent as binary data, each checked against the declared sizes and the body's length."""
    role = key[:-1]
    length = parse_header_length(header_length, len(body))
    header = _load_header(body, length, key)
    tensors: dict[str, np.ndarray] = {}
    offset = length
    for i, tensor in enumerate(header.get(key) or ()):
        size = _binary_size(tensor, f"{key}[{i}]")
        if size is None:
            continue
        name = tensor["name"]
        if name in tensors:
            raise BinaryDataError(f"{role} {name!r} appears twice: expected each {role} once")
        if "data" in tensor:
            raise BinaryDataError(
                f"{role} {name!r} has both 'data' and parameters.binary_data_size: expected one of them"
            )
        if offset + size > len(body):
            raise BinaryDataError(
                f"{role} {name!r} declares binary_data_size {size} at byte {offset}, but the body ends at byte "
                f"{len(body)}: expected the raw tensors after the JSON header to add up to the declared sizes"
            )
        tensors[name] = _decode_tensor(body, offset, size, tensor)
        offset += size
    if offset != len(body):
        raise BinaryDataError(
            f"{len(body) - offset} bytes after the binary {key} are not claimed by any binary_data_size: "
            f"expected the body to be {HEADER_LENGTH} ({length}) plus the sum of binary_data_size ({offset - length})"
        )
    return header, tensors


def _encode(message: Mapping[str, Any], key: str, arrays: Mapping[str, np.ndarray]) -> tuple[bytes, int]:
    header = dict(message)
    tensors: list[dict[str, Any]] = []
    buffers: list[bytes | memoryview] = []
    for tensor in message.get(key) or ():
        tensor = dict(tensor)
        if tensor["name"] in arrays:
            array = np.asarray(arrays[tensor["name"]])
            # a declared datatype wins (the bytes are converted to it); the shape is the array's
            tensor["datatype"] = tensor.get("datatype") or datatype_of(array.dtype)
            tensor["shape"] = list(array.shape)
            raw = _tensor_bytes(array, tensor["datatype"])
            tensor.pop("data", None)
            tensor["parameters"] = {**(tensor.get("parameters") or {}), "binary_data_size": len(raw)}
            buffers.append(raw)
        tensors.append(tensor)
    header[key] = tensors
    json_header = orjson.dumps(header, option=orjson.OPT_SERIALIZE_NUMPY)
    return b"".join([json_header, *buffers]), len(json_header)


def _tensor_bytes(array: np.ndarray, datatype: str) -> bytes | memoryview:
    if datatype == "BYTES":
        return _serialize_bytes(array)
    wire = numpy_dtype(datatype)
    # memoryview of a C-contiguous little-endian array: b"".join copies it once, nothing else does
    return memoryview(np.ascontiguousarray(array, dtype=wire).reshape(-1).view(np.uint8))  # type: ignore[arg-type]


def _serialize_bytes(array: np.ndarray) -> bytes:
    parts: list[bytes] = []
    for item in array.reshape(-1):
        data = item.encode("utf-8") if isinstance(item, str) else bytes(item)
        parts += [_LENGTH.pack(len(data)), data]
    return b"".join(parts)


def _load_header(body: bytes, length: int, key: str) -> dict[str, Any]:
    try:
        header = orjson.loads(memoryview(body)[:length])
    except orjson.JSONDecodeError as e:
        raise BinaryDataError(
            f"the first {length} bytes ({HEADER_LENGTH}) are not valid JSON ({e}): "
            "expected the JSON inference header there, followed by the raw tensor data"
        ) from None
    if not isinstance(header, dict):
        raise BinaryDataError(f"the JSON header must be an object, got {type(header).__name__}")
    if not isinstance(header.get(key, []), list):
        raise BinaryDataError(f"'{key}' in the JSON header must be a list of tensors")
    return header


def _binary_size(tensor: object, where: str) -> int | None:
    if not isinstance(tensor, dict):
        raise BinaryDataError(f"{where} must be an object with name, datatype and shape")
    params = tensor.get("parameters")
    if not isinstance(params, dict) or "binary_data_size" not in params:
        return None
    size = params["binary_data_size"]
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise BinaryDataError(f"{where}: binary_data_size must be a non-negative integer (bytes), got {size!r}")
    if not isinstance(tensor.get("name"), str):
        raise BinaryDataError(f"{where}: a tensor sent as binary data needs a 'name' string")
    return size


def _shape(tensor: Mapping[str, Any]) -> tuple[int, ...]:
    shape = tensor.get("shape")
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise BinaryDataError(
            f"tensor {tensor['name']!r}: shape must be a list of non-negative integers, got {shape!r}"
        )
    return tuple(shape)


def _decode_tensor(body: bytes, offset: int, size: int, tensor: Mapping[str, Any]) -> np.ndarray:
    name, datatype = tensor["name"], tensor.get("datatype")
    dtype = numpy_dtype(datatype)
    shape = _shape(tensor)
    count = math.prod(shape)
    if datatype == "BYTES":
        return _deserialize_bytes(body, offset, size, count, name).reshape(shape)
    if count * dtype.itemsize != size:
        raise BinaryDataError(
            f"tensor {name!r}: binary_data_size is {size} bytes, but shape {list(shape)} of {datatype} "
            f"needs {count} x {dtype.itemsize} = {count * dtype.itemsize} bytes"
        )
    array = np.frombuffer(body, dtype=dtype, count=count, offset=offset)
    if datatype == "BOOL" and count and array.view(np.uint8).max() > 1:
        raise BinaryDataError(f"tensor {name!r}: BOOL elements must be bytes 0 or 1")
    return array.reshape(shape)


def _deserialize_bytes(body: bytes, offset: int, size: int, count: int, name: str) -> np.ndarray:
    items: list[bytes] = []
    end = offset + size
    while offset < end:
        if offset + 4 > end:
            raise BinaryDataError(f"tensor {name!r}: BYTES element {len(items)} has a truncated 4-byte length prefix")
        (n,) = _LENGTH.unpack_from(body, offset)
        offset += 4
        if offset + n > end:
            raise BinaryDataError(
                f"tensor {name!r}: BYTES element {len(items)} declares {n} bytes but only {end - offset} remain "
                "in its binary_data_size"
            )
        items.append(bytes(body[offset : offset + n]))
        offset += n
    if len(items) != count:
        raise BinaryDataError(f"tensor {name!r}: {len(items)} BYTES elements, but its shape holds {count}")
    array = np.empty(count, dtype=object)
    array[:] = items
    return array
