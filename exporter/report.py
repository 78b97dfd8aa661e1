"""The manifest's content: what was exported, from what, and every measured number.

Pure functions of the export's inputs and results; ``export._build_version`` assembles them and
``card.render_card`` renders the same dictionary for people.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from contracts import (
    INPUT_NAME,
    IR_VERSION,
    LABEL_NAME,
    OPSET,
    PROBABILITIES_NAME,
    PRODUCER_NAME,
    PRODUCER_VERSION,
    ModelSpec,
)
from exporter import validate, variants
from exporter.data import EvalData
from exporter.graph import training_metrics

INT8_SIZE_GOAL = 0.30  # int8 file at most 30% of the float32 one
INT8_ACCURACY_DROP_GOAL = 0.005  # at most half a point of accuracy lost


def int8_report(path: Path, float_report: dict[str, Any], sess: ort.InferenceSession, data: EvalData) -> dict[str, Any]:
    """Size, accuracy and agreement of the int8 file with the float one, and whether the goals are met."""
    report = variants.evaluate(path, data.x, data.y)
    report["size_ratio"] = round(report["bytes"] / float_report["bytes"], 4)
    _, float_labels = validate.run(sess, data.x)
    _, int8_labels = validate.run(validate.session(str(path)), data.x)
    report["label_agreement_with_float"] = float(np.mean(int8_labels == float_labels))
    goals = {"size_ratio_max": INT8_SIZE_GOAL, "size_met": report["size_ratio"] <= INT8_SIZE_GOAL}
    if report["accuracy"] is not None:
        report["accuracy_drop"] = round(float_report["accuracy"] - report["accuracy"], 6)
        goals |= {
            "accuracy_drop_max": INT8_ACCURACY_DROP_GOAL,
            "accuracy_met": report["accuracy_drop"] <= INT8_ACCURACY_DROP_GOAL,
        }
    report["goals"] = goals
    return report


def describe(artifact: Path, spec: ModelSpec, data: EvalData, *, name: str, version: int) -> dict[str, Any]:
    """What was exported, from which artifact, with which signature; checks are added by the caller."""
    shape = list(spec.architecture.input_shape)
    classes = spec.architecture.num_classes
    return {
        "model": {
            "name": name,
            "version": version,
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "producer": f"{PRODUCER_NAME} {PRODUCER_VERSION}",
            "onnx_opset": OPSET,
            "onnx_ir_version": IR_VERSION,
            "onnxruntime": ort.__version__,
            "artifact": str(artifact.resolve()),
        },
        "signature": {
            "input_shape": shape,
            "inputs": [{"name": INPUT_NAME, "datatype": "FP32", "shape": [-1, *shape]}],
            "outputs": [
                {"name": PROBABILITIES_NAME, "datatype": "FP32", "shape": [-1, classes]},
                {"name": LABEL_NAME, "datatype": "INT64", "shape": [-1]},
            ],
        },
        "labels": list(spec.labels),
        "preprocessing": spec.preprocessing.model_dump(),
        "training": {
            "architecture": [f"{layer.units} {layer.activation}" for layer in spec.architecture.layers],
            "dataset": spec.dataset.name if spec.dataset else "unknown",
            "dataset_sha256": spec.dataset.sha256 if spec.dataset else None,
            "metrics": training_metrics(spec),
        },
        "evaluation": {"dataset": data.name, "images": len(data.x), "labelled": data.y is not None},
    }


def mobile_report(op_config: Path) -> dict[str, Any]:
    lines = [line for line in op_config.read_text(encoding="utf-8").splitlines() if line and not line.startswith("#")]
    return {"operator_config": op_config.name, "operators": "\n".join(lines), "onnxruntime": ort.__version__}


def accuracy(sess: ort.InferenceSession, data: EvalData) -> float | None:
    return None if data.y is None else validate.accuracy(sess, data.x, data.y)
