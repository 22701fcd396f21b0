"""The three ideas everything in npae is built from: ``Param``, ``Layer`` and ``Sequential``.

The contract of a layer
-----------------------
``forward(x, training=True) -> y``
    Computes the output. With ``training=True`` it also caches what ``backward``
    needs; with ``training=False`` it caches nothing (inference, evaluation).
``backward(dy) -> dx``
    Given ``dy = dL/dy`` (same shape and dtype as the last training output) it
    returns ``dx = dL/dx`` and **adds** ``dL/dp`` into ``p.grad`` for each of its
    parameters ``p``. It never changes a weight: that is the optimizer's job, so a
    gradient check can call ``backward`` as often as it likes.

Gradients add up
----------------
Because ``backward`` adds (``p.grad += ...``) instead of assigning, a parameter used
twice (tied weights) receives the sum of both contributions, exactly as the chain
rule says. The flip side is that calling ``backward`` twice without ``zero_grad()``
doubles every gradient; the training loop zeroes them once per step.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import numpy as np

from . import _checks


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

    def astype(self, dtype) -> "Param":
        """Convert value and grad to ``dtype`` in place (the Param object stays the same)."""
        self.value = self.value.astype(dtype)
        self.grad = self.grad.astype(dtype)
        return self

    def __repr__(self) -> str:
        return f"Param(shape={self.shape}, dtype={self.dtype}, decay={self.decay})"


class Layer:
    """Base class of every layer; see the module docstring for the contract.

    Subclasses set ``self.params`` (``dict[str, Param]``), implement ``forward``,
    ``backward`` and ``output_shape``, and may implement ``kink_state`` (used by
    :mod:`npae.gradcheck` to warn when a finite difference crossed a kink).
    """

    #: True when the function is only piecewise smooth (ReLU, max): gradient checks
    #: then use the looser threshold and watch for perturbations crossing a kink.
    has_kinks = False

    def __init__(self):
        self.params: dict[str, Param] = {}

    # -- the protocol -----------------------------------------------------------------
    def forward(self, x: np.ndarray, training: bool = True) -> np.ndarray:
        raise NotImplementedError

    def backward(self, dy: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def output_shape(self, input_shape: tuple) -> tuple:
        """Per-sample output shape (no batch axis) for a per-sample ``input_shape``."""
        raise NotImplementedError

    def kink_state(self, x: np.ndarray):
        """An array that changes exactly when ``x`` crosses a kink of this layer, or None."""
        return None

    # -- conveniences shared by all layers --------------------------------------------
    def __call__(self, x: np.ndarray, training: bool = True) -> np.ndarray:
        return self.forward(x, training)

    def named_params(self, prefix: str = "") -> Iterator[tuple[str, Param]]:
        """Yield ``(name, Param)`` pairs; ``prefix`` is prepended (``"encoder.0."``)."""
        for name, p in self.params.items():
            yield prefix + name, p

    def zero_grad(self) -> None:
        for _, p in self.named_params():
            p.grad[...] = 0

    def astype(self, dtype) -> "Layer":
        """Convert every parameter (and its gradient) to ``dtype``; returns ``self``."""
        dtype = _checks.float_dtype(dtype, f"{type(self).__name__}.astype")
        for _, p in self.named_params():
            p.astype(dtype)
        if hasattr(self, "dtype"):
            self.dtype = dtype
        self._clear_cache()
        return self

    def n_params(self) -> int:
        return sum(p.size for _, p in self.named_params())

    def _clear_cache(self) -> None:
        """Forget what the last training forward cached (shapes may have changed)."""
        for k in [k for k in vars(self) if k.startswith("_c_")]:
            setattr(self, k, None)

    def config(self) -> dict:
        """The constructor arguments, JSON-ready: ``{"type": class name, **kwargs}`` (no weights)."""
        return {"type": type(self).__name__}

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"


class Sequential(Layer):
    """Layers applied one after the other; itself a :class:`Layer`.

    Forward: ``y = f_L(... f_2(f_1(x)))``. Backward (chain rule): ``dx = J_1^T (J_2^T (... J_L^T dy))``,
    each layer's ``backward`` applying its own ``J^T``. Parameters are named with
    dots: ``"0.W"`` is the ``W`` of the first layer, ``"encoder.0.W"`` once nested.
    """

    def __init__(self, *layers: Layer):
        super().__init__()
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"Sequential: item {i} is a {type(layer).__name__}, not an npae Layer")
        self.layers: list[Layer] = list(layers)

    @property
    def params(self) -> dict[str, Param]:  # type: ignore[override]
        return dict(self.named_params())

    @params.setter
    def params(self, value) -> None:  # Layer.__init__ assigns {}; a Sequential owns no params itself
        if value:
            raise AttributeError("Sequential's params are those of its layers")

    @property
    def has_kinks(self) -> bool:  # type: ignore[override]
        return any(layer.has_kinks for layer in self.layers)

    def named_params(self, prefix: str = "") -> Iterator[tuple[str, Param]]:
        for i, layer in enumerate(self.layers):
            yield from layer.named_params(f"{prefix}{i}.")

    def forward(self, x: np.ndarray, training: bool = True) -> np.ndarray:
        if not self.layers:
            return x
        x = self.layers[0].forward(x, training)  # the only input that comes from outside
        with _checks.inside_sequential():
            for layer in self.layers[1:]:
                x = layer.forward(x, training)
        return x

    def backward(self, dy: np.ndarray, need_dx: bool = True):
        """Backward through every layer, last to first. With ``need_dx=False`` (the first layer
        of a model, whose input gradient nobody uses) a first Dense or Conv2D skips computing
        dx, and None is returned."""
        last = len(self.layers) - 1
        for i in range(last, -1, -1):
            layer = self.layers[i]
            # only the dy handed to the last layer comes from outside; the rest npae made
            with _checks.inside_sequential() if i < last else contextlib.nullcontext():
                if i == 0 and not need_dx and getattr(layer, "can_skip_dx", False):
                    layer.backward(dy, need_dx=False)
                    return None
                dy = layer.backward(dy)
        return dy if need_dx else None

    def output_shape(self, input_shape: tuple) -> tuple:
        for layer in self.layers:
            input_shape = layer.output_shape(input_shape)
        return tuple(input_shape)

    def kink_state(self, x: np.ndarray):
        states = []
        for layer in self.layers:
            s = layer.kink_state(x)
            if s is not None:
                states.append(np.ravel(s))
            x = layer.forward(x, training=False)
        return np.concatenate(states) if states else None

    def astype(self, dtype) -> "Sequential":
        for layer in self.layers:
            layer.astype(dtype)
        return self

    def config(self) -> dict:
        return {"type": "Sequential", "layers": [layer.config() for layer in self.layers]}

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

    def __iter__(self):
        return iter(self.layers)

    def __repr__(self) -> str:
        if not self.layers:
            return "Sequential()"
        inner = "\n".join(f"  ({i}): {layer!r}".replace("\n", "\n  ") for i, layer in enumerate(self.layers))
        return f"Sequential(\n{inner}\n)"
