"""The issue's full-size case: the 784-256-128-10 MLP trained on all of MNIST (slow: trains first)."""

import time

import pytest

from exporter.export import export
from exporter.manifest import read_manifest

EXPORT_GOAL_S = 10.0


@pytest.mark.slow
def test_full_mnist_mlp_exports_within_the_goal_and_meets_the_int8_goals(tmp_path):
    from trainer import MLPClassifier, load_mnist

    artifact = MLPClassifier(hidden=(256, 128), epochs=2, seed=0).fit(load_mnist("train")).save(tmp_path / "a")
    start = time.perf_counter()
    folder = export(artifact, tmp_path / "models", "mnist")
    seconds = time.perf_counter() - start
    assert seconds < EXPORT_GOAL_S, f"export took {seconds:.1f} s"
    manifest = read_manifest(folder)
    assert manifest["checks"]["parity_trainer"]["images"] == 10000 and manifest["checks"]["parity_trainer"]["passed"]
    assert manifest["variants"]["model.onnx"]["accuracy"] > 0.95
    int8 = manifest["variants"]["model.int8.onnx"]
    assert int8["size_ratio"] <= 0.30 and int8["accuracy_drop"] <= 0.005
    assert manifest["variants"]["model.ort"]["accuracy"] == manifest["variants"]["model.onnx"]["accuracy"]
