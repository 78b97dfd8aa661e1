"""MLPClassifier: raw-input inference math, save/load round trip, corrupted artifacts."""

import json

import numpy as np
import pytest

from contracts import ArtifactError, load_artifact
from trainer import MLPClassifier, NotFittedError


@pytest.fixture(scope="module")
def fitted(mnist_train_small) -> MLPClassifier:
    return MLPClassifier(hidden=(32, 16), epochs=1, threads=1).fit(mnist_train_small.subset(1000))


def test_predict_proba_is_the_graph_math_on_raw_inputs(fitted, mnist_test_small):
    x = mnist_test_small.x[:50]
    w, prep = fitted.model_.state_dict(), fitted.spec_.preprocessing
    h = (x.reshape(50, -1).astype(np.float32) * prep.scale - prep.mean) / prep.std
    h = np.maximum(h @ w["dense_0/kernel"] + w["dense_0/bias"], 0)
    h = np.maximum(h @ w["dense_1/kernel"] + w["dense_1/bias"], 0)
    z = h @ w["dense_2/kernel"] + w["dense_2/bias"]
    expected = np.exp(z - z.max(1, keepdims=True))
    expected /= expected.sum(1, keepdims=True)
    proba = fitted.predict_proba(x)
    assert proba.dtype == np.float32 and proba.shape == (50, 10)
    np.testing.assert_allclose(proba, expected, rtol=1e-5, atol=1e-6)
    labels = fitted.predict(x)
    assert labels.dtype == np.int64
    np.testing.assert_array_equal(labels, expected.argmax(1))


def test_single_sample_and_wrong_shape(fitted, mnist_test_small):
    assert fitted.predict_proba(mnist_test_small.x[0]).shape == (1, 10)
    with pytest.raises(ValueError, match=r"inputs have shape \(2, 27, 28\), expected \[N, 28, 28\]"):
        fitted.predict(np.zeros((2, 27, 28)))


def test_unfitted_classifier_says_what_to_do():
    with pytest.raises(NotFittedError, match=r"call fit\(\) or MLPClassifier.load\(\)"):
        MLPClassifier().predict(np.zeros((1, 28, 28)))


def test_save_load_round_trip_predicts_identically(fitted, mnist_test_small, tmp_path):
    fitted.save(tmp_path / "a", test_metrics={"accuracy": 0.5}, num_test=2000)
    loaded = MLPClassifier.load(tmp_path / "a")
    x = mnist_test_small.x
    np.testing.assert_array_equal(loaded.predict_proba(x), fitted.predict_proba(x))
    assert loaded.spec_ == fitted.spec_
    assert (loaded.hidden, loaded.epochs) == ((32, 16), 1)
    spec, weights = load_artifact(tmp_path / "a")  # the contract reader sees the same thing
    assert spec.test_metrics == {"accuracy": 0.5} and spec.dataset is not None and spec.dataset.num_test == 2000
    assert spec.dataset.sha256 == fitted.spec_.dataset.sha256 and len(spec.dataset.sha256) == 64
    assert sorted(weights) == ["dense_0/bias", "dense_0/kernel", "dense_1/bias", "dense_1/kernel", "dense_2/bias",
                               "dense_2/kernel"]  # fmt: skip


def test_save_refuses_to_overwrite_unless_asked(fitted, tmp_path):
    fitted.save(tmp_path / "a")
    with pytest.raises(FileExistsError):
        fitted.save(tmp_path / "a")
    fitted.save(tmp_path / "a", overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: (d / "weights.npz").write_bytes((d / "weights.npz").read_bytes()[:100]), "corrupt or truncated"),
        (lambda d: (d / "weights.npz").unlink(), r"weights.npz: missing"),
        (lambda d: (d / "model.json").write_text("{not json"), "model.json: not valid JSON"),
        (lambda d: (d / "optimizer.npz").write_bytes(b"garbage"), "optimizer.npz: corrupt or truncated"),
        (lambda d: _edit_json(d, lambda s: s["architecture"]["layers"][0].update(units=33)), "has shape"),
        (lambda d: _edit_json(d, lambda s: s.update(labels=["a"])), "1 labels for an output layer of 10 units"),
    ],
)
def test_corrupted_artifacts_are_refused_clearly(fitted, tmp_path, damage, message):
    fitted.save(tmp_path / "a")
    damage(tmp_path / "a")
    with pytest.raises(ArtifactError, match=message):
        MLPClassifier.load(tmp_path / "a")


def test_nan_weights_are_refused(fitted, tmp_path):
    fitted.save(tmp_path / "a")
    weights = dict(np.load(tmp_path / "a" / "weights.npz"))
    weights["dense_0/bias"][0] = np.nan
    np.savez(tmp_path / "a" / "weights.npz", **weights)
    with pytest.raises(ArtifactError, match="dense_0/bias contains NaN or Inf"):
        MLPClassifier.load(tmp_path / "a")


def _edit_json(folder, change) -> None:
    spec = json.loads((folder / "model.json").read_text())
    change(spec)
    (folder / "model.json").write_text(json.dumps(spec))
