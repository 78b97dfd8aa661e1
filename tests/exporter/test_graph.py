"""The ONNX signature the service, Triton, phones and browsers rely on."""

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto

from contracts import BATCH_DIM, IR_VERSION, METADATA_KEYS, OPSET, PRODUCER_NAME
from exporter import build_model
from exporter.errors import UnsupportedModelError
from tests.exporter.models import random_spec, random_weights


def session(model: onnx.ModelProto) -> ort.InferenceSession:
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def numpy_forward(spec, weights, x_raw):
    """The artifact's documented math, written independently of the trainer."""
    pre = spec.preprocessing
    h = (x_raw.reshape(len(x_raw), -1).astype(np.float64) * pre.scale - pre.mean) / pre.std
    acts = {"relu": lambda z: np.maximum(z, 0), "tanh": np.tanh, "sigmoid": lambda z: 1 / (1 + np.exp(-z))}
    for i, layer in enumerate(spec.architecture.layers):
        h = h @ weights[f"dense_{i}/kernel"] + weights[f"dense_{i}/bias"]
        h = acts.get(layer.activation, lambda z: z)(h)
    e = np.exp(h - h.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.fixture(scope="module")
def mnist_model():
    spec = random_spec()
    return spec, random_weights(spec), build_model(spec, random_weights(spec), name="mnist", version=3)


def test_signature_names_dtypes_and_symbolic_batch(mnist_model):
    _, _, model = mnist_model
    (inp,) = model.graph.input
    probabilities, label = model.graph.output
    assert inp.name == "images" and inp.type.tensor_type.elem_type == TensorProto.FLOAT
    assert [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim] == [BATCH_DIM, 28, 28]
    assert probabilities.name == "probabilities" and probabilities.type.tensor_type.elem_type == TensorProto.FLOAT
    assert [d.dim_param or d.dim_value for d in probabilities.type.tensor_type.shape.dim] == [BATCH_DIM, 10]
    assert label.name == "label" and label.type.tensor_type.elem_type == TensorProto.INT64
    assert [d.dim_param or d.dim_value for d in label.type.tensor_type.shape.dim] == [BATCH_DIM]


def test_opset_and_ir_are_pinned_and_onnxruntime_130_runs_any_batch_size(mnist_model):
    _, _, model = mnist_model
    assert model.ir_version == IR_VERSION == 8
    assert [(o.domain, o.version) for o in model.opset_import] == [("", OPSET)] and OPSET == 17
    assert ort.__version__ == "1.30.0"
    sess = session(model)
    for batch in (0, 1, 7):
        probabilities, label = sess.run(None, {"images": np.zeros((batch, 28, 28), np.float32)})
        assert probabilities.shape == (batch, 10) and probabilities.dtype == np.float32
        assert label.shape == (batch,) and label.dtype == np.int64


def test_initializers_are_named_after_artifact_parameters(mnist_model):
    _, weights, model = mnist_model
    initializers = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    for name, value in weights.items():
        np.testing.assert_array_equal(initializers[name], value)


def test_metadata_props_carry_labels_preprocessing_name_version_and_producer(mnist_model):
    spec, _, model = mnist_model
    props = {p.key: p.value for p in model.metadata_props}
    assert json.loads(props[METADATA_KEYS.LABELS]) == [str(i) for i in range(10)]
    assert props[METADATA_KEYS.MODEL_NAME] == "mnist" and props[METADATA_KEYS.MODEL_VERSION] == "3"
    assert json.loads(props[METADATA_KEYS.PREPROCESSING]) == {"scale": 1 / 255, "mean": 0.0, "std": 1.0}
    assert json.loads(props[METADATA_KEYS.INPUT_SHAPE]) == [28, 28]
    assert json.loads(props[METADATA_KEYS.METRICS]) == {}
    assert props[METADATA_KEYS.PRODUCER].startswith(f"{PRODUCER_NAME} ")
    assert model.producer_name == PRODUCER_NAME and model.model_version == 3
    assert "mnist version 3" in model.doc_string


def test_training_metrics_reach_the_metadata():
    spec = random_spec().model_copy(update={"test_metrics": {"test_accuracy": 0.97, "test_loss": 0.1}})
    model = build_model(spec, random_weights(spec), name="m", version=1)
    props = {p.key: p.value for p in model.metadata_props}
    assert json.loads(props[METADATA_KEYS.METRICS]) == {"test_accuracy": 0.97, "test_loss": 0.1}


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid", "linear"])
def test_every_activation_computes_the_artifact_math(activation):
    spec = random_spec(input_shape=(4, 5), hidden=(8, 6), activation=activation, classes=3)
    spec = spec.model_copy(update={"preprocessing": spec.preprocessing.model_copy(update={"mean": 0.2, "std": 0.3})})
    weights = random_weights(spec, seed=1)
    x = np.random.default_rng(2).integers(0, 256, (32, 4, 5)).astype(np.float32)
    probabilities, label = session(build_model(spec, weights, name="m", version=1)).run(None, {"images": x})
    expected = numpy_forward(spec, weights, x)
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)
    np.testing.assert_array_equal(label, probabilities.argmax(axis=1))


def test_unsupported_activation_is_refused_with_the_layer_named():
    spec = random_spec()
    layers = (spec.architecture.layers[0].model_construct(units=16, activation="softplus"), spec.architecture.layers[1])
    bad = spec.model_copy(update={"architecture": spec.architecture.model_copy(update={"layers": layers})})
    with pytest.raises(UnsupportedModelError, match=r"layer 0: unsupported activation 'softplus' \(expected one of"):
        build_model(bad, random_weights(spec), name="m", version=1)
