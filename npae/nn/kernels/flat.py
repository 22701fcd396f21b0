"""The ``flat`` kernels (stride 1): the im2col products on the flattened padded grid.

Flatten the padded batch, channel by channel, into xf[c, q] with q = (n*Hp + a)*Wp + b.
With stride 1, the window element (u, v) of output position q sits at q + u*Wp + v:
a shift of the whole flat array. So the im2col matrix is kh*kw contiguous slices,
cols[(c, u, v), q] = xf[c, q + u*Wp + v], for q < L = Np - (kh-1)*Wp - (kw-1), Np = N*Hp*Wp.
Positions q whose (a, b) fall outside Ho x Wo are computed and thrown away (15% extra
at 28x28 with a 3x3 kernel); in backward their dy is 0, so they add nothing.
The im2col matrix has one more row, all ones, and W2 one more column, b: the product
adds the bias, and in backward the same product gives db (the sum of dy) beside dW.
A layer that narrows (c_in >= 2 c_out) skips the im2col matrix altogether: it multiplies
each shifted slice of xf by that offset's (c_out, c_in) kernel slice and adds up, reading
xf kh*kw times instead of writing and reading a matrix kh*kw times its size. In backward
such a layer (and any with c_out < c_in) builds the shifted copies of dy (shifted_dy):
one product with them gives dx, another dW (the latter when the cache is xf).
Memory: the grid of a block of samples n0 <= n < n1 is the contiguous range of q from n0*Hp*Wp,
so the kernels run block by block, each block's im2col matrix (or shifted dy) at most
FLAT_BUDGET bytes. A batch that fits in one block keeps its matrix from forward to backward;
a bigger one keeps only the padded input (about the input's size) and backward builds each
block's matrix again: the scratch of a layer stays a few FLAT_BUDGETs whatever the batch.
"""

from __future__ import annotations

import numpy as np

from ..windows import crop
from .base import Geometry, Saved, Scratch, split_bias_column, with_bias_column


def shifts(kernel: tuple[int, int], Wp: int) -> list[tuple[int, int, int]]:
    """``(u, v, u*Wp + v)`` for each kernel offset: where window element (u, v) sits on the flat grid."""
    kh, kw = kernel
    return [(u, v, u * Wp + v) for u in range(kh) for v in range(kw)]


def narrows(W: np.ndarray) -> bool:
    """Whether the flat kernels take the narrowing route (c_in >= 2 c_out: no im2col matrix)."""
    return W.shape[1] >= 2 * W.shape[0]


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


def forward(x: np.ndarray, W: np.ndarray, b: np.ndarray, g: Geometry, scratch: Scratch) -> tuple[np.ndarray, Saved]:
    """y by products on the flat padded grid, a block of samples at a time (:func:`flat_block`).

    Saves the padded input ``xpt`` (C, N, Hp, Wp), the block size, and for a batch that is one
    block of a widening layer its ``[cols; 1]`` (else None: backward builds it again)."""
    (c_out, C, kh, kw), (pt, _, pl, _), out = W.shape, g.pads, g.out
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
    return y, Saved("flat", g, cols=cols if block >= N else None, padded=xpt, block=block)


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


def backward(dy: np.ndarray, W: np.ndarray, saved: Saved, scratch: Scratch,
             need_dx: bool = True) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """``(dx, dW, db)`` of :func:`forward`, on the same grid, block by block."""
    (c_out, c_in, kh, kw), xpt, block, kept = W.shape, saved.padded, saved.block, saved.cols
    pads, x_shape = saved.geometry.pads, saved.geometry.x_shape
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
    return dx, dW, db
