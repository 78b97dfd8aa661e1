import numpy as np
import pytest

from trainer import Dataset, load_mnist


@pytest.fixture(scope="session")
def mnist_train_small() -> Dataset:
    return load_mnist("train").subset(5000)


@pytest.fixture(scope="session")
def mnist_test_small() -> Dataset:
    test = load_mnist("test")
    return Dataset(test.x[:2000], test.y[:2000], test.labels, test.name)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
