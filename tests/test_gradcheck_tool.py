"""The checker itself: it must fail on a wrong backward, refuse float32, and warn at kinks."""

import numpy as np
import pytest

import npae
from npae.checks.gradcheck import check_function, check_layer, numerical_gradient, rel_error


class DenseForgetsBatchSum(npae.Dense):
    """dW from the first sample only: right on a batch of one, wrong on any other."""

    def backward(self, dy):
        x = self._cache
        self.params["W"].grad += np.outer(x[0], dy[0])
        self.params["b"].grad += dy.sum(0)
        return dy @ self.W.T


class UpSamplingBySlicing(npae.UpSampling2D):
    """The bug of a well-known from-scratch library: takes one element of each block."""

    def backward(self, dy):
        return dy[:, :, :: self.size[0], :: self.size[1]].copy()


class ConvFlipped(npae.Conv2D):
    """dx computed with the kernel flipped twice too often (a classic convolution slip)."""

    def backward(self, dy):
        dx = super().backward(dy)
        return dx[:, :, ::-1, ::-1].copy()


class SigmoidWithTanhDerivative(npae.Sigmoid):
    def _df(self, y, dy):
        return dy * (1 - y * y)


class ConvTransposeHalvedDx(npae.ConvTranspose2D):
    """dx off by a stray factor of 1/2 (an average where a sum belongs)."""

    def backward(self, dy, need_dx=True):
        dx = super().backward(dy, need_dx)
        return dx * 0.5


class AvgPoolWithoutTheDivisor(npae.AvgPool2D):
    def backward(self, dy):
        return super().backward(dy) * (self.pool_size[0] * self.pool_size[1])


class BatchNormWithoutTheBatchTerms(npae.BatchNorm1D):
    """The classic slip: dx = gamma dy / sigma, as if mean and var did not depend on x."""

    def backward(self, dy):
        x_hat, inv, m = self._cache
        super().backward(dy)
        return dy * self.params["gamma"].value * inv


class DropoutWithoutTheScale(npae.Dropout):
    def backward(self, dy):
        return dy * (self._cache != 0)


class ELUWithoutAlpha(npae.ELU):
    def _df(self, x, dy):
        return dy * np.where(x > 0, 1.0, np.exp(np.minimum(x, 0)))


class GELUWithoutTheTanhTerm(npae.GELU):
    def _df(self, x, dy):
        return dy * 0.5 * (1 + np.tanh(self.C * (x + self.A * x ** 3)))


@pytest.mark.parametrize("make, x_shape, broken", [
    (lambda rng: ConvTransposeHalvedDx(2, 2, 3, stride=2, rng=rng, dtype=np.float64), (2, 2, 3, 3), "x"),
    (lambda rng: AvgPoolWithoutTheDivisor(2), (2, 2, 4, 4), "x"),
    (lambda rng: BatchNormWithoutTheBatchTerms(3, dtype=np.float64), (6, 3), "x"),
    (lambda rng: DropoutWithoutTheScale(0.4, rng=np.random.default_rng(1)), (4, 5), "x"),
    (lambda rng: ELUWithoutAlpha(0.3), (4, 5), "x"),
    (lambda rng: GELUWithoutTheTanhTerm(), (4, 5), "x"),
    (lambda rng: DenseForgetsBatchSum(4, 3, rng=rng, dtype=np.float64), (5, 4), "W"),
    (lambda rng: UpSamplingBySlicing(2), (2, 2, 3, 3), "x"),
    (lambda rng: ConvFlipped(2, 2, 3, rng=rng, dtype=np.float64), (2, 2, 5, 5), "x"),
    (lambda rng: SigmoidWithTanhDerivative(), (3, 4), "x"),
])
def test_checker_fails_on_wrong_backward(make, x_shape, broken):
    rng = np.random.default_rng(0)
    report = check_layer(make(rng), rng.standard_normal(x_shape), rng=rng)
    assert not report.passed
    assert not report[broken].passed
    assert report[broken].rel_error > 1e-3
    assert "FAIL" in str(report)


def test_checker_passes_the_correct_versions():
    rng = np.random.default_rng(0)
    assert check_layer(npae.Dense(4, 3, rng=rng, dtype=np.float64), rng.standard_normal((5, 4))).passed
    assert check_layer(npae.UpSampling2D(2), rng.standard_normal((2, 2, 3, 3))).passed


def test_checker_fails_on_wrong_function_gradient():
    def half_mse(p):
        value, grad = npae.objectives.losses.mse(p, np.zeros_like(p))
        return value, grad / 2

    report = check_function(half_mse, np.random.default_rng(0).standard_normal((3, 4)))
    assert not report.passed
    assert report.worst == pytest.approx(1 / 3, rel=1e-6)  # |g - g/2| / (|g| + |g/2|)


def test_checker_refuses_float32():
    with pytest.raises(TypeError, match="float64"):
        check_layer(npae.Dense(3, 2), np.zeros((2, 3), np.float32))
    with pytest.raises(TypeError, match="float64"):
        check_layer(npae.Dense(3, 2), np.zeros((2, 3)))  # the layer's params are float32
    with pytest.raises(TypeError, match="float64"):
        numerical_gradient(lambda x: float(np.sum(x)), np.zeros(3, np.float32))


def test_kink_crossing_is_reported():
    x = np.array([[1e-9, -2e-9, 0.5, -0.5]])  # the first two sit on the ReLU kink at h = 1e-6
    report = check_layer(npae.ReLU(), x)
    assert report["x"].kinks == 2
    assert "crossed a kink" in str(report)
    pool = np.array([[[[1.0, 1.0 + 1e-9], [0.0, -1.0]]]])  # a near-tie: the argmax flips
    report = check_layer(npae.MaxPool2D(2), pool)
    assert report["x"].kinks == 2


def test_numerical_gradient_of_known_function():
    x = np.array([0.3, -1.2, 2.0])
    g = numerical_gradient(lambda v: float(np.sum(np.sin(v) * v)), x)
    # truncation h**2 * f''' / 6 ~ 1e-12 plus rounding ~ eps * |f| / h ~ 4e-10
    np.testing.assert_allclose(g, np.cos(x) * x + np.sin(x), rtol=0, atol=1e-9)
    np.testing.assert_array_equal(x, [0.3, -1.2, 2.0])  # restored


def test_rel_error():
    assert rel_error(np.ones(3), np.ones(3)) == 0
    assert rel_error([1.0, 0.0], [1.0, 1e-3]) == pytest.approx(1e-3 / 2)  # max|a| + max|b| = 2
    assert rel_error(np.zeros(3), np.full(3, 1e-12)) == pytest.approx(1e-4)  # tiny scale floored at 1e-8
    with pytest.raises(ValueError, match="shapes"):
        rel_error(np.ones(2), np.ones(3))


def test_check_layer_leaves_params_and_grads_as_they_were():
    rng = np.random.default_rng(0)
    layer = npae.Conv2D(1, 2, 3, rng=rng, dtype=np.float64)
    layer.params["W"].grad[...] = 7.0
    w_before = layer.W.copy()
    check_layer(layer, rng.standard_normal((1, 1, 4, 4)), samples=10)
    np.testing.assert_array_equal(layer.W, w_before)
    assert np.all(layer.params["W"].grad == 7.0)


def test_sampled_coordinates():
    rng = np.random.default_rng(0)
    report = check_layer(npae.Dense(30, 20, rng=rng, dtype=np.float64), rng.standard_normal((4, 30)), samples=25)
    assert report["W"].checked == 25 and report["b"].checked == 20
    assert report.passed
