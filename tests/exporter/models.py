"""Small artifacts for exporter tests (random weights, any architecture), written through contracts."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from contracts import Architecture, LayerSpec, ModelSpec, save_artifact


def random_spec(
    input_shape: tuple[int, ...] = (28, 28),
    hidden: tuple[int, ...] = (16,),
    activation: str = "relu",
    classes: int = 10,
) -> ModelSpec:
    layers = tuple(LayerSpec(units=u, activation=activation) for u in hidden)  # type: ignore[arg-type]
    arch = Architecture(input_shape=input_shape, layers=(*layers, LayerSpec(units=classes, activation="linear")))
    return ModelSpec(architecture=arch, labels=tuple(str(i) for i in range(classes)))


def random_weights(spec: ModelSpec, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    weights = {}
    for name, shape in spec.architecture.parameter_shapes().items():
        scale = np.sqrt(2.0 / shape[0]) if len(shape) == 2 else 0.1
        weights[name] = (rng.standard_normal(shape) * scale).astype(np.float32)
    return weights


def save_random_artifact(path: Path, spec: ModelSpec | None = None, seed: int = 0) -> Path:
    spec = spec or random_spec()
    return save_artifact(path, spec, random_weights(spec, seed))
