"""``<name>/config.pbtxt`` for Triton's onnxruntime backend (KServe's Triton runtime reads the same).

Dims exclude the batch dimension because ``max_batch_size > 0`` makes Triton prepend it. The
``label`` output is ``[batch]`` in the model, which Triton expresses as ``dims: [ 1 ]`` plus
``reshape { shape: [ ] }`` (its documented form for a per-item scalar).
"""

from __future__ import annotations

import json

from contracts import INPUT_NAME, LABEL_NAME, MODEL_ONNX, PROBABILITIES_NAME, ModelSpec

LABELS_FILE = "labels.txt"  # Triton's classification extension reads one label per line
DEFAULT_MAX_BATCH_SIZE = 1024
QUEUE_DELAY_US = 100  # Triton's documented starting point: a short wait to fill batches


def config_pbtxt(spec: ModelSpec, *, name: str, max_batch_size: int = DEFAULT_MAX_BATCH_SIZE) -> str:
    dims = ", ".join(str(d) for d in spec.architecture.input_shape)
    return f"""# Triton model configuration, written by the deploy-anywhere exporter.
name: {json.dumps(name)}
platform: "onnxruntime_onnx"
default_model_filename: "{MODEL_ONNX}"
max_batch_size: {max_batch_size}
version_policy: {{ all {{ }} }}
input [
  {{
    name: "{INPUT_NAME}"
    data_type: TYPE_FP32
    dims: [ {dims} ]
  }}
]
output [
  {{
    name: "{PROBABILITIES_NAME}"
    data_type: TYPE_FP32
    dims: [ {spec.architecture.num_classes} ]
    label_filename: "{LABELS_FILE}"
  }},
  {{
    name: "{LABEL_NAME}"
    data_type: TYPE_INT64
    dims: [ 1 ]
    reshape: {{ shape: [ ] }}
  }}
]
dynamic_batching {{
  max_queue_delay_microseconds: {QUEUE_DELAY_US}
}}
instance_group [
  {{
    kind: KIND_CPU
    count: 1
  }}
]
model_warmup [
  {{
    name: "zeros"
    batch_size: 1
    inputs {{
      key: "{INPUT_NAME}"
      value {{
        data_type: TYPE_FP32
        dims: [ {dims} ]
        zero_data: true
      }}
    }}
  }}
]
"""


def labels_txt(spec: ModelSpec) -> str:
    return "".join(f"{label}\n" for label in spec.labels)
