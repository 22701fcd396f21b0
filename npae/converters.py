"""What each layer becomes in PyTorch, declared beside the layer: ``CONVERTERS``, with no torch here.

A layer module registers its converter right after its class::

    @converts(Dense, {"W": ("weight", TRANSPOSED), "b": ("bias", AS_IS)})
    def _dense_to_torch(layer, ctx):
        return ctx.nn.Linear(layer.n_in, layer.n_out, dtype=ctx.dtype(layer))

``build(layer, ctx)`` returns the torch module (``ctx.nn``, ``ctx.F``, ``ctx.torch``,
``ctx.classes`` for npae's own torch classes, ``ctx.dtype(layer)``; see
:mod:`npae.files.state_dict`). Its weights need not be set: they are filled from ``state``,
which maps every npae parameter and buffer of the layer to ``(torch state-dict name, Layout)``
(or is a function of the layer returning that map, for arrays that depend on options such as
``bias=False``). ``children(layer)`` lists ``(name, sublayer)`` for a container. The state dict,
:func:`npae.files.export.from_torch_state_dict` and the safetensors files follow with no other
change; torch is imported only by :mod:`npae.files.export`, when a module is built.
tests/test_structure.py checks that every registered layer has a converter.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import numpy as np


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

State = Mapping[str, tuple[str, Layout]]


class Converter(NamedTuple):
    """How one npae layer class becomes a torch module (see the module docstring)."""

    build: Callable[[Any, Any], Any]
    state: State | Callable[[Any], State] = {}
    children: Callable[[Any], list[tuple[str, Any]]] | None = None


#: npae layer class name -> its Converter
CONVERTERS: dict[str, Converter] = {}


def converts(cls: type, state: State | Callable[[Any], State] | None = None,
             children: Callable[[Any], list[tuple[str, Any]]] | None = None) -> Callable:
    """A decorator registering ``build`` as the converter of the layer class ``cls``."""

    def register(build: Callable) -> Callable:
        name = cls.__name__
        if name in CONVERTERS:
            raise ValueError(f"converter registry: {name!r} already has a converter")
        CONVERTERS[name] = Converter(build, {} if state is None else state, children)
        return build

    return register


def torch_module(name: str, **kwargs: Any) -> Callable:
    """A converter for a layer without weights that becomes ``torch.nn.<name>(**kwargs)``; a callable
    value is called with the layer (``p=lambda layer: layer.p``)."""

    def build(layer, ctx):
        return getattr(ctx.nn, name)(**{k: (v(layer) if callable(v) else v) for k, v in kwargs.items()})

    build.__name__ = f"_to_torch_{name}"
    return build


def weight_and_bias(layer) -> dict[str, tuple[str, Layout]]:
    """A convolution's W as ``weight`` (the same layout in both) and its b, if it has one, as ``bias``."""
    return {"W": ("weight", AS_IS), **({"b": ("bias", AS_IS)} if "b" in layer.params else {})}
