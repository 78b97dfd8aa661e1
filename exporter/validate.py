"""Checks every exported graph passes before it is published; results go into manifest.json.

1. ``onnx.checker`` full check and strict shape inference (the outputs must infer to the
   signature's shapes, symbolic batch included).
2. Parity with the numpy trainer on a whole evaluation set: the largest absolute difference of
   probabilities must be <= ``PARITY_ATOL`` and every label identical.
3. The ONNX reference evaluator (``onnx.reference``), an independent implementation of the ops,
   agrees with onnxruntime on a sample of real inputs and on a batch of extreme ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx.reference import ReferenceEvaluator

from contracts import BATCH_DIM, INPUT_NAME, LABEL_NAME, PROBABILITIES_NAME
from exporter.errors import ValidationFailedError

PARITY_ATOL = 1e-5
REFERENCE_SAMPLE = 64
# Inputs outside the 0..255 contract still must not make the runtimes disagree (or crash).
EXTREME_VALUES = (0.0, 255.0, 1e6, -1e6)

Predictor = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class ParityResult:
    against: str
    images: int
    max_abs_diff: float
    label_mismatches: int
    atol: float = PARITY_ATOL

    @property
    def passed(self) -> bool:
        return self.max_abs_diff <= self.atol and self.label_mismatches == 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"passed": self.passed}


def check_graph(model: onnx.ModelProto) -> dict[str, str]:
    """Run the checker and strict shape inference; raise ValidationFailedError naming the problem."""
    try:
        onnx.checker.check_model(model, full_check=True)
        inferred = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as e:
        raise ValidationFailedError(f"the exported graph is not valid ONNX: {e}") from e
    shapes = {o.name: _dims(o) for o in inferred.graph.output}
    if shapes.get(LABEL_NAME) != [BATCH_DIM] or shapes.get(PROBABILITIES_NAME, [])[:1] != [BATCH_DIM]:
        raise ValidationFailedError(f"output shapes {shapes} do not follow the signature ([{BATCH_DIM}, ...])")
    return {"checker": "passed (full_check)", "shape_inference": "passed (strict)"}


def session(model: onnx.ModelProto | bytes | str) -> ort.InferenceSession:
    """A CPU session with one intra-op thread: checks run beside other work, and results must not vary."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    source = model.SerializeToString() if isinstance(model, onnx.ModelProto) else model
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def run(sess: ort.InferenceSession, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    probabilities, labels = sess.run([PROBABILITIES_NAME, LABEL_NAME], {INPUT_NAME: x.astype(np.float32, copy=False)})
    return probabilities, labels


def parity(sess: ort.InferenceSession, reference: Predictor, x: np.ndarray, *, against: str) -> ParityResult:
    """Compare onnxruntime's probabilities and labels with ``reference`` (probabilities) on ``x``."""
    probabilities, labels = run(sess, x)
    expected = np.asarray(reference(x), dtype=np.float32)
    return ParityResult(
        against=against,
        images=len(x),
        max_abs_diff=_max_abs_diff(probabilities, expected),
        label_mismatches=int(np.count_nonzero(labels != expected.argmax(axis=1))),
    )


def reference_agreement(model: onnx.ModelProto, sess: ort.InferenceSession, sample: np.ndarray) -> ParityResult:
    """onnxruntime vs the ONNX reference evaluator on ``sample`` plus a batch of extreme inputs."""
    x = np.concatenate([sample[:REFERENCE_SAMPLE], extreme_inputs(sample.shape[1:])]).astype(np.float32)
    evaluator = ReferenceEvaluator(model)
    expected_probabilities, expected_labels = evaluator.run([PROBABILITIES_NAME, LABEL_NAME], {INPUT_NAME: x})
    probabilities, labels = run(sess, x)
    return ParityResult(
        against="onnx.reference.ReferenceEvaluator",
        images=len(x),
        max_abs_diff=_max_abs_diff(probabilities, np.asarray(expected_probabilities)),
        label_mismatches=int(np.count_nonzero(labels != expected_labels)),
    )


def extreme_inputs(shape: tuple[int, ...]) -> np.ndarray:
    """All-black, all-white, huge positive and huge negative images."""
    return np.stack([np.full(shape, value, dtype=np.float32) for value in EXTREME_VALUES])


def accuracy(sess: ort.InferenceSession, x: np.ndarray, y: np.ndarray) -> float:
    _, labels = run(sess, x)
    return float(np.mean(labels == y))


def require(result: ParityResult) -> ParityResult:
    if not result.passed:
        raise ValidationFailedError(
            f"parity with {result.against} failed on {result.images} images: max |diff| of probabilities "
            f"{result.max_abs_diff:.3g} (allowed {result.atol:g}), {result.label_mismatches} different labels"
        )
    return result


def _max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    if a.shape != b.shape:
        return float("inf")
    # NaN on both sides counts as agreement; NaN on one side as infinitely far.
    same_nan = np.isnan(a) & np.isnan(b)
    diff = np.where(same_nan, 0.0, np.abs(a.astype(np.float64) - b.astype(np.float64)))
    return float(np.nan_to_num(diff, nan=np.inf).max(initial=0.0))


def _dims(value: onnx.ValueInfoProto) -> list[str | int]:
    return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]
