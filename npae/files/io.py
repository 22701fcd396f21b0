"""Saving and loading models, layers and checkpoints: one ``.npz`` of plain arrays, no pickle.

A file holds the weights as ``param/<dotted name>`` arrays, the non-trainable state as
``buffer/<dotted name>`` arrays, and a JSON description in the array ``__npae__`` (UTF-8
bytes): the format name and version, the architecture as configurations (a model's, or a
layer's: any ``Sequential`` or npae layer can be saved on its own), and for a checkpoint
the optimizer state (``optim/...`` arrays), the random generator's state, the epoch and the
training history (a JSON object that :mod:`npae.train` writes and reads).

Loading reads with ``allow_pickle=False`` and builds only what npae's registries hold
(``MODELS``, ``LAYERS``, ``PENALTIES``, ``NOISES``, ``OPTIMIZERS``), by name, so a file can
never run code. Everything is checked (names, shapes, dtypes, finiteness) before anything is
returned: a file that is not an npae file, was tampered with, or comes from a newer format
raises :class:`ModelFileError`, never a half-loaded model.

Writes are atomic (:mod:`npae._files`): a process killed mid-save leaves the previous file intact.
"""

from __future__ import annotations

import json
import math
import os
import pathlib
from typing import Any

import numpy as np

from .. import init as _init
from .._files import atomic_write
from .._version import __version__
from ..core import LAYERS, Layer, Sequential
from ..models.autoencoders import MODELS, Model, find_layer
from ..objectives.noise import NOISES
from ..objectives.penalties import PENALTIES
from ..optim import OPTIMIZERS, Optimizer
from ..registry import Registry
from .npz import Archive, ArchiveError, _describe, json_depth

FORMAT = "npae"
VERSION = 2  # 2: buffers, and a single layer (a Sequential) as the saved object
META = "__npae__"


class ModelFileError(ValueError):
    """The file is not a valid npae model or checkpoint (or is from a newer npae)."""


# -- writing ----------------------------------------------------------------------------------
def _meta_array(meta: dict) -> np.ndarray:
    return np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)


def _check_saveable(obj: Model | Layer) -> None:
    """Refuse, before writing anything, what load could not rebuild: a class npae's registries
    do not hold (a subclass defined elsewhere), a custom loss function, a TiedDense whose
    source is not in the encoder of the same model."""
    def known(registry: Registry, thing: object, what: str) -> None:
        name = type(thing).__name__
        if registry.get(name) is not type(thing):
            raise ValueError(f"save: {what} {name} is not in npae's registry, so load could not rebuild it; "
                             f"register the class ({registry.what.upper()}S.register) or use npae's own")

    if isinstance(obj, Layer):
        layers = [obj] + ([layer for _, layer in obj.walk()] if isinstance(obj, Sequential) else [])
    else:
        known(MODELS, obj, "model")
        layers = []
        for part in (obj.encoder, obj.decoder):
            layers += [part] + ([layer for _, layer in part.walk()] if isinstance(part, Sequential) else [])
        for attr, registry in (("code_penalty", PENALTIES), ("weight_decay", PENALTIES), ("noise", NOISES)):
            if getattr(obj, attr, None) is not None:
                known(registry, getattr(obj, attr), attr.replace("_", " "))
    for layer in layers:
        known(LAYERS, layer, "layer")


def _model_arrays(model: Model | Layer, kind: str, **more: object) -> dict:
    """The description (format, version, architecture, and ``more``), every weight and every buffer, as arrays."""
    _check_saveable(model)
    meta = {"format": FORMAT, "version": VERSION, "kind": kind, "npae": __version__, "model": model.config(), **more}
    arrays = {META: _meta_array(meta)}
    arrays.update({f"param/{n}": p.value for n, p in model.named_params()})
    arrays.update({f"buffer/{n}": b for n, b in model.named_buffers()})
    return arrays


def _write(path: str | os.PathLike, arrays: dict) -> None:
    atomic_write(path, lambda f: np.savez(f, **arrays))


def save(model: Model | Layer, path: str | os.PathLike) -> None:
    """Save ``model`` (an Autoencoder, a VAE, or any npae layer such as a Sequential) to ``path`` (.npz), atomically."""
    _write(path, _model_arrays(model, "model"))


def save_checkpoint(path: str | os.PathLike, model: Model | Layer, optimizer: Optimizer, rng: np.random.Generator,
                    history: dict, epoch: int, extra: dict | None = None) -> None:
    """Model, optimizer state, generator state, history (a JSON object) and epoch: all a resumed run needs."""
    arrays = _model_arrays(model, "checkpoint", optimizer=type(optimizer).__name__, rng=rng.bit_generator.state,
                           epoch=int(epoch), history=history, extra=extra or {})
    arrays.update({f"optim/{k}": v for k, v in optimizer.state_dict().items()})
    _write(path, arrays)


# -- reading ----------------------------------------------------------------------------------
MAX_DESCRIPTION_BYTES = 1 << 20  # a JSON description of 1 MiB is some 20,000 layers
MAX_DEPTH = 64  # how deeply a description may nest; npae's own nest 3 or 4 deep


def _read(path: str | os.PathLike) -> tuple[dict, Archive]:
    """The description, checked, and the archive whose headers are checked (no payload read yet)."""
    path = pathlib.Path(path)
    try:
        archive = Archive(path)
    except ArchiveError as exc:
        raise ModelFileError(str(exc)) from None
    try:
        meta = _description(archive, path)
    except BaseException:
        archive.close()
        raise
    return meta, archive


MEMBER_PREFIXES = ("param/", "buffer/", "optim/")


def _description(archive: Archive, path: pathlib.Path) -> dict:
    if META not in archive.headers:
        raise ModelFileError(f"{path}: not an npae model file (no {META} entry)")
    strangers = [k for k in archive.headers if k != META and not k.startswith(MEMBER_PREFIXES)]
    if strangers:
        raise ModelFileError(f"{path}: not an npae model file (unexpected member {strangers[0]!r})")
    shape, dtype = archive.headers[META]
    if dtype != np.uint8 or len(shape) != 1:
        raise ModelFileError(f"{path}: corrupt description (not a byte string but {dtype} {shape})")
    if shape[0] > MAX_DESCRIPTION_BYTES:
        raise ModelFileError(f"{path}: a description of {shape[0]:,} bytes, "
                             f"more than the {MAX_DESCRIPTION_BYTES:,} npae reads")
    try:
        text = archive.read(META).tobytes().decode("utf-8")
        if json_depth(text) > MAX_DEPTH:
            raise ValueError(f"nested more than {MAX_DEPTH} levels deep")
        meta = json.loads(text)
        if not isinstance(meta, dict):
            raise ValueError("not a JSON object")
    except ArchiveError as exc:
        raise ModelFileError(str(exc)) from None
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ModelFileError(f"{path}: corrupt description ({_describe(exc)})") from None
    if meta.get("format") != FORMAT:
        raise ModelFileError(f"{path}: not an npae model file (format {meta.get('format')!r})")
    version = meta.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ModelFileError(f"{path}: invalid format version {version!r}")
    if version > VERSION:
        raise ModelFileError(f"{path}: written by a newer npae (format version {version}; this npae reads up to "
                             f"{VERSION}); upgrade npae")
    return meta


class _Builder:
    """Builds what a description names, from the registries only; ``encoder`` (already built)
    is where a decoder's TiedDense finds its source."""

    def __init__(self, path: str | os.PathLike, encoder: Layer | None = None):
        self.path, self.encoder = path, encoder

    def _construct(self, registry: Registry, cfg: dict, what: str, with_context: bool = True) -> Any:
        """``cls.from_config(cfg, self)`` (models, layers) or ``cls(**arguments)`` (penalties, noises)."""
        name = _type_of(cfg)
        if name not in registry:
            named = cfg.get("type") if isinstance(cfg, dict) else cfg
            raise ModelFileError(f"{self.path}: unknown {what} {_short(named)}")
        cls = registry[name]
        try:
            if with_context:
                return cls.from_config(cfg, self)
            return cls(**{k: v for k, v in cfg.items() if k != "type"})
        except ModelFileError:
            raise
        except (TypeError, ValueError, KeyError, IndexError, OverflowError, AttributeError) as exc:
            raise ModelFileError(f"{self.path}: invalid {what} configuration {_short(cfg, 200)}: "
                                 f"{_describe(exc)}") from None

    def build(self, cfg: dict) -> Layer:
        """A layer (a Sequential builds its layers through here too)."""
        return self._construct(LAYERS, cfg, "layer")

    def build_from(self, registry: Registry, cfg: dict) -> Any:
        """A penalty or a noise, from its registry."""
        return self._construct(registry, cfg, registry.what, with_context=False)

    def with_encoder(self, encoder: Layer) -> _Builder:
        return _Builder(self.path, encoder)

    def layer_at(self, path: str) -> Layer:
        if self.encoder is None:
            raise ValueError("a TiedDense outside a decoder has no encoder to be tied to")
        return find_layer(self.encoder, path)


def build(cfg: dict, path: str | os.PathLike = "<config>") -> Model | Layer:
    """The model or layer ``cfg`` (a ``config()``) describes, freshly initialized; only npae classes are built."""
    if not isinstance(cfg, dict):
        raise ModelFileError(f"{path}: invalid model description")
    builder = _Builder(path)
    if _type_of(cfg) in MODELS:
        return builder._construct(MODELS, cfg, "model")
    if _type_of(cfg) in LAYERS:
        return builder.build(cfg)
    raise ModelFileError(f"{path}: unknown model type {_short(cfg.get('type'))}")


def _type_of(cfg: object) -> str | None:
    """The ``"type"`` a description names, if it is a string."""
    t = cfg.get("type") if isinstance(cfg, dict) else None
    return t if isinstance(t, str) else None


def _check_against(model: Model | Layer, archive: Archive, path: str | os.PathLike) -> None:
    """Every parameter and buffer of ``model`` against the stored headers: names, shapes, dtypes."""
    for prefix, own in (("param/", {n: p.value for n, p in model.named_params()}),
                        ("buffer/", dict(model.named_buffers()))):
        stored = {k[len(prefix):]: v for k, v in archive.headers.items() if k.startswith(prefix)}
        if set(stored) != set(own):
            missing, extra = sorted(set(own) - set(stored)), sorted(set(stored) - set(own))
            what = "parameters" if prefix == "param/" else "buffers"
            raise ModelFileError(f"{path}: {what} do not match the architecture "
                                 f"(missing {missing}, unexpected {extra})")
        for name, target in own.items():
            shape, dtype = stored[name]
            if shape != target.shape or dtype != target.dtype:
                raise ModelFileError(f"{path}: {prefix}{name} is {dtype} {shape}, the architecture needs "
                                     f"{target.dtype} {target.shape}")


def _stored_values(archive: Archive, prefixes: tuple[str, ...] = ("param/", "buffer/")) -> int:
    return sum(math.prod(shape) for key, (shape, _) in archive.headers.items() if key.startswith(prefixes))


#: what building may allocate beyond the values a file stores: enough to build a model whose
#: shapes differ a little from the file's (and then say exactly which), 4 MiB of float32
BUILD_ALLOWANCE = 1 << 20


def _build_within(cfg: dict, archive: Archive, path: str | os.PathLike) -> Model | Layer:
    """Build the model, allowed to allocate no more values than the file stores for it (plus
    ``BUILD_ALLOWANCE``): a description that needs more (a Dense(784, 10**9) beside a 784 x 64
    matrix) is refused before anything of that size is allocated."""
    try:
        with _init.allocation_budget(_stored_values(archive) + BUILD_ALLOWANCE):
            return build(cfg, path)
    except _init.BudgetExceeded as exc:
        raise ModelFileError(f"{path}: the description asks for more weights than the file holds ({exc})") from None


def _read_into(model: Model | Layer, archive: Archive, path: str | os.PathLike) -> None:
    """Read the checked arrays and copy them into the model's parameters and buffers (finite only)."""
    targets = [(f"param/{n}", p.value) for n, p in model.named_params()]
    targets += [(f"buffer/{n}", b) for n, b in model.named_buffers()]
    arrays = {}
    try:
        for key, _ in targets:
            arrays[key] = archive.read(key)
    except ArchiveError as exc:
        raise ModelFileError(str(exc)) from None
    for key, a in arrays.items():
        if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
            raise ModelFileError(f"{path}: {key} contains NaN or infinite values")
    for key, target in targets:
        target[...] = arrays[key]


def differences(a: object, b: object, names: tuple[str, str] = ("first", "second"), where: str = "") -> list[str]:
    """Where two descriptions (``config()`` dicts) differ, one line each:
    ``"encoder.layers.0.n_out: 16 (first) vs 8 (second)"``."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in list(a) + [k for k in b if k not in a]:
            out += differences(a.get(key), b.get(key), names, f"{where}.{key}" if where else str(key))
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, names, f"{where}.{i}")]
    return [] if a == b else [f"{where}: {_short(a)} ({names[0]}) vs {_short(b)} ({names[1]})"]


def _short(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def load(path: str | os.PathLike) -> Model | Layer:
    """Load what :func:`save` wrote (a model, or a layer such as a Sequential), or the model inside a checkpoint.

    The file is checked before anything it describes is allocated (:mod:`npae.files.npz`): its
    zip directory, every array's header, the description's size and depth, and that the
    architecture needs exactly the arrays the file holds. Any failure is a ModelFileError.
    """
    meta, archive = _read(path)
    with archive:
        model = _build_within(meta.get("model"), archive, path)
        _check_against(model, archive, path)
        _read_into(model, archive, path)
    return model


def load_checkpoint(path: str | os.PathLike) -> dict:
    """``{"model", "optimizer", "optimizer_state", "rng_state", "epoch", "history", "extra"}``;
    ``optimizer`` is the class, ``history`` the JSON object fit wrote."""
    meta, archive = _read(path)
    with archive:
        if meta.get("kind") != "checkpoint":
            raise ModelFileError(f"{path}: a saved model, not a checkpoint (resume needs a file written by "
                                 f"fit(checkpoint=...))")
        model = _build_within(meta.get("model"), archive, path)
        _check_against(model, archive, path)
        _read_into(model, archive, path)
        if meta.get("optimizer") not in OPTIMIZERS:
            raise ModelFileError(f"{path}: unknown optimizer {meta.get('optimizer')!r}")
        epoch = meta.get("epoch")
        if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0:
            raise ModelFileError(f"{path}: invalid epoch {epoch!r}")
        try:
            optimizer_state = {k[len("optim/"):]: archive.read(k) for k in archive.headers if k.startswith("optim/")}
        except ArchiveError as exc:
            raise ModelFileError(str(exc)) from None
    extra = meta.get("extra") or {}
    if not isinstance(extra, dict):
        raise ModelFileError(f"{path}: invalid extra {extra!r}")
    return {"model": model, "optimizer": OPTIMIZERS[meta["optimizer"]], "optimizer_state": optimizer_state,
            "rng_state": meta.get("rng"), "epoch": epoch, "history": meta.get("history"), "extra": extra}
