"""Max pooling and nearest-neighbour upsampling on NCHW images (windows and padding:
:mod:`npae.nn.windows`; the loop definitions: :mod:`npae.nn.reference`)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import _checks
from ..converters import converts
from ..core import LAYERS, Layer, distinct_values
from .windows import check_padding, crop, geometry, offsets, pad


class _PoolCache(NamedTuple):
    arg: object      # which element won: an index array (general kernel) or (a1, a2) (two-stage)
    x_shape: tuple   # (N, C, H, W)
    xp_shape: tuple  # the padded shape
    pads: tuple      # (top, bottom, left, right)
    y_shape: tuple   # (N, C, Ho, Wo)
    dtype: np.dtype  # the input's (and the gradient's)
    two_stage: bool  # which backward applies


def _sum_of(parts):
    """``parts[0] + parts[1] + ...`` as a new array, added left to right."""
    if len(parts) == 1:
        return parts[0].copy()
    total = np.add(parts[0], parts[1])
    for part in parts[2:]:
        total += part
    return total


@LAYERS.register
class MaxPool2D(Layer):
    """Max over each window, per channel, NCHW.

    Parameters
    ----------
    pool_size : int or (kh, kw), default 2
    stride : int or (sh, sw), default ``pool_size``
    padding : "valid" (default), "same" (7 -> 4 for pool 2, like Keras) or an int <= pool_size // 2
        (as PyTorch); pads are -inf.

    Shapes: x (N, C, H, W) -> y, dy (N, C, Ho, Wo).

    Forward and backward
    --------------------
    ``y[n, c, i, j] = max_{u,v} xp[n, c, i*sh + u, j*sw + v]``; ``(u*, v*)`` = the first
    maximum in row-major order over the window.
    ``dxp[n, c, i*sh + u*, j*sw + v*] += dy[n, c, i, j]``; every other element of the window
    gets 0. On ties the gradient goes to exactly one element (the first), so the
    gradient is a true element of the subdifferential; overlapping windows add up.
    """

    reference = ('maxpool_forward_backward',)

    has_kinks = True

    def __init__(self, pool_size: int | tuple[int, int] | list[int] = 2, *,
                 stride: int | tuple[int, int] | list[int] | None = None, padding: str | int = "valid"):
        where = "MaxPool2D"
        self.pool_size = _checks.pair(pool_size, "pool_size", where)
        self.stride = self.pool_size if stride is None else _checks.pair(stride, "stride", where)
        self.padding = check_padding(padding, where)
        if isinstance(self.padding, int) and self.padding > min(self.pool_size) // 2:
            # a wider pad would create windows made only of padding, whose max is -inf
            raise ValueError(
                f"{where}: an int padding may be at most half the pool size ({min(self.pool_size) // 2} "
                f"for pool_size={self.pool_size}), got {self.padding}"
            )

    def _argmax(self, x: np.ndarray) -> tuple:
        """``(x, y, arg, pads, xp_shape)``; ``arg[n, c, i, j] = u*kw + v`` of the first maximum.

        A loop over the kh*kw window offsets, each step comparing one strided slice of the
        padded input with the running maximum; strict ``>`` keeps the first maximum on ties.
        """
        x = _checks.check_input(x, (None, "C", "H", "W"), "MaxPool2D")
        pads, out = geometry(x.shape[1:], self.pool_size, self.stride, self.padding, "MaxPool2D")
        xp = pad(x, pads, -np.inf)
        y, arg = self._running_max([xp[window] for _, _, window in offsets(self.pool_size, self.stride, out)])
        return x, y, arg, pads, xp.shape

    #: Non-overlapping windows (stride == pool_size) take the two-stage kernel below
    #: (set False to run the general one, which the tests also hold to the loop reference).
    fast = True

    def forward(self, x: np.ndarray, training: bool = True) -> np.ndarray:
        if self.fast and self.stride == self.pool_size:
            return self._forward_two_stage(x, training)
        x, y, arg, pads, xp_shape = self._argmax(x)
        self._cache = _PoolCache(arg, x.shape, xp_shape, pads, y.shape, x.dtype, False) if training else None
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        cache = self._cached("MaxPool2D")
        dy = _checks.check_grad(dy, cache.y_shape, cache.dtype, "MaxPool2D")
        if cache.two_stage:
            return self._backward_two_stage(dy, cache)
        dxp = np.zeros(cache.xp_shape, dy.dtype)
        for t, (_, _, window) in enumerate(offsets(self.pool_size, self.stride, dy.shape[2:])):
            dxp[window] += dy * (cache.arg == t)  # overlapping windows add up
        return crop(dxp, cache.pads, cache.x_shape)

    # Non-overlapping windows: the max over a kh x kw window is the max over rows of the max
    # over columns. Stage 1 takes, in every row, the max over each group of kw columns (a1:
    # which column); stage 2 the max over each group of kh of those (a2: which row). Strict
    # ">" keeps the first column of a row and the first row of a window: together the first
    # maximum in row-major order, the same element the general kernel picks. With 2x2
    # windows (every pool of the article) a1 and a2 are booleans: "the second one won".
    def _forward_two_stage(self, x, training):
        x = _checks.check_input(x, (None, "C", "H", "W"), "MaxPool2D")
        kh, kw = self.pool_size
        pads, (Ho, Wo) = geometry(x.shape[1:], self.pool_size, self.stride, self.padding, "MaxPool2D")
        xp = pad(x, pads, -np.inf)
        xc = xp[:, :, : Ho * kh, : Wo * kw]  # rows and columns that some window covers
        m1, a1 = self._running_max([xc[..., b::kw] for b in range(kw)])
        y, a2 = self._running_max([m1[:, :, a::kh] for a in range(kh)])
        self._cache = _PoolCache((a1, a2), x.shape, xp.shape, pads, y.shape, x.dtype, True) if training else None
        return y

    @staticmethod
    def _running_max(candidates):
        """Element-wise max over a list of arrays and the index of the first that attains it
        (for two candidates a boolean, True where the second is strictly larger)."""
        if len(candidates) == 2:
            first, second = candidates
            return np.maximum(first, second), second > first
        best = candidates[0].copy()
        arg = np.zeros(best.shape, np.uint8 if len(candidates) <= 256 else np.int64)
        for t, candidate in enumerate(candidates[1:], start=1):
            better = candidate > best
            np.maximum(best, candidate, out=best)
            arg += better * (t - arg)  # arithmetic instead of a masked write: no branches, ~10x faster
        return best, arg

    @staticmethod
    def _route(d, arg, outs):
        """``outs[t][...] = d`` where ``arg == t``, else 0: the adjoint of :meth:`_running_max`."""
        if arg.dtype == bool:  # two candidates: the second gets d * arg, the first the rest (exact)
            np.multiply(d, arg, out=outs[1])
            np.subtract(d, outs[1], out=outs[0])
        else:
            for t, out in enumerate(outs):
                np.multiply(d, arg == t, out=out)

    def _backward_two_stage(self, dy, cache):
        x_shape, xp_shape, pads, dtype = cache.x_shape, cache.xp_shape, cache.pads, dy.dtype
        (kh, kw), (a1, a2) = self.pool_size, cache.arg
        Ho, Wo = dy.shape[2:]
        dm1 = np.empty(dy.shape[:2] + (Ho * kh, Wo), dtype)  # the gradient of the row maxima
        self._route(dy, a2, [dm1[:, :, a::kh] for a in range(kh)])
        if xp_shape == x_shape and (Ho * kh, Wo * kw) == x_shape[2:]:  # no pads, every pixel in a window
            dx = np.empty(x_shape, dtype)
        else:
            dx = np.zeros(xp_shape, dtype)
        self._route(dm1, a1, [dx[:, :, : Ho * kh, b: Wo * kw: kw] for b in range(kw)])
        return crop(dx, pads, x_shape)

    def kink_state(self, x: np.ndarray) -> np.ndarray:
        return self._argmax(x)[2]

    def output_shape(self, input_shape: tuple) -> tuple:
        if len(input_shape) != 3:
            raise ValueError(f"MaxPool2D: expected input of shape (N, C, H, W), "
                             f"got (N, {', '.join(map(str, input_shape))})")
        _, out = geometry(input_shape, self.pool_size, self.stride, self.padding, "MaxPool2D")
        return (input_shape[0],) + out

    def config(self) -> dict:
        return {"type": "MaxPool2D", "pool_size": list(self.pool_size), "stride": list(self.stride),
                "padding": self.padding}

    @classmethod
    def examples(cls, rng: np.random.Generator) -> list:
        """Inputs of distinct values 0.01 apart: no ties, no argmax within reach of h."""
        return [
            ("MaxPool2D 2 valid", cls(2), distinct_values((2, 2, 6, 6), rng)),
            ("MaxPool2D 2 same (7->4)", cls(2, padding="same"), distinct_values((2, 2, 7, 7), rng)),
            ("MaxPool2D 3 stride 2 (overlap)", cls(3, stride=2), distinct_values((2, 2, 7, 7), rng)),
        ]

    def extra_repr(self) -> str:
        s = f"pool_size={self.pool_size[0] if self.pool_size[0] == self.pool_size[1] else self.pool_size}"
        if self.stride != self.pool_size:
            s += f", stride={self.stride}"
        return s + f", padding={self.padding!r}"


@converts(MaxPool2D)
def _maxpool2d_to_torch(layer, ctx):
    """``nn.MaxPool2d``: "valid" ``padding=0``, an int p ``padding=p`` (torch's padding never wins a max, npae
    pads with -inf: the same); "same" with windows of 1 or 2 that do not overlap is ``ceil_mode=True`` (the one
    padded row or column is at the bottom or right, where ceil mode's last, partial window is); with stride 1
    and odd pools ``padding=(kh // 2, kw // 2)``; any other "same" is ``MaxPool2dSame``."""
    kernel, stride = layer.pool_size, layer.stride
    if layer.padding == "same":
        if all(k == s <= 2 for k, s in zip(kernel, stride)):  # the padding is 0 or 1, at the end
            return ctx.nn.MaxPool2d(kernel, stride, ceil_mode=True)
        if stride == (1, 1) and all(k % 2 for k in kernel):  # symmetric for every input size
            return ctx.nn.MaxPool2d(kernel, 1, padding=tuple(k // 2 for k in kernel))
        return ctx.classes.MaxPool2dSame(kernel, stride)
    return ctx.nn.MaxPool2d(kernel, stride, padding=0 if layer.padding == "valid" else layer.padding)


@LAYERS.register
class UpSampling2D(Layer):
    """Nearest-neighbour upsampling: each pixel becomes an ``sh x sw`` block, NCHW.

    Shapes: x (N, C, H, W) -> y, dy (N, C, H*sh, W*sw).

    Forward: ``y[n, c, i, j] = x[n, c, i // sh, j // sw]``.
    Backward: every output pixel of a block came from the same input pixel, so its
    gradient is the **sum** over the block (not one element of it):
    ``dx[n, c, i, j] = sum_{a < sh, b < sw} dy[n, c, i*sh + a, j*sw + b]``.
    """

    reference = ('upsample_forward', 'upsample_backward')

    def __init__(self, size: int | tuple[int, int] | list[int] = 2):
        self.size = _checks.pair(size, "size", "UpSampling2D")

    def forward(self, x: np.ndarray, training: bool = True) -> np.ndarray:
        x = _checks.check_input(x, (None, "C", "H", "W"), "UpSampling2D")
        (N, C, H, W), (sh, sw) = x.shape, self.size
        # repeat each column sw times, then copy each such row sh times (a broadcast of whole
        # contiguous rows: cheaper than repeating along both axes)
        rows = x.repeat(sw, axis=3) if sw > 1 else x
        y = np.empty((N, C, H, sh, W * sw), x.dtype)
        y[...] = rows[:, :, :, None]
        self._cache = (x.shape, x.dtype) if training else None
        return y.reshape(N, C, H * sh, W * sw)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        (N, C, H, W), dtype = self._cached("UpSampling2D")
        sh, sw = self.size
        dy = _checks.check_grad(dy, (N, C, H * sh, W * sw), dtype, "UpSampling2D")
        # the block sum in two steps, rows then columns, each a sum of whole slices
        rows = dy.reshape(N, C, H, sh, W * sw)
        rows = _sum_of([rows[:, :, :, a] for a in range(sh)])  # (N, C, H, W*sw)
        cols = rows.reshape(N, C, H, W, sw)
        return _sum_of([cols[..., b] for b in range(sw)])

    def output_shape(self, input_shape: tuple) -> tuple:
        if len(input_shape) != 3:
            raise ValueError(f"UpSampling2D: expected input of shape (N, C, H, W), "
                             f"got (N, {', '.join(map(str, input_shape))})")
        C, H, W = input_shape
        return (C, H * self.size[0], W * self.size[1])

    def config(self) -> dict:
        return {"type": "UpSampling2D", "size": list(self.size)}

    @classmethod
    def examples(cls, rng: np.random.Generator) -> list:
        return [("UpSampling2D 2", cls(2), rng.standard_normal((2, 3, 3, 4))),
                ("UpSampling2D (2,3)", cls((2, 3)), rng.standard_normal((2, 2, 3, 2)))]

    def extra_repr(self) -> str:
        return f"size={self.size[0] if self.size[0] == self.size[1] else self.size}"


@converts(UpSampling2D)
def _upsampling2d_to_torch(layer, ctx):
    """``nn.Upsample(scale_factor=size, mode="nearest")``."""
    return ctx.nn.Upsample(scale_factor=tuple(float(s) for s in layer.size), mode="nearest")


@LAYERS.register
class AvgPool2D(Layer):
    """The mean over each window, per channel, NCHW, with PyTorch's ``avg_pool2d`` semantics
    (``count_include_pad=True``): pads are zeros and count in the divisor, so every output is
    the window's sum over ``kh*kw``. (Keras/TensorFlow's "same" average pooling divides by the
    number of real pixels instead; npae follows PyTorch for every padding.)

    Parameters
    ----------
    pool_size : int or (kh, kw), default 2
    stride : int or (sh, sw), default ``pool_size``
    padding : "valid" (default), "same" or an int <= pool_size // 2 (zeros; see :mod:`npae.nn.windows`)

    Shapes: x (N, C, H, W) -> y, dy (N, C, Ho, Wo).

    Forward and backward (``xp`` = x padded with zeros)
    ---------------------------------------------------
    ``y[n, c, i, j] = (1 / (kh*kw)) sum_{u,v} xp[n, c, i*sh + u, j*sw + v]``
    ``dxp[n, c, i*sh + u, j*sw + v] += dy[n, c, i, j] / (kh*kw)``  (overlapping windows add up);
    ``dx = dxp`` without its padding. A linear map: its backward is its adjoint.
    Definition: :func:`npae.nn.reference.avgpool_forward_backward`.
    """

    reference = ('avgpool_forward_backward',)

    def __init__(self, pool_size: int | tuple[int, int] | list[int] = 2, *,
                 stride: int | tuple[int, int] | list[int] | None = None, padding: str | int = "valid"):
        where = "AvgPool2D"
        self.pool_size = _checks.pair(pool_size, "pool_size", where)
        self.stride = self.pool_size if stride is None else _checks.pair(stride, "stride", where)
        self.padding = check_padding(padding, where)
        if isinstance(self.padding, int) and self.padding > min(self.pool_size) // 2:
            raise ValueError(f"{where}: an int padding may be at most half the pool size "
                             f"({min(self.pool_size) // 2} for pool_size={self.pool_size}), got {self.padding}")

    def forward(self, x: np.ndarray, training: bool = True) -> np.ndarray:
        x = _checks.check_input(x, (None, "C", "H", "W"), "AvgPool2D")
        pads, out = geometry(x.shape[1:], self.pool_size, self.stride, self.padding, "AvgPool2D")
        xp = pad(x, pads)
        scale = x.dtype.type(1 / (self.pool_size[0] * self.pool_size[1]))
        y = _sum_of([xp[window] for _, _, window in offsets(self.pool_size, self.stride, out)])
        y *= scale
        self._cache = (x.shape, xp.shape, pads, y.shape, x.dtype) if training else None
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        x_shape, xp_shape, pads, y_shape, dtype = self._cached("AvgPool2D")
        dy = _checks.check_grad(dy, y_shape, dtype, "AvgPool2D")
        share = dy * dtype.type(1 / (self.pool_size[0] * self.pool_size[1]))
        dxp = np.zeros(xp_shape, dtype)
        for _, _, window in offsets(self.pool_size, self.stride, dy.shape[2:]):
            dxp[window] += share  # overlapping windows add up
        return np.ascontiguousarray(crop(dxp, pads, x_shape))

    def output_shape(self, input_shape: tuple) -> tuple:
        if len(input_shape) != 3:
            got = ", ".join(map(str, input_shape))
            raise ValueError(f"AvgPool2D: expected input of shape (N, C, H, W), got (N, {got})")
        _, out = geometry(input_shape, self.pool_size, self.stride, self.padding, "AvgPool2D")
        return (input_shape[0],) + out

    def config(self) -> dict:
        return {"type": "AvgPool2D", "pool_size": list(self.pool_size), "stride": list(self.stride),
                "padding": self.padding}

    @classmethod
    def examples(cls, rng: np.random.Generator) -> list:
        return [("AvgPool2D 2 valid", cls(2), rng.standard_normal((2, 2, 6, 5))),
                ("AvgPool2D 3 stride 2 pad 1 (overlap)", cls(3, stride=2, padding=1),
                 rng.standard_normal((2, 2, 7, 6)))]

    def extra_repr(self) -> str:
        s = f"pool_size={self.pool_size[0] if self.pool_size[0] == self.pool_size[1] else self.pool_size}"
        if self.stride != self.pool_size:
            s += f", stride={self.stride}"
        return s + f", padding={self.padding!r}"


@converts(AvgPool2D)
def _avgpool2d_to_torch(layer, ctx):
    """``nn.AvgPool2d(count_include_pad=True)``: "valid" and an int padding as they are, "same" with stride 1 and
    odd pools as symmetric padding; any other "same" is ``AvgPool2dSame`` (zeros by npae's rule, then
    avg_pool2d: torch's ceil mode would divide a last, partial window by fewer)."""
    kernel, stride = layer.pool_size, layer.stride
    if layer.padding == "same":
        if stride == (1, 1) and all(k % 2 for k in kernel):  # symmetric for every input size
            return ctx.nn.AvgPool2d(kernel, 1, padding=tuple(k // 2 for k in kernel), count_include_pad=True)
        return ctx.classes.AvgPool2dSame(kernel, stride)
    return ctx.nn.AvgPool2d(kernel, stride, padding=0 if layer.padding == "valid" else layer.padding,
                            count_include_pad=True)
