"""Element-wise activations. Each is a layer, so its backward is one chain-rule factor:
``dx = dy * f'(x)`` (element-wise), with ``x``, ``y``, ``dy`` and ``dx`` all of one shape
(any shape with a batch axis first) and one dtype (the input's).
"""

from __future__ import annotations

import numpy as np

from .. import _checks
from ..converters import converts, torch_module
from ..core import LAYERS, Layer, away_from_zero


class _Elementwise(Layer):
    """Shared plumbing: input checks, the cache, shape bookkeeping."""

    @classmethod
    def examples(cls, rng: np.random.Generator) -> list:
        """One check on inputs with |x| >= 0.1: away from a kink at 0."""
        return [(cls.__name__, cls(), away_from_zero((4, 6), rng))]

    def _f(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(y, saved)``: the output and what ``_df`` needs."""
        raise NotImplementedError

    def _df(self, saved: np.ndarray, dy: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def forward(self, x: np.ndarray, training: bool = True) -> np.ndarray:
        x = _checks.as_float_array(x, type(self).__name__)
        if x.ndim < 1 or x.shape[0] == 0:
            raise ValueError(f"{type(self).__name__}: expected input of shape (N, ...) with N >= 1, got {x.shape}")
        _checks.check_finite(x, type(self).__name__)
        y, saved = self._f(x)
        self._cache = saved if training else None  # what the derivative needs (x or y)
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        s = self._cached(type(self).__name__)
        dy = _checks.check_grad(dy, s.shape, s.dtype, type(self).__name__)
        return self._df(s, dy)

    def output_shape(self, input_shape: tuple) -> tuple:
        return tuple(input_shape)


@LAYERS.register
class ReLU(_Elementwise):
    """``y = max(x, 0)``; ``dx = dy * [x > 0]`` (the derivative at 0 is taken as 0, as in Keras/PyTorch)."""

    has_kinks = True

    def _f(self, x):
        return np.maximum(x, 0), x

    def _df(self, x, dy):
        return dy * (x > 0)

    def kink_state(self, x: np.ndarray) -> np.ndarray:
        return x > 0


converts(ReLU)(torch_module("ReLU"))


@LAYERS.register
class LeakyReLU(_Elementwise):
    """``y = x if x > 0 else alpha * x``; ``dx = dy * (1 if x > 0 else alpha)``."""

    has_kinks = True

    def __init__(self, alpha: float = 0.01):
        self.alpha = _checks.nonneg_float(alpha, "alpha", "LeakyReLU")

    def _f(self, x):
        return np.where(x > 0, x, x * x.dtype.type(self.alpha)), x

    def _df(self, x, dy):
        return np.where(x > 0, dy, dy * dy.dtype.type(self.alpha))

    def kink_state(self, x: np.ndarray) -> np.ndarray:
        return x > 0

    def config(self) -> dict:
        return {"type": "LeakyReLU", "alpha": self.alpha}

    @classmethod
    def examples(cls, rng: np.random.Generator) -> list:
        return [("LeakyReLU(0.1)", cls(0.1), away_from_zero((4, 6), rng))]

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


converts(LeakyReLU)(torch_module("LeakyReLU", negative_slope=lambda layer: layer.alpha))


def sigmoid(x: np.ndarray) -> np.ndarray:
    """``1 / (1 + exp(-x))``, in place in one output array, with no warning for any finite x.

    For very negative x, ``exp(-x)`` overflows to +inf and ``1 / (1 + inf)`` is exactly 0, the
    right limit; for very positive x, ``exp(-x)`` underflows to 0 and the result is 1. Both are
    correct IEEE results, so the warnings are silenced rather than avoided.
    """
    y = np.negative(x)
    with np.errstate(over="ignore", under="ignore"):
        np.exp(y, out=y)
    y += 1
    return np.reciprocal(y, out=y)


@LAYERS.register
class Sigmoid(_Elementwise):
    """``y = 1 / (1 + exp(-x))``; ``dx = dy * y * (1 - y)``. No overflow (or underflow) warning for any finite x."""

    def _f(self, x):
        y = sigmoid(x)
        return y, y

    def _df(self, y, dy):
        dx = dy * y
        dx *= 1 - y
        return dx


converts(Sigmoid)(torch_module("Sigmoid"))


@LAYERS.register
class Tanh(_Elementwise):
    """``y = tanh(x)``; ``dx = dy * (1 - y**2)``."""

    def _f(self, x):
        y = np.tanh(x)
        return y, y

    def _df(self, y, dy):
        return dy * (1 - y * y)


converts(Tanh)(torch_module("Tanh"))


@LAYERS.register
class Softplus(_Elementwise):
    """``y = log(1 + exp(x))``, a smooth ReLU; ``dx = dy * sigmoid(x)`` (its derivative is the sigmoid).

    Computed as ``max(x, 0) + log1p(exp(-|x|))``, which never overflows: the exponent is <= 0.
    """

    def _f(self, x):
        y = np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))
        return y, x

    def _df(self, x, dy):
        return dy * sigmoid(x)


# torch returns x itself above the threshold, where npae's max(x, 0) + log1p(exp(-|x|)) differs from x by
# exp(-x): at torch's default 20 that is up to 2e-9, visible in float64; above 40 it is below float64's rounding
converts(Softplus)(torch_module("Softplus", beta=1.0, threshold=40.0))


@LAYERS.register
class Identity(_Elementwise):
    """``y = x``; ``dx = dy``: a linear code, or any place a layer is required and none wanted."""

    def _f(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return x, x

    def _df(self, x: np.ndarray, dy: np.ndarray) -> np.ndarray:
        return dy


converts(Identity)(torch_module("Identity"))


@LAYERS.register
class ELU(_Elementwise):
    """``y = x if x > 0 else alpha (exp(x) - 1)``; ``dx = dy * (1 if x > 0 else y + alpha)``
    (Clevert et al., 2015). Smooth at 0 only for alpha = 1; checked as a kinked function."""

    has_kinks = True

    def __init__(self, alpha: float = 1.0):
        self.alpha = _checks.nonneg_float(alpha, "alpha", "ELU")

    def _f(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        a = x.dtype.type(self.alpha)
        y = np.where(x > 0, x, a * np.expm1(np.minimum(x, 0)))
        return y, x

    def _df(self, x: np.ndarray, dy: np.ndarray) -> np.ndarray:
        a = x.dtype.type(self.alpha)
        return dy * np.where(x > 0, 1, a * np.exp(np.minimum(x, 0))).astype(dy.dtype, copy=False)

    def kink_state(self, x: np.ndarray) -> np.ndarray:
        return x > 0

    def config(self) -> dict:
        return {"type": "ELU", "alpha": self.alpha}

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


converts(ELU)(torch_module("ELU", alpha=lambda layer: layer.alpha))


@LAYERS.register
class GELU(_Elementwise):
    """The tanh approximation of the GELU (Hendrycks and Gimpel, 2016; PyTorch's
    ``approximate="tanh"``): with ``c = sqrt(2 / pi)``, ``u = c (x + 0.044715 x**3)``, ``t = tanh(u)``,
    ``y = x (1 + t) / 2`` and ``dx = dy * [(1 + t) / 2 + x (1 - t**2) c (1 + 3 * 0.044715 x**2) / 2]``."""

    C = float(np.sqrt(2 / np.pi))
    A = 0.044715

    def _f(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        t = np.tanh(x.dtype.type(self.C) * (x + x.dtype.type(self.A) * x * x * x))
        return x * (1 + t) * x.dtype.type(0.5), x

    def _df(self, x: np.ndarray, dy: np.ndarray) -> np.ndarray:
        c, a, half = x.dtype.type(self.C), x.dtype.type(self.A), x.dtype.type(0.5)
        t = np.tanh(c * (x + a * x * x * x))
        return dy * (half * (1 + t) + half * x * (1 - t * t) * c * (1 + 3 * a * x * x))


converts(GELU)(torch_module("GELU", approximate="tanh"))  # npae's GELU is the tanh form
