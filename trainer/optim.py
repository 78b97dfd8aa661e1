"""Optimizers: SGD, SGD with momentum, Adam; coupled L2 weight decay (``g + weight_decay * p``).

An optimizer is built on a dict of parameter arrays and updates them in place from a dict of
gradient arrays with the same names: ``opt.step(grads)``. The update is allocation-free: SGD and
momentum are a few in-place numpy passes over each array, with two scratch buffers per array;
Adam is one compiled loop (``trainer.fused``, numba) or, without numba, the same numpy passes.
Pass ``{"all": model.flat_params}`` / ``{"all": model.flat_grads}`` to update a whole ``MLP`` in
one go (the same math as per tensor, with far fewer numpy calls). With ``workers > 1`` large
arrays are cut into that many contiguous chunks updated in parallel threads (numpy releases the
GIL inside its loops); the arithmetic per element is unchanged, so results are identical.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from trainer.fused import adam_update

OPTIMIZERS = ("sgd", "momentum", "adam")
PARALLEL_MIN_SIZE = 1 << 16  # below this, handing work to a thread costs more than it saves
# State that decays with no new gradient (momentum, Adam's m and v of dead units) passes through
# float32's subnormal range (below ~1.2e-38), where x86 arithmetic is many times slower: 2% of
# Adam's m made every pass over it 5x slower here (15 -> 84 us on the MLP's 235k parameters).
# Every FLUSH_EVERY steps, state below FLUSH_BELOW is set to zero; from 1e-30 a state value decays
# (x0.9 per step at most) to no less than ~3e-32 in 32 steps, so it never becomes subnormal, and
# zeroing it changes no update by more than lr * 1e-30 / eps, far below float32 resolution.
FLUSH_EVERY = 32
FLUSH_BELOW = 1e-30

Arrays = tuple[np.ndarray, ...]


class Optimizer:
    """Owns the loop over parameters, chunking and validation; subclasses own the per-element math.

    A subclass names its per-parameter state arrays in ``state_names`` and implements
    ``_update(p, g, tmp, state)`` on (chunks of) arrays, reading step-wide scalars from ``self``.
    """

    state_names: tuple[str, ...] = ()

    def __init__(self, params: Mapping[str, np.ndarray], lr: float, weight_decay: float = 0.0,
                 workers: int = 1) -> None:  # fmt: skip
        if not lr > 0:
            raise ValueError(f"learning rate must be > 0, got {lr}")
        if not weight_decay >= 0:
            raise ValueError(f"weight decay must be >= 0, got {weight_decay}")
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.params, self.lr, self.weight_decay, self.t = dict(params), lr, weight_decay, 0
        self.state = {k: {s: np.zeros_like(p) for s in self.state_names} for k, p in self.params.items()}
        self._scratch = {k: (np.empty_like(p), np.empty_like(p)) for k, p in self.params.items()}
        self.workers = workers
        self._pool = ThreadPoolExecutor(workers - 1) if workers > 1 else None
        # (name, param, scratch, state) bound once: a step of the seed model is only ~10 us of numpy
        # work, so rebuilding these per step was a measurable share of it
        self._slots = [(k, p, self._scratch[k], tuple(self.state[k].values())) for k, p in self.params.items()]

    def step(self, grads: Mapping[str, np.ndarray]) -> None:
        """Update every parameter in place (the same array objects) from ``grads`` (left unchanged)."""
        self.t += 1
        self._prepare_step()
        for name, p, scratch, state in self._slots:
            if self._pool is None or p.size < PARALLEL_MIN_SIZE:
                self._apply(p, grads[name], *scratch, state)
                continue
            arrays = (p, grads[name], *scratch, *state)
            chunks = list(zip(*(np.array_split(a.reshape(-1), self.workers) for a in arrays), strict=True))
            futures = [self._pool.submit(self._apply_chunk, chunk) for chunk in chunks[1:]]
            self._apply_chunk(chunks[0])
            for f in futures:
                f.result()
        if self.t % FLUSH_EVERY == 0:
            self._flush_tiny_state()

    def _flush_tiny_state(self) -> None:
        for _, _, (tmp, _), state in self._slots:
            for a in state:
                np.abs(a, out=tmp)
                np.putmask(a, tmp < FLUSH_BELOW, 0)

    def _apply_chunk(self, arrays: Arrays) -> None:
        p, g, tmp, tmp2, *state = arrays
        self._apply(p, g, tmp, tmp2, tuple(state))

    def _apply(self, p: np.ndarray, g: np.ndarray, tmp: np.ndarray, tmp2: np.ndarray, state: Arrays) -> None:
        if self.weight_decay:
            np.multiply(p, self.weight_decay, out=tmp2)
            tmp2 += g
            g = tmp2
        self._update(p, g, tmp, state)

    def _prepare_step(self) -> None:
        """Compute step-wide scalars (e.g. bias corrections) once, before the per-array updates."""

    def _update(self, p: np.ndarray, g: np.ndarray, tmp: np.ndarray, state: Arrays) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict[str, np.ndarray]:
        """Step count and per-parameter state (``<state>/<param>``), saved beside an artifact for ``--resume``."""
        arrays = {f"{s}/{k}": a for k, named in self.state.items() for s, a in named.items()}
        return {"t": np.array(self.t, dtype=np.int64), **arrays}

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        self.t = int(state["t"])
        for k, named in self.state.items():
            for s, a in named.items():
                a[...] = state[f"{s}/{k}"]


class SGD(Optimizer):
    """``p -= lr * g``."""

    def _update(self, p: np.ndarray, g: np.ndarray, tmp: np.ndarray, state: Arrays) -> None:
        np.multiply(g, self.lr, out=tmp)
        p -= tmp


class Momentum(Optimizer):
    """Heavy-ball momentum as in PyTorch: ``b = momentum * b + g; p -= lr * b``."""

    state_names = ("velocity",)

    def __init__(self, params: Mapping[str, np.ndarray], lr: float, momentum: float = 0.9,
                 weight_decay: float = 0.0, workers: int = 1) -> None:  # fmt: skip
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        super().__init__(params, lr, weight_decay, workers)
        self.momentum = momentum

    def _update(self, p: np.ndarray, g: np.ndarray, tmp: np.ndarray, state: Arrays) -> None:
        (b,) = state
        b *= self.momentum
        b += g
        np.multiply(b, self.lr, out=tmp)
        p -= tmp


class Adam(Optimizer):
    """Adam (Kingma & Ba, https://arxiv.org/abs/1412.6980); defaults from the paper.

    Bias correction is folded into the step size and epsilon:
    ``p -= lr_t * m / (sqrt(v) + eps_t)`` with ``lr_t = lr * sqrt(1 - b2^t) / (1 - b1^t)`` and
    ``eps_t = eps * sqrt(1 - b2^t)``, algebraically the paper's (and PyTorch's) update.
    """

    state_names = ("m", "v")

    def __init__(self, params: Mapping[str, np.ndarray], lr: float = 1e-3, b1: float = 0.9, b2: float = 0.999,
                 eps: float = 1e-8, weight_decay: float = 0.0, workers: int = 1) -> None:  # fmt: skip
        for label, beta in (("b1", b1), ("b2", b2)):
            if not 0 <= beta < 1:
                raise ValueError(f"{label} must be in [0, 1), got {beta}")
        if not eps > 0:
            raise ValueError(f"eps must be > 0, got {eps}")
        super().__init__(params, lr, weight_decay, workers)
        self.b1, self.b2, self.eps = b1, b2, eps
        self._lr_t = self._eps_t = 0.0

    def _prepare_step(self) -> None:
        correction = math.sqrt(1 - self.b2**self.t)
        self._lr_t = self.lr * correction / (1 - self.b1**self.t)
        self._eps_t = self.eps * correction

    def _update(self, p: np.ndarray, g: np.ndarray, tmp: np.ndarray, state: Arrays) -> None:
        m, v = state
        p1, g1, m1, v1, t1 = (a.reshape(-1) for a in (p, g, m, v, tmp))  # views: all are contiguous
        adam_update(p1, g1, m1, v1, self.b1, self.b2, self._lr_t, self._eps_t, t1)


def make_optimizer(name: str, params: Mapping[str, np.ndarray], *, lr: float, weight_decay: float = 0.0,
                   momentum: float = 0.9, workers: int = 1) -> Optimizer:  # fmt: skip
    """Build an optimizer by its CLI/contract name."""
    if name == "adam":
        return Adam(params, lr=lr, weight_decay=weight_decay, workers=workers)
    if name == "momentum":
        return Momentum(params, lr=lr, momentum=momentum, weight_decay=weight_decay, workers=workers)
    if name == "sgd":
        return SGD(params, lr=lr, weight_decay=weight_decay, workers=workers)
    raise ValueError(f"unknown optimizer {name!r} (expected one of {OPTIMIZERS})")
