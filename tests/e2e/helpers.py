"""What end-to-end tests compare the service with: onnxruntime in-process on the same file."""

from __future__ import annotations

import functools
import io
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image, ImageDraw

from contracts import MODEL_ONNX, version_dir


@functools.cache
def _session(path: str, mtime_ns: int) -> ort.InferenceSession:
    return ort.InferenceSession(path, providers=["CPUExecutionProvider"])


def reference(repository: Path, name: str, version: int, inputs: np.ndarray) -> dict[str, np.ndarray]:
    """All outputs of ``<repository>/<name>/<version>/model.onnx`` for one input, run in-process."""
    path = version_dir(repository, name, version) / MODEL_ONNX
    session = _session(str(path), path.stat().st_mtime_ns)
    results = session.run(None, {session.get_inputs()[0].name: inputs})
    return {o.name: r for o, r in zip(session.get_outputs(), results, strict=True)}


def images(n: int, seed: int = 0, shape: tuple[int, ...] = (28, 28)) -> np.ndarray:
    """Integer-valued float32 pixels 0..255: exact in JSON, so both encodings carry the same numbers."""
    return np.random.default_rng(seed).integers(0, 256, (n, *shape)).astype(np.float32)


def digit_picture(fmt: str = "PNG", *, white_background: bool = True, size: int = 96) -> bytes:
    """A hand-drawn-looking '1'-ish stroke, dark on white like a phone photo of paper."""
    bg, ink = (255, 0) if white_background else (0, 255)
    picture = Image.new("L", (size, size), bg)
    draw = ImageDraw.Draw(picture)
    draw.line([(size * 0.45, size * 0.15), (size * 0.55, size * 0.85)], fill=ink, width=max(3, size // 10))
    draw.line([(size * 0.35, size * 0.3), (size * 0.47, size * 0.18)], fill=ink, width=max(2, size // 14))
    out = io.BytesIO()
    picture.convert("RGB").save(out, format=fmt)
    return out.getvalue()


def v2_json_input(name: str, array: np.ndarray, datatype: str = "FP32") -> dict:
    return {"name": name, "shape": list(array.shape), "datatype": datatype, "data": array.reshape(-1).tolist()}
