"""Bad input gets a clear ValueError/TypeError that names what was expected; never a NumPy
traceback from deep inside (we check the message starts with the layer's own name)."""

import contextlib

import numpy as np
import pytest
from strategies import registered_examples

import npae

f32 = np.float32


@contextlib.contextmanager
def raises(exc, where, *fragments):
    """Expect ``exc`` whose message starts with ``where:`` and contains each fragment."""
    with pytest.raises(exc) as info:
        yield info
    msg = str(info.value)
    assert msg.startswith(where + ":"), msg
    for frag in fragments:
        assert frag in msg, (frag, msg)


CASES = [
    # (layer, bad input, exception, fragments the message must contain)
    (lambda: npae.Dense(3, 2), np.zeros((4, 5), f32), ValueError, ["(N, 3)", "(4, 5)"]),
    (lambda: npae.Dense(3, 2), np.zeros((4, 3, 1), f32), ValueError, ["(N, 3)"]),
    (lambda: npae.Dense(3, 2), np.zeros(3, f32), ValueError, ["(N, 3)"]),
    (lambda: npae.Dense(3, 2), np.zeros((0, 3), f32), ValueError, ["empty batch"]),
    (lambda: npae.Dense(3, 2), np.zeros((4, 3), np.uint8), TypeError, ["uint8", "floating-point"]),
    (lambda: npae.Dense(3, 2), np.zeros((4, 3), np.float64), TypeError, ["float64", "float32"]),
    (lambda: npae.Dense(3, 2), np.full((4, 3), np.nan, f32), ValueError, ["NaN"]),
    (lambda: npae.Dense(3, 2), "not an array", TypeError, ["NumPy array"]),
    (lambda: npae.Conv2D(3, 4, 3), np.zeros((2, 1, 8, 8), f32), ValueError, ["(N, 3, H, W)", "(2, 1, 8, 8)"]),
    (lambda: npae.Conv2D(3, 4, 3), np.zeros((3, 8, 8), f32), ValueError, ["(N, 3, H, W)"]),
    (lambda: npae.Conv2D(1, 4, 5, padding="valid"), np.zeros((1, 1, 3, 8), f32), ValueError, ["smaller than the 5x5"]),
    (lambda: npae.Conv2D(1, 4, 3), np.zeros((1, 1, 4, 4), np.int64), TypeError, ["int64"]),
    (lambda: npae.Conv2D(1, 4, 3), np.full((1, 1, 4, 4), np.inf, f32), ValueError, ["infinite"]),
    (lambda: npae.MaxPool2D(2), np.zeros((2, 8, 8), f32), ValueError, ["(N, C, H, W)"]),
    (lambda: npae.MaxPool2D(3), np.zeros((1, 1, 2, 2), f32), ValueError, ["smaller than the 3x3"]),
    (lambda: npae.UpSampling2D(2), np.zeros((2, 8), f32), ValueError, ["(N, C, H, W)"]),
    (lambda: npae.Reshape((4, 4)), np.zeros((2, 15), f32), ValueError, ["16 values", "(2, 15)"]),
    (lambda: npae.Flatten(), np.zeros(5, f32), ValueError, ["at least 2 axes"]),
    (lambda: npae.ReLU(), np.array([1, 2]), TypeError, ["int64"]),
    (lambda: npae.Sigmoid(), np.array([[np.nan]]), ValueError, ["NaN"]),
]


@pytest.mark.parametrize("make, x, exc, fragments", CASES)
def test_bad_forward_input(make, x, exc, fragments):
    layer = make()
    with raises(exc, type(layer).__name__, *fragments):
        layer.forward(x)


def first_example_of_each_layer():
    """The first example of every registered layer, in float32 (for a stack, its last layer checks dy)."""
    first = {}
    for name, layer, x in registered_examples(f32):
        if name != "Sequential":
            first.setdefault(name, (name, layer, x))
    return list(first.values())


GOOD = first_example_of_each_layer()


@pytest.mark.parametrize("name, layer, x", GOOD, ids=[g[0] for g in GOOD])
def test_backward_before_forward(name, layer, x):
    with raises(ValueError, name, "before forward"):
        layer.backward(np.zeros((1, 1), f32))


@pytest.mark.parametrize("name, layer, x", GOOD, ids=[g[0] for g in GOOD])
def test_backward_with_wrong_dy(name, layer, x):
    y = layer.forward(x)
    with raises(ValueError, name, "expected dy of shape", str(tuple(y.shape))):
        layer.backward(np.zeros(y.shape + (1,), f32))
    with raises(TypeError, name, "dtype"):
        layer.backward(np.zeros(y.shape, np.float64))
    bad = np.zeros(y.shape, f32)
    bad.flat[0] = np.nan
    with raises(ValueError, name, "NaN"):
        layer.backward(bad)


@pytest.mark.parametrize("call, exc, where, fragment", [
    (lambda: npae.Dense(0, 3), ValueError, "Dense", "n_in"),
    (lambda: npae.Dense(3, 2, dtype=np.int32), TypeError, "Dense", "float32 or float64"),
    (lambda: npae.Dense(3, 2, rng=42), TypeError, "Dense", "numpy.random.Generator"),
    (lambda: npae.Conv2D(1, 2, 0), ValueError, "Conv2D", "kernel_size"),
    (lambda: npae.Conv2D(1, 2, (3, 3, 3)), TypeError, "Conv2D", "kernel_size"),
    (lambda: npae.Conv2D(1, 2, 3, padding="full"), ValueError, "Conv2D", "'same', 'valid'"),
    (lambda: npae.Conv2D(1, 2, 3, stride=0), ValueError, "Conv2D", "stride"),
    (lambda: npae.MaxPool2D(2, padding=2), ValueError, "MaxPool2D", "at most half"),
    (lambda: npae.MaxPool2D(2.5), TypeError, "MaxPool2D", "pool_size"),
    (lambda: npae.UpSampling2D(0), ValueError, "UpSampling2D", "size"),
    (lambda: npae.Reshape((0, 3)), ValueError, "Reshape", "positive"),
    (lambda: npae.LeakyReLU(-1), ValueError, "LeakyReLU", "alpha"),
    (lambda: npae.Sequential(npae.Dense(2, 2), "relu"), TypeError, "Sequential", "not an npae Layer"),
])
def test_bad_constructor_arguments(call, exc, where, fragment):
    with raises(exc, where, fragment):
        call()


@pytest.mark.parametrize("loss", [npae.objectives.losses.mse, npae.objectives.losses.bce])
def test_losses_refuse_to_broadcast(loss):
    name = loss.__name__
    with raises(ValueError, name, "(4, 1)", "(4, 3)"):
        loss(np.full((4, 1), 0.5), np.full((4, 3), 0.5))
    with raises(TypeError, name, "int64"):
        loss(np.full((4, 3), 0.5), np.ones((4, 3), dtype=np.int64))
    with raises(ValueError, name, "NaN"):
        loss(np.full((2, 2), np.nan), np.zeros((2, 2)))


def test_bce_range_checked():
    with raises(ValueError, "bce", "y_pred must lie in [0, 1]"):
        npae.objectives.losses.bce(np.array([[1.5]]), np.array([[1.0]]))
    with raises(ValueError, "bce", "y must lie in [0, 1]"):
        npae.objectives.losses.bce(np.array([[0.5]]), np.array([[2.0]]))


def test_penalty_inputs_checked():
    with raises(ValueError, "L1Activity", "(N, K)"):
        npae.objectives.penalties.L1Activity(0.1)(np.ones(3))
    with raises(ValueError, "KLSparsity", "[0, 1]"):
        npae.objectives.penalties.KLSparsity(0.05, 1.0)(np.full((2, 3), 2.0))
    with raises(ValueError, "KLSparsity", "rho"):
        npae.objectives.penalties.KLSparsity(1.0, 1.0)
    with raises(ValueError, "L1Activity", "lam"):
        npae.objectives.penalties.L1Activity(-0.1)


def test_noise_needs_a_generator():
    with raises(TypeError, "GaussianNoise", "numpy.random.Generator"):
        npae.objectives.noise.GaussianNoise(0.5)(np.zeros((2, 2)), 0)
    with raises(ValueError, "MaskingNoise", "[0, 1]"):
        npae.objectives.noise.MaskingNoise(1.5)
    with raises(ValueError, "GaussianNoise", "clip"):
        npae.objectives.noise.GaussianNoise(0.5, clip=(1, 0))
