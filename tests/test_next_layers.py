"""The layers a conv-autoencoder learner meets next: ConvTranspose2D, AvgPool2D, BatchNorm1D/2D,
Dropout, ELU and GELU. Each against its loop definition (npae.nn.reference) and central differences
in training mode, over hypothesis-drawn shapes; the linear ones against their adjoints; the
transposed convolution against the convolution whose transpose it is; the state of BatchNorm
and Dropout through save, load and an interrupted run."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import SETTINGS
from tolerances import assert_adjoint, assert_close, assert_sums_close, gamma

import npae
from npae.checks.gradcheck import KINKED, SMOOTH, check_layer, check_model
from npae.core import away_from_zero
from npae.nn import reference as ref

NEXT = settings(SETTINGS, max_examples=20)


@st.composite
def transpose_cases(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 31)))
    c_in, c_out = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    # stride 1 half the time: there the layer is a convolution, and may run Conv2D's kernels (below)
    s = (1, 1) if draw(st.booleans()) else (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    p = draw(st.integers(0, 2))
    op = draw(st.integers(0, max(s) - 1))
    h, w = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    if min((h - 1) * s[0] - 2 * p + k[0] + op, (w - 1) * s[1] - 2 * p + k[1] + op) < 1:
        p = 0
    layer = npae.ConvTranspose2D(c_in, c_out, k, stride=s, padding=p, output_padding=op, rng=rng, dtype=np.float64)
    layer.params["b"].value[...] = rng.standard_normal(c_out)
    # a kernel asked for runs where it applies (else the rule decides): the same sums in another order, so
    # the same bounds (Winograd's differ: tests/test_winograd.py)
    layer.kernel = draw(st.sampled_from([None, "col2im", "im2col", "flat", "per_sample", "nhwc"]))
    return layer, away_from_zero((draw(st.integers(1, 2)), c_in, h, w), rng), rng


@NEXT
@given(case=transpose_cases())
def test_conv_transpose_against_its_loops_and_central_differences(case):
    layer, x, rng = case
    assert_transposed_sums_close(layer, x, rng)
    # y is linear in each of x, W and b, so central differences have no truncation error at any step, and
    # their rounding error, eps sum|y dy| / h, shrinks with a larger h (at 1e-6 a db whose entries nearly
    # cancel once missed the threshold by 2x)
    report = check_layer(layer, x, rng=rng, h=1e-3)
    assert report.passed and report.worst <= SMOOTH, str(report)


@pytest.mark.parametrize("kernel", ["flat", "im2col", "nhwc", "per_sample"])
@pytest.mark.parametrize("k, p", [((3, 2), 1), ((2, 3), 1), ((1, 3), 1), ((3, 1), 0), ((2, 4), 2)])
def test_conv_transpose_by_the_convolution_kernels_with_other_kernel_shapes(kernel, k, p):
    """Non-square kernels at stride 1, and a padding beyond k - 1 on one axis only (col2im there)."""
    rng = np.random.default_rng(9)
    layer = npae.ConvTranspose2D(2, 3, k, padding=p, rng=rng, dtype=np.float64)
    layer.params["b"].value[...] = rng.standard_normal(3)
    layer.kernel = kernel
    x = away_from_zero((2, 2, 4, 5), rng)
    assert layer.kernel_for(x.shape) == (kernel if p <= min(k) - 1 else "col2im")
    assert_transposed_sums_close(layer, x, rng)


def assert_transposed_sums_close(layer, x, rng):
    """y, dx, dW and db against the loops, each entry to the rounding of its own sum."""
    y = layer.forward(x)
    args = (layer.stride, layer.padding, layer.output_padding)
    # Each entry is held to the rounding of its own sum: the loops run on |x|, |W|, |dy| give
    # sum|terms| entry by entry (an entry that is a near-cancellation of a few large terms is
    # small, so the array's largest entry is no bound for it).
    k = layer.c_in * layer.kernel_size[0] * layer.kernel_size[1] + 1  # the most terms any output sums
    absolute = ref.conv_transpose2d_forward(np.abs(x), np.abs(layer.W), np.abs(layer.b), *args)
    assert_sums_close(y, ref.conv_transpose2d_forward(x, layer.W, layer.b, *args), absolute, k, what="y")
    dy = rng.standard_normal(y.shape)
    dx = layer.backward(dy)
    dx_r, dW_r, db_r = ref.conv_transpose2d_backward(x, layer.W, dy, *args)
    dx_a, dW_a, db_a = ref.conv_transpose2d_backward(np.abs(x), np.abs(layer.W), np.abs(dy), *args)
    m = dy.size  # dW sums over the batch and every position
    assert_sums_close(dx, dx_r, dx_a, layer.c_out * layer.kernel_size[0] * layer.kernel_size[1], what="dx")
    assert_sums_close(layer.params["W"].grad, dW_r, dW_a, m, what="dW")
    assert_sums_close(layer.params["b"].grad, db_r, db_a, m, what="db")


@pytest.mark.parametrize("c_in, c_out, k, s, p, op, h", [(2, 3, 3, 2, 1, 1, 4), (3, 2, (2, 3), 1, 0, 0, 3),
                                                          (1, 2, 4, 3, 1, 2, 2), (2, 2, 3, 2, 0, 0, 3)])
def test_the_transposed_convolution_is_the_convolutions_transpose(c_in, c_out, k, s, p, op, h):
    """Its forward is Conv2D's input gradient with the same weights, and its input gradient is
    Conv2D's forward (no bias): the convolution maps (c_out, H_out) to (c_in, H)."""
    rng = np.random.default_rng(0)
    t = npae.ConvTranspose2D(c_in, c_out, k, stride=s, padding=p, output_padding=op, rng=rng, dtype=np.float64)
    x = rng.standard_normal((2, c_in, h, h + 1))
    y = t.forward(x)
    conv = npae.Conv2D(c_out, c_in, k, stride=s, padding=p, rng=rng, dtype=np.float64)
    conv.params["W"].value[...] = t.W  # (c_in, c_out, kh, kw): the conv's (C_out, C_in, kh, kw)
    u = rng.standard_normal(y.shape)
    assert conv.forward(u).shape == x.shape
    terms = max(c_in, c_out) * np.prod(t.kernel_size)
    assert_close(t.backward(u), conv.forward(u), terms=terms, what="dx = conv(u)")
    conv.forward(u)
    assert_close(y, conv.backward(x), terms=terms, what="y = conv's input gradient")
    t.params["b"].value[...] = 0
    assert_adjoint(t, x, u)


def test_conv_transpose_sizes_and_errors():
    t = npae.ConvTranspose2D(8, 4, 3, stride=2, padding=1, output_padding=1)
    assert t.output_shape((8, 7, 7)) == (4, 14, 14)
    assert npae.ConvTranspose2D(1, 1, 2, stride=2).output_shape((1, 4, 5)) == (1, 8, 10)
    with pytest.raises(ValueError, match="output_padding must be smaller than the stride"):
        npae.ConvTranspose2D(1, 1, 3, stride=2, output_padding=2)
    with pytest.raises(ValueError, match="make the padding smaller"):
        npae.ConvTranspose2D(1, 1, 1, padding=2).output_shape((1, 2, 2))
    with pytest.raises(ValueError, match=r"ConvTranspose2D: expected input of shape \(N, 8, H, W\)"):
        t.forward(np.zeros((1, 3, 4, 4), np.float32))
    for padding in (0, 1):  # an empty grid is no input, whatever the padding would make of it
        with pytest.raises(ValueError, match="ConvTranspose2D: input of height x width 0x6 is empty"):
            npae.ConvTranspose2D(8, 8, 3, padding=padding).forward(np.zeros((2, 8, 0, 6), np.float32))


@NEXT
@given(seed=st.integers(0, 2 ** 31), k=st.integers(1, 3), s=st.integers(1, 3),
       padding=st.sampled_from(["valid", "same", 0, 1]), h=st.integers(3, 7), w=st.integers(3, 7))
def test_avgpool_against_its_loops_adjoint_and_central_differences(seed, k, s, padding, h, w):
    if isinstance(padding, int) and padding > k // 2:
        padding = 0
    rng = np.random.default_rng(seed)
    layer = npae.AvgPool2D(k, stride=s, padding=padding)
    x = rng.standard_normal((2, 2, h, w))
    y = layer.forward(x)
    dy = rng.standard_normal(y.shape)
    y_r, dx_r = ref.avgpool_forward_backward(x, layer.pool_size, layer.stride, layer.padding, dy)
    assert_close(y, y_r, terms=k * k + 1, what="y")
    assert_close(layer.backward(dy), dx_r, terms=k * k + 1, what="dx")
    assert_adjoint(layer, x, dy)
    assert check_layer(layer, x, rng=rng).passed


@pytest.mark.parametrize("cls, shape", [(npae.BatchNorm1D, (7, 4)), (npae.BatchNorm2D, (3, 4, 3, 5))])
def test_batchnorm_compact_backward_equals_the_chain_rule_term_by_term(cls, shape):
    rng = np.random.default_rng(1)
    layer = cls(4, dtype=np.float64)
    layer.params["gamma"].value[...] = rng.uniform(0.5, 2, 4) * [1, -1, 1, -1]
    layer.params["beta"].value[...] = rng.standard_normal(4)
    x = rng.standard_normal(shape) * 3 + 2
    y = layer.forward(x)
    dy = rng.standard_normal(shape)
    dx = layer.backward(dy)
    y_r, dx_r, dgamma_r, dbeta_r = ref.batchnorm_forward_backward(x, layer.params["gamma"].value,
                                                                  layer.params["beta"].value, layer.eps, dy)
    m = x.size // 4
    assert_close(y, y_r, terms=2 * m, what="y")
    assert_close(dx, dx_r, terms=4 * m, factor=8, what="dx")  # four sums of m terms, each in two orders, then scaled
    assert_close(layer.params["gamma"].grad, dgamma_r, terms=2 * m, what="dgamma")
    assert_close(layer.params["beta"].grad, dbeta_r, terms=m, what="dbeta")
    # the gradient of x_hat is orthogonal to the constant and to x_hat: shifting or scaling a
    # feature's whole batch changes nothing after the normalization
    axes = (0,) + tuple(range(2, x.ndim))
    assert np.abs(dx.sum(axis=axes)).max() < 1e-12 * np.abs(dx).sum()
    report = check_layer(layer, x, rng=rng)
    assert report.passed and report.worst <= SMOOTH, str(report)


def test_batchnorm_statistics_and_modes():
    rng = np.random.default_rng(2)
    layer = npae.BatchNorm2D(3, momentum=0.25, dtype=np.float64)
    x = rng.standard_normal((4, 3, 2, 2)) * [[[[1.0]], [[2.0]], [[3.0]]]] + 5
    y = layer.forward(x)
    axes = (0, 2, 3)
    np.testing.assert_allclose(y.mean(axis=axes), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=axes), 1 / (1 + 1e-5 / x.var(axis=axes)), rtol=1e-12)  # biased var normalizes
    m = 4 * 2 * 2
    np.testing.assert_allclose(layer.buffers["running_mean"], 0.25 * x.mean(axis=axes), rtol=1e-12)
    np.testing.assert_allclose(layer.buffers["running_var"], 0.75 + 0.25 * x.var(axis=axes) * m / (m - 1), rtol=1e-12)
    one = layer.forward(x[:1], training=False)  # inference: the running statistics, each sample on its own
    rm, rv = layer.buffers["running_mean"], layer.buffers["running_var"]
    expected = (x[:1] - rm[None, :, None, None]) / np.sqrt(rv[None, :, None, None] + 1e-5)
    np.testing.assert_allclose(one, expected, rtol=1e-12)
    before = rm.copy()
    layer.forward(x, training=False)
    np.testing.assert_array_equal(layer.buffers["running_mean"], before)  # inference never updates them
    with pytest.raises(ValueError, match="more than 1 value per feature"):
        npae.BatchNorm1D(3).forward(np.zeros((1, 3), np.float32))
    with pytest.raises(ValueError, match="eps must be > 0"):
        npae.BatchNorm1D(3, eps=0)
    assert [p.decay for p in layer.params.values()] == [False, False]


def test_batchnorm_buffers_survive_astype_save_load_and_checks(tmp_path):
    rng = np.random.default_rng(3)
    layer = npae.BatchNorm1D(4)
    for _ in range(3):
        layer.forward(rng.standard_normal((8, 4)).astype(np.float32) + 2)
    npae.save(npae.Sequential(layer), tmp_path / "bn.npz")
    loaded = npae.load(tmp_path / "bn.npz")[0]
    for name in ("running_mean", "running_var"):
        np.testing.assert_array_equal(loaded.buffers[name], layer.buffers[name])
    layer.astype(np.float64)
    assert all(b.dtype == np.float64 for b in layer.buffers.values())
    before = {k: b.copy() for k, b in layer.buffers.items()}
    check_layer(layer, rng.standard_normal((5, 4)), rng=rng)  # training-mode evaluations update them...
    for k, b in layer.buffers.items():
        np.testing.assert_array_equal(b, before[k])  # ...and the checker puts them back


def test_dropout_is_inverted_drawn_from_its_generator_and_the_identity_in_inference():
    x = np.ones((400, 50), np.float32)
    a, b = npae.Dropout(0.3, rng=np.random.default_rng(4)), npae.Dropout(0.3, rng=np.random.default_rng(4))
    ya = a.forward(x)
    np.testing.assert_array_equal(ya, b.forward(x))  # the same generator, the same mask
    kept = ya != 0
    assert set(np.unique(ya)) == {0, np.float32(1 / 0.7)}
    assert abs(kept.mean() - 0.7) < 4 * np.sqrt(0.7 * 0.3 / x.size)  # four standard errors
    np.testing.assert_array_equal(a.backward(np.ones_like(ya)), ya)  # dx = dy * mask / (1 - p)
    np.testing.assert_array_equal(a.forward(x, training=False), x)
    assert npae.Dropout(0.0).forward(x).tolist() == x.tolist()
    with pytest.raises(ValueError, match=r"p must lie in \[0, 1\)"):
        npae.Dropout(1.0)


def test_a_dropout_gradient_check_needs_the_mask_replayed():
    rng = np.random.default_rng(5)
    layer = npae.Dropout(0.5, rng=np.random.default_rng(6))
    x = rng.standard_normal((3, 4))
    assert check_layer(layer, x, rng=rng).passed  # the checker replays the generator

    class Unreplayed(npae.Dropout):
        def generators(self):
            return []  # hides its generator: every evaluation draws another mask

    assert not check_layer(Unreplayed(0.5, rng=np.random.default_rng(6)), x, rng=rng).passed


@NEXT
@given(name=st.sampled_from(["elu", "elu2", "gelu"]), shape=st.lists(st.integers(1, 4), min_size=1, max_size=3),
       seed=st.integers(0, 2 ** 31))
def test_elu_and_gelu_gradients(name, shape, seed):
    rng = np.random.default_rng(seed)
    layer = {"elu": npae.ELU(), "elu2": npae.ELU(0.5), "gelu": npae.GELU()}[name]
    x = away_from_zero(tuple(shape), rng)
    report = check_layer(layer, x, rng=rng)
    assert report.passed and report.worst <= (KINKED if layer.has_kinks else SMOOTH), str(report)


def test_elu_and_gelu_values():
    x = np.array([[-2.0, -0.5, 0.0, 0.5, 3.0]])
    np.testing.assert_allclose(npae.ELU(0.7).forward(x), [[0.7 * np.expm1(-2), 0.7 * np.expm1(-0.5), 0, 0.5, 3]])
    c = np.sqrt(2 / np.pi)
    np.testing.assert_allclose(npae.GELU().forward(x), 0.5 * x * (1 + np.tanh(c * (x + 0.044715 * x ** 3))))


def test_a_model_with_batchnorm_and_dropout_resumes_bit_for_bit(tmp_path):
    """The running statistics and the dropout generator are in the checkpoint."""
    def make(seed):
        rng = np.random.default_rng(seed)
        enc = npae.Sequential(npae.Dense(784, 32, rng=rng), npae.BatchNorm1D(32), npae.ReLU(),
                              npae.Dropout(0.2, rng=np.random.default_rng(seed + 100)))
        dec = npae.Sequential(npae.Dense(32, 784, rng=rng), npae.Sigmoid())
        return npae.Autoencoder(enc, dec, input_shape=(784,))

    x = npae.load_mnist(flatten=True)[0][0][:300]
    straight = make(0)
    npae.fit(straight, x, epochs=2, batch_size=100, rng=np.random.default_rng(1), verbose=False)
    first = make(0)
    npae.fit(first, x, epochs=1, batch_size=100, rng=np.random.default_rng(1), verbose=False,
             checkpoint=tmp_path / "c.npz")
    resumed = make(7)  # other weights, another dropout generator: all restored from the checkpoint
    npae.fit(resumed, x, epochs=2, batch_size=100, rng=np.random.default_rng(9), verbose=False,
             resume=tmp_path / "c.npz")
    for (n, a), (_, b) in zip(straight.named_params(), resumed.named_params()):
        np.testing.assert_array_equal(a.value, b.value, err_msg=n)
    for (n, a), (_, b) in zip(straight.named_buffers(), resumed.named_buffers()):
        np.testing.assert_array_equal(a, b, err_msg=n)


def test_a_whole_objective_with_batchnorm_and_dropout_is_checked_in_training_mode():
    def make():  # the same weights and the same dropout generator every time
        rng = np.random.default_rng(8)
        enc = npae.Sequential(npae.Dense(12, 6, rng=rng, dtype=np.float64), npae.BatchNorm1D(6, dtype=np.float64),
                              npae.Tanh(), npae.Dropout(0.25, rng=np.random.default_rng(9)))
        dec = npae.Sequential(npae.Dense(6, 12, rng=rng, dtype=np.float64), npae.Sigmoid())
        return npae.Autoencoder(enc, dec, input_shape=(12,))

    x = np.random.default_rng(18).uniform(0.05, 0.95, (5, 12))
    h = 1e-6
    report = check_model(make(), x, samples=None, threshold=SMOOTH, h=h)
    assert all(e.rel_error <= e.threshold for e in report.entries if e.name != "encoder.0.b"), str(report)
    # The bias of the Dense before BatchNorm: in training mode the normalization subtracts the
    # batch's mean, so the objective does not depend on it and its true gradient is 0. Central
    # differences then see only the rounding of f, which a relative error cannot judge (both
    # sides are noise). f is a chain of fewer than 200 roundings (both Dense layers, BatchNorm,
    # tanh, sigmoid, the mean), so each evaluation is within gamma(200)|f| and the difference
    # quotient within gamma(200)|f| / h of 0; the analytic gradient (BatchNorm's dx summed over the
    # batch) must be 0 to that resolution too, where a wrong backward gives the size of dW.
    model = make()
    f = model.objective(x, np.random.default_rng(0))
    model.loss_and_grads(x, np.random.default_rng(0))
    analytic = model.encoder[0].params["b"].grad
    resolution = gamma(200) * abs(f) / h
    for j in range(6):
        shifted = []
        for step in (h, -h):
            m = make()
            m.encoder[0].params["b"].value[j] += step
            shifted.append(m.objective(x, np.random.default_rng(0)))
        assert abs((shifted[0] - shifted[1]) / (2 * h)) <= resolution
    assert np.abs(analytic).max() <= resolution < 1e-3 * np.abs(model.encoder[0].params["W"].grad).max()


def test_a_convolution_without_bias(tmp_path):
    rng = np.random.default_rng(10)
    for cls, x in ((npae.Conv2D, rng.standard_normal((2, 2, 5, 5))),
                   (npae.ConvTranspose2D, rng.standard_normal((2, 2, 3, 3)))):
        plain = cls(2, 3, 3, rng=np.random.default_rng(0), dtype=np.float64)
        bare = cls(2, 3, 3, rng=np.random.default_rng(0), dtype=np.float64, bias=False)
        assert list(bare.params) == ["W"] and bare.config()["bias"] is False and "bias" not in plain.config()
        np.testing.assert_array_equal(bare.forward(x), plain.forward(x))  # plain's b is 0
        npae.save(npae.Sequential(bare), tmp_path / "bare.npz")
        assert list(npae.load(tmp_path / "bare.npz")[0].params) == ["W"]
        assert check_layer(bare, x, rng=rng).passed
