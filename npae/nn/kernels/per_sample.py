"""The ``per_sample`` kernels (stride 1, few input channels): one im2col matrix per sample.

With ``c_in*kh*kw + 1 <= 2*c_out`` (:func:`npae.nn.kernels.per_sample_pays`; the first layer
on grey images: 10 rows against 16 output channels), an im2col matrix per sample,
``cols[n, (c, u, v), (i, j)] = xp[n, c, i + u, j + v]`` plus a row of ones, costs less to
build than the two c_out-channel copies the flat kernels need (the crop of y out of the
padded grid, and dy into it): one product per sample, ``y[n] = [W2 | b] @ cols[n]``, is y
already in NCHW, and dy[n] is used where it is.
"""

from __future__ import annotations

import numpy as np

from ..windows import crop, offsets, pad
from .base import Geometry, Saved, Scratch, padded_shape, split_bias_column, with_bias_column


def forward(x: np.ndarray, W: np.ndarray, b: np.ndarray, g: Geometry, scratch: Scratch) -> tuple[np.ndarray, Saved]:
    """``y[n] = [W2 | b] @ cols[n]`` for each sample n; saves ``cols``."""
    (c_out, C, kh, kw), N, out = W.shape, x.shape[0], g.out
    xp = pad(x, g.pads)
    cols = scratch.get("cols_n", (N, C * kh * kw + 1, out[0] * out[1]), x.dtype)
    windows = cols[:, :-1].reshape((N, C, kh, kw) + tuple(out))
    for u, v, window in offsets((kh, kw), (1, 1), out):
        windows[:, :, u, v] = xp[window]
    cols[:, -1] = 1
    return np.matmul(with_bias_column(W, b), cols).reshape((N, c_out) + tuple(out)), Saved("per_sample", g, cols=cols)


def backward(dy: np.ndarray, W: np.ndarray, saved: Saved, scratch: Scratch,
             need_dx: bool = True) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """``(dx, dW, db)``: ``[dW2 | db] = sum_n dy[n] @ cols[n].T``; ``dcols[n] = W2.T @ dy[n]`` scattered back."""
    (c_out, C, kh, kw), cols, g = W.shape, saved.cols, saved.geometry
    xp_shape = (g.x_shape[0], C) + padded_shape(g)
    N, out = dy.shape[0], dy.shape[2:]
    dy3 = dy.reshape(N, c_out, -1)
    dW, db = split_bias_column(np.matmul(dy3, cols.transpose(0, 2, 1)).sum(axis=0), W.shape)
    if not need_dx:
        return None, dW, db
    dcols = np.matmul(W.reshape(c_out, -1).T, dy3).reshape((N, C, kh, kw) + tuple(out))
    dxp = np.zeros(xp_shape, dy.dtype)
    for u, v, window in offsets((kh, kw), (1, 1), out):
        dxp[window] += dcols[:, :, u, v]  # overlapping windows add up
    return np.ascontiguousarray(crop(dxp, g.pads, g.x_shape)), dW, db
