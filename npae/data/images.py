"""Your own images in: :func:`load_images` reads arrays, archives, image folders and IDX folders
into the same ``Dataset`` the MNIST loaders return, NCHW, pixels in [0, 1].

What it accepts (``path``):

- an MNIST-style IDX folder (four files, or a ``mnist/`` or ``fashion-mnist/`` subfolder):
  read by :func:`npae.data.datasets.load`, and named by its content (the official sets by their
  SHA-256, anything else as "IDX images");
- a ``.npy`` of images ``(N, H, W)``, ``(N, H, W, C)`` or ``(N, C, H, W)``, or of vectors ``(N, D)``;
- an ``.npz`` with ``x_train`` and ``x_test`` (and optionally ``y_train``, ``y_test``: the
  ``keras.datasets`` layout), or with a single array;
- a folder of PNG or JPEG images, all of one size, either side by side or one subfolder per
  class (the subfolders' names become the labels ``0, 1, ...`` in sorted order). Reading them
  needs Pillow (``pip install "npae[images]"``; matplotlib already depends on it).

Pixels: ``uint8`` is divided by 255 and ``bool`` taken as 0/1; float data must already lie in
[0, 1] (npae's models end in a sigmoid, which cannot reach beyond), else a clear error says
how to scale it. Layout: a 4-D array is taken as channels-last only where that is the one
reading that makes sense (a last axis of 1, 3 or 4 and spatial axes larger than 4, while the
second axis is not such a channel count); where both readings fit, ``layout="nhwc"`` or
``"nchw"`` must say which. Data without a test part is split with a fixed seed, and the
dataset says so. Every dataset is named by its path and a short SHA-256 of its content.
"""

from __future__ import annotations

import hashlib
import math
import os
import pathlib
import warnings
from typing import TYPE_CHECKING

import numpy as np

from .. import _checks
from ..files.npz import Archive, ArchiveError
from .datasets import FILES, DataError, Dataset, dataset_spec, find_file
from .datasets import load as load_idx

if TYPE_CHECKING:  # Pillow is optional: imported only inside the function that reads images
    from PIL import Image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
#: the most numbers (images x channels x pixels) load_images reads: 2**29, 2 GiB as float32 (MNIST is 47
#: million); ``max_values=`` raises it. Checked from headers, before any pixel is read or decoded.
MAX_VALUES = 1 << 29
#: the largest single image: 2**26 pixels (8192 x 8192); bigger is a decompression bomb, not a dataset
MAX_IMAGE_PIXELS = 1 << 26
LAYOUTS = ("nchw", "nhwc")
TEST_FRACTION = 0.1
SPLIT_SEED = 0


def load_images(path: str | os.PathLike, *, layout: str | None = None, test_fraction: float = TEST_FRACTION,
                seed: int = SPLIT_SEED, dtype: type | np.dtype | str = np.float32,
                max_values: int = MAX_VALUES) -> Dataset:
    """Load your own images (or a built-in set's folder) as ``((x_train, y_train), (x_test, y_test))``.

    See the module docstring for what ``path`` may be. ``layout`` ("nhwc" or "nchw") says how a
    4-D array is laid out where its shape does not; ``test_fraction`` and ``seed`` make the test
    split of data that has none. Images come out NCHW (vectors as (N, D)), in ``dtype``.
    ``max_values`` bounds the numbers read (see MAX_VALUES): more is refused before reading.
    Every refusal is a :class:`~npae.data.idx.DataError` naming the file.
    """
    path = pathlib.Path(path).expanduser()
    dtype = _checks.float_dtype(dtype, "load_images")
    if layout is not None and layout not in LAYOUTS:
        raise ValueError(f"load_images: layout must be one of {LAYOUTS} or None, got {layout!r}")
    if not 0 < float(test_fraction) < 1:
        raise ValueError(f"load_images: test_fraction must lie strictly between 0 and 1, got {test_fraction!r}")
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    max_values = _checks.positive_int(max_values, "max_values", "load_images")
    notes = []
    if path.is_dir():
        if _is_idx_folder(path):
            return load_idx(None, path=path, dtype=dtype)
        arrays, classes, sha = _read_folder(path, max_values, notes)
    elif path.suffix.lower() == ".npy":
        arrays, classes, sha = {"x": _load_npy(path, max_values)}, None, _sha_of_files([path])
    elif path.suffix.lower() == ".npz":
        arrays, classes, sha = _load_npz(path, max_values), None, _sha_of_files([path])
    else:
        raise DataError(f"{path}: not something npae reads as images (a .npy, an .npz, an IDX folder or a folder "
                        f"of {'/'.join(s[1:].upper() for s in IMAGE_SUFFIXES)} images)")
    if path.is_dir():  # npae's own reader: (N, H, W, C) is channels-last, whatever its size (and no news)
        layout, layout_notes = "nhwc", []
    else:
        layout_notes = notes
    xs = {k: _as_images(v, layout, path, k, layout_notes) for k, v in arrays.items() if k.startswith("x")}
    xs = {k: _as_pixels(v, dtype, path, k, from_images=path.is_dir()) for k, v in xs.items()}
    ys = {k: np.asarray(v) for k, v in arrays.items() if k.startswith("y")}
    split = None
    if "x_train" in xs:
        if "x_test" not in xs:
            raise DataError(f"{path}: holds x_train but no x_test (the keras.datasets layout has both)")
        if xs["x_train"].shape[1:] != xs["x_test"].shape[1:]:
            raise DataError(f"{path}: x_train's samples are {xs['x_train'].shape[1:]} "
                            f"but x_test's {xs['x_test'].shape[1:]}")
        train, test = (xs["x_train"], ys.get("y_train")), (xs["x_test"], ys.get("y_test"))
    else:
        x, y = xs["x"], ys.get("y")
        if len(x) < 2:
            raise DataError(f"{path}: {len(x)} image(s); training needs at least 2 (one to train on, one to test)")
        order = np.random.default_rng(seed).permutation(len(x))
        n_test = max(1, int(round(test_fraction * len(x))))
        test_i, train_i = np.sort(order[:n_test]), np.sort(order[n_test:])
        train, test = (x[train_i], None if y is None else y[train_i]), (x[test_i], None if y is None else y[test_i])
        split = (f"no test split in the data: {n_test:,} of {len(x):,} images ({test_fraction:.0%}) "
                 f"drawn with seed {seed}")
    name = path.name
    return Dataset(train, test, name=name, title=name, source="path", folder=path, sha=sha, split=split,
                   classes=classes, notes=notes)


def load_dataset(name: str, *, path: str | os.PathLike | None = None,
                 dtype: type | np.dtype | str = np.float32) -> Dataset:
    """A built-in set by name ("mnist" or "fashion-mnist"), found as :func:`npae.data.datasets.load` does."""
    dataset_spec(name)
    return load_idx(name, path=path, dtype=dtype)


# -- reading ----------------------------------------------------------------------------------------
def _is_idx_folder(folder: pathlib.Path) -> bool:
    """Whether the folder holds the four MNIST-style IDX files (itself, not a subfolder)."""
    return all(find_file(folder, f) for f in FILES)


def _sha_of_files(files: list[pathlib.Path], root: pathlib.Path | None = None) -> str:
    h = hashlib.sha256()
    for f in files:
        if root is not None:
            h.update(str(f.relative_to(root)).encode() + b"\0")
        with open(f, "rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()[:12]


def _budget(shape: tuple, path: pathlib.Path, what: str, max_values: int) -> None:
    n = math.prod(shape)
    if n > max_values:
        raise DataError(f"{path}: {what} of shape {tuple(shape)} holds {n:,} numbers, more than the {max_values:,} "
                        f"npae reads (load_images(..., max_values=N) raises the limit, if the memory is there)")


def _load_npy(path: pathlib.Path, max_values: int) -> np.ndarray:
    """The array, memory-mapped: its header (shape, dtype) is checked against the file's size and the
    budget before a byte of it is read (a header that claims more than the file holds is refused)."""
    try:
        with warnings.catch_warnings():  # a shape whose product overflows: refused below, not warned about
            warnings.simplefilter("ignore", RuntimeWarning)
            x = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as exc:  # NumPy's header parser fails in many ways (ValueError, SyntaxError, TokenError...)
        raise DataError(f"{path}: not a readable .npy array of numbers ({_safe(exc)})") from None
    if not isinstance(x, np.ndarray):
        raise DataError(f"{path}: not a .npy array")
    _budget(x.shape, path, "the array", max_values)
    return x


def _load_npz(path: pathlib.Path, max_values: int) -> dict:
    """The arrays of an .npz, read through npae's strict archive reader: every member's header is
    checked (numbers only, its size in the zip directory exactly what its shape implies, the total
    within the budget) before anything is decompressed, so a zip bomb or a pickle is refused unread."""
    try:
        with Archive(path, max_values=max_values, kind="image archive (.npz)") as z:
            keys = list(z.headers)
            if "x_train" in keys or "x_test" in keys:
                return {k: z.read(k) for k in ("x_train", "x_test", "y_train", "y_test") if k in keys}
            if len(keys) != 1:
                raise DataError(f"{path}: holds {keys}; npae reads x_train and x_test (keras.datasets), or one array")
            return {"x": z.read(keys[0])}
    except ArchiveError as exc:
        raise DataError(str(exc)) from None


def _safe(exc: BaseException) -> str:
    text = str(exc).split("\n")[0]
    return type(exc).__name__ if "pickle" in text.lower() else text


def _images_in(folder: pathlib.Path) -> list[pathlib.Path]:
    """The image files of a folder (by suffix), sorted; a link that leads nowhere (broken, or a loop)
    is refused by name rather than skipped."""
    found = []
    for p in sorted(folder.iterdir()):
        if p.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        if p.is_symlink() and not p.exists():
            raise DataError(f"{p}: a symbolic link that leads to no file (broken, or a loop)")
        if p.is_file():
            found.append(p)
    return found


#: Pillow's modes, as what npae makes of them: (channels, bits, whether something is dropped)
_GREY = {"1", "L", "LA", "I;16", "I;16B", "I;16L", "I;16N", "P"}


def _plan(f: pathlib.Path, im: Image.Image) -> tuple[str, str | None]:
    """``(target, note)``: how an image of this mode is read ("L", "RGB" or "I;16"), and what that
    changes (None when nothing), refusing modes whose scale is unknown (32-bit integers, floats)."""
    mode = im.mode
    if mode == "I" and im.format == "PNG":  # a 16-bit grey PNG, as Pillow before 10 opens it (0..65535)
        return "I;16", "16-bit pixels scaled by 65535"
    if mode in ("I", "F"):
        raise DataError(f"{f}: a {'32-bit integer' if mode == 'I' else 'floating-point'} image (mode {mode}), whose "
                        "pixel scale npae cannot know; save it as 8- or 16-bit, or load it as a .npy in [0, 1]")
    if mode.startswith("I;16"):
        return "I;16", "16-bit pixels scaled by 65535"
    alpha = mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in im.info)
    if mode == "P":
        colour = im.convert("RGB").getextrema() != im.convert("L").convert("RGB").getextrema()
        target = "RGB" if colour else "L"
    else:
        target = "L" if mode in _GREY else "RGB"
    note = "alpha channel dropped" if alpha else ("CMYK converted to RGB" if mode == "CMYK" else None)
    return target, note


def _read_folder(folder: pathlib.Path, max_values: int, notes: list[str]) -> tuple[dict, list | None, str]:
    """``({"x": (N, H, W[, C]) uint8 or uint16, "y": labels or absent}, class names or None, sha)``.

    Every file's header (size, mode) is read first, and the whole set checked against the budget and
    for one size, before any pixel is decoded."""
    files, labels, classes = _images_in(folder), None, None
    if not files:
        subfolders = sorted(p for p in folder.iterdir() if p.is_dir())
        per_class = [(p, _images_in(p)) for p in subfolders]
        empty = [p.name for p, group in per_class if not group]
        per_class = [(p, group) for p, group in per_class if group]
        if not per_class:
            raise DataError(f"{folder}: no IDX files, and no {'/'.join(s[1:].upper() for s in IMAGE_SUFFIXES)} images "
                            f"in it or in its subfolders")
        if empty:
            notes.append(f"{len(empty)} subfolder(s) without images left out, not classes: {', '.join(empty[:5])}"
                         + (" ..." if len(empty) > 5 else ""))
        classes = [p.name for p, _ in per_class]
        files = [f for _, group in per_class for f in group]
        labels = np.concatenate([np.full(len(group), i, np.int64) for i, (_, group) in enumerate(per_class)])
    try:
        from PIL import Image
    except ImportError:
        raise DataError(f"{folder}: reading PNG/JPEG images needs Pillow: pip install \"npae[images]\"") from None
    outside = [f for f in files if folder.resolve() not in f.resolve().parents]
    if outside:
        notes.append(f"{len(outside)} file(s) are links to outside the folder, read where they lead "
                     f"(e.g. {outside[0].relative_to(folder)})")
    plans, size, changed = [], None, {}
    for f in files:  # headers only: Image.open reads no pixels
        try:
            with warnings.catch_warnings():  # Pillow's warning: npae's own pixel limit is checked here instead
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                with Image.open(f) as im:
                    if im.width * im.height > MAX_IMAGE_PIXELS:
                        raise DataError(f"{f}: {im.width}x{im.height} pixels, more than the {MAX_IMAGE_PIXELS:,} npae "
                                        "reads in one image (a decompression bomb, or not a dataset image)")
                    if size is not None and im.size != size:
                        raise DataError(f"{folder}: images of different sizes ({files[0].name} is {size[0]}x{size[1]}, "
                                        f"{f.name} is {im.width}x{im.height}); npae does not resize: bring them to one "
                                        "size first")
                    size = im.size
                    target, note = _plan(f, im)
        except DataError:
            raise
        except Image.DecompressionBombError as exc:  # Pillow's own limit, met at the header
            raise DataError(f"{f}: more pixels than npae reads in one image, a decompression bomb ({exc})") from None
        except (OSError, ValueError, SyntaxError) as exc:
            raise DataError(f"{f}: not a readable image ({exc})") from None
        plans.append(target)
        if note:
            changed[note] = changed.get(note, 0) + 1
    mode = "RGB" if "RGB" in plans else ("I;16" if "I;16" in plans and "L" not in plans else "L")
    if "I;16" in plans and "L" in plans:
        raise DataError(f"{folder}: 8-bit and 16-bit grey images mixed; npae will not guess one scale for both")
    channels = 3 if mode == "RGB" else 1
    n = len(files) * size[0] * size[1] * channels
    if n > max_values:
        raise DataError(f"{folder}: {len(files):,} images of {size[0]}x{size[1]}x{channels} are {n:,} numbers, "
                        f"more than the {max_values:,} npae reads (load_images(..., max_values=N) raises the limit)")
    notes.extend(f"{note} ({count:,} of {len(files):,} images)" for note, count in changed.items())
    if mode == "RGB" and "L" in plans:
        notes.append(f"grey images given three equal channels ({plans.count('L'):,} of {len(files):,})")
    out = np.empty((len(files), size[1], size[0]) + ((3,) if mode == "RGB" else ()),
                   np.uint16 if mode == "I;16" else np.uint8)
    for i, f in enumerate(files):
        try:
            with Image.open(f) as im:
                with warnings.catch_warnings():
                    warnings.simplefilter("error", Image.DecompressionBombWarning)
                    im.load()
                a = np.asarray(im).astype(np.uint16) if mode == "I;16" else np.asarray(im.convert(mode))
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise DataError(f"{f}: not a readable image ({exc})") from None
        if a.shape != out.shape[1:]:
            raise DataError(f"{f}: decodes to {a.shape}, not the {out.shape[1:]} its header promised")
        out[i] = a
    result = {"x": out}
    if labels is not None:
        result["y"] = labels
    return result, classes, _sha_of_files(files, folder)


# -- layout and pixels ------------------------------------------------------------------------------
def _as_images(x: np.ndarray, layout: str | None, path: pathlib.Path, key: str, notes: list[str]) -> np.ndarray:
    """``x`` as (N, C, H, W) images, or (N, D) vectors; never a reinterpretation of its axes."""
    if x.ndim == 2:
        return x  # vectors
    if x.ndim == 3:
        return x[:, None]  # grey images (N, H, W)
    if x.ndim != 4:
        raise DataError(f"{path}: {key} has shape {x.shape}; expected (N, D), (N, H, W), (N, H, W, C) or (N, C, H, W)")
    last, second = x.shape[3] in (1, 3, 4) and min(x.shape[1:3]) > 4, x.shape[1] in (1, 3, 4) and min(x.shape[2:]) > 4
    if layout is None:
        if last and not second:
            layout = "nhwc"
        elif second and not last:
            layout = "nchw"
        else:
            raise DataError(f"{path}: cannot tell whether {key} of shape {x.shape} is channels-last or channels-first; "
                            f"say which with --layout nhwc or --layout nchw (layout= in Python)")
    if layout == "nhwc":
        if key in ("x", "x_train"):
            notes.append("channels-last (N, H, W, C) converted to (N, C, H, W)")
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    return x


def _as_pixels(x: np.ndarray, dtype: np.dtype, path: pathlib.Path, key: str, from_images: bool = False) -> np.ndarray:
    """uint8 / 255, bool as 0/1, floats kept when in [0, 1], and the 16-bit images of a folder / 65535 (the
    PNG's own scale; an array's uint16 has none npae can know); anything else is refused with the way to fix it."""
    if x.dtype == np.uint8:
        return x.astype(dtype) / dtype.type(255)
    if x.dtype == np.uint16 and from_images:
        return x.astype(dtype) / dtype.type(65535)
    if x.dtype == bool:
        return x.astype(dtype)
    if x.dtype.kind == "f":
        if x.size and not np.all(np.isfinite(x)):
            raise DataError(f"{path}: {key} holds NaN or infinite values")
        lo, hi = (float(x.min()), float(x.max())) if x.size else (0.0, 0.0)
        if lo < 0 or hi > 1:
            raise DataError(f"{path}: {key} holds values in [{lo:g}, {hi:g}], "
                            f"but npae's models expect pixels in [0, 1] "
                            f"(their sigmoid output cannot reach beyond): divide 8-bit values by 255, or rescale "
                            f"with (x - x.min()) / (x.max() - x.min())")
        return x.astype(dtype, copy=False)
    raise DataError(f"{path}: {key} is {x.dtype}; npae reads uint8 pixels (0..255), booleans, or floats in [0, 1]; "
                    f"convert it, e.g. (x / x.max()).astype(np.float32)")
