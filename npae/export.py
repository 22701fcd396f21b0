"""Taking a model to PyTorch and back: :func:`to_torch`, :func:`from_torch_state_dict`, and the
safetensors format (:func:`save_safetensors`, :func:`load_safetensors`), written and read with NumPy alone.

npae never depends on PyTorch: this module imports torch only inside the functions that build
torch modules, so ``import npae`` works without it, and the safetensors writer and reader need
NumPy only. When torch is missing, :func:`to_torch` says ``pip install torch``.

What each npae layer becomes
----------------------------
One torch module per npae layer, at the same position, so the state-dict names follow npae's
parameter names: npae ``encoder.0.W`` is torch ``encoder.0.weight``, ``decoder.2.b`` is
``decoder.2.bias`` (a Model becomes a module with ``encoder`` and ``decoder``; a layer on its
own becomes its module, a Sequential an ``nn.Sequential``). Layouts are torch's:

============================  =================================================================
npae                          torch
============================  =================================================================
Dense(n_in, n_out)            ``nn.Linear(n_in, n_out)``; ``weight = W.T`` (npae's W is (n_in, n_out),
                              torch's weight (out, in)), ``bias = b``
TiedDense(source)             ``TiedLinear``: ``F.linear(x, source.weight.t(), bias)`` with the source's
                              torch Linear: the weight is SHARED (one Parameter, named once, under the
                              encoder), only ``bias = b`` is its own
Conv2D                        ``nn.Conv2d`` (W is (c_out, c_in, kh, kw) in both): "valid" is
                              ``padding=0``, an int p is ``padding=p``, "same" with stride 1 and odd
                              kernels is ``padding=(kh // 2, kw // 2)``; any other "same" is
                              ``Conv2dSame`` (an nn.Conv2d that zero-pads each input by npae's rule,
                              the odd extra row and column at the bottom and right, before convolving)
MaxPool2D                     ``nn.MaxPool2d``: "valid" ``padding=0``, an int p ``padding=p`` (torch's
                              padding never wins a max, npae pads with -inf: the same); "same" with
                              windows of 1 or 2 that do not overlap (stride == pool size) is
                              ``ceil_mode=True`` (the one padded row or column is at the bottom or
                              right, where ceil mode's last, partial window is); with stride 1 and
                              odd pools ``padding=(kh // 2, kw // 2)``; any other "same" is
                              ``MaxPool2dSame`` (-inf padding by npae's rule, then max_pool2d)
ConvTranspose2D               ``nn.ConvTranspose2d`` with the same stride, padding, output_padding and
                              weight layout (c_in, c_out, kh, kw); ``bias=False`` in both alike
AvgPool2D                     ``nn.AvgPool2d(count_include_pad=True)``: "valid" and an int padding as
                              they are, "same" with stride 1 and odd pools as symmetric padding; any
                              other "same" is ``AvgPool2dSame`` (zeros by npae's rule, then avg_pool2d:
                              torch's ceil mode would divide a last, partial window by fewer)
BatchNorm1D, BatchNorm2D      ``nn.BatchNorm1d`` / ``nn.BatchNorm2d`` with the same eps and momentum:
                              ``weight = gamma``, ``bias = beta``, the running mean and variance as
                              buffers (both libraries keep the unbiased variance); torch's
                              ``num_batches_tracked`` is not exported (npae keeps no such count;
                              torch's loader sets it to 0) and is ignored on the way back
Dropout(p)                    ``nn.Dropout(p)`` (the identity at inference in both)
UpSampling2D(size)            ``nn.Upsample(scale_factor=size, mode="nearest")``
ReLU, Sigmoid, Tanh, Identity ``nn.ReLU``, ``nn.Sigmoid``, ``nn.Tanh``, ``nn.Identity``
LeakyReLU(alpha), ELU(alpha)  ``nn.LeakyReLU(negative_slope=alpha)``, ``nn.ELU(alpha)``
GELU                          ``nn.GELU(approximate="tanh")`` (npae's GELU is the tanh form)
Softplus                      ``nn.Softplus(beta=1, threshold=40)``: torch returns x itself above the
                              threshold, where npae's ``max(x, 0) + log1p(exp(-|x|))`` differs from x by
                              exp(-x): at torch's default 20 that is up to 2e-9, visible in float64;
                              above 40 it is below float64's rounding
Flatten                       ``nn.Flatten()`` (from axis 1, as npae)
Reshape(shape)                ``nn.Sequential(nn.Flatten(), nn.Unflatten(1, shape))``
Sequential                    ``nn.Sequential`` of the converted layers
Autoencoder                   ``TorchAutoencoder``: ``encode``, ``decode``, ``forward = decode(encode(x))``
VAE                           ``TorchVAE``: ``encode`` is the posterior mean mu (the first ``latent``
                              outputs of the encoder), ``encode_distribution`` gives (mu, logvar), and
                              ``forward`` decodes mu, as npae's ``reconstruct`` (no sampling)
============================  =================================================================

What the model computes at inference is exported: its noise and penalties belong to npae's
training objective and are not part of the torch module. The module is returned in eval mode
(``.train()`` to fine-tune), with the model's dtype (float32 or float64) and copies of its
weights (training it in torch leaves the npae model alone). It takes inputs of the model's
``input_shape`` (an image model also takes their flat form, as npae does).

The safetensors file
--------------------
``save_safetensors(model, path)`` writes, with NumPy alone: an 8-byte little-endian unsigned
header length n; n bytes of UTF-8 JSON, ``{name: {"dtype": "F32", "shape": [...], "data_offsets":
[begin, end]}, ..., "__metadata__": {...}}``, padded with spaces to a multiple of 8; then the
tensors' raw little-endian bytes, C order, one after the other (offsets relative to the end of
the header). The names are the state-dict names of ``to_torch(model)`` and the arrays are in
torch's layouts, so ``to_torch(model).load_state_dict(safetensors.torch.load_file(path))``
restores them; ``__metadata__`` holds ``format`` ("pt"), ``npae`` (the version) and ``npae_model``
(the architecture, ``model.config()`` as a JSON string: ``npae.io.build`` rebuilds it).

Adding a converter (for a new npae layer)
-----------------------------------------
1. Write ``_convert_name(layer, ctx)`` returning the torch module (``ctx.nn``, ``ctx.F``,
   ``ctx.torch``, ``ctx.classes`` for this module's own torch classes, ``ctx.dtype(layer)`` for
   the parameters' dtype). Its weights need not be set: they are filled from the table entry.
2. Add ``"ClassName": Converter(_convert_name, {npae name: (torch state-dict name, layout)})``
   to ``CONVERTERS``, listing every parameter and buffer of the npae layer (the table is checked
   against the layer and against the module it builds) with its layout change: ``AS_IS``,
   ``TRANSPOSED``, or a ``Layout`` of your own (two functions, to torch's layout and back, each
   the other's inverse and exact). The state dict, :func:`from_torch_state_dict` and the
   safetensors files then follow with no other change.
3. In tests/test_export.py, count its additions in ``chain_terms`` (the bound on npae against
   torch) and add its odd cases to ``LAYER_CASES``; its ``examples`` are already converted and
   compared in float32 and float64. Describe it in the table above and in docs/export.md.
"""

from __future__ import annotations

import functools
import json
import math
import pathlib
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from ._files import atomic_write
from ._npz import json_depth
from ._version import __version__
from .autoencoders import MODELS, Model
from .core import LAYERS, Layer
from .windows import pads_1d

if TYPE_CHECKING:  # for the annotations only: npae never imports torch but inside the functions that need it
    import torch

INSTALL_TORCH = "pip install torch"


class SafetensorsError(ValueError):
    """The file is not a safetensors file this reader accepts (the message says what is wrong)."""


# -- layouts and the converter table ----------------------------------------------------------
class Layout(NamedTuple):
    """How an npae array becomes a torch one and back; both functions are exact and inverses."""

    name: str
    to_torch: Callable[[np.ndarray], np.ndarray]
    from_torch: Callable[[np.ndarray], np.ndarray]


def _same(a: np.ndarray) -> np.ndarray:
    return a


def _transposed(a: np.ndarray) -> np.ndarray:
    return a.T


AS_IS = Layout("as is", _same, _same)
#: a matrix stored the other way round: npae's Dense W (n_in, n_out) is torch's weight (out, in)
TRANSPOSED = Layout("transposed", _transposed, _transposed)


class Converter(NamedTuple):
    """How one npae layer class becomes a torch module.

    ``build(layer, ctx)`` returns the module; ``state`` maps each npae parameter or buffer name of
    the layer to ``(torch state-dict name within the module, Layout)`` (or is a function of the
    layer returning that map, for a layer whose arrays depend on its options, like ``bias=False``);
    ``children(layer)`` lists ``(name, sublayer)`` for a container, whose sublayers' names are
    prefixed with ``name.``.
    """

    build: Callable[[Layer, Any], Any]
    state: Mapping[str, tuple[str, Layout]] | Callable[[Layer], Mapping[str, tuple[str, Layout]]] = {}
    children: Callable[[Layer], list[tuple[str, Layer]]] | None = None


class _Context:
    """What a converter may use: ``torch``, ``nn``, ``F``, this module's torch ``classes``, ``dtype(layer)``
    (the torch dtype of a layer's parameters), and ``convert(sublayer, name)`` for a container's layers."""

    def __init__(self, torch, classes):
        self.torch, self.nn, self.F, self.classes = torch, torch.nn, torch.nn.functional, classes
        self.linears: dict[int, Any] = {}  # id(npae Dense) -> its torch Linear, where a TiedDense finds it
        self.path: list[str] = []  # where the layer being converted sits ("encoder", "2"), for error messages

    def dtype(self, layer: Layer):
        """The torch dtype of ``layer``'s parameters (float32 for a layer without a dtype)."""
        return getattr(self.torch, np.dtype(layer.dtype or np.float32).name)

    def convert(self, layer: Layer, name: str):
        """The torch module of ``layer``, the sublayer called ``name`` of the layer being converted."""
        self.path.append(name)
        try:
            return _converter(layer, ".".join(p for p in self.path if p)).build(layer, self)
        finally:
            self.path.pop()


def _convert_sequential(layer, ctx):
    return ctx.nn.Sequential(*[ctx.convert(child, str(i)) for i, child in enumerate(layer.layers)])


def _convert_dense(layer, ctx):
    linear = ctx.nn.Linear(layer.n_in, layer.n_out, dtype=ctx.dtype(layer))
    ctx.linears[id(layer)] = linear
    return linear


def _convert_tied_dense(layer, ctx):
    source = ctx.linears.get(id(layer.source))
    if source is None:
        raise ValueError("to_torch: a TiedDense is tied to a Dense layer that is not converted before it in the same "
                         "model (export the Autoencoder or the Sequential that holds both)")
    return ctx.classes.TiedLinear(source)


def _convert_conv2d(layer, ctx):
    args = (layer.c_in, layer.c_out, layer.kernel_size)
    kw = {"stride": layer.stride, "bias": "b" in layer.params, "dtype": ctx.dtype(layer)}
    if layer.padding == "same":
        if layer.stride == (1, 1) and all(k % 2 for k in layer.kernel_size):  # symmetric for every input size
            return ctx.nn.Conv2d(*args, padding=tuple(k // 2 for k in layer.kernel_size), **kw)
        return ctx.classes.Conv2dSame(*args, **kw)
    return ctx.nn.Conv2d(*args, padding=0 if layer.padding == "valid" else layer.padding, **kw)


def _convert_maxpool2d(layer, ctx):
    kernel, stride = layer.pool_size, layer.stride
    if layer.padding == "same":
        if all(k == s <= 2 for k, s in zip(kernel, stride)):  # the padding is 0 or 1, at the end
            return ctx.nn.MaxPool2d(kernel, stride, ceil_mode=True)
        if stride == (1, 1) and all(k % 2 for k in kernel):  # symmetric for every input size
            return ctx.nn.MaxPool2d(kernel, 1, padding=tuple(k // 2 for k in kernel))
        return ctx.classes.MaxPool2dSame(kernel, stride)
    return ctx.nn.MaxPool2d(kernel, stride, padding=0 if layer.padding == "valid" else layer.padding)


def _convert_conv_transpose2d(layer, ctx):
    return ctx.nn.ConvTranspose2d(layer.c_in, layer.c_out, layer.kernel_size, stride=layer.stride,
                                  padding=layer.padding, output_padding=layer.output_padding,
                                  bias="b" in layer.params, dtype=ctx.dtype(layer))


def _convert_avgpool2d(layer, ctx):
    kernel, stride = layer.pool_size, layer.stride
    if layer.padding == "same":
        if stride == (1, 1) and all(k % 2 for k in kernel):  # symmetric for every input size
            return ctx.nn.AvgPool2d(kernel, 1, padding=tuple(k // 2 for k in kernel), count_include_pad=True)
        return ctx.classes.AvgPool2dSame(kernel, stride)
    return ctx.nn.AvgPool2d(kernel, stride, padding=0 if layer.padding == "valid" else layer.padding,
                            count_include_pad=True)


def _convert_batchnorm(name: str) -> Callable:
    def build(layer, ctx):
        module = getattr(ctx.nn, name)(layer.features, eps=layer.eps, momentum=layer.momentum, dtype=ctx.dtype(layer))
        # torch's count of batches stays (its forward uses it only when momentum is None, which npae's
        # never is): npae has no such array, so exported state dicts lack it and torch's loader adds
        # it as 0; from_torch_state_dict ignores it
        return module

    build.__name__ = f"_convert_to_{name}"
    return build


def _convert_upsampling2d(layer, ctx):
    return ctx.nn.Upsample(scale_factor=tuple(float(s) for s in layer.size), mode="nearest")


def _convert_reshape(layer, ctx):
    return ctx.nn.Sequential(ctx.nn.Flatten(), ctx.nn.Unflatten(1, layer.shape))


def _module(name: str, **kwargs) -> Callable:
    """A converter for a layer without weights that becomes ``torch.nn.<name>(**kwargs)``."""
    def build(layer, ctx):
        return getattr(ctx.nn, name)(**{k: (v(layer) if callable(v) else v) for k, v in kwargs.items()})

    build.__name__ = f"_convert_to_{name}"
    return build


def _weight_and_bias(layer) -> dict[str, tuple[str, Layout]]:
    """A convolution's W as ``weight`` (the same layout in both) and its b, if it has one, as ``bias``."""
    return {"W": ("weight", AS_IS), **({"b": ("bias", AS_IS)} if "b" in layer.params else {})}


_BATCHNORM = {"gamma": ("weight", AS_IS), "beta": ("bias", AS_IS),
              "running_mean": ("running_mean", AS_IS), "running_var": ("running_var", AS_IS)}

#: npae layer class name -> its Converter (see "Adding a converter" in the module docstring)
CONVERTERS: dict[str, Converter] = {
    "Sequential": Converter(_convert_sequential, children=lambda s: [(str(i), c) for i, c in enumerate(s.layers)]),
    "Dense": Converter(_convert_dense, {"W": ("weight", TRANSPOSED), "b": ("bias", AS_IS)}),
    "TiedDense": Converter(_convert_tied_dense, {"b": ("bias", AS_IS)}),
    "Conv2D": Converter(_convert_conv2d, _weight_and_bias),
    "ConvTranspose2D": Converter(_convert_conv_transpose2d, _weight_and_bias),
    "MaxPool2D": Converter(_convert_maxpool2d),
    "AvgPool2D": Converter(_convert_avgpool2d),
    "UpSampling2D": Converter(_convert_upsampling2d),
    "BatchNorm1D": Converter(_convert_batchnorm("BatchNorm1d"), _BATCHNORM),
    "BatchNorm2D": Converter(_convert_batchnorm("BatchNorm2d"), _BATCHNORM),
    "Dropout": Converter(_module("Dropout", p=lambda layer: layer.p)),
    "ELU": Converter(_module("ELU", alpha=lambda layer: layer.alpha)),
    "GELU": Converter(_module("GELU", approximate="tanh")),
    "ReLU": Converter(_module("ReLU")),
    "LeakyReLU": Converter(_module("LeakyReLU", negative_slope=lambda layer: layer.alpha)),
    "Sigmoid": Converter(_module("Sigmoid")),
    "Tanh": Converter(_module("Tanh")),
    "Softplus": Converter(_module("Softplus", beta=1.0, threshold=40.0)),
    "Identity": Converter(_module("Identity")),
    "Flatten": Converter(_module("Flatten")),
    "Reshape": Converter(_convert_reshape),
}


def _converter(layer: Layer, where: str) -> Converter:
    """The layer's converter, or a TypeError naming its class and where it sits."""
    cls = type(layer)
    name = cls.__name__
    at = f" (at {where})" if where else ""
    if name not in CONVERTERS or LAYERS.get(name) is not cls:
        known = ", ".join(sorted(CONVERTERS))
        kind = "npae layer" if LAYERS.get(name) is cls else "layer"
        raise TypeError(f"to_torch: no converter for the {kind} class {name}{at}; npae.export.CONVERTERS has "
                        f"{known} (adding one: the docstring of npae.export)")
    return CONVERTERS[name]


# -- the state dict, in NumPy ------------------------------------------------------------------
class _Entry(NamedTuple):
    npae_name: str     # as in model.named_params() / named_buffers()
    torch_name: str    # as in to_torch(model).state_dict()
    layout: Layout
    holder: dict       # layer.params (Param values) or layer.buffers
    key: str           # the name within the holder

    @property
    def value(self) -> np.ndarray:
        v = self.holder[self.key]
        return getattr(v, "value", v)


def _layer_entries(layer: Layer, prefix: str) -> Iterator[_Entry]:
    converter = _converter(layer, prefix.rstrip("."))
    if converter.children is not None:
        for name, child in converter.children(layer):
            yield from _layer_entries(child, f"{prefix}{name}.")
        return
    own = set(layer.params) | set(layer.buffers)
    state = converter.state(layer) if callable(converter.state) else converter.state
    if own != set(state):
        raise TypeError(f"to_torch: the converter of {type(layer).__name__} lists {sorted(state)} but the "
                        f"layer has {sorted(own)}; every parameter and buffer needs its torch name")
    for key, (torch_name, layout) in state.items():
        holder = layer.params if key in layer.params else layer.buffers
        yield _Entry(prefix + key, prefix + torch_name, layout, holder, key)


def _parts(model) -> list[tuple[str, Layer]]:
    """``[("encoder.", encoder), ("decoder.", decoder)]`` for a Model, ``[("", layer)]`` for a layer."""
    if isinstance(model, Model):
        name = type(model).__name__
        if MODELS.get(name) is not type(model) or name not in _MODEL_CLASSES:
            raise TypeError(f"to_torch: no converter for the model class {name}; it converts "
                            f"{', '.join(_MODEL_CLASSES)} and any npae layer")
        return [("encoder.", model.encoder), ("decoder.", model.decoder)]
    if isinstance(model, Layer):
        return [("", model)]
    raise TypeError(f"expected an npae model or layer, got {type(model).__name__}")


def _entries(model) -> list[_Entry]:
    entries = [e for prefix, part in _parts(model) for e in _layer_entries(part, prefix)]
    names = [e.torch_name for e in entries]
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise TypeError(f"to_torch: two arrays would share a torch name: {twice}")
    return entries


def state_dict_arrays(model: Model | Layer) -> dict[str, np.ndarray]:
    """The state dict ``to_torch(model)`` has, as NumPy arrays in torch's layouts (copies), without torch.

    Names: npae's parameter names with torch's (``encoder.0.W`` -> ``encoder.0.weight``); a Dense
    ``W`` (n_in, n_out) is transposed to (n_out, n_in); every other array keeps its layout. A
    TiedDense contributes only its bias: its matrix is its source's, named once.
    """
    return {e.torch_name: np.array(e.layout.to_torch(e.value), order="C") for e in _entries(model)}


# -- to torch ---------------------------------------------------------------------------------
_MODEL_CLASSES = ("Autoencoder", "VAE")
_TORCH_CLASSES = ("TiedLinear", "Conv2dSame", "MaxPool2dSame", "AvgPool2dSame", "TorchAutoencoder", "TorchVAE")


def _import_torch():
    try:
        import torch
    except ImportError:
        raise ImportError(f"npae.export: converting to PyTorch needs torch, which is not installed: {INSTALL_TORCH} "
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
    """This module's torch classes, defined once torch is at hand (``npae.export.TiedLinear`` etc.)."""
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
        cls.__module__, cls.__qualname__ = __name__, cls.__name__  # picklable: npae.export.<name>
        classes[cls.__name__] = cls
    return types.SimpleNamespace(**classes)


def __getattr__(name: str):
    """``npae.export.TiedLinear`` (and the other torch classes) when torch is installed."""
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
