"""The ``winograd`` kernels (3x3, stride 1): Winograd's minimal filtering, fewer multiplications.

Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks" (2016). In F(m x m, 3 x 3)
an m x m block of outputs of a 3x3 correlation reads an a x a tile ``d`` (a = m + 2) of the
padded input; with the 3x3 kernel ``g``::

    Y = A^T [ (G g G^T) * (B^T d B) ] A          (* elementwise, a x a)

F(2x2, 3x3) (``winograd``; 4x4 tiles every 2 rows and columns)::

    B^T = [[1, 0, -1,  0],     G = [[1,    0,   0  ],     A^T = [[1, 1,  1,  0],
           [0, 1,  1,  0],          [1/2,  1/2, 1/2],            [0, 1, -1, -1]]
           [0, -1, 1,  0],          [1/2, -1/2, 1/2],
           [0, 1,  0, -1]]          [0,    0,   1  ]]

F(4x4, 3x3) (``winograd4``; 6x6 tiles every 4): the matrices of ``F4`` below (Lavin and Gray's).

Over channels the elementwise product becomes a*a matrix products, one per tile position
``(xi, nu)``: with ``U[xi, nu] = (G W[o, c] G^T)[xi, nu]`` as (c_in, c_out) and
``V[xi, nu] = (B^T d[tile, c] B)[xi, nu]`` as (tiles, c_in)::

    M[xi, nu] = V[xi, nu] @ U[xi, nu]             (tiles, c_out)
    y tile    = A^T M A                           per tile and output channel

F(2x2): 16 products per 4 outputs against im2col's 9 per output, 2.25x fewer multiplications;
F(4x4): 36 per 16, 4x fewer.

Backward is the adjoint of the same linear maps (each transform's transpose), so the gradients
are exact up to rounding::

    dM[xi, nu] = (A dY A^T)[xi, nu]               the output gradient of each tile, m x m -> a x a
    dU[xi, nu] = V[xi, nu]^T @ dM[xi, nu],        dW[o, c] = G^T dU[c, o] G
    dV[xi, nu] = dM[xi, nu] @ U[xi, nu]^T,        dd = B dV B^T, added into the tile it came from
    db = sum of dy

How it is computed. Every transform is one :func:`sandwich`, ``L X L^T`` on the two leading
axes of an array of all the tiles: two matrix products (rows, then columns), so BLAS does the
additions too. The batch goes through in blocks of samples small enough that a block's arrays
stay in the cache between the steps (``BLOCK_BYTES``; as few blocks as fit, as even as can be);
only ``V`` (a*a values per m*m outputs: 4x the input for F(2x2), 2.25x for F(4x4)) is kept from
forward to backward. Channels are last
inside a block (``V[xi, nu]`` is (tiles, c_in)), so the a*a products are plain matrix products;
the input is read into a zero-padded channels-last grid, whose tiles are one strided view.

Rounding: every result is a sum of terms that the same algorithm run on absolute values (of the
matrices, the data and the kernel) adds up to S; its error is within gamma(n) S, n the longest
chain of additions (c_in, plus the transforms': a dot product of a terms per side, 3 for G).
tests/test_winograd.py computes S and holds the kernels to it; F(4x4)'s larger entries (up to 8,
and 1/6 inexact) make S, and so its float32 error, larger than F(2x2)'s.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .base import Geometry, Saved, Scratch


class Transforms(NamedTuple):
    m: int            # outputs per tile side
    BT: np.ndarray    # (a, a): the data's transform
    G: np.ndarray     # (a, 3): the kernel's
    AT: np.ndarray    # (m, a): the output's


F2 = Transforms(2, np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=np.float64),
                np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]]),
                np.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=np.float64))
F4 = Transforms(4, np.array([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0], [0, -2, -1, 2, 1, 0],
                             [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]], dtype=np.float64),
                np.array([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6], [1 / 24, 1 / 12, 1 / 6],
                          [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]]),
                np.array([[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]],
                         dtype=np.float64))
VARIANTS = {"winograd": F2, "winograd4": F4}

#: the size of a block's largest array (a*a values per tile and channel): samples go through in
#: blocks this small so that each step reads what the one before wrote from the cache, not from
#: memory (benchmarks/README.md: 1 MiB was the best of 0.25 to 2 MiB, at L2 = 1 MiB per core)
BLOCK_BYTES = 1 << 20


def pays(W: np.ndarray, stride: tuple[int, int]) -> bool:
    """The shapes these kernels compute: a 3x3 kernel, stride 1."""
    return W.shape[2:] == (3, 3) and tuple(stride) == (1, 1)


def sandwich(L: np.ndarray, X: np.ndarray, out: np.ndarray | None = None,
             tmp: np.ndarray | None = None) -> np.ndarray:
    """``out[p, q, ...] = sum_{r, s} L[p, r] X[r, s, ...] L[q, s]``: ``L X L^T`` on the two leading axes
    of X (r, s, ...), for every entry of the others at once. Two products: ``T = L @ X`` over r
    (``tmp``, (p, s, ...)), then ``L @ T[p]`` over s for each p. X's trailing axes must be contiguous."""
    r, s = X.shape[:2]
    p = L.shape[0]
    T = np.matmul(L, X.reshape(r, -1), out=None if tmp is None else tmp.reshape(p, -1))
    out3 = None if out is None else out.reshape(p, p, -1)
    result = np.matmul(L, T.reshape(p, s, -1), out=out3)
    return result.reshape((p, p) + X.shape[2:]) if out is None else out


def kernel_transform(W: np.ndarray, f: Transforms = F2) -> np.ndarray:
    """``U`` (a*a, c_in, c_out): ``U[xi*a + nu, c, o] = (G W[o, c] G^T)[xi, nu]``, the right factors of the products."""
    a = f.G.shape[0]
    Wt = np.ascontiguousarray(W.transpose(2, 3, 1, 0))  # (u, v, c, o)
    return sandwich(f.G.astype(W.dtype), Wt).reshape(a * a, W.shape[1], W.shape[0])


def kernel_gradient(dU: np.ndarray, f: Transforms = F2) -> np.ndarray:
    """dW (c_out, c_in, 3, 3) from ``dU`` (a*a, c_in, c_out): ``dW[o, c] = G^T dU[c, o] G``, the adjoint of
    :func:`kernel_transform`."""
    a = f.G.shape[0]
    dWt = sandwich(f.G.T.astype(dU.dtype), dU.reshape(a, a, -1))  # (u, v, c_in*c_out)
    return np.ascontiguousarray(dWt.reshape(3, 3, *dU.shape[1:]).transpose(3, 2, 0, 1))


def tile_grid(m: int, out: tuple[int, int]) -> tuple[int, int]:
    """(th, tw): the m x m output blocks (tiles) that cover an output of ``out`` = (Ho, Wo), rounded up."""
    return -(-out[0] // m), -(-out[1] // m)


class _Plan(NamedTuple):
    """The tiling of one call: ``th x tw`` tiles per sample, in blocks of ``nb`` samples."""

    f: Transforms
    m: int
    a: int
    th: int
    tw: int
    nb: int


def _plan(f: Transforms, g: Geometry, channels: int, itemsize: int) -> _Plan:
    m, a = f.m, f.m + 2
    th, tw = tile_grid(m, g.out)
    per_sample = a * a * th * tw * channels * itemsize  # the biggest array of a block, per sample
    n, most = g.x_shape[0], max(1, BLOCK_BYTES // per_sample)
    blocks = -(-n // most)
    return _Plan(f, m, a, th, tw, -(-n // blocks))  # as few blocks as fit, as even as can be (64 = 32 + 32, not 56 + 8)


def _take(scratch: Scratch, key: str, shape: tuple, k: int, nb: int, dtype) -> np.ndarray:
    """A C-contiguous array of ``shape`` (which holds the block's ``k`` samples) at the front of the
    scratch buffer ``key``, sized for ``nb`` samples: a smaller last block reuses the same memory."""
    size = math.prod(shape)
    return scratch.get(key, (size // k * nb,), dtype)[:size].reshape(shape)


def _tiles_of(x: np.ndarray, g: Geometry, p: _Plan, scratch: Scratch) -> np.ndarray:
    """d (a, a, k, th, tw, c_in): ``d[t, u, n, ti, tj] = xp[n, :, m ti + t, m tj + u]``, the tiles of the
    zero-padded input of a block ``x`` (k, c_in, H, W), read through a channels-last grid."""
    k, C, H, Wd = x.shape
    (pt, _, pl, _), m, a = g.pads, p.m, p.a
    grid = _take(scratch, f"wino{m}_grid", (k, m * (p.th + 1), m * (p.tw + 1), C), k, p.nb, x.dtype)
    grid[:, :pt] = 0  # the padding (and the grid beyond it): zero, as the layer may have seen other sizes
    grid[:, pt + H:] = 0
    grid[:, pt:pt + H, :pl] = 0
    grid[:, pt:pt + H, pl + Wd:] = 0
    grid[:, pt:pt + H, pl:pl + Wd] = x.transpose(0, 2, 3, 1)
    sn, sr, sc, sC = grid.strides
    view = np.lib.stride_tricks.as_strided(grid, (a, a, k, p.th, p.tw, C), (sr, sc, sn, m * sr, m * sc, sC),
                                           writeable=False)
    d = _take(scratch, f"wino{m}_d", view.shape, k, p.nb, x.dtype)
    np.copyto(d, view)
    return d


def _tile_major(src: np.ndarray, out: tuple[int, int], p: _Plan, scratch: Scratch, key: str) -> np.ndarray:
    """(m, m, k, th, tw, K) from ``src`` (k, K, Ho, Wo): each m x m block of outputs as a tile, zero beyond."""
    k, K = src.shape[:2]
    m = p.m
    shape6 = (k, K, p.th, m, p.tw, m)
    if out == (m * p.th, m * p.tw):
        blocks = src.reshape(shape6)
    else:
        padded = _take(scratch, f"{key}_pad", (k, K, m * p.th, m * p.tw), k, p.nb, src.dtype)
        padded[:, :, out[0]:] = 0
        padded[:, :, :out[0], out[1]:] = 0
        padded[:, :, :out[0], :out[1]] = src
        blocks = padded.reshape(shape6)
    tiles = _take(scratch, key, (m, m, k, p.th, p.tw, K), k, p.nb, src.dtype)
    np.copyto(tiles, blocks.transpose(3, 5, 0, 2, 4, 1))
    return tiles


def _forward(name: str):
    def forward(x: np.ndarray, W: np.ndarray, b: np.ndarray, g: Geometry,
                scratch: Scratch) -> tuple[np.ndarray, Saved]:
        """y by F(m x m, 3 x 3), a block of samples at a time; saves ``V``, the transformed input tiles."""
        N, C = x.shape[:2]
        K = W.shape[0]
        p = _plan(VARIANTS[name], g, max(C, K), x.dtype.itemsize)
        m, a, tps, Ho, Wo = p.m, p.a, p.th * p.tw, *g.out
        BT, AT = p.f.BT.astype(x.dtype), p.f.AT.astype(x.dtype)
        U = kernel_transform(W, p.f)
        V = np.empty((a, a, N * tps, C), x.dtype)  # kept for backward
        y = np.empty((N, K, Ho, Wo), x.dtype)
        for n0 in range(0, N, p.nb):
            k = min(p.nb, N - n0)
            d = _tiles_of(x[n0:n0 + k], g, p, scratch)
            Vk = V[:, :, n0 * tps:(n0 + k) * tps]
            sandwich(BT, d, out=Vk, tmp=_take(scratch, f"wino{m}_t", d.shape, k, p.nb, x.dtype))  # B^T d B
            M = _take(scratch, f"wino{m}_M", (a * a, k * tps, K), k, p.nb, x.dtype)
            np.matmul(Vk.reshape(a * a, k * tps, C), U, out=M)  # a*a products (tiles, c_in) @ (c_in, c_out)
            Y = sandwich(AT, M.reshape(a, a, -1), out=_take(scratch, f"wino{m}_Y", (m, m, k, p.th, p.tw, K), k,
                                                            p.nb, x.dtype),
                         tmp=_take(scratch, f"wino{m}_u", (m, a, k * tps * K), k, p.nb, x.dtype))  # A^T M A
            blocks = Y.transpose(2, 5, 3, 0, 4, 1)  # (n, o, ti, i, tj, j)
            if (Ho, Wo) == (m * p.th, m * p.tw):
                np.add(blocks, b[:, None, None, None, None], out=y[n0:n0 + k].reshape(blocks.shape))
            else:
                full = _take(scratch, f"wino{m}_yfull", (k, K, m * p.th, m * p.tw), k, p.nb, x.dtype)
                np.copyto(full.reshape(blocks.shape), blocks)
                np.add(full[:, :, :Ho, :Wo], b[:, None, None], out=y[n0:n0 + k])
        return y, Saved(name, g, cols=V)

    forward.__name__ = forward.__qualname__ = f"{name}_forward"
    return forward


def _add_back(dd: np.ndarray, p: _Plan, scratch: Scratch) -> np.ndarray:
    """The padded input's gradient (k, m (th+1), m (tw+1), c_in) from the tiles' ``dd`` (a, a, k, th, tw, c_in):
    each tile added where it was read. On the grid of m x m blocks, tile (ti, tj)'s row t is block row
    ti + t // m, row t % m: rows and columns below m land in the tile's own block, the last two
    (a - m = 2) in the next one, so four strided additions place them all."""
    m, a, th, tw = p.m, p.a, p.th, p.tw
    k, C = dd.shape[2], dd.shape[-1]
    grid = _take(scratch, f"wino{m}_dgrid", (k, th + 1, m, tw + 1, m, C), k, p.nb, dd.dtype)
    tiles = dd.transpose(2, 3, 0, 4, 1, 5)  # (n, ti, t, tj, u, c)
    grid[:, :th, :, :tw] = tiles[:, :, :m, :, :m]
    grid[:, th] = 0
    grid[:, :th, :, tw] = 0
    grid[:, 1:, :a - m, :tw] += tiles[:, :, m:, :, :m]
    grid[:, :th, :, 1:, :a - m] += tiles[:, :, :m, :, m:]
    grid[:, 1:, :a - m, 1:, :a - m] += tiles[:, :, m:, :, m:]
    return grid.reshape(k, m * (th + 1), m * (tw + 1), C)


def _backward(name: str):
    def backward(dy: np.ndarray, W: np.ndarray, saved: Saved, scratch: Scratch,
                 need_dx: bool = True) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
        """``(dx, dW, db)``: the adjoints of the forward's transforms, around the same products, a block at a time."""
        g, V = saved.geometry, saved.cols
        N, C, H, Wd = g.x_shape
        K = W.shape[0]
        p = _plan(VARIANTS[name], g, max(C, K), dy.dtype.itemsize)
        m, a, tps, (pt, _, pl, _) = p.m, p.a, p.th * p.tw, g.pads
        A, B = p.f.AT.T.astype(dy.dtype), p.f.BT.T.astype(dy.dtype)
        U = kernel_transform(W, p.f) if need_dx else None
        dU = np.empty((a * a, C, K), dy.dtype)
        dx = np.empty(g.x_shape, dy.dtype) if need_dx else None
        for n0 in range(0, N, p.nb):
            k = min(p.nb, N - n0)
            dYt = _tile_major(dy[n0:n0 + k], g.out, p, scratch, f"wino{m}_dY")
            dM = sandwich(A, dYt, out=_take(scratch, f"wino{m}_dM", (a, a, k * tps * K), k, p.nb, dy.dtype),
                          tmp=_take(scratch, f"wino{m}_u", (a, m, k * tps * K), k, p.nb, dy.dtype))  # A dY A^T
            dM = dM.reshape(a * a, k * tps, K)
            Vk = V[:, :, n0 * tps:(n0 + k) * tps].reshape(a * a, k * tps, C)
            if n0 == 0:
                np.matmul(Vk.transpose(0, 2, 1), dM, out=dU)  # (c_in, tiles) @ (tiles, c_out)
            else:
                dU += np.matmul(Vk.transpose(0, 2, 1), dM, out=_take(scratch, f"wino{m}_dU", dU.shape, 1, 1, dy.dtype))
            if need_dx:
                dV = _take(scratch, f"wino{m}_dV", (a, a, k * tps * C), k, p.nb, dy.dtype)
                np.matmul(dM, U.transpose(0, 2, 1), out=dV.reshape(a * a, k * tps, C))  # (tiles, c_out) @ (c_out, c_in)
                dd = sandwich(B, dV, out=_take(scratch, f"wino{m}_dd", (a, a, k, p.th, p.tw, C), k, p.nb, dy.dtype),
                              tmp=_take(scratch, f"wino{m}_t", dV.shape, k, p.nb, dy.dtype))  # B dV B^T
                grid = _add_back(dd, p, scratch)
                dx[n0:n0 + k] = grid[:, pt:pt + H, pl:pl + Wd].transpose(0, 3, 1, 2)
        return dx, kernel_gradient(dU, p.f), dy.sum(axis=(0, 2, 3))

    backward.__name__ = backward.__qualname__ = f"{name}_backward"
    return backward


forward, backward = _forward("winograd"), _backward("winograd")
forward4, backward4 = _forward("winograd4"), _backward("winograd4")
