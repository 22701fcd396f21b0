"""The kernels behind :class:`npae.Conv2D`: the same convolution, computed six ways.

The definition is :func:`npae.nn.reference.conv2d_forward` and
:func:`~npae.nn.reference.conv2d_backward` (one output element at a time)::

    y[n, o, i, j]             = b[o] + sum_{c,u,v} W[o, c, u, v] * xp[n, c, i*sh + u, j*sw + v]
    dW[o, c, u, v]            = sum_{n,i,j} dy[n, o, i, j] * xp[n, c, i*sh + u, j*sw + v]
    db[o]                     = sum_{n,i,j} dy[n, o, i, j]
    dxp[n, c, i*sh+u, j*sw+v] += sum_o dy[n, o, i, j] * W[o, c, u, v]      (overlaps add up)

Each kernel vectorizes those four formulas, and the tests (and ``python -m npae gradcheck``)
hold every one to the loops in float64, to the rounding of the sums. Read them in this order:

``im2col`` (:mod:`.im2col`, any stride): one im2col matrix, each formula one product. The readable one.
``flat`` (:mod:`.flat`, stride 1): the same products on the flattened padded grid, where every
    kernel offset is one contiguous shift; in blocks of samples (``FLAT_BUDGET``).
``per_sample`` (:mod:`.per_sample`, stride 1, few input channels): one im2col matrix per sample.
``nhwc`` (:mod:`.nhwc`, any stride, wide layers on small grids): im2col channels last, at the
    valid output positions only, in blocks of samples (``COLS_BUDGET``).
``winograd``, ``winograd4`` (:mod:`.winograd`, 3x3 stride 1, from 8 channels): Winograd's
    F(2x2, 3x3) and F(4x4, 3x3), fewer multiplications.

They share one signature (``KERNELS[name]``)::

    y, saved = forward(x, W, b, geometry, scratch)             # saved: a Saved (base.py)
    dx, dW, db = backward(dy, W, saved, scratch, need_dx)      # dx None when need_dx is False

returning in the order of :func:`npae.nn.reference.conv2d_backward`, and one rule says which
runs (:func:`choose_kernel`). A new kernel is a module with those two functions, an entry in
``KERNELS`` and a clause in ``choose_kernel``; the tests and the gradcheck suite then hold it
to the loops like the others (tests/test_structure.py checks every entry is covered).

:class:`npae.ConvTranspose2D` has its own kernel, ``col2im`` (:mod:`.transpose`, any stride). At
stride 1 it is also a convolution of its input with the flipped, transposed kernel
(:func:`.transpose.flip_transpose`, padding ``k - 1 - p``), so there it runs these kernels too,
by :func:`choose_transpose_kernel`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from . import flat, im2col, nhwc, per_sample, transpose, winograd
from .base import Geometry, Saved, Scratch


class KernelPair(NamedTuple):
    forward: Callable[..., tuple[np.ndarray, Saved]]
    backward: Callable[..., tuple[np.ndarray | None, np.ndarray, np.ndarray]]


#: name -> (forward, backward), in reading order
KERNELS: dict[str, KernelPair] = {
    "im2col": KernelPair(im2col.forward, im2col.backward),
    "flat": KernelPair(flat.forward, flat.backward),
    "per_sample": KernelPair(per_sample.forward, per_sample.backward),
    "nhwc": KernelPair(nhwc.forward, nhwc.backward),
    "winograd": KernelPair(winograd.forward, winograd.backward),
    "winograd4": KernelPair(winograd.forward4, winograd.backward4),
}

#: the shapes each kernel can compute at all (the others compute every shape)
APPLIES = {"flat": lambda W, stride: tuple(stride) == (1, 1), "per_sample": lambda W, stride: tuple(stride) == (1, 1),
           "winograd": winograd.pays, "winograd4": winograd.pays}


def applies(name: str, W: np.ndarray, stride: tuple[int, int]) -> bool:
    """Whether the kernel ``name`` can compute a layer with ``W`` at ``stride`` (:data:`APPLIES`)."""
    return name not in APPLIES or APPLIES[name](W, stride)

#: where the channels-last kernels pay, measured against the others one thread a side
#: (benchmarks/README.md): wide layers on small grids, any stride
NHWC_MIN_IN, NHWC_MIN_OUT, NHWC_MAX_POSITIONS = 32, 64, 64


def nhwc_pays(W: np.ndarray, out: tuple[int, int]) -> bool:
    """``c_in >= 32``, ``c_out >= 64`` and at most 64 output positions ``Ho*Wo``: where the
    others' padded grid or tiny strided copies cost most (on bigger grids and thinner layers
    they are faster)."""
    c_out, c_in = W.shape[:2]
    return c_in >= NHWC_MIN_IN and c_out >= NHWC_MIN_OUT and out[0] * out[1] <= NHWC_MAX_POSITIONS


def per_sample_pays(W: np.ndarray) -> bool:
    """``c_in*kh*kw + 1 <= 2*c_out`` (stride 1): the first layer on grey images, where one im2col
    matrix per sample costs less to build than the flat kernels' two c_out-channel copies."""
    c_out, c_in, kh, kw = W.shape
    return c_in * kh * kw + 1 <= 2 * c_out


#: where Winograd pays, measured against the others one thread a side (benchmarks/bench_kernels.py,
#: benchmarks/README.md): 3x3 at stride 1 with at least this many channels in and out (thinner layers
#: give the products too little to do beside the transforms) and at least this many tiles in the batch
WINOGRAD_MIN_CHANNELS, WINOGRAD_MIN_TILES = 8, 16


def winograd_multiplications(m: int, out: tuple[int, int]) -> float:
    """Multiplications per output of F(m x m, 3 x 3) on an ``out`` = (Ho, Wo) grid, counting the tiles the
    grid is rounded up to: ``(m + 2)^2 ceil(Ho/m) ceil(Wo/m) / (Ho Wo)`` (im2col's: 9)."""
    return (m + 2) ** 2 * math.prod(winograd.tile_grid(m, out)) / (out[0] * out[1])


def winograd_pays(W: np.ndarray, stride: tuple[int, int], out: tuple[int, int], batch: int) -> str | None:
    """For a 3x3 stride-1 layer with at least 8 channels in and out: the variant with fewer
    multiplications per output (:func:`winograd_multiplications`; ``winograd4`` on a tie, its
    transforms do less work per output), if that is fewer than im2col's 9 and the batch holds at least
    16 of its tiles; else None. F(4x4) wins from 3x3 grids up, F(2x2) on grids of 2 rows or columns."""
    if not winograd.pays(W, stride) or min(W.shape[:2]) < WINOGRAD_MIN_CHANNELS:
        return None
    name, m = min((("winograd4", 4), ("winograd", 2)), key=lambda v: (winograd_multiplications(v[1], out), -v[1]))
    tiles = batch * math.prod(winograd.tile_grid(m, out))
    if winograd_multiplications(m, out) >= 9 or tiles < WINOGRAD_MIN_TILES:
        return None
    return name


def choose_kernel(W: np.ndarray, stride: tuple[int, int], out: tuple[int, int], fast: bool = True,
                  prefer: str | None = None, batch: int | None = None) -> str:
    """The kernel that runs, by one rule: ``prefer`` where it applies to the shape (``Conv2D.kernel``:
    a kernel asked for by name); else ``im2col`` when ``fast`` is False; else ``winograd4`` or
    ``winograd`` where :func:`winograd_pays` (for a ``batch`` of that many samples; without one, never);
    else ``nhwc`` where :func:`nhwc_pays`; else ``im2col`` for stride > 1; else (stride 1)
    ``per_sample`` where :func:`per_sample_pays`, and ``flat`` for the rest."""
    if prefer is not None:
        if prefer not in KERNELS:
            raise ValueError(f"Conv2D.kernel must be one of {sorted(KERNELS)} or None, got {prefer!r}")
        if applies(prefer, W, stride):
            return prefer
    if not fast:
        return "im2col"
    chosen = None if batch is None else winograd_pays(W, stride, out, batch)
    if chosen is not None:
        return chosen
    if nhwc_pays(W, out):
        return "nhwc"
    if tuple(stride) != (1, 1):
        return "im2col"
    if per_sample_pays(W):
        return "per_sample"
    return "flat"


#: ConvTranspose2D's own kernel (npae.nn.kernels.transpose), every stride
COL2IM = "col2im"


#: where ConvTranspose2D keeps its col2im kernel at stride 1, measured against the others one thread a side
#: (benchmarks/README.md): layers that narrow by more than this factor (c_in > 4 c_out; its matrix, kh kw c_out
#: rows, is then the smaller)
TRANSPOSE_NARROWING = 4


def choose_transpose_kernel(W: np.ndarray, stride: tuple[int, int], padding: int, x_shape: tuple,
                            prefer: str | None = None) -> str:
    """The kernel a ConvTranspose2D with ``W`` (c_in, c_out, kh, kw) runs for an input of ``x_shape``, by one
    rule: ``col2im`` (:mod:`.transpose`) for stride > 1 or ``padding > k - 1`` on either axis; else the layer is a
    convolution (:func:`.transpose.convolution_geometry`, its kernel ``Wc`` (c_out, c_in, kh, kw)) and runs
    ``prefer`` where that applies (``ConvTranspose2D.kernel``: ``"col2im"`` or a name of ``KERNELS``);
    else ``col2im`` where the layer narrows (``c_in > 4 c_out``); else ``winograd4`` or ``winograd`` where
    :func:`winograd_pays` for ``Wc``, that output and batch; else ``per_sample`` where :func:`per_sample_pays`
    for ``Wc`` (a thin input that widens); else ``flat`` for 3x3 kernels; else ``col2im``."""
    if prefer is not None and prefer != COL2IM and prefer not in KERNELS:
        raise ValueError(f"ConvTranspose2D.kernel must be one of {sorted([COL2IM, *KERNELS])} or None, got {prefer!r}")
    g = transpose.convolution_geometry(x_shape, W.shape[2:], padding)
    if prefer == COL2IM or tuple(stride) != (1, 1) or g is None:
        return COL2IM
    Wc = W.transpose(1, 0, 2, 3)  # the convolution's kernel, as far as the rules look (its shape)
    if prefer is not None and applies(prefer, Wc, (1, 1)):
        return prefer
    c_in, c_out = W.shape[:2]
    if c_in > TRANSPOSE_NARROWING * c_out:
        return COL2IM
    chosen = winograd_pays(Wc, (1, 1), g.out, x_shape[0])
    if chosen is not None:
        return chosen
    if per_sample_pays(Wc):
        return "per_sample"
    return "flat" if W.shape[2:] == (3, 3) else COL2IM


__all__ = ["choose_kernel", "choose_transpose_kernel", "COL2IM", "Geometry", "KERNELS", "KernelPair", "nhwc_pays",
           "per_sample_pays", "Saved", "Scratch"]
