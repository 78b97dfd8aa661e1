"""Trainer -> exporter contract: a trained model is a directory readable without trainer code.

    <artifact>/model.json    ModelSpec below (architecture, labels, preprocessing, config, metrics)
    <artifact>/weights.npz   float32 arrays named ``dense_<i>/kernel`` [fan_in, units] and
                             ``dense_<i>/bias`` [units]; loaded with ``allow_pickle=False``

A dense layer computes ``activation(x @ kernel + bias)``; the input is flattened first and
preprocessed as ``(x * scale - mean) / std`` from raw intensities.
"""

from __future__ import annotations

import io
import json
import math
import zipfile
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from contracts.atomic import atomic_directory

ARTIFACT_SCHEMA_VERSION = 1
MODEL_JSON = "model.json"
WEIGHTS_NPZ = "weights.npz"
ACTIVATIONS = ("relu", "tanh", "sigmoid", "linear")

Activation = Literal["relu", "tanh", "sigmoid", "linear"]


class ArtifactError(ValueError):
    """A model artifact is missing, unreadable or inconsistent. The message says which file."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LayerSpec(_Strict):
    units: int = Field(gt=0)
    activation: Activation = "relu"


class Architecture(_Strict):
    input_shape: tuple[int, ...] = Field(min_length=1)
    layers: tuple[LayerSpec, ...] = Field(min_length=1)

    @field_validator("input_shape")
    @classmethod
    def _positive_dims(cls, shape: tuple[int, ...]) -> tuple[int, ...]:
        if any(d <= 0 for d in shape):
            raise ValueError(f"input_shape dimensions must be positive, got {shape}")
        return shape

    @property
    def input_size(self) -> int:
        return math.prod(self.input_shape)

    @property
    def num_classes(self) -> int:
        return self.layers[-1].units

    def parameter_shapes(self) -> dict[str, tuple[int, ...]]:
        shapes: dict[str, tuple[int, ...]] = {}
        fan_in = self.input_size
        for i, layer in enumerate(self.layers):
            shapes[param_name(i, "kernel")] = (fan_in, layer.units)
            shapes[param_name(i, "bias")] = (layer.units,)
            fan_in = layer.units
        return shapes


class Preprocessing(_Strict):
    """``x_model = (x_raw * scale - mean) / std``, applied inside the model."""

    scale: float = 1.0 / 255.0
    mean: float = 0.0
    std: float = Field(default=1.0, gt=0)


class TrainingConfig(_Strict):
    optimizer: Literal["sgd", "momentum", "adam"] = "adam"
    lr: float = Field(default=1e-3, gt=0)
    # per-epoch multiplicative learning-rate decay; 1.0 (constant) keeps older model.json files' meaning
    lr_decay: float = Field(default=1.0, gt=0, le=1, description="epoch e trains with lr * lr_decay ** (e - 1)")
    batch_size: int = Field(default=128, gt=0)
    epochs: int = Field(default=10, gt=0)
    seed: int = 0
    weight_decay: float = Field(default=0.0, ge=0)
    momentum: float = Field(default=0.9, ge=0, lt=1)
    val_split: float = Field(default=0.1, ge=0, lt=1)
    patience: int | None = None


class EpochMetrics(_Strict):
    epoch: int
    train_loss: float
    train_accuracy: float
    val_loss: float | None = None
    val_accuracy: float | None = None
    seconds: float = 0.0


class DatasetInfo(_Strict):
    name: str
    sha256: str = Field(description="fingerprint of the training inputs and labels")
    num_train: int = 0
    num_val: int = 0
    num_test: int = 0


class ModelSpec(_Strict):
    """The content of ``model.json``."""

    schema_version: int = ARTIFACT_SCHEMA_VERSION
    architecture: Architecture
    labels: tuple[str, ...]
    preprocessing: Preprocessing = Preprocessing()
    training: TrainingConfig = TrainingConfig()
    metrics: tuple[EpochMetrics, ...] = ()
    best_epoch: int | None = None
    test_metrics: dict[str, float] = Field(default_factory=dict)
    dataset: DatasetInfo | None = None

    @field_validator("schema_version")
    @classmethod
    def _known_schema(cls, v: int) -> int:
        if v != ARTIFACT_SCHEMA_VERSION:
            raise ValueError(f"schema_version {v} is not supported (expected {ARTIFACT_SCHEMA_VERSION})")
        return v

    def model_post_init(self, _context: object) -> None:
        if len(self.labels) != self.architecture.num_classes:
            raise ValueError(f"{len(self.labels)} labels for an output layer of {self.architecture.num_classes} units")


def param_name(layer_index: int, kind: Literal["kernel", "bias"]) -> str:
    return f"dense_{layer_index}/{kind}"


def save_artifact(
    path: str | Path,
    spec: ModelSpec,
    weights: dict[str, np.ndarray],
    extra_files: dict[str, bytes] | None = None,
    *,
    overwrite: bool = False,
) -> Path:
    """Write the artifact directory atomically; ``extra_files`` (e.g. plots) go beside it."""
    _check_weights(spec, weights, source="weights")
    buf = io.BytesIO()
    arrays: dict[str, Any] = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in weights.items()}
    np.savez(buf, **arrays)
    with atomic_directory(path, overwrite=overwrite) as tmp:
        (tmp / MODEL_JSON).write_text(spec.model_dump_json(indent=2) + "\n", encoding="utf-8")
        (tmp / WEIGHTS_NPZ).write_bytes(buf.getvalue())
        for name, data in (extra_files or {}).items():
            (tmp / name).write_bytes(data)
    return Path(path)


def load_artifact(path: str | Path) -> tuple[ModelSpec, dict[str, np.ndarray]]:
    """Read and cross-check an artifact; raise ArtifactError naming what is wrong."""
    root = Path(path)
    if not root.is_dir():
        expected = f"a folder with {MODEL_JSON} and {WEIGHTS_NPZ}"
        raise ArtifactError(f"{root}: no such artifact directory (expected {expected})")
    spec = _load_spec(root / MODEL_JSON)
    weights = _load_weights(root / WEIGHTS_NPZ)
    _check_weights(spec, weights, source=str(root / WEIGHTS_NPZ))
    return spec, weights


def _load_spec(path: Path) -> ModelSpec:
    if not path.is_file():
        raise ArtifactError(f"{path}: missing (every artifact has a {MODEL_JSON})")
    try:
        return ModelSpec.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ArtifactError(f"{path}: not valid JSON ({e})") from e
    except ValidationError as e:
        raise ArtifactError(f"{path}: does not match the artifact schema: {e}") from e


def _load_weights(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise ArtifactError(f"{path}: missing (every artifact has a {WEIGHTS_NPZ})")
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
        raise ArtifactError(f"{path}: corrupt or truncated weights file ({e})") from e


def _check_weights(spec: ModelSpec, weights: dict[str, np.ndarray], *, source: str) -> None:
    expected = spec.architecture.parameter_shapes()
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    if missing or unexpected:
        raise ArtifactError(
            f"{source}: parameters disagree with {MODEL_JSON}: missing {missing}, unexpected {unexpected}"
        )
    for name, shape in expected.items():
        array = weights[name]
        if tuple(array.shape) != shape:
            raise ArtifactError(f"{source}: {name} has shape {tuple(array.shape)}, {MODEL_JSON} says {shape}")
        if not np.issubdtype(array.dtype, np.floating):
            raise ArtifactError(f"{source}: {name} has dtype {array.dtype}, expected float32")
        if not np.all(np.isfinite(array)):
            raise ArtifactError(f"{source}: {name} contains NaN or Inf")
