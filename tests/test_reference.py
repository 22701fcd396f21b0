"""The vectorized layers against the loop references of tests/reference.py (float64, 1e-12),
and the adjoint identity <A x, u> = <x, A^T u> for the linear maps."""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from strategies import SETTINGS, conv_cases, fits, paddings, pool_cases
from tolerances import assert_adjoint

import npae
from npae.nn import reference as ref

REF_SETTINGS = settings(SETTINGS, max_examples=40)
TOL = 1e-12


def close(a, b):
    assert a.shape == b.shape
    scale = max(1.0, float(np.abs(b).max(initial=0)))
    assert float(np.abs(a - b).max(initial=0)) <= TOL * scale


@REF_SETTINGS
@given(case=conv_cases(), fast=st.booleans())
def test_conv2d_matches_loops(case, fast):
    """The kernel the layer chooses for the shape (fast=True) and the im2col kernel (fast=False)."""
    layer, x, rng = case
    layer.fast = fast
    y = layer.forward(x)
    close(y, ref.conv2d_forward(x, layer.W, layer.b, layer.stride, layer.padding))
    dy = rng.standard_normal(y.shape)
    dx = layer.backward(dy)
    dx_ref, dW_ref, db_ref = ref.conv2d_backward(x, layer.W, dy, layer.stride, layer.padding)
    close(dx, dx_ref)
    close(layer.params["W"].grad, dW_ref)
    close(layer.params["b"].grad, db_ref)


@pytest.mark.parametrize("c_in, c_out, padding, kernel", [
    (4, 1, "same", "flat"), (3, 2, "valid", "flat"), (3, 2, 2, "flat"), (2, 2, 1, "flat"),  # narrowing / col2im
    (1, 3, "same", "flat"),  # 1*6 + 1 rows > 2*3: still the flat grid
    (1, 4, "same", "per_sample"), (1, 8, 1, "per_sample"), (2, 13, "valid", "per_sample"),
])
@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("budget", [None, 1], ids=["one block", "a block per sample"])
def test_conv2d_every_kernel_matches_loops(c_in, c_out, padding, kernel, fast, budget, monkeypatch):
    """Stride 1: the flat-grid kernels (narrowing layers by shifted dy, the others col2im), the
    whole batch as one block or (a budget of 1 byte) a block per sample whose im2col matrix
    backward builds again, and the per-sample ones (few input channels); fast=False: the
    im2col kernel."""
    if budget is not None:
        monkeypatch.setattr(npae.nn.kernels.flat, "FLAT_BUDGET", budget)
    rng = np.random.default_rng(0)
    layer = npae.Conv2D(c_in, c_out, (3, 2), padding=padding, rng=rng, dtype=np.float64)
    layer.fast = fast
    layer.params["b"].value[...] = rng.standard_normal(c_out)
    x = rng.standard_normal((3, c_in, 6, 5))
    assert layer.kernel_for(layer.output_shape(x.shape[1:])[1:], len(x)) == (kernel if fast else "im2col")
    y = layer.forward(x)
    close(y, ref.conv2d_forward(x, layer.W, layer.b, layer.stride, layer.padding))
    dy = rng.standard_normal(y.shape)
    dx_ref, dW_ref, db_ref = ref.conv2d_backward(x, layer.W, dy, (1, 1), padding)
    close(layer.backward(dy), dx_ref)
    close(layer.params["W"].grad, dW_ref)
    close(layer.params["b"].grad, db_ref)


@pytest.mark.parametrize("stride, padding, kernel_size, hw", [
    (1, "same", 3, (6, 5)), (1, "valid", (3, 2), (7, 6)), (1, 2, 3, (4, 4)),
    (2, "same", 3, (7, 6)), (2, "valid", 3, (9, 8)), ((2, 1), 1, (2, 3), (8, 5)),
])
@pytest.mark.parametrize("budget", [None, 1], ids=["one block", "a block per sample"])
def test_conv2d_channels_last_kernel_matches_loops(stride, padding, kernel_size, hw, budget, monkeypatch):
    """The nhwc kernels (wide layers on small grids, any stride), the whole batch in one block or
    one sample per block (a budget of 1 byte): the same sums as the loops."""
    if budget is not None:
        monkeypatch.setattr(npae.nn.kernels.nhwc, "COLS_BUDGET", budget)
    rng = np.random.default_rng(1)
    c_in, c_out = npae.nn.kernels.NHWC_MIN_IN, npae.nn.kernels.NHWC_MIN_OUT
    layer = npae.Conv2D(c_in, c_out, kernel_size, stride=stride, padding=padding, rng=rng, dtype=np.float64)
    layer.params["b"].value[...] = rng.standard_normal(c_out)
    x = rng.standard_normal((3, c_in) + hw)
    out = layer.output_shape(x.shape[1:])[1:]
    assert out[0] * out[1] <= npae.nn.kernels.NHWC_MAX_POSITIONS and layer.kernel_for(out, len(x)) == "nhwc"
    y = layer.forward(x)
    close(y, ref.conv2d_forward(x, layer.W, layer.b, layer.stride, layer.padding))
    dy = rng.standard_normal(y.shape)
    dx_ref, dW_ref, db_ref = ref.conv2d_backward(x, layer.W, dy, layer.stride, layer.padding)
    close(layer.backward(dy), dx_ref)
    close(layer.params["W"].grad, dW_ref)
    close(layer.params["b"].grad, db_ref)
    y2 = layer.forward(x)  # the reused scratch gives the same sums again
    np.testing.assert_array_equal(y2, y)
    assert layer.backward(dy, need_dx=False) is None


def test_the_kernel_rule():
    """Which kernel runs, by the documented rule (npae.nn.kernels.winograd_pays, nhwc_pays, per_sample_pays)."""
    def kernel(c_in, c_out, out, stride=1, fast=True, batch=None, k=3):
        layer = npae.Conv2D(c_in, c_out, k, stride=stride)
        layer.fast = fast
        return layer.kernel_for(out, batch)

    # Winograd: 3x3 stride 1, at least 8 channels in and out, at least 16 tiles; the variant with fewer
    # multiplications per output (F(4x4) 36 per 16, F(2x2) 16 per 4, over the grid rounded up to tiles)
    assert kernel(32, 64, (16, 16), batch=64) == kernel(64, 128, (8, 8), batch=256) == "winograd4"
    assert kernel(128, 128, (4, 4), batch=16) == kernel(8, 8, (3, 3), batch=16) == kernel(8, 8, (6, 6), batch=4) \
        == "winograd4"  # on a 6x6 grid both take 4 per output: the tie goes to F(4x4)
    assert kernel(128, 64, (2, 2), batch=64) == kernel(16, 16, (2, 5), batch=8) == "winograd"
    assert kernel(64, 128, (8, 8), batch=3) == "nhwc" and kernel(64, 64, (2, 2), batch=15) == "nhwc"
    assert kernel(7, 8, (14, 14), batch=1024) == kernel(8, 7, (14, 14), batch=1024) == "flat"  # too thin
    assert kernel(64, 64, (1, 1), batch=1024) == kernel(64, 64, (1, 5), batch=1024) == "nhwc"  # more than 9 per output
    assert kernel(64, 64, (16, 16), batch=256, stride=2) == "im2col" and kernel(64, 64, (16, 16), batch=256,
                                                                                k=5) == "flat"
    assert kernel(64, 64, (16, 16), batch=256, fast=False) == "im2col"
    assert kernel(64, 128, (8, 8)) == kernel(128, 64, (4, 4)) == kernel(32, 64, (8, 8), stride=2) == "nhwc"
    assert kernel(64, 128, (8, 9)) == kernel(64, 32, (8, 8)) == kernel(32, 64, (16, 16)) == "flat"
    assert kernel(7, 64, (4, 4)) == kernel(1, 16, (28, 28)) == "per_sample"
    assert kernel(16, 8, (7, 7), stride=2) == kernel(64, 128, (8, 8), fast=False) == "im2col"



def test_the_transposed_kernel_rule():
    """Which kernel a ConvTranspose2D runs, by the documented rule (npae.nn.kernels.choose_transpose_kernel)."""
    def kernel(c_in, c_out, hw, batch=64, stride=1, padding=1, k=3, prefer=None):
        layer = npae.ConvTranspose2D(c_in, c_out, k, stride=stride, padding=padding)
        layer.kernel = prefer
        return layer.kernel_for((batch, c_in, hw, hw))

    assert kernel(32, 64, 16) == kernel(8, 8, 28) == kernel(16, 8, 7, batch=256) == "winograd4"
    assert kernel(128, 64, 2) == "winograd" and kernel(64, 64, 1, padding=0) == "winograd4"  # 1 -> 3: a 3x3 output
    assert kernel(16, 1, 14) == kernel(16, 3, 28) == kernel(64, 8, 14) == kernel(5, 1, 14) == "col2im"  # by > 4
    assert kernel(4, 1, 14) == kernel(4, 4, 14) == kernel(8, 4, 28) == kernel(7, 8, 14) == "flat"
    assert kernel(1, 8, 28) == kernel(3, 16, 14) == kernel(16, 16, 14, k=1, padding=0) == "per_sample"
    assert kernel(8, 8, 14, k=5, padding=2) == kernel(8, 8, 14, k=2, padding=0) == "col2im"  # not measured faster
    assert kernel(32, 64, 8, stride=2) == kernel(32, 64, 8, padding=3) == "col2im"  # no convolution of x
    assert kernel(1, 8, 14, k=(1, 3), padding=1) == kernel(1, 8, 14, k=(3, 1), padding=1, prefer="flat") == "col2im"
    assert kernel(32, 64, 8, padding=3, prefer="winograd") == kernel(32, 64, 8, prefer="col2im") == "col2im"
    # a preference runs where it applies; where it does not (Winograd is 3x3 only), the rule decides
    assert kernel(16, 1, 14, prefer="winograd") == "winograd" and kernel(2, 2, 5, k=2, prefer="winograd") == "col2im"
    with pytest.raises(ValueError, match=r"ConvTranspose2D.kernel must be one of \['col2im', 'flat', .*got 'fast'"):
        kernel(2, 2, 5, prefer="fast")
    layer = npae.ConvTranspose2D(8, 8, 3, padding=1)
    for shape in [(16, 16), (64, 3, 16, 16), (64, 8, 0, 16)]:  # Conv2D's (out, batch) form; channels; empty
        with pytest.raises(ValueError, match=r"kernel_for: expected an input shape \(N, 8, H, W\) of positive"):
            layer.kernel_for(shape)


@REF_SETTINGS
@given(case=pool_cases(), ties=st.booleans(), fast=st.booleans())
def test_maxpool2d_matches_loops(case, ties, fast):
    """Both kernels: two-stage (non-overlapping windows, the default) and the general one."""
    layer, shape, rng = case
    layer.fast = fast
    # with ties=True, values come from {0, 1, 2}: many windows have several maxima
    x = rng.integers(0, 3, shape).astype(np.float64) if ties else rng.standard_normal(shape)
    y = layer.forward(x)
    dy = rng.standard_normal(y.shape)
    y_ref, dx_ref = ref.maxpool_forward_backward(x, layer.pool_size, layer.stride, layer.padding, dy)
    close(y, y_ref)
    close(layer.backward(dy), dx_ref)


@REF_SETTINGS
@given(n=st.integers(1, 2), c=st.integers(1, 3), h=st.integers(1, 6), w=st.integers(1, 6),
       sh=st.integers(1, 3), sw=st.integers(1, 3), seed=st.integers(0, 2**31))
def test_upsampling2d_matches_loops(n, c, h, w, sh, sw, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w))
    layer = npae.UpSampling2D((sh, sw))
    y = layer.forward(x)
    close(y, ref.upsample_forward(x, (sh, sw)))
    dy = rng.standard_normal(y.shape)
    close(layer.backward(dy), ref.upsample_backward(dy, (sh, sw)))


@pytest.mark.parametrize("fast", [True, False])
def test_maxpool_ties_send_gradient_to_exactly_one_element(fast):
    x = np.ones((2, 3, 6, 6))  # every window is one big tie
    layer = npae.MaxPool2D(2)
    layer.fast = fast
    y = layer.forward(x)
    dx = layer.backward(np.ones_like(y))
    blocks = dx.reshape(2, 3, 3, 2, 3, 2)
    assert np.all((blocks != 0).sum(axis=(3, 5)) == 1)
    assert np.all(blocks.sum(axis=(3, 5)) == 1)
    assert np.all(dx[:, :, ::2, ::2] == 1)  # the first element in row-major order


@pytest.mark.parametrize("pool, padding", [(pool, padding) for pool in [(2, 2), (3, 3), (2, 3), (1, 2), (3, 1)]
                                           for padding in ["valid", "same", 1] if padding != 1 or min(pool) >= 2])
@pytest.mark.parametrize("shape", [(2, 3, 6, 6), (1, 2, 7, 5)])
def test_two_stage_maxpool_matches_loops_with_ties(pool, padding, shape):
    """The two-stage kernel's routes: boolean (two candidates) and index (more) arguments,
    with and without pads, on inputs full of ties."""
    rng = np.random.default_rng(0)
    layer = npae.MaxPool2D(pool, padding=padding)
    assert layer.fast and layer.stride == layer.pool_size
    for x in (rng.integers(0, 3, shape).astype(np.float64), rng.standard_normal(shape)):
        y = layer.forward(x)
        dy = rng.standard_normal(y.shape)
        y_ref, dx_ref = ref.maxpool_forward_backward(x, layer.pool_size, layer.stride, layer.padding, dy)
        np.testing.assert_array_equal(y, y_ref)
        np.testing.assert_array_equal(layer.backward(dy), dx_ref)


def test_same_padding_puts_the_extra_row_at_the_bottom_right():
    """Keras/TF: 4x4 input, 3x3 kernel, stride 2, 'same' -> output 2x2, total pad 1 = 0 top + 1 bottom."""
    x = np.arange(16, dtype=np.float64).reshape(1, 1, 4, 4)
    layer = npae.Conv2D(1, 1, 3, stride=2, padding="same", dtype=np.float64)
    layer.params["W"].value[...] = 0
    layer.params["W"].value[0, 0, 0, 0] = 1  # picks the window's top-left element
    y = layer.forward(x)
    # with no top/left pad the top-left element of window (i, j) is x[2i, 2j]
    np.testing.assert_array_equal(y[0, 0], [[0, 2], [8, 10]])
    layer.params["W"].value[...] = 0
    layer.params["W"].value[0, 0, 2, 2] = 1  # bottom-right element: falls in the pad for the last row/col
    np.testing.assert_array_equal(layer.forward(x)[0, 0], [[10, 0], [0, 0]])


@pytest.mark.parametrize("h, k, s, expected", [(7, 2, 2, 4), (28, 2, 2, 14), (14, 2, 2, 7), (5, 3, 2, 3), (1, 2, 2, 1),
                                                (7, 3, 3, 3)])
def test_same_output_sizes(h, k, s, expected):
    assert npae.MaxPool2D(k, stride=s, padding="same").output_shape((1, h, h)) == (1, expected, expected)
    assert npae.Conv2D(1, 1, k, stride=s, padding="same").output_shape((1, h, h)) == (1, expected, expected)


def test_maxpool_same_7_to_4_values():
    x = np.arange(49, dtype=np.float64).reshape(1, 1, 7, 7)
    y = npae.MaxPool2D(2, padding="same").forward(x)
    # windows start at rows/cols 0, 2, 4, 6; the last one holds only row/col 6
    np.testing.assert_array_equal(y[0, 0], x[0, 0][np.ix_([1, 3, 5, 6], [1, 3, 5, 6])])


# -- adjoint identities: <A x, u> = <x, A^T u> -------------------------------------------
@SETTINGS
@given(c_in=st.integers(1, 3), c_out=st.integers(1, 3), h=st.integers(2, 8), k=st.integers(1, 3),
       s=st.integers(1, 2), padding=paddings, seed=st.integers(0, 2**31))
def test_conv2d_adjoint(c_in, c_out, h, k, s, padding, seed):
    assume(fits(h, k, s, padding))
    rng = np.random.default_rng(seed)
    layer = npae.Conv2D(c_in, c_out, k, stride=s, padding=padding, rng=rng, dtype=np.float64)  # b = 0
    x = rng.standard_normal((2, c_in, h, h + 1))
    assert_adjoint(layer, x, rng.standard_normal((2,) + layer.output_shape(x.shape[1:])))


@pytest.mark.parametrize("make, shape", [
    (lambda rng: npae.Dense(6, 4, rng=rng, dtype=np.float64), (3, 6)),
    (lambda rng: npae.TiedDense(npae.Dense(5, 3, rng=rng, dtype=np.float64)), (4, 3)),
    (lambda rng: npae.UpSampling2D(2), (2, 3, 4, 5)),
    (lambda rng: npae.UpSampling2D((3, 1)), (2, 1, 2, 2)),
    (lambda rng: npae.Flatten(), (2, 3, 4, 5)),
    (lambda rng: npae.Reshape((2, 10)), (3, 20)),
])
def test_linear_layer_adjoints(make, shape):
    rng = np.random.default_rng(0)
    layer = make(rng)
    x = rng.standard_normal(shape)
    assert_adjoint(layer, x, rng.standard_normal((shape[0],) + tuple(layer.output_shape(shape[1:]))))


def test_kernel_offsets_index_the_windows_as_defined():
    """``offsets`` yields, for each (u, v), the slice xp[..., i*sh + u, j*sw + v] over all (i, j)."""
    from npae.nn.windows import offsets

    xp = np.arange(2 * 1 * 7 * 6, dtype=np.float64).reshape(2, 1, 7, 6)
    seen = []
    for u, v, window in offsets((2, 3), (2, 1), (3, 4)):
        seen.append((u, v))
        for i in range(3):
            for j in range(4):
                np.testing.assert_array_equal(xp[window][:, :, i, j], xp[:, :, 2 * i + u, j + v])
    assert seen == [(u, v) for u in range(2) for v in range(3)]
