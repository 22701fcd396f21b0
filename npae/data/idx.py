"""The IDX format of MNIST and Fashion-MNIST: a strict reader (gzipped or raw; every header field,
size and byte checked before anything is allocated: a file may claim at most MAX_BYTES of payload)
and a reproducible writer. The datasets built on it: :mod:`npae.data.datasets`.

Layout: a 4-byte magic number (0, 0, the element type, the number of dimensions d), d
big-endian uint32 sizes, then the elements in C order, big-endian.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import math
import os
import pathlib
import zlib

import numpy as np

from .._files import atomic_write_bytes

# -- errors and the IDX format -----------------------------------------------------------


class DataError(ValueError):
    """A data file is missing, malformed or fails its checksum; the message names the file."""


# IDX element types (the third byte of the magic number) and their big-endian dtypes
IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
MAX_BYTES = 1 << 30  # refuse any file whose header claims more than 1 GiB of payload
CHUNK = 1 << 20


def _open(path: pathlib.Path) -> tuple[io.BufferedIOBase, io.BufferedIOBase]:
    """A binary stream of the file's content, through gzip when it starts with gzip's magic."""
    f = open(path, "rb")
    if f.read(2) == b"\x1f\x8b":
        f.seek(0)
        return gzip.GzipFile(fileobj=f, mode="rb"), f
    f.seek(0)
    return f, f


def _read_exact(stream: io.BufferedIOBase, n: int, path: str | os.PathLike, what: str) -> bytes:
    """Read exactly n bytes in bounded chunks (memory grows only as data really arrives)."""
    parts, got = [], 0
    while got < n:
        part = stream.read(min(CHUNK, n - got))
        if not part:
            raise DataError(f"{path}: truncated {what}: expected {n} bytes, the file ends after {got}")
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file (gzipped or raw) into an array of its native shape and type; see :func:`read_idx_sha`."""
    return read_idx_sha(path)[0]


def read_idx_sha(path: str | os.PathLike) -> tuple[np.ndarray, str]:
    """Read one IDX file (gzipped or raw): its array, of its native shape and type, and the
    SHA-256 of its uncompressed content (what npae's checksums are of), computed as it is read.

    Checked, in order, before any payload is allocated: the magic number (two zero bytes,
    a known element type, 1 to 4 dimensions), the dimensions, and that the payload length
    equals their product times the element size (no more, no less). Every failure is a
    :class:`DataError` naming the file.
    """
    path = pathlib.Path(path)
    try:
        stream, raw = _open(path)
    except OSError as exc:
        raise DataError(f"{path}: cannot open: {exc.strerror or exc}") from None
    try:
        with raw, stream:
            head = stream.read(4)
            if len(head) == 0:
                raise DataError(f"{path}: the file is empty")
            if len(head) < 4:
                raise DataError(f"{path}: truncated header ({len(head)} bytes)")
            if head[0] != 0 or head[1] != 0 or head[2] not in IDX_TYPES or not 1 <= head[3] <= 4:
                raise DataError(
                    f"{path}: not an IDX file: magic bytes {head.hex()} (expected 0000, a type in "
                    f"{{08,09,0b,0c,0d,0e}} and 1 to 4 dimensions)"
                )
            dtype, ndim = np.dtype(IDX_TYPES[head[2]]), head[3]
            dims = tuple(int(d) for d in np.frombuffer(_read_exact(stream, 4 * ndim, path, "dimensions"), ">u4"))
            size = math.prod(dims) * dtype.itemsize
            if size > MAX_BYTES:
                raise DataError(f"{path}: header claims dimensions {dims} ({size:,} bytes), "
                                f"more than the {MAX_BYTES:,}-byte limit")
            payload = _read_exact(stream, size, path, f"payload for dimensions {dims}")
            if stream.read(1):
                raise DataError(f"{path}: more data than the header's dimensions {dims} allow")
    except DataError:
        raise
    except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        raise DataError(f"{path}: corrupt or cut-off gzip stream ({exc})") from None
    digest = hashlib.sha256(head + np.asarray(dims, ">u4").tobytes() + payload).hexdigest()
    return np.frombuffer(payload, dtype).astype(dtype.newbyteorder("="), copy=True).reshape(dims), digest


def write_idx(path: str | os.PathLike, array: np.ndarray, *, compress: bool = True) -> None:
    """Write ``array`` (uint8 only, like MNIST) as IDX, gzipped reproducibly (mtime 0), atomically."""
    array = np.asarray(array)
    if array.dtype != np.uint8 or not 1 <= array.ndim <= 4:
        raise ValueError(f"write_idx: expected a uint8 array with 1 to 4 dimensions, got {array.dtype} {array.shape}")
    data = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, ">u4").tobytes() + array.tobytes()
    if compress:
        data = gzip.compress(data, compresslevel=9, mtime=0)
    atomic_write_bytes(path, data)


def sha256_of(path: str | os.PathLike) -> str:
    """SHA-256 of a file's **uncompressed** content (the gzip wrappers differ between mirrors)."""
    h = hashlib.sha256()
    stream, raw = _open(pathlib.Path(path))
    try:
        with raw, stream:
            for block in iter(lambda: stream.read(CHUNK), b""):
                h.update(block)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: corrupt or cut-off gzip stream ({exc})") from None
    return h.hexdigest()
