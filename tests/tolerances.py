"""Tolerances that follow from the arithmetic, for comparing two floating-point results.

The rule (tests/README.md): a sum of ``n`` terms computed in any order, with or without
fused multiply-adds, is within ``gamma(n) * sum|terms|`` of the exact sum (Higham, *Accuracy
and Stability of Numerical Algorithms*, 2nd ed., section 3.1), where
``gamma(n) = n u / (1 - n u)`` and ``u = eps / 2``. Two implementations of the same sums
(two BLAS kernels, two algorithms) therefore differ by at most ``2 gamma(n) sum|terms|``.
Which order a machine uses is not ours to know (OpenBLAS picks its kernels by CPU), so a
test compares against that bound, never against what one machine printed, and never
entry by entry relative to the entry itself: an entry that is a near-cancellation of large
terms is small, and so is its relative accuracy.

Three forms, from the most to the least specific:

- :func:`assert_within`: ``|actual - desired| <= bound`` with the bound computed by the test
  from the magnitudes (e.g. ``2 * gamma(n) * (|x|.T @ |y|)`` for ``x.T @ y``).
- :func:`assert_sums_close`: scalars and arrays of sums, given ``sum|terms|``.
- :func:`assert_close`: the array's own scale, ``max|a - d| <= factor * gamma(terms) * max|d|``
  (DESIGN.md's ``atol = c * eps * max|ref|`` with c from the number of terms summed), for
  results of many layers where ``sum|terms|`` is not at hand (batched against one-pass inference).
"""

from __future__ import annotations

import numpy as np


def unit_roundoff(dtype=np.float64) -> float:
    """``u = eps / 2``: the largest relative error of one correctly rounded operation."""
    return float(np.finfo(dtype).eps) / 2


def gamma(n: int, dtype=np.float64) -> float:
    """``n u / (1 - n u)``: the relative error bound of a sum or dot product of n terms."""
    nu = n * unit_roundoff(dtype)
    if nu >= 1:
        raise ValueError(f"gamma: n u = {nu} >= 1, no bound")
    return nu / (1 - nu)


def _diff(actual, desired):
    actual, desired = np.asarray(actual, dtype=np.float64), np.asarray(desired, dtype=np.float64)
    assert actual.shape == desired.shape, f"shapes differ: {actual.shape} vs {desired.shape}"
    return np.abs(actual - desired)


def assert_within(actual, desired, bound, what="values"):
    """``|actual - desired| <= bound`` element-wise; ``bound`` is a scalar or an array of the same shape."""
    diff = _diff(actual, desired)
    bound = np.broadcast_to(np.asarray(bound, dtype=np.float64), diff.shape)
    bad = diff > bound
    assert not bad.any(), (
        f"{what}: {int(bad.sum())} of {diff.size} entries differ by more than the bound; worst "
        f"{float(diff[bad].max()):.3e} against a bound of {float(bound[bad][np.argmax(diff[bad])]):.3e}"
    )


def assert_sums_close(actual, desired, abs_sum, n, *, dtype=np.float64, what="sums"):
    """Two computations of sums of ``n`` terms: ``|actual - desired| <= 2 gamma(n) abs_sum``,
    ``abs_sum`` the sum of the terms' absolute values (scalar or array)."""
    assert_within(actual, desired, 2 * gamma(n, dtype) * np.asarray(abs_sum, dtype=np.float64), what)


def assert_close(actual, desired, *, terms, factor=2, dtype=np.float64, what="arrays"):
    """``max|actual - desired| <= factor * gamma(terms) * max|desired|``.

    For arrays whose entries are sums of at most ``terms`` terms (dot products, convolutions,
    a chain of layers: count the longest chain of additions). The array's largest entry
    stands in for ``sum|terms|``: it is the scale the comparison is made at, so an entry that
    is a near-cancellation is held to the array's accuracy, not to its own. ``factor`` covers
    the two computations compared and how much ``sum|terms|`` may exceed the largest entry;
    a test that raises it says why.
    """
    diff = _diff(actual, desired)
    scale = float(np.abs(np.asarray(desired, dtype=np.float64)).max(initial=0))
    bound = factor * gamma(terms, dtype) * scale
    worst = float(diff.max(initial=0))
    assert worst <= bound, f"{what}: max difference {worst:.3e} > {factor} gamma({terms}) max|desired| = {bound:.3e}"


def assert_adjoint(layer, x, u, what=None):
    """``<A x, u> = <x, A^T u>`` for a linear layer ``A`` (bias 0), to the rounding of the sums.

    Both sides are sums of the products ``A[i, j] x[j] u[i]`` in two orders, so they differ by
    at most ``2 gamma(n) S`` with ``S = <|A| |x|, |u|>`` and ``n`` the longest chain of
    additions (at most ``y.size + x.size``). ``S`` is computed exactly that way: a copy of the
    layer whose parameters are their absolute values applied to ``|x|``; for a layer without
    parameters (a reshape, an upsampling) ``A`` is a 0/1 matrix and ``|A| = A``. A wrong
    backward misses by a multiple of ``S`` itself, some 1e13 times the bound.
    """
    import copy

    y = layer.forward(x)
    lhs = float(np.vdot(y, u))
    rhs = float(np.vdot(x, layer.backward(u)))
    from npae.core import Layer

    absolute = copy.deepcopy(layer)
    # its own parameters, and those of a layer it uses (the source Dense of a TiedDense)
    for holder in [absolute] + [v for v in vars(absolute).values() if isinstance(v, Layer)]:
        for _, p in holder.named_params():
            p.value[...] = np.abs(p.value)
    scale = float(np.vdot(absolute.forward(np.abs(x), training=False), np.abs(u)))
    assert_sums_close(lhs, rhs, scale, y.size + x.size, what=what or f"<A x, u> vs <x, A^T u> of {layer!r}")
