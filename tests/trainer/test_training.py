"""The training loop: learning, determinism, early stopping with best-weights restore, resume."""

import numpy as np
import pytest

from trainer import MLPClassifier, load_mnist
from trainer.presets import preset
from trainer.train import split_validation


def small_mlp(**kw) -> MLPClassifier:
    settings = {"hidden": (32,), "epochs": 2, "threads": 1, **kw}
    return MLPClassifier(**settings)


def test_same_seed_gives_bit_identical_weights(mnist_train_small):
    data = mnist_train_small.subset(2000)
    a = small_mlp(seed=7).fit(data).model_.flat_params
    b = small_mlp(seed=7).fit(data).model_.flat_params
    np.testing.assert_array_equal(a, b)


def test_different_seeds_give_different_weights(mnist_train_small):
    data = mnist_train_small.subset(2000)
    a = small_mlp(seed=1).fit(data).model_.flat_params
    b = small_mlp(seed=2).fit(data).model_.flat_params
    assert not np.array_equal(a, b)


def test_seed_preset_learns_mnist():
    train, test = load_mnist("train"), load_mnist("test")
    clf = MLPClassifier(**preset("seed"), epochs=2, threads=1).fit(train)
    assert clf.spec_.architecture.layers[0].activation == "relu" and len(clf.spec_.architecture.layers) == 1
    assert clf.evaluate(test.x, test.y)["accuracy"] >= 0.85  # 87.6% measured; 10 epochs reach 91.5%


@pytest.mark.parametrize(
    ("settings", "threshold"),
    [  # 5k images, 4 epochs; measured: 0.89, 0.86, 0.87, 0.88, 0.82
        ({"hidden": (128, 64)}, 0.86),
        ({"hidden": (64, 32), "activation": "tanh"}, 0.82),
        ({"hidden": (64,), "activation": "sigmoid", "lr": 3e-3}, 0.84),
        ({"hidden": (64,), "optimizer": "momentum", "lr": 0.05}, 0.85),
        ({"hidden": (64,), "optimizer": "sgd", "lr": 0.1, "weight_decay": 1e-4}, 0.79),
    ],
)
def test_deeper_mlps_learn_a_mnist_subset(settings, threshold, mnist_train_small, mnist_test_small):
    clf = MLPClassifier(epochs=4, threads=1, **settings).fit(mnist_train_small)
    accuracy = clf.evaluate(mnist_test_small.x, mnist_test_small.y)["accuracy"]
    assert accuracy >= threshold, f"{settings}: {accuracy:.3f}"
    history = clf.history_
    assert [m.epoch for m in history] == [1, 2, 3, 4]
    assert history[-1].train_loss < history[0].train_loss


def test_validation_split_is_seeded_and_disjoint(mnist_train_small):
    train, val = split_validation(mnist_train_small, 0.2, seed=3)
    assert val is not None and (len(train), len(val)) == (4000, 1000)
    again = split_validation(mnist_train_small, 0.2, seed=3)[1]
    assert again is not None and np.array_equal(val.x, again.x)
    rows = {r.tobytes() for r in train.x.reshape(len(train), -1)}
    assert sum(r.tobytes() in rows for r in val.x.reshape(len(val), -1)) <= 5  # MNIST has a few duplicate images
    assert split_validation(mnist_train_small, 0.0, seed=3)[1] is None


def test_early_stopping_restores_the_best_epoch(mnist_train_small):
    # a learning rate this high makes validation loss rise soon after the first epochs
    clf = small_mlp(epochs=30, patience=2, lr=0.05, val_split=0.2).fit(mnist_train_small.subset(2000))
    history = clf.history_
    best = min(history, key=lambda m: m.val_loss)
    assert clf.stopped_early_ and len(history) == best.epoch + 2 < 30
    assert clf.spec_.best_epoch == best.epoch
    val = split_validation(mnist_train_small.subset(2000), 0.2, seed=0)[1]
    assert clf.evaluate(val.x, val.y)["loss"] == pytest.approx(best.val_loss, rel=1e-6)


def test_resume_continues_bit_identically(tmp_path, mnist_train_small):
    data = mnist_train_small.subset(2000)
    straight = small_mlp(epochs=4, val_split=0.0).fit(data)
    first = small_mlp(epochs=2, val_split=0.0).fit(data)
    first.save(tmp_path / "a")
    resumed = MLPClassifier.load(tmp_path / "a")
    resumed.threads = 1
    resumed.fit(data, resume=True)
    assert [m.epoch for m in resumed.history_] == [1, 2, 3, 4]
    np.testing.assert_array_equal(resumed.model_.flat_params, straight.model_.flat_params)


def test_resume_refuses_data_of_another_shape(tmp_path, mnist_train_small):
    clf = small_mlp(epochs=1).fit(mnist_train_small.subset(500))
    x = np.zeros((10, 5, 5), np.uint8)
    with pytest.raises(ValueError, match=r"cannot resume: the model takes inputs \(28, 28\) with 10 classes"):
        clf.fit(x, np.arange(10) % 2, resume=True)


def test_fit_accepts_arrays_of_any_input_shape_and_float_inputs():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 3, 2, 2)).astype(np.float32) * 1000  # wide range: standardised by the model
    y = (x[:, 0, 0, 0] > 0).astype(np.int64)
    clf = small_mlp(epochs=30, lr=0.01, lr_decay=1.0, val_split=0.0).fit(x, y, labels=("neg", "pos"))
    assert clf.spec_.preprocessing.scale == 1.0 and clf.spec_.preprocessing.std > 100
    assert clf.evaluate(x, y)["accuracy"] > 0.95
    assert clf.predict_proba(x[:3]).shape == (3, 2)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"batch_size": 0}, "batch_size: Input should be greater than 0"),
        ({"epochs": -1}, "epochs: Input should be greater than 0"),
        ({"lr": 0.0}, "lr: Input should be greater than 0"),
        ({"optimizer": "rmsprop"}, "optimizer: Input should be 'sgd', 'momentum' or 'adam'"),
        ({"activation": "swish"}, r"unknown activation 'swish' \(expected one of"),
        ({"hidden": (0,)}, "hidden layer sizes must be positive"),
        ({"threads": 0}, "threads must be a positive integer"),
        ({"patience": 2, "val_split": 0.0}, r"early stopping \(patience\) needs a validation split"),
    ],
)
def test_bad_hyperparameters_are_reported_at_fit(settings, message, mnist_train_small):
    with pytest.raises(ValueError, match=message):
        small_mlp(**settings).fit(mnist_train_small.subset(100))


@pytest.mark.slow
def test_full_mnist_reaches_the_accuracy_goals():
    train, test = load_mnist("train"), load_mnist("test")
    mlp = MLPClassifier(hidden=(256, 128), epochs=10).fit(train)
    assert mlp.evaluate(test.x, test.y)["accuracy"] >= 0.98
    seed = MLPClassifier(**preset("seed"), epochs=10).fit(train)
    assert seed.evaluate(test.x, test.y)["accuracy"] >= 0.91
