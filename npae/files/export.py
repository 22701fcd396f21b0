"""Taking a model to PyTorch and back: :func:`to_torch`, :func:`from_torch_state_dict`, and the
safetensors format (:func:`save_safetensors`, :func:`load_safetensors`), written and read with NumPy alone.

npae never depends on PyTorch: this module imports torch only inside the functions that build
torch modules, so ``import npae`` works without it, and the safetensors writer and reader need
NumPy only. When torch is missing, :func:`to_torch` says ``pip install torch``.

The pieces: each layer's converter, beside the layer (:mod:`npae.converters`);
:mod:`npae.files.state_dict` (the state dict in NumPy) and :mod:`npae.files.safetensors` (the
file format); this module builds the torch modules, converts back, and saves a model's
weights as a safetensors file.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from .._version import __version__
from ..core import Layer
from ..models.autoencoders import Model
from ..nn.windows import pads_1d
from .safetensors import (
    write_safetensors,
)
from .state_dict import (
    _Context,
    _entries,
    state_dict_arrays,
)

if TYPE_CHECKING:  # for the annotations only: npae never imports torch but inside the functions that need it
    import torch

INSTALL_TORCH = "pip install torch"


# -- to torch ---------------------------------------------------------------------------------
_TORCH_CLASSES = ("TiedLinear", "Conv2dSame", "MaxPool2dSame", "AvgPool2dSame", "TorchAutoencoder", "TorchVAE")


def _import_torch():
    try:
        import torch
    except ImportError:
        raise ImportError(f"npae.files.export: converting to PyTorch needs torch, which is not installed: "
                          f"{INSTALL_TORCH} "
                          "(npae itself needs only NumPy, and so do save_safetensors and load_safetensors)") from None
    return torch


def _same_pads(size: tuple, kernel: tuple, stride: tuple) -> tuple[int, int, int, int]:
    """npae's "same" padding of an (H, W) input as ``F.pad`` takes it: (left, right, top, bottom)."""
    top, bottom, _ = pads_1d(int(size[0]), kernel[0], stride[0], "same")
    left, right, _ = pads_1d(int(size[1]), kernel[1], stride[1], "same")
    return left, right, top, bottom


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, (int, np.integer)) else tuple(int(a) for a in v)


@functools.cache
def _torch_classes():
    """This module's torch classes, defined once torch is at hand (``npae.files.export.TiedLinear`` etc.)."""
    import types

    torch = _import_torch()
    nn, F = torch.nn, torch.nn.functional

    class TiedLinear(nn.Module):
        """``y = F.linear(x, source.weight.t(), bias)``: npae's TiedDense, ``y = x @ W.T + b``.

        ``source`` is the encoder's ``nn.Linear(n_in_s, n_out_s)``; its weight (n_out_s, n_in_s) is
        used, not copied (it is no parameter of this module, so it is named, trained and saved once,
        as the source's). Maps n_out_s features to n_in_s; ``bias`` (n_in_s,) is its own.
        """

        def __init__(self, source: nn.Linear):
            super().__init__()
            self._source = (source,)  # in a tuple: not a submodule, so its weight is not listed twice
            self.in_features, self.out_features = source.out_features, source.in_features
            self.bias = nn.Parameter(torch.zeros(self.out_features, dtype=source.weight.dtype))

        @property
        def source(self) -> nn.Linear:
            return self._source[0]

        def forward(self, x):
            return F.linear(x, self.source.weight.t(), self.bias)

        def extra_repr(self) -> str:
            return (f"in_features={self.in_features}, out_features={self.out_features}, "
                    f"weight=source.weight.t() (tied)")

    class Conv2dSame(nn.Conv2d):
        """``nn.Conv2d`` with npae's (TensorFlow's) "same" padding, computed for each input's size:
        ``H_out = ceil(H / sh)``, ``P = max((H_out - 1) sh + kh - H, 0)`` zeros, ``P // 2`` on top and
        the rest at the bottom (the same for columns: the odd one on the right)."""

        def __init__(self, in_channels, out_channels, kernel_size, stride=1, bias=True, dtype=None):
            super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=0, bias=bias, dtype=dtype)

        def forward(self, x):
            return super().forward(F.pad(x, _same_pads(x.shape[-2:], self.kernel_size, self.stride)))

    class MaxPool2dSame(nn.MaxPool2d):
        """``nn.MaxPool2d`` with npae's "same" padding (the rule of Conv2dSame) made of -inf: a pad
        never wins a max."""

        def __init__(self, kernel_size, stride):
            super().__init__(_pair(kernel_size), _pair(stride))

        def forward(self, x):
            x = F.pad(x, _same_pads(x.shape[-2:], self.kernel_size, self.stride), value=float("-inf"))
            return F.max_pool2d(x, self.kernel_size, self.stride)

    class AvgPool2dSame(nn.AvgPool2d):
        """``nn.AvgPool2d`` with npae's "same" padding (the rule of Conv2dSame) made of zeros that count
        in every window's mean (``count_include_pad``): each output is its window's sum / (kh kw)."""

        def __init__(self, kernel_size, stride):
            super().__init__(_pair(kernel_size), _pair(stride), count_include_pad=True)

        def forward(self, x):
            x = F.pad(x, _same_pads(x.shape[-2:], self.kernel_size, self.stride))
            return F.avg_pool2d(x, self.kernel_size, self.stride)

    class TorchAutoencoder(nn.Module):
        """npae's Autoencoder at inference: ``encode(x) = encoder(x)``, ``decode(h) = decoder(h)``,
        ``forward(x) = decode(encode(x))`` (npae's ``reconstruct``). An image model also takes its
        inputs flat, (N, C*H*W), and a code flat, as npae does."""

        def __init__(self, encoder, decoder, input_shape=None, code_shape=None, name="autoencoder"):
            super().__init__()
            self.encoder, self.decoder = encoder, decoder
            self.input_shape = None if input_shape is None else tuple(input_shape)
            self.code_shape = None if code_shape is None else tuple(code_shape)
            self.name = name

        @staticmethod
        def _unflatten(x, shape):
            if shape is not None and len(shape) > 1 and x.dim() == 2 and x.shape[1] == math.prod(shape):
                return x.reshape((x.shape[0],) + shape)
            return x

        def encode(self, x):
            return self.encoder(self._unflatten(x, self.input_shape))

        def decode(self, h):
            return self.decoder(self._unflatten(h, self.code_shape))

        def forward(self, x):
            return self.decode(self.encode(x))

        def extra_repr(self) -> str:
            return f"name={self.name!r}, input_shape={self.input_shape}"

    class TorchVAE(TorchAutoencoder):
        """npae's VAE at inference: the encoder outputs (mu | logvar), (N, 2 latent); ``encode`` is mu,
        ``encode_distribution`` is (mu, logvar), ``forward`` decodes mu (npae's ``reconstruct``)."""

        def __init__(self, encoder, decoder, latent, input_shape=None, name="vae"):
            super().__init__(encoder, decoder, input_shape, (latent,), name)
            self.latent = int(latent)

        def encode_distribution(self, x):
            e = self.encoder(self._unflatten(x, self.input_shape))
            return e[:, :self.latent], e[:, self.latent:]

        def encode(self, x):
            return self.encode_distribution(x)[0]

    classes = {}
    for cls in (TiedLinear, Conv2dSame, MaxPool2dSame, AvgPool2dSame, TorchAutoencoder, TorchVAE):
        cls.__module__, cls.__qualname__ = __name__, cls.__name__  # picklable: npae.files.export.<name>
        classes[cls.__name__] = cls
    return types.SimpleNamespace(**classes)


def __getattr__(name: str):
    """``npae.files.export.TiedLinear`` (and the other torch classes) when torch is installed."""
    if name in _TORCH_CLASSES:
        _import_torch()  # the clear error without torch, even once the classes were made
        return getattr(_torch_classes(), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def to_torch(model: Model | Layer) -> torch.nn.Module:
    """A ``torch.nn.Module`` computing what ``model`` computes at inference, with copies of its weights.

    ``model`` is an npae Autoencoder or VAE (-> ``TorchAutoencoder`` / ``TorchVAE``, with ``encode``,
    ``decode`` and ``forward``) or any npae layer (-> its module; a Sequential -> ``nn.Sequential``).
    Every layer maps to one torch module at the same index (the table in the module docstring), so
    ``state_dict()`` names are npae's with torch's words: ``encoder.0.W`` -> ``encoder.0.weight``
    (transposed: torch's Linear weight is (out, in)), ``encoder.0.b`` -> ``encoder.0.bias``. A TiedDense
    shares its source's Parameter. The parameters have the model's dtype; the module is in eval mode.

    Raises ImportError (``pip install torch``) without torch, and TypeError naming any layer class
    that has no converter.
    """
    torch = _import_torch()
    classes = _torch_classes()
    entries = _entries(model)  # every layer known, before anything is built
    ctx = _Context(torch, classes)
    with torch.random.fork_rng(devices=[]):  # torch's default initializers must not move the user's generator
        if isinstance(model, Model):
            encoder, decoder = ctx.convert(model.encoder, "encoder"), ctx.convert(model.decoder, "decoder")
            if type(model).__name__ == "VAE":
                module = classes.TorchVAE(encoder, decoder, model.latent, model.input_shape, model.name)
            else:
                module = classes.TorchAutoencoder(encoder, decoder, model.input_shape,
                                                  getattr(model, "code_shape", None), model.name)
        else:
            module = ctx.convert(model, "")
    state = {e.torch_name: torch.from_numpy(np.array(e.layout.to_torch(e.value), order="C")) for e in entries}
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:  # a converter whose table and module disagree: npae's bug, said plainly
        raise TypeError(f"to_torch: a converter's table does not match the module it builds: {exc}") from None
    return module.eval()


# -- and back ----------------------------------------------------------------------------------
def _as_array(value, name: str) -> np.ndarray:
    """A torch tensor (any device) or an array-like as a NumPy array."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        try:
            return value.detach().cpu().numpy()
        except (TypeError, RuntimeError) as exc:
            raise TypeError(f"from_torch_state_dict: {name} ({value.dtype}) has no NumPy equivalent: {exc}; convert "
                            "it first (tensor.float())") from None
    return np.asarray(value)


def _is_batch_count(name, expected) -> bool:
    """A torch BatchNorm's ``num_batches_tracked`` beside the running statistics npae expects."""
    name = str(name)
    return name.endswith(".num_batches_tracked") and name[: -len("num_batches_tracked")] + "running_mean" in expected


def from_torch_state_dict(model: Model | Layer, state_dict: Mapping) -> Model | Layer:
    """Fill ``model`` (npae, the same architecture) from a torch state dict and return it.

    ``state_dict`` maps the names of ``to_torch(model).state_dict()`` to torch tensors or NumPy arrays
    in torch's layouts (``safetensors.torch.load_file`` or :func:`load_safetensors` give one):
    ``encoder.0.weight`` (out, in) becomes ``encoder.0.W`` (in, out), a bias stays a bias. Every name,
    shape and dtype is checked, and every value must be finite, before anything is written (a
    ValueError or TypeError names the first mismatch; the model is then unchanged). The values are
    copied exactly: npae -> torch -> npae gives the same bits. The Param objects stay the same, so
    an optimizer over the model still holds them and tied weights stay tied.
    """
    entries = _entries(model)
    expected = {e.torch_name: e for e in entries}
    if not isinstance(state_dict, Mapping):
        raise TypeError(f"from_torch_state_dict: expected a state dict (a mapping of names to tensors), got "
                        f"{type(state_dict).__name__}")
    missing = [n for n in expected if n not in state_dict]
    unexpected = sorted(str(n) for n in state_dict if n not in expected and not _is_batch_count(n, expected))
    if missing or unexpected:
        raise ValueError(f"from_torch_state_dict: the state dict does not match the architecture (missing {missing}, "
                         f"unexpected {unexpected})")
    values = []
    for e in entries:
        a = _as_array(state_dict[e.torch_name], e.torch_name)
        target = e.value
        shape = e.layout.to_torch(target).shape
        if a.shape != shape:
            raise ValueError(f"from_torch_state_dict: {e.torch_name} has shape {tuple(a.shape)}; {e.npae_name} "
                             f"{target.shape} needs {shape} in torch's layout ({e.layout.name})")
        if a.dtype != target.dtype:
            raise TypeError(f"from_torch_state_dict: {e.torch_name} is {a.dtype}, {e.npae_name} is {target.dtype}; "
                            f"convert one of them (model.astype(np.{a.dtype}) or the tensor) first")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"from_torch_state_dict: {e.torch_name} contains NaN or infinite values")
        values.append(e.layout.from_torch(a))
    for e, a in zip(entries, values):
        e.value[...] = a
    return model


# -- a model's weights as a safetensors file -------------------------------------------------
def save_safetensors(model: Model | Layer, path) -> None:
    """Save ``model``'s weights to ``path`` in the safetensors format, with NumPy alone, atomically.

    The tensors are :func:`state_dict_arrays` (the names and layouts of ``to_torch(model).state_dict()``),
    so ``to_torch(model).load_state_dict(safetensors.torch.load_file(path))`` restores them; the
    metadata holds ``format`` "pt", ``npae`` (the version) and ``npae_model``, the architecture
    (``model.config()`` as JSON). The layout of the file: the module docstring.
    """
    arrays = state_dict_arrays(model)
    metadata = {"format": "pt", "npae": __version__, "npae_model": json.dumps(model.config())}
    write_safetensors(path, arrays, metadata)
