"""The winograd kernels (F(2x2, 3x3)) against the loop definitions, to a rounding bound derived from
the algorithm (npae/nn/kernels/winograd.py), and against central differences.

The bound: Winograd computes each output as sums over the tiles' transforms. Running the same
sums with every matrix and every array replaced by its absolute value (|A^T|, |G|, |B^T|, |x|,
|W|, |dy|) gives S, the sum of the absolute values of every term the algorithm adds, and S is at
least the direct sum of |W| |x| (each product W x appears in Winograd's expansion with
coefficients whose absolute values sum to at least 1). With n the longest chain of additions
(c_in products, and the transforms: 3 in B^T d B, 8 in G g G^T, 8 in A^T M A, the bias), the
Winograd result is within gamma(n) S of the exact sum, the loops' within gamma(9 c_in + 1) S, so
the two within their sum. A wrong transform misses by a fraction of S itself.
"""

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from strategies import SETTINGS
from tolerances import assert_within, gamma

import npae
from npae.checks.gradcheck import SMOOTH, check_layer
from npae.nn import reference as ref
from npae.nn.kernels import KERNELS, Geometry, Scratch
from npae.nn.kernels import winograd as WG
from npae.nn.windows import geometry

TRANSFORM_ADDS = 3 + 8 + 8 + 1


def tiles(xp: np.ndarray, th: int, tw: int, m: int) -> np.ndarray:
    """(N, C, th, tw, a, a): the a x a tiles (a = m + 2) of the padded input at stride m (zeros beyond)."""
    N, C, Hp, Wp = xp.shape
    canvas = np.zeros((N, C, m * th + 2, m * tw + 2))
    canvas[:, :, :Hp, :Wp] = xp
    win = np.lib.stride_tricks.sliding_window_view(canvas, (m + 2, m + 2), axis=(2, 3))
    return win[:, :, ::m, ::m]


def absolute_sums(x, W, dy, pads, out, f=WG.F2):
    """S for y, dW and dx: Winograd's own sums, in absolute value (einsum over the tiles)."""
    aBT, aG, aAT, m = np.abs(f.BT), np.abs(f.G), np.abs(f.AT), f.m
    a = m + 2
    th, tw = -(-out[0] // m), -(-out[1] // m)
    xp = np.pad(np.abs(x), ((0, 0), (0, 0), pads[:2], pads[2:]))
    V = np.einsum("xr,nctsrq,yq->xyncts", aBT, tiles(xp, th, tw, m), aBT)
    U = np.einsum("xu,ocuv,yv->xyoc", aG, np.abs(W), aG)
    M = np.einsum("xyoc,xyncts->xynots", U, V)
    Y = np.einsum("ax,xynots,by->notsab", aAT, M, aAT)
    y = Y.transpose(0, 1, 2, 4, 3, 5).reshape(x.shape[0], W.shape[0], m * th, m * tw)[:, :, :out[0], :out[1]]
    ady = np.zeros((x.shape[0], W.shape[0], m * th, m * tw))
    ady[:, :, :out[0], :out[1]] = np.abs(dy)
    dM = np.einsum("ax,notasb,by->xynots", aAT, ady.reshape(x.shape[0], W.shape[0], th, m, tw, m), aAT)
    dW = np.einsum("xu,xynots,xyncts,yv->ocuv", aG, dM, V, aG)
    dV = np.einsum("xyoc,xynots->xyncts", U, dM)
    dtiles = np.einsum("xr,xyncts,yq->nctsrq", aBT, dV, aBT)
    dxp = np.zeros((x.shape[0], x.shape[1], m * th + 2, m * tw + 2))
    for r in range(a):
        for q in range(a):
            dxp[:, :, r:r + m * th:m, q:q + m * tw:m] += dtiles[..., r, q]
    dx = dxp[:, :, pads[0]:pads[0] + x.shape[2], pads[2]:pads[2] + x.shape[3]]
    return y, dW, dx


#: the longest chains of additions in each variant's transforms (B^T d B, G g G^T, A^T M A, the bias)
CHAINS = {"winograd": TRANSFORM_ADDS, "winograd4": 7 + 8 + 11 + 1 + 3}  # F(4x4): 6-term sums twice; 1/6 inexact


@SETTINGS
@given(name=st.sampled_from(sorted(WG.VARIANTS)), n=st.integers(1, 3), c_in=st.integers(1, 5), c_out=st.integers(1, 5),
       h=st.integers(1, 11), w=st.integers(1, 11), padding=st.sampled_from(["same", "valid", 0, 1, 2]),
       seed=st.integers(0, 2 ** 31))
def test_winograd_matches_the_loops_to_its_rounding_bound(name, n, c_in, c_out, h, w, padding, seed):
    rng = np.random.default_rng(seed)
    try:
        pads, out = geometry((c_in, h, w), (3, 3), (1, 1), padding, "test")
    except ValueError:  # no 3x3 window fits
        assume(False)
    x, W, b = rng.standard_normal((n, c_in, h, w)), rng.standard_normal((c_out, c_in, 3, 3)), rng.standard_normal(c_out)
    g = Geometry(x.shape, (1, 1), pads, out)
    f, chain = WG.VARIANTS[name], CHAINS[name]
    y, saved = KERNELS[name].forward(x, W, b, g, Scratch())
    dy = rng.standard_normal(y.shape)
    dx, dW, db = KERNELS[name].backward(dy, W, saved, Scratch())
    dx_r, dW_r, db_r = ref.conv2d_backward(x, W, dy, (1, 1), padding)
    S_y, S_dW, S_dx = absolute_sums(x, W, dy, pads, out, f)
    tiles_count = x.shape[0] * (-(-out[0] // f.m)) * (-(-out[1] // f.m))
    assert_within(y, ref.conv2d_forward(x, W, b, (1, 1), padding),
                  (gamma(c_in + chain) + gamma(9 * c_in + 1)) * (S_y + np.abs(b)[None, :, None, None]), "y")
    assert_within(dW, dW_r, (gamma(tiles_count + chain) + gamma(dy[:, 0].size + 1)) * S_dW, "dW")
    assert_within(dx, dx_r, (gamma(c_out + chain + 4) + gamma(9 * c_out + 1)) * S_dx, "dx")
    np.testing.assert_allclose(db, db_r, rtol=0, atol=gamma(dy[:, 0].size) * float(np.abs(dy).sum()))


def test_the_bound_catches_a_wrong_transform(monkeypatch):
    """The test above would see a transform off by one entry: the error is a fraction of S, not of eps."""
    rng = np.random.default_rng(0)
    x, W, b = rng.standard_normal((2, 3, 6, 6)), rng.standard_normal((4, 3, 3, 3)), np.zeros(4)
    pads, out = geometry((3, 6, 6), (3, 3), (1, 1), "same", "t")
    g = Geometry(x.shape, (1, 1), pads, out)
    wrong = WG.F2.G.copy()
    wrong[1, 1] = 0.25
    monkeypatch.setitem(WG.VARIANTS, "winograd", WG.F2._replace(G=wrong))
    y, _ = WG.forward(x, W, b, g, Scratch())
    S_y = absolute_sums(x, W, np.zeros_like(y), pads, out)[0]
    assert np.abs(y - ref.conv2d_forward(x, W, b, (1, 1), "same")).max() > 1e6 * gamma(3 + TRANSFORM_ADDS) * S_y.max()


@pytest.mark.parametrize("name", sorted(WG.VARIANTS))
@pytest.mark.parametrize("c_in, c_out, h, w, padding", [(2, 3, 6, 5, "same"), (3, 2, 5, 7, "valid"), (1, 4, 4, 4, 1)])
def test_winograd_against_central_differences(name, c_in, c_out, h, w, padding):
    rng = np.random.default_rng(1)
    layer = npae.Conv2D(c_in, c_out, 3, padding=padding, rng=rng, dtype=np.float64)
    layer.params["b"].value[...] = rng.standard_normal(c_out)
    layer.kernel = name
    x = rng.standard_normal((2, c_in, h, w))
    assert layer.kernel_for(layer.output_shape(x.shape[1:])[1:]) == name
    report = check_layer(layer, x, rng=rng)
    assert report.passed and report.worst <= SMOOTH, str(report)


@pytest.mark.parametrize("name", sorted(WG.VARIANTS))
def test_float32_error_is_within_the_bound_at_the_benchmark_shapes(name):
    """Measured in float32 at a wide layer: the relative error (to max|y|) against float64 loops' twin,
    the im2col kernel in float64, and the bound's prediction for float32."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 64, 8, 8)).astype(np.float32)
    W = (rng.standard_normal((32, 64, 3, 3)) * 0.05).astype(np.float32)
    b = np.zeros(32, np.float32)
    pads, out = geometry((64, 8, 8), (3, 3), (1, 1), "same", "t")
    g = Geometry(x.shape, (1, 1), pads, out)
    y32, _ = KERNELS[name].forward(x, W, b, g, Scratch())
    y64, _ = KERNELS["im2col"].forward(x.astype(np.float64), W.astype(np.float64), b.astype(np.float64), g, Scratch())
    S = absolute_sums(x.astype(np.float64), W.astype(np.float64), np.zeros_like(y64), pads, out, WG.VARIANTS[name])[0]
    assert_within(y32, y64, (gamma(64 + CHAINS[name], np.float32) + gamma(9 * 64 + 1)) * S, f"float32 y, {name}")
    print(name, "float32 error / max|y|:", float(np.abs(y32 - y64).max() / np.abs(y64).max()),
          "bound / max|y|:", float(gamma(64 + CHAINS[name], np.float32) * S.max() / np.abs(y64).max()))
