"""Client JSON values -> checked numpy arrays, shared by both protocol codecs.

Speed matters here (issue 5): the body is parsed once by orjson and converted by one
``np.asarray`` call; checks are numpy reductions, never per-element Python.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
import numpy as np
import orjson

from service.errors import InvalidInputError, UnsupportedMediaTypeError

# content types a JSON body may arrive with: curl -d sends form-urlencoded, some clients nothing
# numpy kinds a client value may have, by the kind of the model's tensor
_NUMERIC = {"f": "iuf", "i": "iu", "u": "iu", "b": "b"}
_JSON_TYPES = ("", "application/json", "text/plain", "application/x-www-form-urlencoded")


def check_json_content_type(content_type: str) -> None:
    """415 for bodies that are clearly not JSON (an image, a form upload, HTML)."""
    base = content_type.split(";", 1)[0].strip().lower()
    if base in _JSON_TYPES or base.endswith("+json"):
        return
    raise UnsupportedMediaTypeError(f"content type {base!r} is not supported here: expected application/json")


def load_json_object(body: bytes) -> dict[str, Any]:
    """Parse a request body that must be a JSON object, with a message that says what is wrong."""
    if not body:
        raise InvalidInputError("the request body is empty: expected a JSON object")
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        if b"NaN" in body or b"Infinity" in body:
            raise InvalidInputError("NaN and Infinity are not accepted: expected finite numbers") from None
        raise InvalidInputError(f"malformed JSON ({e}): expected a JSON object") from None
    if not isinstance(payload, dict):
        raise InvalidInputError(f"the body is a JSON {type(payload).__name__}: expected a JSON object")
    return payload


def to_array(value: Any, dtype: np.dtype, what: str) -> np.ndarray:
    """Convert a (nested) list of numbers to ``dtype``; ragged lists or non-numbers -> 400."""
    if isinstance(value, np.ndarray):
        raw = value
    else:
        try:
            raw = np.asarray(value)
        except (ValueError, TypeError, OverflowError):
            raise InvalidInputError(
                f"{what} must be numbers in a (nested) list with equal-length rows, convertible to {dtype.name}"
            ) from None
    # strings ("1"), null, true/false and huge integers are not numbers of this tensor
    if raw.dtype.kind not in _NUMERIC[dtype.kind]:
        found = {"U": "strings", "S": "strings", "b": "true/false", "O": "null, nested objects or out-of-range numbers"}
        raise InvalidInputError(
            f"{what} contains {found.get(raw.dtype.kind, raw.dtype.name)}:"
            f" expected finite numbers convertible to {dtype.name}"
        )
    if dtype.kind in "iu" and raw.size and raw.dtype != dtype:
        info = np.iinfo(dtype)
        if raw.min() < info.min or raw.max() > info.max:
            raise InvalidInputError(f"{what} has values outside the {dtype.name} range [{info.min}, {info.max}]")
    with np.errstate(over="ignore"):  # a float too large for float32 becomes inf, refused below
        array = raw.astype(dtype, copy=False)
    if array.dtype.kind == "f" and array.size and not np.isfinite(array).all():
        raise InvalidInputError(
            f"{what} contains NaN or Infinity (or a number too large for {dtype.name}): expected finite numbers"
        )
    return array


# What the hot path's schemas (``tfserving.decode_plain``, ``v2.decode_plain``) accept as a number:
# an int or float of magnitude at most 2**53. A double holds such an int exactly and such a value is
# finite in float32, so reading it as a double and casting it gives the array the general path
# gives, in one pass; anything else (strings, true/false, null, larger numbers) fails the schema,
# in C, and the request goes the general way.
PlainNumber = Annotated[float, msgspec.Meta(ge=-(2**53), le=2**53)]
PLAIN_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def nested_list(rank: int) -> Any:
    """The schema type ``list[list[...[PlainNumber]]]``, ``rank`` lists deep."""
    schema: Any = PlainNumber
    for _ in range(rank):
        schema = list[schema]
    return schema


def plain_array(values: list[Any], dtype: np.dtype) -> np.ndarray | None:
    """Numbers a plain schema accepted, as a ``dtype`` array (one of ``PLAIN_DTYPES``); None when
    the lists are ragged or empty, or for another dtype."""
    if dtype not in PLAIN_DTYPES:
        return None
    try:
        array = np.asarray(values, dtype=dtype)
    except ValueError:  # ragged
        return None
    return array if array.size else None


def check_batch(batch: int, max_batch_size: int, what: str) -> None:
    if batch == 0:
        raise InvalidInputError(f"{what} is an empty batch: expected at least one example")
    if batch > max_batch_size:
        raise InvalidInputError(
            f"{what} has a batch of {batch}, more than the limit of {max_batch_size} (max_batch_size):"
            " split it into smaller requests"
        )
