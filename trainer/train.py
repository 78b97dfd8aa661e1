"""The training loop: seeded minibatches, validation, early stopping with best-weights restore, resume.

``Trainer`` is model-agnostic within the MLP family: it needs an ``MLP``, a
``contracts.TrainingConfig`` and the model's ``contracts.Preprocessing``. Logging, plots and
saving live outside it (callbacks and the CLI).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from contracts import EpochMetrics, Preprocessing, TrainingConfig
from trainer.batches import Batches, epoch_rng
from trainer.data import Dataset
from trainer.losses import SoftmaxCrossEntropy
from trainer.model import MLP, preprocess
from trainer.optim import Optimizer, make_optimizer
from trainer.progress import Progress
from trainer.threads import blas_threads

_EVAL_CHUNK = 4096
_PARALLEL_GEMM_MACS = 4_000_000  # multiply-adds per product below which one BLAS thread is faster

EpochCallback = Callable[[EpochMetrics], None]


@dataclass
class TrainResult:
    history: list[EpochMetrics] = field(default_factory=list)
    best_epoch: int | None = None
    stopped_early: bool = False


def split_validation(data: Dataset, val_split: float, seed: int) -> tuple[Dataset, Dataset | None]:
    """Hold out a seeded random ``val_split`` fraction (at least one sample each side) as validation."""
    n_val = int(round(len(data) * val_split))
    if val_split <= 0 or n_val == 0:
        return data, None
    if n_val >= len(data):
        raise ValueError(f"validation split {val_split} leaves no training samples out of {len(data)}")
    order = np.random.default_rng([seed, 2]).permutation(len(data))
    train_idx, val_idx = np.sort(order[n_val:]), np.sort(order[:n_val])  # sorted: sequential memory access

    def part(idx: np.ndarray) -> Dataset:
        return Dataset(data.x[idx], data.y[idx], data.labels, data.name)

    return part(train_idx), part(val_idx)


class Trainer:
    """Runs epochs of ``config`` on ``model``; ``optimizer_state`` and ``history`` continue a previous run."""

    def __init__(
        self,
        model: MLP,
        config: TrainingConfig,
        preprocessing: Preprocessing,
        *,
        history: tuple[EpochMetrics, ...] = (),
        optimizer_state: Mapping[str, np.ndarray] | None = None,
        progress: bool = False,
        callbacks: tuple[EpochCallback, ...] = (),
        threads: int | None = 1,
    ) -> None:
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be a positive integer, got {threads}")
        self.model, self.config, self.prep, self.threads = model, config, preprocessing, threads
        self.loss = SoftmaxCrossEntropy()
        self.optimizer: Optimizer = make_optimizer(
            config.optimizer,
            {"all": model.flat_params},
            lr=config.lr,
            weight_decay=config.weight_decay,
            momentum=config.momentum,
            # one thread: right after the products OpenBLAS's threads still spin on the other core,
            # and a second update thread measured slower (Adam step 148 -> 224 us on the MLP)
            workers=1,
        )
        if optimizer_state is not None:
            self.optimizer.load_state_dict(optimizer_state)
        self.history = list(history)
        self.progress, self.callbacks = progress, callbacks

    def fit(self, train: Dataset, val: Dataset | None = None) -> TrainResult:
        """Train ``config.epochs`` more epochs; with ``patience`` and ``val``, stop early and keep the best weights."""
        with blas_threads(self.blas_threads()):
            return self._fit(train, val)

    def blas_threads(self) -> int | None:
        """``threads``, except 1 when every layer's product is small (the seed model): waking BLAS
        threads then costs more than they save. Depends on the architecture only, never the load."""
        if self.threads is None or self.threads == 1:
            return self.threads
        shapes = self.model.architecture.parameter_shapes().values()
        largest = max(self.config.batch_size * s[0] * s[1] for s in shapes if len(s) == 2)
        return self.threads if largest >= _PARALLEL_GEMM_MACS else 1

    def _fit(self, train: Dataset, val: Dataset | None) -> TrainResult:
        batches = Batches(train.x, train.y, self.config.batch_size, self.prep)
        result = TrainResult(history=self.history)
        best_loss, best_epoch = self._best_so_far()
        best_params = self.model.flat_params.copy()
        start = len(self.history)
        for epoch in range(start + 1, start + self.config.epochs + 1):
            metrics = self._epoch(batches, epoch, val)
            result.history.append(metrics)
            for callback in self.callbacks:
                callback(metrics)
            if metrics.val_loss is not None and metrics.val_loss < best_loss:
                best_loss, best_epoch = metrics.val_loss, epoch
                np.copyto(best_params, self.model.flat_params)
            if self._should_stop(epoch, best_epoch):
                result.stopped_early = True
                break
        if self.config.patience is not None and best_epoch is not None and best_epoch > start:
            np.copyto(self.model.flat_params, best_params)  # restore the best epoch's weights
        result.best_epoch = best_epoch
        return result

    def _best_so_far(self) -> tuple[float, int | None]:
        losses = [(m.val_loss, m.epoch) for m in self.history if m.val_loss is not None]
        return min(losses) if losses else (float("inf"), None)

    def _should_stop(self, epoch: int, best_epoch: int | None) -> bool:
        patience = self.config.patience
        return patience is not None and best_epoch is not None and epoch - best_epoch >= patience

    def _epoch(self, batches: Batches, epoch: int, val: Dataset | None) -> EpochMetrics:
        started = time.perf_counter()
        with Progress(len(batches), f"epoch {epoch}", enabled=self.progress) as bar:
            train_loss, train_acc = self.train_epoch(batches, epoch, bar.update if self.progress else None)
            seconds = time.perf_counter() - started
            val_loss, val_acc = self.evaluate(val.x, val.y) if val is not None else (None, None)
            bar.finish(train_loss, train_acc, val_loss, val_acc)
        return EpochMetrics(
            epoch=epoch,
            train_loss=train_loss,
            train_accuracy=train_acc,
            val_loss=val_loss,
            val_accuracy=val_acc,
            seconds=round(seconds, 4),
        )

    def train_epoch(
        self, batches: Batches, epoch: int, on_batch: Callable[[float, float], None] | None = None
    ) -> tuple[float, float]:
        """One pass over ``batches`` in the order of ``epoch``; returns (mean loss, accuracy).

        The per-sample loss terms and predictions of the forward passes are kept in epoch-long
        buffers and totalled once at the end: scoring each step cost more numpy calls than the
        seed model's whole update. ``on_batch`` (a progress bar) gets running figures per step.
        """
        n = len(batches.y)
        log_sums, targets = np.empty(n, np.float64), np.empty(n, np.float64)
        predictions = np.empty(n, np.intp)
        # a function of the epoch number alone, so a resumed run continues the same schedule
        self.optimizer.lr = self.config.lr * self.config.lr_decay ** (epoch - 1)
        forward, backward, step, loss = self.model.forward, self.model.backward, self.optimizer.step, self.loss
        grads = {"all": self.model.flat_grads}
        start, running_loss, running_correct = 0, 0.0, 0
        with np.errstate(over="ignore"):  # see SoftmaxCrossEntropy.terms; divergence is caught below
            for xb, yb in batches.epoch(epoch_rng(self.config.seed, epoch)):
                end = start + len(yb)
                log_sums[start:end], targets[start:end] = loss.terms(forward(xb), yb)
                predictions[start:end] = loss.predictions
                backward(loss.backward())
                step(grads)
                if on_batch is not None:
                    batch = slice(start, end)
                    batch_loss, batch_correct = _totals(log_sums[batch], targets[batch], predictions[batch], yb)
                    running_loss, running_correct = running_loss + batch_loss, running_correct + batch_correct
                    on_batch(running_loss / end, running_correct / end)
                start = end
        total_loss, correct = _totals(log_sums, targets, predictions, batches.labels)
        mean_loss, accuracy = total_loss / n, correct / n
        if not math.isfinite(mean_loss):
            raise FloatingPointError(f"loss became {mean_loss} in epoch {epoch}: lower the learning rate")
        return mean_loss, accuracy

    def evaluate(self, x_raw: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        """(mean cross-entropy, accuracy) on raw inputs."""
        return evaluate(self.model, self.prep, x_raw, y)


def _totals(log_sums: np.ndarray, targets: np.ndarray, predictions: np.ndarray, y: np.ndarray) -> tuple[float, int]:
    """(summed cross-entropy, correct predictions) from ``SoftmaxCrossEntropy.terms`` and its predictions."""
    return float(log_sums.sum() - targets.sum()), int(np.count_nonzero(predictions == y))


def evaluate(model: MLP, prep: Preprocessing, x_raw: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) of ``model`` on raw inputs, in chunks of bounded memory."""
    total_loss, correct = 0.0, 0
    loss = SoftmaxCrossEntropy()
    with np.errstate(over="ignore"):
        for i in range(0, len(y), _EVAL_CHUNK):
            logits = model.logits(preprocess(x_raw[i : i + _EVAL_CHUNK], prep))
            yb = y[i : i + _EVAL_CHUNK]
            total_loss += loss.forward(logits, yb) * len(yb)
            correct += int(np.count_nonzero(logits.argmax(axis=1) == yb))
    return total_loss / len(y), correct / len(y)
