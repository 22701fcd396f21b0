"""Batch normalization (Ioffe and Szegedy, 2015), with PyTorch's conventions.

In training, each feature (a column of (N, C), or a channel of (N, C, H, W)) is normalized by
the mean and the **biased** variance of the batch, over the ``m`` values it has in the batch
(``m = N``, or ``N*H*W``), then scaled and shifted by the trainable ``gamma`` and ``beta``::

    mean = (1/m) sum x            var = (1/m) sum (x - mean)**2          (per feature)
    x_hat = (x - mean) / sqrt(var + eps)       y = gamma * x_hat + beta

and the running statistics, buffers, follow it with the **unbiased** variance:
``running_mean = (1 - momentum) running_mean + momentum mean``,
``running_var = (1 - momentum) running_var + momentum var m / (m - 1)``. In inference
(``training=False``) the running statistics stand in for the batch's, so each sample's output
depends on it alone. ``gamma`` starts at 1 and ``beta`` at 0; neither is weight-decayed.

Backward (training), with ``sigma = sqrt(var + eps)``, in the compact form (the derivation,
term by term through mean and var, is in docs/layers.md; npae.nn.reference holds the loops)::

    dbeta = sum dy           dgamma = sum dy * x_hat                    (per feature)
    dx = (gamma / (m sigma)) (m dy - sum dy - x_hat sum(dy * x_hat))

The gradient of x_hat is orthogonal to both the constant and x_hat itself: shifting or scaling
a feature's whole batch changes nothing after the normalization.
"""

from __future__ import annotations

import numpy as np

from .. import _checks
from .. import init as _init
from ..converters import AS_IS, converts
from ..core import LAYERS, Layer, Param


class _BatchNorm(Layer):
    """Shared by BatchNorm1D and BatchNorm2D, which differ in the input's rank only."""

    reference = ('batchnorm_forward_backward',)

    RANK = 2
    LAYOUT = "(N, C)"

    def __init__(self, features: int, *, momentum: float = 0.1, eps: float = 1e-5,
                 dtype: type | np.dtype | str = np.float32):
        where = type(self).__name__
        self.features = _checks.positive_int(features, "features", where)
        self.momentum = _checks.nonneg_float(momentum, "momentum", where)
        if self.momentum > 1:
            raise ValueError(f"{where}: momentum must lie in [0, 1], got {momentum}")
        self.eps = _checks.nonneg_float(eps, "eps", where)
        if self.eps == 0:
            raise ValueError(f"{where}: eps must be > 0 (it keeps a constant feature finite)")
        self.dtype = _checks.float_dtype(dtype, where)
        self.params = {"gamma": Param(_init.full(self.features, 1.0, self.dtype), decay=False),
                       "beta": Param(_init.full(self.features, 0.0, self.dtype), decay=False)}
        self.buffers = {"running_mean": _init.full(self.features, 0.0, self.dtype),
                        "running_var": _init.full(self.features, 1.0, self.dtype)}

    def _axes(self, x: np.ndarray) -> tuple:
        return (0,) + tuple(range(2, x.ndim))

    def _per_feature(self, v: np.ndarray) -> np.ndarray:
        """A (C,) array shaped to broadcast against the input."""
        return v.reshape((1, -1) + (1,) * (self.RANK - 2))

    def forward(self, x: np.ndarray, training: bool = True) -> np.ndarray:
        where = type(self).__name__
        expected = (None, self.features) + ("H", "W")[: self.RANK - 2]
        x = _checks.check_input(x, expected, where, self.dtype)
        gamma, beta = self._per_feature(self.params["gamma"].value), self._per_feature(self.params["beta"].value)
        if not training:
            mean, var = self.buffers["running_mean"], self.buffers["running_var"]
            x_hat = (x - self._per_feature(mean)) / np.sqrt(self._per_feature(var) + x.dtype.type(self.eps))
            return gamma * x_hat + beta
        m = x.size // self.features
        if m < 2:
            raise ValueError(f"{where}: training needs more than 1 value per feature to normalize by, got "
                             f"input {x.shape}; use a larger batch, or training=False")
        axes = self._axes(x)
        mean = x.mean(axis=axes, keepdims=True)
        centred = x - mean
        var = np.mean(centred * centred, axis=axes, keepdims=True)
        inv = 1 / np.sqrt(var + x.dtype.type(self.eps))
        x_hat = centred * inv
        mom = x.dtype.type(self.momentum)
        self.buffers["running_mean"][...] = (1 - mom) * self.buffers["running_mean"] + mom * mean.ravel()
        self.buffers["running_var"][...] = (1 - mom) * self.buffers["running_var"] + mom * var.ravel() * (m / (m - 1))
        self._cache = (x_hat, inv, m)
        return gamma * x_hat + beta

    def backward(self, dy: np.ndarray) -> np.ndarray:
        where = type(self).__name__
        x_hat, inv, m = self._cached(where)
        dy = _checks.check_grad(dy, x_hat.shape, self.dtype, where)
        axes = self._axes(dy)
        sum_dy = dy.sum(axis=axes, keepdims=True)
        sum_dy_xhat = (dy * x_hat).sum(axis=axes, keepdims=True)
        self.params["beta"].grad += sum_dy.ravel()
        self.params["gamma"].grad += sum_dy_xhat.ravel()
        gamma = self._per_feature(self.params["gamma"].value)
        return (gamma * inv / dy.dtype.type(m)) * (dy.dtype.type(m) * dy - sum_dy - x_hat * sum_dy_xhat)

    def output_shape(self, input_shape: tuple) -> tuple:
        if len(input_shape) != self.RANK - 1 or input_shape[0] != self.features:
            raise ValueError(f"{type(self).__name__}: expected input of shape {self.LAYOUT} with C = {self.features}, "
                             f"got (N, {', '.join(map(str, input_shape))})")
        return tuple(input_shape)

    def config(self) -> dict:
        return {"type": type(self).__name__, "features": self.features, "momentum": self.momentum, "eps": self.eps,
                "dtype": self.dtype.name}

    def extra_repr(self) -> str:
        return f"{self.features}, momentum={self.momentum}, eps={self.eps}"

#: gamma and beta are torch's weight and bias; the running mean and variance its buffers (both keep the
#: unbiased variance)
_TORCH_STATE = {"gamma": ("weight", AS_IS), "beta": ("bias", AS_IS),
                "running_mean": ("running_mean", AS_IS), "running_var": ("running_var", AS_IS)}


def _torch_batchnorm(module, layer, ctx):
    """``module(features, eps, momentum)``. torch's count of batches (``num_batches_tracked``) stays out:
    its forward uses it only when momentum is None, which npae's never is; npae has no such array, so
    exported state dicts lack it, torch's loader sets it to 0 and from_torch_state_dict ignores it."""
    return module(layer.features, eps=layer.eps, momentum=layer.momentum, dtype=ctx.dtype(layer))



@LAYERS.register
class BatchNorm1D(_BatchNorm):
    """Batch normalization of the columns of (N, C); see the module docstring."""

    @classmethod
    def examples(cls, rng: np.random.Generator) -> list:
        layer = cls(5, dtype=np.float64)
        layer.params["gamma"].value[...] = rng.uniform(0.5, 2, 5) * rng.choice([-1, 1], 5)
        layer.params["beta"].value[...] = rng.standard_normal(5)
        return [("BatchNorm1D(5), training mode", layer, rng.standard_normal((6, 5)) * 3 + 1)]


@converts(BatchNorm1D, _TORCH_STATE)
def _batchnorm1d_to_torch(layer, ctx):
    """``nn.BatchNorm1d`` with the same eps and momentum (see :func:`_torch_batchnorm`)."""
    return _torch_batchnorm(ctx.nn.BatchNorm1d, layer, ctx)


@LAYERS.register
class BatchNorm2D(_BatchNorm):
    """Batch normalization of the channels of (N, C, H, W), over N, H and W; see the module docstring."""

    RANK = 4
    LAYOUT = "(N, C, H, W)"

    @classmethod
    def examples(cls, rng: np.random.Generator) -> list:
        layer = cls(3, dtype=np.float64)
        layer.params["gamma"].value[...] = rng.uniform(0.5, 2, 3)
        layer.params["beta"].value[...] = rng.standard_normal(3)
        return [("BatchNorm2D(3), training mode", layer, rng.standard_normal((2, 3, 4, 3)) * 2 - 1)]


@converts(BatchNorm2D, _TORCH_STATE)
def _batchnorm2d_to_torch(layer, ctx):
    """``nn.BatchNorm2d`` with the same eps and momentum (see :func:`_torch_batchnorm`)."""
    return _torch_batchnorm(ctx.nn.BatchNorm2d, layer, ctx)
