"""The bounds of tests/tolerances.py: they hold for the same sums added in another order, and
they fail on a wrong result (a wrong backward, a forgotten term) by many orders of magnitude."""

import numpy as np
import pytest
from tolerances import assert_adjoint, assert_close, assert_sums_close, assert_within, gamma, unit_roundoff

import npae


def test_gamma():
    assert unit_roundoff() == 2.0 ** -53 and unit_roundoff(np.float32) == 2.0 ** -24
    assert gamma(1) == pytest.approx(2.0 ** -53)
    assert gamma(1000) == pytest.approx(1000 * 2.0 ** -53, rel=1e-12)
    with pytest.raises(ValueError):
        gamma(2 ** 53)


def test_a_sum_in_any_order_is_within_the_bound():
    """Forward, backward, pairwise and sorted orders of one sum with much cancellation."""
    rng = np.random.default_rng(0)
    terms = rng.standard_normal(10_000) * 10.0 ** rng.integers(-8, 8, 10_000)
    orders = [terms, terms[::-1], np.sort(terms), terms[np.argsort(np.abs(terms))]]
    sums = [float(np.sum(t)) for t in orders] + [float(sum(t.tolist())) for t in orders]
    for s in sums[1:]:
        assert_sums_close(s, sums[0], np.abs(terms).sum(), terms.size)


def test_the_bounds_fail_on_wrong_results():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((30, 20)), rng.standard_normal((20, 10))
    right = a @ b
    with pytest.raises(AssertionError, match="differ by more than the bound"):
        assert_sums_close(right[:, :-1].sum(axis=1), right.sum(axis=1), np.abs(right).sum(axis=1), 200)
    wrong = right.copy()
    wrong[3, 4] += 1e-9 * np.abs(right).max()  # one entry off by a billionth of the scale
    with pytest.raises(AssertionError, match="max difference"):
        assert_close(wrong, right, terms=20)
    assert_close(np.einsum("ik,kj->ij", a, b), right, terms=20)  # another order: within
    with pytest.raises(AssertionError):
        assert_within(right + 1.0, right, 0.5)


class UpSamplingBySlicing(npae.UpSampling2D):
    """The bug seen in the wild: the backward takes one element per block instead of the sum."""

    def backward(self, dy):
        super().backward(dy)
        return dy[:, :, :: self.size[0], :: self.size[1]]


def test_the_adjoint_check_fails_on_a_wrong_backward():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 4, 5))
    u = rng.standard_normal((2, 3, 8, 10))
    assert_adjoint(npae.UpSampling2D(2), x, u)
    with pytest.raises(AssertionError, match="differ by more than the bound"):
        assert_adjoint(UpSamplingBySlicing(2), x, u)
    conv = npae.Conv2D(3, 2, 3, rng=rng, dtype=np.float64)
    assert_adjoint(conv, x, rng.standard_normal((2, 2, 4, 5)))
    conv.fast = False  # the strided kernels: the same map, other sums
    assert_adjoint(conv, x, rng.standard_normal((2, 2, 4, 5)))
