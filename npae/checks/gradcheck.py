"""Gradient checking: is a hand-written backward pass the derivative of its forward pass?

The check compares the analytic gradient with central differences in float64::

    df/dx[i] ~= (f(x + h e_i) - f(x - h e_i)) / (2 h)        (error O(h**2) + O(eps / h))

For a layer ``y = F(x; p)`` we check a vector-Jacobian product: draw a random upstream
gradient ``dy`` and take the scalar ``f = <F(x; p), dy>``, whose gradient with respect to
``x`` is exactly what ``backward(dy)`` returns and with respect to each ``p`` what it adds
into ``p.grad``. Every coordinate of the input and of every parameter is perturbed
(or a random sample of ``samples`` of them, for big arrays).

``rel_error(a, b) = max|a - b| / max(1e-8, max|a| + max|b|)``: the largest deviation relative
to the scale of the gradient. (The element-wise ratio ``|a_i - b_i| / (|a_i| + |b_i|)`` would
flag entries that are zero up to rounding, where both sides are pure noise.)

Thresholds: 1e-7 for smooth functions, 1e-5 for piecewise-smooth ones (ReLU, max, |h|).
When the perturbation of a coordinate moves the function across a kink (a ReLU input
changes sign, a max-pool window's argmax changes between ``x + h`` and ``x - h``), the finite
difference there is not a derivative at all: the report counts such coordinates and
warns, so a failure caused by a kink is not mistaken for a wrong backward.

The checker refuses float32: its rounding error (~1e-7 relative) divided by ``h`` swamps
the quantity being measured.

What is differentiated is the training-mode function (``forward(x, training=True)``,
``model.objective``): for a layer whose training behaviour differs (batch statistics, a
dropout mask) that is the function ``backward`` is the derivative of. Every evaluation
replays the same random draws (the states of ``layer.generators()`` are restored before
each one), and the layer's buffers (running statistics, which training-mode evaluations
update) are restored afterwards, as are its parameters and their gradients.

The suite that ``python -m npae gradcheck`` runs is :mod:`npae.checks.suite`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .. import _checks
from ..core import Layer, away_from_zero, distinct_values

if TYPE_CHECKING:
    from ..models.autoencoders import Autoencoder
    from ..models.vae import VAE

__all__ = ["KINKED", "SMOOTH", "Entry", "GradcheckReport", "away_from_zero", "check_function", "check_layer",
           "check_model", "distinct_values", "numerical_gradient", "rel_error"]

SMOOTH = 1e-7
KINKED = 1e-5


def rel_error(a: np.ndarray | list[float], b: np.ndarray | list[float]) -> float:
    """``max|a - b| / max(1e-8, max|a| + max|b|)``; 0 for identical arrays."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"rel_error: shapes differ, {a.shape} vs {b.shape}")
    if a.size == 0:
        return 0.0
    scale = max(1e-8, float(np.abs(a).max() + np.abs(b).max()))
    return float(np.abs(a - b).max()) / scale


def _refuse_float32(x, what):
    if np.asarray(x).dtype != np.float64:
        raise TypeError(
            f"gradcheck needs float64, but {what} is {np.asarray(x).dtype}: rounding in float32 swamps the "
            f"finite differences; convert with .astype(np.float64) (layers: layer.astype(np.float64))"
        )


def _coords(x: np.ndarray, samples, rng) -> np.ndarray:
    if samples is None or samples >= x.size:
        return np.arange(x.size)
    return np.sort(rng.choice(x.size, size=int(samples), replace=False))


def _numeric(f, x, h, coords, kink=None):
    """Central differences of the scalar ``f()`` at the flat ``coords`` of ``x`` (perturbed in place).

    Returns ``(grad, crossed)``: the numerical gradient at ``coords`` (0 elsewhere) and a
    boolean mask of the coordinates whose perturbation changed ``kink()``.
    """
    flat = x.reshape(-1)  # a view: x must be contiguous
    if not np.shares_memory(flat, x):
        raise ValueError("gradcheck: the array to perturb must be contiguous")
    grad = np.zeros(x.size)
    crossed = np.zeros(x.size, dtype=bool)
    for i in coords:
        old = flat[i]
        flat[i] = old + h
        fp, kp = f(), (kink() if kink else None)
        flat[i] = old - h
        fm, km = f(), (kink() if kink else None)
        flat[i] = old
        grad[i] = (fp - fm) / (2 * h)
        if kink is not None and not np.array_equal(kp, km):
            crossed[i] = True
    return grad.reshape(x.shape), crossed.reshape(x.shape)


def numerical_gradient(f: Callable[[np.ndarray], float], x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """Numerical gradient of the scalar ``f(x)`` by central differences (float64 only).

    ``x`` is perturbed one coordinate at a time and restored; ``f`` is called 2 * x.size times.
    """
    _refuse_float32(x, "x")
    work = np.array(x, dtype=np.float64, copy=True)
    grad, _ = _numeric(lambda: float(f(work)), work, h, np.arange(work.size))
    return grad


@dataclass
class Entry:
    """One row of a report: the gradient with respect to ``name``."""

    name: str
    rel_error: float
    threshold: float
    checked: int
    kinks: int = 0

    @property
    def passed(self) -> bool:
        return bool(self.rel_error <= self.threshold)


@dataclass
class GradcheckReport:
    """Per parameter (and the input) the relative error, pass/fail, and kink warnings."""

    title: str
    entries: list[Entry] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(e.passed for e in self.entries)

    @property
    def worst(self) -> float:
        return max((e.rel_error for e in self.entries), default=0.0)

    def __getitem__(self, name: str) -> Entry:
        for e in self.entries:
            if e.name == name:
                return e
        raise KeyError(name)

    def __str__(self) -> str:
        lines = [f"{self.title}: {'PASS' if self.passed else 'FAIL'} (worst rel. error {self.worst:.2e})"]
        for e in self.entries:
            status = "ok  " if e.passed else "FAIL"
            line = (f"  {status} {e.name:<16} rel. error {e.rel_error:.2e}  "
                    f"(threshold {e.threshold:.0e}, {e.checked} coords)")
            if e.kinks:
                line += f"  WARNING: {e.kinks} perturbation(s) crossed a kink; move the input away from it"
            lines.append(line)
        return "\n".join(lines)


def check_layer(layer: Layer, x: np.ndarray, *, rng: np.random.Generator | None = None, h: float = 1e-6,
                threshold: float | None = None,
                samples: int | None = None, title: str | None = None) -> GradcheckReport:
    """Check ``layer.backward`` against central differences, for the input and every parameter.

    ``layer`` must be float64 (``layer.astype(np.float64)``). The layer's parameter values
    are restored exactly and its ``grad`` arrays are left as they were.
    """
    if not isinstance(layer, Layer):
        raise TypeError(f"check_layer: expected an npae Layer, got {type(layer).__name__}")
    rng = np.random.default_rng(0) if rng is None else _checks.check_rng(rng, "check_layer")
    _refuse_float32(x, "x")
    for name, p in layer.named_params():
        _refuse_float32(p.value, f"parameter {name}")
    threshold = (KINKED if layer.has_kinks else SMOOTH) if threshold is None else threshold
    x = np.array(x, dtype=np.float64, copy=True)
    saved = {n: p.grad.copy() for n, p in layer.named_params()}
    buffers = {n: b.copy() for n, b in layer.named_buffers()}
    replay = _Replay(layer.generators())

    y = layer.forward(x, training=True)
    dy = rng.standard_normal(y.shape)
    layer.zero_grad()
    analytic = {"x": layer.backward(dy)}
    analytic.update({n: p.grad.copy() for n, p in layer.named_params()})

    def f():
        replay()
        return float(np.vdot(layer.forward(x, training=True), dy))

    def kink_state():
        replay()
        return layer.kink_state(x)

    kink = kink_state if layer.has_kinks else None
    report = GradcheckReport(title or repr(layer).split("\n")[0])
    targets = [("x", x)] + [(n, p.value) for n, p in layer.named_params()]
    try:
        for name, arr in targets:
            coords = _coords(arr, samples, rng)
            num, crossed = _numeric(f, arr, h, coords, kink)
            ana = analytic[name].reshape(-1)[coords]
            report.entries.append(Entry(name, rel_error(ana, num.reshape(-1)[coords]), threshold, len(coords),
                                        int(crossed.sum())))
    finally:
        for n, p in layer.named_params():
            p.grad[...] = saved[n]
        for n, b in layer.named_buffers():
            b[...] = buffers[n]
        replay()
    return report


class _Replay:
    """Calling it puts each generator back in the state it had when this was made."""

    def __init__(self, generators):
        self.states = [(g, g.bit_generator.state) for g in generators]

    def __call__(self):
        for g, state in self.states:
            g.bit_generator.state = state


def check_function(f: Callable[[np.ndarray], tuple[float, np.ndarray]], x: np.ndarray, *, h: float = 1e-6,
                   threshold: float = SMOOTH, kink: Callable[[np.ndarray], np.ndarray] | None = None,
                   name: str = "x", title: str = "function") -> GradcheckReport:
    """Check a ``(value, grad) = f(x)`` pair (a loss or a penalty) against central differences.

    ``kink``, if given, is a function of x whose value changes where f has a kink.
    """
    _refuse_float32(x, name)
    x = np.array(x, dtype=np.float64, copy=True)
    value, ana = f(x)
    if np.shape(ana) != x.shape:
        raise ValueError(f"check_function: the gradient has shape {np.shape(ana)}, x has {x.shape}")
    num, crossed = _numeric(lambda: float(f(x)[0]), x, h, np.arange(x.size), (lambda: kink(x)) if kink else None)
    return GradcheckReport(title, [Entry(name, rel_error(ana, num), threshold, x.size, int(crossed.sum()))])


def check_model(model: Autoencoder | VAE, x: np.ndarray, *, seed: int = 0, h: float = 1e-6, samples: int | None = 20,
                threshold: float = KINKED, title: str | None = None) -> GradcheckReport:
    """Check an Autoencoder's whole objective (reconstruction + code penalty + weight decay).

    The analytic gradients come from ``model.loss_and_grads``; the numerical ones from
    ``model.objective`` (training-mode forward passes only). Both draw the noise of a denoising model from
    ``np.random.default_rng(seed)``, so the noise is the same fixed draw in every evaluation.
    ``samples`` coordinates of each parameter are checked (all of them with None).
    """
    x = np.array(x, dtype=np.float64, copy=True)
    for name, p in model.named_params():
        _refuse_float32(p.value, f"parameter {name}")
    rng = np.random.default_rng(seed + 1)
    buffers = {n: b.copy() for n, b in model.named_buffers()}
    replay = _Replay(model.generators())
    model.loss_and_grads(x, np.random.default_rng(seed))
    analytic = {n: p.grad.copy() for n, p in model.named_params()}
    report = GradcheckReport(title or f"{getattr(model, 'name', 'model')} objective")

    def f():
        replay()
        return float(model.objective(x, np.random.default_rng(seed)))

    def kink():
        replay()
        return model.kink_state(x, np.random.default_rng(seed))

    try:
        for name, p in model.named_params():
            coords = _coords(p.value, samples, rng)
            num, crossed = _numeric(f, p.value, h, coords, kink)
            ana = analytic[name].reshape(-1)[coords]
            report.entries.append(Entry(name, rel_error(ana, num.reshape(-1)[coords]), threshold, len(coords),
                                        int(crossed.sum())))
    finally:
        for n, b in model.named_buffers():
            b[...] = buffers[n]
        replay()
    return report
