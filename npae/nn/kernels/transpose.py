"""The kernels behind :class:`npae.ConvTranspose2D`: the convolution's input gradient as a layer of its
own. The definition is :func:`npae.nn.reference.conv_transpose2d_forward` and its backward (one input
pixel at a time); the tests hold every way below to the loops.

``col2im`` (any stride; :func:`transpose_forward`, :func:`transpose_backward`; not in ``KERNELS``:
another signature, the same return order ``(dx, dW, db)``): the convolution's own im2col and col2im
(:mod:`npae.nn.windows`).

At stride 1 the transposed convolution is a convolution, so any kernel of ``KERNELS`` computes it
(Winograd's among them, where it pays). With ``k - 1 - p`` written ``q`` (per axis), the forward's
sum over the scattered copies, ``y[n, o, r, s] = b[o] + sum_{c,u,v} x[n, c, r + p - u, s + p - v] W[c, o, u, v]``
(x zero outside), is with ``u' = kh - 1 - u`` and ``v' = kw - 1 - v``::

    y[n, o, r, s] = b[o] + sum_{c,u',v'} Wc[o, c, u', v'] * xq[n, c, r + u', s + v']
    Wc[o, c, u', v'] = W[c, o, kh - 1 - u', kw - 1 - v']     (:func:`flip_transpose`)

``xq`` being x zero-padded by ``qh = kh - 1 - p`` rows and ``qw = kw - 1 - p`` columns on each side:
Conv2D's forward with the kernel ``Wc`` (:func:`convolution_geometry`), for ``p <= k - 1`` (a larger
``p`` would crop, not pad). Its backward is that convolution's: dx as it is, db as it is, and
``dW = flip_transpose(dWc)`` (the map is its own inverse, and it only moves entries, so the
gradient goes back through it unchanged).
"""

from __future__ import annotations

import numpy as np

from ..windows import col2im, im2col
from .base import Geometry


def flip_transpose(W: np.ndarray) -> np.ndarray:
    """``Wc[o, c, u, v] = W[c, o, kh - 1 - u, kw - 1 - v]``: the kernel (c_out, c_in, kh, kw) of the convolution
    a stride-1 transposed convolution with W (c_in, c_out, kh, kw) is; the same map takes dWc back to dW."""
    return np.ascontiguousarray(W.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1])


def convolution_geometry(x_shape: tuple, kernel_size: tuple[int, int], padding: int) -> Geometry | None:
    """The Geometry of that convolution for an input of ``x_shape`` (N, c_in, H, W): stride 1, ``kh - 1 - p``
    rows and ``kw - 1 - p`` columns of zeros on each side, an output of ``(H + kh - 1 - 2p, W + kw - 1 - 2p)``
    (ConvTranspose2D's at stride 1); None when ``p > min(kh, kw) - 1``."""
    (kh, kw), (H, W) = kernel_size, x_shape[2:]
    qh, qw = kh - 1 - padding, kw - 1 - padding
    if min(qh, qw) < 0:
        return None
    return Geometry(tuple(x_shape), (1, 1), (qh, qh, qw, qw), (H + 2 * qh - kh + 1, W + 2 * qw - kw + 1))


def transpose_forward(x, W, b, stride, padding, output_padding):
    """ConvTranspose2D's forward: the scatter of the im2col kernel's dx path
    (:func:`npae.nn.kernels.im2col.backward`).

    With ``x2`` = x as (C_in, N*H*W) and ``W2`` = W as (C_in, C_out*kh*kw): ``cols = W2.T @ x2``
    holds each input pixel's kernel-weighted copy, col2im adds the copies onto a canvas of
    ``(H - 1)*sh + kh + output_padding`` rows, and the output is the canvas without ``padding``
    on each side, plus b (:func:`npae.nn.reference.conv_transpose2d_forward`). Returns ``(y, x2)``.
    """
    (c_in, c_out, kh, kw), (N, _, H, Wd), (sh, sw), p = W.shape, x.shape, stride, padding
    x2 = x.transpose(1, 0, 2, 3).reshape(c_in, -1)
    cols = W.reshape(c_in, -1).T @ x2  # (c_out*kh*kw, N*H*W)
    canvas = col2im(cols, (c_out, N, (H - 1) * sh + kh + output_padding, (Wd - 1) * sw + kw + output_padding),
                    (kh, kw), stride, (H, Wd))
    y = canvas[:, :, p:canvas.shape[2] - p, p:canvas.shape[3] - p].transpose(1, 0, 2, 3)
    return np.ascontiguousarray(y + b[None, :, None, None]), x2


def transpose_backward(dy, W, x2, x_shape, stride, padding, output_padding, need_dx=True):
    """``(dx, dW, db)`` of :func:`transpose_forward`: the windows each input pixel wrote to, read
    back by im2col: ``dx2 = W2 @ cols(dy)``, ``dW2 = x2 @ cols(dy).T``, ``db = sum dy`` — the
    convolution's forward and its dW, on the zero-padded dy."""
    (c_in, c_out, kh, kw), (N, _, H, Wd), p = W.shape, x_shape, padding
    canvas = np.zeros((c_out, N, (H - 1) * stride[0] + kh + output_padding, (Wd - 1) * stride[1] + kw + output_padding),
                      dy.dtype)
    canvas[:, :, p:canvas.shape[2] - p, p:canvas.shape[3] - p] = dy.transpose(1, 0, 2, 3)
    cols = im2col(canvas, (kh, kw), stride, (H, Wd))  # (c_out*kh*kw, N*H*W)
    dW = (x2 @ cols.T).reshape(W.shape)
    db = dy.sum(axis=(0, 2, 3))
    if not need_dx:
        return None, dW, db
    dx = (W.reshape(c_in, -1) @ cols).reshape(c_in, N, H, Wd).transpose(1, 0, 2, 3)
    return np.ascontiguousarray(dx), dW, db
