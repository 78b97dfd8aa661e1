"""The exported model predicts what the trainer predicts, checked here independently of export()."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx.reference import ReferenceEvaluator

from exporter.manifest import read_manifest


@pytest.fixture(scope="module")
def version(exported_repository):
    return exported_repository / "mnist" / "1"


def test_onnxruntime_matches_the_trainer_on_test_images(version, trained_artifact):
    from trainer import MLPClassifier, load_mnist

    x = load_mnist("test").x[:2000]
    expected = MLPClassifier.load(trained_artifact).predict_proba(x)
    sess = ort.InferenceSession(str(version / "model.onnx"), providers=["CPUExecutionProvider"])
    probabilities, labels = sess.run(["probabilities", "label"], {"images": x.astype(np.float32)})
    assert np.abs(probabilities - expected).max() <= 1e-5
    np.testing.assert_array_equal(labels, expected.argmax(axis=1))


def test_reference_evaluator_matches_onnxruntime_on_extreme_images(version):
    x = np.stack([np.full((28, 28), v, np.float32) for v in (0.0, 255.0, 1e6, -1e6)])
    x = np.concatenate([x, np.random.default_rng(0).uniform(0, 255, (8, 28, 28)).astype(np.float32)])
    sess = ort.InferenceSession(str(version / "model.onnx"), providers=["CPUExecutionProvider"])
    expected_p, expected_l = ReferenceEvaluator(onnx.load(version / "model.onnx")).run(None, {"images": x})
    probabilities, labels = sess.run(None, {"images": x})
    np.testing.assert_allclose(probabilities, expected_p, atol=1e-5, rtol=0)
    np.testing.assert_array_equal(labels, expected_l)


def test_manifest_records_full_test_set_parity(version):
    checks = read_manifest(version)["checks"]
    assert checks["parity_trainer"] | {"max_abs_diff": None} == {
        "against": "trainer.MLPClassifier.predict_proba",
        "images": 10000,
        "max_abs_diff": None,
        "label_mismatches": 0,
        "atol": 1e-5,
        "passed": True,
    }
    assert checks["parity_trainer"]["max_abs_diff"] <= 1e-5
    assert checks["reference_evaluator"]["images"] == 68 and checks["reference_evaluator"]["passed"]
    assert checks["checker"] == "passed (full_check)" and checks["shape_inference"] == "passed (strict)"
