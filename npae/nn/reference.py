"""The definitions: convolution, transposed convolution, pooling, upsampling and batch
normalization as loops, one output element at a time.

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


def conv_transpose2d_forward(x: np.ndarray, W: np.ndarray, b: np.ndarray, stride: tuple[int, int], padding: int,
                             output_padding: int) -> np.ndarray:
    """PyTorch's ConvTranspose2d: every input pixel scatters its kernel-weighted copy into the output.

    ``full[n, o, i*sh + u, j*sw + v] += x[n, c, i, j] * W[c, o, u, v]`` on a canvas of
    ``(H - 1)*sh + kh + output_padding`` rows (likewise columns); the output is the canvas
    without ``padding`` rows/columns on each side, plus ``b[o]``. W: (C_in, C_out, kh, kw).
    """
    n_, c_in, h, w = x.shape
    _, c_out, kh, kw = W.shape
    sh, sw = stride
    full = np.zeros((n_, c_out, (h - 1) * sh + kh + output_padding, (w - 1) * sw + kw + output_padding))
    for n in range(n_):
        for c in range(c_in):
            for i in range(h):
                for j in range(w):
                    full[n, :, i * sh:i * sh + kh, j * sw:j * sw + kw] += x[n, c, i, j] * W[c]
    p = padding
    y = full[:, :, p:full.shape[2] - p, p:full.shape[3] - p]
    return y + b[None, :, None, None]


def conv_transpose2d_backward(x: np.ndarray, W: np.ndarray, dy: np.ndarray, stride: tuple[int, int],
                              padding: int, output_padding: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dx, dW, db) of :func:`conv_transpose2d_forward`: each input pixel's gradient reads back the
    window it wrote to, ``dx[n, c, i, j] = sum_{o,u,v} W[c, o, u, v] dfull[n, o, i*sh + u, j*sw + v]``."""
    n_, c_in, h, w = x.shape
    _, c_out, kh, kw = W.shape
    sh, sw = stride
    p = padding
    dfull = np.zeros((n_, c_out, (h - 1) * sh + kh + output_padding, (w - 1) * sw + kw + output_padding))
    dfull[:, :, p:dfull.shape[2] - p, p:dfull.shape[3] - p] = dy
    dx, dW = np.zeros_like(x, dtype=np.float64), np.zeros_like(W, dtype=np.float64)
    for n in range(n_):
        for c in range(c_in):
            for i in range(h):
                for j in range(w):
                    window = dfull[n, :, i * sh:i * sh + kh, j * sw:j * sw + kw]
                    dx[n, c, i, j] = np.sum(window * W[c])
                    dW[c] += x[n, c, i, j] * window
    return dx, dW, dy.sum(axis=(0, 2, 3))


def avgpool_forward_backward(x: np.ndarray, pool: tuple[int, int], stride: tuple[int, int], padding: str | int,
                             dy: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """y (the mean of each window, padding counted as zeros, as PyTorch's avg_pool2d with
    count_include_pad=True), and dx for upstream dy (each window element gets dy / (kh*kw))."""
    kh, kw = pool
    sh, sw = stride
    xp, (pt, pl), (ho, wo) = pad_image(x, pool, stride, padding, 0.0)
    n_, c_ = x.shape[:2]
    y = np.zeros((n_, c_, ho, wo))
    dxp = np.zeros_like(xp)
    for n in range(n_):
        for c in range(c_):
            for i in range(ho):
                for j in range(wo):
                    y[n, c, i, j] = xp[n, c, i * sh:i * sh + kh, j * sw:j * sw + kw].sum() / (kh * kw)
                    if dy is not None:
                        dxp[n, c, i * sh:i * sh + kh, j * sw:j * sw + kw] += dy[n, c, i, j] / (kh * kw)
    h, w = x.shape[2:]
    return y, dxp[:, :, pt:pt + h, pl:pl + w]


def batchnorm_forward_backward(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float,
                               dy: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Batch normalization in training mode, per feature (axis 1; the batch and any spatial axes
    are the statistics' axes), and its backward by the chain rule term by term, not the compact
    form: y = gamma * (x - mean) / sqrt(var + eps) + beta with the batch's mean and biased var.
    Returns (y, dx, dgamma, dbeta)."""
    m = x.size // x.shape[1]
    y, dx = np.zeros_like(x, dtype=np.float64), np.zeros_like(x, dtype=np.float64)
    dgamma, dbeta = np.zeros(x.shape[1]), np.zeros(x.shape[1])
    for c in range(x.shape[1]):
        xc, gc = np.take(x, c, axis=1).ravel(), np.take(dy, c, axis=1).ravel()
        mean = sum(xc) / m
        var = sum((v - mean) ** 2 for v in xc) / m
        inv = 1 / math.sqrt(var + eps)
        x_hat = [(v - mean) * inv for v in xc]
        out = [gamma[c] * v + beta[c] for v in x_hat]
        dx_hat = [g * gamma[c] for g in gc]
        dvar = sum(d * (v - mean) for d, v in zip(dx_hat, xc)) * -0.5 * inv ** 3
        dmean = -inv * sum(dx_hat) + dvar * sum(-2 * (v - mean) for v in xc) / m
        dxc = [d * inv + dvar * 2 * (v - mean) / m + dmean / m for d, v in zip(dx_hat, xc)]
        np.moveaxis(y, 1, 0)[c] = np.reshape(out, np.take(x, c, axis=1).shape)
        np.moveaxis(dx, 1, 0)[c] = np.reshape(dxc, np.take(x, c, axis=1).shape)
        dgamma[c] = sum(g * v for g, v in zip(gc, x_hat))
        dbeta[c] = sum(gc)
    return y, dx, dgamma, dbeta
