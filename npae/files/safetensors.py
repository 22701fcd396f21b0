"""The safetensors format, written and read with NumPy alone (no safetensors package, no torch).

``save_safetensors(model, path)`` writes, with NumPy alone: an 8-byte little-endian unsigned
header length n; n bytes of UTF-8 JSON, ``{name: {"dtype": "F32", "shape": [...], "data_offsets":
[begin, end]}, ..., "__metadata__": {...}}``, padded with spaces to a multiple of 8; then the
tensors' raw little-endian bytes, C order, one after the other (offsets relative to the end of
the header). The names are the state-dict names of ``to_torch(model)`` and the arrays are in
torch's layouts, so ``to_torch(model).load_state_dict(safetensors.torch.load_file(path))``
restores them; ``__metadata__`` holds ``format`` ("pt"), ``npae`` (the version) and ``npae_model``
(the architecture, ``model.config()`` as a JSON string: ``npae.files.io.build`` rebuilds it).
"""

from __future__ import annotations

import json
import math
import pathlib
from collections.abc import Mapping

import numpy as np

from .._files import atomic_write
from .npz import json_depth


class SafetensorsError(ValueError):
    """The file is not a safetensors file this reader accepts (the message says what is wrong)."""


# -- safetensors, with NumPy alone ---------------------------------------------------------------
#: the safetensors dtype names NumPy has (bfloat16 and the float8 types it has not)
DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1",
          "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1", "BOOL": "?"}
_NAMES = {np.dtype(v).newbyteorder("="): k for k, v in DTYPES.items()}
#: the largest header this reader parses: the limit of the safetensors package itself
MAX_HEADER_BYTES = 100_000_000
MAX_DEPTH = 8  # a header nests 3 deep: {name: {"shape": [...]}}
MAX_NDIM = 32
METADATA = "__metadata__"


def _header(arrays: dict[str, np.ndarray], metadata: dict[str, str]) -> bytes:
    header: dict = {METADATA: metadata} if metadata else {}
    offset = 0
    for name, a in arrays.items():
        size = a.size * a.dtype.itemsize
        header[name] = {"dtype": _NAMES[a.dtype.newbyteorder("=")], "shape": list(a.shape),
                        "data_offsets": [offset, offset + size]}
        offset += size
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    return text + b" " * (-len(text) % 8)  # the data start 8-byte aligned, as the safetensors package writes


def write_safetensors(path, arrays: Mapping[str, np.ndarray], metadata: Mapping[str, str] | None = None) -> None:
    """Write ``arrays`` (name -> array of a dtype in ``DTYPES``) and ``metadata`` (str -> str) as a
    safetensors file, atomically (a process killed mid-write leaves the previous file intact)."""
    checked = {}
    for name, a in arrays.items():
        a = np.asarray(a)
        if not isinstance(name, str) or name == METADATA:
            raise ValueError(f"write_safetensors: invalid tensor name {name!r}")
        if a.dtype.newbyteorder("=") not in _NAMES:
            raise TypeError(f"write_safetensors: {name} is {a.dtype}; safetensors holds {', '.join(DTYPES)}")
        checked[name] = a.astype(a.dtype.newbyteorder("<"), order="C", copy=False)  # 0-d stays 0-d
    metadata = dict(metadata or {})
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise TypeError("write_safetensors: metadata must map strings to strings")
    header = _header(checked, metadata)

    def write(f):
        f.write(len(header).to_bytes(8, "little"))
        f.write(header)
        for a in checked.values():
            f.write(memoryview(a.reshape(-1)).cast("B") if a.size else b"")

    atomic_write(path, write)


def _unique_keys(pairs):
    obj = {}
    for key, value in pairs:
        if key in obj:
            raise ValueError(f"the name {key!r} appears twice")
        obj[key] = value
    return obj


def _is_count(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _tensor_info(name: str, info, where: str) -> tuple[np.dtype, tuple, int, int]:
    if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
        raise SafetensorsError(f"{where}: {name!r} must be {{'dtype', 'shape', 'data_offsets'}}, got {str(info)[:120]}")
    dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
    if dtype not in DTYPES:
        raise SafetensorsError(f"{where}: {name!r} has dtype {str(dtype)[:20]!r}; this reader takes "
                               f"{', '.join(DTYPES)}")
    if not isinstance(shape, list) or len(shape) > MAX_NDIM or not all(_is_count(s) for s in shape):
        raise SafetensorsError(f"{where}: {name!r} has an invalid shape {str(shape)[:80]}")
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(_is_count(o) for o in offsets) \
            or offsets[0] > offsets[1]:
        raise SafetensorsError(f"{where}: {name!r} has invalid data_offsets {str(offsets)[:80]}")
    dt = np.dtype(DTYPES[dtype])
    if offsets[1] - offsets[0] != math.prod(shape) * dt.itemsize:
        raise SafetensorsError(f"{where}: {name!r} is {dtype} {shape}, {math.prod(shape) * dt.itemsize:,} bytes, "
                               f"but its data_offsets span {offsets[1] - offsets[0]:,}")
    return dt, tuple(shape), offsets[0], offsets[1]


def load_safetensors(path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """``(arrays, metadata)`` of a safetensors file, with NumPy alone; the header is checked first.

    Before anything beyond the header is allocated: the header's length is at most
    ``MAX_HEADER_BYTES`` and inside the file; it is a JSON object (UTF-8, no name twice, nested at
    most ``MAX_DEPTH`` deep) of tensors ``{"dtype", "shape", "data_offsets"}`` with a dtype of
    ``DTYPES``, a shape of counts, and offsets that span exactly the shape's bytes; together the
    tensors tile the data after the header exactly, with no gap and no overlap, to the end of the
    file; ``__metadata__``, if present, maps strings to strings. Any failure is a
    :class:`SafetensorsError` naming the file. The arrays are native-endian copies.
    """
    path = pathlib.Path(path)
    where = str(path)
    try:
        f = open(path, "rb")
    except IsADirectoryError:
        raise SafetensorsError(f"{where}: is a folder, not a file") from None
    except FileNotFoundError:
        raise SafetensorsError(f"{where}: no such file") from None
    with f:
        size = path.stat().st_size
        prefix = f.read(8)
        if len(prefix) < 8:
            raise SafetensorsError(f"{where}: not a safetensors file ({size} bytes, fewer than the 8 of the header's "
                                   "length)")
        n = int.from_bytes(prefix, "little")
        if n > MAX_HEADER_BYTES:
            raise SafetensorsError(f"{where}: not a safetensors file, or a hostile one (a header of {n:,} bytes, more "
                                   f"than the {MAX_HEADER_BYTES:,} this reader takes)")
        if 8 + n > size:
            raise SafetensorsError(f"{where}: truncated or not a safetensors file (a header of {n:,} bytes in a file "
                                   f"of {size:,})")
        raw = f.read(n)
        if len(raw) != n:
            raise SafetensorsError(f"{where}: truncated while reading the header")
        try:
            text = raw.decode("utf-8")
            if not text.startswith("{"):
                raise ValueError("not a JSON object")
            if json_depth(text) > MAX_DEPTH:
                raise ValueError(f"nested more than {MAX_DEPTH} levels deep")
            header = json.loads(text, object_pairs_hook=_unique_keys)
            if not isinstance(header, dict):
                raise ValueError("not a JSON object")
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise SafetensorsError(f"{where}: not a safetensors file (its header: {str(exc)[:160]})") from None
        metadata = header.pop(METADATA, {})
        if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
            raise SafetensorsError(f"{where}: {METADATA} must map strings to strings")
        infos = {name: _tensor_info(name, info, where) for name, info in header.items()}
        data_bytes = size - 8 - n
        end = 0
        for name, (_, _, begin, stop) in sorted(infos.items(), key=lambda item: (item[1][2], item[1][3])):
            if begin != end:
                what = "overlaps the tensor before it" if begin < end else f"leaves a gap of {begin - end:,} bytes"
                raise SafetensorsError(f"{where}: {name!r} (bytes {begin:,} to {stop:,}) {what}")
            end = stop
        if end != data_bytes:
            raise SafetensorsError(f"{where}: the tensors span {end:,} bytes but the file holds {data_bytes:,} after "
                                   f"the header ({'truncated' if end > data_bytes else 'trailing bytes'})")
        arrays = {}
        for name, (dt, shape, begin, stop) in infos.items():
            f.seek(8 + n + begin)
            buf = bytearray(stop - begin)
            if f.readinto(buf) != len(buf):
                raise SafetensorsError(f"{where}: truncated while reading {name!r}")
            arrays[name] = np.frombuffer(buf, dtype=dt).reshape(shape).astype(dt.newbyteorder("="), copy=False)
    return arrays, dict(metadata)
