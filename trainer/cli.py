"""The argument parser of ``python -m trainer``: every option with its meaning and default."""

from __future__ import annotations

import argparse

from contracts import ACTIVATIONS
from trainer.model import INITS
from trainer.optim import OPTIMIZERS
from trainer.presets import PRESETS

# Without --preset the CLI trains the "mlp" preset; these are the settings no preset names.
DEFAULTS = {
    **PRESETS["mlp"],
    "epochs": 10,
    "batch_size": 128,
    "seed": 0,
    "weight_decay": 0.0,
    "momentum": 0.9,
    "val_split": 0.1,
}


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def positive_float(text: str) -> float:
    value = _float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def non_negative_float(text: str) -> float:
    value = _float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def fraction(text: str) -> float:
    value = _float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1), got {text!r}")
    return value


def _float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def decay(text: str) -> float:
    value = _float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"expected a factor in (0, 1], got {text!r}")
    return value


def hidden_sizes(text: str) -> tuple[int, ...]:
    """``256,128`` -> (256, 128); ``none`` or an empty string -> no hidden layer."""
    if text.strip().lower() in ("", "none"):
        return ()
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        sizes = ()
    if not sizes or any(s <= 0 for s in sizes):
        raise argparse.ArgumentTypeError(
            f"expected comma-separated positive layer widths such as 256,128 (or 'none'), got {text!r}"
        )
    return sizes


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m trainer",
        description="Train a dense (MLP) image classifier with numpy and write a model artifact "
        "(model.json + weights.npz + curves.png + confusion.png) for the exporter.",
        epilog="Bad input (missing/corrupt data, bad options) exits with code 2 and writes nothing.",
    )
    _data_options(p.add_argument_group("data"))
    _model_options(p.add_argument_group("model"))
    _training_options(p.add_argument_group("training"))
    out = p.add_argument_group("output")
    out.add_argument("--out", metavar="DIR", default="artifacts/mnist", help="artifact directory [artifacts/mnist]")
    out.add_argument("--overwrite", action="store_true", help="replace --out if it exists (atomically)")
    out.add_argument("--quiet", action="store_true", help="no progress bars; one line per epoch (for logs)")
    return p


def _data_options(g: argparse._ArgumentGroup) -> None:
    g.add_argument(
        "--data",
        metavar="PATH",
        help="a folder of MNIST IDX files (train-*/t10k-*, .gz or not), an .npz with x, y (optional labels, "
        "x_test, y_test), or a folder of class sub-folders of images (PNG/JPEG/PPM; optionally split into "
        "train/ and test/) [the built-in MNIST]",
    )
    g.add_argument("--limit", type=positive_int, metavar="N", help="train on the first N training samples only")
    g.add_argument("--val-split", type=fraction, metavar="F", help="fraction held out for validation, 0: none [0.1]")


def _model_options(g: argparse._ArgumentGroup) -> None:
    g.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        help="a named model; seed = the deck's model: flatten -> dense layer to the classes with ReLU on the "
        "logits, Glorot init, Adam 1e-3; mlp = 256,128 ReLU hidden layers",
    )
    g.add_argument(
        "--hidden",
        type=hidden_sizes,
        metavar="W1,W2,...",
        help="hidden layer widths, e.g. 256,128; 'none' for no hidden layer [256,128]",
    )
    g.add_argument("--activation", choices=ACTIVATIONS, help="activation of the hidden layers [relu]")
    g.add_argument(
        "--output-activation",
        choices=ACTIVATIONS,
        help="activation applied to the logits before the softmax (the seed preset uses relu) [linear]",
    )
    g.add_argument(
        "--init", choices=INITS, help="weight init: he, glorot, or auto = He for ReLU hidden layers, else Glorot"
    )


def _training_options(g: argparse._ArgumentGroup) -> None:
    g.add_argument("--epochs", type=positive_int, metavar="N", help="epochs to train (more epochs with --resume) [10]")
    g.add_argument("--batch-size", type=positive_int, metavar="N", help="minibatch size [128]")
    g.add_argument("--optimizer", choices=OPTIMIZERS, help="update rule [adam]")
    g.add_argument("--lr", type=positive_float, metavar="LR", help="learning rate [0.001]")
    g.add_argument(
        "--lr-decay",
        type=decay,
        metavar="F",
        help="multiply the learning rate by F after each epoch, in (0, 1]; 1 = constant [0.8; the seed preset: 1]",
    )
    g.add_argument("--momentum", type=fraction, metavar="M", help="momentum of --optimizer momentum [0.9]")
    g.add_argument("--weight-decay", type=non_negative_float, metavar="L2", help="L2 weight decay [0]")
    g.add_argument(
        "--seed",
        type=int,
        help="seeds initialisation, validation split and shuffling; the same seed gives bit-identical weights [0]",
    )
    g.add_argument(
        "--patience",
        type=positive_int,
        metavar="EPOCHS",
        help="stop after this many epochs without a lower validation loss and keep the best epoch's weights "
        "(needs --val-split > 0) [no early stopping]",
    )
    g.add_argument(
        "--threads",
        type=positive_int,
        metavar="N",
        help="BLAS threads for the matrix products [1]; more is faster on idle cores, far slower on busy ones, "
        "and weights are bit-identical only for the same seed and thread count",
    )
    g.add_argument(
        "--resume",
        metavar="ARTIFACT",
        help="continue training an artifact (its architecture, weights and optimizer state) for --epochs more",
    )
