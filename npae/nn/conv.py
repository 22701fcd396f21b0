"""2-D convolution on NCHW images. Padding rules and windows: :mod:`npae.nn.windows`."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .. import _checks
from .. import init as _init
from ..converters import converts, weight_and_bias
from ..core import LAYERS, Layer, Param
from .kernels import COL2IM, KERNELS, Geometry, Scratch, choose_kernel, choose_transpose_kernel
from .kernels import transpose as TK
from .windows import check_padding, geometry


def _weight_and_bias(W: np.ndarray, c_out: int, dtype: np.dtype, bias: bool) -> dict:
    """The params of a convolution: W, and b (zeros) unless ``bias=False`` (a layer followed by
    batch normalization, which would cancel any bias: its gradient would be exactly zero)."""
    if not isinstance(bias, (bool, np.bool_)):
        raise TypeError(f"bias must be True or False, got {bias!r}")
    params = {"W": Param(W, decay=True)}
    if bias:
        params["b"] = Param(_init.full(c_out, 0.0, dtype), decay=False)
    return params


class _Convolution(Layer):
    """What both convolutions share: ``W``, and ``b`` (zeros when the layer has no bias)."""

    @property
    def W(self) -> np.ndarray:
        return self.params["W"].value

    @property
    def b(self) -> np.ndarray:
        """The bias (c_out,); zeros that are no parameter for a layer made with ``bias=False``."""
        return self.params["b"].value if "b" in self.params else np.zeros(self.c_out, self.dtype)

    def clear_cache(self) -> None:
        self._cache = None
        self._scratch = Scratch()  # the kernels' scratch arrays, kept between training steps


@LAYERS.register
class Conv2D(_Convolution):
    """2-D convolution (cross-correlation, as in every deep-learning library), NCHW.

    The definition is the loop version, :func:`npae.nn.reference.conv2d_forward` and
    :func:`npae.nn.reference.conv2d_backward`; read those first.

    Parameters
    ----------
    c_in, c_out : int
    kernel_size : int or (kh, kw)
    stride : int or (sh, sw), default 1
    padding : "same" (default), "valid" or int; see :mod:`npae.nn.windows`
    rng : np.random.Generator, optional
    dtype : float32 (default) or float64
    init : "glorot_uniform" (default; fan_in = c_in*kh*kw, fan_out = c_out*kh*kw) or "he_normal".
        ``b`` starts at 0.
    bias : True (default), or False for no ``b`` (before a BatchNorm2D, which cancels a bias)

    Shapes
    ------
    x : (N, c_in, H, W); W : (c_out, c_in, kh, kw); b : (c_out,); y, dy : (N, c_out, Ho, Wo)

    Forward and backward (``xp`` = x with its padding)
    ---------------------------------------------------
    ``y[n, o, i, j] = b[o] + sum_{c,u,v} W[o, c, u, v] * xp[n, c, i*sh + u, j*sw + v]``
    ``dW[o, c, u, v] += sum_{n,i,j} dy[n, o, i, j] * xp[n, c, i*sh + u, j*sw + v]``
    ``db[o] += sum_{n,i,j} dy[n, o, i, j]``
    ``dxp[n, c, i*sh + u, j*sw + v] += sum_o dy[n, o, i, j] * W[o, c, u, v]``  (overlaps add up)
    ``dx = dxp`` without its padding.

    Which code computes it: one of ``npae.nn.kernels.KERNELS`` (``im2col``, ``flat``,
    ``per_sample``, ``nhwc``, ``winograd``, ``winograd4``), chosen by
    :func:`npae.nn.kernels.choose_kernel` from the layer's shape and the batch (:meth:`kernel_for`;
    ``kernel`` asks for one by name); every one is held to the loops. docs/layers.md says when each runs.
    """

    reference = ('conv2d_forward', 'conv2d_backward')

    def __init__(self, c_in: int, c_out: int, kernel_size: int | tuple[int, int] | list[int], *,
                 stride: int | tuple[int, int] | list[int] = 1, padding: str | int = "same",
                 rng: np.random.Generator | None = None, dtype: type | np.dtype | str = np.float32,
                 init: str | Callable[..., np.ndarray] = "glorot_uniform", bias: bool = True):
        where = "Conv2D"
        self.c_in = _checks.positive_int(c_in, "c_in", where)
        self.c_out = _checks.positive_int(c_out, "c_out", where)
        self.kernel_size = _checks.pair(kernel_size, "kernel_size", where)
        self.stride = _checks.pair(stride, "stride", where)
        self.padding = check_padding(padding, where)
        self.dtype = _checks.float_dtype(dtype, where)
        self.init = init if isinstance(init, str) else getattr(init, "__name__", "custom")
        rng = _init.default_rng(rng, where)
        shape = (self.c_out, self.c_in) + self.kernel_size
        W = _init.get(init)(shape, rng, self.dtype, "conv")
        self.params = _weight_and_bias(W, self.c_out, self.dtype, bias)
        self.clear_cache()  # no cache yet, and an empty scratch for the kernels

    #: Use the fast kernels where they pay (False: the im2col kernel for every shape and stride).
    fast = True
    #: A kernel asked for by name (one of ``npae.nn.kernels.KERNELS``), used wherever it applies to
    #: the layer's shape; None (the default): the rule of :func:`npae.nn.kernels.choose_kernel`.
    kernel: str | None = None

    def kernel_for(self, out: tuple[int, int], batch: int | None = None) -> str:
        """The name of the kernel pair that runs for an output of ``out`` = (Ho, Wo) positions and a
        batch of ``batch`` samples (:func:`npae.nn.kernels.choose_kernel`)."""
        return choose_kernel(self.W, self.stride, out, self.fast, self.kernel, batch)

    def forward(self, x: np.ndarray, training: bool = True) -> np.ndarray:
        x = _checks.check_input(x, (None, self.c_in, "H", "W"), "Conv2D", self.dtype)
        pads, out = geometry(x.shape[1:], self.kernel_size, self.stride, self.padding, "Conv2D")
        scratch = self._scratch if training else Scratch()  # inference keeps nothing
        kernel = KERNELS[self.kernel_for(out, x.shape[0])]
        y, saved = kernel.forward(x, self.W, self.b, Geometry(x.shape, self.stride, pads, out), scratch)
        self._cache = saved if training else None
        return y

    can_skip_dx = True

    def backward(self, dy: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        saved = self._cached("Conv2D")
        g = saved.geometry
        dy = _checks.check_grad(dy, (g.x_shape[0], self.c_out) + tuple(g.out), self.dtype, "Conv2D")
        dx, dW, db = KERNELS[saved.kernel].backward(dy, self.W, saved, self._scratch, need_dx)
        self.params["W"].grad += dW
        if "b" in self.params:
            self.params["b"].grad += db
        return dx

    def output_shape(self, input_shape: tuple) -> tuple:
        if len(input_shape) != 3 or input_shape[0] != self.c_in:
            raise ValueError(f"Conv2D: expected input of shape (N, {self.c_in}, H, W), "
                             f"got (N, {', '.join(map(str, input_shape))})")
        _, out = geometry(input_shape, self.kernel_size, self.stride, self.padding, "Conv2D")
        return (self.c_out,) + out

    def config(self) -> dict:
        return {"type": "Conv2D", "c_in": self.c_in, "c_out": self.c_out, "kernel_size": list(self.kernel_size),
                "stride": list(self.stride), "padding": self.padding, "dtype": self.dtype.name,
                **({} if "b" in self.params else {"bias": False})}

    @classmethod
    def examples(cls, rng: np.random.Generator) -> list:
        def make(*a, **k):
            conv = cls(*a, rng=rng, dtype=np.float64, **k)
            conv.params["b"].value[...] = rng.standard_normal(conv.c_out)
            return conv

        img = rng.standard_normal
        return [
            ("Conv2D 3x3 same", make(2, 3, 3), img((2, 2, 7, 6))),
            ("Conv2D 3x3 same, 4->1 channels", make(4, 1, 3), img((2, 4, 6, 5))),
            ("Conv2D 3x3 same, 1->6 (per-sample kernel)", make(1, 6, 3), img((2, 1, 6, 5))),
            ("Conv2D 3x3 valid", make(2, 3, 3, padding="valid"), img((2, 2, 7, 6))),
            ("Conv2D 3x3 stride 2 same", make(2, 3, 3, stride=2, padding="same"), img((2, 2, 7, 6))),
            ("Conv2D 2x3 stride (2,1) pad 1", make(1, 2, (2, 3), stride=(2, 1), padding=1), img((2, 1, 5, 6))),
        ]

    def extra_repr(self) -> str:
        k = self.kernel_size
        s = f"{self.c_in}, {self.c_out}, kernel_size={k[0] if k[0] == k[1] else k}"
        if self.stride != (1, 1):
            s += f", stride={self.stride[0] if self.stride[0] == self.stride[1] else self.stride}"
        return s + f", padding={self.padding!r}"


@converts(Conv2D, weight_and_bias)
def _conv2d_to_torch(layer, ctx):
    """``nn.Conv2d`` (W is (c_out, c_in, kh, kw) in both): "valid" is ``padding=0``, an int p is ``padding=p``,
    "same" with stride 1 and odd kernels is ``padding=(kh // 2, kw // 2)``; any other "same" is ``Conv2dSame``
    (zero-pads each input by npae's rule, the odd extra row and column at the bottom and right)."""
    args = (layer.c_in, layer.c_out, layer.kernel_size)
    kw = {"stride": layer.stride, "bias": "b" in layer.params, "dtype": ctx.dtype(layer)}
    if layer.padding == "same":
        if layer.stride == (1, 1) and all(k % 2 for k in layer.kernel_size):  # symmetric for every input size
            return ctx.nn.Conv2d(*args, padding=tuple(k // 2 for k in layer.kernel_size), **kw)
        return ctx.classes.Conv2dSame(*args, **kw)
    return ctx.nn.Conv2d(*args, padding=0 if layer.padding == "valid" else layer.padding, **kw)


@LAYERS.register
class ConvTranspose2D(_Convolution):
    """Transposed convolution, NCHW, with PyTorch's semantics and weight layout: the map whose
    matrix is the transpose of a convolution's, so its forward *is* a convolution's input
    gradient (and its input gradient that convolution's forward). The loop definition is
    :func:`npae.nn.reference.conv_transpose2d_forward`.

    Parameters
    ----------
    c_in, c_out : int
    kernel_size : int or (kh, kw)
    stride : int or (sh, sw), default 1
    padding : int >= 0, default 0: rows/columns taken off each side of the output
    output_padding : int, 0 <= output_padding < stride, default 0: rows/columns added at the
        bottom/right (which of the sizes that a stride-s convolution maps to the same H you want)
    init : "glorot_uniform" (default; fan_in = c_out*kh*kw, fan_out = c_in*kh*kw, those of
        the convolution it transposes) or "he_normal". ``b`` starts at 0.
    bias : True (default), or False for no ``b`` (before a BatchNorm2D, which cancels a bias)

    Shapes
    ------
    x : (N, c_in, H, W); W : (c_in, c_out, kh, kw); b : (c_out,); y, dy : (N, c_out, H_out, W_out),
    ``H_out = (H - 1)*sh - 2*padding + kh + output_padding`` (likewise W_out).

    Forward and backward (``full`` = y before its padding is taken off, ``dfull`` = dy with it put back as zeros)
    ------------------------------------------------------------------------------------------
    ``full[n, o, i*sh + u, j*sw + v] += sum_c x[n, c, i, j] * W[c, o, u, v]``;  ``y = full[p:-p] + b``
    ``dx[n, c, i, j] = sum_{o,u,v} W[c, o, u, v] * dfull[n, o, i*sh + u, j*sw + v]``  (a convolution of dfull)
    ``dW[c, o, u, v] += sum_{n,i,j} x[n, c, i, j] * dfull[n, o, i*sh + u, j*sw + v]``
    ``db[o] += sum_{n,i,j} dy[n, o, i, j]``

    Which code computes it (:meth:`kernel_for`, :func:`npae.nn.kernels.choose_transpose_kernel`): the
    convolution's own im2col and col2im (``col2im``, :mod:`npae.nn.kernels.transpose`); at stride 1,
    where the layer is a convolution of x padded by ``k - 1 - padding`` with the kernel
    ``Wc[o, c, u, v] = W[c, o, kh-1-u, kw-1-v]``, Conv2D's kernels where the measured rule says they pay
    (``winograd4``, ``winograd``, ``per_sample``, ``flat``; ``kernel`` asks for ``"col2im"`` or one of
    ``npae.nn.kernels.KERNELS`` by name). Every one is held to the loops (docs/layers.md).
    """

    reference = ('conv_transpose2d_forward', 'conv_transpose2d_backward')

    def __init__(self, c_in: int, c_out: int, kernel_size, *, stride=1, padding: int = 0, output_padding: int = 0,
                 rng: np.random.Generator | None = None, dtype=np.float32, init="glorot_uniform", bias: bool = True):
        where = "ConvTranspose2D"
        self.c_in = _checks.positive_int(c_in, "c_in", where)
        self.c_out = _checks.positive_int(c_out, "c_out", where)
        self.kernel_size = _checks.pair(kernel_size, "kernel_size", where)
        self.stride = _checks.pair(stride, "stride", where)
        for name, value in (("padding", padding), ("output_padding", output_padding)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{where}: {name} must be an int >= 0, got {value!r}")
        if output_padding >= max(self.stride):
            raise ValueError(f"{where}: output_padding must be smaller than the stride {self.stride}, "
                             f"got {output_padding}")
        self.padding, self.output_padding = int(padding), int(output_padding)
        self.dtype = _checks.float_dtype(dtype, where)
        self.init = init if isinstance(init, str) else getattr(init, "__name__", "custom")
        rng = _init.default_rng(rng, where)
        # the weight is drawn in the layout of the convolution it transposes, so its fans are that one's
        W = _init.get(init)((self.c_in, self.c_out) + self.kernel_size, rng, self.dtype, "conv")
        self.params = _weight_and_bias(W, self.c_out, self.dtype, bias)
        self.clear_cache()  # no cache yet, and an empty scratch for the kernels

    #: A kernel asked for by name, used wherever it applies: ``"col2im"`` (every stride) or, at stride 1,
    #: one of ``npae.nn.kernels.KERNELS``; None (the default): the rule of
    #: :func:`npae.nn.kernels.choose_transpose_kernel`.
    kernel: str | None = None

    def kernel_for(self, x_shape: tuple) -> str:
        """The name of the kernel that runs for an input of ``x_shape`` (N, c_in, H, W): the input's shape,
        where Conv2D's ``kernel_for(out, batch)`` takes its output's size (this layer's rule needs the
        input's, and the padding of the convolution it is)."""
        x_shape = tuple(x_shape)
        if len(x_shape) != 4 or x_shape[1] != self.c_in or not all(isinstance(d, (int, np.integer)) and d >= 1
                                                                   for d in x_shape):
            raise ValueError(f"ConvTranspose2D.kernel_for: expected an input shape (N, {self.c_in}, H, W) of "
                             f"positive sizes, got {x_shape}")
        return choose_transpose_kernel(self.W, self.stride, self.padding, x_shape, self.kernel)

    def _out(self, h: int, w: int) -> tuple[int, int]:
        (kh, kw), (sh, sw), p, op = self.kernel_size, self.stride, self.padding, self.output_padding
        if min(h, w) < 1:
            raise ValueError(f"ConvTranspose2D: input of height x width {h}x{w} is empty; it needs at least 1x1")
        out = ((h - 1) * sh - 2 * p + kh + op, (w - 1) * sw - 2 * p + kw + op)
        if min(out) < 1:
            raise ValueError(f"ConvTranspose2D: an input of {h}x{w} gives an output of {out[0]}x{out[1]} "
                             f"with padding={p}; make the padding smaller")
        return out

    def forward(self, x: np.ndarray, training: bool = True) -> np.ndarray:
        x = _checks.check_input(x, (None, self.c_in, "H", "W"), "ConvTranspose2D", self.dtype)
        out = self._out(*x.shape[2:])
        name = self.kernel_for(x.shape)
        if name == COL2IM:
            y, saved = TK.transpose_forward(x, self.W, self.b, self.stride, self.padding, self.output_padding)
        else:  # stride 1: the convolution of x with flip_transpose(W) (npae.nn.kernels.transpose)
            scratch = self._scratch if training else Scratch()  # inference keeps nothing
            g = TK.convolution_geometry(x.shape, self.kernel_size, self.padding)
            y, saved = KERNELS[name].forward(x, TK.flip_transpose(self.W), self.b, g, scratch)
        assert y.shape[2:] == out
        self._cache = (name, saved, x.shape, y.shape) if training else None
        return y

    can_skip_dx = True

    def backward(self, dy: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        name, saved, x_shape, y_shape = self._cached("ConvTranspose2D")
        dy = _checks.check_grad(dy, y_shape, self.dtype, "ConvTranspose2D")
        if name == COL2IM:
            dx, dW, db = TK.transpose_backward(dy, self.W, saved, x_shape, self.stride, self.padding,
                                              self.output_padding, need_dx)
        else:
            dx, dWc, db = KERNELS[name].backward(dy, TK.flip_transpose(self.W), saved, self._scratch, need_dx)
            dW = TK.flip_transpose(dWc)
        self.params["W"].grad += dW
        if "b" in self.params:
            self.params["b"].grad += db
        return dx

    def output_shape(self, input_shape: tuple) -> tuple:
        if len(input_shape) != 3 or input_shape[0] != self.c_in:
            raise ValueError(f"ConvTranspose2D: expected input of shape (N, {self.c_in}, H, W), "
                             f"got (N, {', '.join(map(str, input_shape))})")
        return (self.c_out,) + self._out(*input_shape[1:])

    def config(self) -> dict:
        return {"type": "ConvTranspose2D", "c_in": self.c_in, "c_out": self.c_out,
                "kernel_size": list(self.kernel_size),
                "stride": list(self.stride), "padding": self.padding, "output_padding": self.output_padding,
                "dtype": self.dtype.name, **({} if "b" in self.params else {"bias": False})}

    @classmethod
    def examples(cls, rng: np.random.Generator) -> list:
        def make(*a, **k):
            layer = cls(*a, rng=rng, dtype=np.float64, **k)
            layer.params["b"].value[...] = rng.standard_normal(layer.c_out)
            return layer

        return [("ConvTranspose2D 3x3 stride 2 pad 1 (x2 up)", make(2, 3, 3, stride=2, padding=1, output_padding=1),
                 rng.standard_normal((2, 2, 4, 3))),
                ("ConvTranspose2D 2x3 stride 1", make(3, 2, (2, 3)), rng.standard_normal((2, 3, 3, 4)))]

    def extra_repr(self) -> str:
        k = self.kernel_size
        s = f"{self.c_in}, {self.c_out}, kernel_size={k[0] if k[0] == k[1] else k}"
        if self.stride != (1, 1):
            s += f", stride={self.stride[0] if self.stride[0] == self.stride[1] else self.stride}"
        return s + (f", padding={self.padding}" if self.padding else "") + (
            f", output_padding={self.output_padding}" if self.output_padding else "")


@converts(ConvTranspose2D, weight_and_bias)
def _conv_transpose2d_to_torch(layer, ctx):
    """``nn.ConvTranspose2d`` with the same stride, padding, output_padding and weight layout (c_in, c_out, kh, kw)."""
    return ctx.nn.ConvTranspose2d(layer.c_in, layer.c_out, layer.kernel_size, stride=layer.stride,
                                  padding=layer.padding, output_padding=layer.output_padding,
                                  bias="b" in layer.params, dtype=ctx.dtype(layer))
