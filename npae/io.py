"""Saving and loading models and checkpoints: one ``.npz`` of plain arrays, no pickle.

A file holds the weights as ``param/<dotted name>`` arrays and a JSON description in the
array ``__npae__`` (UTF-8 bytes): the format name and version, the architecture as layer
configurations, and for a checkpoint the optimizer state (``optim/...`` arrays), the
random generator's state, the epoch and the history.

Loading reads with ``allow_pickle=False`` and builds layers only from a fixed table of
npae classes, so a file can never run code. The model is built and every array checked
(names, shapes, dtypes, finiteness) before anything is returned: a file that is not an
npae model, was tampered with, or comes from a newer format raises
:class:`ModelFileError`, never a half-loaded model.

Writes are atomic: the file is written under a temporary name in the same folder,
flushed to disk, and renamed over the destination (``os.replace``). A process killed
mid-save leaves the previous file intact.
"""

from __future__ import annotations

import json
import os
import pathlib
import zipfile

import numpy as np

from . import activations, conv, layers, noise, optim, penalties
from .core import Sequential

FORMAT = "npae"
VERSION = 1
META = "__npae__"


class ModelFileError(ValueError):
    """The file is not a valid npae model or checkpoint (or is from a newer npae)."""


LAYERS = {cls.__name__: cls for cls in (
    layers.Dense, layers.Flatten, layers.Reshape, conv.Conv2D, conv.MaxPool2D, conv.UpSampling2D,
    activations.ReLU, activations.LeakyReLU, activations.Sigmoid, activations.Tanh)}
PENALTIES = {cls.__name__: cls for cls in (penalties.L1Activity, penalties.KLSparsity, penalties.WeightDecay,
                                           penalties.Contractive)}
NOISES = {cls.__name__: cls for cls in (noise.GaussianNoise, noise.MaskingNoise, noise.SaltAndPepper)}
OPTIMIZERS = {cls.__name__: cls for cls in (optim.Adam, optim.SGD)}


# -- writing ----------------------------------------------------------------------------------
def _atomic_savez(path, arrays: dict) -> None:
    path = pathlib.Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _meta_array(meta: dict) -> np.ndarray:
    return np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)


def _model_arrays(model, kind: str, **more) -> dict:
    """The description (format, version, architecture, and ``more``) and every weight, as arrays."""
    from . import __version__

    meta = {"format": FORMAT, "version": VERSION, "kind": kind, "npae": __version__, "model": model.config(), **more}
    arrays = {META: _meta_array(meta)}
    arrays.update({f"param/{n}": p.value for n, p in model.named_params()})
    return arrays


def save(model, path) -> None:
    """Save ``model`` (an Autoencoder) to ``path`` (.npz), atomically."""
    _atomic_savez(path, _model_arrays(model, "model"))


def save_checkpoint(path, model, optimizer, rng, history, epoch: int, extra: dict | None = None) -> None:
    """Model, optimizer state, generator state, history and epoch: all a resumed run needs."""
    arrays = _model_arrays(model, "checkpoint", optimizer=type(optimizer).__name__, rng=rng.bit_generator.state,
                           epoch=int(epoch), history=history.to_dict(), extra=extra or {})
    arrays.update({f"optim/{k}": v for k, v in optimizer.state_dict().items()})
    _atomic_savez(path, arrays)


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


def _build(table: dict, cfg, what: str, path):
    if cfg is None:
        return None
    if not isinstance(cfg, dict) or cfg.get("type") not in table:
        raise ModelFileError(f"{path}: unknown {what} {cfg.get('type') if isinstance(cfg, dict) else cfg!r}")
    kwargs = {k: v for k, v in cfg.items() if k != "type"}
    try:
        return table[cfg["type"]](**kwargs)
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"{path}: invalid {what} configuration {cfg}: {exc}") from None


def _build_layer(cfg, path, encoder=None):
    """A layer from its configuration; ``encoder`` (already built) resolves a decoder's TiedDense."""
    if isinstance(cfg, dict) and cfg.get("type") == "Sequential":
        layer_cfgs = cfg.get("layers")
        if not isinstance(layer_cfgs, list):
            raise ModelFileError(f"{path}: invalid Sequential configuration")
        return Sequential(*[_build_layer(c, path, encoder) for c in layer_cfgs])
    if isinstance(cfg, dict) and cfg.get("type") == "TiedDense":
        from .autoencoders import find_layer

        try:
            if encoder is None or set(cfg) != {"type", "tied_to"} or not isinstance(cfg["tied_to"], str):
                raise ValueError("expected {'type': 'TiedDense', 'tied_to': <path of a Dense in the encoder>}")
            return layers.TiedDense(find_layer(encoder, cfg["tied_to"]))
        except (TypeError, ValueError) as exc:
            raise ModelFileError(f"{path}: invalid layer configuration {cfg}: {exc}") from None
    return _build(LAYERS, cfg, "layer", path)


def build_model(cfg: dict, path="<config>"):
    """An Autoencoder or VAE (freshly initialized) from ``model.config()``; only npae classes are built."""
    from .autoencoders import VAE, Autoencoder

    if not isinstance(cfg, dict):
        raise ModelFileError(f"{path}: invalid model description")
    try:
        if cfg.get("type") == "VAE":
            return VAE(_build_layer(cfg.get("encoder"), path), _build_layer(cfg.get("decoder"), path),
                       latent=cfg.get("latent"), likelihood=cfg.get("likelihood"), sigma_x=cfg.get("sigma_x"),
                       input_shape=cfg.get("input_shape"), name=str(cfg.get("name", "vae")))
        if cfg.get("type", "Autoencoder") != "Autoencoder":
            raise ModelFileError(f"{path}: unknown model type {cfg.get('type')!r}")
        encoder = _build_layer(cfg.get("encoder"), path)
        return Autoencoder(
            encoder, _build_layer(cfg.get("decoder"), path, encoder),
            loss=cfg.get("loss", "mse"), code_penalty=_build(PENALTIES, cfg.get("code_penalty"), "penalty", path),
            weight_decay=_build(PENALTIES, cfg.get("weight_decay"), "penalty", path),
            noise=_build(NOISES, cfg.get("noise"), "noise", path),
            input_shape=cfg.get("input_shape"), name=str(cfg.get("name", "autoencoder")),
        )
    except ModelFileError:
        raise
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"{path}: invalid model description: {exc}") from None


def assign_params(model, arrays: dict, path, prefix: str = "param/") -> None:
    """Copy ``arrays[prefix + name]`` into each parameter, after checking all of them."""
    stored = {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
    params = dict(model.named_params())
    if set(stored) != set(params):
        missing, extra = sorted(set(params) - set(stored)), sorted(set(stored) - set(params))
        raise ModelFileError(f"{path}: parameters do not match the architecture (missing {missing}, unexpected {extra})")
    for name, p in params.items():
        a = stored[name]
        if a.shape != p.shape or a.dtype != p.dtype:
            raise ModelFileError(f"{path}: parameter {name} is {a.dtype} {a.shape}, the architecture needs {p.dtype} {p.shape}")
        if not np.all(np.isfinite(a)):
            raise ModelFileError(f"{path}: parameter {name} contains NaN or infinite values")
    for name, p in params.items():
        p.value[...] = stored[name]


def load(path):
    """Load a model saved by :func:`save` (or the model inside a checkpoint)."""
    meta, arrays = _read(path)
    model = build_model(meta.get("model"), path)
    assign_params(model, arrays, path)
    return model


def load_checkpoint(path) -> dict:
    """``{"model", "optimizer", "optimizer_state", "rng_state", "epoch", "history", "extra"}``."""
    from .train import History

    meta, arrays = _read(path)
    if meta.get("kind") != "checkpoint":
        raise ModelFileError(f"{path}: a saved model, not a checkpoint (resume needs a file written by fit(checkpoint=...))")
    model = build_model(meta.get("model"), path)
    assign_params(model, arrays, path)
    if meta.get("optimizer") not in OPTIMIZERS:
        raise ModelFileError(f"{path}: unknown optimizer {meta.get('optimizer')!r}")
    epoch = meta.get("epoch")
    if not isinstance(epoch, int) or epoch < 0:
        raise ModelFileError(f"{path}: invalid epoch {epoch!r}")
    try:
        history = History.from_dict(meta.get("history"))
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise ModelFileError(f"{path}: invalid history ({exc})") from None
    return {
        "model": model, "optimizer": OPTIMIZERS[meta["optimizer"]],
        "optimizer_state": {k[len("optim/"):]: v for k, v in arrays.items() if k.startswith("optim/")},
        "rng_state": meta.get("rng"), "epoch": epoch, "history": history, "extra": meta.get("extra") or {},
    }
