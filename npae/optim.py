"""Optimizers. The update rules are pure functions (arrays in, new arrays out), tested on
values computed by hand; the classes bind them to a model's parameters, keep the state,
and write the results back into the existing arrays (so layers keep their references).

An optimizer binds once to ``model.named_params()``; each ``step()`` advances the step
counter ``t`` by one and updates every parameter from its ``grad``. ``state_dict()``
returns plain arrays (no pickle needed) and ``load_state_dict`` restores them exactly,
so a run resumed from a checkpoint continues bit for bit.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from . import _checks
from .core import Param
from .registry import Registry

#: every optimizer class, by name (what a checkpoint may name)
OPTIMIZERS = Registry("optimizer")


def sgd_update(w: np.ndarray, g: np.ndarray, v: np.ndarray, lr: float,
               momentum: float) -> tuple[np.ndarray, np.ndarray]:
    """One SGD step with (heavy-ball) momentum, as PyTorch: ``v' = momentum * v + g``;
    ``w' = w - lr * v'``. With momentum 0 this is plain ``w - lr * g``. Returns ``(w', v')``."""
    v = momentum * v + g
    return w - lr * v, v


def adam_update(w: np.ndarray, g: np.ndarray, m: np.ndarray, v: np.ndarray, t: int, lr: float, beta1: float,
                beta2: float, eps: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One Adam step, Algorithm 1 of Kingma & Ba (2015), as PyTorch implements it.

    ``t`` is the 1-based number of this step::

        m' = beta1 * m + (1 - beta1) * g
        v' = beta2 * v + (1 - beta2) * g**2
        m_hat = m' / (1 - beta1**t)
        v_hat = v' / (1 - beta2**t)
        w' = w - lr * m_hat / (sqrt(v_hat) + eps)

    Returns ``(w', m', v')``. Keras adds eps to the uncorrected ``sqrt(v')`` instead
    (``w' = w - lr_t * m' / (sqrt(v') + eps)``, ``lr_t = lr * sqrt(1 - beta2**t) / (1 - beta1**t)``),
    which is a different algorithm at the same eps; they agree when eps is negligible.
    """
    if t < 1:
        raise ValueError(f"adam_update: the step t counts from 1, got {t}")
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * (g * g)
    m_hat = m / (1 - beta1**t)
    v_hat = v / (1 - beta2**t)
    return w - lr * m_hat / (np.sqrt(v_hat) + eps), m, v


class Optimizer:
    """Binds to ``named_params`` (an iterable of ``(name, Param)`` or a dict) and keeps state."""

    _hyper: tuple[str, ...] = ()
    _slots: tuple[str, ...] = ()

    def __init__(self, named_params: Iterable[tuple[str, Param]] | dict[str, Param]):
        where = type(self).__name__
        items = list(named_params.items() if isinstance(named_params, dict) else named_params)
        if not items:
            raise ValueError(f"{where}: no parameters to optimize")
        self.params: dict[str, Param] = {}
        for item in items:
            if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], Param)):
                raise TypeError(f"{where}: expected (name, Param) pairs, e.g. model.named_params(); got {item!r}")
            if item[0] in self.params:
                raise ValueError(f"{where}: parameter name {item[0]!r} appears twice")
            self.params[item[0]] = item[1]
        self.t = 0
        self.state = {s: {n: np.zeros_like(p.value) for n, p in self.params.items()} for s in self._slots}

    def zero_grad(self) -> None:
        for p in self.params.values():
            p.grad[...] = 0

    def step(self) -> None:
        self.t += 1
        for name, p in self.params.items():
            self._update(name, p)

    def _update(self, name: str, p: Param) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict[str, np.ndarray]:
        """Everything needed to continue exactly: step count, hyperparameters and slots."""
        out = {"step": np.array(self.t, dtype=np.int64)}
        out.update({h: np.array(getattr(self, h), dtype=np.float64) for h in self._hyper})
        for s, arrays in self.state.items():
            out.update({f"{s}/{n}": a.copy() for n, a in arrays.items()})
        return out

    def load_state_dict(self, state: dict) -> None:
        where = f"{type(self).__name__}.load_state_dict"
        expected = {"step", *self._hyper} | {f"{s}/{n}" for s in self._slots for n in self.params}
        if set(state) != expected:
            missing, extra = sorted(expected - set(state)), sorted(set(state) - expected)
            raise ValueError(f"{where}: state does not match this optimizer (missing {missing}, unexpected {extra})")
        for s in self._slots:
            for n, a in self.state[s].items():
                new = np.asarray(state[f"{s}/{n}"])
                if new.shape != a.shape or new.dtype != a.dtype:
                    raise ValueError(f"{where}: {s}/{n} has shape {new.shape} dtype {new.dtype}, "
                                     f"expected {a.shape} {a.dtype}")
        t = int(state["step"])
        if t < 0:
            raise ValueError(f"{where}: step must be >= 0, got {t}")
        self.t = t
        for h in self._hyper:
            setattr(self, h, float(state[h]))
        for s in self._slots:
            for n, a in self.state[s].items():
                a[...] = state[f"{s}/{n}"]

    def __repr__(self):
        hyper = ", ".join(f"{h}={getattr(self, h)}" for h in self._hyper)
        return f"{type(self).__name__}({len(self.params)} params, {hyper}, step={self.t})"


@OPTIMIZERS.register
class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum; see :func:`sgd_update`."""

    _hyper = ("lr", "momentum")
    _slots = ("velocity",)

    def __init__(self, named_params: Iterable[tuple[str, Param]] | dict[str, Param], lr: float, momentum: float = 0.0):
        self.lr = _checks.nonneg_float(lr, "lr", "SGD")
        self.momentum = _checks.nonneg_float(momentum, "momentum", "SGD")
        if self.momentum >= 1:
            raise ValueError(f"SGD: momentum must lie in [0, 1), got {momentum}")
        super().__init__(named_params)

    def _update(self, name, p):
        v = self.state["velocity"][name]
        w_new, v_new = sgd_update(p.value, p.grad, v, self.lr, self.momentum)
        p.value[...] = w_new
        v[...] = v_new


@OPTIMIZERS.register
class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015) with bias correction; see :func:`adam_update`."""

    _hyper = ("lr", "beta1", "beta2", "eps")
    _slots = ("m", "v")

    def __init__(self, named_params: Iterable[tuple[str, Param]] | dict[str, Param], lr: float = 1e-3,
                 beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8):
        self.lr = _checks.nonneg_float(lr, "lr", "Adam")
        for name, b in (("beta1", beta1), ("beta2", beta2)):
            if not 0 <= _checks.nonneg_float(b, name, "Adam") < 1:
                raise ValueError(f"Adam: {name} must lie in [0, 1), got {b}")
        self.beta1, self.beta2 = float(beta1), float(beta2)
        self.eps = _checks.nonneg_float(eps, "eps", "Adam")
        super().__init__(named_params)

    def _update(self, name, p):
        """:func:`adam_update` computed in place: the same operations in the same order (so the
        results are bit for bit those of the pure function; a test holds them to it), updating
        m, v and w where they are instead of building new arrays for them."""
        m, v, g, w = self.state["m"][name], self.state["v"][name], p.grad, p.value
        b1, b2 = self.beta1, self.beta2
        m *= b1
        m += (1 - b1) * g
        v *= b2
        v += (1 - b2) * (g * g)
        denom = v / (1 - b2**self.t)
        np.sqrt(denom, out=denom)
        denom += self.eps
        step = m / (1 - b1**self.t)
        step *= self.lr
        step /= denom
        w -= step
