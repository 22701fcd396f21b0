"""The kernels behind :class:`npae.Conv2D`: the same convolution, four ways of computing it.

The definition is :func:`npae.nn.reference.conv2d_forward` and :func:`npae.nn.reference.conv2d_backward`
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
``nhwc_*`` (any stride, wide layers on small grids): im2col channels last, at the valid output
    positions only, a block of samples at a time (its scratch bounded by ``COLS_BUDGET``).

Each forward returns ``(y, saved)``; the matching backward takes ``saved`` and returns
``(dW, db, dx)`` (``dx`` None when ``need_dx`` is False). Large scratch arrays come from a
:class:`Scratch` the layer keeps between training steps.
"""

from __future__ import annotations

import numpy as np

from ..windows import col2im, crop, im2col, offsets, pad


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
# Memory: the grid of a block of samples n0 <= n < n1 is the contiguous range of q from n0*Hp*Wp,
# so the kernels run block by block, each block's im2col matrix (or shifted dy) at most
# FLAT_BUDGET bytes. A batch that fits in one block keeps its matrix from forward to backward;
# a bigger one keeps only the padded input (about the input's size) and backward builds each
# block's matrix again: the scratch of a layer stays a few FLAT_BUDGETs whatever the batch.
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


#: bytes of one block's im2col matrix (or shifted dy) in the flat kernels: a batch whose matrix
#: fits is one block and keeps it from forward to backward; a bigger batch goes in blocks of
#: samples, and backward builds each block's matrix again from the padded input it keeps
FLAT_BUDGET = 16 << 20


def flat_block(N: int, W: np.ndarray, Hp: int, Wp: int) -> int:
    """Samples per block of the flat kernels: as many as keep the block's largest scratch matrix
    within FLAT_BUDGET: the shifted dy (c_out*kh*kw rows) of a narrowing layer, else ``[cols; 1]``
    and ``dcols`` (c_in*kh*kw + 1 rows), or the shifted dy where c_out < c_in."""
    c_out, c_in, kh, kw = W.shape
    if narrows(W):
        rows = c_out * kh * kw
    else:
        rows = max(c_in * kh * kw + 1, c_out * kh * kw if c_out < c_in else 0)
    return max(1, min(N, FLAT_BUDGET // (rows * Hp * Wp * W.dtype.itemsize)))


def _flat_cols(xf: np.ndarray, kernel: tuple[int, int], Wp: int, L: int, buf: np.ndarray) -> np.ndarray:
    """``[cols; 1]`` of one block, in the first L columns of ``buf``: ``cols[(c, u, v), q] = xf[c, q + u*Wp + v]``."""
    C = xf.shape[0]
    full = buf[:, :L]
    cols = full[:-1].reshape((C,) + tuple(kernel) + (L,))
    for u, v, shift in shifts(kernel, Wp):
        cols[:, u, v] = xf[:, shift:shift + L]
    full[-1] = 1
    return full


def flat_forward(x: np.ndarray, W: np.ndarray, b: np.ndarray, pads: tuple[int, int, int, int], out: tuple[int, int],
                 scratch: Scratch) -> tuple[np.ndarray, tuple]:
    """y by products on the flat padded grid, a block of samples at a time (:func:`flat_block`).

    Saved: the padded input ``xpt`` (C, N, Hp, Wp), the block size, and for a batch that is one
    block of a widening layer its ``[cols; 1]`` (else None: backward builds it again)."""
    (c_out, C, kh, kw), (pt, _, pl, _) = W.shape, pads
    N, _, H, Wd = x.shape
    Hp, Wp = out[0] + kh - 1, out[1] + kw - 1
    xpt = scratch.get("xpt", (C, N, Hp, Wp), x.dtype)
    xpt[:, :, pt:pt + H, pl:pl + Wd] = x.transpose(1, 0, 2, 3)[:, :, : Hp - pt, : Wp - pl]
    block = flat_block(N, W, Hp, Wp)
    yf_buf = scratch.get("yf", (c_out, block * Hp * Wp), x.dtype)
    W2b = None if narrows(W) else with_bias_column(W, b)
    y = np.empty((N, c_out) + tuple(out), x.dtype)
    cols = None
    for s in range(0, N, block):
        e = min(N, s + block)
        xf = xpt[:, s:e].reshape(C, -1)  # (C, B*Hp*Wp), each row contiguous
        L = xf.shape[1] - (kh - 1) * Wp - (kw - 1)
        yf = yf_buf[:, : xf.shape[1]]
        if W2b is None:  # narrowing: one product per kernel offset, no im2col matrix
            for u, v, shift in shifts((kh, kw), Wp):
                part = np.ascontiguousarray(W[:, :, u, v]) @ xf[:, shift:shift + L]
                if u == v == 0:
                    np.add(part, b[:, None], out=yf[:, :L])
                else:
                    yf[:, :L] += part
        else:
            buf = scratch.get("cols", (C * kh * kw + 1, block * Hp * Wp - (kh - 1) * Wp - (kw - 1)), x.dtype)
            cols = _flat_cols(xf, (kh, kw), Wp, L, buf)
            np.matmul(W2b, cols, out=yf[:, :L])
        y[s:e] = yf.reshape(c_out, e - s, Hp, Wp)[:, :, : out[0], : out[1]].transpose(1, 0, 2, 3)
    keep = cols if block >= N else None
    return y, (xpt, block, keep)


def shifted_dy(dyf: np.ndarray, kernel: tuple[int, int], Wp: int, scratch: Scratch, capacity: int) -> np.ndarray:
    """``dshift[(o, u, v), q] = dyf[o, q - u*Wp - v]`` (0 where q < u*Wp + v): (c_out*kh*kw, Np).

    The stride-1 scatter read as a gather: the window element (u, v) of output position
    q - u*Wp - v sits at q, so dxf[c, q] and dW[o, c, u, v] are both sums over dshift's
    rows. The entries before each shift are never written, so in the reused array (``capacity``
    columns, the first Np of them used) they stay 0."""
    c_out, Np = dyf.shape
    dshift = scratch.get("dshift", (c_out,) + tuple(kernel) + (capacity,), dyf.dtype)[..., :Np]
    for u, v, offset in shifts(kernel, Wp):
        dshift[:, u, v, offset:] = dyf[:, : Np - offset]
    return dshift.reshape(-1, Np)


def flat_backward(dy: np.ndarray, W: np.ndarray, saved: tuple, pads: tuple[int, int, int, int], x_shape: tuple,
                  scratch: Scratch, need_dx: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """dW, db and dx of :func:`flat_forward`, on the same grid, block by block."""
    (c_out, c_in, kh, kw), (xpt, block, kept) = W.shape, saved
    _, N, Hp, Wp = xpt.shape
    out = dy.shape[2:]
    dyf_buf = scratch.get("dyf", (c_out, block, Hp, Wp), dy.dtype)  # zero where no output is: never written
    dW2b = np.zeros((c_out, c_in * kh * kw + 1), dy.dtype)
    dWt = np.zeros((c_out * kh * kw, c_in), dy.dtype)
    dx = np.empty(x_shape, dy.dtype) if need_dx else None
    W2T = W.reshape(c_out, -1).T
    for s in range(0, N, block):
        e = min(N, s + block)
        dyf = dyf_buf[:, : e - s]
        dyf[:, :, : out[0], : out[1]] = dy[s:e].transpose(1, 0, 2, 3)
        dyf = dyf.reshape(c_out, -1)
        xf = xpt[:, s:e].reshape(c_in, -1)
        L = xf.shape[1] - (kh - 1) * Wp - (kw - 1)
        dshift = None
        if narrows(W):  # dW[o, c, u, v] = sum_q dshift[(o, u, v), q] xf[c, q]
            dshift = shifted_dy(dyf, (kh, kw), Wp, scratch, block * Hp * Wp)
            dWt += dshift @ xf.T  # (c_out*kh*kw, c_in)
        else:  # the im2col matrix with its row of ones: [dW2 | db] in one product
            if kept is None:
                buf = scratch.get("cols", (c_in * kh * kw + 1, block * Hp * Wp - (kh - 1) * Wp - (kw - 1)), dy.dtype)
                cols = _flat_cols(xf, (kh, kw), Wp, L, buf)
            else:
                cols = kept
            dW2b += dyf[:, :L] @ cols.T
        if not need_dx:
            continue
        if c_out < c_in:  # dxf[c, q] = sum_{o,u,v} W[o, c, u, v] dshift[(o, u, v), q]: one product
            dshift = shifted_dy(dyf, (kh, kw), Wp, scratch, block * Hp * Wp) if dshift is None else dshift
            dxf = W.transpose(1, 0, 2, 3).reshape(c_in, -1) @ dshift
        else:
            # col2im on the flat grid: each kernel offset adds one contiguous slice
            dcols = scratch.get("dcols", (c_in * kh * kw, block * Hp * Wp - (kh - 1) * Wp - (kw - 1)), dy.dtype)
            dcols = dcols[:, :L]
            np.matmul(W2T, dyf[:, :L], out=dcols)
            dcols = dcols.reshape(c_in, kh, kw, L)
            dxf = scratch.get("dxf", (c_in, block * Hp * Wp), dy.dtype)[:, : xf.shape[1]]
            dxf.fill(0)
            for u, v, shift in shifts((kh, kw), Wp):
                dxf[:, shift:shift + L] += dcols[:, u, v]
        dxpt = dxf.reshape(c_in, e - s, Hp, Wp).transpose(1, 0, 2, 3)
        dx[s:e] = crop(dxpt, pads, (e - s,) + tuple(x_shape[1:]))
    if narrows(W):
        dW, db = dWt.reshape(c_out, kh, kw, c_in).transpose(0, 3, 1, 2), dy.sum(axis=(0, 2, 3))
    else:
        dW, db = split_bias_column(dW2b, W.shape)
    return dW, db, dx


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


# -- channels-last, valid positions, in blocks of samples: wide layers ------------------------------------
# For layers with many input channels the channels-first im2col above copies thousands of tiny
# strided slices (a 4x4 window row is 4 numbers); channels last, every copy moves whole rows of
# C contiguous numbers. With xh = x padded, channels last (N, Hp, Wp, C):
#     cols[(n, i, j), (u, v, c)] = xh[n, i*sh + u, j*sw + v, c]          (B*Ho*Wo, kh*kw*C) per block
#     y[(n, i, j), o] = cols @ Wh.T + b,   Wh[o, (u, v, c)] = W[o, c, u, v]
#     dW = dy.T @ cols,   dcols = dy @ Wh, added back into dxh window by window
# only at the valid output positions (no padded grid), for a block of B samples at a time: the
# im2col matrix of one block is all the scratch (COLS_BUDGET bytes at most), and backward builds
# it again from the cached xh instead of keeping the whole batch's (9x the input) between passes.
COLS_BUDGET = 16 << 20  # bytes of one block's im2col matrix


#: where the channels-last kernels pay, measured against the others one thread a side
#: (benchmarks/README.md): wide layers on small grids, any stride
NHWC_MIN_IN, NHWC_MIN_OUT, NHWC_MAX_POSITIONS = 32, 64, 64


def nhwc_pays(W: np.ndarray, out: tuple[int, int]) -> bool:
    """Whether a layer takes the channels-last kernels: ``c_in >= 32``, ``c_out >= 64`` and at
    most 64 output positions ``Ho*Wo`` (where the others' padded grid or tiny strided copies
    cost most; on bigger grids and thinner layers they are faster)."""
    c_out, c_in = W.shape[:2]
    return c_in >= NHWC_MIN_IN and c_out >= NHWC_MIN_OUT and out[0] * out[1] <= NHWC_MAX_POSITIONS


def nhwc_block(x_shape: tuple, W: np.ndarray, out: tuple[int, int]) -> int:
    """Samples per block: as many as keep one block's im2col matrix within COLS_BUDGET (at least 1)."""
    c_out, c_in, kh, kw = W.shape
    per_sample = out[0] * out[1] * kh * kw * c_in * W.dtype.itemsize
    return max(1, min(x_shape[0], COLS_BUDGET // per_sample))


def _nhwc_cols(xh: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int], out: tuple[int, int],
               cols: np.ndarray) -> np.ndarray:
    """Fill ``cols`` (B, Ho, Wo, kh, kw, C) from the padded channels-last block ``xh``."""
    (kh, kw), (sh, sw), (Ho, Wo) = kernel, stride, out
    for u in range(kh):
        for v in range(kw):
            cols[:, :, :, u, v, :] = xh[:, u:u + sh * (Ho - 1) + 1:sh, v:v + sw * (Wo - 1) + 1:sw, :]
    return cols.reshape(len(xh) * Ho * Wo, -1)


def nhwc_forward(x: np.ndarray, W: np.ndarray, b: np.ndarray, stride: tuple[int, int], pads: tuple[int, int, int, int],
                 out: tuple[int, int], scratch: Scratch) -> tuple[np.ndarray, tuple]:
    """y by channels-last im2col at the valid positions, block by block; saved: ``xh`` and the block size."""
    (c_out, c_in, kh, kw), (N, _, H, Wd), (pt, pb, pl, pr) = W.shape, x.shape, pads
    xh = scratch.get("xh", (N, H + pt + pb, Wd + pl + pr, c_in), x.dtype)
    xh[:, pt:pt + H, pl:pl + Wd, :] = x.transpose(0, 2, 3, 1)
    Wh = np.ascontiguousarray(W.transpose(0, 2, 3, 1).reshape(c_out, -1))
    block = nhwc_block(x.shape, W, out)
    yh = np.empty((N, out[0], out[1], c_out), x.dtype)
    yflat = yh.reshape(N * out[0] * out[1], c_out)
    rows = out[0] * out[1]
    for s in range(0, N, block):
        e = min(N, s + block)
        buf = scratch.get("cols_h", (e - s,) + tuple(out) + (kh, kw, c_in), x.dtype)
        cols = _nhwc_cols(xh[s:e], (kh, kw), stride, out, buf)
        np.matmul(cols, Wh.T, out=yflat[s * rows:e * rows])
    yflat += b
    return np.ascontiguousarray(yh.transpose(0, 3, 1, 2)), (xh, block)


def nhwc_backward(dy: np.ndarray, W: np.ndarray, saved: tuple, stride: tuple[int, int],
                  pads: tuple[int, int, int, int], x_shape: tuple, scratch: Scratch,
                  need_dx: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """dW, db and dx of :func:`nhwc_forward`, block by block, the im2col matrix built again from ``xh``."""
    (c_out, c_in, kh, kw), (xh, block), (N, _, H, Wd), (pt, _, pl, _) = W.shape, saved, x_shape, pads
    out = dy.shape[2:]
    rows = out[0] * out[1]
    dyh = np.ascontiguousarray(dy.transpose(0, 2, 3, 1)).reshape(N * rows, c_out)
    Wh = np.ascontiguousarray(W.transpose(0, 2, 3, 1).reshape(c_out, -1))
    dWh = np.zeros((c_out, kh * kw * c_in), dy.dtype)
    dxh = scratch.get("dxh", xh.shape, dy.dtype) if need_dx else None
    if need_dx:
        dxh.fill(0)
    (sh, sw), (Ho, Wo) = stride, out
    for s in range(0, N, block):
        e = min(N, s + block)
        buf = scratch.get("cols_h", (e - s,) + tuple(out) + (kh, kw, c_in), dy.dtype)
        cols = _nhwc_cols(xh[s:e], (kh, kw), stride, out, buf)
        dy_b = dyh[s * rows:e * rows]
        dWh += dy_b.T @ cols
        if need_dx:
            dcols = (dy_b @ Wh).reshape((e - s,) + tuple(out) + (kh, kw, c_in))
            for u in range(kh):
                for v in range(kw):  # overlapping windows add up
                    window = (slice(s, e), slice(u, u + sh * (Ho - 1) + 1, sh), slice(v, v + sw * (Wo - 1) + 1, sw))
                    dxh[window] += dcols[:, :, :, u, v, :]
    dW = dWh.reshape(c_out, kh, kw, c_in).transpose(0, 3, 1, 2)
    db = dyh.sum(axis=0)
    if not need_dx:
        return dW, db, None
    return dW, db, np.ascontiguousarray(dxh[:, pt:pt + H, pl:pl + Wd, :].transpose(0, 3, 1, 2))
