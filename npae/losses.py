"""Reconstruction losses. Each returns ``(value, grad)`` with ``grad = d value / d y_pred``.

Normalization: both are **means over all elements** (batch, channels and pixels),
PyTorch's default ``reduction="mean"`` and what Keras reports for MSE. With
``M = y_pred.size``:

``mse``: ``L = (1/M) sum (y_pred - y)**2``;  ``dL/dy_pred = (2/M) (y_pred - y)``.

``bce``: ``L = -(1/M) sum [ y log p + (1 - y) log(1 - p) ]`` with ``p = y_pred`` in [0, 1];
``dL/dp = (1/M) (p - y) / (p (1 - p))``. It stays finite at p = 0 and p = 1 as in
PyTorch's BCELoss: each log is clamped below at -100 and ``p (1 - p)`` at 1e-12.

Duplicating the batch leaves both values unchanged (a mean); ``y`` is cast to
``y_pred``'s dtype, and ``value`` is a Python float.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from . import _checks

LOG_FLOOR = -100.0
DENOM_FLOOR = 1e-12


def _pair(y_pred, y, where):
    y_pred = _checks.as_float_array(y_pred, where, "y_pred")
    y = _checks.as_float_array(y, where, "y")
    if y_pred.shape != y.shape:
        raise ValueError(f"{where}: y_pred has shape {y_pred.shape} but y has shape {y.shape}; they must match exactly")
    if y_pred.size == 0:
        raise ValueError(f"{where}: empty arrays")
    _checks.check_finite(y_pred, where, "y_pred")
    _checks.check_finite(y, where, "y")
    return y_pred, y.astype(y_pred.dtype, copy=False)


def mse(y_pred: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean squared error over all elements and its gradient with respect to ``y_pred``."""
    y_pred, y = _pair(y_pred, y, "mse")
    diff = y_pred - y
    m = y_pred.dtype.type(diff.size)
    value = float(np.vdot(diff, diff) / m)
    diff *= 2 / m  # the gradient, in the same array
    return value, diff


def bce(y_pred: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Binary cross-entropy (mean over all elements) and its gradient; y_pred and y in [0, 1]."""
    p, y = _pair(y_pred, y, "bce")
    if p.min() < 0 or p.max() > 1:
        raise ValueError(f"bce: y_pred must lie in [0, 1] (e.g. a sigmoid output), "
                         f"got values in [{p.min()}, {p.max()}]")
    if y.min() < 0 or y.max() > 1:
        raise ValueError(f"bce: y must lie in [0, 1], got values in [{y.min()}, {y.max()}]")
    with np.errstate(divide="ignore"):
        log_p = np.maximum(np.log(p), LOG_FLOOR)
        log_1mp = np.maximum(np.log1p(-p), LOG_FLOOR)
    m = p.dtype.type(p.size)
    value = -float(np.sum(y * log_p + (1 - y) * log_1mp) / m)
    grad = (p - y) / np.maximum(p * (1 - p), p.dtype.type(DENOM_FLOOR)) / m
    return value, grad


LOSSES = {"mse": mse, "bce": bce}


def get(loss: str | Callable[..., tuple[float, np.ndarray]]) -> Callable[..., tuple[float, np.ndarray]]:
    """A loss by name (``"mse"``, ``"bce"``) or a callable ``(y_pred, y) -> (value, grad)``."""
    return _checks.named_or_callable(loss, LOSSES, "loss")
