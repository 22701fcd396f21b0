"""The definitions: convolution, pooling and upsampling as loops, one output element at a time.

Start here to learn what a layer computes; the layers in npae compute the same with
NumPy's vectorized operations, and the tests (and ``python -m npae gradcheck``) hold every
fast kernel to these loops in float64, to the rounding of the sums. They are written for
reading, not for speed, and share no code with the rest of npae, not even the padding
rule, which is re-derived here from TensorFlow's documentation:
``out = ceil(in / s)``, ``pad_total = max((out - 1) * s + k - in, 0)``, ``pad_before = pad_total // 2``;
an int p pads p on every side, ``"valid"`` not at all.

Shapes: x (N, C, H, W), W (C_out, C_in, kh, kw), b (C_out,), y and dy (N, C_out, Ho, Wo).
"""

from __future__ import annotations

import math

import numpy as np


def pads(size: int, k: int, s: int, padding: str | int) -> tuple[int, int, int]:
    """(before, after, out) along one axis."""
    if padding == "same":
        out = math.ceil(size / s)
        total = max((out - 1) * s + k - size, 0)
        before = total // 2
        return before, total - before, out
    p = 0 if padding == "valid" else int(padding)
    return p, p, (size + 2 * p - k) // s + 1


def pad_image(x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int], padding: str | int,
              fill: float) -> tuple[np.ndarray, tuple[int, int], tuple[int, int]]:
    n, c, h, w = x.shape
    pt, pb, ho = pads(h, kernel[0], stride[0], padding)
    pl, pr, wo = pads(w, kernel[1], stride[1], padding)
    xp = np.full((n, c, h + pt + pb, w + pl + pr), fill, dtype=np.float64)
    xp[:, :, pt:pt + h, pl:pl + w] = x
    return xp, (pt, pl), (ho, wo)


def conv2d_forward(x: np.ndarray, W: np.ndarray, b: np.ndarray, stride: tuple[int, int],
                   padding: str | int) -> np.ndarray:
    o_ch, _, kh, kw = W.shape
    sh, sw = stride
    xp, _, (ho, wo) = pad_image(x, (kh, kw), stride, padding, 0.0)
    y = np.zeros((x.shape[0], o_ch, ho, wo))
    for n in range(x.shape[0]):
        for o in range(o_ch):
            for i in range(ho):
                for j in range(wo):
                    window = xp[n, :, i * sh:i * sh + kh, j * sw:j * sw + kw]
                    y[n, o, i, j] = np.sum(window * W[o]) + b[o]
    return y


def conv2d_backward(x: np.ndarray, W: np.ndarray, dy: np.ndarray, stride: tuple[int, int],
                    padding: str | int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dx, dW, db) for y = conv2d_forward(x, W, b, ...) and upstream dy."""
    o_ch, _, kh, kw = W.shape
    sh, sw = stride
    xp, (pt, pl), (ho, wo) = pad_image(x, (kh, kw), stride, padding, 0.0)
    dxp, dW, db = np.zeros_like(xp), np.zeros_like(W, dtype=np.float64), np.zeros(o_ch)
    for n in range(x.shape[0]):
        for o in range(o_ch):
            for i in range(ho):
                for j in range(wo):
                    g = dy[n, o, i, j]
                    dW[o] += g * xp[n, :, i * sh:i * sh + kh, j * sw:j * sw + kw]
                    db[o] += g
                    dxp[n, :, i * sh:i * sh + kh, j * sw:j * sw + kw] += g * W[o]
    h, w = x.shape[2:]
    return dxp[:, :, pt:pt + h, pl:pl + w], dW, db


def maxpool_forward_backward(x: np.ndarray, pool: tuple[int, int], stride: tuple[int, int], padding: str | int,
                             dy: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """y, and dx for upstream dy (the gradient goes to the first maximum of each window)."""
    kh, kw = pool
    sh, sw = stride
    xp, (pt, pl), (ho, wo) = pad_image(x, pool, stride, padding, -np.inf)
    n_, c_ = x.shape[:2]
    y = np.zeros((n_, c_, ho, wo))
    dxp = np.zeros_like(xp)
    for n in range(n_):
        for c in range(c_):
            for i in range(ho):
                for j in range(wo):
                    window = xp[n, c, i * sh:i * sh + kh, j * sw:j * sw + kw]
                    k = int(np.argmax(window))  # first maximum in row-major order
                    u, v = divmod(k, kw)
                    y[n, c, i, j] = window[u, v]
                    if dy is not None:
                        dxp[n, c, i * sh + u, j * sw + v] += dy[n, c, i, j]
    h, w = x.shape[2:]
    return y, dxp[:, :, pt:pt + h, pl:pl + w]


def upsample_forward(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    n_, c_, h, w = x.shape
    sh, sw = size
    y = np.zeros((n_, c_, h * sh, w * sw))
    for i in range(h * sh):
        for j in range(w * sw):
            y[:, :, i, j] = x[:, :, i // sh, j // sw]
    return y


def upsample_backward(dy: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    n_, c_, H, W = dy.shape
    sh, sw = size
    dx = np.zeros((n_, c_, H // sh, W // sw))
    for i in range(H):
        for j in range(W):
            dx[:, :, i // sh, j // sw] += dy[:, :, i, j]
    return dx
