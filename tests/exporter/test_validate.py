"""The checks that decide whether an export is published."""

import numpy as np
import pytest
from onnx import helper

from exporter import build_model, validate
from exporter.errors import ValidationFailedError
from tests.exporter.models import random_spec, random_weights


@pytest.fixture(scope="module")
def model():
    spec = random_spec()
    return build_model(spec, random_weights(spec), name="m", version=1)


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).integers(0, 256, (200, 28, 28)).astype(np.float32)


def test_checker_and_strict_shape_inference_pass_on_exported_graphs(model):
    assert validate.check_graph(model) == {"checker": "passed (full_check)", "shape_inference": "passed (strict)"}


def test_a_graph_with_a_dangling_input_fails_the_checker(model):
    broken = model.__deepcopy__()
    broken.graph.node.append(helper.make_node("Relu", ["no_such_tensor"], ["x"]))
    with pytest.raises(ValidationFailedError, match="not valid ONNX"):
        validate.check_graph(broken)


def test_parity_passes_against_an_exact_reference_and_reports_numbers(model, images):
    sess = validate.session(model)
    result = validate.parity(sess, lambda x: validate.run(sess, x)[0], images, against="itself")
    assert result.as_dict() == {
        "against": "itself",
        "images": 200,
        "max_abs_diff": 0.0,
        "label_mismatches": 0,
        "atol": 1e-5,
        "passed": True,
    }


def test_parity_fails_when_probabilities_drift_beyond_1e5(model, images):
    sess = validate.session(model)
    result = validate.parity(sess, lambda x: validate.run(sess, x)[0] + 2e-5, images, against="drifted")
    assert not result.passed and result.max_abs_diff == pytest.approx(2e-5, rel=1e-2)
    with pytest.raises(ValidationFailedError, match=r"parity with drifted failed on 200 images: max \|diff\|"):
        validate.require(result)


def test_parity_counts_label_mismatches_even_when_probabilities_are_close(model, images):
    sess = validate.session(model)

    def swapped(x):
        p = validate.run(sess, x)[0].copy()
        p[:5] = np.sort(p[:5], axis=1)  # same values, but the largest moves to the last class
        return p

    result = validate.parity(sess, swapped, images, against="swapped")
    assert result.label_mismatches >= 1 and not result.passed


def test_reference_evaluator_agrees_including_extreme_inputs(model, images):
    result = validate.reference_agreement(model, validate.session(model), images)
    assert result.images == validate.REFERENCE_SAMPLE + len(validate.EXTREME_VALUES)
    assert result.passed and result.max_abs_diff <= 1e-5


def test_extreme_inputs_give_finite_probabilities_that_sum_to_one(model):
    probabilities, labels = validate.run(validate.session(model), validate.extreme_inputs((28, 28)))
    assert np.isfinite(probabilities).all()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert labels.shape == (4,)
