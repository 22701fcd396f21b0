"""The Layer contract: dtypes, accumulation, caching, Sequential naming and summary."""

import numpy as np
import pytest
from strategies import registered_examples
from tolerances import assert_close

import npae
from npae.core import LAYERS, Param

rng0 = np.random.default_rng(0)


def every_layer(dtype=np.float32):
    """Every example of every registered layer, and two stacks, with an input of the right shape."""
    rng = np.random.default_rng(0)
    img = rng.uniform(0, 1, (2, 3, 6, 6)).astype(dtype)
    vec = rng.standard_normal((4, 5)).astype(dtype)
    return [(layer, x) for _, layer, x in registered_examples(dtype)] + [
        (npae.Sequential(npae.Flatten(), npae.Dense(108, 4, rng=rng, dtype=dtype), npae.Sigmoid()), img),
        (npae.Sequential(tied := npae.Dense(5, 3, rng=rng, dtype=dtype), npae.Tanh(), npae.TiedDense(tied)), vec),
    ]


def test_every_registered_layer_has_examples():
    for name, cls in LAYERS.items():
        if cls is npae.Sequential:
            continue  # a container: checked through the stacks of the suite and of every_layer
        examples = cls.examples(np.random.default_rng(0))
        assert examples, name
        for title, layer, x in examples:
            assert isinstance(layer, npae.Layer) and x.dtype == np.float64, title


@pytest.mark.parametrize("index", range(len(every_layer())))
def test_every_layer_survives_save_and_load(index, tmp_path):
    layer, x = every_layer(np.float64)[index]
    if any(isinstance(inner, npae.TiedDense) for inner in getattr(layer, "layers", [layer])):
        pytest.skip("a TiedDense is saved inside the Autoencoder whose encoder holds its source (test_beyond)")
    npae.save(layer, tmp_path / "layer.npz")
    loaded = npae.load(tmp_path / "layer.npz")
    assert type(loaded) is type(layer) and loaded.config() == layer.config()
    np.testing.assert_array_equal(loaded.forward(x, training=False), layer.forward(x, training=False))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("index", range(len(every_layer())))
def test_dtype_is_preserved(dtype, index):
    layer, x = every_layer(dtype)[index]
    y = layer.forward(x)
    assert y.dtype == dtype
    dx = layer.backward(np.ones_like(y))
    assert dx.dtype == dtype and dx.shape == x.shape
    for _, p in layer.named_params():
        assert p.value.dtype == dtype and p.grad.dtype == dtype
    assert tuple(layer.output_shape(x.shape[1:])) == y.shape[1:]


@pytest.mark.parametrize("index", range(len(every_layer())))
def test_backward_twice_doubles_gradients(index):
    layer, x = every_layer(np.float64)[index]
    y = layer.forward(x)
    dy = np.random.default_rng(1).standard_normal(y.shape)
    dx1 = layer.backward(dy)
    first = {n: p.grad.copy() for n, p in layer.named_params()}
    dx2 = layer.backward(dy)
    np.testing.assert_array_equal(dx1, dx2)  # dx is returned, not accumulated
    for n, p in layer.named_params():
        np.testing.assert_allclose(p.grad, 2 * first[n], rtol=1e-15)
    layer.zero_grad()
    assert all(np.all(p.grad == 0) for _, p in layer.named_params())


def test_backward_never_touches_weights():
    layer = npae.Conv2D(1, 2, 3, rng=rng0)
    w = layer.W.copy()
    layer.backward(np.ones_like(layer.forward(np.ones((1, 1, 4, 4), np.float32))))
    np.testing.assert_array_equal(layer.W, w)


def test_inference_forward_caches_nothing():
    layer = npae.Dense(3, 2, rng=rng0)
    layer.forward(np.ones((1, 3), np.float32), training=False)
    with pytest.raises(ValueError, match="before forward"):
        layer.backward(np.ones((1, 2), np.float32))


@pytest.mark.parametrize("c_in, c_out", [(3, 4), (4, 1), (1, 8)])  # im2col, narrowing, per-sample kernels
def test_conv_inference_leaves_no_scratch_behind(c_in, c_out):
    """Training keeps its scratch arrays for the next step; an inference call (here a bigger
    batch) keeps none, and training afterwards gives the same results."""
    rng = np.random.default_rng(0)
    layer = npae.Conv2D(c_in, c_out, 3, rng=rng, dtype=np.float64)
    x, big = rng.standard_normal((2, c_in, 6, 5)), rng.standard_normal((7, c_in, 6, 5))
    dy = rng.standard_normal((2, c_out, 6, 5))
    y = layer.forward(x)
    dx = layer.backward(dy)
    grads = [p.grad.copy() for _, p in layer.named_params()]
    kept = layer._scratch.nbytes
    assert kept > 0
    y_big = layer.forward(big, training=False)
    assert layer._scratch.nbytes == kept
    # another batch size may take another BLAS kernel: the same sums of c_in*3*3 + 1 terms in another
    # order; factor 4: two computations, each window's sum of |terms| up to twice the largest output
    assert_close(y_big[:2], layer.forward(big[:2], training=False), terms=9 * c_in + 1, factor=4)
    layer.zero_grad()
    np.testing.assert_array_equal(layer.forward(x), y)
    np.testing.assert_array_equal(layer.backward(dy), dx)
    for (_, p), g in zip(layer.named_params(), grads):
        np.testing.assert_array_equal(p.grad, g)


def test_sequential_names_and_params():
    rng = np.random.default_rng(0)
    enc = npae.Sequential(npae.Dense(6, 4, rng=rng), npae.ReLU(), npae.Dense(4, 2, rng=rng))
    dec = npae.Sequential(npae.Dense(2, 6, rng=rng), npae.Sigmoid())
    model = npae.Sequential(enc, dec)
    names = [n for n, _ in model.named_params()]
    assert names == ["0.0.W", "0.0.b", "0.2.W", "0.2.b", "1.0.W", "1.0.b"]
    assert list(enc.params) == ["0.W", "0.b", "2.W", "2.b"]
    assert model.params["1.0.W"] is dec[0].params["W"]
    assert [n for n, _ in enc.named_params("encoder.")][0] == "encoder.0.W"
    assert model.n_params() == 6 * 4 + 4 + 4 * 2 + 2 + 2 * 6 + 6
    assert model.params["0.0.b"].decay is False and model.params["0.0.W"].decay is True


def test_sequential_chain_rule_equals_manual_composition():
    rng = np.random.default_rng(0)
    a, b = npae.Dense(3, 4, rng=rng, dtype=np.float64), npae.Tanh()
    seq = npae.Sequential(a, b)
    x = rng.standard_normal((2, 3))
    y = seq.forward(x)
    np.testing.assert_array_equal(y, np.tanh(x @ a.W + a.b))
    dy = rng.standard_normal(y.shape)
    dx = seq.backward(dy)
    np.testing.assert_allclose(dx, (dy * (1 - y**2)) @ a.W.T, rtol=1e-14)


def test_summary_lists_shapes_and_counts():
    rng = np.random.default_rng(0)
    model = npae.Sequential(
        npae.Conv2D(1, 16, 3, rng=rng), npae.ReLU(), npae.MaxPool2D(2, padding="same"),
        npae.Conv2D(16, 8, 3, padding="valid", rng=rng), npae.Flatten(), npae.Dense(8 * 12 * 12, 10, rng=rng),
    )
    text = model.summary((1, 28, 28))
    assert "(N, 16, 28, 28)" in text and "(N, 16, 14, 14)" in text and "(N, 8, 12, 12)" in text
    assert "(N, 1152)" in text and "(N, 10)" in text
    assert f"total parameters: {16 * 9 + 16 + 8 * 16 * 9 + 8 + 1152 * 10 + 10:,}" in text
    with pytest.raises(ValueError, match="layer 0"):
        model.summary((3, 28, 28))


def test_repr():
    assert repr(npae.Dense(3, 2)) == "Dense(3, 2)"
    assert repr(npae.Conv2D(1, 16, 3)) == "Conv2D(1, 16, kernel_size=3, padding='same')"
    assert repr(npae.MaxPool2D(2, padding="same")) == "MaxPool2D(pool_size=2, padding='same')"
    assert repr(npae.UpSampling2D(2)) == "UpSampling2D(size=2)"
    assert repr(npae.LeakyReLU(0.2)) == "LeakyReLU(alpha=0.2)"
    text = repr(npae.Sequential(npae.Dense(3, 2), npae.ReLU()))
    assert text == "Sequential(\n  (0): Dense(3, 2)\n  (1): ReLU()\n)"
    assert repr(Param(np.zeros((2, 3), np.float32))) == "Param(shape=(2, 3), dtype=float32, decay=True)"


def test_astype_converts_in_place_and_keeps_param_objects():
    layer = npae.Sequential(npae.Dense(3, 2, rng=rng0), npae.ReLU())
    p = layer.params["0.W"]
    layer.astype(np.float64)
    assert layer.params["0.W"] is p and p.value.dtype == np.float64 and p.grad.dtype == np.float64
    assert layer[0].dtype == np.float64
    with pytest.raises(TypeError, match="float32 or float64"):
        layer.astype(np.int32)


def test_seeded_init_is_reproducible_and_unseeded_differs():
    a = npae.Dense(5, 4, rng=np.random.default_rng(7))
    b = npae.Dense(5, 4, rng=np.random.default_rng(7))
    np.testing.assert_array_equal(a.W, b.W)
    assert not np.array_equal(npae.Dense(5, 4).W, npae.Dense(5, 4).W)


def test_initializer_scales():
    rng = np.random.default_rng(0)
    w = npae.glorot_uniform((400, 600), rng)
    limit = np.sqrt(6 / 1000)
    assert np.abs(w).max() <= limit and np.abs(w).max() > 0.99 * limit
    assert w.std() == pytest.approx(limit / np.sqrt(3), rel=0.01)
    h = npae.he_normal((16, 8, 3, 3), rng, layout="conv")
    assert h.std() == pytest.approx(np.sqrt(2 / (8 * 9)), rel=0.05)
    conv = npae.Conv2D(8, 16, 3, rng=rng, init="he_normal")
    assert conv.W.std() == pytest.approx(np.sqrt(2 / 72), rel=0.05)
    assert np.all(conv.b == 0)
    with pytest.raises(ValueError, match="unknown initializer"):
        npae.Dense(2, 2, init="zeros")


def test_skipping_the_input_gradient_leaves_parameter_gradients_unchanged():
    rng = np.random.default_rng(0)
    # the convolutions: im2col (3 -> 4), narrowing (4 -> 2: no im2col matrix, shifted dy for dW)
    # and per sample (1 -> 8)
    for first in (npae.Dense(12, 6, rng=rng, dtype=np.float64), npae.Conv2D(3, 4, 3, rng=rng, dtype=np.float64),
                  npae.Conv2D(4, 2, 3, rng=rng, dtype=np.float64), npae.Conv2D(1, 8, 3, rng=rng, dtype=np.float64)):
        rest = [npae.ReLU(), npae.Flatten()] if isinstance(first, npae.Conv2D) else [npae.Tanh()]
        model = npae.Sequential(first, *rest)
        x = rng.standard_normal((2, 12) if isinstance(first, npae.Dense) else (2, first.c_in, 5, 5))
        y = model.forward(x)
        dy = rng.standard_normal(y.shape)
        model.backward(dy)
        full = {n: p.grad.copy() for n, p in model.named_params()}
        model.zero_grad()
        model.forward(x)
        assert model.backward(dy, need_dx=False) is None
        for n, p in model.named_params():
            np.testing.assert_array_equal(p.grad, full[n])


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning",
                            "ignore:invalid value encountered:RuntimeWarning")
def test_nan_made_inside_a_sequential_is_caught_by_the_loss():
    """Inner layers skip the finiteness scan; an overflow still cannot pass the loss unseen."""
    layer = npae.Dense(2, 2, dtype=np.float32)
    layer.params["W"].value[...] = 3e38
    model = npae.Sequential(layer, npae.ReLU())
    y = model.forward(np.ones((1, 2), np.float32))  # 3e38 + 3e38 overflows to inf
    with pytest.raises(ValueError, match="mse: y_pred contains"):
        npae.objectives.losses.mse(y, np.zeros_like(y))
    with pytest.raises(ValueError, match="NaN"):
        model.forward(np.full((1, 2), np.nan, np.float32))  # the input from outside is still scanned
