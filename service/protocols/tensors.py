"""Client JSON values -> checked numpy arrays, shared by both protocol codecs.

Speed matters here (issue 5): the body is parsed once by orjson and converted by one
``np.asarray`` call; checks are numpy reductions, never per-element Python.
"""

from __future__ import annotations

from typing import Any

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


# the largest float32 squared: a float64 array whose sum of squares is at most this fits in float32
_FLOAT32_MAX_SQUARED = float(np.finfo(np.float32).max) ** 2


def plain_array(value: Any, dtype: np.dtype) -> np.ndarray | None:
    """``value`` as a ``dtype`` array when it plainly is one: numbers (integers too) for a float32 or
    float64 tensor, every one finite in ``dtype``. None for anything else, which ``to_array`` then
    converts or refuses with its message (``service.hotpath``: the common request, checked with as
    few numpy calls as possible, since each one costs ~10 us with the cold caches of a lone client).
    JSON has no NaN or Infinity, so only a float64 too large for float32 can turn non-finite, and a
    sum of squares within float32's range rules that out in one BLAS call, before the cast."""
    if dtype != np.float32 and dtype != np.float64:
        return None
    try:
        raw = np.asarray(value)
    except (ValueError, TypeError, OverflowError):
        return None
    kind = raw.dtype.kind
    if kind == "f" and dtype == np.float32 and raw.dtype != dtype and not np.vdot(raw, raw) <= _FLOAT32_MAX_SQUARED:
        return None
    if kind not in "iuf" or raw.size == 0:
        return None
    return raw.astype(dtype, copy=False)


def check_batch(batch: int, max_batch_size: int, what: str) -> None:
    if batch == 0:
        raise InvalidInputError(f"{what} is an empty batch: expected at least one example")
    if batch > max_batch_size:
        raise InvalidInputError(
            f"{what} has a batch of {batch}, more than the limit of {max_batch_size} (max_batch_size):"
            " split it into smaller requests"
        )
