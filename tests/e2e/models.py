"""Model repositories for end-to-end tests: small classifiers with random weights, written the way
the exporter writes them (``exporter.graph.build_model``), plus foreign ONNX models."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from contracts import MODEL_ONNX, Architecture, LayerSpec, ModelSpec, param_name, version_dir
from exporter.graph import build_model

DATA = Path(__file__).resolve().parents[1] / "data"
TORCH_MLP = DATA / "foreign" / "torch_mlp.onnx"  # input "input" [batch, 784] -> "logits" [batch, 10]
DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def make_spec(
    input_shape: tuple[int, ...] = (28, 28), hidden: tuple[int, ...] = (32,), labels: tuple[str, ...] = DIGITS
) -> ModelSpec:
    layers = [LayerSpec(units=u, activation="relu") for u in hidden] + [
        LayerSpec(units=len(labels), activation="linear")
    ]
    return ModelSpec(architecture=Architecture(input_shape=input_shape, layers=tuple(layers)), labels=labels)


def random_weights(spec: ModelSpec, seed: int) -> dict[str, np.ndarray]:
    """Glorot-uniform kernels and small biases: outputs differ clearly between seeds."""
    rng = np.random.default_rng(seed)
    weights: dict[str, np.ndarray] = {}
    for name, shape in spec.architecture.parameter_shapes().items():
        if name.endswith("kernel"):
            limit = np.sqrt(6.0 / sum(shape))
            weights[name] = rng.uniform(-limit, limit, shape).astype(np.float32)
        else:
            weights[name] = rng.uniform(-0.1, 0.1, shape).astype(np.float32)
    assert set(weights) == {param_name(i, k) for i in range(len(spec.architecture.layers)) for k in ("kernel", "bias")}
    return weights


def write_model(repository: Path, name: str, version: int, *, seed: int, spec: ModelSpec | None = None) -> Path:
    """Write ``<repository>/<name>/<version>/model.onnx`` atomically (as the exporter does); return the file."""
    spec = spec or make_spec()
    model = build_model(spec, random_weights(spec, seed), name=name, version=version)
    return _place(repository, name, version, model.SerializeToString())


def write_onnx(repository: Path, name: str, version: int, model: onnx.ModelProto | Path) -> Path:
    data = model.read_bytes() if isinstance(model, Path) else model.SerializeToString()
    return _place(repository, name, version, data)


def write_broken(repository: Path, name: str, version: int) -> Path:
    """A version whose model.onnx is not a loadable model (truncated protobuf garbage)."""
    return _place(repository, name, version, b"\x08\x07this is not an onnx model")


def _place(repository: Path, name: str, version: int, data: bytes) -> Path:
    # Write under a dotted temporary name and rename, so the poller never sees half a version.
    target = version_dir(repository, name, version)
    tmp = target.with_name(f".{target.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    (tmp / MODEL_ONNX).write_bytes(data)
    tmp.rename(target)
    return target / MODEL_ONNX


def tf2onnx_style_mlp(seed: int = 5) -> onnx.ModelProto:
    """An MLP laid out as tf2onnx writes Keras models: ``dense_input`` [unk__6, 784] -> Softmax ``dense_1``.

    Named dims such as ``unk__6``, ``:0``-free Keras names, MatMul+Add with ``/ReadVariableOp``
    initialisers, opset 13 and no metadata: the service must read all of it from the graph.
    """
    rng = np.random.default_rng(seed)
    w0 = rng.uniform(-0.08, 0.08, (784, 16)).astype(np.float32)
    w1 = rng.uniform(-0.3, 0.3, (16, 10)).astype(np.float32)
    inits = [
        numpy_helper.from_array(w0, "sequential/dense/MatMul/ReadVariableOp:0"),
        numpy_helper.from_array(np.full(16, 0.01, np.float32), "sequential/dense/BiasAdd/ReadVariableOp:0"),
        numpy_helper.from_array(w1, "sequential/dense_1/MatMul/ReadVariableOp:0"),
        numpy_helper.from_array(np.zeros(10, np.float32), "sequential/dense_1/BiasAdd/ReadVariableOp:0"),
        numpy_helper.from_array(np.array(1 / 255, np.float32), "const_fold_opt__8"),
    ]
    nodes = [
        helper.make_node("Mul", ["dense_input", "const_fold_opt__8"], ["scaled"], name="sequential/rescaling/mul"),
        helper.make_node("MatMul", ["scaled", inits[0].name], ["mm0"], name="sequential/dense/MatMul"),
        helper.make_node("Add", ["mm0", inits[1].name], ["a0"], name="sequential/dense/BiasAdd"),
        helper.make_node("Relu", ["a0"], ["r0"], name="sequential/dense/Relu"),
        helper.make_node("MatMul", ["r0", inits[2].name], ["mm1"], name="sequential/dense_1/MatMul"),
        helper.make_node("Add", ["mm1", inits[3].name], ["a1"], name="sequential/dense_1/BiasAdd"),
        helper.make_node("Softmax", ["a1"], ["dense_1"], name="sequential/dense_1/Softmax", axis=-1),
    ]
    graph = helper.make_graph(
        nodes,
        "tf2onnx",
        [helper.make_tensor_value_info("dense_input", TensorProto.FLOAT, ["unk__6", 784])],
        [helper.make_tensor_value_info("dense_1", TensorProto.FLOAT, ["unk__7", 10])],
        initializer=inits,
    )
    return helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 13)],
        ir_version=7,
        producer_name="tf2onnx",
        producer_version="1.17.0",
    )


def two_input_model() -> onnx.ModelProto:
    """Two named inputs and two outputs, no batch-free dims: ``a``, ``b`` float32 [batch, 3] ->
    ``sum`` = a + b and ``product`` = a * b, float32 [batch, 3]. For TF Serving's multi-input row
    (list of objects) and columnar (object keyed by name) formats."""
    nodes = [helper.make_node("Add", ["a", "b"], ["sum"]), helper.make_node("Mul", ["a", "b"], ["product"])]
    graph = helper.make_graph(
        nodes,
        "pair",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["batch", 3]) for n in ("a", "b")],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["batch", 3]) for n in ("sum", "product")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
