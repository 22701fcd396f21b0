"""The converter table: what each npae layer becomes in PyTorch, and the state dict in NumPy
(:func:`state_dict_arrays`: torch's names and layouts, no torch needed). :mod:`npae.export` builds
the torch modules from it; :mod:`npae.safetensors_file` writes its arrays.

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

from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

import numpy as np

from .autoencoders import MODELS, Model
from .core import LAYERS, Layer

#: the model classes a torch module is built for (any npae layer is converted by its table entry)
_MODEL_CLASSES = ("Autoencoder", "VAE")


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
