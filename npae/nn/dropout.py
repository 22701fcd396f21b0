"""Dropout (Srivastava et al., 2014), inverted: the scaling happens in training, so inference is
the identity and needs no change.

Training: ``y = x * mask / (1 - p)``, ``mask[i] = 1`` with probability ``1 - p`` (else 0), drawn
from the layer's own explicit generator; ``dx = dy * mask / (1 - p)``. Inference
(``training=False``): ``y = x``. The expected output is x either way.

The mask comes from ``rng`` (a ``np.random.Generator``), which the layer lists in
``generators()``: a gradient check replays the same draw in every evaluation, and a checkpoint
keeps the generator's state, so a resumed run draws the masks an uninterrupted one would.
"""

from __future__ import annotations

import numpy as np

from .. import _checks
from .. import init as _init
from ..converters import converts, torch_module
from ..core import LAYERS, Layer


@LAYERS.register
class Dropout(Layer):
    """Inverted dropout with probability ``p`` of zeroing each value; see the module docstring.

    Shapes: x, y, dy, dx of one shape (N, ...), in the input's dtype.
    """

    def __init__(self, p: float = 0.5, *, rng: np.random.Generator | None = None):
        p = _checks.nonneg_float(p, "p", "Dropout")
        if p >= 1:
            raise ValueError(f"Dropout: p must lie in [0, 1), got {p}")
        self.p = p
        self.rng = _init.default_rng(rng, "Dropout")

    def generators(self) -> list[np.random.Generator]:
        return [self.rng]

    def forward(self, x: np.ndarray, training: bool = True) -> np.ndarray:
        x = _checks.as_float_array(x, "Dropout")
        if x.ndim < 1 or x.shape[0] == 0:
            raise ValueError(f"Dropout: expected input of shape (N, ...) with N >= 1, got {x.shape}")
        _checks.check_finite(x, "Dropout")
        if not training:
            self._cache = None
            return x
        keep = (self.rng.random(x.shape) >= self.p).astype(x.dtype)
        keep *= x.dtype.type(1 / (1 - self.p))
        self._cache = keep
        return x * keep

    def backward(self, dy: np.ndarray) -> np.ndarray:
        keep = self._cached("Dropout")
        dy = _checks.check_grad(dy, keep.shape, keep.dtype, "Dropout")
        return dy * keep

    def output_shape(self, input_shape: tuple) -> tuple:
        return tuple(input_shape)

    def config(self) -> dict:
        return {"type": "Dropout", "p": self.p}

    @classmethod
    def examples(cls, rng: np.random.Generator) -> list:
        layer = cls(0.3, rng=np.random.default_rng(int(rng.integers(1 << 30))))
        return [("Dropout(0.3), training mode (mask replayed)", layer, rng.standard_normal((4, 6)))]

    def extra_repr(self) -> str:
        return f"p={self.p}"


converts(Dropout)(torch_module("Dropout", p=lambda layer: layer.p))  # the identity at inference in both
