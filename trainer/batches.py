"""Seeded, shuffled minibatches assembled into preallocated float32 buffers.

Each batch is gathered from the raw (uint8 or float32) inputs with ``np.take(..., out=)`` and
preprocessed in place, so an epoch allocates nothing and converts each sample exactly once.
Measured here on MNIST: about 13 ms per epoch, against about 95 ms for permuting a float32 copy
of the whole dataset and 20 ms for ``x[idx]`` fancy indexing of float32 batches.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from contracts import Preprocessing


def epoch_rng(seed: int, epoch: int) -> np.random.Generator:
    """The shuffle of epoch ``epoch`` depends only on (seed, epoch), so a resumed run shuffles alike."""
    return np.random.default_rng([seed, 1, epoch])


class Batches:
    """Iterate ``(x [n, D] float32, y [n] int64)`` views; valid until the next batch is drawn."""

    def __init__(self, x_raw: np.ndarray, y: np.ndarray, batch_size: int, prep: Preprocessing) -> None:
        if batch_size <= 0:
            raise ValueError(f"batch size must be positive, got {batch_size}")
        self.x = np.ascontiguousarray(x_raw).reshape(len(x_raw), -1)
        self.y = np.ascontiguousarray(y, dtype=np.int64)
        self.batch_size = min(batch_size, len(y))
        self.prep = prep
        self._raw = np.empty((self.batch_size, self.x.shape[1]), dtype=self.x.dtype)
        self._xb = np.empty((self.batch_size, self.x.shape[1]), dtype=np.float32)
        self._yb = np.empty(self.batch_size, dtype=np.int64)

    def __len__(self) -> int:
        return -(-len(self.y) // self.batch_size)

    def epoch(self, rng: np.random.Generator) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        order = rng.permutation(len(self.y))
        scale, mean, std = np.float32(self.prep.scale), np.float32(self.prep.mean), np.float32(self.prep.std)
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            n = len(idx)
            raw, xb, yb = self._raw[:n], self._xb[:n], self._yb[:n]
            np.take(self.x, idx, axis=0, out=raw)
            np.take(self.y, idx, out=yb)
            np.multiply(raw, scale, out=xb, casting="unsafe")
            if mean != 0:
                xb -= mean
            if std != 1:
                xb /= std
            yield xb, yb
