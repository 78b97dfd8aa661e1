"""Artifact -> ONNX graph with ``onnx.helper``, following ``contracts.signature``.

    images [batch, *input_shape] --Flatten--> Mul(scale) --Sub(mean)--> Div(std)
        --> (MatMul dense_i/kernel --> Add dense_i/bias --> activation) per layer
        --> Softmax --> probabilities [batch, classes] --> ArgMax --> label [batch] (int64)

Preprocessing lives in the graph, so every caller sends raw 0..255 pixels. Dense layers are
MatMul + Add rather than Gemm because onnxruntime's int8 quantizers handle MatMul in both the
dynamic and the static path (onnxruntime fuses MatMul + Add back into Gemm for float32 anyway).
The label is the argmax of the probabilities, so clients can never see the two disagree.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from contracts import (
    BATCH_DIM,
    INPUT_NAME,
    IR_VERSION,
    LABEL_NAME,
    METADATA_KEYS,
    OPSET,
    PROBABILITIES_NAME,
    PRODUCER_NAME,
    PRODUCER_VERSION,
    ModelSpec,
    param_name,
)
from exporter.errors import UnsupportedModelError

# artifact activation -> ONNX op type (None: no node)
ACTIVATION_OPS: dict[str, str | None] = {"relu": "Relu", "tanh": "Tanh", "sigmoid": "Sigmoid", "linear": None}


def build_model(spec: ModelSpec, weights: Mapping[str, np.ndarray], *, name: str, version: int) -> onnx.ModelProto:
    """Build the ONNX model of an artifact; raise UnsupportedModelError for what ONNX here cannot express."""
    nodes, initializers = _preprocessing(spec)
    x = "preprocess/standardized"
    for i, layer in enumerate(spec.architecture.layers):
        x = _dense(i, layer.activation, x, weights, nodes, initializers)
    nodes.append(helper.make_node("Softmax", [x], [PROBABILITIES_NAME], name="softmax", axis=-1))
    nodes.append(helper.make_node("ArgMax", [PROBABILITIES_NAME], [LABEL_NAME], name="argmax", axis=1, keepdims=0))
    graph = helper.make_graph(
        nodes,
        f"{name}_v{version}",
        inputs=[
            helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, [BATCH_DIM, *spec.architecture.input_shape])
        ],
        outputs=[
            helper.make_tensor_value_info(
                PROBABILITIES_NAME, TensorProto.FLOAT, [BATCH_DIM, spec.architecture.num_classes]
            ),
            helper.make_tensor_value_info(LABEL_NAME, TensorProto.INT64, [BATCH_DIM]),
        ],
        initializer=initializers,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        ir_version=IR_VERSION,
        producer_name=PRODUCER_NAME,
        producer_version=PRODUCER_VERSION,
        model_version=version,
        doc_string=_doc_string(spec, name, version),
    )
    helper.set_model_props(model, metadata(spec, name=name, version=version))
    return model


def metadata(spec: ModelSpec, *, name: str, version: int) -> dict[str, str]:
    """The ``metadata_props`` of the model: strings, JSON where structured."""
    pre = spec.preprocessing
    return {
        METADATA_KEYS.LABELS: json.dumps(list(spec.labels)),
        METADATA_KEYS.MODEL_NAME: name,
        METADATA_KEYS.MODEL_VERSION: str(version),
        METADATA_KEYS.PREPROCESSING: json.dumps({"scale": pre.scale, "mean": pre.mean, "std": pre.std}),
        METADATA_KEYS.METRICS: json.dumps(training_metrics(spec), sort_keys=True),
        METADATA_KEYS.INPUT_SHAPE: json.dumps(list(spec.architecture.input_shape)),
        METADATA_KEYS.PRODUCER: f"{PRODUCER_NAME} {PRODUCER_VERSION}",
    }


def training_metrics(spec: ModelSpec) -> dict[str, float]:
    """Test metrics from the artifact, plus the best epoch's validation accuracy when recorded."""
    metrics = dict(spec.test_metrics)
    epochs = {m.epoch: m for m in spec.metrics}
    best = epochs.get(spec.best_epoch) if spec.best_epoch is not None else (spec.metrics[-1] if spec.metrics else None)
    if best is not None and best.val_accuracy is not None:
        metrics.setdefault("val_accuracy", best.val_accuracy)
    return metrics


def _preprocessing(spec: ModelSpec) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    # Mul, Sub, Div in this order reproduce the trainer's float32 arithmetic step by step.
    pre = spec.preprocessing
    consts = [
        numpy_helper.from_array(np.array(value, dtype=np.float32), f"preprocess/{key}")
        for key, value in (("scale", pre.scale), ("mean", pre.mean), ("std", pre.std))
    ]
    nodes = [
        helper.make_node("Flatten", [INPUT_NAME], ["preprocess/flat"], name="flatten", axis=1),
        helper.make_node("Mul", ["preprocess/flat", "preprocess/scale"], ["preprocess/scaled"], name="scale"),
        helper.make_node("Sub", ["preprocess/scaled", "preprocess/mean"], ["preprocess/centered"], name="center"),
        helper.make_node(
            "Div", ["preprocess/centered", "preprocess/std"], ["preprocess/standardized"], name="standardize"
        ),
    ]
    return nodes, consts


def _dense(
    i: int,
    activation: str,
    x: str,
    weights: Mapping[str, np.ndarray],
    nodes: list[onnx.NodeProto],
    initializers: list[onnx.TensorProto],
) -> str:
    if activation not in ACTIVATION_OPS:
        raise UnsupportedModelError(
            f"layer {i}: unsupported activation {activation!r} (expected one of {', '.join(ACTIVATION_OPS)})"
        )
    kernel, bias = param_name(i, "kernel"), param_name(i, "bias")
    for key in (kernel, bias):
        initializers.append(numpy_helper.from_array(np.ascontiguousarray(weights[key], dtype=np.float32), key))
    nodes.append(helper.make_node("MatMul", [x, kernel], [f"dense_{i}/matmul"], name=f"dense_{i}/MatMul"))
    nodes.append(helper.make_node("Add", [f"dense_{i}/matmul", bias], [f"dense_{i}/linear"], name=f"dense_{i}/Add"))
    op = ACTIVATION_OPS[activation]
    if op is None:
        return f"dense_{i}/linear"
    nodes.append(helper.make_node(op, [f"dense_{i}/linear"], [f"dense_{i}/output"], name=f"dense_{i}/{op}"))
    return f"dense_{i}/output"


def _doc_string(spec: ModelSpec, name: str, version: int) -> str:
    arch = spec.architecture
    layers = " -> ".join(f"{layer.units} {layer.activation}" for layer in arch.layers)
    return (
        f"{name} version {version}: MLP classifier, input {list(arch.input_shape)} raw 0..255 -> {layers} -> softmax "
        f"over {len(spec.labels)} classes. Outputs '{PROBABILITIES_NAME}' and '{LABEL_NAME}' (argmax)."
    )
