"""The ``im2col`` kernels (any stride): the readable vectorization, and the one to read first.

``cols[(c, u, v), (n, i, j)] = xp[n, c, i*sh + u, j*sw + v]`` is one matrix (the windows of
every output position, one per column). With ``W2 = W`` as (c_out, c_in*kh*kw) and
``dy2 = dy`` as (c_out, N*Ho*Wo), each formula of :func:`npae.nn.reference.conv2d_forward` and
:func:`~npae.nn.reference.conv2d_backward` is one matrix product::

    y2   = W2 @ cols + b          y[n, o, i, j]  = b[o] + sum_{c,u,v} W[o, c, u, v] xp[n, c, i*sh+u, j*sw+v]
    dW2  = dy2 @ cols.T           dW[o, c, u, v] = sum_{n,i,j} dy[n, o, i, j] xp[n, c, i*sh+u, j*sw+v]
    db   = sum over columns of dy2
    dcols = W2.T @ dy2, and col2im adds each column back onto the window it came from (overlaps add up)

Memory: ``cols`` is kh*kw times the input, kept from forward to backward.
"""

from __future__ import annotations

import numpy as np

from ..windows import col2im, crop, im2col, pad
from .base import Geometry, Saved, Scratch


def forward(x: np.ndarray, W: np.ndarray, b: np.ndarray, g: Geometry, scratch: Scratch) -> tuple[np.ndarray, Saved]:
    """y (N, c_out, Ho, Wo) by ``y2 = W2 @ cols + b``; saves ``cols``."""
    c_out = W.shape[0]
    xpt = pad(x, g.pads).transpose(1, 0, 2, 3)  # (c_in, N, Hp, Wp): channels first for im2col
    cols = im2col(xpt, W.shape[2:], g.stride, g.out)
    y2 = W.reshape(c_out, -1) @ cols + b[:, None]  # (c_out, N*Ho*Wo)
    y = np.ascontiguousarray(y2.reshape((c_out, x.shape[0]) + tuple(g.out)).transpose(1, 0, 2, 3))
    return y, Saved("im2col", g, cols=cols)


def backward(dy: np.ndarray, W: np.ndarray, saved: Saved, scratch: Scratch,
             need_dx: bool = True) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """``(dx, dW, db)``: ``dW2 = dy2 @ cols.T``, ``db = sum dy2``, ``dx = col2im(W2.T @ dy2)`` without its pads."""
    g, c_out = saved.geometry, W.shape[0]
    dy2 = dy.transpose(1, 0, 2, 3).reshape(c_out, -1)  # (c_out, N*Ho*Wo)
    db = dy2.sum(axis=1)
    dW = (dy2 @ saved.cols.T).reshape(W.shape)
    if not need_dx:
        return None, dW, db
    (N, c_in, _, _), (pt, pb, pl, pr) = g.x_shape, g.pads
    xpt_shape = (c_in, N, g.x_shape[2] + pt + pb, g.x_shape[3] + pl + pr)
    dxpt = col2im(W.reshape(c_out, -1).T @ dy2, xpt_shape, W.shape[2:], g.stride, g.out)
    return np.ascontiguousarray(crop(dxpt.transpose(1, 0, 2, 3), g.pads, g.x_shape)), dW, db
