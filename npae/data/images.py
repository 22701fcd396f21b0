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
import os
import pathlib
from typing import TYPE_CHECKING

import numpy as np

from .. import _checks
from .datasets import FILES, DataError, Dataset, dataset_spec, find_file
from .datasets import load as load_idx

if TYPE_CHECKING:  # Pillow is optional: imported only inside the function that reads images
    from PIL import Image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
LAYOUTS = ("nchw", "nhwc")
TEST_FRACTION = 0.1
SPLIT_SEED = 0


def load_images(path: str | os.PathLike, *, layout: str | None = None, test_fraction: float = TEST_FRACTION,
                seed: int = SPLIT_SEED, dtype: type | np.dtype | str = np.float32) -> Dataset:
    """Load your own images (or a built-in set's folder) as ``((x_train, y_train), (x_test, y_test))``.

    See the module docstring for what ``path`` may be. ``layout`` ("nhwc" or "nchw") says how a
    4-D array is laid out where its shape does not; ``test_fraction`` and ``seed`` make the test
    split of data that has none. Images come out NCHW (vectors as (N, D)), in ``dtype``.
    """
    path = pathlib.Path(path).expanduser()
    dtype = _checks.float_dtype(dtype, "load_images")
    if layout is not None and layout not in LAYOUTS:
        raise ValueError(f"load_images: layout must be one of {LAYOUTS} or None, got {layout!r}")
    if not 0 < float(test_fraction) < 1:
        raise ValueError(f"load_images: test_fraction must lie strictly between 0 and 1, got {test_fraction!r}")
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    if path.is_dir():
        if _is_idx_folder(path):
            return load_idx(None, path=path, dtype=dtype)
        arrays, classes, sha = _read_folder(path)
    elif path.suffix.lower() == ".npy":
        arrays, classes, sha = {"x": _load_npy(path)}, None, _sha_of_files([path])
    elif path.suffix.lower() == ".npz":
        arrays, classes, sha = _load_npz(path), None, _sha_of_files([path])
    else:
        raise DataError(f"{path}: not something npae reads as images (a .npy, an .npz, an IDX folder or a folder "
                        f"of {'/'.join(s[1:].upper() for s in IMAGE_SUFFIXES)} images)")
    notes = []
    xs = {k: _as_images(v, layout, path, k, notes) for k, v in arrays.items() if k.startswith("x")}
    xs = {k: _as_pixels(v, dtype, path, k) for k, v in xs.items()}
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


def _load_npy(path: pathlib.Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(f"{path}: not a readable .npy array of numbers ({_safe(exc)})") from None


def _load_npz(path: pathlib.Path) -> dict:
    try:
        with np.load(path, allow_pickle=False) as z:
            keys = list(z.files)
            if "x_train" in keys or "x_test" in keys:
                return {k: z[k] for k in ("x_train", "x_test", "y_train", "y_test") if k in keys}
            if len(keys) != 1:
                raise DataError(f"{path}: holds {keys}; npae reads x_train and x_test (keras.datasets), or one array")
            return {"x": z[keys[0]]}
    except DataError:
        raise
    except (ValueError, OSError, EOFError, KeyError) as exc:
        raise DataError(f"{path}: not a readable .npz of number arrays ({_safe(exc)})") from None


def _safe(exc: BaseException) -> str:
    text = str(exc).split("\n")[0]
    return type(exc).__name__ if "pickle" in text.lower() else text


def _images_in(folder: pathlib.Path) -> list[pathlib.Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _read_folder(folder: pathlib.Path) -> tuple[dict, list | None, str]:
    """``({"x": uint8 (N, H, W[, C]), "y": labels or absent}, class names or None, sha)``."""
    files, labels, classes = _images_in(folder), None, None
    if not files:
        subfolders = sorted(p for p in folder.iterdir() if p.is_dir() and _images_in(p))
        if not subfolders:
            raise DataError(f"{folder}: no IDX files, and no {'/'.join(s[1:].upper() for s in IMAGE_SUFFIXES)} images "
                            f"in it or in its subfolders")
        classes = [p.name for p in subfolders]
        per_class = [_images_in(p) for p in subfolders]
        files = [f for group in per_class for f in group]
        labels = np.concatenate([np.full(len(group), i, np.int64) for i, group in enumerate(per_class)])
    try:
        from PIL import Image
    except ImportError:
        raise DataError(f"{folder}: reading PNG/JPEG images needs Pillow: pip install \"npae[images]\"") from None
    images, modes = [], set()
    for f in files:
        try:
            with Image.open(f) as im:
                im.load()
                modes.add("L" if im.mode in ("1", "L", "LA", "I", "I;16", "F", "P") and not _has_colour(im) else "RGB")
                images.append((f, im.copy()))
        except (OSError, ValueError, SyntaxError) as exc:
            raise DataError(f"{f}: not a readable image ({exc})") from None
    mode = "RGB" if "RGB" in modes else "L"
    arrays = []
    for f, im in images:
        a = np.asarray(im.convert(mode))
        if arrays and a.shape != arrays[0].shape:
            raise DataError(f"{folder}: images of different sizes ({files[0].name} is {_size(arrays[0])}, {f.name} "
                            f"is {_size(a)}); npae does not resize: bring them to one size first")
        arrays.append(a)
    out = {"x": np.stack(arrays)}
    if labels is not None:
        out["y"] = labels
    return out, classes, _sha_of_files(files, folder)


def _has_colour(im: Image.Image) -> bool:
    return im.mode == "P" and im.convert("RGB").getextrema() != im.convert("L").convert("RGB").getextrema()


def _size(a: np.ndarray) -> str:
    return f"{a.shape[1]}x{a.shape[0]}"


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


def _as_pixels(x: np.ndarray, dtype: np.dtype, path: pathlib.Path, key: str) -> np.ndarray:
    """uint8 / 255, bool as 0/1, floats kept when in [0, 1]; anything else is refused with the way to fix it."""
    if x.dtype == np.uint8:
        return x.astype(dtype) / dtype.type(255)
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
