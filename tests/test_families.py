"""Every registered family, whoever wrote it: one vocabulary of options, and its whole objective's
gradient against central differences (float64). A new family (one module in npae/models/,
decorated ``@FAMILIES.register``) is found here, and by tests/test_cli.py, which trains each
from the command line, with no line added to either."""

import inspect

import numpy as np
import pytest

import npae
from npae.checks.gradcheck import KINKED, check_model

#: the options every family that has them spells alike (docs/autoencoders.md)
COMMON = {"input_shape", "rng", "dtype", "loss", "name"}
#: names replaced in 0.3 by ``code`` and ``code_activation``; a family must not bring them back
RETIRED = {"latent", "code_channels", "activation", "code_size", "n_code", "latent_dim"}


@pytest.mark.parametrize("family", list(npae.FAMILIES))
def test_every_family_takes_the_same_option_names(family):
    takes = set(inspect.signature(npae.FAMILIES[family]).parameters)
    assert COMMON <= takes, f"{family} lacks {sorted(COMMON - takes)}"
    assert not takes & RETIRED, f"{family} takes {sorted(takes & RETIRED)}; call it code / code_activation"
    assert "code" in takes, f"{family}: every family sizes its code with code="


def small_input(model, rng):
    shape = model.input_shape
    if len(shape) == 3:  # the conv families: their smallest image (8x8: three halvings; 4x4: two)
        shape = (shape[0], 8, 8)
    return rng.uniform(0.05, 0.95, (2,) + shape), shape


@pytest.mark.parametrize("family", list(npae.FAMILIES))
def test_every_family_has_exact_gradients(family):
    """The whole objective (reconstruction, penalties, the VAE's KL with eps fixed, a denoiser's
    noise fixed) of a small instance, float64, against central differences."""
    make = npae.FAMILIES[family]
    rng = np.random.default_rng(0)
    shape = small_input(make(rng=np.random.default_rng(0)), rng)[1]
    kwargs = {"code": 3} if "code" in inspect.signature(make).parameters else {}
    if family == "vae":
        kwargs["hidden"] = 8
    model = make(input_shape=shape, rng=np.random.default_rng(1), dtype=np.float64, **kwargs)
    for _, p in model.named_params():  # away from kinks and saturation: N(0, 1/fan_in)
        fan_in = p.shape[0] if p.value.ndim == 2 else (np.prod(p.shape[1:]) if p.value.ndim == 4 else 10)
        p.value[...] = rng.normal(0, 1 / np.sqrt(fan_in), p.shape)
    x, _ = small_input(model, rng)
    report = check_model(model, x.reshape((2,) + model.input_shape), samples=8)
    assert report.passed and report.worst <= KINKED, str(report)
