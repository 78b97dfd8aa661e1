"""The ONNX signature shared by the exporter (writes it) and the service (reads it).

Input ``images``: float32 ``[batch, *input_shape]`` (batch symbolic), raw 0..255 intensities.
Outputs ``probabilities``: float32 ``[batch, classes]`` and ``label``: int64 ``[batch]``.

Opset 17 / IR version 8 is loaded by every runtime we pin: onnxruntime 1.30 (Python), the
ORT-format converter and mobile packages of the same release, and onnxruntime-web/node 1.30.
"""

from __future__ import annotations

from importlib import metadata

INPUT_NAME = "images"
PROBABILITIES_NAME = "probabilities"
LABEL_NAME = "label"
BATCH_DIM = "batch"

OPSET = 17
IR_VERSION = 8

PRODUCER_NAME = "deploy-anywhere"
try:
    PRODUCER_VERSION = metadata.version(PRODUCER_NAME)
except metadata.PackageNotFoundError:  # running from a source tree that is not installed
    PRODUCER_VERSION = "0.0.0"


class METADATA_KEYS:  # noqa: N801 - a namespace of constants
    """Keys of ``ModelProto.metadata_props``; values are strings (JSON where structured)."""

    LABELS = "labels"  # JSON list of class names, index = class id
    MODEL_NAME = "model_name"
    MODEL_VERSION = "model_version"
    PREPROCESSING = "preprocessing"  # JSON {"scale", "mean", "std"}
    METRICS = "metrics"  # JSON {"test_accuracy", ...}
    INPUT_SHAPE = "input_shape"  # JSON list, without the batch dimension
    PRODUCER = "producer"  # "<name> <version>"
