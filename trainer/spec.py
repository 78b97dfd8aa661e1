"""Between estimator hyper-parameters and the ``model.json`` contract: architecture and preprocessing."""

from __future__ import annotations

from typing import Any, Protocol, cast

import numpy as np
from pydantic import ValidationError

from contracts import ACTIVATIONS, Architecture, LayerSpec, ModelSpec, Preprocessing
from contracts.artifact import Activation


class _ArchitectureParams(Protocol):
    hidden: tuple[int, ...]
    activation: str
    output_activation: str


def architecture_for(params: _ArchitectureParams, input_shape: tuple[int, ...], num_classes: int) -> Architecture:
    """Hidden layers with ``activation``, then the output layer with ``output_activation``."""
    for label, name in (("activation", params.activation), ("output_activation", params.output_activation)):
        if name not in ACTIVATIONS:
            raise ValueError(f"unknown {label} {name!r} (expected one of {list(ACTIVATIONS)})")
    if any(int(units) <= 0 for units in params.hidden):
        raise ValueError(f"hidden layer sizes must be positive, got {tuple(params.hidden)}")
    hidden_act, output_act = cast(Activation, params.activation), cast(Activation, params.output_activation)
    layers = [LayerSpec(units=int(units), activation=hidden_act) for units in params.hidden]
    layers.append(LayerSpec(units=num_classes, activation=output_act))
    try:
        return Architecture(input_shape=input_shape, layers=tuple(layers))
    except ValidationError as e:
        raise ValueError(f"invalid architecture: {e}") from None


def preprocessing_for(x: np.ndarray) -> Preprocessing:
    """uint8 images: ``x / 255`` (the deck's). Float inputs of any range: standardised by their mean/std."""
    if x.dtype == np.uint8:
        return Preprocessing()
    mean, std = float(x.mean(dtype=np.float64)), float(x.std(dtype=np.float64))
    return Preprocessing(scale=1.0, mean=mean, std=std if std > 0 else 1.0)


def hyperparameters(spec: ModelSpec) -> dict[str, Any]:
    """``MLPClassifier`` keyword arguments that reproduce the training of ``spec``."""
    layers = spec.architecture.layers
    t = spec.training
    return {
        "hidden": tuple(layer.units for layer in layers[:-1]),
        "activation": layers[0].activation if len(layers) > 1 else "relu",
        "output_activation": layers[-1].activation,
        "optimizer": t.optimizer,
        "lr": t.lr,
        "lr_decay": t.lr_decay,
        "batch_size": t.batch_size,
        "epochs": t.epochs,
        "seed": t.seed,
        "weight_decay": t.weight_decay,
        "momentum": t.momentum,
        "val_split": t.val_split,
        "patience": t.patience,
    }
