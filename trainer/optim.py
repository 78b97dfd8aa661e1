"""Optimizers: SGD, SGD with momentum, Adam; coupled L2 weight decay (``g + weight_decay * p``).

An optimizer is built on a dict of parameter arrays and updates them in place from a dict of
gradient arrays with the same names: ``opt.step(grads)``. The update is fused and allocation-free:
each rule is a few in-place numpy passes over each array, with one scratch buffer per array.
Pass ``{"all": model.flat_params}`` / ``{"all": model.flat_grads}`` to update a whole ``MLP`` in
one go (the same math as per tensor, with far fewer numpy calls).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

OPTIMIZERS = ("sgd", "momentum", "adam")


class Optimizer:
    """Owns the loop over parameters and the validation of hyper-parameters; subclasses own the math."""

    def __init__(self, params: Mapping[str, np.ndarray], lr: float, weight_decay: float = 0.0) -> None:
        if not lr > 0:
            raise ValueError(f"learning rate must be > 0, got {lr}")
        if not weight_decay >= 0:
            raise ValueError(f"weight decay must be >= 0, got {weight_decay}")
        self.params, self.lr, self.weight_decay, self.t = dict(params), lr, weight_decay, 0
        self._scratch = {k: np.empty_like(p) for k, p in self.params.items()}

    def step(self, grads: Mapping[str, np.ndarray]) -> None:
        """Update every parameter in place (the same array objects) from ``grads`` (left unchanged)."""
        self.t += 1
        for name, p in self.params.items():
            g, tmp = grads[name], self._scratch[name]
            if self.weight_decay:
                np.multiply(p, self.weight_decay, out=tmp)
                tmp += g
                g = tmp
                tmp = self._scratch2(name)
            self._update(name, p, g, tmp)

    def _scratch2(self, name: str) -> np.ndarray:
        key = f"{name}\0wd"
        if key not in self._scratch:
            self._scratch[key] = np.empty_like(self.params[name])
        return self._scratch[key]

    def _update(self, name: str, p: np.ndarray, g: np.ndarray, tmp: np.ndarray) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict[str, np.ndarray]:
        """Step count and per-parameter state, to save beside an artifact for ``--resume``."""
        return {"t": np.array(self.t, dtype=np.int64)}

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        self.t = int(state["t"])


class SGD(Optimizer):
    """``p -= lr * g``."""

    def _update(self, name: str, p: np.ndarray, g: np.ndarray, tmp: np.ndarray) -> None:
        np.multiply(g, self.lr, out=tmp)
        p -= tmp


class Momentum(Optimizer):
    """Heavy-ball momentum as in PyTorch: ``b = momentum * b + g; p -= lr * b``."""

    def __init__(self, params: Mapping[str, np.ndarray], lr: float, momentum: float = 0.9,
                 weight_decay: float = 0.0) -> None:  # fmt: skip
        super().__init__(params, lr, weight_decay)
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        self.momentum = momentum
        self.velocity = {k: np.zeros_like(p) for k, p in self.params.items()}

    def _update(self, name: str, p: np.ndarray, g: np.ndarray, tmp: np.ndarray) -> None:
        b = self.velocity[name]
        b *= self.momentum
        b += g
        np.multiply(b, self.lr, out=tmp)
        p -= tmp

    def state_dict(self) -> dict[str, np.ndarray]:
        return {**super().state_dict(), **{f"velocity/{k}": v for k, v in self.velocity.items()}}

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        super().load_state_dict(state)
        for k, v in self.velocity.items():
            v[...] = state[f"velocity/{k}"]


class Adam(Optimizer):
    """Adam (Kingma & Ba, https://arxiv.org/abs/1412.6980); defaults from the paper.

    Bias correction is folded into the step size and epsilon:
    ``p -= lr_t * m / (sqrt(v) + eps_t)`` with ``lr_t = lr * sqrt(1 - b2^t) / (1 - b1^t)`` and
    ``eps_t = eps * sqrt(1 - b2^t)``, algebraically the paper's (and PyTorch's) update.
    """

    def __init__(self, params: Mapping[str, np.ndarray], lr: float = 1e-3, b1: float = 0.9, b2: float = 0.999,
                 eps: float = 1e-8, weight_decay: float = 0.0) -> None:  # fmt: skip
        super().__init__(params, lr, weight_decay)
        for label, beta in (("b1", b1), ("b2", b2)):
            if not 0 <= beta < 1:
                raise ValueError(f"{label} must be in [0, 1), got {beta}")
        if not eps > 0:
            raise ValueError(f"eps must be > 0, got {eps}")
        self.b1, self.b2, self.eps = b1, b2, eps
        self.m = {k: np.zeros_like(p) for k, p in self.params.items()}
        self.v = {k: np.zeros_like(p) for k, p in self.params.items()}

    def _update(self, name: str, p: np.ndarray, g: np.ndarray, tmp: np.ndarray) -> None:
        m, v = self.m[name], self.v[name]
        m -= g  # m = b1 * m + (1 - b1) * g  ==  b1 * (m - g) + g, without a temporary
        m *= self.b1
        m += g
        np.multiply(g, g, out=tmp)  # v = b2 * (v - g^2) + g^2
        v -= tmp
        v *= self.b2
        v += tmp
        correction = np.sqrt(1 - self.b2**self.t)
        lr_t = self.lr * correction / (1 - self.b1**self.t)
        np.sqrt(v, out=tmp)
        tmp += self.eps * correction
        np.divide(m, tmp, out=tmp)
        tmp *= lr_t
        p -= tmp

    def state_dict(self) -> dict[str, np.ndarray]:
        moments = {f"m/{k}": a for k, a in self.m.items()} | {f"v/{k}": a for k, a in self.v.items()}
        return {**super().state_dict(), **moments}

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        super().load_state_dict(state)
        for k in self.m:
            self.m[k][...] = state[f"m/{k}"]
            self.v[k][...] = state[f"v/{k}"]


def make_optimizer(name: str, params: Mapping[str, np.ndarray], *, lr: float, weight_decay: float = 0.0,
                   momentum: float = 0.9) -> Optimizer:  # fmt: skip
    """Build an optimizer by its CLI/contract name."""
    if name == "adam":
        return Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "momentum":
        return Momentum(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "sgd":
        return SGD(params, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r} (expected one of {OPTIMIZERS})")
