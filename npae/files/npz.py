"""Reading an ``.npz`` without trusting it: what a file claims is checked before anything
it asks for is allocated.

An ``.npz`` is a zip archive of ``.npy`` members. :class:`Archive` reads the zip directory
and, for each member, only its ``.npy`` header (a few hundred bytes: dtype, shape, order),
and checks, before any payload is decompressed:

- every member is named ``<key>.npy``, once, and there are at most ``MAX_MEMBERS``;
- every dtype is a plain number type (booleans, integers, floats: no objects, so nothing
  can be unpickled; no structured or string types);
- the member's size in the zip directory is exactly its header plus the payload its shape
  and dtype imply (so no member inflates to more than it declares: the zip reader stops at
  the declared size);
- the total number of values in all members is at most ``MAX_VALUES``.

Only then does :meth:`Archive.read` decompress a member, and only the members asked for.
Every failure, whatever its cause (a truncated zip, a lying header, a bad CRC, an
unsupported compression), is an :class:`ArchiveError` naming the file, with a message of
npae's own (never one that suggests unpickling).
"""

from __future__ import annotations

import math
import pathlib
import struct
import zipfile
import zlib

import numpy as np

MAX_MEMBERS = 20_000
#: 2**28 numbers (1 GiB of float32): far beyond any model npae trains, far below what hurts
MAX_VALUES = 1 << 28
MAX_HEADER = 10_000  # bytes of an .npy header, NumPy's own default limit
NPY_MAGIC = b"\x93NUMPY"

#: what goes wrong inside a corrupt or hostile archive, whatever the module that notices
READ_ERRORS = (OSError, EOFError, ValueError, KeyError, TypeError, SyntaxError, struct.error, zlib.error,
               zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, RuntimeError, OverflowError,
               MemoryError, RecursionError)


class ArchiveError(ValueError):
    """The file is not an .npz npae can read, or claims more than it may."""


class Archive:
    """The checked directory of an ``.npz``: ``headers[key] = (shape, dtype)`` for every member."""

    def __init__(self, path, max_values: int = MAX_VALUES, kind: str = "npae file"):
        self.path, self.kind = pathlib.Path(path), kind
        try:
            with open(self.path, "rb") as f:
                start = f.read(len(NPY_MAGIC))
        except FileNotFoundError:
            raise ArchiveError(f"{self.path}: no such file") from None
        except IsADirectoryError:
            raise ArchiveError(f"{self.path}: is a folder, not a file") from None
        except OSError as exc:
            raise ArchiveError(f"{self.path}: cannot read ({exc.strerror or exc})") from None
        if start == NPY_MAGIC:
            raise ArchiveError(f"{self.path}: a bare .npy array, not an .npz archive ({self.kind})")
        try:
            self.zip = zipfile.ZipFile(self.path)
        except READ_ERRORS:
            raise ArchiveError(f"{self.path}: not an {self.kind} (not a zip archive)") from None
        try:
            self.headers = self._headers(max_values)
        except ArchiveError:
            self.zip.close()
            raise
        except READ_ERRORS as exc:
            self.zip.close()
            raise ArchiveError(f"{self.path}: corrupt archive ({_describe(exc)})") from None

    def _headers(self, max_values: int) -> dict:
        infos = self.zip.infolist()
        if len(infos) > MAX_MEMBERS:
            raise ArchiveError(f"{self.path}: {len(infos):,} members, more than the {MAX_MEMBERS:,} npae reads")
        headers, total = {}, 0
        for info in infos:
            if not info.filename.endswith(".npy") or info.is_dir():
                raise ArchiveError(f"{self.path}: unexpected member {info.filename!r} (every member is an .npy array)")
            key = info.filename[: -len(".npy")]
            if key in headers:
                raise ArchiveError(f"{self.path}: member {info.filename!r} appears twice")
            shape, dtype, header_bytes = self._header(info)
            n = math.prod(shape)
            if info.file_size != header_bytes + n * dtype.itemsize:
                raise ArchiveError(f"{self.path}: member {info.filename!r} holds {info.file_size:,} bytes, but its "
                                   f"header describes {header_bytes + n * dtype.itemsize:,} ({dtype} {shape})")
            total += n
            if total > max_values:
                raise ArchiveError(f"{self.path}: the arrays hold more than {max_values:,} numbers, "
                                   f"the most npae reads from one file")
            headers[key] = (shape, dtype)
        return headers

    def _header(self, info: zipfile.ZipInfo) -> tuple[tuple, np.dtype, int]:
        with self.zip.open(info) as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f, max_header_size=MAX_HEADER)
            elif version in ((2, 0), (3, 0)):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f, max_header_size=MAX_HEADER)
            else:
                raise ArchiveError(f"{self.path}: member {info.filename!r} has an unknown .npy version {version}")
            header_bytes = f.tell()
        if dtype.hasobject or dtype.kind not in "biuf" or dtype.fields is not None or dtype.subdtype is not None:
            raise ArchiveError(f"{self.path}: member {info.filename!r} is of type {dtype}; "
                               "npae reads only numbers (booleans, integers, floats)")
        if not all(isinstance(s, int) and s >= 0 for s in shape):
            raise ArchiveError(f"{self.path}: member {info.filename!r} has an invalid shape {shape}")
        return tuple(shape), dtype, header_bytes

    def read(self, key: str) -> np.ndarray:
        """The member ``key`` (checked by the constructor), decompressed."""
        if key not in self.headers:
            raise KeyError(key)
        try:
            with self.zip.open(key + ".npy") as f:
                a = np.lib.format.read_array(f, allow_pickle=False, max_header_size=MAX_HEADER)
        except READ_ERRORS as exc:
            raise ArchiveError(f"{self.path}: member {key!r} is corrupt ({_describe(exc)})") from None
        if (a.shape, a.dtype) != self.headers[key]:
            raise ArchiveError(f"{self.path}: member {key!r} does not match its header")
        return a

    def close(self) -> None:
        self.zip.close()

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _describe(exc: BaseException) -> str:
    """The cause in a few words, never a suggestion to unpickle."""
    text = str(exc).split("\n")[0][:200]
    if not text or "pickle" in text.lower():
        return type(exc).__name__
    return text


def json_depth(text: str) -> int:
    """How deeply ``[`` and ``{`` nest in a JSON text (outside its strings), without parsing it."""
    import re

    skeleton = re.sub(r'"(?:[^"\\]|\\.)*"', '""', text)
    codes = np.frombuffer(skeleton.encode("utf-8", "replace"), dtype=np.uint8)
    steps = np.isin(codes, (ord("["), ord("{"))).astype(np.int64) - np.isin(codes, (ord("]"), ord("}")))
    return int(np.cumsum(steps).max(initial=0))
