"""The MLP: contract parameter names, initialisation, forward math (what the ONNX graph computes), backward."""

import numpy as np
import pytest

from contracts import Architecture, LayerSpec, Preprocessing
from trainer.losses import SoftmaxCrossEntropy
from trainer.model import MLP, preprocess

ACT = {
    "relu": lambda z: np.maximum(z, 0),
    "tanh": np.tanh,
    "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
    "linear": lambda z: z,
}


def arch(*layers: tuple[int, str], input_shape=(3, 4)) -> Architecture:
    return Architecture(input_shape=input_shape, layers=tuple(LayerSpec(units=u, activation=a) for u, a in layers))


def reference_logits(weights: dict[str, np.ndarray], a: Architecture, x: np.ndarray) -> np.ndarray:
    """The exporter's graph, written out: per layer act(x @ kernel + bias)."""
    for i, layer in enumerate(a.layers):
        x = ACT[layer.activation](x @ weights[f"dense_{i}/kernel"] + weights[f"dense_{i}/bias"])
    return x


def test_parameters_use_the_contract_names_and_shapes():
    model = MLP(arch((5, "relu"), (2, "linear")))
    assert {k: v.shape for k, v in model.parameters().items()} == {
        "dense_0/kernel": (12, 5),
        "dense_0/bias": (5,),
        "dense_1/kernel": (5, 2),
        "dense_1/bias": (2,),
    }
    assert all(v.dtype == np.float32 for v in model.state_dict().values())


def test_parameters_are_views_of_one_flat_vector():
    model = MLP(arch((5, "relu"), (2, "linear")))
    model.flat_params[:] = 7
    assert all(np.all(v == 7) for v in model.parameters().values())
    assert model.flat_params.size == 12 * 5 + 5 + 5 * 2 + 2


def test_he_init_for_relu_hidden_layers_and_glorot_for_the_output():
    model = MLP(arch((512, "relu"), (256, "linear"), input_shape=(784,)), seed=3)
    w0, w1 = model.dense[0].kernel, model.dense[1].kernel
    assert w0.std() == pytest.approx(np.sqrt(2 / 784), rel=0.02)  # He normal
    limit = np.sqrt(6 / (512 + 256))  # Glorot uniform
    assert np.abs(w1).max() <= limit and np.abs(w1).max() > 0.99 * limit
    assert w1.std() == pytest.approx(limit / np.sqrt(3), rel=0.02)
    assert np.all(model.dense[0].bias == 0) and np.all(model.dense[1].bias == 0)


def test_glorot_init_everywhere_on_request_and_seeds_matter():
    a = arch((64, "relu"), (10, "relu"), input_shape=(100,))
    model = MLP(a, init="glorot", seed=1)
    assert np.abs(model.dense[0].kernel).max() <= np.sqrt(6 / 164)
    np.testing.assert_array_equal(model.flat_params, MLP(a, init="glorot", seed=1).flat_params)
    assert not np.array_equal(model.flat_params, MLP(a, init="glorot", seed=2).flat_params)
    with pytest.raises(ValueError, match="unknown init 'xavier'"):
        MLP(a, init="xavier")


@pytest.mark.parametrize("act", ["relu", "tanh", "sigmoid", "linear"])
def test_forward_and_logits_compute_the_graph_math(act, rng):
    a = arch((6, act), (4, "relu"))
    model = MLP(a, seed=5)
    x = rng.standard_normal((7, 12)).astype(np.float32)
    expected = reference_logits(model.state_dict(), a, x)
    np.testing.assert_allclose(model.logits(x), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.forward(x), expected, rtol=1e-5, atol=1e-6)


def test_backward_matches_finite_differences_of_the_whole_network(rng):
    a = arch((5, "tanh"), (4, "relu"), (3, "linear"))
    model = MLP(a, seed=0)
    x = rng.standard_normal((6, 12)).astype(np.float32)
    y = np.array([0, 1, 2, 2, 1, 0])
    ce = SoftmaxCrossEntropy()
    ce.forward(model.forward(x), y)
    model.backward(ce.backward())
    weights64 = {k: v.astype(np.float64) for k, v in model.state_dict().items()}
    x64 = x.astype(np.float64)

    def loss() -> float:
        return SoftmaxCrossEntropy().forward(reference_logits(weights64, a, x64), y)

    for name, grad in model.gradients().items():
        w = weights64[name]
        numeric = np.zeros_like(w)
        for i in np.ndindex(w.shape):
            old = w[i]
            w[i] = old + 1e-6
            up = loss()
            w[i] = old - 1e-6
            numeric[i] = (up - loss()) / 2e-6
            w[i] = old
        np.testing.assert_allclose(grad, numeric, rtol=2e-3, atol=2e-5, err_msg=name)


def test_preprocess_flattens_and_normalises_in_float32():
    x = np.array([[[0, 255], [51, 102]]], dtype=np.uint8)
    out = preprocess(x, Preprocessing(scale=1 / 255, mean=0.5, std=0.25))
    assert out.dtype == np.float32 and out.shape == (1, 4)
    np.testing.assert_allclose(out, [[-2.0, 2.0, -1.2, -0.4]], rtol=1e-6)


def test_load_state_dict_refuses_mismatched_weights():
    model = MLP(arch((5, "relu"), (2, "linear")))
    weights = model.state_dict()
    weights["dense_1/bias"] = np.zeros(3, np.float32)
    with pytest.raises(ValueError, match=r"dense_1/bias: shape \(3,\), the model expects \(2,\)"):
        model.load_state_dict(weights)
