"""The images an export validates on: the evaluation set (parity, accuracy) and calibration images.

Priority: a dataset the user names (its test split evaluates, its train split calibrates); the
built-in MNIST when the model's input is MNIST-shaped; otherwise seeded random 0..255 images,
which still prove parity but cannot measure accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from contracts import ModelSpec
from exporter.errors import ArtifactInvalidError

MNIST_SHAPE = (28, 28)
CALIBRATION_IMAGES = 1000
RANDOM_IMAGES = 1000


@dataclass(frozen=True)
class EvalData:
    name: str
    x: np.ndarray  # raw images [N, *input_shape]
    y: np.ndarray | None  # class ids, None when unknown
    calibration: np.ndarray  # raw training images for static quantization


def evaluation_data(spec: ModelSpec, dataset: str | Path | None = None, *, seed: int = 0) -> EvalData:
    shape = spec.architecture.input_shape
    if dataset is not None:
        return _from_dataset(spec, Path(dataset), seed)
    if shape == MNIST_SHAPE and spec.architecture.num_classes == 10:
        return _from_dataset(spec, None, seed)
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(RANDOM_IMAGES, *shape)).astype(np.float32)
    calibration = rng.integers(0, 256, size=(CALIBRATION_IMAGES, *shape)).astype(np.float32)
    return EvalData(f"{RANDOM_IMAGES} random images (seed {seed}), no labels", x, None, calibration)


def _from_dataset(spec: ModelSpec, path: Path | None, seed: int) -> EvalData:
    from trainer import DataError, load_splits

    try:
        train, test = load_splits(path)
    except DataError as e:
        raise ArtifactInvalidError(f"evaluation data: {e}") from e
    source = "MNIST (built in)" if path is None else str(path)
    if test is None:
        raise ArtifactInvalidError(f"{source}: has no test split to validate the export on")
    if test.input_shape != spec.architecture.input_shape:
        raise ArtifactInvalidError(
            f"{source}: images have shape {list(test.input_shape)}, the model expects "
            f"{list(spec.architecture.input_shape)}"
        )
    picks = np.random.default_rng(seed).choice(len(train), size=min(CALIBRATION_IMAGES, len(train)), replace=False)
    return EvalData(f"{source} test split", test.x, test.y, train.x[np.sort(picks)])
