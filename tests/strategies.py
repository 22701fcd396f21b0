"""Hypothesis strategies shared by the gradient checks and the reference comparisons."""

import numpy as np
from hypothesis import HealthCheck, assume, settings
from hypothesis import strategies as st

import npae
from npae.core import away_from_zero
from npae.nn import reference as ref

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
paddings = st.one_of(st.sampled_from(["same", "valid"]), st.integers(0, 2))


def fits(size, k, s, padding):
    return ref.pads(size, k, s, padding)[2] >= 1


@st.composite
def window_geometry(draw, max_hw=9, max_k=4):
    """(h, w, (kh, kw), (sh, sw), padding) for which at least one window fits."""
    h, w = draw(st.integers(1, max_hw)), draw(st.integers(1, max_hw))
    k = (draw(st.integers(1, max_k)), draw(st.integers(1, max_k)))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = draw(paddings)
    assume(fits(h, k[0], s[0], padding) and fits(w, k[1], s[1], padding))
    return h, w, k, s, padding


@st.composite
def conv_cases(draw):
    """(layer, x, rng): a float64 Conv2D with a random bias and an input it accepts."""
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    # c_out up to 12: wide enough for the per-sample kernel (c_in*kh*kw + 1 <= 2*c_out) with 3x3 windows
    n, c_in, c_out = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 12))
    h, w, k, s, padding = draw(window_geometry())
    layer = npae.Conv2D(c_in, c_out, k, stride=s, padding=padding, rng=rng, dtype=np.float64)
    layer.params["b"].value[...] = rng.standard_normal(c_out)
    # |x| >= 0.1: a 1x1 image of a batch of one gives dW = x dy, which a tiny x would drown in
    # the rounding of the checked function
    return layer, away_from_zero((n, c_in, h, w), rng), rng


@st.composite
def pool_cases(draw):
    """(layer, x_shape, rng): a MaxPool2D (int padding at most half the pool) and an input shape."""
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    n, c = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    h, w, k, s, padding = draw(window_geometry())
    assume(not isinstance(padding, int) or padding <= min(k) // 2)
    return npae.MaxPool2D(k, stride=s, padding=padding), (n, c, h, w), rng


def registered_examples(dtype=np.float64):
    """``(class name, layer, x)`` for every example of every registered layer (npae.core.LAYERS),
    converted to ``dtype``: the tests' "every layer" lists read the registry, so a new layer
    is in them as soon as it is registered with its examples."""
    from npae.core import LAYERS

    out = []
    for name, cls in LAYERS.items():
        for _, layer, x in cls.examples(np.random.default_rng(0)):
            out.append((name, layer.astype(dtype), x.astype(dtype)))
    return out
