"""Input corruptions for denoising autoencoders.

Each is called as ``x_noisy = noise(x, rng)`` with an explicit ``np.random.Generator``
(never the global NumPy state), returns a new array of x's shape and dtype, and never
modifies ``x``. Noise is applied to the input only; the target stays the clean ``x``.
"""

from __future__ import annotations

import numpy as np

from .. import _checks
from ..registry import Registry

#: every noise class, by name (what a saved model's description may name)
NOISES = Registry("noise")


def _prep(x, rng, where):
    _checks.check_rng(rng, where)
    x = _checks.as_float_array(x, where, "x")
    _checks.check_finite(x, where, "x")
    return x


def _probability(p, where):
    p = _checks.nonneg_float(p, "p", where)
    if p > 1:
        raise ValueError(f"{where}: p must lie in [0, 1], got {p}")
    return p


@NOISES.register
class GaussianNoise:
    """``x + std * eps``, ``eps ~ N(0, 1)`` element-wise, then clipped to ``clip`` (None: no clip).

    The article's denoiser uses std 0.5 and clips to [0, 1] (the pixel range).
    """

    def __init__(self, std: float, clip: tuple[float, float] | list[float] | None = (0.0, 1.0)):
        self.std = _checks.nonneg_float(std, "std", "GaussianNoise")
        if clip is not None:
            lo, hi = (float(c) for c in clip)
            if not lo < hi:
                raise ValueError(f"GaussianNoise: clip must be (low, high) with low < high, got {clip}")
            clip = (lo, hi)
        self.clip = clip

    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        x = _prep(x, rng, "GaussianNoise")
        y = x + rng.standard_normal(x.shape, dtype=x.dtype) * x.dtype.type(self.std)
        return np.clip(y, *self.clip, out=y) if self.clip else y

    def config(self) -> dict:
        return {"type": "GaussianNoise", "std": self.std, "clip": None if self.clip is None else list(self.clip)}

    def __repr__(self):
        return f"GaussianNoise(std={self.std}, clip={self.clip})"


@NOISES.register
class MaskingNoise:
    """Set each element to 0 independently with probability ``p`` (Vincent et al., 2008)."""

    def __init__(self, p: float):
        self.p = _probability(p, "MaskingNoise")

    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        x = _prep(x, rng, "MaskingNoise")
        return np.where(rng.random(x.shape) < self.p, x.dtype.type(0), x)

    def config(self) -> dict:
        return {"type": "MaskingNoise", "p": self.p}

    def __repr__(self):
        return f"MaskingNoise(p={self.p})"


@NOISES.register
class SaltAndPepper:
    """With probability ``p`` replace an element by ``low`` or ``high`` (each with chance 1/2)."""

    def __init__(self, p: float, low: float = 0.0, high: float = 1.0):
        self.p = _probability(p, "SaltAndPepper")
        self.low, self.high = float(low), float(high)

    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        x = _prep(x, rng, "SaltAndPepper")
        u = rng.random(x.shape)
        salt = np.where(rng.random(x.shape) < 0.5, x.dtype.type(self.high), x.dtype.type(self.low))
        return np.where(u < self.p, salt, x)

    def config(self) -> dict:
        return {"type": "SaltAndPepper", "p": self.p, "low": self.low, "high": self.high}

    def __repr__(self):
        return f"SaltAndPepper(p={self.p}, low={self.low}, high={self.high})"
