"""Named model presets. ``seed`` is the deck's example, reproduced exactly.

The deck's model: input [N, 28, 28] -> flatten -> one fully connected layer to the classes with a
ReLU on its output (the logits) -> sparse softmax cross-entropy, Adam with lr 0.001, argmax.
With ReLU on the logits, a class whose logit starts negative for most inputs stays dead, so the
initialisation matters: Glorot-uniform with zero bias reaches about 92.5% on MNIST where
PyTorch's default initialisation reaches about 84% (see the serving performance notes).
"""

from __future__ import annotations

from typing import Any

PRESETS: dict[str, dict[str, Any]] = {
    "seed": {
        "hidden": (),
        "output_activation": "relu",
        "init": "glorot",
        "optimizer": "adam",
        "lr": 1e-3,
        "lr_decay": 1.0,  # the deck trains with a constant learning rate
    },
    "mlp": {
        "hidden": (256, 128),
        "activation": "relu",
        "output_activation": "linear",
        "init": "auto",
        "optimizer": "adam",
        "lr": 1e-3,
        "lr_decay": 0.8,
    },
}

ARCHITECTURE_KEYS = ("hidden", "activation", "output_activation", "init")


def preset(name: str) -> dict[str, Any]:
    """The ``MLPClassifier`` keyword arguments of a preset."""
    try:
        return dict(PRESETS[name])
    except KeyError:
        raise ValueError(f"unknown preset {name!r} (expected one of {sorted(PRESETS)})") from None
