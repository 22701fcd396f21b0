"""Normalizations pinned with numbers: what each loss and penalty averages over.

Duplicating the batch must leave every value unchanged (a mean over the batch), and a
value computed by hand on a tiny array pins the rest (sum or mean over units)."""

import warnings

import numpy as np
import pytest
from tolerances import unit_roundoff

import npae
from npae.objectives.losses import bce, mse, one_hot, softmax_cross_entropy
from npae.objectives.penalties import KLSparsity, L1Activity, WeightDecay


def test_mse_is_mean_over_all_elements():
    p = np.array([[0.0, 1.0], [2.0, 3.0]])
    y = np.zeros((2, 2))
    value, grad = mse(p, y)
    assert value == (0 + 1 + 4 + 9) / 4
    np.testing.assert_array_equal(grad, 2 * p / 4)


def test_bce_is_mean_over_all_elements():
    p = np.array([[0.5, 0.25]])
    y = np.array([[1.0, 0.0]])
    value, grad = bce(p, y)
    # the logs need not be correctly rounded (NumPy's SIMD logs are within 4 ulp, i.e. 8 u
    # relative) and npae takes log1p(-p) where this takes log(0.75): 2 x 8 u, plus the sums
    assert value == pytest.approx(-(np.log(0.5) + np.log(0.75)) / 2, rel=20 * unit_roundoff())
    np.testing.assert_allclose(grad, [[(0.5 - 1) / 0.25 / 2, 0.25 / (0.25 * 0.75) / 2]], rtol=1e-15)


def test_softmax_cross_entropy_is_mean_over_the_batch():
    """Two rows by hand: logits (0, log 3) give p = (1/4, 3/4); (0, 0) give (1/2, 1/2)."""
    z = np.array([[0.0, np.log(3.0)], [5.0, 5.0]])
    y = np.array([[0.0, 1.0], [1.0, 0.0]])
    value, grad = softmax_cross_entropy(z, y)
    # exp and log to within a few ulp each (NumPy's SIMD versions), then a handful of sums
    assert value == pytest.approx(-(np.log(0.75) + np.log(0.5)) / 2, rel=20 * unit_roundoff())
    np.testing.assert_allclose(grad, [[0.25 / 2, -0.25 / 2], [-0.5 / 2, 0.5 / 2]], rtol=20 * unit_roundoff())
    v2, g2 = softmax_cross_entropy(np.concatenate([z, z]), np.concatenate([y, y]))
    assert v2 == pytest.approx(value, rel=1e-13)
    np.testing.assert_allclose(g2[:2], grad / 2, rtol=1e-13)  # each copy carries half


def test_softmax_cross_entropy_finite_for_huge_logits_and_one_hot():
    z = np.array([[1e4, 0.0, -1e4]], dtype=np.float32)
    value, grad = softmax_cross_entropy(z, one_hot(np.array([1]), 3))
    assert value == pytest.approx(1e4, rel=1e-6) and np.all(np.isfinite(grad)) and grad.dtype == np.float32
    np.testing.assert_allclose(grad, [[1.0, -1.0, 0.0]], atol=1e-6)


def test_softmax_cross_entropy_gradient_check_and_refusals():
    rng = np.random.default_rng(3)
    y = rng.dirichlet(np.ones(4), 6)
    report = npae.checks.check_function(lambda z: softmax_cross_entropy(z, y), 2 * rng.standard_normal((6, 4)))
    assert report.passed, report
    wrong = npae.checks.check_function(lambda z: (softmax_cross_entropy(z, y)[0],
                                                     softmax_cross_entropy(z, y)[1] * 6), rng.standard_normal((6, 4)))
    assert not wrong.passed  # the sum over the batch instead of the mean is caught
    with pytest.raises(ValueError, match="probability vector"):
        softmax_cross_entropy(np.zeros((2, 3)), np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        one_hot(np.array([0, 3]), 3)


def test_bce_finite_at_zero_and_one():
    p = np.array([[0.0, 1.0, 0.0, 1.0]])
    y = np.array([[0.0, 1.0, 1.0, 0.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value, grad = bce(p, y)
    assert np.isfinite(value) and np.all(np.isfinite(grad))
    assert value == pytest.approx(2 * 100 / 4)  # two wrong certainties, each log clamped at -100
    assert grad[0, 0] == 0 and grad[0, 1] == 0


def test_l1_activity_normalization():
    h = np.array([[1.0, -2.0, 0.0], [0.5, 0.5, -1.0]])
    value, dh = L1Activity(0.1)(h)
    assert value == pytest.approx(0.1 * (3.0 + 2.0) / 2, rel=1e-15)  # per-sample sum, batch mean
    np.testing.assert_array_equal(dh, 0.1 * np.sign(h) / 2)


def test_kl_sparsity_by_hand():
    h = np.array([[0.1, 0.4], [0.3, 0.2]])  # rho_hat = [0.2, 0.3]
    rho, beta = 0.05, 3.0
    value, dh = KLSparsity(rho, beta)(h)
    kl = lambda r: rho * np.log(rho / r) + (1 - rho) * np.log((1 - rho) / (1 - r))  # noqa: E731
    assert value == pytest.approx(beta * (kl(0.2) + kl(0.3)), rel=1e-14)
    d = beta / 2 * (-rho / np.array([0.2, 0.3]) + (1 - rho) / (1 - np.array([0.2, 0.3])))
    np.testing.assert_allclose(dh, np.broadcast_to(d, h.shape), rtol=1e-14)
    assert KLSparsity(0.2, 1.0)(np.full((3, 4), 0.2))[0] == pytest.approx(0.0, abs=1e-15)  # at target: 0


def test_weight_decay_by_hand():
    layer = npae.Dense(2, 2, dtype=np.float64)
    layer.params["W"].value[...] = [[1.0, 2.0], [0.0, -1.0]]
    layer.params["b"].value[...] = [5.0, 5.0]  # no decay on biases
    value, grads = WeightDecay(0.1)(layer.named_params())
    assert value == pytest.approx(0.05 * 6.0, rel=1e-15)
    assert set(grads) == {"W"}
    np.testing.assert_allclose(grads["W"], 0.1 * layer.W, rtol=1e-15)


@pytest.mark.parametrize("penalty, low, high", [
    (L1Activity(0.3), -1, 1), (KLSparsity(0.1, 2.0), 0.01, 0.99),
])
def test_duplicating_the_batch_leaves_the_value_unchanged(penalty, low, high):
    h = np.random.default_rng(0).uniform(low, high, (5, 7))
    v1, g1 = penalty(h)
    v2, g2 = penalty(np.concatenate([h, h]))
    assert v2 == pytest.approx(v1, rel=1e-13)
    np.testing.assert_allclose(g2[:5], g1 / 2, rtol=1e-13)  # each copy carries half


@pytest.mark.parametrize("loss", [mse, bce])
def test_loss_duplication_invariance(loss):
    rng = np.random.default_rng(0)
    p, y = rng.uniform(0.01, 0.99, (4, 6)), rng.uniform(0, 1, (4, 6))
    assert loss(np.concatenate([p, p]), np.concatenate([y, y]))[0] == pytest.approx(loss(p, y)[0], rel=1e-13)


def test_penalties_keep_dtype():
    h = np.random.default_rng(0).uniform(0.1, 0.9, (3, 4)).astype(np.float32)
    for penalty in (L1Activity(0.1), KLSparsity(0.05, 1.0)):
        _, dh = penalty(h)
        assert dh.dtype == np.float32 and dh.shape == h.shape
    for loss in (mse, bce):
        _, g = loss(h, h)
        assert g.dtype == np.float32


def test_sigmoid_no_overflow_warning_at_extremes():
    x = np.array([[-1e4, -800.0, -50.0, 0.0, 50.0, 800.0, 1e4]])
    for dtype in (np.float32, np.float64):
        with np.errstate(all="raise"):
            y = npae.Sigmoid().forward(x.astype(dtype))
        assert np.all(np.isfinite(y)) and y.dtype == dtype
        assert y[0, 0] == 0 and y[0, -1] == 1 and y[0, 3] == 0.5
