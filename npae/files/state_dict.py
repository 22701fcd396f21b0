"""The state dict in NumPy (:func:`state_dict_arrays`: torch's names and layouts, no torch needed),
read off the converters each layer registers beside itself (:mod:`npae.converters`);
:mod:`npae.files.export` builds the torch modules from the same converters and
:mod:`npae.files.safetensors` writes the arrays. What each layer becomes: docs/export.md, and
the docstring of each ``_..._to_torch`` function next to its layer.

One torch module per npae layer, at the same position, so the state-dict names follow npae's
parameter names: npae ``encoder.0.W`` is torch ``encoder.0.weight``, ``decoder.2.b`` is
``decoder.2.bias`` (a Model becomes a module with ``encoder`` and ``decoder``; a layer on its
own becomes its module, a Sequential an ``nn.Sequential``). What the model computes at
inference is exported: its noise and penalties belong to npae's training objective.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

import numpy as np

from ..converters import CONVERTERS, Converter, Layout
from ..core import LAYERS, Layer
from ..models.autoencoders import MODELS, Model

#: the model classes a torch module is built for (any npae layer is converted by its table entry)
_MODEL_CLASSES = ("Autoencoder", "VAE")


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


def _converter(layer: Layer, where: str) -> Converter:
    """The layer's converter, or a TypeError naming its class and where it sits."""
    cls = type(layer)
    name = cls.__name__
    at = f" (at {where})" if where else ""
    if name not in CONVERTERS or LAYERS.get(name) is not cls:
        known = ", ".join(sorted(CONVERTERS))
        kind = "npae layer" if LAYERS.get(name) is cls else "layer"
        raise TypeError(f"to_torch: no converter for the {kind} class {name}{at}; npae.converters.CONVERTERS has "
                        f"{known} (adding one: the docstring of npae.converters)")
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
