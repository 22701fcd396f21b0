"""The winograd kernels (F(2x2, 3x3)) against the loop definitions, to a rounding bound derived from
the algorithm (npae/nn/kernels/winograd.py), and against central differences.

The bound: Winograd computes each output as sums over the tiles' transforms. Running the same
sums with every matrix and every array replaced by its absolute value (|A^T|, |G|, |B^T|, |x|,
|W|, |dy|) gives S, the sum of the absolute values of every term the algorithm adds, and S is at
least the direct sum of |W| |x| (each product W x appears in Winograd's expansion with
coefficients whose absolute values sum to at least 1). With n the longest chain of roundings
(the c_in products, and the transforms: each is two matrix products, a dot product of a terms on
each side, a = m + 2, and 3 terms on each side for G, whose 1/6, 1/12 and 1/24 are rounded once
more; the bias), the Winograd result is within gamma(n) S of the exact sum, the loops' within
gamma(9 c_in + 1) S, so the two within their sum. A wrong transform misses by a fraction of S itself.
ConvTranspose2D at stride 1 runs as the convolution of x with the flipped, transposed kernel
(npae/nn/kernels/transpose.py): the same bound, with S computed for that convolution.
"""

import math

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
from npae.nn.kernels import transpose as TK
from npae.nn.kernels import winograd as WG
from npae.nn.windows import geometry

TRANSFORM_ADDS = 2 * 4 + 2 * 3 + 2 * 4 + 1  # F(2x2): B^T d B, G g G^T, A^T M A (a = 4), the bias


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


#: the longest chains of roundings in each variant's transforms (B^T d B, G g G^T, A^T M A, the bias)
CHAINS = {"winograd": TRANSFORM_ADDS, "winograd4": 2 * 6 + (2 * 3 + 2) + 2 * 6 + 1}  # F(4x4): a = 6; 1/6 inexact


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
    dy = rng.standard_normal((n, c_out) + out)
    assert_matches_the_loops(name, x, W, b, dy, padding, Scratch())


def loops(x, W, b, dy, padding):
    """Conv2D 3x3 stride 1 by the loops: (y, dx, dW, db)."""
    return (ref.conv2d_forward(x, W, b, (1, 1), padding),) + ref.conv2d_backward(x, W, dy, (1, 1), padding)


def assert_matches_the_loops(name, x, W, b, dy, padding, scratch, reference=loops):
    """The kernel's y, dx, dW and db against the loops, to the rounding bound of the module docstring
    (or against another direct sum, ``reference(x, W, b, dy, padding) -> (y, dx, dW, db)``: the same bound)."""
    c_in, c_out = x.shape[1], W.shape[0]
    pads, out = geometry(x.shape[1:], (3, 3), (1, 1), padding, "test")
    g = Geometry(x.shape, (1, 1), pads, out)
    f, chain = WG.VARIANTS[name], CHAINS[name]
    y, saved = KERNELS[name].forward(x, W, b, g, scratch)
    dx, dW, db = KERNELS[name].backward(dy, W, saved, scratch)
    y_r, dx_r, dW_r, db_r = reference(x, W, b, dy, padding)
    S_y, S_dW, S_dx = absolute_sums(x, W, dy, pads, out, f)
    tiles_count = x.shape[0] * (-(-out[0] // f.m)) * (-(-out[1] // f.m))
    assert_within(y, y_r, (gamma(c_in + chain) + gamma(9 * c_in + 1)) * (S_y + np.abs(b)[None, :, None, None]), "y")
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
@pytest.mark.parametrize("cls, c_in, c_out, h, w, padding", [
    (npae.Conv2D, 2, 3, 6, 5, "same"), (npae.Conv2D, 3, 2, 5, 7, "valid"), (npae.Conv2D, 1, 4, 4, 4, 1),
    (npae.ConvTranspose2D, 2, 3, 5, 4, 1), (npae.ConvTranspose2D, 3, 2, 4, 6, 0),
    (npae.ConvTranspose2D, 1, 2, 6, 6, 2)])
def test_winograd_against_central_differences(name, cls, c_in, c_out, h, w, padding):
    """Conv2D, and ConvTranspose2D at stride 1 (the convolution with the flipped, transposed kernel)."""
    rng = np.random.default_rng(1)
    layer = cls(c_in, c_out, 3, padding=padding, rng=rng, dtype=np.float64)
    layer.params["b"].value[...] = rng.standard_normal(c_out)
    layer.kernel = name
    x = rng.standard_normal((2, c_in, h, w))
    transposed = cls is npae.ConvTranspose2D
    assert (layer.kernel_for(x.shape) if transposed else layer.kernel_for(layer.output_shape(x.shape[1:])[1:])) == name
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


@pytest.mark.parametrize("name", sorted(WG.VARIANTS))
def test_a_float32_transposed_layer_is_within_the_bound(name):
    """ConvTranspose2D 64 -> 32 @ 8 in float32 against its float64 twin by col2im (a direct sum), y, dx
    and dW: the bound of the convolution it is, with float32's unit roundoff."""
    rng = np.random.default_rng(3)
    layer = npae.ConvTranspose2D(64, 32, 3, padding=1, rng=rng)
    layer.kernel = name
    twin = npae.ConvTranspose2D(64, 32, 3, padding=1, dtype=np.float64)
    twin.params["W"].value[...] = layer.W
    twin.kernel = "col2im"
    x = rng.standard_normal((4, 64, 8, 8)).astype(np.float32)
    dy = rng.standard_normal((4, 32, 8, 8)).astype(np.float32)
    y32, y64 = layer.forward(x), twin.forward(x.astype(np.float64))
    dx32, dx64 = layer.backward(dy), twin.backward(dy.astype(np.float64))
    g, f, chain = TK.convolution_geometry(x.shape, (3, 3), 1), WG.VARIANTS[name], CHAINS[name]
    S_y, S_dWc, S_dx = absolute_sums(x.astype(np.float64), TK.flip_transpose(twin.W), dy.astype(np.float64),
                                     g.pads, g.out, f)
    tiles_count = 4 * math.prod(WG.tile_grid(f.m, g.out))
    assert_within(y32, y64, (gamma(64 + chain, np.float32) + gamma(9 * 64 + 1)) * S_y, f"float32 y, {name}")
    assert_within(dx32, dx64, (gamma(32 + chain + 4, np.float32) + gamma(9 * 32 + 1)) * S_dx, f"float32 dx, {name}")
    assert_within(layer.params["W"].grad, twin.params["W"].grad,
                  (gamma(tiles_count + chain, np.float32) + gamma(x[:, 0].size + 1)) * TK.flip_transpose(S_dWc), "dW")


@pytest.mark.parametrize("name", sorted(WG.VARIANTS))
@pytest.mark.parametrize("block, nb", [(1, 1), (3, 3), (5, 4)])
def test_a_batch_in_blocks_of_samples(name, block, nb, monkeypatch):
    """The batch in blocks of at most ``block`` samples (BLOCK_BYTES), as few and as even as can be (7 = 3 + 3
    + 1: three blocks either way; 4 + 3, not 5 + 2), one scratch reused by every block and call: the loops'
    results, to the same bound."""
    rng = np.random.default_rng(3)
    f = WG.VARIANTS[name]
    tiles = -(-9 // f.m) * -(-10 // f.m)
    monkeypatch.setattr(WG, "BLOCK_BYTES", block * (f.m + 2) ** 2 * tiles * 4 * 8)  # 4 channels, float64
    pads, out = geometry((3, 9, 10), (3, 3), (1, 1), "same", "t")
    assert WG._plan(f, Geometry((7, 3, 9, 10), (1, 1), pads, out), 4, 8).nb == nb
    scratch = Scratch()
    for _ in range(2):
        x, W, b = rng.standard_normal((7, 3, 9, 10)), rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
        assert_matches_the_loops(name, x, W, b, rng.standard_normal((7, 4) + out), "same", scratch)


@pytest.mark.parametrize("name", sorted(WG.VARIANTS))
def test_a_layer_that_sees_other_sizes_pads_each_with_zeros(name):
    """One scratch, inputs of other sizes with as many F(4x4) tiles (16, 15, 13 rows; 16 and 14
    columns) one after another: the padding of each is zeros, whatever the one before left there."""
    rng = np.random.default_rng(4)
    scratch = Scratch()
    W, b = rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    for h, w in [(16, 16), (15, 14), (13, 16), (16, 16), (5, 6)]:
        x = rng.standard_normal((2, 3, h, w)) * 100
        assert_matches_the_loops(name, x, W, b, rng.standard_normal((2, 4, h, w)), "same", scratch)


@SETTINGS
@given(name=st.sampled_from(sorted(WG.VARIANTS)), n=st.integers(1, 3), c_in=st.integers(1, 4), c_out=st.integers(1, 4),
       h=st.integers(1, 9), w=st.integers(1, 9), padding=st.integers(0, 2), seed=st.integers(0, 2 ** 31))
def test_the_transposed_convolution_by_winograd_matches_its_loops(name, n, c_in, c_out, h, w, padding, seed):
    assume(min(h, w) + 2 - 2 * padding >= 1)  # an output at all
    rng = np.random.default_rng(seed)
    layer = npae.ConvTranspose2D(c_in, c_out, 3, padding=padding, rng=rng, dtype=np.float64)
    layer.params["b"].value[...] = rng.standard_normal(c_out)
    layer.kernel = name
    assert_transposed_matches_the_loops(layer, rng.standard_normal((n, c_in, h, w)), rng)


def transposed_loops(x, W, b, dy, padding):
    """ConvTranspose2D stride 1 by the loops: (y, dx, dW, db)."""
    args = ((1, 1), padding, 0)
    return (ref.conv_transpose2d_forward(x, W, b, *args),) + ref.conv_transpose2d_backward(x, W, dy, *args)


def assert_transposed_matches_the_loops(layer, x, rng, reference=transposed_loops):
    """ConvTranspose2D 3x3 stride 1 run as the convolution of x padded by 2 - p with the flipped,
    transposed kernel (npae/nn/kernels/transpose.py), against its own loops
    (npae.nn.reference.conv_transpose2d_*; or ``reference``, as for :func:`assert_matches_the_loops`)
    to the bound of the module docstring: S is that convolution's. Returns y and its bound."""
    name, (n, c_in), c_out = layer.kernel, x.shape[:2], layer.c_out
    assert layer.kernel_for(x.shape) == name
    layer.zero_grad()
    y = layer.forward(x)
    dy = rng.standard_normal(y.shape)
    dx = layer.backward(dy)
    y_r, dx_r, dW_r, db_r = reference(x, layer.W, layer.b, dy, layer.padding)
    g = TK.convolution_geometry(x.shape, (3, 3), layer.padding)
    assert g.out == y.shape[2:]
    f, chain = WG.VARIANTS[name], CHAINS[name]
    S_y, S_dWc, S_dx = absolute_sums(x, TK.flip_transpose(layer.W), dy, g.pads, g.out, f)
    tiles_count = n * math.prod(WG.tile_grid(f.m, g.out))
    positions = max(dy[:, 0].size, x[:, 0].size)  # the loops sum dW over the input's positions
    bound_y = (gamma(c_in + chain) + gamma(9 * c_in + 1)) * (S_y + np.abs(layer.b)[None, :, None, None])
    assert_within(y, y_r, bound_y, "y")
    assert_within(layer.params["W"].grad, dW_r,
                  (gamma(tiles_count + chain) + gamma(positions + 1)) * TK.flip_transpose(S_dWc), "dW")
    assert_within(dx, dx_r, (gamma(c_out + chain + 4) + gamma(9 * c_out + 1)) * S_dx, "dx")
    np.testing.assert_allclose(layer.params["b"].grad, db_r, rtol=0,
                               atol=gamma(dy[:, 0].size) * float(np.abs(dy).sum()))
    return y, bound_y


@pytest.mark.parametrize("name", sorted(WG.VARIANTS))
def test_a_transposed_layer_keeps_its_scratch_for_training_only(name):
    """Training calls reuse the layer's scratch across input sizes (each padded with zeros afresh: the
    loops' results every time); an inference call leaves it as it was, and gives the same y."""
    rng = np.random.default_rng(6)
    layer = npae.ConvTranspose2D(3, 4, 3, padding=1, rng=rng, dtype=np.float64)
    layer.params["b"].value[...] = rng.standard_normal(4)
    layer.kernel = name
    for h, w in [(16, 16), (15, 14), (5, 6), (16, 16)]:
        x = rng.standard_normal((2, 3, h, w)) * 100
        y, bound = assert_transposed_matches_the_loops(layer, x, rng)
        kept = {k: v.copy() for k, v in layer._scratch.arrays.items()}
        assert_within(layer.forward(x, training=False), y, bound, "inference y")
        assert kept.keys() == layer._scratch.arrays.keys()
        assert all(np.array_equal(kept[k], v) for k, v in layer._scratch.arrays.items())
