"""A minimal grayscale PNG writer, so that `python -m npae train` can always write its
reconstruction figure (matplotlib is optional; the demos use it for richer plots)."""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Sequence

import numpy as np

from ._files import atomic_write_bytes


def image_grid(rows: Sequence[np.ndarray | Sequence[np.ndarray]], scale: int = 2, gap: int = 2) -> np.ndarray:
    """Tile rows of images (each a sequence of (H, W) arrays in [0, 1]) into one uint8 image."""
    rows = [np.clip(np.asarray(r, dtype=np.float64), 0, 1) for r in rows]
    n, h, w = rows[0].shape
    grid = np.full((len(rows) * (h + gap) + gap, n * (w + gap) + gap), 255, np.uint8)
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            top, left = gap + i * (h + gap), gap + j * (w + gap)
            grid[top:top + h, left:left + w] = np.round(255 * (1 - img))  # dark ink on white
    return np.kron(grid, np.ones((scale, scale), np.uint8)) if scale > 1 else grid


def write_png(path: str | os.PathLike, image: np.ndarray) -> None:
    """Write a 2-D uint8 array as an 8-bit grayscale PNG, atomically."""
    image = np.asarray(image)
    if image.ndim != 2 or image.dtype != np.uint8:
        raise ValueError(f"write_png: expected a 2-D uint8 array, got {image.dtype} {image.shape}")
    h, w = image.shape

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + image[r].tobytes() for r in range(h))  # filter type 0 on each row
    data = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))
    atomic_write_bytes(path, data)
