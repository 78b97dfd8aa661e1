"""Seeded, shuffled minibatches assembled into preallocated float32 buffers.

Each batch is gathered from the raw (uint8 or float32) inputs with ``np.take(..., out=)`` and
preprocessed in place, so an epoch allocates nothing and converts each sample exactly once.
Measured here on MNIST: about 13 ms per epoch, against about 95 ms for permuting a float32 copy
of the whole dataset and 20 ms for ``x[idx]`` fancy indexing of float32 batches (and 27 ms for
one ``np.take`` of the whole uint8 set per epoch). The labels are permuted once per epoch
(``labels``): batches are contiguous slices of it, and a loop can score a whole epoch at once.
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
        self.labels = np.empty_like(self.y)  # this epoch's labels in batch order

    def __len__(self) -> int:
        return -(-len(self.y) // self.batch_size)

    def epoch(self, rng: np.random.Generator) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        order = rng.permutation(len(self.y))
        # mode="clip": with the default "raise", numpy buffers ``out`` (a second copy); a permutation
        # is always in range. 9.5 us against 16 us per [128, 784] uint8 batch here.
        np.take(self.y, order, out=self.labels, mode="clip")
        scale, mean, std = np.float32(self.prep.scale), np.float32(self.prep.mean), np.float32(self.prep.std)
        x, raw, xb, labels, size = self.x, self._raw, self._xb, self.labels, self.batch_size
        for start in range(0, len(order), size):
            idx = order[start : start + size]
            if len(idx) < size:  # the last, partial batch
                raw, xb = raw[: len(idx)], xb[: len(idx)]
            np.take(x, idx, axis=0, out=raw, mode="clip")
            # a cast copy then an in-place float32 multiply: 14 us on [128, 784] uint8, against
            # 17 us for one mixed-type multiply, with bit-identical results
            np.copyto(xb, raw, casting="unsafe")
            np.multiply(xb, scale, out=xb)
            if mean != 0:
                xb -= mean
            if std != 1:
                xb /= std
            yield xb, labels[start : start + size]
