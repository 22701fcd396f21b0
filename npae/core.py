"""The three ideas everything in npae is built from: ``Param``, ``Layer`` and ``Sequential``.

The contract of a layer
-----------------------
``forward(x, training=True) -> y``
    Computes the output. ``training`` selects the training-mode behaviour (a layer whose
    training and inference differ, such as dropout or batch normalization, says how) and
    keeps in ``self._cache`` what ``backward`` needs; ``training=False`` is inference:
    nothing is cached. Gradient checks differentiate the training-mode function.
``backward(dy) -> dx``
    Given ``dy = dL/dy`` (same shape and dtype as the last training output) it returns
    ``dx = dL/dx`` and **adds** ``dL/dp`` into ``p.grad`` for each of its parameters ``p``.
    It never changes a weight: that is the optimizer's job, so a gradient check can call
    ``backward`` as often as it likes. A layer that can skip computing ``dx`` (the first
    layer of a model, whose input gradient nobody uses) sets ``can_skip_dx = True`` and
    takes ``backward(dy, need_dx=False)``.
``params``
    The layer's own trainable arrays, ``{name: Param}`` (empty for a layer without any).
``buffers``
    Its non-trainable state, ``{name: ndarray}`` (a running mean): converted by ``astype``,
    saved, loaded and checkpointed with the weights, never touched by an optimizer.

Gradients add up
----------------
Because ``backward`` adds (``p.grad += ...``) instead of assigning, a parameter used
twice (tied weights) receives the sum of both contributions, exactly as the chain
rule says. The flip side is that calling ``backward`` twice without ``zero_grad()``
doubles every gradient; the training loop zeroes them once per step.

Every layer class joins the registry ``LAYERS`` (``@LAYERS.register``): saved models are
rebuilt from it, and the gradient-check suite and the tests check every layer in it,
through the small examples each class gives (:meth:`Layer.examples`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from types import MappingProxyType

import numpy as np

from . import _checks
from .converters import converts
from .registry import Registry

#: every layer class, by name (what a saved model's description may name)
LAYERS = Registry("layer")

_EMPTY: Mapping = MappingProxyType({})


# -- inputs for the examples: away from the kinks a gradient check must not cross ---------
def away_from_zero(shape: tuple, rng: np.random.Generator, margin: float = 0.1) -> np.ndarray:
    """Random values with ``|v| >= margin``: no ReLU or |.| kink within reach of h."""
    u = rng.standard_normal(shape)
    return np.sign(u) * (margin + np.abs(u))


def distinct_values(shape: tuple, rng: np.random.Generator, gap: float = 0.01) -> np.ndarray:
    """A random permutation of values ``gap`` apart: no max-pool ties or near-ties."""
    n = int(np.prod(shape))
    return (rng.permutation(n) * gap - n * gap / 2).reshape(shape)


class Param:
    """A trainable array and the gradient of the loss with respect to it.

    Parameters
    ----------
    value : ndarray
        The weights; ``grad`` is allocated with the same shape and dtype.
    decay : bool
        Whether weight decay applies (weights: yes; biases: no).
    """

    __slots__ = ("value", "grad", "decay")

    def __init__(self, value: np.ndarray, decay: bool = True):
        value = np.asarray(value)
        if value.dtype.kind != "f":
            raise TypeError(f"Param: value must be a float array, got dtype {value.dtype}")
        self.value = value
        self.grad = np.zeros_like(value)
        self.decay = bool(decay)

    @property
    def shape(self) -> tuple:
        return self.value.shape

    @property
    def dtype(self) -> np.dtype:
        return self.value.dtype

    @property
    def size(self) -> int:
        return self.value.size

    def astype(self, dtype: type | np.dtype | str) -> Param:
        """Convert value and grad to ``dtype`` in place (the Param object stays the same)."""
        self.value = self.value.astype(dtype)
        self.grad = self.grad.astype(dtype)
        return self

    def __repr__(self) -> str:
        return f"Param(shape={self.shape}, dtype={self.dtype}, decay={self.decay})"


class Layer:
    """Base class of every layer; see the module docstring for the contract.

    Subclasses implement ``forward``, ``backward`` and ``output_shape``; one with weights sets
    ``self.params`` and ``self.dtype`` (the parameters' dtype; None for a layer that takes any
    float input and keeps its dtype), one with state sets ``self.buffers``. ``config()`` gives
    the constructor arguments that rebuild it, ``examples()`` small instances to check.
    """

    #: the layer's own trainable arrays; assigned by layers that have some
    params: Mapping[str, Param] = _EMPTY
    #: the layer's non-trainable state (running statistics); assigned by layers that have some
    buffers: Mapping[str, np.ndarray] = _EMPTY
    #: the dtype of the parameters, or None for a layer without a dtype of its own
    dtype: np.dtype | None = None
    #: True when the function is only piecewise smooth (ReLU, max): gradient checks
    #: then use the looser threshold and watch for perturbations crossing a kink.
    has_kinks = False
    #: True when ``backward(dy, need_dx=False)`` skips computing the input gradient
    can_skip_dx = False
    #: the loop definitions in :mod:`npae.nn.reference` that this layer's vectorized code is held to
    #: (function names); empty for a layer whose code is its formula (Dense, the activations)
    reference: tuple[str, ...] = ()
    #: what the last training forward kept for backward (None: nothing)
    _cache = None

    # -- the protocol -----------------------------------------------------------------
    def forward(self, x: np.ndarray, training: bool = True) -> np.ndarray:
        raise NotImplementedError

    def backward(self, dy: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def output_shape(self, input_shape: tuple) -> tuple:
        """Per-sample output shape (no batch axis) for a per-sample ``input_shape``."""
        raise NotImplementedError

    def kink_state(self, x: np.ndarray) -> np.ndarray | None:
        """An array that changes exactly when ``x`` crosses a kink of this layer, or None."""
        return None

    def config(self) -> dict:
        """The constructor arguments, JSON-ready: ``{"type": class name, **kwargs}`` (no weights)."""
        return {"type": type(self).__name__}

    @classmethod
    def from_config(cls, cfg: dict, context: object) -> Layer:
        """The layer ``config()`` describes (freshly initialized). ``context`` lets a layer that
        refers to another (TiedDense) find it: ``context.layer_at(path)``."""
        return cls(**{k: v for k, v in cfg.items() if k != "type"})

    @classmethod
    def examples(cls, rng: np.random.Generator) -> list[tuple[str, Layer, np.ndarray]]:
        """``(title, layer, x)`` in float64 for gradient checks: parameters non-zero, inputs
        away from kinks. Every registered layer gives at least one (the tests require it)."""
        raise NotImplementedError(f"{cls.__name__}.examples")

    # -- conveniences shared by all layers --------------------------------------------
    def __call__(self, x: np.ndarray, training: bool = True) -> np.ndarray:
        return self.forward(x, training)

    def named_params(self, prefix: str = "") -> Iterator[tuple[str, Param]]:
        """Yield ``(name, Param)`` pairs; ``prefix`` is prepended (``"encoder.0."``)."""
        for name, p in self.params.items():
            yield prefix + name, p

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, np.ndarray]]:
        """Yield ``(name, array)`` for the non-trainable state, named like the parameters."""
        for name, b in self.buffers.items():
            yield prefix + name, b

    def generators(self) -> list[np.random.Generator]:
        """The generators the training-mode forward draws from (a dropout mask), so a gradient
        check can replay the same draws in every evaluation; none for most layers."""
        return []

    def zero_grad(self) -> None:
        for _, p in self.named_params():
            p.grad[...] = 0

    def astype(self, dtype: type | np.dtype | str) -> Layer:
        """Convert every parameter (and its gradient) and every float buffer to ``dtype``; returns ``self``."""
        dtype = _checks.float_dtype(dtype, f"{type(self).__name__}.astype")
        for p in self.params.values():
            p.astype(dtype)
        for name, b in self.buffers.items():
            if b.dtype.kind == "f":
                self.buffers[name] = b.astype(dtype)
        if self.dtype is not None:
            self.dtype = dtype
        self.clear_cache()
        return self

    def n_params(self) -> int:
        return sum(p.size for _, p in self.named_params())

    def clear_cache(self) -> None:
        """Forget what the last training forward kept (shapes or dtypes may have changed)."""
        self._cache = None

    def _cached(self, where: str):
        """The cache, or the error of a ``backward`` called before a training ``forward``."""
        if self._cache is None:
            raise ValueError(f"{where}: backward() called before forward(x, training=True); "
                             f"nothing is cached to differentiate")
        return self._cache

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"


@LAYERS.register
class Sequential(Layer):
    """Layers applied one after the other; itself a :class:`Layer`.

    Forward: ``y = f_L(... f_2(f_1(x)))``. Backward (chain rule): ``dx = J_1^T (J_2^T (... J_L^T dy))``,
    each layer's ``backward`` applying its own ``J^T``. Parameters are named with
    dots: ``"0.W"`` is the ``W`` of the first layer, ``"encoder.0.W"`` once nested.
    """

    def __init__(self, *layers: Layer):
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"Sequential: item {i} is a {type(layer).__name__}, not an npae Layer")
        self.layers: list[Layer] = list(layers)

    @property
    def params(self) -> dict[str, Param]:  # type: ignore[override]
        """Every parameter of every layer, by dotted name (a Sequential owns none itself)."""
        return dict(self.named_params())

    @property
    def buffers(self) -> dict[str, np.ndarray]:  # type: ignore[override]
        return dict(self.named_buffers())

    @property
    def has_kinks(self) -> bool:  # type: ignore[override]
        return any(layer.has_kinks for layer in self.layers)

    def named_params(self, prefix: str = "") -> Iterator[tuple[str, Param]]:
        for i, layer in enumerate(self.layers):
            yield from layer.named_params(f"{prefix}{i}.")

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, np.ndarray]]:
        for i, layer in enumerate(self.layers):
            yield from layer.named_buffers(f"{prefix}{i}.")

    def generators(self) -> list[np.random.Generator]:
        return [g for layer in self.layers for g in layer.generators()]

    def walk(self, prefix: str = "") -> Iterator[tuple[str, Layer]]:
        """``(path, layer)`` for every layer inside, nested ones too (paths "0", "2.1", ...)."""
        for i, layer in enumerate(self.layers):
            yield f"{prefix}{i}", layer
            if isinstance(layer, Sequential):
                yield from layer.walk(f"{prefix}{i}.")

    def forward(self, x: np.ndarray, training: bool = True) -> np.ndarray:
        if not self.layers:
            return x
        x = self.layers[0].forward(x, training)  # the only input that comes from outside
        with _checks.inside_sequential():
            for layer in self.layers[1:]:
                x = layer.forward(x, training)
        return x

    can_skip_dx = True

    def backward(self, dy: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        """Backward through every layer, last to first. With ``need_dx=False`` (the first layer
        of a model, whose input gradient nobody uses) a first layer that can skips computing
        dx, and None is returned."""
        last = len(self.layers) - 1
        for i in range(last, -1, -1):
            layer = self.layers[i]
            # only the dy handed to the last layer comes from outside; the rest npae made
            with _checks.inside_sequential() if i < last else contextlib.nullcontext():
                if i == 0 and not need_dx and layer.can_skip_dx:
                    layer.backward(dy, need_dx=False)
                    return None
                dy = layer.backward(dy)
        return dy if need_dx else None

    def output_shape(self, input_shape: tuple) -> tuple:
        for layer in self.layers:
            input_shape = layer.output_shape(input_shape)
        return tuple(input_shape)

    def kink_state(self, x: np.ndarray) -> np.ndarray | None:
        states = []
        for layer in self.layers:
            s = layer.kink_state(x)
            if s is not None:
                states.append(np.ravel(s))
            x = layer.forward(x, training=True)  # the training-mode function, as checked
        return np.concatenate(states) if states else None

    def astype(self, dtype: type | np.dtype | str) -> Sequential:
        for layer in self.layers:
            layer.astype(dtype)
        return self

    def clear_cache(self) -> None:
        for layer in self.layers:
            layer.clear_cache()

    def config(self) -> dict:
        return {"type": "Sequential", "layers": [layer.config() for layer in self.layers]}

    @classmethod
    def from_config(cls, cfg: dict, context: object) -> Sequential:
        """The Sequential ``cfg`` describes; ``context`` builds each of its layers: ``context.build(layer_cfg)``."""
        if set(cfg) != {"type", "layers"} or not isinstance(cfg["layers"], list):
            raise ValueError("expected {'type': 'Sequential', 'layers': [<layer>, ...]}")
        return cls(*[context.build(c) for c in cfg["layers"]])

    @classmethod
    def examples(cls, rng: np.random.Generator) -> list[tuple[str, Layer, np.ndarray]]:
        """None of its own: a container is checked through the composites of the suite."""
        return []

    def summary(self, input_shape: tuple) -> str:
        """A table of layers, per-sample output shapes and parameter counts.

        ``input_shape`` is the shape of one sample, e.g. ``(784,)`` or ``(1, 28, 28)``.
        """
        input_shape = tuple(int(s) for s in input_shape)
        rows = [("layer", "output shape", "params")]
        shape = input_shape
        rows.append(("input", _checks.fmt_shape((None,) + shape), ""))
        for i, layer in enumerate(self.layers):
            try:
                shape = tuple(layer.output_shape(shape))
            except ValueError as exc:
                raise ValueError(f"Sequential.summary: layer {i} ({layer!r}) rejects input {shape}: {exc}") from exc
            rows.append((f"{i}: {layer!r}", _checks.fmt_shape((None,) + shape), f"{layer.n_params():,}"))
        total = self.n_params()
        widths = [max(len(r[c]) for r in rows) for c in range(3)]
        line = "-" * (sum(widths) + 4)
        out = [f"{rows[0][0]:<{widths[0]}}  {rows[0][1]:<{widths[1]}}  {rows[0][2]:>{widths[2]}}", line]
        out += [f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c:>{widths[2]}}" for a, b, c in rows[1:]]
        out += [line, f"total parameters: {total:,}"]
        return "\n".join(out)

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, i: int) -> Layer:
        return self.layers[i]

    def __iter__(self) -> Iterator[Layer]:
        return iter(self.layers)

    def __repr__(self) -> str:
        if not self.layers:
            return "Sequential()"
        inner = "\n".join(f"  ({i}): {layer!r}".replace("\n", "\n  ") for i, layer in enumerate(self.layers))
        return f"Sequential(\n{inner}\n)"


@converts(Sequential, children=lambda s: [(str(i), c) for i, c in enumerate(s.layers)])
def _sequential_to_torch(layer, ctx):
    """``nn.Sequential`` of the converted layers."""
    return ctx.nn.Sequential(*[ctx.convert(child, str(i)) for i, child in enumerate(layer.layers)])
