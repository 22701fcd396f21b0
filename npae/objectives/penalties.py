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

``Contractive(lam)``: Rifai et al. (2011), the squared Frobenius norm of the encoder's Jacobian,
    ``P = lam * (1/N) sum_n ||J(x_n)||_F**2`` (mean over the batch of the per-sample norm), for
    a one-layer dense encoder ``h = s(a)``, ``a = x @ W + b``; see :class:`Contractive`.

``WeightDecay(lam)`` acts on parameters, not activations: ``value, grads = wd(named_params)``
    with ``P = (lam / 2) sum_{W: decay} ||W||_F**2`` over the params whose ``decay`` flag is set
    (weights, not biases) and ``dP/dW = lam * W`` -- the convention of PyTorch's
    ``weight_decay=lam``. It does not depend on the batch at all.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np

from .. import _checks
from ..registry import Registry

if TYPE_CHECKING:
    from ..core import Layer, Param

#: every penalty class, by name (what a saved model's description may name)
PENALTIES = Registry("penalty")


def _code(h, where):
    h = _checks.as_float_array(h, where, "h")
    if h.ndim < 2 or h.shape[0] == 0:
        raise ValueError(f"{where}: expected a code h of shape (N, K) or (N, ...), with N >= 1, got {h.shape}")
    _checks.check_finite(h, where, "h")
    return h


class Penalty:
    """An activity penalty on the code: ``value, dh = penalty(h)``.

    What a model asks of it (defaults for a penalty of the code alone):
    ``bind(encoder)`` a copy tied to the model's encoder, for a penalty that reads its
    weights (Contractive); ``weight_grads(h)`` the part of the gradient that goes to those
    weights directly, as ``[(Param, array)]``; ``kink_state(h)`` where its kinks lie, for
    gradient checks; ``config()`` its arguments, for saving.
    """

    def __call__(self, h: np.ndarray) -> tuple[float, np.ndarray]:
        raise NotImplementedError

    def bind(self, encoder: Layer) -> Penalty:
        return self

    def weight_grads(self, h: np.ndarray) -> list:
        return []

    def kink_state(self, h: np.ndarray) -> np.ndarray | None:
        return None

    def config(self) -> dict:
        raise NotImplementedError


@PENALTIES.register
class L1Activity(Penalty):
    """``P = lam * mean_n sum_k |h[n, k]|``; see the module docstring."""

    def __init__(self, lam: float):
        self.lam = _checks.nonneg_float(lam, "lam", "L1Activity")

    def __call__(self, h: np.ndarray) -> tuple[float, np.ndarray]:
        h = _code(h, "L1Activity")
        n = h.shape[0]
        value = self.lam * float(np.abs(h).sum()) / n
        return value, np.sign(h) * h.dtype.type(self.lam / n)

    def kink_state(self, h: np.ndarray) -> np.ndarray:
        return np.sign(h)

    def config(self) -> dict:
        return {"type": "L1Activity", "lam": self.lam}

    def __repr__(self):
        return f"L1Activity(lam={self.lam})"


@PENALTIES.register
class KLSparsity(Penalty):
    """``P = beta * sum_k KL(rho || rho_hat[k])``, ``rho_hat`` the batch-mean activation."""

    EPS = 1e-7

    def __init__(self, rho: float = 0.05, beta: float = 1.0):
        rho = _checks.nonneg_float(rho, "rho", "KLSparsity")
        if not 0 < rho < 1:
            raise ValueError(f"KLSparsity: rho must lie strictly between 0 and 1, got {rho}")
        self.rho = rho
        self.beta = _checks.nonneg_float(beta, "beta", "KLSparsity")

    def __call__(self, h: np.ndarray) -> tuple[float, np.ndarray]:
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

    def config(self) -> dict:
        return {"type": "KLSparsity", "rho": self.rho, "beta": self.beta}

    def __repr__(self):
        return f"KLSparsity(rho={self.rho}, beta={self.beta})"


@PENALTIES.register
class WeightDecay:
    """``P = (lam / 2) * sum ||W||**2`` over params with ``decay=True``; ``dP/dW = lam * W``."""

    def __init__(self, lam: float):
        self.lam = _checks.nonneg_float(lam, "lam", "WeightDecay")

    def __call__(self, named_params: Iterable[tuple[str, Param]] | dict[str, Param]) -> tuple[float, dict]:
        value, grads = 0.0, {}
        for name, p in (named_params.items() if isinstance(named_params, dict) else named_params):
            if p.decay:
                value += 0.5 * self.lam * float(np.vdot(p.value, p.value))
                grads[name] = p.value * p.dtype.type(self.lam)
        return value, grads

    def config(self) -> dict:
        return {"type": "WeightDecay", "lam": self.lam}

    def __repr__(self):
        return f"WeightDecay(lam={self.lam})"


@PENALTIES.register
class Contractive(Penalty):
    r"""The contractive penalty ``P = lam * (1/N) sum_n ||J(x_n)||_F**2`` (Rifai et al., 2011).

    For a one-layer dense encoder ``h = s(a)``, ``a = x @ W + b`` (x: (N, D), W: (D, K), h: (N, K)),
    the Jacobian of one sample is ``J[k, i] = dh[k]/dx[i] = s'(a[k]) W[i, k]``, so in closed form

        ||J(x_n)||_F**2 = sum_k s'(a[n, k])**2 * w[k],      w[k] = sum_i W[i, k]**2   (K,)

    and ``P = lam * (1/N) sum_n sum_k d[n, k]**2 w[k]`` with ``d = s'(a)`` (N, K), written through
    the code itself: sigmoid ``d = h (1 - h)``, tanh ``d = 1 - h**2``, ReLU ``d = 1[h > 0]``.

    Gradient. P depends on W twice: directly through ``w`` and through ``a`` (via ``h``):

        dP/dh[n, k]  = (lam / N) * w[k] * 2 d[n, k] d'(h[n, k])          (N, K), enters at the code
                       d'(h) = 1 - 2h (sigmoid), -2h (tanh), 0 (ReLU: d is piecewise constant)
        dP/dW[i, k] += 2 lam * W[i, k] * (1/N) sum_n d[n, k]**2          (D, K), the direct term

    The encoder's ordinary backward pass then carries ``dP/dh`` through ``s`` and the Dense layer,
    completing Rifai's formula; for the sigmoid,
    ``dP/dW[i, k] = (lam/N) sum_n [2 d**2 W[i, k] + 2 w[k] d**2 (1 - 2h[n, k]) x[n, i]]``.
    With ReLU units the penalty is a weight decay on the columns of W of the units active for
    each sample (it is discontinuous where a unit switches on; those points are the ReLU's kinks).

    An Autoencoder binds the penalty to its encoder (:meth:`bind`), which must be
    ``Sequential(Dense, Sigmoid | Tanh | ReLU)``.
    """

    KINDS = ("Sigmoid", "Tanh", "ReLU")

    def __init__(self, lam: float):
        self.lam = _checks.nonneg_float(lam, "lam", "Contractive")
        self.dense = self.kind = None

    def bind(self, encoder: Layer) -> Contractive:
        """A copy of this penalty tied to ``encoder``: Sequential(Dense, Sigmoid|Tanh|ReLU), after a
        Flatten for image inputs (a reshape: the Jacobian's entries are the same, only their order)."""
        from ..core import Sequential
        from ..nn.layers import Dense, Flatten

        layers = list(encoder) if isinstance(encoder, Sequential) else [encoder]
        if layers and isinstance(layers[0], Flatten):
            layers = layers[1:]
        kinds = [type(layer).__name__ for layer in layers]
        if len(layers) != 2 or not isinstance(layers[0], Dense) or kinds[1] not in self.KINDS:
            raise ValueError(f"Contractive: the closed form needs an encoder Sequential(Dense, one of {self.KINDS}), "
                             f"got Sequential({', '.join(kinds)})")
        bound = Contractive(self.lam)
        bound.dense, bound.kind = layers[0], kinds[1]
        return bound

    def _derivative(self, h):
        """``d = s'(a)`` and ``d'(h) = dd/dh``, both from the code h (N, K)."""
        if self.kind == "Sigmoid":
            return h * (1 - h), 1 - 2 * h
        if self.kind == "Tanh":
            return 1 - h * h, -2 * h
        return (h > 0).astype(h.dtype), np.zeros_like(h)

    def jacobian_norms(self, h: np.ndarray) -> np.ndarray:
        """``||J(x_n)||_F**2`` for each sample (N,), from the code h = encoder(x)."""
        h = self._check(h)
        d, _ = self._derivative(h)
        w = np.square(self.dense.W).sum(axis=0)
        return (d * d) @ w

    def _check(self, h):
        if self.dense is None:
            raise ValueError("Contractive: not bound to an encoder; pass it to an Autoencoder as code_penalty")
        h = _code(h, "Contractive")
        if h.shape[1:] != (self.dense.n_out,):
            raise ValueError(f"Contractive: expected a code of shape (N, {self.dense.n_out}), got {h.shape}")
        return h

    def __call__(self, h: np.ndarray) -> tuple[float, np.ndarray]:
        h = self._check(h)
        n = h.shape[0]
        d, dd = self._derivative(h)
        w = np.square(self.dense.W).sum(axis=0)
        value = self.lam * float(((d * d) @ w).sum()) / n
        dh = (2 * self.lam / n) * (d * dd) * w
        return value, dh.astype(h.dtype, copy=False)

    def weight_grads(self, h: np.ndarray) -> list:
        """The direct term ``[(W's Param, 2 lam W * mean_n d**2)]``, added to W.grad by the Autoencoder."""
        h = self._check(h)
        d, _ = self._derivative(h)
        mean_d2 = (d * d).mean(axis=0)
        return [(self.dense.params["W"], self.dense.W * (2 * self.lam * mean_d2).astype(h.dtype))]

    def config(self) -> dict:
        return {"type": "Contractive", "lam": self.lam}

    def __repr__(self):
        return f"Contractive(lam={self.lam})"
