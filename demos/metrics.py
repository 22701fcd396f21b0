"""The measurements of demos/claims.py, in NumPy only (no SciPy, no scikit-learn), each with a
test against a hand-computed example in tests/test_claims.py.

Shapes: images are (N, H, W) or (N, C, H, W) arrays in [0, 1]; points / codes are (N, D).

- ``psnr(x, ref)``: peak 1, over the whole set: ``10 log10(1 / mean((x - ref)**2))``, the mean
  taken over every pixel of every image (the set's MSE, the number the other tables report), so
  one perfect image cannot make it infinite; infinite only for an exact copy of the whole set.
- ``knn_accuracy(points, labels, k, folds, rng)``: k-nearest-neighbour classification accuracy,
  cross-validated: the points are shuffled with ``rng`` and cut into ``folds`` parts, each part
  classified by a majority vote of its k nearest (Euclidean) points in the other parts; a tied
  vote goes to the tied class whose nearest member is closest. The mean over the folds.
- ``trustworthiness(x_high, x_low, k)`` (Venna and Kaski, 2001): with ``r(i, j)`` the rank of j
  among i's neighbours in the original space (1 = nearest) and ``U_k(i)`` the points among i's
  k nearest in the embedding that are not among its k nearest in the original space,
  ``T(k) = 1 - 2 / (n k (2n - 3k - 1)) sum_i sum_{j in U_k(i)} (r(i, j) - k)``; 1 when every
  embedded neighbourhood is a true one. Needs ``k < n / 2``.
- ``UniformQuantizer(bits).fit(codes)``: per code dimension, ``2**bits`` evenly spaced levels from
  the training codes' minimum to their maximum; ``quantize`` rounds to the nearest level (values
  outside the range go to the end levels; a dimension constant on the training codes always decodes to
  that constant). A code of D numbers costs ``D * bits / 8`` bytes.
- ``gaussian_blur(images, sigma)``: separable convolution with the normalized kernel
  ``exp(-t**2 / (2 sigma**2))``, ``t = -R..R``, ``R = ceil(3 sigma)``, zero padding (MNIST's border
  is black).
- ``median_filter(images, size)``: the median of each ``size x size`` window, zero padding.
- ``PCA(k).fit(x)``: the mean and the top-k eigenvectors of the training covariance (float64).
- ``jpeg_bytes(image, quality)``: the whole JPEG file Pillow writes (baseline, its standard
  Huffman tables, grayscale) and its **entropy-coded scan** alone: the bytes after the
  start-of-scan header up to the end-of-image marker, i.e. the file minus every header and
  table (markers parsed here, as the JPEG standard lays them out).
"""

from __future__ import annotations

import io
import math

import numpy as np


def psnr(x: np.ndarray, ref: np.ndarray) -> float:
    """PSNR in dB of ``x`` against ``ref`` (pixels in [0, 1]) over the whole set."""
    x, ref = np.asarray(x, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    if x.shape != ref.shape:
        raise ValueError(f"psnr: shapes {x.shape} and {ref.shape} differ")
    mse = float(np.mean((x - ref) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(1 / mse)


def _sq_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) squared Euclidean distances, in float64, never below 0."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    d = (a * a).sum(1)[:, None] - 2 * a @ b.T + (b * b).sum(1)[None, :]
    return np.maximum(d, 0, out=d)


def _vote(neighbour_labels: np.ndarray, classes: int) -> np.ndarray:
    """Majority of each row (nearest first); a tie goes to the tied class met first."""
    counts = np.zeros((len(neighbour_labels), classes), dtype=np.int64)
    rows = np.arange(len(neighbour_labels))
    for j in range(neighbour_labels.shape[1]):
        np.add.at(counts, (rows, neighbour_labels[:, j]), 1)
    best = counts.max(1, keepdims=True)
    tied = counts == best
    # the first neighbour (nearest first) whose class is among the tied winners
    first = np.argmax(tied[rows[:, None], neighbour_labels], axis=1)
    return neighbour_labels[rows, first]


def knn_predict(train: np.ndarray, train_labels: np.ndarray, query: np.ndarray, k: int,
                chunk: int = 2048) -> np.ndarray:
    classes = int(train_labels.max()) + 1
    out = np.empty(len(query), dtype=train_labels.dtype)
    for s in range(0, len(query), chunk):
        d = _sq_distances(query[s:s + chunk], train)
        nearest = np.argpartition(d, k - 1, axis=1)[:, :k]
        order = np.argsort(np.take_along_axis(d, nearest, 1), axis=1, kind="stable")
        out[s:s + chunk] = _vote(train_labels[np.take_along_axis(nearest, order, 1)], classes)
    return out


def knn_accuracy(points: np.ndarray, labels: np.ndarray, k: int = 5, folds: int = 5,
                 rng: np.random.Generator | None = None) -> float:
    """Cross-validated k-NN accuracy (the mean over ``folds`` folds)."""
    n = len(points)
    order = (rng or np.random.default_rng(0)).permutation(n)
    parts = np.array_split(order, folds)
    accs = []
    for f, test in enumerate(parts):
        train = np.concatenate([p for g, p in enumerate(parts) if g != f])
        pred = knn_predict(points[train], labels[train], points[test], k)
        accs.append(float(np.mean(pred == labels[test])))
    return float(np.mean(accs))


def trustworthiness(x_high: np.ndarray, x_low: np.ndarray, k: int = 5) -> float:
    """Venna and Kaski's trustworthiness of the embedding ``x_low`` of ``x_high`` (both (n, .))."""
    n = len(x_high)
    if not 0 < k < n / 2:
        raise ValueError(f"trustworthiness: need 0 < k < n/2, got k={k}, n={n}")
    d_high = _sq_distances(x_high.reshape(n, -1), x_high.reshape(n, -1))
    d_low = _sq_distances(x_low.reshape(n, -1), x_low.reshape(n, -1))
    np.fill_diagonal(d_high, np.inf)
    np.fill_diagonal(d_low, np.inf)
    # rank[i, j]: 1 for i's nearest neighbour in the original space, ..., n-1 for the farthest
    by_distance = np.argsort(d_high, axis=1, kind="stable")
    rank = np.empty_like(by_distance)
    rank[np.arange(n)[:, None], by_distance] = np.arange(1, n + 1)[None, :]
    embedded = np.argsort(d_low, axis=1, kind="stable")[:, :k]
    r = np.take_along_axis(rank, embedded, 1)
    penalty = np.sum(np.where(r > k, r - k, 0))
    return float(1 - 2 / (n * k * (2 * n - 3 * k - 1)) * penalty)


class UniformQuantizer:
    """``2**bits`` evenly spaced levels per dimension over the range of the codes it was fit on."""

    def __init__(self, bits: int):
        if not 1 <= bits <= 16:
            raise ValueError(f"UniformQuantizer: bits must be in 1..16, got {bits}")
        self.bits = bits

    def fit(self, codes: np.ndarray) -> UniformQuantizer:
        codes = np.asarray(codes, dtype=np.float64)
        self.low, high = codes.min(0), codes.max(0)
        self.step = (high - self.low) / (2 ** self.bits - 1)
        self.constant = self.step == 0  # a dimension constant on the training codes: its one value, always
        self.step[self.constant] = 1.0
        return self

    def indices(self, codes: np.ndarray) -> np.ndarray:
        q = np.rint((np.asarray(codes, dtype=np.float64) - self.low) / self.step)
        q[:, self.constant] = 0
        return np.clip(q, 0, 2 ** self.bits - 1).astype(np.int64)

    def quantize(self, codes: np.ndarray) -> np.ndarray:
        return self.low + self.indices(codes) * self.step

    def bytes_per_code(self, numbers: int) -> float:
        return numbers * self.bits / 8


def _images(images: np.ndarray) -> tuple[np.ndarray, tuple]:
    """(N, H, W) view of (N, H, W) or (N, 1, H, W) images, and the shape to return."""
    images = np.asarray(images)
    shape = images.shape
    if images.ndim == 4:
        images = images.reshape(-1, shape[-2], shape[-1])
    if images.ndim != 3:
        raise ValueError(f"expected images (N, H, W) or (N, C, H, W), got shape {shape}")
    return images, shape


def gaussian_blur(images: np.ndarray, sigma: float) -> np.ndarray:
    imgs, shape = _images(images)
    radius = max(1, math.ceil(3 * sigma))
    t = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-t ** 2 / (2 * sigma ** 2))
    kernel /= kernel.sum()
    p = np.pad(imgs.astype(np.float64), ((0, 0), (radius, radius), (radius, radius)))
    h, w = imgs.shape[1:]
    rows = sum(kernel[u] * p[:, u:u + h, :] for u in range(2 * radius + 1))  # (N, H, W + 2R)
    out = sum(kernel[v] * rows[:, :, v:v + w] for v in range(2 * radius + 1))
    return out.astype(imgs.dtype).reshape(shape)


def median_filter(images: np.ndarray, size: int, chunk: int = 1000) -> np.ndarray:
    imgs, shape = _images(images)
    r = size // 2
    out = np.empty_like(imgs)
    for s in range(0, len(imgs), chunk):
        p = np.pad(imgs[s:s + chunk], ((0, 0), (r, r), (r, r)))
        windows = np.lib.stride_tricks.sliding_window_view(p, (size, size), axis=(1, 2))
        out[s:s + chunk] = np.median(windows.reshape(windows.shape[:3] + (-1,)), axis=-1)
    return out.reshape(shape)


class PCA:
    """Projection on the top-k principal directions of the data it was fit on."""

    def __init__(self, k: int):
        self.k = k

    def fit(self, x: np.ndarray) -> PCA:
        x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
        self.mean = x.mean(0)
        xc = x - self.mean
        _, vecs = np.linalg.eigh(xc.T @ xc)
        self.components = vecs[:, ::-1][:, :self.k].copy()  # (D, k), largest variance first
        return self

    def encode(self, x: np.ndarray, k: int | None = None) -> np.ndarray:
        """(N, k) coordinates on the top k (default: all fitted) directions."""
        return (np.asarray(x, dtype=np.float64).reshape(len(x), -1) - self.mean) @ self.components[:, :k]

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """(N, D) points back from (N, k) coordinates on the top k directions."""
        return codes @ self.components[:, :codes.shape[1]].T + self.mean


def pillow():
    """PIL.Image, or one line saying how to get it."""
    try:
        from PIL import Image
    except ImportError:
        raise SystemExit('error: the JPEG and PNG baselines need Pillow (it comes with matplotlib): '
                         'pip install "npae[plot]"') from None
    return Image


def scan_bytes(data: bytes) -> int:
    """Length of the entropy-coded data of a baseline JPEG: from after the SOS segment to EOI."""
    if data[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG file (no SOI marker)")
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise ValueError(f"JPEG: expected a marker at byte {pos}")
        marker = data[pos + 1]
        length = int.from_bytes(data[pos + 2:pos + 4], "big")  # counts its own two bytes
        if marker == 0xDA:  # start of scan: its header, then the coded data up to EOI
            end = data.rfind(b"\xff\xd9")
            return end - (pos + 2 + length)
        pos += 2 + length
    raise ValueError("JPEG: no start-of-scan marker")


def jpeg_bytes(image: np.ndarray, quality: int) -> tuple[np.ndarray, int, int]:
    """(decoded image in [0, 1], whole file bytes, scan bytes) of one (H, W) image."""
    Image = pillow()
    buf = io.BytesIO()
    Image.fromarray(np.rint(np.clip(image, 0, 1) * 255).astype(np.uint8)).save(
        buf, format="JPEG", quality=int(quality))
    data = buf.getvalue()
    decoded = np.asarray(Image.open(io.BytesIO(data)), dtype=np.float32) / 255
    return decoded, len(data), scan_bytes(data)


def png_bytes(image: np.ndarray) -> int:
    """Bytes of the lossless PNG (8-bit grayscale, zlib level 9) of one (H, W) image."""
    Image = pillow()
    buf = io.BytesIO()
    Image.fromarray(np.rint(np.clip(image, 0, 1) * 255).astype(np.uint8)).save(
        buf, format="PNG", optimize=True)
    return len(buf.getvalue())
