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


def tiles(xp: np.ndarray, th: int, tw: int) -> np.ndarray:
    """(N, C, th, tw, 4, 4): the 4x4 tiles of the padded input at stride 2 (zeros beyond)."""
    N, C, Hp, Wp = xp.shape
    canvas = np.zeros((N, C, 2 * th + 2, 2 * tw + 2))
    canvas[:, :, :Hp, :Wp] = xp
    win = np.lib.stride_tricks.sliding_window_view(canvas, (4, 4), axis=(2, 3))
    return win[:, :, ::2, ::2]


def absolute_sums(x, W, dy, pads, out):
    """S for y, dW and dx: Winograd's own sums, in absolute value (einsum over the tiles)."""
    aBT, aG, aAT = np.abs(WG.BT), np.abs(WG.G), np.abs(WG.AT)
    th, tw = -(-out[0] // 2), -(-out[1] // 2)
    xp = np.pad(np.abs(x), ((0, 0), (0, 0), pads[:2], pads[2:]))
    V = np.einsum("xr,nctsrq,yq->xyncts", aBT, tiles(xp, th, tw), aBT)
    U = np.einsum("xu,ocuv,yv->xyoc", aG, np.abs(W), aG)
    M = np.einsum("xyoc,xyncts->xynots", U, V)
    Y = np.einsum("ax,xynots,by->notsab", aAT, M, aAT)
    y = Y.transpose(0, 1, 2, 4, 3, 5).reshape(x.shape[0], W.shape[0], 2 * th, 2 * tw)[:, :, :out[0], :out[1]]
    ady = np.zeros((x.shape[0], W.shape[0], 2 * th, 2 * tw))
    ady[:, :, :out[0], :out[1]] = np.abs(dy)
    dM = np.einsum("ax,notasb,by->xynots", aAT, ady.reshape(x.shape[0], W.shape[0], th, 2, tw, 2), aAT)
    dW = np.einsum("xu,xynots,xyncts,yv->ocuv", aG, dM, V, aG)
    dV = np.einsum("xyoc,xynots->xyncts", U, dM)
    dtiles = np.einsum("xr,xyncts,yq->nctsrq", aBT, dV, aBT)
    dxp = np.zeros((x.shape[0], x.shape[1], 2 * th + 2, 2 * tw + 2))
    for r in range(4):
        for q in range(4):
            dxp[:, :, r:r + 2 * th:2, q:q + 2 * tw:2] += dtiles[..., r, q]
    dx = dxp[:, :, pads[0]:pads[0] + x.shape[2], pads[2]:pads[2] + x.shape[3]]
    return y, dW, dx


@SETTINGS
@given(n=st.integers(1, 3), c_in=st.integers(1, 5), c_out=st.integers(1, 5), h=st.integers(1, 9), w=st.integers(1, 9),
       padding=st.sampled_from(["same", "valid", 0, 1, 2]), seed=st.integers(0, 2 ** 31))
def test_winograd_matches_the_loops_to_its_rounding_bound(n, c_in, c_out, h, w, padding, seed):
    rng = np.random.default_rng(seed)
    try:
        pads, out = geometry((c_in, h, w), (3, 3), (1, 1), padding, "test")
    except ValueError:  # no 3x3 window fits
        assume(False)
    x, W, b = rng.standard_normal((n, c_in, h, w)), rng.standard_normal((c_out, c_in, 3, 3)), rng.standard_normal(c_out)
    g = Geometry(x.shape, (1, 1), pads, out)
    y, saved = WG.forward(x, W, b, g, Scratch())
    dy = rng.standard_normal(y.shape)
    dx, dW, db = WG.backward(dy, W, saved, Scratch())
    dx_r, dW_r, db_r = ref.conv2d_backward(x, W, dy, (1, 1), padding)
    S_y, S_dW, S_dx = absolute_sums(x, W, dy, pads, out)
    tiles_count = x.shape[0] * (-(-out[0] // 2)) * (-(-out[1] // 2))
    assert_within(y, ref.conv2d_forward(x, W, b, (1, 1), padding),
                  (gamma(c_in + TRANSFORM_ADDS) + gamma(9 * c_in + 1)) * (S_y + np.abs(b)[None, :, None, None]), "y")
    assert_within(dW, dW_r, (gamma(tiles_count + TRANSFORM_ADDS) + gamma(dy[:, 0].size + 1)) * S_dW, "dW")
    assert_within(dx, dx_r, (gamma(c_out + TRANSFORM_ADDS + 4) + gamma(9 * c_out + 1)) * S_dx, "dx")
    np.testing.assert_allclose(db, db_r, rtol=0, atol=gamma(dy[:, 0].size) * float(np.abs(dy).sum()))


def test_the_bound_catches_a_wrong_transform(monkeypatch):
    """The test above would see a transform off by one entry: the error is a fraction of S, not of eps."""
    rng = np.random.default_rng(0)
    x, W, b = rng.standard_normal((2, 3, 6, 6)), rng.standard_normal((4, 3, 3, 3)), np.zeros(4)
    pads, out = geometry((3, 6, 6), (3, 3), (1, 1), "same", "t")
    g = Geometry(x.shape, (1, 1), pads, out)
    wrong = WG.G.copy()
    wrong[1, 1] = 0.25
    monkeypatch.setattr(WG, "G", wrong)
    y, _ = WG.forward(x, W, b, g, Scratch())
    S_y = absolute_sums(x, W, np.zeros_like(y), pads, out)[0]
    assert np.abs(y - ref.conv2d_forward(x, W, b, (1, 1), "same")).max() > 1e6 * gamma(3 + TRANSFORM_ADDS) * S_y.max()


@pytest.mark.parametrize("c_in, c_out, h, w, padding", [(2, 3, 6, 5, "same"), (3, 2, 5, 7, "valid"), (1, 4, 4, 4, 1)])
def test_winograd_against_central_differences(c_in, c_out, h, w, padding):
    rng = np.random.default_rng(1)
    layer = npae.Conv2D(c_in, c_out, 3, padding=padding, rng=rng, dtype=np.float64)
    layer.params["b"].value[...] = rng.standard_normal(c_out)
    layer.kernel = "winograd"
    x = rng.standard_normal((2, c_in, h, w))
    assert layer.kernel_for(layer.output_shape(x.shape[1:])[1:]) == "winograd"
    report = check_layer(layer, x, rng=rng)
    assert report.passed and report.worst <= SMOOTH, str(report)


def test_float32_error_is_within_the_bound_at_the_benchmark_shapes():
    """Measured in float32 at a wide layer: the relative error (to max|y|) against float64 loops' twin,
    the im2col kernel in float64, and the bound's prediction for float32."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 64, 8, 8)).astype(np.float32)
    W = (rng.standard_normal((32, 64, 3, 3)) * 0.05).astype(np.float32)
    b = np.zeros(32, np.float32)
    pads, out = geometry((64, 8, 8), (3, 3), (1, 1), "same", "t")
    g = Geometry(x.shape, (1, 1), pads, out)
    y32, _ = WG.forward(x, W, b, g, Scratch())
    y64, _ = KERNELS["im2col"].forward(x.astype(np.float64), W.astype(np.float64), b.astype(np.float64), g, Scratch())
    S = absolute_sums(x.astype(np.float64), W.astype(np.float64), np.zeros_like(y64), pads, out)[0]
    assert_within(y32, y64, (gamma(64 + TRANSFORM_ADDS, np.float32) + gamma(9 * 64 + 1)) * S, "float32 y")
