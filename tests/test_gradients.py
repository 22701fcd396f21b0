"""Every layer, loss and penalty gradient-checked in float64 over configurations drawn by
hypothesis: batch, channels, odd and even sizes, kernels, strides and every padding mode.
Smooth functions must reach a relative error <= 1e-7; those with kinks <= 1e-5, with their
inputs kept away from the kinks (so a passing check is a real derivative, not luck)."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import SETTINGS, conv_cases, pool_cases

import npae
from npae.checks import suite
from npae.checks.gradcheck import KINKED, SMOOTH, away_from_zero, check_function, check_layer, distinct_values


def assert_passes(report, threshold):
    assert report.passed, str(report)
    assert report.worst <= threshold
    assert all(e.kinks == 0 for e in report.entries), str(report)


@SETTINGS
@given(case=conv_cases())
def test_conv2d(case):
    layer, x, rng = case
    assert_passes(check_layer(layer, x, rng=rng), SMOOTH)


@SETTINGS
@given(case=pool_cases())
def test_maxpool2d(case):
    layer, shape, rng = case
    assert_passes(check_layer(layer, distinct_values(shape, rng), rng=rng), KINKED)


@SETTINGS
@given(n=st.integers(1, 3), c=st.integers(1, 3), h=st.integers(1, 5), w=st.integers(1, 5),
       sh=st.integers(1, 3), sw=st.integers(1, 3), seed=st.integers(0, 2**31))
def test_upsampling2d(n, c, h, w, sh, sw, seed):
    rng = np.random.default_rng(seed)
    assert_passes(check_layer(npae.UpSampling2D((sh, sw)), rng.standard_normal((n, c, h, w)), rng=rng), SMOOTH)


@SETTINGS
@given(n=st.integers(1, 4), n_in=st.integers(1, 9), n_out=st.integers(1, 9), seed=st.integers(0, 2**31))
def test_dense(n, n_in, n_out, seed):
    rng = np.random.default_rng(seed)
    layer = npae.Dense(n_in, n_out, rng=rng, dtype=np.float64)
    layer.params["b"].value[...] = rng.standard_normal(n_out)
    # |x| >= 0.1: with a batch of one and one input, dW = x dy is as small as x, and a tiny x
    # would put dW below the rounding of f itself (eps |f| / h ~ 1e-10)
    assert_passes(check_layer(layer, away_from_zero((n, n_in), rng), rng=rng), SMOOTH)


ACTIVATIONS = {
    "relu": (npae.ReLU, KINKED),
    "leaky": (lambda: npae.LeakyReLU(0.2), KINKED),
    "sigmoid": (npae.Sigmoid, SMOOTH),
    "tanh": (npae.Tanh, SMOOTH),
    "softplus": (npae.Softplus, SMOOTH),
}


@SETTINGS
@given(name=st.sampled_from(sorted(ACTIVATIONS)), shape=st.lists(st.integers(1, 4), min_size=1, max_size=4),
       high=st.floats(0.2, 3.0), seed=st.integers(0, 2**31))
def test_activations(name, shape, high, seed):
    # |x| in [0.1, high]: away from the ReLU kink, and short of saturation, where the
    # derivative (~1e-8 at |x| = 10 for tanh) drowns in the rounding of f (eps |f| / h ~ 1e-10)
    rng = np.random.default_rng(seed)
    make, threshold = ACTIVATIONS[name]
    x = rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.1, high, size=shape)
    assert_passes(check_layer(make(), x, rng=rng), threshold)


@SETTINGS
@given(shape=st.lists(st.integers(1, 4), min_size=2, max_size=4), seed=st.integers(0, 2**31))
def test_flatten_and_reshape(shape, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(tuple(shape))
    assert_passes(check_layer(npae.Flatten(), x, rng=rng), SMOOTH)
    flat = x.reshape(x.shape[0], -1)
    assert_passes(check_layer(npae.Reshape(tuple(shape[1:])), flat, rng=rng), SMOOTH)


@SETTINGS
@given(shape=st.lists(st.integers(1, 5), min_size=1, max_size=4), seed=st.integers(0, 2**31))
def test_losses(shape, seed):
    rng = np.random.default_rng(seed)
    y = rng.uniform(0, 1, shape)
    p = rng.uniform(0.02, 0.98, shape)
    for loss in (npae.objectives.losses.mse, npae.objectives.losses.bce):
        report = check_function(lambda q, loss=loss: loss(q, y), p)
        assert_passes(report, SMOOTH)


@SETTINGS
@given(n=st.integers(1, 5), k=st.integers(1, 6), lam=st.floats(0.01, 3.0), rho=st.floats(0.02, 0.5),
       beta=st.floats(0.1, 5.0), seed=st.integers(0, 2**31))
def test_penalties(n, k, lam, rho, beta, seed):
    rng = np.random.default_rng(seed)
    l1 = npae.objectives.penalties.L1Activity(lam)
    assert_passes(check_function(l1, away_from_zero((n, k), rng), threshold=KINKED, kink=l1.kink_state), KINKED)
    kl = npae.objectives.penalties.KLSparsity(rho, beta)
    assert_passes(check_function(kl, rng.uniform(0.05, 0.95, (n, k))), SMOOTH)
    layer = npae.Dense(k, 3, rng=rng, dtype=np.float64)
    wd = npae.objectives.penalties.WeightDecay(lam)

    def f(w):
        layer.params["W"].value = w
        value, grads = wd(layer.named_params())
        assert set(grads) == {"W"}  # the bias has decay=False
        return value, grads["W"]

    assert_passes(check_function(f, rng.standard_normal((k, 3))), SMOOTH)


def test_sequential_end_to_end():
    """A small convolutional autoencoder, every parameter and the input, in one check."""
    rng = np.random.default_rng(3)
    model = npae.Sequential(
        npae.Conv2D(1, 3, 3, rng=rng), npae.ReLU(), npae.MaxPool2D(2, padding="same"),
        npae.Flatten(), npae.Dense(12, 5, rng=rng), npae.Tanh(), npae.Dense(5, 12, rng=rng),
        npae.Reshape((3, 2, 2)), npae.UpSampling2D(2), npae.Conv2D(3, 1, 2, padding="valid", rng=rng),
        npae.Sigmoid(),
    ).astype(np.float64)
    for _, p in model.named_params():
        p.value[...] = rng.standard_normal(p.shape) * 0.5
    x = rng.uniform(0, 1, (3, 1, 4, 4))
    report = check_layer(model, x, rng=rng)
    assert {e.name for e in report.entries} == {"x"} | {n for n, _ in model.named_params()}
    assert report.passed, str(report)
    # the relu and max-pool kinks must not have been crossed for this to be a valid proof
    assert sum(e.kinks for e in report.entries) == 0, str(report)


@pytest.mark.slow
def test_builtin_suite_passes():
    """What `python -m npae gradcheck` runs."""
    for _title, thunk in suite.builtin_checks(np.random.default_rng(1)):
        report = thunk()
        assert report.passed, str(report)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_cli_gradcheck_exit_code(seed, capsys):
    from npae.cli import main

    assert main(["gradcheck", "--seed", str(seed)]) == 0
    out = capsys.readouterr().out
    assert "all gradient checks passed" in out
    assert "Conv2D 3x3 same" in out and "KLSparsity" in out
