"""Dense (fully connected) layer and the shape-only layers Flatten and Reshape."""

from __future__ import annotations

import math

import numpy as np

from .. import _checks
from .. import init as _init
from ..converters import AS_IS, TRANSPOSED, converts, torch_module
from ..core import LAYERS, Layer, Param, Sequential


@LAYERS.register
class Dense(Layer):
    r"""Affine map ``y = x @ W + b``.

    Parameters
    ----------
    n_in, n_out : int
        Input and output features.
    rng : np.random.Generator, optional
        Draws the initial weights (a fresh unseeded Generator when None).
    dtype : float32 (default) or float64
    init : str or callable
        ``"glorot_uniform"`` (default, the Keras default) or ``"he_normal"``. ``b`` starts at 0.

    Shapes
    ------
    x : (N, n_in), W : (n_in, n_out), b : (n_out,), y : (N, n_out)

    Forward and backward
    --------------------
    ``y = x @ W + b``
    ``dW += x.T @ dy``       (n_in, n_out): sum over the batch of outer products x_n dy_n^T
    ``db += dy.sum(0)``      (n_out,)
    ``dx  = dy @ W.T``       (N, n_in)
    """

    def __init__(self, n_in: int, n_out: int, *, rng: np.random.Generator | None = None,
                 dtype: type | np.dtype | str = np.float32,
                 init: str = "glorot_uniform"):
        where = "Dense"
        self.n_in = _checks.positive_int(n_in, "n_in", where)
        self.n_out = _checks.positive_int(n_out, "n_out", where)
        self.dtype = _checks.float_dtype(dtype, where)
        self.init = init if isinstance(init, str) else getattr(init, "__name__", "custom")
        rng = _init.default_rng(rng, where)
        W = _init.get(init)((self.n_in, self.n_out), rng, self.dtype, "dense")
        self.params = {"W": Param(W, decay=True), "b": Param(_init.full(self.n_out, 0.0, self.dtype), decay=False)}

    @property
    def W(self) -> np.ndarray:
        return self.params["W"].value

    @property
    def b(self) -> np.ndarray:
        return self.params["b"].value

    def forward(self, x: np.ndarray, training: bool = True) -> np.ndarray:
        x = _checks.check_input(x, (None, self.n_in), "Dense", self.dtype)
        self._cache = x if training else None  # x: what dW needs
        y = x @ self.W
        y += self.b
        return y

    can_skip_dx = True

    def backward(self, dy: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        x = self._cached("Dense")
        dy = _checks.check_grad(dy, (x.shape[0], self.n_out), self.dtype, "Dense")
        self.params["W"].grad += x.T @ dy
        self.params["b"].grad += dy.sum(axis=0)
        return dy @ self.W.T if need_dx else None

    def output_shape(self, input_shape: tuple) -> tuple:
        if tuple(input_shape) != (self.n_in,):
            raise ValueError(f"Dense: expected input of shape (N, {self.n_in}), "
                             f"got (N, {', '.join(map(str, input_shape))})")
        return (self.n_out,)

    def config(self) -> dict:
        return {"type": "Dense", "n_in": self.n_in, "n_out": self.n_out, "dtype": self.dtype.name}

    @classmethod
    def examples(cls, rng: np.random.Generator) -> list:
        layer = cls(7, 5, rng=rng, dtype=np.float64)
        layer.params["b"].value[...] = rng.standard_normal(5)
        return [("Dense(7, 5)", layer, rng.standard_normal((4, 7)))]

    def extra_repr(self) -> str:
        return f"{self.n_in}, {self.n_out}"


@converts(Dense, {"W": ("weight", TRANSPOSED), "b": ("bias", AS_IS)})
def _dense_to_torch(layer, ctx):
    """``nn.Linear(n_in, n_out)``: ``weight = W.T`` (npae's W is (n_in, n_out), torch's weight (out, in)),
    ``bias = b``."""
    linear = ctx.nn.Linear(layer.n_in, layer.n_out, dtype=ctx.dtype(layer))
    ctx.linears[id(layer)] = linear
    return linear


@LAYERS.register
class TiedDense(Layer):
    r"""Affine map through the **transpose** of another Dense layer's matrix: tied weights.

    Parameters
    ----------
    source : Dense
        The layer whose ``W`` (n_in_s, n_out_s) this one uses as ``W.T``; this layer maps
        n_out_s features back to n_in_s. Only the bias ``b`` (n_in_s,) belongs to this layer:
        ``W`` stays the source's parameter, so it is listed (and updated) once.

    Shapes
    ------
    x : (N, n_out_s), W : (n_in_s, n_out_s) (the source's), b : (n_in_s,), y : (N, n_in_s)

    Forward and backward
    --------------------
    ``y = x @ W.T + b``
    ``dW += dy.T @ x``       (n_in_s, n_out_s): added to the SOURCE's gradient, so a model using
                             W twice (encoder ``x @ W``, decoder ``h @ W.T``) receives the sum of both
                             contributions, dL/dW = x_in.T @ d_enc + dy.T @ h (the chain rule for a shared
                             parameter, and why ``backward`` adds instead of assigning)
    ``db += dy.sum(0)``      (n_in_s,)
    ``dx  = dy @ W``         (N, n_out_s)
    """

    def __init__(self, source: Dense):
        if not isinstance(source, Dense):
            raise TypeError(f"TiedDense: source must be a Dense layer, got {type(source).__name__}")
        self.source = source
        self.n_in, self.n_out = source.n_out, source.n_in
        self.dtype = source.dtype
        self.params = {"b": Param(_init.full(self.n_out, 0.0, source.dtype), decay=False)}
        self.tied_to = None  # the source's path inside the model's encoder, set by the Autoencoder (for saving)

    @property
    def W(self) -> np.ndarray:
        """The source's matrix (n_in_s, n_out_s); this layer computes ``x @ W.T``."""
        return self.source.W

    @property
    def b(self) -> np.ndarray:
        return self.params["b"].value

    def forward(self, x: np.ndarray, training: bool = True) -> np.ndarray:
        if self.dtype != self.source.dtype:
            raise TypeError(f"TiedDense: its bias is {self.dtype} but the tied matrix is {self.source.dtype}; "
                            "convert the whole model with astype")
        x = _checks.check_input(x, (None, self.n_in), "TiedDense", self.dtype)
        self._cache = x if training else None
        y = x @ self.W.T
        y += self.b
        return y

    can_skip_dx = True

    def backward(self, dy: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        x = self._cached("TiedDense")
        dy = _checks.check_grad(dy, (x.shape[0], self.n_out), self.dtype, "TiedDense")
        self.source.params["W"].grad += dy.T @ x
        self.params["b"].grad += dy.sum(axis=0)
        return dy @ self.W if need_dx else None

    def output_shape(self, input_shape: tuple) -> tuple:
        if tuple(input_shape) != (self.n_in,):
            raise ValueError(f"TiedDense: expected input of shape (N, {self.n_in}), "
                             f"got (N, {', '.join(map(str, input_shape))})")
        return (self.n_out,)

    def config(self) -> dict:
        if self.tied_to is None:
            raise ValueError("TiedDense.config: only a TiedDense inside an Autoencoder whose encoder holds its source "
                             "can be saved")
        return {"type": "TiedDense", "tied_to": self.tied_to}

    @classmethod
    def from_config(cls, cfg: dict, context: object) -> TiedDense:
        """The TiedDense ``cfg`` describes; ``context.layer_at(path)`` gives the Dense it is tied to."""
        if set(cfg) != {"type", "tied_to"} or not isinstance(cfg["tied_to"], str):
            raise ValueError("expected {'type': 'TiedDense', 'tied_to': <path of a Dense in the encoder>}")
        layer = cls(context.layer_at(cfg["tied_to"]))
        layer.tied_to = cfg["tied_to"]
        return layer

    @classmethod
    def examples(cls, rng: np.random.Generator) -> list:
        from .activations import Tanh

        (_, dense, x), = Dense.examples(rng)
        tied = cls(dense)
        tied.params["b"].value[...] = rng.standard_normal(dense.n_in)
        # W used twice, x @ W then tanh(.) @ W.T: its gradient is the sum of both uses
        return [("Dense-Tanh-TiedDense (one W, two uses)", Sequential(dense, Tanh(), tied), x)]

    def extra_repr(self) -> str:
        return f"{self.n_in}, {self.n_out}, W = " + (f"encoder.{self.tied_to}.W.T" if self.tied_to else "source.W.T")


@converts(TiedDense, {"b": ("bias", AS_IS)})
def _tied_dense_to_torch(layer, ctx):
    """``TiedLinear``: ``F.linear(x, source.weight.t(), bias)`` with the source's torch Linear; the weight
    is SHARED (one Parameter, named once, under the encoder), only ``bias = b`` is its own."""
    source = ctx.linears.get(id(layer.source))
    if source is None:
        raise ValueError("to_torch: a TiedDense is tied to a Dense layer that is not converted before it in the same "
                         "model (export the Autoencoder or the Sequential that holds both)")
    return ctx.classes.TiedLinear(source)


@LAYERS.register
class Flatten(Layer):
    """Reshape ``(N, d1, d2, ...)`` to ``(N, d1*d2*...)``; backward reshapes ``dy`` back.

    Shapes: x (N, *S) -> y (N, prod(S)). A pure permutation of entries, so ``dx`` is
    ``dy`` in the input's shape (the adjoint of a reshape is the inverse reshape).
    """

    def forward(self, x: np.ndarray, training: bool = True) -> np.ndarray:
        x = _checks.as_float_array(x, "Flatten")
        if x.ndim < 2:
            raise ValueError(f"Flatten: expected input of shape (N, d1, ...) with at least 2 axes, got {x.shape}")
        _checks.check_finite(x, "Flatten")
        self._cache = (x.shape, x.dtype) if training else None
        return x.reshape(x.shape[0], -1)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        shape, dtype = self._cached("Flatten")
        dy = _checks.check_grad(dy, (shape[0], math.prod(shape[1:])), dtype, "Flatten")
        return dy.reshape(shape)

    def output_shape(self, input_shape: tuple) -> tuple:
        return (math.prod(input_shape),)

    @classmethod
    def examples(cls, rng: np.random.Generator) -> list:
        return [("Flatten", cls(), rng.standard_normal((2, 3, 2, 2)))]


converts(Flatten)(torch_module("Flatten"))  # from axis 1, as npae


@LAYERS.register
class Reshape(Layer):
    """Reshape each sample: ``(N, *S_in)`` -> ``(N, *shape)`` with ``prod(S_in) == prod(shape)``.

    Backward reshapes ``dy`` (N, *shape) back to the input's shape.
    """

    def __init__(self, shape: tuple):
        if isinstance(shape, (int, np.integer)):
            shape = (shape,)
        try:
            shape = tuple(int(s) for s in shape)
        except (TypeError, ValueError):
            raise TypeError(f"Reshape: shape must be a tuple of positive ints, got {shape!r}") from None
        if not shape or min(shape) < 1:
            raise ValueError(f"Reshape: shape must be a non-empty tuple of positive ints, got {shape}")
        self.shape = shape

    def forward(self, x: np.ndarray, training: bool = True) -> np.ndarray:
        x = _checks.as_float_array(x, "Reshape")
        if x.ndim < 2 or math.prod(x.shape[1:]) != math.prod(self.shape):
            raise ValueError(
                f"Reshape: expected input of shape (N, ...) with {math.prod(self.shape)} values per sample "
                f"(to reshape to {_checks.fmt_shape((None,) + self.shape)}), got {x.shape}"
            )
        _checks.check_finite(x, "Reshape")
        self._cache = (x.shape, x.dtype) if training else None
        return x.reshape((x.shape[0],) + self.shape)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        shape, dtype = self._cached("Reshape")
        dy = _checks.check_grad(dy, (shape[0],) + self.shape, dtype, "Reshape")
        return dy.reshape(shape)

    def output_shape(self, input_shape: tuple) -> tuple:
        if math.prod(input_shape) != math.prod(self.shape):
            raise ValueError(f"Reshape: cannot reshape {tuple(input_shape)} to {self.shape}")
        return self.shape

    def config(self) -> dict:
        return {"type": "Reshape", "shape": list(self.shape)}

    @classmethod
    def examples(cls, rng: np.random.Generator) -> list:
        return [("Reshape((3, 4))", cls((3, 4)), rng.standard_normal((2, 12)))]

    def extra_repr(self) -> str:
        return repr(self.shape)


@converts(Reshape)
def _reshape_to_torch(layer, ctx):
    """``nn.Sequential(nn.Flatten(), nn.Unflatten(1, shape))``."""
    return ctx.nn.Sequential(ctx.nn.Flatten(), ctx.nn.Unflatten(1, layer.shape))
