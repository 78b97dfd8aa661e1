"""Session-wide model fixtures shared by every suite (cheap to import: all work happens lazily).

``tiny_artifact``       random-weight artifact (28x28 -> 16 relu -> 10 linear), saved via contracts
``trained_artifact``    the numpy trainer on a small MNIST subset (a few seconds), about 90% accurate
``exported_repository`` the exporter run on ``trained_artifact``: ``<root>/mnist/1`` + ``mnist/config.pbtxt``

All are read-only for tests: copy them (``shutil.copytree``) before changing anything.
"""

from __future__ import annotations

from pathlib import Path

import pytest

TINY_SEED = 0
TRAIN_SUBSET = 6000  # images of the MNIST training split the shared model learns from
TRAINED_NAME = "mnist"


@pytest.fixture(scope="session")
def tiny_artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.exporter.models import save_random_artifact

    return save_random_artifact(tmp_path_factory.mktemp("tiny") / "artifact", seed=TINY_SEED)


@pytest.fixture(scope="session")
def trained_artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from trainer import MLPClassifier, load_mnist
    from trainer.plots import confusion_png

    train, test = load_mnist("train").subset(TRAIN_SUBSET), load_mnist("test")
    model = MLPClassifier(hidden=(64,), epochs=3, batch_size=64, seed=0).fit(train)
    metrics = {f"test_{k}": v for k, v in model.evaluate(test.x, test.y).items()}
    confusion = confusion_png(test.y, model.predict(test.x), test.labels, "trained_artifact")
    path = tmp_path_factory.mktemp("trained") / "artifact"
    return model.save(path, test_metrics=metrics, num_test=len(test), extra_files={"confusion.png": confusion})


@pytest.fixture(scope="session")
def exported_repository(trained_artifact: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from exporter.export import export

    root = tmp_path_factory.mktemp("repository") / "models"
    export(trained_artifact, root, TRAINED_NAME)
    return root
