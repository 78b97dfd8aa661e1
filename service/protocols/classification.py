"""Triton's classification extension (``extension_classification.md``) for V2 infer.

A requested output with ``parameters: {"classification": k}`` is answered as a BYTES tensor
``[batch, k]`` of strings ``"<score>:<index>[:<label>]"``, the k highest scores of each row, best
first: what ``tritonclient``'s ``InferRequestedOutput(name, class_count=k)`` asks for.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from service.errors import InvalidInputError
from service.runtime import ModelRuntime

EXTENSION = "classification"


def requested(header: dict[str, Any], model: ModelRuntime) -> dict[str, int]:
    """Output name -> k for every requested output that asks for classification."""
    wanted: dict[str, int] = {}
    for output in header.get("outputs") or ():
        params = output.get("parameters") if isinstance(output, dict) else None
        if not isinstance(params, dict) or EXTENSION not in params:
            continue
        name, k = output.get("name"), params[EXTENSION]
        spec = next((t for t in model.outputs if t.name == name), None)
        if type(k) is not int or k < 1:
            raise InvalidInputError(f"output {name!r}: 'classification' must be a positive integer (k), got {k!r}")
        if spec is None or len(spec.shape) != 2 or spec.dtype.kind != "f":
            shape = spec.describe() if spec else "unknown"
            raise InvalidInputError(
                f"output {name!r} ({shape}) cannot be classified: expected a [batch, classes] float output"
            )
        wanted[name] = k
    return wanted


def classify(scores: np.ndarray, k: int, labels: tuple[str, ...] | None) -> np.ndarray:
    """[batch, classes] scores -> [batch, min(k, classes)] object array of "score:index[:label]"."""
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    rows = []
    for row, indices in zip(scores, top, strict=True):
        entries = [f"{str(row[i])}:{i}" + (f":{labels[i]}" if labels and i < len(labels) else "") for i in indices]
        rows.append(entries)
    out = np.empty(top.shape, dtype=object)
    out[:] = rows
    return out
