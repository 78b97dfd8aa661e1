"""The high-level API: ``MLPClassifier`` with ``fit``/``predict``/``predict_proba``/``evaluate``/``save``/``load``.

Follows scikit-learn's conventions: ``__init__`` only stores hyper-parameters (validated in
``fit``), learned state ends in an underscore (``model_``, ``spec_``, ``history_``), ``fit``
returns ``self``. Inputs are always raw intensities; preprocessing is part of the model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from contracts import ModelSpec, load_artifact
from trainer.losses import softmax
from trainer.model import MLP, preprocess

_PREDICT_CHUNK = 4096  # bounds the memory of predict on large inputs


class NotFittedError(RuntimeError):
    """``predict``/``evaluate``/``save`` before ``fit`` or ``load``."""


class MLPClassifier:
    """A dense classifier trained with numpy. See ``docs/trainer.md`` for every hyper-parameter."""

    def __init__(
        self,
        hidden: tuple[int, ...] = (256, 128),
        activation: str = "relu",
        output_activation: str = "linear",
        optimizer: str = "adam",
        lr: float = 1e-3,
        batch_size: int = 128,
        epochs: int = 10,
        seed: int = 0,
        weight_decay: float = 0.0,
        momentum: float = 0.9,
        val_split: float = 0.1,
        patience: int | None = None,
        init: str = "auto",
        verbose: bool = False,
    ) -> None:
        self.hidden = hidden
        self.activation = activation
        self.output_activation = output_activation
        self.optimizer = optimizer
        self.lr = lr
        self.batch_size = batch_size
        self.epochs = epochs
        self.seed = seed
        self.weight_decay = weight_decay
        self.momentum = momentum
        self.val_split = val_split
        self.patience = patience
        self.init = init
        self.verbose = verbose

    # -- inference -------------------------------------------------------------------------
    def predict_proba(self, x_raw: np.ndarray) -> np.ndarray:
        """Class probabilities float32 [N, classes] for raw inputs [N, *input_shape]."""
        model, spec = self._fitted()
        x_raw = self._check_input(x_raw, spec)
        chunks = [
            softmax(model.logits(preprocess(x_raw[i : i + _PREDICT_CHUNK], spec.preprocessing)))
            for i in range(0, len(x_raw), _PREDICT_CHUNK)
        ]
        return np.concatenate(chunks) if chunks else np.zeros((0, spec.architecture.num_classes), np.float32)

    def predict(self, x_raw: np.ndarray) -> np.ndarray:
        """Class ids int64 [N] (argmax of ``predict_proba``)."""
        return self.predict_proba(x_raw).argmax(axis=1).astype(np.int64)

    # -- persistence -----------------------------------------------------------------------
    @classmethod
    def load(cls, artifact_dir: str | Path) -> MLPClassifier:
        """Load an artifact written by ``save`` (raises ``contracts.ArtifactError`` if it is broken)."""
        spec, weights = load_artifact(artifact_dir)
        clf = cls(**_hyperparameters(spec))
        clf.spec_ = spec
        clf.model_ = MLP(spec.architecture, weights)
        return clf

    # -- helpers ---------------------------------------------------------------------------
    def _fitted(self) -> tuple[MLP, ModelSpec]:
        if not hasattr(self, "model_"):
            raise NotFittedError("this MLPClassifier is not fitted yet: call fit() or MLPClassifier.load()")
        return self.model_, self.spec_

    @staticmethod
    def _check_input(x_raw: np.ndarray, spec: ModelSpec) -> np.ndarray:
        x_raw = np.asarray(x_raw)
        expected = spec.architecture.input_shape
        if x_raw.ndim == len(expected):  # a single sample
            x_raw = x_raw[None]
        if tuple(x_raw.shape[1:]) != expected:
            raise ValueError(f"inputs have shape {x_raw.shape}, expected [N, {', '.join(map(str, expected))}]")
        return x_raw


def _hyperparameters(spec: ModelSpec) -> dict[str, Any]:
    layers = spec.architecture.layers
    t = spec.training
    return {
        "hidden": tuple(layer.units for layer in layers[:-1]),
        "activation": layers[0].activation if len(layers) > 1 else "relu",
        "output_activation": layers[-1].activation,
        "optimizer": t.optimizer,
        "lr": t.lr,
        "batch_size": t.batch_size,
        "epochs": t.epochs,
        "seed": t.seed,
        "weight_decay": t.weight_decay,
        "momentum": t.momentum,
        "val_split": t.val_split,
        "patience": t.patience,
    }
