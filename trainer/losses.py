"""Sparse softmax cross-entropy, numerically stable in float32.

The softmax and the cross-entropy are fused: their joint gradient with respect to the logits is
``(softmax(z) - onehot(y)) / N`` (valid only for this pairing), which avoids the softmax Jacobian.
"""

from __future__ import annotations

import numpy as np


def softmax(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Row-wise softmax; subtracting the row max keeps ``exp`` from overflowing on huge logits."""
    with np.errstate(over="ignore"):  # max - min beyond float range: -inf, whose exp is the right 0
        out = np.subtract(z, z.max(axis=1, keepdims=True), out=out)
    np.exp(out, out=out)
    out /= out.sum(axis=1, keepdims=True)
    return out


def log_softmax(z: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        shifted = z - z.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


class SoftmaxCrossEntropy:
    """``forward(logits, y)`` -> mean loss; ``backward()`` -> dloss/dlogits (a reused buffer)."""

    def __init__(self) -> None:
        self._probs: np.ndarray | None = None
        self._y: np.ndarray | None = None
        self._rows = np.arange(0)

    def forward(self, logits: np.ndarray, y: np.ndarray) -> float:
        if logits.ndim != 2 or y.shape != (logits.shape[0],):
            raise ValueError(f"logits must be [N, classes] and y [N], got {logits.shape} and {y.shape}")
        if self._probs is None or self._probs.shape != logits.shape or self._probs.dtype != logits.dtype:
            self._probs = np.empty_like(logits)
            self._rows = np.arange(len(y))
        # Logits spanning more than float32's range overflow to -inf here, whose exp is the right 0;
        # silencing that warning costs an errstate per call, so the training loop does it once per epoch.
        p = np.subtract(logits, logits.max(axis=1, keepdims=True), out=self._probs)
        target = p[self._rows, y]  # shifted logit of the true class, <= 0
        np.exp(p, out=p)
        sums = np.add.reduce(p, axis=1)
        p /= sums[:, None]
        self._y = y
        # mean of -log softmax_y = log(sum exp(shifted)) - shifted_y; the sums are in float64
        return (float(np.log(sums).sum(dtype=np.float64)) - float(target.sum(dtype=np.float64))) / len(y)

    def backward(self) -> np.ndarray:
        if self._probs is None or self._y is None:
            raise RuntimeError("SoftmaxCrossEntropy.backward called before forward")
        d = self._probs  # reuse the probabilities buffer: they are not needed after this
        d[self._rows, self._y] -= 1
        d *= 1.0 / len(self._y)
        self._y = None
        return d
