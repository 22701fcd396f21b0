"""The kernels behind :class:`npae.ConvTranspose2D` (not in ``KERNELS``: another layer, another
signature, the same return order ``(dx, dW, db)``): the convolution's input gradient as a layer of its
own. The definition is :func:`npae.nn.reference.conv_transpose2d_forward` and its backward (one input
pixel at a time); these vectorize it with the convolution's own im2col and col2im
(:mod:`npae.nn.windows`), and the tests hold both to the loops.
"""

from __future__ import annotations

import numpy as np

from ..windows import col2im, im2col


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
