"""The kernels behind :class:`npae.Conv2D`: the same convolution, three ways of computing it.

The definition is :func:`npae.reference.conv2d_forward` and :func:`npae.reference.conv2d_backward`
(one output element at a time)::

    y[n, o, i, j]            = b[o] + sum_{c,u,v} W[o, c, u, v] * xp[n, c, i*sh + u, j*sw + v]
    dW[o, c, u, v]           = sum_{n,i,j} dy[n, o, i, j] * xp[n, c, i*sh + u, j*sw + v]
    db[o]                    = sum_{n,i,j} dy[n, o, i, j]
    dxp[n, c, i*sh+u, j*sw+v] += sum_o dy[n, o, i, j] * W[o, c, u, v]      (overlaps add up)

Each kernel vectorizes those four formulas, and the tests hold every one of them to the
loops (float64, to the rounding of the sums):

``strided_*`` (any stride): im2col. ``cols[(c, u, v), (n, i, j)] = xp[n, c, i*sh + u, j*sw + v]``
    is one matrix, and with ``W2 = W`` as (c_out, c_in*kh*kw) and ``dy2 = dy`` as
    (c_out, N*Ho*Wo) each formula is one product: ``y2 = W2 @ cols + b``,
    ``dW2 = dy2 @ cols.T``, ``dcols = W2.T @ dy2``, and col2im adds ``dcols`` back.
    The readable one.
``flat_*`` (stride 1): the same products on the flattened padded grid (see below).
``per_sample_*`` (stride 1, few input channels): one im2col matrix per sample.

Each forward returns ``(y, saved)``; the matching backward takes ``saved`` and returns
``(dW, db, dx)`` (``dx`` None when ``need_dx`` is False). Large scratch arrays come from a
:class:`Scratch` the layer keeps between training steps.
"""

from __future__ import annotations

import numpy as np

from .windows import col2im, crop, im2col, offsets, pad


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


# -- strided: im2col, any stride -----------------------------------------------------------
def strided_forward(x: np.ndarray, W: np.ndarray, b: np.ndarray, stride: tuple[int, int],
                    pads: tuple[int, int, int, int], out: tuple[int, int]) -> tuple[np.ndarray, tuple]:
    """y (N, c_out, Ho, Wo) by ``y2 = W2 @ cols + b``; saved: ``cols`` and the padded shape."""
    c_out = W.shape[0]
    xpt = pad(x, pads).transpose(1, 0, 2, 3)  # (c_in, N, Hp, Wp): channels first for im2col
    cols = im2col(xpt, W.shape[2:], stride, out)
    y2 = W.reshape(c_out, -1) @ cols + b[:, None]  # (c_out, N*Ho*Wo)
    y = np.ascontiguousarray(y2.reshape((c_out, x.shape[0]) + tuple(out)).transpose(1, 0, 2, 3))
    return y, (cols, xpt.shape)


def strided_backward(dy: np.ndarray, W: np.ndarray, saved: tuple, stride: tuple[int, int],
                     pads: tuple[int, int, int, int], x_shape: tuple,
                     need_dx: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``dW2 = dy2 @ cols.T``, ``db = sum dy2``, ``dx = col2im(W2.T @ dy2)`` without its pads."""
    cols, xpt_shape = saved
    c_out = W.shape[0]
    dy2 = dy.transpose(1, 0, 2, 3).reshape(c_out, -1)  # (c_out, N*Ho*Wo)
    db = dy2.sum(axis=1)
    dW = (dy2 @ cols.T).reshape(W.shape)
    if not need_dx:
        return dW, db, None
    dxpt = col2im(W.reshape(c_out, -1).T @ dy2, xpt_shape, W.shape[2:], stride, dy.shape[2:])
    return dW, db, np.ascontiguousarray(crop(dxpt.transpose(1, 0, 2, 3), pads, x_shape))


# -- flat: stride 1, on the flattened padded grid --------------------------------------------
# Flatten the padded batch, channel by channel, into xf[c, q] with q = (n*Hp + a)*Wp + b.
# With stride 1, the window element (u, v) of output position q sits at q + u*Wp + v:
# a shift of the whole flat array. So the im2col matrix is kh*kw contiguous slices,
# cols[(c, u, v), q] = xf[c, q + u*Wp + v], for q < L = Np - (kh-1)*Wp - (kw-1), Np = N*Hp*Wp.
# Positions q whose (a, b) fall outside Ho x Wo are computed and thrown away (15% extra
# at 28x28 with a 3x3 kernel); in backward their dy is 0, so they add nothing.
# The im2col matrix has one more row, all ones, and W2 one more column, b: the product
# adds the bias, and in backward the same product gives db (the sum of dy) beside dW.
# A layer that narrows (c_in >= 2 c_out) skips the im2col matrix altogether: it multiplies
# each shifted slice of xf by that offset's (c_out, c_in) kernel slice and adds up, reading
# xf kh*kw times instead of writing and reading a matrix kh*kw times its size. In backward
# such a layer (and any with c_out < c_in) builds the shifted copies of dy (shifted_dy):
# one product with them gives dx, another dW (the latter when the cache is xf).
def shifts(kernel: tuple[int, int], Wp: int) -> list[tuple[int, int, int]]:
    """``(u, v, u*Wp + v)`` for each kernel offset: where window element (u, v) sits on the flat grid."""
    kh, kw = kernel
    return [(u, v, u * Wp + v) for u in range(kh) for v in range(kw)]


def narrows(W: np.ndarray) -> bool:
    """Whether the flat kernels take the narrowing route (c_in >= 2 c_out: no im2col matrix)."""
    return W.shape[1] >= 2 * W.shape[0]


def with_bias_column(W: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``[W2 | b]`` (c_out, c_in*kh*kw + 1): the kernel as a matrix and the bias as its last
    column, for an im2col matrix whose last row is ones."""
    return np.concatenate([W.reshape(W.shape[0], -1), b[:, None]], axis=1)


def split_bias_column(dW2b: np.ndarray, W_shape: tuple) -> tuple[np.ndarray, np.ndarray]:
    """``[dW2 | db]`` (the product of dy with such a matrix) -> ``(dW, db)``."""
    return dW2b[:, :-1].reshape(W_shape), dW2b[:, -1]


def flat_forward(x: np.ndarray, W: np.ndarray, b: np.ndarray, pads: tuple[int, int, int, int], out: tuple[int, int],
                 scratch: Scratch) -> tuple[np.ndarray, tuple]:
    """y by products on the flat padded grid; saved: ``xf`` (narrowing) or ``[cols; 1]``, and the grid's shape."""
    (c_out, C, kh, kw), (pt, _, pl, _) = W.shape, pads
    N, _, H, Wd = x.shape
    Hp, Wp = out[0] + kh - 1, out[1] + kw - 1
    xpt = scratch.get("xpt", (C, N, Hp, Wp), x.dtype)
    xpt[:, :, pt:pt + H, pl:pl + Wd] = x.transpose(1, 0, 2, 3)[:, :, : Hp - pt, : Wp - pl]
    xf = xpt.reshape(C, -1)
    L = xf.shape[1] - (kh - 1) * Wp - (kw - 1)
    yf = scratch.get("yf", (c_out, N * Hp * Wp), x.dtype)
    if narrows(W):
        saved = xf
        for u, v, shift in shifts((kh, kw), Wp):
            part = np.ascontiguousarray(W[:, :, u, v]) @ xf[:, shift:shift + L]
            if u == v == 0:
                np.add(part, b[:, None], out=yf[:, :L])
            else:
                yf[:, :L] += part
    else:
        saved = scratch.get("cols", (C * kh * kw + 1, L), x.dtype)  # (c, u, v) rows, then the ones
        cols = saved[:-1].reshape(C, kh, kw, L)
        for u, v, shift in shifts((kh, kw), Wp):
            cols[:, u, v] = xf[:, shift:shift + L]
        saved[-1] = 1
        np.matmul(with_bias_column(W, b), saved, out=yf[:, :L])
    y = np.empty((N, c_out) + tuple(out), x.dtype)
    y[...] = yf.reshape(c_out, N, Hp, Wp)[:, :, : out[0], : out[1]].transpose(1, 0, 2, 3)
    return y, (saved, xpt.shape)


def shifted_dy(dyf: np.ndarray, kernel: tuple[int, int], Wp: int, scratch: Scratch) -> np.ndarray:
    """``dshift[(o, u, v), q] = dyf[o, q - u*Wp - v]`` (0 where q < u*Wp + v): (c_out*kh*kw, Np).

    The stride-1 scatter read as a gather: the window element (u, v) of output position
    q - u*Wp - v sits at q, so dxf[c, q] and dW[o, c, u, v] are both sums over dshift's
    rows. The entries before each shift are never written, so in the reused array they
    stay 0."""
    c_out, Np = dyf.shape
    dshift = scratch.get("dshift", (c_out,) + tuple(kernel) + (Np,), dyf.dtype)
    for u, v, offset in shifts(kernel, Wp):
        dshift[:, u, v, offset:] = dyf[:, : Np - offset]
    return dshift.reshape(-1, Np)


def flat_backward(dy: np.ndarray, W: np.ndarray, saved: tuple, pads: tuple[int, int, int, int], x_shape: tuple,
                  scratch: Scratch, need_dx: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """dW, db and dx of :func:`flat_forward`, on the same grid."""
    (c_out, c_in, kh, kw), (cached, (_, N, Hp, Wp)) = W.shape, saved
    out = dy.shape[2:]
    L = N * Hp * Wp - (kh - 1) * Wp - (kw - 1)
    dyf = scratch.get("dyf", (c_out, N, Hp, Wp), dy.dtype)
    dyf[:, :, : out[0], : out[1]] = dy.transpose(1, 0, 2, 3)
    dyf = dyf.reshape(c_out, -1)
    dshift = None
    if narrows(W):  # the cache is xf: dW[o, c, u, v] = sum_q dshift[(o, u, v), q] xf[c, q]
        dshift = shifted_dy(dyf, (kh, kw), Wp, scratch)
        dWt = dshift @ cached.T  # (c_out*kh*kw, c_in)
        dW, db = dWt.reshape(c_out, kh, kw, c_in).transpose(0, 3, 1, 2), dy.sum(axis=(0, 2, 3))
    else:  # the cache is the im2col matrix with its row of ones: [dW2 | db] in one product
        dW, db = split_bias_column(dyf[:, :L] @ cached.T, W.shape)
    if not need_dx:
        return dW, db, None
    if c_out < c_in:  # dxf[c, q] = sum_{o,u,v} W[o, c, u, v] dshift[(o, u, v), q]: one product
        dshift = shifted_dy(dyf, (kh, kw), Wp, scratch) if dshift is None else dshift
        dxf = W.transpose(1, 0, 2, 3).reshape(c_in, -1) @ dshift
    else:
        # col2im on the flat grid: each kernel offset adds one contiguous slice
        dcols = scratch.get("dcols", (c_in * kh * kw, L), dy.dtype)
        np.matmul(W.reshape(c_out, -1).T, dyf[:, :L], out=dcols)
        dcols = dcols.reshape(c_in, kh, kw, L)
        dxf = scratch.get("dxf", (c_in, dyf.shape[1]), dy.dtype)
        dxf.fill(0)
        for u, v, shift in shifts((kh, kw), Wp):
            dxf[:, shift:shift + L] += dcols[:, u, v]
    dxpt = dxf.reshape(c_in, N, Hp, Wp).transpose(1, 0, 2, 3)
    return dW, db, np.ascontiguousarray(crop(dxpt, pads, x_shape))


# -- per sample: stride 1, few input channels --------------------------------------------------
# With c_in*kh*kw + 1 <= 2*c_out (the first layer on grey images: 10 rows against 16
# output channels), an im2col matrix per sample, cols[n, (c, u, v), (i, j)] = xp[n, c, i + u,
# j + v] plus a row of ones, costs less to build than the two c_out-channel copies the flat
# kernels need (the crop of y out of the padded grid, and dy into it): one product per
# sample, y[n] = [W2 | b] @ cols[n], is y already in NCHW, and dy[n] is used where it is.
def per_sample_pays(W: np.ndarray) -> bool:
    """Whether a stride-1 layer takes the per-sample kernels: ``c_in*kh*kw + 1 <= 2*c_out``."""
    c_out, c_in, kh, kw = W.shape
    return c_in * kh * kw + 1 <= 2 * c_out


def per_sample_forward(x: np.ndarray, W: np.ndarray, b: np.ndarray, pads: tuple[int, int, int, int],
                       out: tuple[int, int], scratch: Scratch) -> tuple[np.ndarray, tuple]:
    """``y[n] = [W2 | b] @ cols[n]`` for each sample n; saved: ``cols`` and the padded shape."""
    (c_out, C, kh, kw), N = W.shape, x.shape[0]
    xp = pad(x, pads)
    cols = scratch.get("cols_n", (N, C * kh * kw + 1, out[0] * out[1]), x.dtype)
    windows = cols[:, :-1].reshape((N, C, kh, kw) + tuple(out))
    for u, v, window in offsets((kh, kw), (1, 1), out):
        windows[:, :, u, v] = xp[window]
    cols[:, -1] = 1
    return np.matmul(with_bias_column(W, b), cols).reshape((N, c_out) + tuple(out)), (cols, xp.shape)


def per_sample_backward(dy: np.ndarray, W: np.ndarray, saved: tuple, pads: tuple[int, int, int, int], x_shape: tuple,
                        need_dx: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``[dW2 | db] = sum_n dy[n] @ cols[n].T``; ``dcols[n] = W2.T @ dy[n]`` scattered back."""
    (c_out, C, kh, kw), (cols, xp_shape) = W.shape, saved
    N, out = dy.shape[0], dy.shape[2:]
    dy3 = dy.reshape(N, c_out, -1)
    dW, db = split_bias_column(np.matmul(dy3, cols.transpose(0, 2, 1)).sum(axis=0), W.shape)
    if not need_dx:
        return dW, db, None
    dcols = np.matmul(W.reshape(c_out, -1).T, dy3).reshape((N, C, kh, kw) + tuple(out))
    dxp = np.zeros(xp_shape, dy.dtype)
    for u, v, window in offsets((kh, kw), (1, 1), out):
        dxp[window] += dcols[:, :, u, v]  # overlapping windows add up
    return dW, db, np.ascontiguousarray(crop(dxp, pads, x_shape))


# -- transposed convolution: the convolution's input gradient as a layer of its own ------------------
def transpose_forward(x, W, b, stride, padding, output_padding):
    """ConvTranspose2D's forward: the scatter of :func:`strided_backward`'s dx path.

    With ``x2`` = x as (C_in, N*H*W) and ``W2`` = W as (C_in, C_out*kh*kw): ``cols = W2.T @ x2``
    holds each input pixel's kernel-weighted copy, col2im adds the copies onto a canvas of
    ``(H - 1)*sh + kh + output_padding`` rows, and the output is the canvas without ``padding``
    on each side, plus b (:func:`npae.reference.conv_transpose2d_forward`). Returns ``(y, x2)``.
    """
    (c_in, c_out, kh, kw), (N, _, H, Wd), (sh, sw), p = W.shape, x.shape, stride, padding
    x2 = x.transpose(1, 0, 2, 3).reshape(c_in, -1)
    cols = W.reshape(c_in, -1).T @ x2  # (c_out*kh*kw, N*H*W)
    canvas = col2im(cols, (c_out, N, (H - 1) * sh + kh + output_padding, (Wd - 1) * sw + kw + output_padding),
                    (kh, kw), stride, (H, Wd))
    y = canvas[:, :, p:canvas.shape[2] - p, p:canvas.shape[3] - p].transpose(1, 0, 2, 3)
    return np.ascontiguousarray(y + b[None, :, None, None]), x2


def transpose_backward(dy, W, x2, x_shape, stride, padding, output_padding, need_dx=True):
    """``(dW, db, dx)`` of :func:`transpose_forward`: the windows each input pixel wrote to, read
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
        return dW, db, None
    dx = (W.reshape(c_in, -1) @ cols).reshape(c_in, N, H, Wd).transpose(1, 0, 2, 3)
    return dW, db, np.ascontiguousarray(dx)
