"""Weight initializers. Each draws from an explicit ``np.random.Generator``.

``fan_in`` and ``fan_out`` follow Keras and PyTorch: for a Dense ``W`` of shape
(n_in, n_out) they are n_in and n_out; for a Conv2D ``W`` of shape
(c_out, c_in, kh, kw) they are c_in*kh*kw and c_out*kh*kw.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Callable, Iterator, Sequence

import numpy as np

from . import _checks


def fans(shape: tuple, layout: str) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight of ``shape``; ``layout`` is ``"dense"`` or ``"conv"``."""
    if layout == "dense":
        n_in, n_out = shape
        return n_in, n_out
    if layout == "conv":
        c_out, c_in, kh, kw = shape
        return c_in * kh * kw, c_out * kh * kw
    raise ValueError(f"fans: layout must be 'dense' or 'conv', got {layout!r}")


def glorot_uniform(shape: tuple, rng: np.random.Generator, dtype: type | np.dtype | str = np.float32,
                   layout: str = "dense") -> np.ndarray:
    """Glorot & Bengio (2010): ``W ~ U(-a, a)``, ``a = sqrt(6 / (fan_in + fan_out))`` (the Keras default)."""
    _checks.check_rng(rng, "glorot_uniform")
    fan_in, fan_out = fans(shape, layout)
    a = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-a, a, size=shape).astype(dtype)


def he_normal(shape: tuple, rng: np.random.Generator, dtype: type | np.dtype | str = np.float32,
              layout: str = "dense") -> np.ndarray:
    """He et al. (2015): ``W ~ N(0, 2 / fan_in)``, for ReLU layers."""
    _checks.check_rng(rng, "he_normal")
    fan_in, _ = fans(shape, layout)
    return (rng.standard_normal(size=shape) * np.sqrt(2.0 / fan_in)).astype(dtype)


INITIALIZERS = {"glorot_uniform": glorot_uniform, "he_normal": he_normal}


def get(init: str | Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
    """Look an initializer up by name, or pass a callable ``(shape, rng, dtype, layout)`` through.
    What it returns draws only within the current :func:`allocation_budget`."""
    draw = _checks.named_or_callable(init, INITIALIZERS, "initializer")

    def budgeted(shape: tuple, rng: np.random.Generator, dtype=np.float32, layout: str = "dense") -> np.ndarray:
        _spend(shape)
        return draw(shape, rng, dtype, layout)

    return budgeted


def full(shape: int | Sequence[int], value: float, dtype: type | np.dtype | str = np.float32) -> np.ndarray:
    """An array of ``value`` (a bias at 0, a scale at 1, a running variance), within the current budget."""
    _spend(shape)
    return np.full(shape, value, dtype)


# -- a bound on what building a model may allocate ---------------------------------------------
# Loading a file builds the model it describes. The file's own arrays say how many numbers
# the model holds; building it may allocate no more (``npae.files.io`` sets the budget), so a
# description that names a layer of 10**9 units is refused before anything that size exists.
_budget = threading.local()


class BudgetExceeded(Exception):
    """Building would allocate more parameter values than the current budget allows."""


@contextlib.contextmanager
def allocation_budget(values: int) -> Iterator[None]:
    """Within this block, parameters and buffers made by :func:`get` and :func:`full` may hold
    at most ``values`` numbers in all; one more raises :class:`BudgetExceeded` before it is made."""
    before = getattr(_budget, "left", None)
    _budget.left = int(values)
    try:
        yield
    finally:
        _budget.left = before


def _spend(shape: int | Sequence[int]) -> None:
    left = getattr(_budget, "left", None)
    if left is None:
        return
    try:
        n = math.prod(int(s) for s in np.atleast_1d(shape))
    except (TypeError, ValueError, OverflowError):
        return  # the constructor's own checks report a bad shape
    if n > left:
        raise BudgetExceeded(f"an array of shape {tuple(int(s) for s in np.atleast_1d(shape))} ({n:,} numbers), "
                             f"with {left:,} left to allocate")
    _budget.left = left - n


def default_rng(rng: np.random.Generator | None, where: str) -> np.random.Generator:
    """``rng`` itself, or a fresh unseeded Generator when ``rng`` is None (never the global state)."""
    return np.random.default_rng() if rng is None else _checks.check_rng(rng, where)
