"""The model repository and the request bodies the benchmark posts, with the expected answers."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from contracts.artifact import Architecture, LayerSpec, ModelSpec, param_name
from exporter.graph import build_model
from trainer import load_mnist

MODEL_NAME = "mnist"
HIDDEN = (256, 128)
BATCH_ROWS = 1000


@dataclass(frozen=True)
class Body:
    """A request body on disk (wrk reads it) and how to post it."""

    path: Path
    content_type: str = "application/json"
    header_length: int | None = None  # Inference-Header-Content-Length for V2 binary bodies

    def headers(self) -> dict[str, str]:
        headers = {"Content-Type": self.content_type}
        if self.header_length is not None:
            headers["Inference-Header-Content-Length"] = str(self.header_length)
        return headers


@dataclass(frozen=True)
class Payloads:
    tf: Body
    v2: Body
    binary: Body
    image: np.ndarray  # [1, 28, 28] float32
    batch: np.ndarray  # [1000, 28, 28] float32
    tf_path: str = f"/v1/models/{MODEL_NAME}:predict"
    v2_path: str = f"/v2/models/{MODEL_NAME}/infer"


def build_repository(repository: Path) -> Path:
    """``<repository>/mnist/1/model.onnx``: the 784-256-128-10 MLP with random (Glorot) weights."""
    sizes = (784, *HIDDEN, 10)
    layers = tuple(LayerSpec(units=n) for n in HIDDEN) + (LayerSpec(units=10, activation="linear"),)
    spec = ModelSpec(architecture=Architecture(input_shape=(28, 28), layers=layers), labels=tuple("0123456789"))
    rng = np.random.default_rng(0)
    weights: dict[str, np.ndarray] = {}
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        limit = np.sqrt(6 / (fan_in + fan_out))
        weights[param_name(i, "kernel")] = rng.uniform(-limit, limit, (fan_in, fan_out)).astype(np.float32)
        weights[param_name(i, "bias")] = np.zeros(fan_out, np.float32)
    path = repository / MODEL_NAME / "1" / "model.onnx"
    path.parent.mkdir(parents=True)
    onnx.save(build_model(spec, weights, name=MODEL_NAME, version=1), path)
    return path


def write_payloads(folder: Path) -> Payloads:
    """One MNIST test digit as TF Serving and V2 JSON, and 1000 digits as a V2 binary body."""
    folder.mkdir(parents=True)
    batch = load_mnist("test").x[:BATCH_ROWS].astype(np.float32)
    image = batch[:1]
    tf = folder / "tf.json"
    tf.write_text(json.dumps({"instances": image.tolist()}))
    v2 = folder / "v2.json"
    tensor = {"name": "images", "shape": list(image.shape), "datatype": "FP32", "data": image.ravel().tolist()}
    v2.write_text(json.dumps({"inputs": [tensor]}))
    binary, header_length = _binary_body(folder / "v2-binary-1000.bin", batch)
    return Payloads(
        tf=Body(tf),
        v2=Body(v2),
        binary=Body(binary, "application/octet-stream", header_length),
        image=image,
        batch=batch,
    )


def _binary_body(path: Path, batch: np.ndarray) -> tuple[Path, int]:
    """A V2 binary tensor extension request: JSON header, then the raw little-endian tensor."""
    data = np.ascontiguousarray(batch, dtype="<f4").tobytes()
    header = {
        "inputs": [
            {
                "name": "images",
                "shape": list(batch.shape),
                "datatype": "FP32",
                "parameters": {"binary_data_size": len(data)},
            }
        ],
        "outputs": [
            {"name": "probabilities", "parameters": {"binary_data": True}},
            {"name": "label", "parameters": {"binary_data": True}},
        ],
    }
    head = json.dumps(header).encode()
    path.write_bytes(head + data)
    return path, len(head)
