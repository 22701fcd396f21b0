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

``softmax_cross_entropy`` (for classifiers, e.g. a linear probe on codes; not a reconstruction
loss, so not in ``LOSSES``): ``z`` are logits of shape (N, K), ``y`` targets of the same shape
whose rows are probability vectors (one-hot labels: ``one_hot(labels, K)``). With
``p = softmax(z)`` row-wise, ``p_nk = exp(z_nk - m_n) / sum_j exp(z_nj - m_n)``, ``m_n = max_j z_nj``:

``L = -(1/N) sum_n sum_k y_nk log p_nk``  (a **mean over the batch**, a sum over classes:
PyTorch's ``CrossEntropyLoss``); ``dL/dz = (1/N) (p - y)`` (using ``sum_k y_nk = 1``).
``log p`` is computed as ``z - m - log sum exp(z - m)``, so no logit overflows.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .. import _checks

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


def one_hot(labels: np.ndarray, classes: int, dtype: type | np.dtype | str = np.float32) -> np.ndarray:
    """(N,) integer labels in [0, classes) -> (N, classes) rows of zeros with a 1 at the label."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"one_hot: labels must be a 1-D integer array, got {labels.dtype} of shape {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= classes):
        raise ValueError(f"one_hot: labels must lie in [0, {classes}), got values in [{labels.min()}, {labels.max()}]")
    out = np.zeros((labels.size, classes), dtype=dtype)
    out[np.arange(labels.size), labels] = 1
    return out


def softmax_cross_entropy(z: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Cross-entropy of softmax(z) against target distributions y, both (N, K): batch mean, and dL/dz."""
    z, y = _pair(z, y, "softmax_cross_entropy")
    if z.ndim != 2:
        raise ValueError(f"softmax_cross_entropy: expected logits of shape (N, K), got {z.shape}")
    row_sums = y.sum(axis=1)
    if y.min() < 0 or np.abs(row_sums - 1).max() > 1e-3:
        raise ValueError("softmax_cross_entropy: every row of y must be a probability vector (non-negative, "
                         f"summing to 1), got row sums in [{row_sums.min()}, {row_sums.max()}]")
    shifted = z - z.max(axis=1, keepdims=True)  # z - m
    e = np.exp(shifted)
    total = e.sum(axis=1, keepdims=True)  # sum_j exp(z_nj - m_n), at least 1
    log_p = shifted - np.log(total)
    n = z.dtype.type(z.shape[0])
    value = -float(np.sum(y * log_p) / n)
    grad = (e / total - y) / n  # p = e / total: the same exponentials, not a second pass
    return value, grad


LOSSES = {"mse": mse, "bce": bce}


def get(loss: str | Callable[..., tuple[float, np.ndarray]]) -> Callable[..., tuple[float, np.ndarray]]:
    """A loss by name (``"mse"``, ``"bce"``) or a callable ``(y_pred, y) -> (value, grad)``."""
    return _checks.named_or_callable(loss, LOSSES, "loss")
