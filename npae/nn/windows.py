"""Windows over NCHW images: the padding rules and the index map that convolution and
pooling share.

Padding
-------
``"valid"``: none; ``H_out = (H - kh) // sh + 1``.
``"same"``: the Keras/TensorFlow rule: ``H_out = ceil(H / sh)``; the total padding
``P = max((H_out - 1) * sh + kh - H, 0)`` is split ``P // 2`` on top and the rest
(the odd extra row) at the bottom; the same for columns (extra column on the right).
An ``int`` p: p rows/columns on every side; ``H_out = (H + 2p - kh) // sh + 1``.
Convolution pads with zeros, max pooling with -inf (a pad never wins a max).

Windows
-------
Convolution and pooling look at the input through windows,
``win[n, c, i, j, u, v] = xp[n, c, i*sh + u, j*sw + v]`` for the padded input ``xp``. The
code never builds that 6-D array: it loops over the kh*kw kernel offsets ``(u, v)``,
each a strided slice ``xp[..., u::sh, v::sw]`` of the whole batch (:func:`offsets`).
Backward passes scatter gradients back through the same index map; where windows overlap
(stride < kernel) the contributions **add up**.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

PADDINGS = ("same", "valid")


def check_padding(padding: str | int, where: str) -> str | int:
    """``"same"``, ``"valid"`` or an int >= 0, else a ValueError naming ``where``."""
    if isinstance(padding, str):
        if padding not in PADDINGS:
            raise ValueError(f"{where}: padding must be 'same', 'valid' or an int >= 0, got {padding!r}")
        return padding
    if isinstance(padding, (int, np.integer)) and not isinstance(padding, bool) and padding >= 0:
        return int(padding)
    raise ValueError(f"{where}: padding must be 'same', 'valid' or an int >= 0, got {padding!r}")


def pads_1d(size: int, k: int, s: int, padding: str | int) -> tuple[int, int, int]:
    """``(pad_before, pad_after, out_size)`` along one axis for the rules in the module docstring."""
    if padding == "same":
        out = -(-size // s)
        total = max((out - 1) * s + k - size, 0)
        return total // 2, total - total // 2, out
    p = 0 if padding == "valid" else padding
    return p, p, (size + 2 * p - k) // s + 1


def geometry(shape: tuple, kernel: tuple, stride: tuple, padding: str | int, where: str) -> tuple[tuple, tuple]:
    """``(pads, out)`` for an input of per-sample shape (C, H, W): ``pads = (top, bottom, left,
    right)``, ``out = (Ho, Wo)``; a ValueError naming ``where`` if no window fits."""
    _, H, W = shape
    pt, pb, Ho = pads_1d(H, kernel[0], stride[0], padding)
    pl, pr, Wo = pads_1d(W, kernel[1], stride[1], padding)
    if Ho < 1 or Wo < 1:
        raise ValueError(
            f"{where}: input of height x width {H}x{W} is smaller than the {kernel[0]}x{kernel[1]} window "
            f"with padding={padding!r}; it needs at least {max(kernel[0] - pt - pb, 1)}x{max(kernel[1] - pl - pr, 1)}"
        )
    return (pt, pb, pl, pr), (Ho, Wo)


def pad(x: np.ndarray, pads: tuple, value: float = 0.0) -> np.ndarray:
    """``x`` (N, C, H, W) with ``pads = (top, bottom, left, right)`` rows and columns of ``value``."""
    pt, pb, pl, pr = pads
    if not any(pads):
        return x
    return np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)), constant_values=value)


def crop(xp: np.ndarray, pads: tuple, shape: tuple) -> np.ndarray:
    """The inverse of :func:`pad`: the (N, C, H, W) = ``shape`` part of ``xp`` inside its pads."""
    pt, _, pl, _ = pads
    return xp[:, :, pt : pt + shape[2], pl : pl + shape[3]]


def offsets(kernel: tuple, stride: tuple, out: tuple) -> Iterator[tuple[int, int, tuple]]:
    """For each kernel offset (u, v), row by row: ``(u, v, index)`` with ``xp[index]`` the strided
    slice ``xp[..., i*sh + u, j*sw + v]`` over all (i, j) < out."""
    (kh, kw), (sh, sw), (Ho, Wo) = kernel, stride, out
    for u in range(kh):
        for v in range(kw):
            yield u, v, (Ellipsis, slice(u, u + sh * (Ho - 1) + 1, sh), slice(v, v + sw * (Wo - 1) + 1, sw))


def im2col(xpt: np.ndarray, kernel: tuple, stride: tuple, out: tuple) -> np.ndarray:
    """``cols[(c, u, v), (n, i, j)] = xpt[c, n, i*sh + u, j*sw + v]`` for channel-first ``xpt`` (C, N, Hp, Wp).

    Returns a (C*kh*kw, N*Ho*Wo) matrix; the loop runs over the kh*kw kernel offsets only.
    """
    C, N = xpt.shape[:2]
    cols = np.empty((C,) + tuple(kernel) + (N,) + tuple(out), xpt.dtype)
    for u, v, window in offsets(kernel, stride, out):
        cols[:, u, v] = xpt[window]
    return cols.reshape(C * kernel[0] * kernel[1], -1)


def col2im(dcols: np.ndarray, xpt_shape: tuple, kernel: tuple, stride: tuple, out: tuple) -> np.ndarray:
    """The adjoint of :func:`im2col`: add each column entry back where it was read from."""
    C, N = xpt_shape[:2]
    dcols = dcols.reshape((C,) + tuple(kernel) + (N,) + tuple(out))
    dxpt = np.zeros(xpt_shape, dcols.dtype)
    for u, v, window in offsets(kernel, stride, out):
        dxpt[window] += dcols[:, u, v]  # overlapping windows add up
    return dxpt
