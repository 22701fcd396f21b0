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
``(xi, nu)``: with ``U[xi, nu] = (G W[o, c] G^T)[xi, nu]`` as (c_out, c_in) and
``V[xi, nu] = (B^T d[c, tile] B)[xi, nu]`` as (c_in, tiles)::

    M[xi, nu] = U[xi, nu] @ V[xi, nu]             (c_out, tiles)
    y tile    = A^T M A                           per output channel and tile

F(2x2): 16 products per 4 outputs against im2col's 9 per output, 2.25x fewer multiplications;
F(4x4): 36 per 16, 4x fewer. The transforms are sums of whole slices times small constants.

Backward is the adjoint of the same linear maps (each transform's transpose), so the gradients
are exact up to rounding::

    dM[xi, nu] = (A dY A^T)[xi, nu]               the output gradient of each tile, m x m -> a x a
    dU[xi, nu] = dM[xi, nu] @ V[xi, nu]^T,        dW[o, c] = G^T dU[o, c] G
    dV[xi, nu] = U[xi, nu]^T @ dM[xi, nu],        dd = B dV B^T, added into the tile it came from
    db = sum of dy

Rounding: every result is a sum of terms that the same algorithm run on absolute values (of the
matrices, the data and the kernel) adds up to S; its error is within gamma(n) S, n the longest
chain of additions (c_in, plus the transforms'). tests/test_winograd.py computes S and holds the
kernels to it; F(4x4)'s larger entries (up to 8, and 1/6 inexact) make S, and so its float32
error, larger than F(2x2)'s.

Layout: channels last, so every slice the transforms add has a long contiguous last axis (a
tile is only 4 or 6 numbers wide: NumPy's loops over such short rows are many times slower).
The tiles start every m rows and columns, so the padded input is kept by its m x m parities,
``D[pr, pc][n, i, j, c] = xp[n, c, m i + pr, m j + pc]``: tile (ti, tj)'s row t, column u is
``D[t % m, u % m][:, ti + t // m, tj + u // m, :]``, and ``V[xi, nu]`` is (tiles, c_in), so the
products are ``M[xi, nu] = V[xi, nu] @ U[xi, nu]^T``, (tiles, c_out). Memory: ``V`` (a*a values per
m*m outputs: 4x the input for F(2x2), 2.25x for F(4x4)) is kept from forward to backward.
"""

from __future__ import annotations

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


def pays(W: np.ndarray, stride: tuple[int, int]) -> bool:
    """The shapes these kernels compute: a 3x3 kernel, stride 1."""
    return W.shape[2:] == (3, 3) and tuple(stride) == (1, 1)


def kernel_transform(W: np.ndarray, f: Transforms = F2) -> np.ndarray:
    """``U[xi, nu]^T = (G W[o, c] G^T)[xi, nu]`` as (a, a, c_in, c_out): the right factor of the products."""
    G = f.G.astype(W.dtype)
    return np.ascontiguousarray(np.einsum("xu,ocuv,yv->xyco", G, W, G))


def combine(coefficients: np.ndarray, parts: list, out: np.ndarray) -> np.ndarray:
    """``out = sum_j coefficients[j] * parts[j]`` over the nonzero coefficients, in place (a +-1 is
    an addition or subtraction, anything else one multiplication)."""
    first = True
    for c, part in zip(coefficients, parts):
        if c == 0:
            continue
        if first:
            if c == 1:
                np.copyto(out, part)
            else:
                np.multiply(part, out.dtype.type(c), out=out)
            first = False
        elif c == 1:
            out += part
        elif c == -1:
            out -= part
        else:
            out += out.dtype.type(c) * part
    if first:
        out.fill(0)
    return out


def _bt4(p: list, out: list, tmp: list) -> None:
    """F(4x4)'s ``B^T`` applied to 6 slices, with its common subexpressions (3 passes per result, where
    :func:`combine` would take 4 to 6): ``t1 = d4 - 4 d2``, ``t2 = d3 - 4 d1`` give rows 1 and 2 as
    ``t1 +- t2``; ``t3 = d4 - d2``, ``t4 = 2 (d3 - d1)`` rows 3 and 4 as ``t3 +- t4``."""
    t0, t1 = tmp[:2]
    np.multiply(p[0], 4, out=out[0])
    np.multiply(p[2], 5, out=t0)
    out[0] -= t0
    out[0] += p[4]
    np.multiply(p[1], 4, out=out[5])
    np.multiply(p[3], 5, out=t0)
    out[5] -= t0
    out[5] += p[5]
    np.multiply(p[2], 4, out=t0)
    np.subtract(p[4], t0, out=t0)
    np.multiply(p[1], 4, out=t1)
    np.subtract(p[3], t1, out=t1)
    np.add(t0, t1, out=out[1])
    np.subtract(t0, t1, out=out[2])
    np.subtract(p[4], p[2], out=t0)
    np.subtract(p[3], p[1], out=t1)
    t1 *= 2
    np.add(t0, t1, out=out[3])
    np.subtract(t0, t1, out=out[4])


def _at4(p: list, out: list, tmp: list) -> None:
    """F(4x4)'s ``A^T`` applied to 6 slices: with ``s1, d1 = M1 +- M2`` and ``s2, d2 = M3 +- M4``,
    ``y0 = M0 + s1 + s2``, ``y1 = d1 + 2 d2``, ``y2 = s1 + 4 s2``, ``y3 = d1 + 8 d2 + M5``."""
    s1, d1, s2, d2 = tmp
    np.add(p[1], p[2], out=s1)
    np.subtract(p[1], p[2], out=d1)
    np.add(p[3], p[4], out=s2)
    np.subtract(p[3], p[4], out=d2)
    np.add(p[0], s1, out=out[0])
    out[0] += s2
    np.add(d1, d2, out=out[1])
    out[1] += d2
    np.multiply(s2, 4, out=out[2])
    out[2] += s1
    np.multiply(d2, 8, out=out[3])
    out[3] += d1
    out[3] += p[5]


def _a4(p: list, out: list, tmp: list) -> None:
    """F(4x4)'s ``A`` (the transpose of A^T) applied to 4 slices: ``y0``, ``e +- o`` with ``e = y0 + y2``,
    ``o = y1 + y3``, ``e2 +- o2`` with ``e2 = y0 + 4 y2``, ``o2 = 2 y1 + 8 y3``, and ``y3``."""
    e, o = tmp[:2]
    np.copyto(out[0], p[0])
    np.copyto(out[5], p[3])
    np.add(p[0], p[2], out=e)
    np.add(p[1], p[3], out=o)
    np.add(e, o, out=out[1])
    np.subtract(e, o, out=out[2])
    np.multiply(p[2], 4, out=e)
    e += p[0]
    np.multiply(p[3], 4, out=o)
    o += p[1]
    o *= 2
    np.add(e, o, out=out[3])
    np.subtract(e, o, out=out[4])


def _b4(p: list, out: list, tmp: list) -> None:
    """F(4x4)'s ``B`` (the transpose of B^T) applied to 6 slices: with ``a, c = v1 -+ v2`` and
    ``b, d = v3 -+ v4``: ``4 v0``, ``-4 a - 2 b + 4 v5``, ``-5 v0 - 4 c - d``, ``a + 2 b - 5 v5``,
    ``v0 + c + d``, ``v5``."""
    a, b, c, d = tmp
    np.subtract(p[1], p[2], out=a)
    np.subtract(p[3], p[4], out=b)
    np.add(p[1], p[2], out=c)
    np.add(p[3], p[4], out=d)
    np.multiply(p[0], 4, out=out[0])
    np.subtract(p[5], a, out=out[1])
    out[1] *= 4
    out[1] -= b
    out[1] -= b
    np.multiply(c, 4, out=out[2])
    out[2] += d
    np.multiply(p[0], 5, out=out[4])  # out[4] as a temporary: -5 v0 - 4 c - d
    np.add(out[2], out[4], out=out[2])
    np.negative(out[2], out=out[2])
    np.add(p[0], c, out=out[4])
    out[4] += d
    np.multiply(p[5], 5, out=out[3])
    np.subtract(a, out[3], out=out[3])
    out[3] += b
    out[3] += b
    np.copyto(out[5], p[5])


def _tiles(g: Geometry, m: int) -> tuple[int, int]:
    return -(-g.out[0] // m), -(-g.out[1] // m)


def _by_parity(src: np.ndarray, m: int, offsets: tuple[int, int], into: np.ndarray) -> None:
    """``into[pr, pc][n, i, j, :] = src[n, m i + pr - top, m j + pc - left, :]`` where that lies in src
    (``offsets`` = (top, left): where src starts on the grid; ``into`` holds zeros elsewhere)."""
    top, left = offsets
    for pr in range(m):
        r0 = (pr - top) % m  # the first row of src on this parity, at grid row top + r0
        for pc in range(m):
            c0 = (pc - left) % m
            block = src[:, r0::m, c0::m]
            i0, j0 = (top + r0) // m, (left + c0) // m
            into[pr, pc, :, i0:i0 + block.shape[1], j0:j0 + block.shape[2]] = block


def _from_parity(dD: np.ndarray, m: int, offsets: tuple[int, int], dst: np.ndarray) -> None:
    """The inverse of :func:`_by_parity`: ``dst`` (N, H, W, C) from the parities, the padding dropped."""
    top, left = offsets
    for pr in range(m):
        r0 = (pr - top) % m
        for pc in range(m):
            c0 = (pc - left) % m
            target = dst[:, r0::m, c0::m]
            i0, j0 = (top + r0) // m, (left + c0) // m
            target[...] = dD[pr, pc, :, i0:i0 + target.shape[1], j0:j0 + target.shape[2]]


def _rows_then_columns(parts_of, groups: int, a_out: int, apply, shape_rows: tuple, shape: tuple, dtype,
                       scratch: Scratch, key: str, out: np.ndarray) -> np.ndarray:
    """``out[xi, nu] = apply_cols(apply_rows(parts))``: the separable 2-D transform of every tile, rows
    first (for each of ``groups`` column groups) into a scratch array, then columns into ``out``."""
    rows, cols = parts_of
    T = scratch.get(f"{key}_T", (a_out, groups) + shape_rows, dtype)
    for j in range(groups):  # the transform of each column group's rows
        apply(rows(j), [T[xi, j] for xi in range(a_out)], scratch, f"{key}_r", shape_rows, dtype)
    for xi in range(a_out):
        apply(cols(T[xi]), list(out[xi]), scratch, f"{key}_c", shape, dtype)
    return out


def _apply(matrix: np.ndarray, special):
    """A transform applied to slices: ``special`` (the hand-factored F(4x4) one) or :func:`combine`, row by row."""
    def apply(parts, outs, scratch, key, shape, dtype):
        if special is not None:
            special(parts, outs, [scratch.get(f"{key}{i}", shape, dtype) for i in range(4)])
        else:
            for k, o in enumerate(outs):
                combine(matrix[k], parts, o)
    return apply


def _input_transform(x: np.ndarray, g: Geometry, f: Transforms, scratch: Scratch) -> np.ndarray:
    """``V`` (a, a, N*th*tw, c_in): ``B^T d B`` of every tile of the padded input, rows then columns."""
    m, a = f.m, f.BT.shape[0]
    N, C = x.shape[:2]
    th, tw = _tiles(g, m)
    xh = scratch.get(f"wino{m}_xh", (N,) + x.shape[2:] + (C,), x.dtype)
    np.copyto(xh, x.transpose(0, 2, 3, 1))  # channels last: one pass
    D = scratch.get(f"wino{m}_D", (m, m, N, th + 1, tw + 1, C), x.dtype)  # zeros: the scratch is fresh
    _by_parity(xh, m, (g.pads[0], g.pads[2]), D)
    V = np.empty((a, a, N, th, tw, C), x.dtype)
    rows = lambda pc: [D[t % m, pc, :, t // m:t // m + th] for t in range(a)]  # noqa: E731
    cols = lambda T: [T[u % m, :, :, u // m:u // m + tw] for u in range(a)]  # noqa: E731
    _rows_then_columns((rows, cols), m, a, _apply(f.BT, _bt4 if f is F4 else None), (N, th, tw + 1, C),
                       (N, th, tw, C), x.dtype, scratch, f"wino{m}_in", V)
    return V.reshape(a, a, N * th * tw, C)


def _output_transform(M: np.ndarray, N: int, g: Geometry, f: Transforms, scratch: Scratch) -> np.ndarray:
    """y (N, c_out, Ho, Wo), a view of the channels-last result, from ``M`` (a, a, N*th*tw, c_out):
    ``A^T M A`` per tile (the caller adds the bias into a C-contiguous array)."""
    m, a = f.m, f.BT.shape[0]
    th, tw = _tiles(g, m)
    K = M.shape[-1]
    M = M.reshape(a, a, N, th, tw, K)
    Yh = scratch.get(f"wino{m}_Yh", (N, th, m, tw, m, K), M.dtype)  # y channels last, by tile: (n, ti, i, tj, j, o)
    rows = lambda j: [M[xi, j] for xi in range(a)]  # noqa: E731  (rows of tile position (xi, j))
    R = scratch.get(f"wino{m}_R", (m, a, N, th, tw, K), M.dtype)
    apply = _apply(f.AT, _at4 if f is F4 else None)
    for j in range(a):
        apply(rows(j), [R[i, j] for i in range(m)], scratch, f"wino{m}_or", (N, th, tw, K), M.dtype)
    for i in range(m):
        apply([R[i, nu] for nu in range(a)], [Yh[:, :, i, :, j] for j in range(m)], scratch, f"wino{m}_oc",
              (N, th, tw, K), M.dtype)
    return Yh.reshape(N, m * th, m * tw, K)[:, : g.out[0], : g.out[1]].transpose(0, 3, 1, 2)


def _grad_transform(dy: np.ndarray, g: Geometry, f: Transforms, scratch: Scratch) -> np.ndarray:
    """``dM = A dY A^T`` (a, a, N*th*tw, c_out): each m x m tile of dy (zero beyond the output) to a x a."""
    m, a = f.m, f.BT.shape[0]
    N, K = dy.shape[:2]
    th, tw = _tiles(g, m)
    Yh = scratch.get(f"wino{m}_dYh", (N, m * th, m * tw, K), dy.dtype)  # zeros beyond the output
    np.copyto(Yh[:, : g.out[0], : g.out[1]], dy.transpose(0, 2, 3, 1))
    tiles = Yh.reshape(N, th, m, tw, m, K)
    dM = np.empty((a, a, N, th, tw, K), dy.dtype)
    rows = lambda j: [tiles[:, :, i, :, j] for i in range(m)]  # noqa: E731
    cols = lambda T: [T[j] for j in range(m)]  # noqa: E731
    _rows_then_columns((rows, cols), m, a, _apply(f.AT.T, _a4 if f is F4 else None), (N, th, tw, K), (N, th, tw, K),
                       dy.dtype, scratch, f"wino{m}_g", dM)
    return dM.reshape(a, a, N * th * tw, K)


def _input_grad(dV: np.ndarray, g: Geometry, f: Transforms, scratch: Scratch) -> np.ndarray:
    """dx (N, c_in, H, W) from ``dV`` (a, a, N*th*tw, c_in): ``B dV B^T`` per tile, each tile added back
    where it was read (neighbouring tiles overlap by two rows and columns), by parity as in forward."""
    m, a = f.m, f.BT.shape[0]
    N, C, H, W = g.x_shape
    th, tw = _tiles(g, m)
    dV = dV.reshape(a, a, N, th, tw, C)
    apply = _apply(f.BT.T, _b4 if f is F4 else None)
    E = scratch.get(f"wino{m}_E", (a, a, N, th, tw, C), dV.dtype)
    for xi in range(a):  # columns: E[xi, u] = sum_nu B^T[nu, u] dV[xi, nu]
        apply(list(dV[xi]), list(E[xi]), scratch, f"wino{m}_ec", (N, th, tw, C), dV.dtype)
    dD = scratch.get(f"wino{m}_dD", (m, m, N, th + 1, tw + 1, C), dV.dtype)  # zeros, added into
    rows = scratch.get(f"wino{m}_rows", (a, N, th, tw, C), dV.dtype)
    for u in range(a):  # rows: dd[t, u] = sum_xi B^T[xi, t] E[xi, u], added at the tile's place
        apply([E[xi, u] for xi in range(a)], list(rows), scratch, f"wino{m}_er", (N, th, tw, C), dV.dtype)
        for t in range(a):
            dD[t % m, u % m, :, t // m:t // m + th, u // m:u // m + tw] += rows[t]
    dxh = scratch.get(f"wino{m}_dxh", (N, H, W, C), dV.dtype)
    _from_parity(dD, m, (g.pads[0], g.pads[2]), dxh)
    return np.ascontiguousarray(dxh.transpose(0, 3, 1, 2))


def _forward(name: str):
    def forward(x: np.ndarray, W: np.ndarray, b: np.ndarray, g: Geometry,
                scratch: Scratch) -> tuple[np.ndarray, Saved]:
        """y by F(m x m, 3 x 3); saves ``V``, the transformed input tiles."""
        f = VARIANTS[name]
        a = f.BT.shape[0]
        scratch = Scratch()  # the transforms' buffers go when the call returns (kept by each layer, they
        # would add up across a model's layers to twice its activations); only V is kept, for backward.
        # The helpers below rely on it being fresh: its arrays start as zeros, where they need zeros
        V = _input_transform(x, g, f, scratch)
        Ut = kernel_transform(W, f)
        M = np.matmul(V, Ut.reshape(a, a, *Ut.shape[2:]))  # a*a products (tiles, c_in) @ (c_in, c_out)
        yv = _output_transform(M, x.shape[0], g, f, scratch)
        y = np.empty(yv.shape, x.dtype)
        np.add(yv, b[:, None, None], out=y)  # the bias, and NCHW, in one pass
        return y, Saved(name, g, cols=V)

    forward.__name__ = forward.__qualname__ = f"{name}_forward"
    return forward


def _backward(name: str):
    def backward(dy: np.ndarray, W: np.ndarray, saved: Saved, scratch: Scratch,
                 need_dx: bool = True) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
        """``(dx, dW, db)``: the adjoints of the forward's transforms, around the same products."""
        f = VARIANTS[name]
        g, V = saved.geometry, saved.cols
        scratch = Scratch()  # as in forward: nothing but V outlives the call
        dM = _grad_transform(dy, g, f, scratch)
        dUt = np.matmul(V.transpose(0, 1, 3, 2), dM)  # (a, a, c_in, c_out): (c_in, tiles) @ (tiles, c_out)
        G = f.G.astype(W.dtype)
        dW = np.einsum("xu,xyco,yv->ocuv", G, dUt, G)
        db = dy.sum(axis=(0, 2, 3))
        if not need_dx:
            return None, dW, db
        Ut = kernel_transform(W, f)
        dV = np.matmul(dM, Ut.transpose(0, 1, 3, 2))  # (tiles, c_out) @ (c_out, c_in)
        return _input_grad(dV, g, f, scratch), dW, db

    backward.__name__ = backward.__qualname__ = f"{name}_backward"
    return backward


forward, backward = _forward("winograd"), _backward("winograd")
forward4, backward4 = _forward("winograd4"), _backward("winograd4")
