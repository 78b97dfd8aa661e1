"""Layers with a local backward next to their forward.

``forward(x)`` caches what ``backward`` needs; ``backward(dout)`` stores parameter gradients on the
layer (never applies them: that is the optimizer's job) and returns the gradient for the layer
below. Outputs are written into buffers owned by the layer and reused by the next call of the
same batch size, so a training step allocates nothing; copy an output if you keep it.
"""

from __future__ import annotations

import numpy as np

# numpy's OpenBLAS multiplies products of at most 100^3 multiply-adds with "small matrix" kernels
# that skip packing the operands. Just above that limit, packing the [128, 784] batch costs more
# than a product with few output columns (the seed model's 10 classes): [128, 784] x [784, 10]
# took 40 us whole and 22 us as column blocks of 8 and 2 (its gradient product alike, 32 -> 21 us).
_SMALL_GEMM_MACS = 1_000_000
_NARROW_UNITS = 16  # wider outputs keep one product: packing pays off there
_COLUMN_BLOCK = 8


def matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``np.matmul(a, b, out=out)`` for 2-D operands; a narrow product in column blocks when each
    block fits the small-matrix kernels and the whole would not (each output element is still one
    dot product: only the BLAS kernel, hence the summation order, changes)."""
    (m, k), n = a.shape, b.shape[1]
    if n > _NARROW_UNITS or m * k * n <= _SMALL_GEMM_MACS or m * k * _COLUMN_BLOCK > _SMALL_GEMM_MACS:
        return np.matmul(a, b, out=out)
    for j in range(0, n, _COLUMN_BLOCK):
        np.matmul(a, b[:, j : j + _COLUMN_BLOCK], out=out[:, j : j + _COLUMN_BLOCK])
    return out


class Layer:
    """Base class: buffer management shared by all layers."""

    def __init__(self) -> None:
        self._buffers: dict[tuple[str, tuple[int, ...]], np.ndarray] = {}

    def _buffer(self, name: str, shape: tuple[int, ...], dtype: np.dtype | type) -> np.ndarray:
        key = (name, shape)
        buf = self._buffers.get(key)
        if buf is None or buf.dtype != dtype:
            if len(self._buffers) > 8:  # e.g. predict() with many batch sizes: do not grow without bound
                self._buffers.clear()
            buf = self._buffers[key] = np.empty(shape, dtype=dtype)
        return buf

    def forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward(self, dout: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class Dense(Layer):
    """``x @ kernel + bias`` with ``kernel`` [fan_in, units] and ``bias`` [units]."""

    def __init__(self, kernel: np.ndarray, bias: np.ndarray) -> None:
        super().__init__()
        if kernel.ndim != 2 or bias.shape != (kernel.shape[1],):
            raise ValueError(f"kernel must be [fan_in, units] and bias [units], got {kernel.shape} and {bias.shape}")
        self.kernel, self.bias = kernel, bias
        self.dkernel, self.dbias = np.zeros_like(kernel), np.zeros_like(bias)
        self._x: np.ndarray | None = None
        self._ones = np.ones(0, dtype=kernel.dtype)

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._x = x
        out = self._buffer("out", (x.shape[0], self.kernel.shape[1]), np.result_type(x, self.kernel))
        matmul(x, self.kernel, out)
        out += self.bias
        return out

    def backward(self, dout: np.ndarray, need_dx: bool = True) -> np.ndarray:
        """Store ``dkernel``, ``dbias``; return dx unless ``need_dx`` is False (first layer: saves a GEMM)."""
        if self._x is None:
            raise RuntimeError("Dense.backward called before forward")
        matmul(self._x.T, dout, self.dkernel)
        # the bias gradient (column sums) as ones @ dout: a GEMV took 0.7-1.7 us on [128, 10..256]
        # where add.reduce took 2.2-3.6 us
        ones = self._ones
        if ones.shape[0] != dout.shape[0] or ones.dtype != dout.dtype:
            ones = self._ones = np.ones(dout.shape[0], dtype=dout.dtype)
        np.matmul(ones, dout, out=self.dbias)
        if not need_dx:
            return dout
        dx = self._buffer("dx", self._x.shape, dout.dtype)
        return np.matmul(dout, self.kernel.T, out=dx)


class Activation(Layer):
    """Element-wise activation whose derivative is written in terms of its output ``y``."""

    name = "linear"

    def forward(self, x: np.ndarray) -> np.ndarray:
        y = self._buffer("y", x.shape, x.dtype)
        self._apply(x, y)
        self._y = y
        return y

    def backward(self, dout: np.ndarray) -> np.ndarray:
        dx = self._buffer("dx", dout.shape, dout.dtype)
        self._derivative(self._y, dout, dx)
        return dx

    def _apply(self, x: np.ndarray, out: np.ndarray) -> None:
        raise NotImplementedError

    def _derivative(self, y: np.ndarray, dout: np.ndarray, dx: np.ndarray) -> None:
        raise NotImplementedError


class ReLU(Activation):
    name = "relu"

    def _apply(self, x: np.ndarray, out: np.ndarray) -> None:
        np.maximum(x, 0, out=out)

    def _derivative(self, y: np.ndarray, dout: np.ndarray, dx: np.ndarray) -> None:
        # zero the gradient where the unit was off; a multiply by the boolean mask measured 10x
        # faster than np.copyto(..., where=mask) on [128, 256] (12 us against 135 us)
        np.multiply(dout, y > 0, out=dx)


class Tanh(Activation):
    name = "tanh"

    def _apply(self, x: np.ndarray, out: np.ndarray) -> None:
        np.tanh(x, out=out)

    def _derivative(self, y: np.ndarray, dout: np.ndarray, dx: np.ndarray) -> None:
        np.multiply(y, y, out=dx)  # 1 - tanh^2
        np.subtract(1, dx, out=dx)
        dx *= dout


class Sigmoid(Activation):
    name = "sigmoid"

    def _apply(self, x: np.ndarray, out: np.ndarray) -> None:
        # 1 / (1 + exp(-x)) overflows to inf for x << 0, which still gives the right 0 without NaN
        with np.errstate(over="ignore"):
            np.negative(x, out=out)
            np.exp(out, out=out)
        out += 1
        np.reciprocal(out, out=out)

    def _derivative(self, y: np.ndarray, dout: np.ndarray, dx: np.ndarray) -> None:
        np.subtract(1, y, out=dx)  # y * (1 - y)
        dx *= y
        dx *= dout


class Linear(Activation):
    """Identity: the output layer's default ("logits")."""

    name = "linear"

    def forward(self, x: np.ndarray) -> np.ndarray:
        return x

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return dout


class Flatten(Layer):
    """[N, *shape] -> [N, prod(shape)] (a view when the input is contiguous)."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return dout.reshape(self._shape)


ACTIVATIONS: dict[str, type[Activation]] = {"relu": ReLU, "tanh": Tanh, "sigmoid": Sigmoid, "linear": Linear}


def activation(name: str) -> Activation:
    """A new activation layer by its contract name (``contracts.ACTIVATIONS``)."""
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(f"unknown activation {name!r} (expected one of {sorted(ACTIVATIONS)})") from None
