"""The ``nhwc`` kernels (any stride, wide layers on small grids): im2col channels last, at the
valid positions, in blocks of samples.

For layers with many input channels the channels-first im2col matrix (:mod:`.im2col`) is
thousands of tiny strided copies (a 4x4 window row is 4 numbers); channels last, every copy
moves whole rows of C contiguous numbers. With xh = x padded, channels last (N, Hp, Wp, C)::

    cols[(n, i, j), (u, v, c)] = xh[n, i*sh + u, j*sw + v, c]          (B*Ho*Wo, kh*kw*C) per block
    y[(n, i, j), o] = cols @ Wh.T + b,   Wh[o, (u, v, c)] = W[o, c, u, v]
    dW = dy.T @ cols,   dcols = dy @ Wh, added back into dxh window by window

only at the valid output positions (no padded grid), for a block of B samples at a time: the
im2col matrix of one block is all the scratch (COLS_BUDGET bytes at most), and backward builds
it again from the cached xh instead of keeping the whole batch's (9x the input) between passes.
"""

from __future__ import annotations

import numpy as np

from .base import Geometry, Saved, Scratch

COLS_BUDGET = 16 << 20  # bytes of one block's im2col matrix


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


def forward(x: np.ndarray, W: np.ndarray, b: np.ndarray, g: Geometry, scratch: Scratch) -> tuple[np.ndarray, Saved]:
    """y by channels-last im2col at the valid positions, block by block; saves ``xh`` and the block size."""
    (c_out, c_in, kh, kw), (N, _, H, Wd), (pt, pb, pl, pr), stride, out = W.shape, x.shape, g.pads, g.stride, g.out
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
    return np.ascontiguousarray(yh.transpose(0, 3, 1, 2)), Saved("nhwc", g, padded=xh, block=block)


def backward(dy: np.ndarray, W: np.ndarray, saved: Saved, scratch: Scratch,
             need_dx: bool = True) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """``(dx, dW, db)`` of :func:`forward`, block by block, the im2col matrix built again from ``xh``."""
    g, xh, block = saved.geometry, saved.padded, saved.block
    (c_out, c_in, kh, kw), (N, _, H, Wd), (pt, _, pl, _), stride = W.shape, g.x_shape, g.pads, g.stride
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
        return None, dW, db
    return np.ascontiguousarray(dxh[:, pt:pt + H, pl:pl + Wd, :].transpose(0, 3, 1, 2)), dW, db
