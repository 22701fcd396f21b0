"""What every Conv2D kernel shares: the geometry it is given, what its forward keeps for its backward,
and the scratch arrays it may reuse. The kernels themselves: :mod:`npae.nn.kernels`."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Geometry(NamedTuple):
    """Where the windows are, from :func:`npae.nn.windows.geometry`: the same for every kernel."""

    x_shape: tuple             # (N, c_in, H, W)
    stride: tuple[int, int]    # (sh, sw)
    pads: tuple[int, int, int, int]  # (top, bottom, left, right)
    out: tuple[int, int]       # (Ho, Wo)


class Saved(NamedTuple):
    """What a kernel's forward keeps for its backward (None where that kernel keeps nothing).

    ``cols``: an im2col matrix built in forward (im2col and per_sample always; flat for a batch
    that is one block of a widening layer). ``padded``: the padded input (flat: ``xpt`` as
    (c_in, N, Hp, Wp); nhwc: ``xh`` as (N, Hp, Wp, c_in)), from which backward builds each
    block's matrix again. ``block``: samples per block (the whole batch for the others).
    """

    kernel: str
    geometry: Geometry
    cols: np.ndarray | None = None
    padded: np.ndarray | None = None
    block: int = 0


class Scratch:
    """Scratch arrays kept from call to call, by name. Allocating 100+ MB afresh every step
    costs as much as filling it (the kernel zeroes each new page), so training reuses them.
    Made zeroed; a kernel that needs zeros where it does not write (pads, unused grid
    positions) writes the same region on every call, so those stay zero. An inference call
    takes a fresh ``Scratch()`` that goes when it returns: a big inference batch leaves
    nothing behind and never touches what training kept for backward."""

    def __init__(self):
        self.arrays: dict[str, np.ndarray] = {}

    def get(self, key: str, shape: tuple, dtype: np.dtype) -> np.ndarray:
        buf = self.arrays.get(key)
        if buf is None or buf.shape != shape or buf.dtype != dtype:
            buf = self.arrays[key] = np.zeros(shape, dtype)
        return buf

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.arrays.values())


def padded_shape(g: Geometry) -> tuple[int, int]:
    """(Hp, Wp): the input's height and width with their padding."""
    (_, _, H, W), (pt, pb, pl, pr) = g.x_shape, g.pads
    return H + pt + pb, W + pl + pr


def with_bias_column(W: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``[W2 | b]`` (c_out, c_in*kh*kw + 1): the kernel as a matrix and the bias as its last
    column, for an im2col matrix whose last row is ones."""
    return np.concatenate([W.reshape(W.shape[0], -1), b[:, None]], axis=1)


def split_bias_column(dW2b: np.ndarray, W_shape: tuple) -> tuple[np.ndarray, np.ndarray]:
    """``[dW2 | db]`` (the product of dy with such a matrix) -> ``(dW, db)``."""
    return dW2b[:, :-1].reshape(W_shape), dW2b[:, -1]
