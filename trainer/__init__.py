"""A numpy trainer for dense image classifiers; writes the artifact defined in ``contracts.artifact``.

Levels of abstraction, lowest first: ``layers``/``losses``/``optim`` (compose your own loop),
``MLP`` (a network from a ``contracts.Architecture``), ``train`` (the training loop), and
``MLPClassifier`` (fit/predict/evaluate/save/load).
"""

from trainer.data import Dataset, load_dataset, load_mnist, load_splits
from trainer.errors import DataError
from trainer.estimator import MLPClassifier, NotFittedError
from trainer.model import MLP, preprocess

__all__ = [
    "MLP",
    "DataError",
    "Dataset",
    "MLPClassifier",
    "NotFittedError",
    "load_dataset",
    "load_mnist",
    "load_splits",
    "preprocess",
]
