"""Convolution, max pooling and nearest-neighbour upsampling on NCHW images.

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
Both Conv2D and MaxPool2D look at the input through windows,
``win[n, c, i, j, u, v] = xp[n, c, i*sh + u, j*sw + v]`` for the padded input ``xp``. The
kernels never build that 6-D array: they loop over the kh*kw kernel offsets ``(u, v)``,
each a strided slice ``xp[..., u::sh, v::sw]`` of the whole batch (``_offsets``). Backward
passes scatter gradients back through the same index map; where windows overlap
(stride < kernel) the contributions **add up**.
"""

from __future__ import annotations

import numpy as np

from . import _checks
from . import init as _init
from .core import Layer, Param

PADDINGS = ("same", "valid")


# -- window helpers ----------------------------------------------------------------------
def _check_padding(padding, where: str):
    if isinstance(padding, str):
        if padding not in PADDINGS:
            raise ValueError(f"{where}: padding must be 'same', 'valid' or an int >= 0, got {padding!r}")
        return padding
    if isinstance(padding, (int, np.integer)) and not isinstance(padding, bool) and padding >= 0:
        return int(padding)
    raise ValueError(f"{where}: padding must be 'same', 'valid' or an int >= 0, got {padding!r}")


def pads_1d(size: int, k: int, s: int, padding) -> tuple[int, int, int]:
    """``(pad_before, pad_after, out_size)`` along one axis for the rules in the module docstring."""
    if padding == "same":
        out = -(-size // s)
        total = max((out - 1) * s + k - size, 0)
        return total // 2, total - total // 2, out
    p = 0 if padding == "valid" else padding
    return p, p, (size + 2 * p - k) // s + 1


def _geometry(shape, kernel, stride, padding, where):
    """Pads and output size for an input of per-sample shape (C, H, W); error if nothing fits."""
    _, H, W = shape
    pt, pb, Ho = pads_1d(H, kernel[0], stride[0], padding)
    pl, pr, Wo = pads_1d(W, kernel[1], stride[1], padding)
    if Ho < 1 or Wo < 1:
        raise ValueError(
            f"{where}: input of height x width {H}x{W} is smaller than the {kernel[0]}x{kernel[1]} window "
            f"with padding={padding!r}; it needs at least {max(kernel[0] - pt - pb, 1)}x{max(kernel[1] - pl - pr, 1)}"
        )
    return (pt, pb, pl, pr), (Ho, Wo)


def _pad(x: np.ndarray, pads, value=0.0) -> np.ndarray:
    pt, pb, pl, pr = pads
    if not any(pads):
        return x
    return np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)), constant_values=value)


def _offsets(kernel, stride, out):
    """For each kernel offset (u, v): the index of the strided slice ``xp[..., i*sh + u, j*sw + v]``."""
    (kh, kw), (sh, sw), (Ho, Wo) = kernel, stride, out
    for u in range(kh):
        for v in range(kw):
            yield u, v, (Ellipsis, slice(u, u + sh * (Ho - 1) + 1, sh), slice(v, v + sw * (Wo - 1) + 1, sw))


def _im2col(xpt: np.ndarray, kernel, stride, out) -> np.ndarray:
    """``cols[(c, u, v), (n, i, j)] = xpt[c, n, i*sh + u, j*sw + v]`` for channel-first ``xpt`` (C, N, Hp, Wp).

    Returns a (C*kh*kw, N*Ho*Wo) matrix; the loop runs over the kh*kw kernel offsets only.
    """
    C, N = xpt.shape[:2]
    cols = np.empty((C,) + tuple(kernel) + (N,) + tuple(out), xpt.dtype)
    for u, v, window in _offsets(kernel, stride, out):
        cols[:, u, v] = xpt[window]
    return cols.reshape(C * kernel[0] * kernel[1], -1)


def _col2im(dcols: np.ndarray, xpt_shape, kernel, stride, out) -> np.ndarray:
    """The adjoint of :func:`_im2col`: add each column entry back where it was read from."""
    C, N = xpt_shape[:2]
    dcols = dcols.reshape((C,) + tuple(kernel) + (N,) + tuple(out))
    dxpt = np.zeros(xpt_shape, dcols.dtype)
    for u, v, window in _offsets(kernel, stride, out):
        dxpt[window] += dcols[:, u, v]  # overlapping windows add up
    return dxpt


def _sum_of(parts):
    """``parts[0] + parts[1] + ...`` as a new array, added left to right."""
    if len(parts) == 1:
        return parts[0].copy()
    total = np.add(parts[0], parts[1])
    for part in parts[2:]:
        total += part
    return total


def _crop(xp: np.ndarray, pads, shape) -> np.ndarray:
    pt, _, pl, _ = pads
    return xp[:, :, pt : pt + shape[2], pl : pl + shape[3]]


# -- layers --------------------------------------------------------------------------
class Conv2D(Layer):
    """2-D convolution (cross-correlation, as in every deep-learning library), NCHW.

    Parameters
    ----------
    c_in, c_out : int
    kernel_size : int or (kh, kw)
    stride : int or (sh, sw), default 1
    padding : "same" (default), "valid" or int; see the module docstring
    rng : np.random.Generator, optional
    dtype : float32 (default) or float64
    init : "glorot_uniform" (default; fan_in = c_in*kh*kw, fan_out = c_out*kh*kw) or "he_normal".
        ``b`` starts at 0.

    Shapes
    ------
    x : (N, c_in, H, W); W : (c_out, c_in, kh, kw); b : (c_out,); y, dy : (N, c_out, Ho, Wo)

    Forward and backward (``xp`` = padded x, ``win`` its windows, see the module docstring)
    -------------------------------------------------------------------------------------
    ``y[n, o, i, j] = b[o] + sum_{c,u,v} W[o, c, u, v] * xp[n, c, i*sh + u, j*sw + v]``
    ``dW[o, c, u, v] += sum_{n,i,j} dy[n, o, i, j] * xp[n, c, i*sh + u, j*sw + v]``
    ``db[o] += sum_{n,i,j} dy[n, o, i, j]``
    ``dxp[n, c, i*sh + u, j*sw + v] += sum_o dy[n, o, i, j] * W[o, c, u, v]``  (overlaps add up)
    ``dx = dxp`` without its padding.

    Vectorized by im2col: ``cols[(c, u, v), (n, i, j)] = xp[n, c, i*sh + u, j*sw + v]``, a matrix
    of shape (c_in*kh*kw, N*Ho*Wo) filled by a loop over the kh*kw kernel offsets (each
    iteration copies one shifted slice of the whole batch). Then, with ``W2 = W`` as a
    (c_out, c_in*kh*kw) matrix and ``dy2`` = dy as (c_out, N*Ho*Wo), each formula above is
    one matrix product: ``y2 = W2 @ cols + b``, ``dW2 += dy2 @ cols.T``, ``dcols = W2.T @ dy2``,
    and col2im adds ``dcols`` back into ``dxp`` with the same loop over offsets.
    """

    def __init__(self, c_in, c_out, kernel_size, *, stride=1, padding="same", rng=None,
                 dtype=np.float32, init="glorot_uniform"):
        super().__init__()
        where = "Conv2D"
        self.c_in = _checks.positive_int(c_in, "c_in", where)
        self.c_out = _checks.positive_int(c_out, "c_out", where)
        self.kernel_size = _checks.pair(kernel_size, "kernel_size", where)
        self.stride = _checks.pair(stride, "stride", where)
        self.padding = _check_padding(padding, where)
        self.dtype = _checks.float_dtype(dtype, where)
        self.init = init if isinstance(init, str) else getattr(init, "__name__", "custom")
        rng = _init.default_rng(rng, where)
        shape = (self.c_out, self.c_in) + self.kernel_size
        W = _init.get(init)(shape, rng, self.dtype, "conv")
        self.params = {"W": Param(W, decay=True), "b": Param(np.zeros(self.c_out, self.dtype), decay=False)}
        self._c_cols = None
        self._c_geom = None
        self._bufs = {}

    def _buffer(self, key, shape, keep=True):
        """A scratch array kept from call to call. Allocating 100+ MB afresh every step costs as
        much as filling it (the kernel zeroes each new page), so the fast kernels reuse theirs.
        Made zeroed; a caller that needs zeros where it does not write (pads, unused grid
        positions) writes the same region on every call, so those stay zero.

        Only training keeps its scratch (``keep=True``): an inference call gets fresh zeroed
        arrays that go when it returns, so a big inference batch leaves nothing behind (kept,
        2,000 images left 560 MiB in the convolutional autoencoder) and never touches what
        training cached for backward."""
        if not keep:
            return np.zeros(shape, self.dtype)
        buf = self._bufs.get(key)
        if buf is None or buf.shape != shape or buf.dtype != self.dtype:
            buf = self._bufs[key] = np.zeros(shape, self.dtype)
        return buf

    @property
    def W(self):
        return self.params["W"].value

    @property
    def b(self):
        return self.params["b"].value

    #: Use the fast kernels for stride 1 (set False to run the strided reference kernels).
    fast = True

    def _kernel(self):
        """Which kernel pair runs: "strided" (the readable reference, any stride), or for
        stride 1 "per_sample" (few input channels, see _forward_per_sample) or "flat"."""
        if not (self.fast and self.stride == (1, 1)):
            return "strided"
        kh, kw = self.kernel_size
        return "per_sample" if self.c_in * kh * kw + 1 <= 2 * self.c_out else "flat"

    def forward(self, x, training=True):
        x = _checks.check_input(x, (None, self.c_in, "H", "W"), "Conv2D", self.dtype)
        pads, out = _geometry(x.shape[1:], self.kernel_size, self.stride, self.padding, "Conv2D")
        kernel = self._kernel()
        y, cols, xpt_shape = getattr(self, "_forward_" + kernel)(x, pads, out, training)
        self._c_cols, self._c_geom = (cols, (x.shape, xpt_shape, pads, out, kernel)) if training else (None, None)
        return y

    can_skip_dx = True

    def backward(self, dy, need_dx=True):
        geom = self._c_geom
        exp = None if geom is None else (geom[0][0], self.c_out) + geom[3]
        dy = _checks.check_grad(dy, exp, self.dtype, "Conv2D")
        x_shape, xpt_shape, pads, out, kernel = geom
        dxp = getattr(self, "_backward_" + kernel)(dy, xpt_shape, out, need_dx)
        if not need_dx:
            return None
        if kernel != "per_sample":  # the others work channels first: (c_in, N, Hp, Wp)
            dxp = dxp.transpose(1, 0, 2, 3)
        return np.ascontiguousarray(_crop(dxp, pads, x_shape))

    # -- the readable kernels: any stride -------------------------------------------------
    def _forward_strided(self, x, pads, out, training):
        xpt = _pad(x, pads).transpose(1, 0, 2, 3)  # (c_in, N, Hp, Wp): channels first for im2col
        cols = _im2col(xpt, self.kernel_size, self.stride, out)
        y2 = self.W.reshape(self.c_out, -1) @ cols + self.b[:, None]  # (c_out, N*Ho*Wo)
        return np.ascontiguousarray(y2.reshape((self.c_out, x.shape[0]) + out).transpose(1, 0, 2, 3)), cols, xpt.shape

    def _backward_strided(self, dy, xpt_shape, out, need_dx=True):
        dy2 = dy.transpose(1, 0, 2, 3).reshape(self.c_out, -1)  # (c_out, N*Ho*Wo)
        W2 = self.W.reshape(self.c_out, -1)
        self.params["b"].grad += dy2.sum(axis=1)
        self.params["W"].grad += (dy2 @ self._c_cols.T).reshape(self.W.shape)
        if not need_dx:
            return None
        if self.stride == (1, 1) and self.c_out < self.c_in:
            return self._dxpt_by_full_correlation(dy, xpt_shape)
        return _col2im(W2.T @ dy2, xpt_shape, self.kernel_size, self.stride, out)

    def _dxpt_by_full_correlation(self, dy, xpt_shape):
        """``dxp`` for stride 1 as a convolution of dy, for layers that narrow (c_out < c_in).

        With stride 1 the scatter ``dxp[n, c, a, b] = sum_{o,u,v} dy[n, o, a - u, b - v] W[o, c, u, v]``
        is a "full" correlation: pad dy by (kh - 1, kw - 1) on every side and correlate it with
        the flipped kernel ``Wf[c, o, u, v] = W[o, c, kh-1-u, kw-1-v]``. Its im2col matrix has
        c_out*kh*kw rows instead of the c_in*kh*kw that col2im would scatter: cheaper when c_out < c_in.
        """
        kh, kw = self.kernel_size
        dypt = np.pad(dy.transpose(1, 0, 2, 3), ((0, 0), (0, 0), (kh - 1, kh - 1), (kw - 1, kw - 1)))
        cols = _im2col(dypt, self.kernel_size, (1, 1), xpt_shape[2:])
        Wf = self.W[:, :, ::-1, ::-1].transpose(1, 0, 2, 3).reshape(self.c_in, -1)
        return (Wf @ cols).reshape(xpt_shape)

    # -- the fast kernels: stride 1, on the flattened padded grid ---------------------------
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
    # such a layer (and any with c_out < c_in) builds the shifted copies of dy (_shifted_dy):
    # one product with them gives dx, another dW (the latter when the cache is xf).
    def _W2b(self):
        """``[W2 | b]`` (c_out, c_in*kh*kw + 1): the kernel as a matrix and the bias as its last
        column, for an im2col matrix whose last row is ones."""
        return np.concatenate([self.W.reshape(self.c_out, -1), self.b[:, None]], axis=1)

    def _add_dW2b(self, dW2b):
        """Add ``[dW2 | db]`` (c_out, c_in*kh*kw + 1), the product of dy with such a matrix, into the gradients."""
        self.params["W"].grad += dW2b[:, :-1].reshape(self.W.shape)
        self.params["b"].grad += dW2b[:, -1]

    def _shifts(self, Wp):
        kh, kw = self.kernel_size
        return [(u, v, u * Wp + v) for u in range(kh) for v in range(kw)]

    def _forward_flat(self, x, pads, out, training):
        (kh, kw), (pt, _, pl, _) = self.kernel_size, pads
        N, C, H, W = x.shape
        Hp, Wp = out[0] + kh - 1, out[1] + kw - 1
        xpt = self._buffer("xpt", (C, N, Hp, Wp), keep=training)
        xpt[:, :, pt:pt + H, pl:pl + W] = x.transpose(1, 0, 2, 3)[:, :, : Hp - pt, : Wp - pl]
        xf = xpt.reshape(C, -1)
        L = xf.shape[1] - (kh - 1) * Wp - (kw - 1)
        yf = self._buffer("yf", (self.c_out, N * Hp * Wp), keep=training)
        if self.c_in >= 2 * self.c_out:
            cached = xf
            for u, v, shift in self._shifts(Wp):
                part = np.ascontiguousarray(self.W[:, :, u, v]) @ xf[:, shift:shift + L]
                if u == v == 0:
                    np.add(part, self.b[:, None], out=yf[:, :L])
                else:
                    yf[:, :L] += part
        else:
            cached = self._buffer("cols", (C * kh * kw + 1, L), keep=training)  # (c, u, v) rows, then the ones
            cols = cached[:-1].reshape(C, kh, kw, L)
            for u, v, shift in self._shifts(Wp):
                cols[:, u, v] = xf[:, shift:shift + L]
            cached[-1] = 1
            np.matmul(self._W2b(), cached, out=yf[:, :L])
        y = np.empty((N, self.c_out) + out, self.dtype)
        y[...] = yf.reshape(self.c_out, N, Hp, Wp)[:, :, : out[0], : out[1]].transpose(1, 0, 2, 3)
        return y, cached, xpt.shape

    def _shifted_dy(self, dyf, Wp):
        """``dshift[(o, u, v), q] = dyf[o, q - u*Wp - v]`` (0 where q < u*Wp + v): (c_out*kh*kw, Np).

        The stride-1 scatter read as a gather: the window element (u, v) of output position
        q - u*Wp - v sits at q, so dxf[c, q] and dW[o, c, u, v] are both sums over dshift's
        rows. The entries before each shift are never written, so in the reused buffer they
        stay 0."""
        kh, kw = self.kernel_size
        Np = dyf.shape[1]
        dshift = self._buffer("dshift", (self.c_out, kh, kw, Np))
        for u, v, offset in self._shifts(Wp):
            dshift[:, u, v, offset:] = dyf[:, : Np - offset]
        return dshift.reshape(-1, Np)

    def _backward_flat(self, dy, xpt_shape, out, need_dx=True):
        (kh, kw), (_, N, Hp, Wp) = self.kernel_size, xpt_shape
        L = N * Hp * Wp - (kh - 1) * Wp - (kw - 1)
        dyf = self._buffer("dyf", (self.c_out, N, Hp, Wp))
        dyf[:, :, : out[0], : out[1]] = dy.transpose(1, 0, 2, 3)
        dyf = dyf.reshape(self.c_out, -1)
        dshift = None
        if self.c_in >= 2 * self.c_out:  # the cache is xf: dW[o, c, u, v] = sum_q dshift[(o, u, v), q] xf[c, q]
            dshift = self._shifted_dy(dyf, Wp)
            dWt = dshift @ self._c_cols.T  # (c_out*kh*kw, c_in)
            self.params["W"].grad += dWt.reshape(self.c_out, kh, kw, self.c_in).transpose(0, 3, 1, 2)
            self.params["b"].grad += dy.sum(axis=(0, 2, 3))
        else:  # the cache is the im2col matrix with its row of ones: [dW2 | db] in one product
            self._add_dW2b(dyf[:, :L] @ self._c_cols.T)
        if not need_dx:
            return None
        if self.c_out < self.c_in:  # dxf[c, q] = sum_{o,u,v} W[o, c, u, v] dshift[(o, u, v), q]: one product
            dshift = self._shifted_dy(dyf, Wp) if dshift is None else dshift
            dxf = self.W.transpose(1, 0, 2, 3).reshape(self.c_in, -1) @ dshift
        else:
            # col2im on the flat grid: each kernel offset adds one contiguous slice
            dcols = self._buffer("dcols", (self.c_in * kh * kw, L))
            np.matmul(self.W.reshape(self.c_out, -1).T, dyf[:, :L], out=dcols)
            dcols = dcols.reshape(self.c_in, kh, kw, L)
            dxf = self._buffer("dxf", (self.c_in, dyf.shape[1]))
            dxf.fill(0)
            for u, v, shift in self._shifts(Wp):
                dxf[:, shift:shift + L] += dcols[:, u, v]
        return dxf.reshape(xpt_shape)

    # -- the per-sample kernels: stride 1, few input channels ---------------------------------
    # With c_in*kh*kw + 1 <= 2*c_out (the first layer on grey images: 10 rows against 16
    # output channels), an im2col matrix per sample, cols[n, (c, u, v), (i, j)] = xp[n, c, i + u,
    # j + v] plus a row of ones, costs less to build than the two c_out-channel copies the flat
    # kernels need (the crop of y out of the padded grid, and dy into it): one product per
    # sample, y[n] = [W2 | b] @ cols[n], is y already in NCHW, and dy[n] is used where it is.
    def _forward_per_sample(self, x, pads, out, training):
        (kh, kw), (N, C) = self.kernel_size, x.shape[:2]
        xp = _pad(x, pads)
        cols = self._buffer("cols_n", (N, C * kh * kw + 1, out[0] * out[1]), keep=training)
        windows = cols[:, :-1].reshape((N, C, kh, kw) + out)
        for u, v, window in _offsets(self.kernel_size, (1, 1), out):
            windows[:, :, u, v] = xp[window]
        cols[:, -1] = 1
        return np.matmul(self._W2b(), cols).reshape((N, self.c_out) + out), cols, xp.shape

    def _backward_per_sample(self, dy, xp_shape, out, need_dx=True):
        (kh, kw), (N, C) = self.kernel_size, xp_shape[:2]
        dy3 = dy.reshape(N, self.c_out, -1)
        self._add_dW2b(np.matmul(dy3, self._c_cols.transpose(0, 2, 1)).sum(axis=0))  # sum_n [dW2 | db] of sample n
        if not need_dx:
            return None
        dcols = np.matmul(self.W.reshape(self.c_out, -1).T, dy3).reshape((N, C, kh, kw) + out)
        dxp = np.zeros(xp_shape, self.dtype)
        for u, v, window in _offsets(self.kernel_size, (1, 1), out):
            dxp[window] += dcols[:, :, u, v]  # overlapping windows add up
        return dxp

    def output_shape(self, input_shape):
        if len(input_shape) != 3 or input_shape[0] != self.c_in:
            raise ValueError(f"Conv2D: expected input of shape (N, {self.c_in}, H, W), got (N, {', '.join(map(str, input_shape))})")
        _, out = _geometry(input_shape, self.kernel_size, self.stride, self.padding, "Conv2D")
        return (self.c_out,) + out

    def config(self):
        return {"type": "Conv2D", "c_in": self.c_in, "c_out": self.c_out, "kernel_size": list(self.kernel_size),
                "stride": list(self.stride), "padding": self.padding, "dtype": self.dtype.name}

    def extra_repr(self):
        k = self.kernel_size
        s = f"{self.c_in}, {self.c_out}, kernel_size={k[0] if k[0] == k[1] else k}"
        if self.stride != (1, 1):
            s += f", stride={self.stride[0] if self.stride[0] == self.stride[1] else self.stride}"
        return s + f", padding={self.padding!r}"


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

    has_kinks = True

    def __init__(self, pool_size=2, *, stride=None, padding="valid"):
        super().__init__()
        where = "MaxPool2D"
        self.pool_size = _checks.pair(pool_size, "pool_size", where)
        self.stride = self.pool_size if stride is None else _checks.pair(stride, "stride", where)
        self.padding = _check_padding(padding, where)
        if isinstance(self.padding, int) and self.padding > min(self.pool_size) // 2:
            # a wider pad would create windows made only of padding, whose max is -inf
            raise ValueError(
                f"{where}: an int padding may be at most half the pool size ({min(self.pool_size) // 2} "
                f"for pool_size={self.pool_size}), got {self.padding}"
            )
        self._c_arg = None
        self._c_geom = None

    def _argmax(self, x):
        """``(x, y, arg, pads, xp_shape)``; ``arg[n, c, i, j] = u*kw + v`` of the first maximum.

        A loop over the kh*kw window offsets, each step comparing one strided slice of the
        padded input with the running maximum; strict ``>`` keeps the first maximum on ties.
        """
        x = _checks.check_input(x, (None, "C", "H", "W"), "MaxPool2D")
        pads, out = _geometry(x.shape[1:], self.pool_size, self.stride, self.padding, "MaxPool2D")
        xp = _pad(x, pads, -np.inf)
        y, arg = self._running_max([xp[window] for _, _, window in _offsets(self.pool_size, self.stride, out)])
        return x, y, arg, pads, xp.shape

    #: Non-overlapping windows (stride == pool_size) take the two-stage kernel below
    #: (set False to run the general one, which the tests also hold to the loop reference).
    fast = True

    def forward(self, x, training=True):
        if self.fast and self.stride == self.pool_size:
            return self._forward_two_stage(x, training)
        x, y, arg, pads, xp_shape = self._argmax(x)
        self._c_arg, self._c_geom = (arg, (x.shape, xp_shape, pads, x.dtype, None)) if training else (None, None)
        return y

    def backward(self, dy):
        geom = self._c_geom
        dy = _checks.check_grad(dy, None if geom is None else geom[4] or self._c_arg.shape,
                                None if geom is None else geom[3], "MaxPool2D")
        x_shape, xp_shape, pads, dtype, two_stage = geom
        if two_stage:
            return self._backward_two_stage(dy)
        dxp = np.zeros(xp_shape, dtype)
        for t, (_, _, window) in enumerate(_offsets(self.pool_size, self.stride, dy.shape[2:])):
            dxp[window] += dy * (self._c_arg == t)  # overlapping windows add up
        return _crop(dxp, pads, x_shape)

    # Non-overlapping windows: the max over a kh x kw window is the max over rows of the max
    # over columns. Stage 1 takes, in every row, the max over each group of kw columns (a1:
    # which column); stage 2 the max over each group of kh of those (a2: which row). Strict
    # ">" keeps the first column of a row and the first row of a window: together the first
    # maximum in row-major order, the same element the general kernel picks. With 2x2
    # windows (every pool of the article) a1 and a2 are booleans: "the second one won".
    def _forward_two_stage(self, x, training):
        x = _checks.check_input(x, (None, "C", "H", "W"), "MaxPool2D")
        kh, kw = self.pool_size
        pads, (Ho, Wo) = _geometry(x.shape[1:], self.pool_size, self.stride, self.padding, "MaxPool2D")
        xp = _pad(x, pads, -np.inf)
        xc = xp[:, :, : Ho * kh, : Wo * kw]  # rows and columns that some window covers
        m1, a1 = self._running_max([xc[..., b::kw] for b in range(kw)])
        y, a2 = self._running_max([m1[:, :, a::kh] for a in range(kh)])
        if training:
            self._c_arg = (a1, a2)
            self._c_geom = (x.shape, xp.shape, pads, x.dtype, y.shape)
        else:
            self._c_arg = self._c_geom = None
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

    def _backward_two_stage(self, dy):
        x_shape, xp_shape, pads, dtype, _ = self._c_geom
        (kh, kw), (a1, a2) = self.pool_size, self._c_arg
        Ho, Wo = dy.shape[2:]
        dm1 = np.empty(dy.shape[:2] + (Ho * kh, Wo), dtype)  # the gradient of the row maxima
        self._route(dy, a2, [dm1[:, :, a::kh] for a in range(kh)])
        if xp_shape == x_shape and (Ho * kh, Wo * kw) == x_shape[2:]:  # no pads, every pixel in a window
            dx = np.empty(x_shape, dtype)
        else:
            dx = np.zeros(xp_shape, dtype)
        self._route(dm1, a1, [dx[:, :, : Ho * kh, b: Wo * kw: kw] for b in range(kw)])
        return _crop(dx, pads, x_shape)

    def kink_state(self, x):
        return self._argmax(x)[2]

    def output_shape(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"MaxPool2D: expected input of shape (N, C, H, W), got (N, {', '.join(map(str, input_shape))})")
        _, out = _geometry(input_shape, self.pool_size, self.stride, self.padding, "MaxPool2D")
        return (input_shape[0],) + out

    def config(self):
        return {"type": "MaxPool2D", "pool_size": list(self.pool_size), "stride": list(self.stride),
                "padding": self.padding}

    def extra_repr(self):
        s = f"pool_size={self.pool_size[0] if self.pool_size[0] == self.pool_size[1] else self.pool_size}"
        if self.stride != self.pool_size:
            s += f", stride={self.stride}"
        return s + f", padding={self.padding!r}"


class UpSampling2D(Layer):
    """Nearest-neighbour upsampling: each pixel becomes an ``sh x sw`` block, NCHW.

    Shapes: x (N, C, H, W) -> y, dy (N, C, H*sh, W*sw).

    Forward: ``y[n, c, i, j] = x[n, c, i // sh, j // sw]``.
    Backward: every output pixel of a block came from the same input pixel, so its
    gradient is the **sum** over the block (not one element of it):
    ``dx[n, c, i, j] = sum_{a < sh, b < sw} dy[n, c, i*sh + a, j*sw + b]``.
    """

    def __init__(self, size=2):
        super().__init__()
        self.size = _checks.pair(size, "size", "UpSampling2D")
        self._c_shape = None

    def forward(self, x, training=True):
        x = _checks.check_input(x, (None, "C", "H", "W"), "UpSampling2D")
        (N, C, H, W), (sh, sw) = x.shape, self.size
        # repeat each column sw times, then copy each such row sh times (a broadcast of whole
        # contiguous rows: cheaper than repeating along both axes)
        rows = x.repeat(sw, axis=3) if sw > 1 else x
        y = np.empty((N, C, H, sh, W * sw), x.dtype)
        y[...] = rows[:, :, :, None]
        self._c_shape = (x.shape, x.dtype) if training else None
        return y.reshape(N, C, H * sh, W * sw)

    def backward(self, dy):
        shape, dtype = self._c_shape or (None, None)
        N, C, H, W = shape if shape else (0,) * 4
        sh, sw = self.size
        dy = _checks.check_grad(dy, None if shape is None else (N, C, H * sh, W * sw), dtype, "UpSampling2D")
        # the block sum in two steps, rows then columns, each a sum of whole slices
        rows = dy.reshape(N, C, H, sh, W * sw)
        rows = _sum_of([rows[:, :, :, a] for a in range(sh)])  # (N, C, H, W*sw)
        cols = rows.reshape(N, C, H, W, sw)
        return _sum_of([cols[..., b] for b in range(sw)])

    def output_shape(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"UpSampling2D: expected input of shape (N, C, H, W), got (N, {', '.join(map(str, input_shape))})")
        C, H, W = input_shape
        return (C, H * self.size[0], W * self.size[1])

    def config(self):
        return {"type": "UpSampling2D", "size": list(self.size)}

    def extra_repr(self):
        return f"size={self.size[0] if self.size[0] == self.size[1] else self.size}"
