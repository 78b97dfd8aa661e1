"""Single optimizer steps against hand-worked updates (numbers in the comments)."""

import subprocess
import sys

import numpy as np
import pytest

from trainer.optim import SGD, Adam, Momentum, make_optimizer

G1 = np.array([0.5, -0.1], dtype=np.float32)
G2 = np.array([0.2, 0.3], dtype=np.float32)


def params() -> dict[str, np.ndarray]:
    return {"w": np.array([1.0, -2.0], dtype=np.float32)}


def test_sgd_step():
    p = params()
    SGD(p, lr=0.1).step({"w": G1})
    # [1, -2] - 0.1 * [0.5, -0.1]
    np.testing.assert_allclose(p["w"], [0.95, -1.99], rtol=1e-6)


def test_sgd_with_weight_decay_adds_l2_gradient():
    p = params()
    SGD(p, lr=0.1, weight_decay=0.01).step({"w": G1})
    # g + 0.01 * p = [0.51, -0.12]; [1, -2] - 0.1 * g
    np.testing.assert_allclose(p["w"], [0.949, -1.988], rtol=1e-6)


def test_momentum_two_steps():
    p = params()
    opt = Momentum(p, lr=0.1, momentum=0.9)
    opt.step({"w": G1})  # b = g1 = [0.5, -0.1]; p = [0.95, -1.99]
    opt.step({"w": G2})  # b = 0.9 * b + g2 = [0.65, 0.21]; p -= 0.1 * b
    np.testing.assert_allclose(p["w"], [0.885, -2.011], rtol=1e-6)


def test_adam_first_step_moves_each_weight_by_lr_against_the_gradient_sign():
    p = params()
    Adam(p, lr=0.1).step({"w": G1})
    # t=1: m_hat = g, v_hat = g^2, so the step is lr * g / (|g| + eps) = 0.1 * sign(g)
    np.testing.assert_allclose(p["w"], [0.9, -1.9], rtol=1e-5)  # float32 moments


def test_adam_second_step_matches_the_paper():
    p = params()
    opt = Adam(p, lr=0.1)
    opt.step({"w": G1})
    opt.step({"w": G2})
    # m = 0.9 * [0.05, -0.01] + 0.1 * [0.2, 0.3] = [0.065, 0.021];  m_hat = m / (1 - 0.9^2) = [0.342105, 0.110526]
    # v = 0.999 * [2.5e-4, 1e-5] + 0.001 * [0.04, 0.09] = [2.8975e-4, 9.999e-5]; v_hat = v / (1 - 0.999^2)
    #   = [0.144947, 0.050020];  step = 0.1 * m_hat / (sqrt(v_hat) + 1e-8) = [0.0898575, 0.0494187]
    np.testing.assert_allclose(p["w"], [0.9 - 0.0898575, -1.9 - 0.0494187], rtol=1e-5)


def test_flat_and_per_tensor_updates_agree():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((3, 4)).astype(np.float32), rng.standard_normal(4).astype(np.float32)
    ga, gb = rng.standard_normal((3, 4)).astype(np.float32), rng.standard_normal(4).astype(np.float32)
    flat = np.concatenate([a.ravel(), b])
    per = {"a": a.copy(), "b": b.copy()}
    fused, split = Adam({"all": flat}, weight_decay=0.1), Adam(per, weight_decay=0.1)
    for _ in range(3):
        fused.step({"all": np.concatenate([ga.ravel(), gb])})
        split.step({"a": ga, "b": gb})
    np.testing.assert_array_equal(flat, np.concatenate([per["a"].ravel(), per["b"]]))


def test_updates_are_in_place_and_leave_gradients_untouched():
    p = params()
    w = p["w"]
    g = G1.copy()
    make_optimizer("adam", p, lr=0.1, weight_decay=0.5).step({"w": g})
    assert p["w"] is w and not np.array_equal(w, [1.0, -2.0])
    np.testing.assert_array_equal(g, G1)


def test_state_dict_round_trip_continues_identically():
    p1, p2 = params(), params()
    a = Adam(p1, lr=0.1)
    a.step({"w": G1})
    b = Adam(p2, lr=0.1)
    p2["w"][...] = p1["w"]
    b.load_state_dict(a.state_dict())
    a.step({"w": G2})
    b.step({"w": G2})
    np.testing.assert_array_equal(p1["w"], p2["w"])


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: SGD(params(), lr=0), "learning rate must be > 0, got 0"),
        (lambda: SGD(params(), lr=0.1, weight_decay=-1), "weight decay must be >= 0"),
        (lambda: Momentum(params(), lr=0.1, momentum=1.0), r"momentum must be in \[0, 1\)"),
        (lambda: Adam(params(), b1=1.0), r"b1 must be in \[0, 1\)"),
        (lambda: make_optimizer("rmsprop", params(), lr=0.1), "unknown optimizer 'rmsprop'"),
    ],
)
def test_nonsense_hyperparameters_are_refused(build, message):
    with pytest.raises(ValueError, match=message):
        build()


@pytest.mark.parametrize("name", ["adam", "momentum", "sgd"])
def test_parallel_chunked_update_is_identical_to_serial(name):
    rng = np.random.default_rng(0)
    start = rng.standard_normal(200_003).astype(np.float32)  # large enough to be split; odd length
    serial, parallel = {"all": start.copy()}, {"all": start.copy()}
    a = make_optimizer(name, serial, lr=0.01, weight_decay=0.01)
    b = make_optimizer(name, parallel, lr=0.01, weight_decay=0.01, workers=3)
    for _ in range(3):
        g = rng.standard_normal(start.size).astype(np.float32)
        a.step({"all": g})
        b.step({"all": g})
    np.testing.assert_array_equal(serial["all"], parallel["all"])
    for key, value in a.state_dict().items():
        np.testing.assert_array_equal(value, b.state_dict()[key])


@pytest.mark.parametrize("build", [lambda p: Adam(p), lambda p: Momentum(p, lr=0.1)])
def test_decaying_state_never_becomes_subnormal(build):
    # a unit that stops getting gradients: its state decays x0.9 per step through float32's
    # subnormal range, where every pass over the state array runs several times slower
    p = {"w": np.ones(1000, np.float32)}
    opt = build(p)
    opt.step({"w": np.full(1000, 1e-3, np.float32)})
    zero = {"w": np.zeros(1000, np.float32)}
    tiny = np.finfo(np.float32).tiny
    for _ in range(1200):  # 0.9**1200 ~ 1e-55: the decay crosses the subnormal range on the way
        opt.step(zero)
        for state in opt.state["w"].values():
            assert not np.any((state != 0) & (np.abs(state) < tiny)), f"subnormal state at step {opt.t}"


@pytest.mark.parametrize("kernel", ["adam_update", "adam_numpy"])
def test_adam_kernels_are_the_paper_arithmetic_to_the_bit(kernel):
    from trainer import fused

    if kernel == "adam_update" and not fused.FUSED:
        pytest.skip("numba is not installed (the `fast` extra): adam_update runs adam_numpy")
    rng = np.random.default_rng(0)
    p, g, m, v = (rng.standard_normal(5000).astype(np.float32) for _ in range(4))
    v = np.abs(v)
    b1, b2, lr_t, eps_t = np.float32(0.9), np.float32(0.999), np.float32(1e-3), np.float32(1e-8)
    m_ref = b1 * (m - g) + g
    v_ref = b2 * (v - g * g) + g * g
    p_ref = p - lr_t * (m_ref / (np.sqrt(v_ref) + eps_t))
    getattr(fused, kernel)(p, g, m, v, b1, b2, lr_t, eps_t, np.empty_like(p))
    for got, want in ((m, m_ref), (v, v_ref), (p, p_ref)):
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, want)


def test_fused_adam_kernel_refuses_arrays_it_would_update_a_copy_of():
    from trainer.fused import adam_update

    strided = np.zeros(20, np.float32)[::2]
    ok = np.zeros(10, np.float32)
    with pytest.raises(ValueError, match="1-D contiguous arrays of one dtype"):
        adam_update(strided, ok, ok.copy(), ok.copy(), 0.9, 0.999, 1e-3, 1e-8, ok.copy())


TRAIN_SNIPPET = """
import sys
if sys.argv[1] == "numpy":
    sys.modules["numba"] = None  # as on a machine without the `fast` extra
import numpy as np
from trainer import MLPClassifier, load_mnist, fused
assert fused.FUSED == (sys.argv[1] == "numba")
clf = MLPClassifier(hidden=(32,), epochs=2, val_split=0.0).fit(load_mnist("train").subset(1000))
np.save(sys.argv[2], clf.model_.flat_params)
"""


def test_training_with_and_without_numba_gives_identical_weights(tmp_path):
    pytest.importorskip("numba")
    runs = {}
    for kernel in ("numba", "numpy"):
        out = tmp_path / f"{kernel}.npy"
        done = subprocess.run([sys.executable, "-c", TRAIN_SNIPPET, kernel, str(out)], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        runs[kernel] = np.load(out)
    assert runs["numba"].size == 32 * 784 + 32 + 32 * 10 + 10
    np.testing.assert_array_equal(runs["numba"], runs["numpy"])
