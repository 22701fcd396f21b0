"""The ``winograd`` kernels (3x3, stride 1): Winograd's minimal filtering F(2x2, 3x3), fewer multiplications.

Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks" (2016). A 2x2 block of outputs
of a 3x3 correlation reads a 4x4 tile ``d`` of the padded input; with the 3x3 kernel ``g``::

    Y = A^T [ (G g G^T) * (B^T d B) ] A          (* elementwise, 4x4)

    B^T = [[1, 0, -1,  0],     G = [[1,    0,   0  ],     A^T = [[1, 1,  1,  0],
           [0, 1,  1,  0],          [1/2,  1/2, 1/2],            [0, 1, -1, -1]]
           [0, -1, 1,  0],          [1/2, -1/2, 1/2],
           [0, 1,  0, -1]]          [0,    0,   1  ]]

Over channels the elementwise product becomes 16 matrix products, one per tile position
``(xi, nu)``: with ``U[xi, nu] = (G W[o, c] G^T)[xi, nu]`` as (c_out, c_in) and
``V[xi, nu] = (B^T d[c, tile] B)[xi, nu]`` as (c_in, tiles)::

    M[xi, nu] = U[xi, nu] @ V[xi, nu]             (c_out, tiles)
    y tile    = A^T M A                           per output channel and tile

16 products of c_out x c_in x tiles multiply-adds for 4 outputs per tile, against im2col's 9
per output: 2.25x fewer multiplications. The transforms are additions and subtractions of
whole slices (B and A hold only 0 and +-1, G only 0, +-1/2 and 1).

Backward is the adjoint of the same linear maps (each transform's transpose), so the gradients
are exact up to rounding (tests/test_reference.py holds them to the loops)::

    dM[xi, nu] = (A dY A^T)[xi, nu]               the output gradient of each tile, 2x2 -> 4x4
    dU[xi, nu] = dM[xi, nu] @ V[xi, nu]^T,        dW[o, c] = G^T dU[o, c] G
    dV[xi, nu] = U[xi, nu]^T @ dM[xi, nu],        dd = B dV B^T, added into the tile it came from
    db = sum of dy

Rounding: the input transform adds up to 4 terms of |d| (each of |B^T| |d| |B|'s entries is at
most 4 max|d|), G's up to 9 terms of |g| / 4, A's up to 9 products; the error of a Winograd
output is therefore bounded by that of the same sums taken in absolute value,
``gamma(n) * (|A^T| [(|G| |g| |G^T|) * (|B^T| |d| |B|)] |A|)`` with ``n = c_in + 12``
(tests/test_reference.py computes that bound and holds the kernel to it).

Memory: ``V`` (16 values per 4 outputs: 4x the padded input) is kept from forward to backward.
"""

from __future__ import annotations

import numpy as np

from .base import Geometry, Saved, Scratch

#: the transforms of F(2x2, 3x3), as above
BT = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=np.float64)
G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], dtype=np.float64)
AT = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=np.float64)


def pays(W: np.ndarray, stride: tuple[int, int]) -> bool:
    """The shapes this kernel computes: a 3x3 kernel, stride 1."""
    return W.shape[2:] == (3, 3) and tuple(stride) == (1, 1)


def kernel_transform(W: np.ndarray) -> np.ndarray:
    """``U[xi, nu] = G W[o, c] G^T`` as (4, 4, c_out, c_in), contiguous per tile position."""
    return np.ascontiguousarray(np.einsum("xu,ocuv,yv->xyoc", G.astype(W.dtype), W, G.astype(W.dtype)))


def _tiles(g: Geometry) -> tuple[int, int]:
    (Ho, Wo) = g.out
    return -(-Ho // 2), -(-Wo // 2)


# The tiles start every 2 rows and columns, so the padded input is kept as its four parities,
# D[pr, pc][c, n, i, j] = xp[n, c, 2 i + pr, 2 j + pc]: tile (ti, tj)'s row r, column u is
# D[r % 2, u % 2][..., ti + r // 2, tj + u // 2], and every transform below adds or subtracts
# slices whose last axis is contiguous (NumPy's strided inner loops are several times slower).
def _parities(x: np.ndarray, g: Geometry, scratch: Scratch) -> np.ndarray:
    """``D`` (2, 2, c_in, N, th + 1, tw + 1): the padded input (and zeros to whole tiles) by parity."""
    N, C, H, W = x.shape
    th, tw = _tiles(g)
    pt, _, pl, _ = g.pads
    D = scratch.get("wino_D", (2, 2, C, N, th + 1, tw + 1), x.dtype)
    D.fill(0)
    xt = x.transpose(1, 0, 2, 3)
    for pr in range(2):
        r0 = (pr - pt) % 2  # the first row of x that lands on this parity, at padded row pt + r0
        i0 = (pt + r0) // 2
        rows = xt[:, :, r0::2]
        for pc in range(2):
            c0 = (pc - pl) % 2
            j0 = (pl + c0) // 2
            block = rows[..., c0::2]
            D[pr, pc, :, :, i0:i0 + block.shape[2], j0:j0 + block.shape[3]] = block
    return D


def _input_transform(x: np.ndarray, g: Geometry, scratch: Scratch) -> np.ndarray:
    """``V`` (4, 4, c_in, N*th*tw): ``B^T d B`` of every 4x4 tile of the padded input, rows then columns."""
    N, C = x.shape[:2]
    th, tw = _tiles(g)
    D = _parities(x, g, scratch)
    T = scratch.get("wino_T", (4, 2, C, N, th, tw + 1), x.dtype)
    for pc in range(2):  # B^T's rows: d0 - d2, d1 + d2, d2 - d1, d1 - d3
        e, o = D[0, pc], D[1, pc]
        np.subtract(e[:, :, :th], e[:, :, 1:], out=T[0, pc])
        np.add(o[:, :, :th], e[:, :, 1:], out=T[1, pc])
        np.subtract(e[:, :, 1:], o[:, :, :th], out=T[2, pc])
        np.subtract(o[:, :, :th], o[:, :, 1:], out=T[3, pc])
    V = np.empty((4, 4, C, N, th, tw), x.dtype)
    for xi in range(4):  # and its columns alike
        e, o = T[xi, 0], T[xi, 1]
        np.subtract(e[..., :tw], e[..., 1:], out=V[xi, 0])
        np.add(o[..., :tw], e[..., 1:], out=V[xi, 1])
        np.subtract(e[..., 1:], o[..., :tw], out=V[xi, 2])
        np.subtract(o[..., :tw], o[..., 1:], out=V[xi, 3])
    return V.reshape(4, 4, C, N * th * tw)


def _output_transform(M: np.ndarray, N: int, g: Geometry, scratch: Scratch) -> np.ndarray:
    """y (N, c_out, Ho, Wo) from ``M`` (4, 4, c_out, N*th*tw): ``A^T M A`` per tile, tiles side by side."""
    th, tw = _tiles(g)
    K = M.shape[2]
    M = M.reshape(4, 4, K, N, th, tw)
    R = scratch.get("wino_R", (2, 4, K, N, th, tw), M.dtype)  # A^T's rows: M0 + M1 + M2, M1 - M2 - M3
    np.add(M[0], M[1], out=R[0])
    R[0] += M[2]
    np.subtract(M[1], M[2], out=R[1])
    R[1] -= M[3]
    Y = np.empty((N, K, th, 2, tw, 2), M.dtype)  # y by tile: (n, o, ti, a, tj, b)
    Yt = Y.transpose(3, 5, 1, 0, 2, 4)  # (a, b, o, n, ti, tj)
    for a in range(2):
        r = R[a]
        np.add(r[0], r[1], out=Yt[a, 0])
        Yt[a, 0] += r[2]
        np.subtract(r[1], r[2], out=Yt[a, 1])
        Yt[a, 1] -= r[3]
    return Y.reshape(N, K, 2 * th, 2 * tw)[:, :, : g.out[0], : g.out[1]]


def forward(x: np.ndarray, W: np.ndarray, b: np.ndarray, g: Geometry, scratch: Scratch) -> tuple[np.ndarray, Saved]:
    """y by F(2x2, 3x3); saves ``V``, the transformed input tiles."""
    V = _input_transform(x, g, scratch)
    U = kernel_transform(W)
    M = np.matmul(U.reshape(16, *U.shape[2:]), V.reshape(16, *V.shape[2:]))  # 16 x (c_out, c_in) @ (c_in, P)
    y = _output_transform(M.reshape(4, 4, *M.shape[1:]), x.shape[0], g, scratch)
    y = y + b[None, :, None, None]
    return y, Saved("winograd", g, cols=V)


def _grad_transform(dy: np.ndarray, g: Geometry, scratch: Scratch) -> np.ndarray:
    """``dM = A dY A^T`` (4, 4, c_out, N*th*tw): each 2x2 tile of dy (zero beyond the output) to 4x4."""
    N, K = dy.shape[:2]
    th, tw = _tiles(g)
    Ho, Wo = g.out
    Yt = scratch.get("wino_dY", (2, 2, K, N, th, tw), dy.dtype)  # dy by tile: (a, b, o, n, ti, tj)
    if 2 * th != Ho or 2 * tw != Wo:
        Yt.fill(0)
    dyt = dy.transpose(1, 0, 2, 3)
    for a in range(2):
        for b in range(2):
            block = dyt[:, :, a::2, b::2]
            Yt[a, b, :, :, : block.shape[2], : block.shape[3]] = block
    T = scratch.get("wino_dT", (4, 2, K, N, th, tw), dy.dtype)  # A's rows: y0, y0 + y1, y0 - y1, -y1
    for b in range(2):
        T[0, b] = Yt[0, b]
        np.add(Yt[0, b], Yt[1, b], out=T[1, b])
        np.subtract(Yt[0, b], Yt[1, b], out=T[2, b])
        np.negative(Yt[1, b], out=T[3, b])
    dM = np.empty((4, 4, K, N, th, tw), dy.dtype)
    for xi in range(4):
        c0, c1 = T[xi, 0], T[xi, 1]
        dM[xi, 0] = c0
        np.add(c0, c1, out=dM[xi, 1])
        np.subtract(c0, c1, out=dM[xi, 2])
        np.negative(c1, out=dM[xi, 3])
    return dM.reshape(4, 4, K, N * th * tw)


def _input_grad(dV: np.ndarray, g: Geometry, scratch: Scratch) -> np.ndarray:
    """dx (N, c_in, H, W) from ``dV`` (4, 4, c_in, N*th*tw): ``B dV B^T`` per tile, each tile's 4x4
    added back where it was read (tiles overlap by two rows and columns), by parity as in forward."""
    N, C, H, W = g.x_shape
    th, tw = _tiles(g)
    dV = dV.reshape(4, 4, C, N, th, tw)
    # columns: e[xi, u] = sum_nu dV[xi, nu] B^T[nu, u]; B^T's columns are [1,0,0,0], [0,1,-1,1], [-1,1,1,0], [0,0,0,-1]
    E = scratch.get("wino_E", (4, 4, C, N, th, tw), dV.dtype)
    E[:, 0] = dV[:, 0]
    np.subtract(dV[:, 1], dV[:, 2], out=E[:, 1])
    E[:, 1] += dV[:, 3]
    np.add(dV[:, 1], dV[:, 2], out=E[:, 2])
    E[:, 2] -= dV[:, 0]
    np.negative(dV[:, 3], out=E[:, 3])
    dD = scratch.get("wino_dD", (2, 2, C, N, th + 1, tw + 1), dV.dtype)
    dD.fill(0)
    row = scratch.get("wino_row", (C, N, th, tw), dV.dtype)
    for u in range(4):  # rows alike: dd[r] = sum_xi B^T[xi, r] e[xi], added at parity (r % 2, u % 2)
        e = E[:, u]
        pc, j = u % 2, u // 2
        for r in range(4):
            if r == 0:
                np.copyto(row, e[0])
            elif r == 1:
                np.subtract(e[1], e[2], out=row)
                row += e[3]
            elif r == 2:
                np.add(e[1], e[2], out=row)
                row -= e[0]
            else:
                np.negative(e[3], out=row)
            dD[r % 2, pc, :, :, r // 2:r // 2 + th, j:j + tw] += row
    pt, _, pl, _ = g.pads
    dx = np.empty((N, C, H, W), dV.dtype)
    dxt = dx.transpose(1, 0, 2, 3)
    for pr in range(2):
        r0 = (pr - pt) % 2
        i0 = (pt + r0) // 2
        for pc in range(2):
            c0 = (pc - pl) % 2
            j0 = (pl + c0) // 2
            target = dxt[:, :, r0::2, c0::2]
            target[...] = dD[pr, pc, :, :, i0:i0 + target.shape[2], j0:j0 + target.shape[3]]
    return dx


def backward(dy: np.ndarray, W: np.ndarray, saved: Saved, scratch: Scratch,
             need_dx: bool = True) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """``(dx, dW, db)``: the adjoints of :func:`forward`'s transforms, around the same 16 products."""
    g, V = saved.geometry, saved.cols
    dM = _grad_transform(dy, g, scratch)
    dM16, V16 = dM.reshape(16, *dM.shape[2:]), V.reshape(16, *V.shape[2:])
    dU = np.matmul(dM16, V16.transpose(0, 2, 1)).reshape(4, 4, W.shape[0], W.shape[1])  # (4, 4, c_out, c_in)
    Gt = G.astype(W.dtype)
    dW = np.einsum("xu,xyoc,yv->ocuv", Gt, dU, Gt)
    db = dy.sum(axis=(0, 2, 3))
    if not need_dx:
        return None, dW, db
    U = kernel_transform(W)
    dV = np.matmul(U.reshape(16, *U.shape[2:]).transpose(0, 2, 1), dM16)  # 16 x (c_in, c_out) @ (c_out, P)
    return _input_grad(dV.reshape(4, 4, *dV.shape[1:]), g, scratch), dW, db
