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

Layout: the tiles start every m rows and columns, so the padded input is kept by its m x m
parities, ``D[pr, pc][c, n, i, j] = xp[n, c, m i + pr, m j + pc]``: tile (ti, tj)'s row t, column
u is ``D[t % m, u % m][..., ti + t // m, tj + u // m]``, and every transform adds slices whose
last axis is contiguous. Memory: ``V`` (a*a values per m*m outputs: 4x the input for F(2x2),
2.25x for F(4x4)) is kept from forward to backward.
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
    """``U[xi, nu] = G W[o, c] G^T`` as (a, a, c_out, c_in)."""
    G = f.G.astype(W.dtype)
    return np.ascontiguousarray(np.einsum("xu,ocuv,yv->xyoc", G, W, G))


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


def _tiles(g: Geometry, m: int) -> tuple[int, int]:
    return -(-g.out[0] // m), -(-g.out[1] // m)


def _by_parity(src: np.ndarray, m: int, offsets: tuple[int, int], into: np.ndarray) -> None:
    """``into[pr, pc][..., i, j] = src[..., m i + pr - top, m j + pc - left]`` where that lies in src
    (``offsets`` = (top, left): where src starts on the grid; ``into`` holds zeros elsewhere)."""
    top, left = offsets
    for pr in range(m):
        r0 = (pr - top) % m  # the first row of src on this parity, at grid row top + r0
        rows = src[..., r0::m, :]
        for pc in range(m):
            c0 = (pc - left) % m
            block = rows[..., c0::m]
            i0, j0 = (top + r0) // m, (left + c0) // m
            into[pr, pc, ..., i0:i0 + block.shape[-2], j0:j0 + block.shape[-1]] = block


def _input_transform(x: np.ndarray, g: Geometry, f: Transforms, scratch: Scratch) -> np.ndarray:
    """``V`` (a, a, c_in, N*th*tw): ``B^T d B`` of every tile of the padded input, rows then columns."""
    m, a = f.m, f.BT.shape[0]
    N, C = x.shape[:2]
    th, tw = _tiles(g, m)
    D = scratch.get(f"wino{m}_D", (m, m, C, N, th + 1, tw + 1), x.dtype)
    D.fill(0)
    _by_parity(x.transpose(1, 0, 2, 3), m, (g.pads[0], g.pads[2]), D)
    T = scratch.get(f"wino{m}_T", (a, m, C, N, th, tw + 1), x.dtype)
    for pc in range(m):  # rows: T[xi] = sum_t B^T[xi, t] (tile row t)
        rows = [D[t % m, pc, :, :, t // m:t // m + th] for t in range(a)]
        for xi in range(a):
            combine(f.BT[xi], rows, T[xi, pc])
    V = np.empty((a, a, C, N, th, tw), x.dtype)
    for xi in range(a):  # columns alike
        cols = [T[xi, u % m, ..., u // m:u // m + tw] for u in range(a)]
        for nu in range(a):
            combine(f.BT[nu], cols, V[xi, nu])
    return V.reshape(a, a, C, N * th * tw)


def _output_transform(M: np.ndarray, N: int, g: Geometry, f: Transforms, scratch: Scratch) -> np.ndarray:
    """y (N, c_out, Ho, Wo) from ``M`` (a, a, c_out, N*th*tw): ``A^T M A`` per tile, tiles side by side."""
    m, a = f.m, f.BT.shape[0]
    th, tw = _tiles(g, m)
    K = M.shape[2]
    M = M.reshape(a, a, K, N, th, tw)
    R = scratch.get(f"wino{m}_R", (m, a, K, N, th, tw), M.dtype)
    for i in range(m):  # rows of A^T M
        combine(f.AT[i], list(M), R[i])
    Y = np.empty((N, K, th, m, tw, m), M.dtype)  # y by tile: (n, o, ti, i, tj, j)
    Yt = Y.transpose(3, 5, 1, 0, 2, 4)  # (i, j, o, n, ti, tj)
    for i in range(m):
        for j in range(m):
            combine(f.AT[j], list(R[i]), Yt[i, j])
    return Y.reshape(N, K, m * th, m * tw)[:, :, : g.out[0], : g.out[1]]


def _grad_transform(dy: np.ndarray, g: Geometry, f: Transforms, scratch: Scratch) -> np.ndarray:
    """``dM = A dY A^T`` (a, a, c_out, N*th*tw): each m x m tile of dy (zero beyond the output) to a x a."""
    m, a = f.m, f.BT.shape[0]
    N, K = dy.shape[:2]
    th, tw = _tiles(g, m)
    Yt = scratch.get(f"wino{m}_dY", (m, m, K, N, th, tw), dy.dtype)  # dy by tile: (i, j, o, n, ti, tj)
    if (m * th, m * tw) != tuple(g.out):
        Yt.fill(0)
    dyt = dy.transpose(1, 0, 2, 3)
    for i in range(m):
        for j in range(m):
            block = dyt[:, :, i::m, j::m]
            Yt[i, j, :, :, : block.shape[2], : block.shape[3]] = block
    T = scratch.get(f"wino{m}_dT", (a, m, K, N, th, tw), dy.dtype)
    for j in range(m):  # rows: T[xi] = sum_i A^T[i, xi] (tile row i)
        for xi in range(a):
            combine(f.AT[:, xi], [Yt[i, j] for i in range(m)], T[xi, j])
    dM = np.empty((a, a, K, N, th, tw), dy.dtype)
    for xi in range(a):
        for nu in range(a):
            combine(f.AT[:, nu], [T[xi, j] for j in range(m)], dM[xi, nu])
    return dM.reshape(a, a, K, N * th * tw)


def _input_grad(dV: np.ndarray, g: Geometry, f: Transforms, scratch: Scratch) -> np.ndarray:
    """dx (N, c_in, H, W) from ``dV`` (a, a, c_in, N*th*tw): ``B dV B^T`` per tile, each tile added back
    where it was read (neighbouring tiles overlap by two rows and columns), by parity as in forward."""
    m, a = f.m, f.BT.shape[0]
    N, C, H, W = g.x_shape
    th, tw = _tiles(g, m)
    dV = dV.reshape(a, a, C, N, th, tw)
    E = scratch.get(f"wino{m}_E", (a, a, C, N, th, tw), dV.dtype)
    for xi in range(a):  # columns: E[xi, u] = sum_nu dV[xi, nu] B^T[nu, u]
        for u in range(a):
            combine(f.BT[:, u], list(dV[xi]), E[xi, u])
    dD = scratch.get(f"wino{m}_dD", (m, m, C, N, th + 1, tw + 1), dV.dtype)
    dD.fill(0)
    row = scratch.get(f"wino{m}_row", (C, N, th, tw), dV.dtype)
    for u in range(a):  # rows: dd[t, u] = sum_xi B^T[xi, t] E[xi, u], added at the tile's place
        for t in range(a):
            combine(f.BT[:, t], [E[xi, u] for xi in range(a)], row)
            dD[t % m, u % m, :, :, t // m:t // m + th, u // m:u // m + tw] += row
    pt, pl = g.pads[0], g.pads[2]
    dx = np.empty((N, C, H, W), dV.dtype)
    dxt = dx.transpose(1, 0, 2, 3)
    for pr in range(m):  # the parities back onto the input's grid (the padding dropped)
        r0 = (pr - pt) % m
        for pc in range(m):
            c0 = (pc - pl) % m
            target = dxt[:, :, r0::m, c0::m]
            i0, j0 = (pt + r0) // m, (pl + c0) // m
            target[...] = dD[pr, pc, :, :, i0:i0 + target.shape[2], j0:j0 + target.shape[3]]
    return dx


def _forward(name: str):
    def forward(x: np.ndarray, W: np.ndarray, b: np.ndarray, g: Geometry,
                scratch: Scratch) -> tuple[np.ndarray, Saved]:
        """y by F(m x m, 3 x 3); saves ``V``, the transformed input tiles."""
        f = VARIANTS[name]
        a = f.BT.shape[0]
        V = _input_transform(x, g, f, scratch)
        U = kernel_transform(W, f)
        M = np.matmul(U.reshape(a * a, *U.shape[2:]), V.reshape(a * a, *V.shape[2:]))  # (c_out, c_in) @ (c_in, P)
        y = _output_transform(M.reshape(a, a, *M.shape[1:]), x.shape[0], g, f, scratch)
        return y + b[None, :, None, None], Saved(name, g, cols=V)

    forward.__name__ = forward.__qualname__ = f"{name}_forward"
    return forward


def _backward(name: str):
    def backward(dy: np.ndarray, W: np.ndarray, saved: Saved, scratch: Scratch,
                 need_dx: bool = True) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
        """``(dx, dW, db)``: the adjoints of the forward's transforms, around the same products."""
        f = VARIANTS[name]
        a, g, V = f.BT.shape[0], saved.geometry, saved.cols
        dM = _grad_transform(dy, g, f, scratch)
        dMs, Vs = dM.reshape(a * a, *dM.shape[2:]), V.reshape(a * a, *V.shape[2:])
        dU = np.matmul(dMs, Vs.transpose(0, 2, 1)).reshape(a, a, W.shape[0], W.shape[1])  # (a, a, c_out, c_in)
        G = f.G.astype(W.dtype)
        dW = np.einsum("xu,xyoc,yv->ocuv", G, dU, G)
        db = dy.sum(axis=(0, 2, 3))
        if not need_dx:
            return None, dW, db
        U = kernel_transform(W, f)
        dV = np.matmul(U.reshape(a * a, *U.shape[2:]).transpose(0, 2, 1), dMs)  # (c_in, c_out) @ (c_out, P)
        return _input_grad(dV.reshape(a, a, *dV.shape[1:]), g, f, scratch), dW, db

    backward.__name__ = backward.__qualname__ = f"{name}_backward"
    return backward


forward, backward = _forward("winograd"), _backward("winograd")
forward4, backward4 = _forward("winograd4"), _backward("winograd4")
