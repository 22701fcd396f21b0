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
import pathlib
import zipfile

import numpy as np

from ._files import atomic_write
from ._version import __version__
from .autoencoders import MODELS, find_layer
from .core import LAYERS, Layer
from .optim import OPTIMIZERS

FORMAT = "npae"
VERSION = 2  # 2: buffers, and a single layer (a Sequential) as the saved object
META = "__npae__"


class ModelFileError(ValueError):
    """The file is not a valid npae model or checkpoint (or is from a newer npae)."""


# -- writing ----------------------------------------------------------------------------------
def _meta_array(meta: dict) -> np.ndarray:
    return np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)


def _model_arrays(model, kind: str, **more) -> dict:
    """The description (format, version, architecture, and ``more``), every weight and every buffer, as arrays."""
    meta = {"format": FORMAT, "version": VERSION, "kind": kind, "npae": __version__, "model": model.config(), **more}
    arrays = {META: _meta_array(meta)}
    arrays.update({f"param/{n}": p.value for n, p in model.named_params()})
    arrays.update({f"buffer/{n}": b for n, b in model.named_buffers()})
    return arrays


def _write(path, arrays: dict) -> None:
    atomic_write(path, lambda f: np.savez(f, **arrays))


def save(model, path) -> None:
    """Save ``model`` (an Autoencoder, a VAE, or any npae layer such as a Sequential) to ``path`` (.npz), atomically."""
    _write(path, _model_arrays(model, "model"))


def save_checkpoint(path, model, optimizer, rng: np.random.Generator, history: dict, epoch: int,
                    extra: dict | None = None) -> None:
    """Model, optimizer state, generator state, history (a JSON object) and epoch: all a resumed run needs."""
    arrays = _model_arrays(model, "checkpoint", optimizer=type(optimizer).__name__, rng=rng.bit_generator.state,
                           epoch=int(epoch), history=history, extra=extra or {})
    arrays.update({f"optim/{k}": v for k, v in optimizer.state_dict().items()})
    _write(path, arrays)


# -- reading ----------------------------------------------------------------------------------
def _read(path) -> tuple[dict, dict]:
    path = pathlib.Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            if not isinstance(z, np.lib.npyio.NpzFile):
                raise ModelFileError(f"{path}: not an npae model file (a bare .npy array, not an .npz archive)")
            if META not in z.files:
                raise ModelFileError(f"{path}: not an npae model file (no {META} entry)")
            arrays = {k: z[k] for k in z.files}
    except ModelFileError:
        raise
    except FileNotFoundError:
        raise ModelFileError(f"{path}: no such file") from None
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        # with allow_pickle=False an object array raises ValueError instead of being unpickled
        raise ModelFileError(f"{path}: not a readable npae model file ({exc})") from None
    raw = arrays.pop(META)
    try:
        if raw.dtype != np.uint8 or raw.ndim != 1:
            raise ValueError("description is not a byte string")
        meta = json.loads(raw.tobytes().decode("utf-8"))
        if not isinstance(meta, dict):
            raise ValueError("description is not a JSON object")
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"{path}: corrupt description ({exc})") from None
    if meta.get("format") != FORMAT:
        raise ModelFileError(f"{path}: not an npae model file (format {meta.get('format')!r})")
    version = meta.get("version")
    if not isinstance(version, int) or version < 1:
        raise ModelFileError(f"{path}: invalid format version {version!r}")
    if version > VERSION:
        raise ModelFileError(f"{path}: written by a newer npae (format version {version}; this npae reads up to {VERSION}); upgrade npae")
    return meta, arrays


class _Builder:
    """Builds what a description names, from the registries only; ``encoder`` (already built)
    is where a decoder's TiedDense finds its source."""

    def __init__(self, path, encoder: Layer | None = None):
        self.path, self.encoder = path, encoder

    def _construct(self, registry, cfg, what: str, with_context: bool = True):
        """``cls.from_config(cfg, self)`` (models, layers) or ``cls(**arguments)`` (penalties, noises)."""
        if not isinstance(cfg, dict) or cfg.get("type") not in registry:
            raise ModelFileError(f"{self.path}: unknown {what} {cfg.get('type') if isinstance(cfg, dict) else cfg!r}")
        cls = registry[cfg["type"]]
        try:
            if with_context:
                return cls.from_config(cfg, self)
            return cls(**{k: v for k, v in cfg.items() if k != "type"})
        except ModelFileError:
            raise
        except (TypeError, ValueError, KeyError) as exc:
            raise ModelFileError(f"{self.path}: invalid {what} configuration {cfg}: {exc}") from None

    def build(self, cfg) -> Layer:
        """A layer (a Sequential builds its layers through here too)."""
        return self._construct(LAYERS, cfg, "layer")

    def build_from(self, registry, cfg):
        """A penalty or a noise, from its registry."""
        return self._construct(registry, cfg, registry.what, with_context=False)

    def with_encoder(self, encoder: Layer) -> _Builder:
        return _Builder(self.path, encoder)

    def layer_at(self, path: str) -> Layer:
        if self.encoder is None:
            raise ValueError("a TiedDense outside a decoder has no encoder to be tied to")
        return find_layer(self.encoder, path)


def build(cfg, path="<config>"):
    """The model or layer ``cfg`` (a ``config()``) describes, freshly initialized; only npae classes are built."""
    if not isinstance(cfg, dict):
        raise ModelFileError(f"{path}: invalid model description")
    builder = _Builder(path)
    if cfg.get("type", "Autoencoder") in MODELS:
        return builder._construct(MODELS, dict(cfg, type=cfg.get("type", "Autoencoder")), "model")
    if cfg.get("type") in LAYERS:
        return builder.build(cfg)
    raise ModelFileError(f"{path}: unknown model type {cfg.get('type')!r}")


def assign(model, arrays: dict, path) -> None:
    """Copy ``arrays["param/" + name]`` into each parameter and ``arrays["buffer/" + name]`` into
    each buffer, after checking all of them (names, shapes, dtypes, finiteness)."""
    for prefix, own in (("param/", {n: p.value for n, p in model.named_params()}),
                        ("buffer/", dict(model.named_buffers()))):
        stored = {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
        if set(stored) != set(own):
            missing, extra = sorted(set(own) - set(stored)), sorted(set(stored) - set(own))
            what = "parameters" if prefix == "param/" else "buffers"
            raise ModelFileError(f"{path}: {what} do not match the architecture (missing {missing}, unexpected {extra})")
        for name, target in own.items():
            a = stored[name]
            if a.shape != target.shape or a.dtype != target.dtype:
                raise ModelFileError(f"{path}: {prefix}{name} is {a.dtype} {a.shape}, the architecture needs "
                                     f"{target.dtype} {target.shape}")
            if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
                raise ModelFileError(f"{path}: {prefix}{name} contains NaN or infinite values")
    for prefix, own in (("param/", {n: p.value for n, p in model.named_params()}),
                        ("buffer/", dict(model.named_buffers()))):
        for name, target in own.items():
            target[...] = arrays[prefix + name]


def load(path):
    """Load what :func:`save` wrote (a model, or a layer such as a Sequential), or the model inside a checkpoint."""
    meta, arrays = _read(path)
    model = build(meta.get("model"), path)
    assign(model, arrays, path)
    return model


def load_checkpoint(path) -> dict:
    """``{"model", "optimizer", "optimizer_state", "rng_state", "epoch", "history", "extra"}``;
    ``optimizer`` is the class, ``history`` the JSON object fit wrote."""
    meta, arrays = _read(path)
    if meta.get("kind") != "checkpoint":
        raise ModelFileError(f"{path}: a saved model, not a checkpoint (resume needs a file written by fit(checkpoint=...))")
    model = build(meta.get("model"), path)
    assign(model, arrays, path)
    if meta.get("optimizer") not in OPTIMIZERS:
        raise ModelFileError(f"{path}: unknown optimizer {meta.get('optimizer')!r}")
    epoch = meta.get("epoch")
    if not isinstance(epoch, int) or epoch < 0:
        raise ModelFileError(f"{path}: invalid epoch {epoch!r}")
    return {
        "model": model, "optimizer": OPTIMIZERS[meta["optimizer"]],
        "optimizer_state": {k[len("optim/"):]: v for k, v in arrays.items() if k.startswith("optim/")},
        "rng_state": meta.get("rng"), "epoch": epoch, "history": meta.get("history"), "extra": meta.get("extra") or {},
    }
