"""Every layer's and the loss's analytic gradients against central finite differences, in float64."""

import numpy as np
import pytest

from trainer.layers import Dense, Flatten, Linear, ReLU, Sigmoid, Tanh, activation
from trainer.losses import SoftmaxCrossEntropy, log_softmax, softmax

EPS = 1e-6


def numeric_grad(f, x: np.ndarray) -> np.ndarray:
    """d f(x) / dx by central differences, f a scalar function of x (x is perturbed in place)."""
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + EPS
        up = f()
        x[i] = old - EPS
        down = f()
        x[i] = old
        grad[i] = (up - down) / (2 * EPS)
    return grad


def test_dense_gradients_match_finite_differences(rng):
    x = rng.standard_normal((4, 5))
    layer = Dense(rng.standard_normal((5, 3)), rng.standard_normal(3))
    weights = rng.standard_normal((4, 3))  # loss = sum(weights * out): dout = weights

    def loss() -> float:
        return float(np.sum(weights * layer.forward(x)))

    loss()
    dx = layer.backward(weights).copy()
    np.testing.assert_allclose(dx, numeric_grad(loss, x), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(layer.dkernel, numeric_grad(loss, layer.kernel), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(layer.dbias, numeric_grad(loss, layer.bias), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("layer_type", [ReLU, Tanh, Sigmoid, Linear])
def test_activation_gradients_match_finite_differences(layer_type, rng):
    layer = layer_type()
    x = rng.standard_normal((6, 7)) * 3
    x[np.abs(x) < 1e-3] = 0.5  # keep ReLU's kink out of the finite-difference stencil
    weights = rng.standard_normal(x.shape)

    def loss() -> float:
        return float(np.sum(weights * layer.forward(x)))

    loss()
    dx = layer.backward(weights)
    np.testing.assert_allclose(dx, numeric_grad(loss, x), rtol=1e-5, atol=1e-8)


def test_activation_values():
    x = np.array([[-2.0, 0.0, 3.0]])
    np.testing.assert_array_equal(ReLU().forward(x), [[0.0, 0.0, 3.0]])
    np.testing.assert_allclose(Tanh().forward(x), np.tanh(x))
    np.testing.assert_allclose(Sigmoid().forward(x), 1 / (1 + np.exp(-x)))
    np.testing.assert_array_equal(Linear().forward(x), x)


def test_sigmoid_saturates_without_nan_or_warnings():
    x = np.array([[-1000.0, 1000.0]], dtype=np.float32)
    with np.errstate(all="raise", under="ignore"):
        np.testing.assert_array_equal(Sigmoid().forward(x), [[0.0, 1.0]])


def test_unknown_activation_names_the_choices():
    with pytest.raises(ValueError, match=r"unknown activation 'swish' \(expected one of \['linear', 'relu'"):
        activation("swish")


def test_flatten_round_trips_shapes(rng):
    x = rng.standard_normal((3, 4, 5))
    f = Flatten()
    assert f.forward(x).shape == (3, 20)
    assert f.backward(np.ones((3, 20))).shape == (3, 4, 5)


def test_cross_entropy_gradient_matches_finite_differences(rng):
    logits = rng.standard_normal((5, 4)) * 2
    y = np.array([0, 3, 1, 1, 2])
    ce = SoftmaxCrossEntropy()
    ce.forward(logits, y)
    analytic = ce.backward().copy()
    np.testing.assert_allclose(analytic, numeric_grad(lambda: ce.forward(logits, y), logits), rtol=1e-6, atol=1e-9)


def test_cross_entropy_value_is_the_mean_negative_log_likelihood(rng):
    logits = rng.standard_normal((5, 4))
    y = np.array([0, 3, 1, 1, 2])
    expected = -np.mean(np.log(np.exp(logits) / np.exp(logits).sum(1, keepdims=True))[np.arange(5), y])
    assert SoftmaxCrossEntropy().forward(logits, y) == pytest.approx(expected, rel=1e-12)


def test_huge_logits_give_finite_loss_gradient_and_probabilities():
    logits = np.array([[1e30, -1e30, 0.0], [3e38, 3e38, -3e38], [1e4, 1e4 + 3, 1e4 + 1]], dtype=np.float32)
    y = np.array([0, 1, 1])
    ce = SoftmaxCrossEntropy()
    # overflow of max - min to -inf is expected and harmless (its exp is 0); NaN or division would raise
    with np.errstate(all="raise", under="ignore", over="ignore"):
        loss = ce.forward(logits, y)
        grad = ce.backward()
        p = softmax(logits)
    assert np.isfinite(loss) and np.all(np.isfinite(grad)) and np.all(np.isfinite(p))
    np.testing.assert_allclose(p.sum(axis=1), 1, rtol=1e-6)
    np.testing.assert_allclose(p[2], softmax(np.array([[0.0, 3.0, 1.0]]))[0], rtol=1e-5)
    assert loss == pytest.approx((0 + np.log(2) + -np.log(p[2, 1])) / 3, rel=1e-5)


def test_log_softmax_is_log_of_softmax(rng):
    z = rng.standard_normal((3, 6)) * 50
    np.testing.assert_allclose(log_softmax(z), np.log(softmax(z)), rtol=1e-9, atol=1e-12)


def test_cross_entropy_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match=r"logits must be \[N, classes\] and y \[N\]"):
        SoftmaxCrossEntropy().forward(np.zeros((3, 2)), np.zeros(4, dtype=np.int64))
