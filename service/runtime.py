"""One loaded model version: an onnxruntime session plus the signature read from the model itself.

Works for our exported models (``contracts.signature``: input ``images`` [batch, H, W], outputs
``probabilities`` and ``label``, labels in the metadata) and for foreign ONNX models (any input
and output names, e.g. ``[batch, 784]`` from ``torch.onnx.export``; labels default to class ids).
An ``InferenceSession`` may be run from several threads at once, so one runtime serves all.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from contracts import METADATA_KEYS, PROBABILITIES_NAME
from service.errors import InvalidInputError
from service.optimize import optimized_copy
from service.protocols.binary import datatype_of

# onnxruntime element type -> numpy dtype; the V2 datatype string comes from the one V2 table
_ORT_TYPES: dict[str, np.dtype] = {
    f"tensor({name})": np.dtype(dtype)
    for name, dtype in {
        "float": np.float32,
        "double": np.float64,
        "float16": np.float16,
        "int8": np.int8,
        "int16": np.int16,
        "int32": np.int32,
        "int64": np.int64,
        "uint8": np.uint8,
        "uint16": np.uint16,
        "uint32": np.uint32,
        "uint64": np.uint64,
        "bool": np.bool_,
    }.items()
}


class ModelLoadError(Exception):
    """The model file cannot be loaded or fails its warm-up inference."""


@dataclass(frozen=True)
class TensorSpec:
    """A model input or output; ``None`` in ``shape`` is a variable dimension (the batch)."""

    name: str
    dtype: np.dtype
    datatype: str
    shape: tuple[int | None, ...]

    @property
    def wire_shape(self) -> list[int]:
        """The shape as both protocols print it: -1 for a variable dimension."""
        return [-1 if d is None else d for d in self.shape]

    def fits(self, shape: tuple[int, ...]) -> bool:
        """An array of ``shape`` has this tensor's rank and fixed dimensions."""
        return len(shape) == len(self.shape) and all(
            w is None or g == w for g, w in zip(shape, self.shape, strict=True)
        )

    def describe(self) -> str:
        dims = ", ".join(
            "batch" if i == 0 and d is None else ("?" if d is None else str(d)) for i, d in enumerate(self.shape)
        )
        return f"[{dims}]"


@dataclass(frozen=True)
class RuntimeOptions:
    intra_op_threads: int = 1
    inter_op_threads: int = 1


def _tensor_spec(node: ort.NodeArg) -> TensorSpec:
    if node.type not in _ORT_TYPES:
        raise ModelLoadError(f"tensor {node.name!r} has type {node.type}, which the service cannot serve")
    dtype = _ORT_TYPES[node.type]
    shape = tuple(d if isinstance(d, int) and d > 0 else None for d in (node.shape or []))
    return TensorSpec(node.name, dtype, datatype_of(dtype), shape)


def _session_options(options: RuntimeOptions) -> ort.SessionOptions:
    so = ort.SessionOptions()
    so.intra_op_num_threads = options.intra_op_threads
    so.inter_op_num_threads = options.inter_op_threads
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3  # errors only: ORT warnings are not the service's log format
    if options.intra_op_threads == 1:
        # one thread: nothing to spin for; spinning only burns the core the event loop needs
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return so


class ModelRuntime:
    """An onnxruntime session for one model file, with its signature, labels and metadata."""

    def __init__(self, path: Path, options: RuntimeOptions = RuntimeOptions()) -> None:
        self.path = path
        try:
            with optimized_copy(path) as optimized:
                so = _session_options(options)
                if optimized is not None:  # already optimised in a child process: only parse it here
                    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
                source = optimized or path
                self._session = ort.InferenceSession(str(source), so, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types for bad files
            raise ModelLoadError(f"{path}: onnxruntime cannot load it: {e}") from e
        if not self._session.get_inputs():
            raise ModelLoadError(f"{path}: the model has no inputs")
        self.inputs = tuple(_tensor_spec(n) for n in self._session.get_inputs())
        self.outputs = tuple(_tensor_spec(n) for n in self._session.get_outputs())
        self.input_by_name = {t.name: t for t in self.inputs}
        self.output_names = tuple(t.name for t in self.outputs)
        self.output_datatypes = {t.name: t.datatype for t in self.outputs}  # V2 datatype by output name
        self.metadata: dict[str, str] = dict(self._session.get_modelmeta().custom_metadata_map)
        self.classes_output = self._classes_output()
        self.has_labels = False  # class names from the model's metadata (else labels are class ids)
        self.labels = self._labels()
        self.row_seconds = math.inf  # one-row inference time, measured by warmup()
        self._all_outputs = list(self.output_names)
        self._run = _binding_run(self._session)

    def _classes_output(self) -> TensorSpec | None:
        """The [batch, classes] float output: ``probabilities`` for our models, else the first one."""
        ranked = [t for t in self.outputs if len(t.shape) == 2 and t.dtype.kind == "f"]
        ours = [t for t in ranked if t.name == PROBABILITIES_NAME]
        return (ours or ranked or [None])[0]  # type: ignore[list-item]

    def _labels(self) -> tuple[str, ...]:
        raw = self.metadata.get(METADATA_KEYS.LABELS)
        if raw:
            try:
                labels = json.loads(raw)
                if isinstance(labels, list):
                    self.has_labels = True
                    return tuple(str(label) for label in labels)
            except json.JSONDecodeError:
                pass  # a foreign model with a non-JSON "labels" entry: fall back to class ids
        classes = self.classes_output.shape[1] if self.classes_output else None
        return tuple(str(i) for i in range(classes or 0))

    @property
    def image_size(self) -> tuple[int, int] | None:
        """(H, W) when the model takes one grayscale image: [b, H, W], [b, 1, H, W], [b, H, W, 1] or a
        flattened square [b, H*W]; else None."""
        if len(self.inputs) != 1 or self.inputs[0].dtype.kind != "f":
            return None
        shape = self.inputs[0].shape[1:]
        if any(d is None for d in shape):
            return None
        dims = [int(d or 0) for d in shape]
        if len(dims) == 2:
            return dims[0], dims[1]
        if len(dims) == 3 and 1 in (dims[0], dims[2]):
            return (dims[1], dims[2]) if dims[0] == 1 else (dims[0], dims[1])
        if len(dims) == 1 and math.isqrt(dims[0]) ** 2 == dims[0]:
            side = math.isqrt(dims[0])
            return side, side
        return None

    def check_input(self, spec: TensorSpec, array: np.ndarray) -> None:
        """Raise InvalidInputError unless ``array`` matches the input's rank and fixed dimensions."""
        if not spec.fits(array.shape):
            raise InvalidInputError(
                f"input {spec.name!r} has shape {list(array.shape)}, expected {spec.describe()}"
                f" ({len(spec.shape)} dimensions, the first one the batch)"
            )

    def run(self, feeds: Mapping[str, np.ndarray], output_names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """Run the session; ``output_names`` None means every output."""
        names = list(output_names) if output_names else self._all_outputs
        try:
            results = self._run(names, feeds if type(feeds) is dict else dict(feeds), None)
        except ort.capi.onnxruntime_pybind11_state.InvalidArgument as e:
            raise InvalidInputError(f"the model rejected the input: {e}") from e
        return dict(zip(names, results, strict=True))

    def warmup(self) -> None:
        """Run one real inference on a zero batch of one, so the first client does not pay for it."""
        feeds = {t.name: np.zeros([1 if d is None else d for d in t.shape], dtype=t.dtype) for t in self.inputs}
        try:
            outputs = self.run(feeds)
        except Exception as e:
            raise ModelLoadError(f"{self.path}: warm-up inference failed: {e}") from e
        for name, value in outputs.items():
            if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
                raise ModelLoadError(f"{self.path}: warm-up output {name!r} contains NaN or Inf")
        self.row_seconds = _fastest(lambda: self.run(feeds), repeats=50, budget=0.1)


def _binding_run(session: ort.InferenceSession) -> Callable[..., list[np.ndarray]]:
    """``session.run`` without its Python wrapper: the wrapper re-checks on every call what never
    changes for us (input names present, WebGPU graph capture off, OrtValue ownership) and costs
    ~5-7 us of a ~30 us one-image run. Both codecs refuse a request that lacks a model input (400)
    before it gets here; the binding still checks dtypes and shapes (InvalidArgument -> 400)."""
    binding = getattr(session, "_sess", None)
    if binding is None or not callable(getattr(binding, "run", None)):  # another onnxruntime layout
        return lambda names, feeds, options: session.run(names, feeds, options)
    return binding.run


def _fastest(run: Callable[[], object], repeats: int, budget: float) -> float:
    """Best-of-n wall time of ``run``, within ``budget`` seconds: what one small request costs when
    nothing else competes (on a busy machine many runs are needed to see one unpreempted)."""
    best, deadline = math.inf, time.perf_counter() + budget
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
        if start > deadline:
            break
    return best
