"""The MLP: flatten, then ``Dense -> activation`` per layer of a ``contracts.Architecture``.

All parameters live in one contiguous float32 vector (``flat_params``) and all gradients in
another (``flat_grads``); each layer's ``kernel``/``bias`` is a view into it. Optimizers can then
update every parameter with a handful of numpy calls instead of a handful per tensor.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from contracts import Architecture, Preprocessing, param_name
from trainer.layers import Activation, Dense, activation

INITS = ("auto", "he", "glorot")


class MLP:
    """Training-time network on preprocessed, flattened float32 inputs [N, input_size]."""

    def __init__(self, architecture: Architecture, weights: Mapping[str, np.ndarray] | None = None,
                 *, init: str = "auto", seed: int = 0) -> None:  # fmt: skip
        if init not in INITS:
            raise ValueError(f"unknown init {init!r} (expected one of {INITS})")
        self.architecture = architecture
        shapes = architecture.parameter_shapes()
        self.flat_params = np.zeros(sum(int(np.prod(s)) for s in shapes.values()), dtype=np.float32)
        self.flat_grads = np.zeros_like(self.flat_params)
        params, grads = _views(self.flat_params, shapes), _views(self.flat_grads, shapes)
        self.dense: list[Dense] = []
        self.activations: list[Activation] = []
        for i, spec in enumerate(architecture.layers):
            layer = Dense(params[param_name(i, "kernel")], params[param_name(i, "bias")])
            layer.dkernel, layer.dbias = grads[param_name(i, "kernel")], grads[param_name(i, "bias")]
            self.dense.append(layer)
            self.activations.append(activation(spec.activation))
        if weights is None:
            self._initialise(init, np.random.default_rng([seed, 0]))
        else:
            self.load_state_dict(weights)

    def _initialise(self, init: str, rng: np.random.Generator) -> None:
        """He-normal for ReLU hidden layers, Glorot-uniform otherwise (always for the output); zero bias."""
        last = len(self.dense) - 1
        for i, (layer, spec) in enumerate(zip(self.dense, self.architecture.layers, strict=True)):
            fan_in, fan_out = layer.kernel.shape
            he = init == "he" or (init == "auto" and spec.activation == "relu" and i < last)
            if he:
                layer.kernel[...] = rng.standard_normal(layer.kernel.shape, dtype=np.float32) * np.sqrt(2.0 / fan_in)
            else:
                limit = np.sqrt(6.0 / (fan_in + fan_out))
                layer.kernel[...] = rng.uniform(-limit, limit, layer.kernel.shape).astype(np.float32)
            layer.bias[...] = 0

    def parameters(self) -> dict[str, np.ndarray]:
        """Views (``dense_<i>/kernel|bias``): writing into them changes the model."""
        return {name: arr for i, d in enumerate(self.dense) for name, arr in
                ((param_name(i, "kernel"), d.kernel), (param_name(i, "bias"), d.bias))}  # fmt: skip

    def gradients(self) -> dict[str, np.ndarray]:
        return {name: arr for i, d in enumerate(self.dense) for name, arr in
                ((param_name(i, "kernel"), d.dkernel), (param_name(i, "bias"), d.dbias))}  # fmt: skip

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of the parameters, named as in ``weights.npz``."""
        return {k: v.copy() for k, v in self.parameters().items()}

    def load_state_dict(self, weights: Mapping[str, np.ndarray]) -> None:
        params = self.parameters()
        if set(weights) != set(params):
            raise ValueError(f"weights have parameters {sorted(weights)}, the model expects {sorted(params)}")
        for name, p in params.items():
            if weights[name].shape != p.shape:
                raise ValueError(f"{name}: shape {weights[name].shape}, the model expects {p.shape}")
            p[...] = weights[name]

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Logits for a training step (after the output activation); caches for ``backward``."""
        for layer, act in zip(self.dense, self.activations, strict=True):
            x = act.forward(layer.forward(x))
        return x

    def backward(self, dlogits: np.ndarray) -> None:
        """Fill ``flat_grads``; the input gradient is never needed, so the first layer skips it."""
        d = dlogits
        for i in range(len(self.dense) - 1, -1, -1):
            d = self.dense[i].backward(self.activations[i].backward(d), need_dx=i > 0)

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Inference forward without caches or shared buffers (safe to keep the result)."""
        for layer, spec in zip(self.dense, self.architecture.layers, strict=True):
            x = x @ layer.kernel
            x += layer.bias
            x = _apply(spec.activation, x)
        return x


def _apply(name: str, x: np.ndarray) -> np.ndarray:
    act = activation(name)
    out = np.empty_like(x)
    if name == "linear":
        return x
    act._apply(x, out)
    return out


def _views(flat: np.ndarray, shapes: Mapping[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
    views, offset = {}, 0
    for name, shape in shapes.items():
        size = int(np.prod(shape))
        views[name] = flat[offset : offset + size].reshape(shape)
        offset += size
    return views


def preprocess(x_raw: np.ndarray, prep: Preprocessing, out: np.ndarray | None = None) -> np.ndarray:
    """Flatten and apply ``(x * scale - mean) / std`` in float32, in the exporter's graph order."""
    flat = np.asarray(x_raw).reshape(len(x_raw), -1)
    out = np.multiply(flat, np.float32(prep.scale), out=out, dtype=np.float32, casting="unsafe")
    if prep.mean != 0.0:
        out -= np.float32(prep.mean)
    if prep.std != 1.0:
        out /= np.float32(prep.std)
    return out
