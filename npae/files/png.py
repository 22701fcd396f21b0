"""A minimal PNG writer (grey or RGB), so that `python -m npae train` can always write its
reconstruction figure (matplotlib is optional; the demos use it for richer plots)."""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Sequence

import numpy as np

from .._files import atomic_write_bytes


def image_grid(rows: Sequence[np.ndarray | Sequence[np.ndarray]], scale: int = 2, gap: int = 2) -> np.ndarray:
    """Tile rows of images into one uint8 image: grey (H, W) images in [0, 1] as dark ink on
    white (H', W'), colour (H, W, 3) ones as they are (H', W', 3), on white."""
    rows = [np.clip(np.asarray(r, dtype=np.float64), 0, 1) for r in rows]
    n, h, w = rows[0].shape[:3]
    colour = rows[0].ndim == 4
    grid = np.full((len(rows) * (h + gap) + gap, n * (w + gap) + gap) + ((3,) if colour else ()), 255, np.uint8)
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            top, left = gap + i * (h + gap), gap + j * (w + gap)
            grid[top:top + h, left:left + w] = np.round(255 * (img if colour else 1 - img))  # grey: dark ink on white
    return grid.repeat(scale, axis=0).repeat(scale, axis=1) if scale > 1 else grid


def write_png(path: str | os.PathLike, image: np.ndarray) -> None:
    """Write a uint8 array, (H, W) grey or (H, W, 3) RGB, as an 8-bit PNG, atomically."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)):
        raise ValueError(f"write_png: expected a uint8 array (H, W) or (H, W, 3), got {image.dtype} {image.shape}")
    h, w = image.shape[:2]
    colour_type = 2 if image.ndim == 3 else 0

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + image[r].tobytes() for r in range(h))  # filter type 0 on each row
    data = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, colour_type, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))
    atomic_write_bytes(path, data)
