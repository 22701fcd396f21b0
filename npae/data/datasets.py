"""MNIST and Fashion-MNIST: a strict IDX reader, an embedded sample, and a verified download.

Where the data come from, in this order (the first that has all four files wins):

1. ``path=``: a folder holding the four IDX files (gzipped or raw), or a folder with a
   ``<dataset>/`` subfolder that does. An explicit path that has neither is an error.
2. the ``NPAE_DATA`` environment variable: a folder with a ``<dataset>/`` subfolder (or the
   files themselves).
3. the user cache: ``$XDG_CACHE_HOME/npae/<dataset>`` (default ``~/.cache/npae/<dataset>``),
   filled by :func:`npae.data.download.download` / ``python -m npae data download``.
4. MNIST only: the **embedded sample** that ships inside npae: the first 10,000 training
   and the first 2,000 test images of the real MNIST, with their labels.

The result says which one it used (``.source``, ``.describe()``), so a sample is never
mistaken for the full set.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from .. import _checks
from .idx import (
    DataError,
    read_idx_sha,
    sha256_of,
)

# -- the datasets --------------------------------------------------------------------------

FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


@dataclass(frozen=True)
class Spec:
    """What a dataset is: its files' SHA-256 (uncompressed) and where to download them."""

    name: str
    title: str
    sha256: dict
    mirrors: tuple
    n_train: int = 60000
    n_test: int = 10000


DATASETS = {
    "mnist": Spec(
        "mnist", "MNIST",
        {
            "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        },
        ("https://ossci-datasets.s3.amazonaws.com/mnist/", "https://storage.googleapis.com/cvdf-datasets/mnist/"),
    ),
    "fashion-mnist": Spec(
        "fashion-mnist", "Fashion-MNIST",
        {
            "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        },
        ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
         "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/"),
    ),
}

#: what a folder of IDX files of no particular set is looked up as (its files are those of MNIST)
_ANY_IDX = Spec("idx", "IDX images", {}, ())

SAMPLE_DIR = pathlib.Path(__file__).resolve().parent / "mnist-sample"
# SHA-256 of the embedded sample's uncompressed files, written by npae/data/make_sample.py
SAMPLE_SHA256 = {
    "train-images-idx3-ubyte": "2889698e6bc3614913e76901316712919d1998fc2b44512451bfe65bc1e668b1",
    "train-labels-idx1-ubyte": "651e38e2ac0632f5113ec18f1df4977117f953197819034009971a6675a0df78",
    "t10k-images-idx3-ubyte": "3f6bd66dee48df299584c67669bceee490faa25f931496bd7473b42106d7daed",
    "t10k-labels-idx1-ubyte": "7b098e5f6a3065807cebeabf36fb1724a8aff19f2673ac08b4923e0e8c715bce",
}
SAMPLE_SIZES = (10000, 2000)


def dataset_spec(dataset: str) -> Spec:
    try:
        return DATASETS[dataset]
    except KeyError:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {sorted(DATASETS)}") from None


def cache_dir(dataset: str = "mnist") -> pathlib.Path:
    """``$XDG_CACHE_HOME/npae/<dataset>``, by default ``~/.cache/npae/<dataset>``."""
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return pathlib.Path(root) / "npae" / dataset_spec(dataset).name


def find_file(folder: pathlib.Path, name: str) -> pathlib.Path | None:
    for candidate in (folder / (name + ".gz"), folder / name):
        if candidate.is_file():
            return candidate
    return None


def _complete(folder: str | os.PathLike | None) -> dict[str, pathlib.Path] | None:
    """The four files in ``folder`` (raw or .gz), or None if any is missing."""
    if folder is None:
        return None
    folder = pathlib.Path(folder)
    found = {name: find_file(folder, name) for name in FILES}
    return found if all(found.values()) else None


def _locate(spec: Spec, path: str | os.PathLike | None) -> tuple[str, pathlib.Path, dict[str, pathlib.Path] | None]:
    """``(source, folder, files)`` following the order in the module docstring."""
    if path is not None:
        path = pathlib.Path(path).expanduser()
        for folder in (path, path / spec.name):
            files = _complete(folder)
            if files:
                return "path", folder, files
        raise DataError(f"{path}: no complete {spec.title} here "
                        f"(need {', '.join(FILES)}, raw or .gz, in it or in {path / spec.name})")
    env = os.environ.get("NPAE_DATA")
    if env:
        for folder in (pathlib.Path(env).expanduser() / spec.name, pathlib.Path(env).expanduser()):
            files = _complete(folder)
            if files:
                return "NPAE_DATA", folder, files
    files = _complete(cache_dir(spec.name))
    if files:
        return "cache", cache_dir(spec.name), files
    if spec.name == "mnist":
        return "sample", SAMPLE_DIR, _complete(SAMPLE_DIR)
    raise DataError(
        f"{spec.title} is not on this machine. Run `python -m npae data download --dataset {spec.name}`, "
        f"or put the four files ({', '.join(FILES)}, raw or .gz) in {cache_dir(spec.name)}, "
        f"or point NPAE_DATA at a folder with a {spec.name}/ subfolder holding them."
    )


class Dataset(tuple):
    """``((x_train, y_train), (x_test, y_test))`` that also says what it is and where it came from.

    Attributes: ``name`` ("mnist", "fashion-mnist", or for other data its file or folder name),
    ``title``, ``source`` (``"path"``, ``"NPAE_DATA"``, ``"cache"`` or ``"sample"``), ``folder``
    (the file or folder read), ``sha`` (a short SHA-256 of the content), ``split`` (how a test
    split was made, when the data had none), ``classes`` (label names, or None), ``notes``
    (what was done to the data, such as a layout converted); ``describe()`` gives the one line
    the demos and the command line print, ``identity()`` what a model file records.
    """

    def __new__(cls, train: tuple[np.ndarray, np.ndarray | None], test: tuple[np.ndarray, np.ndarray | None], *,
                name: str, title: str, source: str, folder: str | os.PathLike, sha: str | None = None,
                split: str | None = None, classes: list[str] | None = None, notes: Iterable[str] = ()) -> Dataset:
        self = super().__new__(cls, (train, test))
        self.name, self.title, self.source, self.folder = name, title, source, pathlib.Path(folder)
        self.sha, self.split, self.classes, self.notes = sha, split, classes, tuple(notes)
        return self

    @property
    def is_sample(self) -> bool:
        return self.source == "sample"

    @property
    def shape(self) -> tuple:
        """The shape of one sample, e.g. (1, 28, 28)."""
        return tuple(self[0][0].shape[1:])

    def describe(self, folder: bool = True) -> str:
        """One line: what, how many, from where. ``folder=False`` leaves out the folder's path, for a
        report meant to be shared (which then names the data by its title and content hash alone)."""
        n_train, n_test = len(self[0][0]), len(self[1][0])
        shape = "x".join(map(str, self.shape))
        if self.is_sample:
            return (f"data: {self.title} embedded sample, {n_train:,} train / {n_test:,} test images "
                    f"(the first of the full 60,000 / 10,000; for the full set: a data path or "
                    f"`python -m npae data download`)")
        where = f"[{self.folder}]" if folder and str(self.folder) != self.title else ""
        where = f"from {self.source} {where}".rstrip() if self.source != "path" else where
        line = f"data: {self.title}, {n_train:,} train / {n_test:,} test images of {shape}"
        line += f", {where}" if where else ""
        if self.sha and self.name not in DATASETS:
            line += f", sha256 {self.sha}"
        extras = list(self.notes) + ([self.split] if self.split else [])
        return line + (f" ({'; '.join(extras)})" if extras else "")

    def identity(self) -> dict:
        """What a model trained on this data records: name, title, sample shape, content hash, where from."""
        return {"name": self.name, "title": self.title, "shape": list(self.shape), "sha": self.sha,
                "source": self.source, "path": str(self.folder), "n_train": len(self[0][0])}

    def __repr__(self) -> str:
        return f"<Dataset {self.describe()}>"


def _images_labels(files: dict[str, pathlib.Path], prefix: str, flatten: bool, dtype: np.dtype,
                   expect_n: int | None) -> tuple[np.ndarray, np.ndarray, str, str]:
    """``(x, y, sha_images, sha_labels)`` of one split of an MNIST-style folder."""
    img, lab = files[f"{prefix}-images-idx3-ubyte"], files[f"{prefix}-labels-idx1-ubyte"]
    (x, sha_x), (y, sha_y) = read_idx_sha(img), read_idx_sha(lab)
    if x.ndim != 3 or x.shape[1:] != (28, 28) or x.dtype != np.uint8:
        raise DataError(f"{img}: expected uint8 images of shape (N, 28, 28), got {x.dtype} {x.shape}")
    if y.ndim != 1 or y.dtype != np.uint8:
        raise DataError(f"{lab}: expected uint8 labels of shape (N,), got {y.dtype} {y.shape}")
    if len(x) != len(y):
        raise DataError(f"{lab}: {len(y)} labels for {len(x)} images in {img}")
    if y.size and y.max() > 9:
        raise DataError(f"{lab}: labels must be 0 to 9, found {y.max()}")
    if expect_n is not None and len(x) != expect_n:
        raise DataError(f"{img}: expected {expect_n:,} images, found {len(x):,}")
    x = (x.astype(dtype) / dtype.type(255)).reshape(len(x), 784 if flatten else 1, *(() if flatten else (28, 28)))
    return x, y, sha_x, sha_y


def identify(digests: dict) -> str | None:
    """Which set four IDX files are, by the SHA-256 of their content: "mnist", "fashion-mnist",
    "mnist-sample" (the embedded sample), or None (someone else's)."""
    for spec in DATASETS.values():
        if digests == spec.sha256:
            return spec.name
    return "mnist-sample" if digests == SAMPLE_SHA256 else None


def load(dataset: str | None = "mnist", *, path: str | os.PathLike | None = None, flatten: bool = False,
         dtype: type | np.dtype | str = np.float32) -> Dataset:
    """Load ``dataset`` ("mnist" or "fashion-mnist"); see the module docstring for the order.
    With ``dataset=None`` (and a ``path``), load the IDX files there as whatever they are.

    Files are named by their content: the official sets by the SHA-256 npae holds for each
    (so Fashion-MNIST is called Fashion-MNIST wherever it sits, and the files of the other set
    are refused), anything else as "IDX images" with a short hash of the content.
    """
    if dataset is None and path is None:
        raise ValueError("load: dataset=None needs a path (the files are named by what they hold)")
    spec = dataset_spec(dataset) if dataset is not None else None
    where = f"load_{spec.name.replace('-', '_')}" if spec else "load"
    dtype = _checks.float_dtype(dtype, where)
    source, folder, files = _locate(spec or _ANY_IDX, path)
    n_train, n_test = SAMPLE_SIZES if source == "sample" else (None, None)
    *train, sha_x, sha_y = _images_labels(files, "train", flatten, dtype, n_train)
    *test, sha_xt, sha_yt = _images_labels(files, "t10k", flatten, dtype, n_test)
    digests = dict(zip(FILES, (sha_x, sha_y, sha_xt, sha_yt)))
    found = identify(digests)
    if source == "sample" and found != "mnist-sample":
        raise DataError(f"{folder}: the embedded sample fails its checksum; reinstall npae")
    if spec is not None and found not in (None, spec.name) and not (found == "mnist-sample" and spec.name == "mnist"):
        other = "npae's MNIST sample" if found == "mnist-sample" else DATASETS[found].title
        raise DataError(f"{folder}: these are the files of {other} (by their SHA-256), not {spec.title}'s; "
                        f"load them with load_{found.replace('-sample', '').replace('-', '_')}()")
    sha = hashlib.sha256("".join(digests[f] for f in FILES).encode()).hexdigest()[:12]
    if found is None:
        title, name = f"IDX images (not the official {spec.title} files)" if spec else "IDX images", folder.name
    else:
        known = DATASETS["mnist" if found == "mnist-sample" else found]
        title, name = known.title, known.name
    source = "sample" if found == "mnist-sample" else source
    return Dataset(tuple(train), tuple(test), name=name, title=title, source=source, folder=folder, sha=sha)


def load_mnist(*, path: str | os.PathLike | None = None, flatten: bool = False,
               dtype: type | np.dtype | str = np.float32) -> Dataset:
    """MNIST as ``(x_train, y_train), (x_test, y_test)``: pixels in [0, 1] of ``dtype``, shaped
    (N, 1, 28, 28), or (N, 784) with ``flatten=True``; labels uint8. Falls back to the embedded sample."""
    return load("mnist", path=path, flatten=flatten, dtype=dtype)


def load_fashion_mnist(*, path: str | os.PathLike | None = None, flatten: bool = False,
                       dtype: type | np.dtype | str = np.float32) -> Dataset:
    """Fashion-MNIST, the same way as :func:`load_mnist` (no embedded sample: download it first)."""
    return load("fashion-mnist", path=path, flatten=flatten, dtype=dtype)


def info() -> str:
    """What is cached and where, with checksums, and what ``load`` would use for each dataset."""
    lines = []
    for spec in DATASETS.values():
        lines.append(f"{spec.title} ({spec.name})")
        folder = cache_dir(spec.name)
        lines.append(f"  cache: {folder}")
        for name in FILES:
            found = find_file(folder, name)
            if found is None:
                lines.append(f"    {name}: missing")
                continue
            try:
                ok = sha256_of(found) == spec.sha256[name]
            except DataError:
                ok = False
            lines.append(f"    {found.name}: {found.stat().st_size:,} bytes, checksum {'ok' if ok else 'MISMATCH'}")
        try:
            source, where, _ = _locate(spec, None)
            lines.append(f"  load_{spec.name.replace('-', '_')}() uses: {source} [{where}]")
        except DataError:
            lines.append(f"  load_{spec.name.replace('-', '_')}() fails: not downloaded")
    env = os.environ.get("NPAE_DATA")
    lines.append(f"NPAE_DATA: {env if env else '(not set)'}")
    return "\n".join(lines)
