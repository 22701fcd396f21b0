"""Penalties added to the reconstruction loss.

Activity penalties act on the code ``h`` of shape (N, ...): N samples, and the
"units" are all the other axes together (``K`` = h[0].size). They are called as
``value, dh = penalty(h)``; ``dh`` has h's shape and dtype and enters the backward
pass at the code.

Normalization over the batch (pinned by tests: duplicating the batch leaves every
value unchanged):

``L1Activity(lam)``: ``P = lam * (1/N) sum_n sum_k |h[n, k]|`` -- the **mean over the
    batch of the per-sample sum** over units. This is what tf.keras computes for
    ``activity_regularizer=l1(lam)`` (it divides by the batch size); older Keras summed over
    the batch instead, so a lam taken from there is N times ours. ``dP/dh = lam * sign(h) / N``,
    with ``sign(0) = 0`` (a subgradient).

``KLSparsity(rho, beta)``: Ng's CS294A sparse autoencoder. ``rho_hat[k] = (1/N) sum_n h[n, k]``
    (the batch mean activation of unit k, which needs ``h`` in [0, 1], e.g. a sigmoid code);
    ``P = beta * sum_k KL(rho || rho_hat[k])`` with
    ``KL(rho || r) = rho log(rho / r) + (1 - rho) log((1 - rho) / (1 - r))``;
    ``dP/dh[n, k] = (beta / N) * (-rho / rho_hat[k] + (1 - rho) / (1 - rho_hat[k]))``.
    ``rho_hat`` is clamped to [1e-7, 1 - 1e-7] so a dead unit gives a large finite value.

``WeightDecay(lam)`` acts on parameters, not activations: ``value, grads = wd(named_params)``
    with ``P = (lam / 2) sum_{W: decay} ||W||_F**2`` over the params whose ``decay`` flag is set
    (weights, not biases) and ``dP/dW = lam * W`` -- the convention of PyTorch's
    ``weight_decay=lam``. It does not depend on the batch at all.
"""

from __future__ import annotations

import numpy as np

from . import _checks


def _code(h, where):
    h = _checks.as_float_array(h, where, "h")
    if h.ndim < 2 or h.shape[0] == 0:
        raise ValueError(f"{where}: expected a code h of shape (N, K) or (N, ...), with N >= 1, got {h.shape}")
    _checks.check_finite(h, where, "h")
    return h


class L1Activity:
    """``P = lam * mean_n sum_k |h[n, k]|``; see the module docstring."""

    def __init__(self, lam: float):
        self.lam = _checks.nonneg_float(lam, "lam", "L1Activity")

    def __call__(self, h):
        h = _code(h, "L1Activity")
        n = h.shape[0]
        value = self.lam * float(np.abs(h).sum()) / n
        return value, np.sign(h) * h.dtype.type(self.lam / n)

    def kink_state(self, h):
        return np.sign(h)

    def config(self):
        return {"type": "L1Activity", "lam": self.lam}

    def __repr__(self):
        return f"L1Activity(lam={self.lam})"


class KLSparsity:
    """``P = beta * sum_k KL(rho || rho_hat[k])``, ``rho_hat`` the batch-mean activation."""

    EPS = 1e-7

    def __init__(self, rho: float = 0.05, beta: float = 1.0):
        rho = _checks.nonneg_float(rho, "rho", "KLSparsity")
        if not 0 < rho < 1:
            raise ValueError(f"KLSparsity: rho must lie strictly between 0 and 1, got {rho}")
        self.rho = rho
        self.beta = _checks.nonneg_float(beta, "beta", "KLSparsity")

    def __call__(self, h):
        h = _code(h, "KLSparsity")
        if h.min() < 0 or h.max() > 1:
            raise ValueError(
                f"KLSparsity: activations must lie in [0, 1] (use a sigmoid code), got values in [{h.min()}, {h.max()}]"
            )
        n = h.shape[0]
        rho = self.rho
        r = np.clip(h.mean(axis=0, dtype=np.float64), self.EPS, 1 - self.EPS)
        kl = rho * np.log(rho / r) + (1 - rho) * np.log((1 - rho) / (1 - r))
        value = self.beta * float(kl.sum())
        d = (self.beta / n) * (-rho / r + (1 - rho) / (1 - r))
        return value, np.broadcast_to(d.astype(h.dtype), h.shape).copy()

    def config(self):
        return {"type": "KLSparsity", "rho": self.rho, "beta": self.beta}

    def __repr__(self):
        return f"KLSparsity(rho={self.rho}, beta={self.beta})"


class WeightDecay:
    """``P = (lam / 2) * sum ||W||**2`` over params with ``decay=True``; ``dP/dW = lam * W``."""

    def __init__(self, lam: float):
        self.lam = _checks.nonneg_float(lam, "lam", "WeightDecay")

    def __call__(self, named_params):
        value, grads = 0.0, {}
        for name, p in (named_params.items() if isinstance(named_params, dict) else named_params):
            if p.decay:
                value += 0.5 * self.lam * float(np.vdot(p.value, p.value))
                grads[name] = p.value * p.dtype.type(self.lam)
        return value, grads

    def config(self):
        return {"type": "WeightDecay", "lam": self.lam}

    def __repr__(self):
        return f"WeightDecay(lam={self.lam})"
