"""The high-level API: ``MLPClassifier`` with ``fit``/``predict``/``predict_proba``/``evaluate``/``save``/``load``.

Follows scikit-learn's conventions: ``__init__`` only stores hyper-parameters (validated in
``fit``), learned state ends in an underscore (``model_``, ``spec_``, ``history_``), ``fit``
returns ``self``. Inputs are always raw intensities; preprocessing is part of the model.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from pydantic import ValidationError

from contracts import (
    ArtifactError,
    DatasetInfo,
    EpochMetrics,
    ModelSpec,
    Preprocessing,
    TrainingConfig,
    load_artifact,
    save_artifact,
)
from trainer.data import Dataset, make_dataset
from trainer.losses import softmax
from trainer.model import MLP, preprocess
from trainer.spec import architecture_for, hyperparameters, preprocessing_for
from trainer.state import OPTIMIZER_NPZ, load_optimizer_state, optimizer_state_bytes
from trainer.train import EpochCallback, Trainer, evaluate, split_validation

_PREDICT_CHUNK = 4096  # bounds the memory of predict on large inputs


class NotFittedError(RuntimeError):
    """``predict``/``evaluate``/``save`` before ``fit`` or ``load``."""


class MLPClassifier:
    """A dense classifier trained with numpy. See ``docs/trainer.md`` for every hyper-parameter."""

    model_: MLP
    spec_: ModelSpec
    history_: list[EpochMetrics]
    optimizer_state_: dict[str, np.ndarray] | None
    stopped_early_: bool

    def __init__(
        self,
        hidden: tuple[int, ...] = (256, 128),
        activation: str = "relu",
        output_activation: str = "linear",
        optimizer: str = "adam",
        lr: float = 1e-3,
        lr_decay: float = 0.8,
        batch_size: int = 128,
        epochs: int = 10,
        seed: int = 0,
        weight_decay: float = 0.0,
        momentum: float = 0.9,
        val_split: float = 0.1,
        patience: int | None = None,
        init: str = "auto",
        threads: int | None = 1,
        verbose: bool = False,
    ) -> None:
        self.hidden = hidden
        self.activation = activation
        self.output_activation = output_activation
        self.optimizer = optimizer
        self.lr = lr
        self.lr_decay = lr_decay
        self.batch_size = batch_size
        self.epochs = epochs
        self.seed = seed
        self.weight_decay = weight_decay
        self.momentum = momentum
        self.val_split = val_split
        self.patience = patience
        self.init = init
        self.threads = threads
        self.verbose = verbose

    # -- training --------------------------------------------------------------------------
    def fit(
        self,
        x: np.ndarray | Dataset,
        y: np.ndarray | None = None,
        labels: tuple[str, ...] | None = None,
        *,
        resume: bool = False,
        callbacks: tuple[EpochCallback, ...] = (),
    ) -> MLPClassifier:
        """Train on raw inputs ``x`` [N, *input_shape] and class ids ``y`` (or a ``Dataset``).

        With ``resume`` a fitted (or loaded) classifier trains ``epochs`` more epochs from its
        weights and optimizer state, continuing its epoch count and history.
        """
        data = x if isinstance(x, Dataset) else make_dataset(x, np.asarray(y), labels)
        config = self._training_config()
        if resume and hasattr(self, "model_"):
            model, prep, history, state = self._resume_state(data)
        else:
            arch = architecture_for(self, data.input_shape, len(data.labels))
            model, prep, history, state = MLP(arch, init=self.init, seed=self.seed), preprocessing_for(data.x), (), None
        train, val = split_validation(data, config.val_split, config.seed)
        if config.patience is not None and val is None:
            raise ValueError("early stopping (patience) needs a validation split: set val_split > 0")
        trainer = Trainer(model, config, prep, history=history, optimizer_state=state, progress=self.verbose,
                          callbacks=callbacks, threads=self.threads)  # fmt: skip
        result = trainer.fit(train, val)
        self.model_, self.history_, self.optimizer_state_ = model, result.history, trainer.optimizer.state_dict()
        self.stopped_early_ = result.stopped_early
        dataset = DatasetInfo(name=data.name, sha256=data.fingerprint(), num_train=len(train),
                              num_val=len(val) if val is not None else 0)  # fmt: skip
        self.spec_ = ModelSpec(architecture=model.architecture, labels=data.labels, preprocessing=prep,
                               training=config, metrics=tuple(result.history), best_epoch=result.best_epoch,
                               dataset=dataset)  # fmt: skip
        return self

    def _training_config(self) -> TrainingConfig:
        settings = {k: getattr(self, k) for k in TrainingConfig.model_fields if hasattr(self, k)}
        try:
            return TrainingConfig.model_validate(settings)
        except ValidationError as e:
            problems = "; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors())
            raise ValueError(f"invalid hyper-parameters: {problems}") from None

    def _resume_state(
        self, data: Dataset
    ) -> tuple[MLP, Preprocessing, tuple[EpochMetrics, ...], Mapping[str, np.ndarray] | None]:
        arch = self.spec_.architecture
        if data.input_shape != arch.input_shape or len(data.labels) != arch.num_classes:
            raise ValueError(
                f"cannot resume: the model takes inputs {arch.input_shape} with {arch.num_classes} classes, "
                f"the data has {data.input_shape} with {len(data.labels)}"
            )
        state = getattr(self, "optimizer_state_", None)
        if state is not None and self.spec_.training.optimizer != self.optimizer:
            state = None  # another optimizer's moments mean nothing to this one
        return self.model_, self.spec_.preprocessing, tuple(self.spec_.metrics), state

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

    def evaluate(self, x_raw: np.ndarray, y: np.ndarray) -> dict[str, float]:
        """``{"loss": mean cross-entropy, "accuracy": fraction correct}`` on raw inputs."""
        model, spec = self._fitted()
        x_raw, y = self._check_input(x_raw, spec), np.asarray(y, dtype=np.int64)
        if len(y) != len(x_raw) or len(y) == 0:
            raise ValueError(f"{len(x_raw)} inputs but {len(y)} labels (expected one label per input, at least one)")
        loss, accuracy = evaluate(model, spec.preprocessing, x_raw, y)
        return {"loss": loss, "accuracy": accuracy}

    # -- persistence -----------------------------------------------------------------------
    def save(
        self,
        path: str | Path,
        *,
        overwrite: bool = False,
        test_metrics: Mapping[str, float] | None = None,
        num_test: int = 0,
        extra_files: Mapping[str, bytes] | None = None,
    ) -> Path:
        """Write the artifact atomically (``model.json``, ``weights.npz``, ``optimizer.npz``, extra files)."""
        model, spec = self._fitted()
        if test_metrics is not None:
            dataset = spec.dataset.model_copy(update={"num_test": num_test}) if spec.dataset else None
            spec = spec.model_copy(update={"test_metrics": dict(test_metrics), "dataset": dataset})
            self.spec_ = spec
        files = dict(extra_files or {})
        state = getattr(self, "optimizer_state_", None)
        if state is not None:
            files[OPTIMIZER_NPZ] = optimizer_state_bytes(state)
        return save_artifact(path, spec, model.state_dict(), files, overwrite=overwrite)

    @classmethod
    def load(cls, artifact_dir: str | Path) -> MLPClassifier:
        """Load an artifact written by ``save`` (raises ``contracts.ArtifactError`` if it is broken)."""
        spec, weights = load_artifact(artifact_dir)
        clf = cls(**hyperparameters(spec))
        clf.spec_, clf.history_ = spec, list(spec.metrics)
        clf.model_ = MLP(spec.architecture, weights)
        clf.optimizer_state_ = load_optimizer_state(Path(artifact_dir), clf.model_.flat_params.size, spec)
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


__all__ = ["ArtifactError", "MLPClassifier", "NotFittedError"]
