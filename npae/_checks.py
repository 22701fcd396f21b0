"""Input validation shared by every layer, loss and penalty.

Each check raises a ``TypeError`` or ``ValueError`` whose message names the
layer, what was expected and what was received, so a user never has to read a
NumPy broadcasting traceback to learn that a shape was wrong.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence

import numpy as np

_inside = threading.local()


@contextlib.contextmanager
def inside_sequential() -> Iterator[None]:
    """Within a Sequential, layers after the first skip the finiteness scan of their input
    and dy: those arrays were made by npae layers from checked ones. A NaN that arises
    inside (an overflow) still reaches the loss, which checks its inputs, and fit, which
    checks the loss and the weights; shapes and dtypes are still checked everywhere."""
    before = getattr(_inside, "on", False)
    _inside.on = True
    try:
        yield
    finally:
        _inside.on = before


def as_float_array(x: np.ndarray | list | tuple | float | int | np.generic, where: str,
                   what: str = "input") -> np.ndarray:
    """Return ``x`` as a floating ndarray (no copy) or raise ``TypeError``.

    Integer, boolean, complex and object arrays are refused instead of being cast:
    a silently cast ``uint8`` image would train on 0..255 instead of 0..1.
    """
    if not isinstance(x, np.ndarray):
        if not isinstance(x, (list, tuple, float, int, np.generic)):
            raise TypeError(f"{where}: {what} must be a NumPy array of floats, got {type(x).__name__}")
        x = np.asarray(x)
    if x.dtype.kind != "f":
        raise TypeError(
            f"{where}: {what} must be a floating-point array (float32 or float64), got dtype {x.dtype}; "
            f"convert it first, e.g. x.astype(np.float32) / 255 for uint8 images"
        )
    return x


class NonFiniteError(ValueError):
    """An array that must be finite holds a NaN or an infinity (training diverged, or bad data)."""


def check_finite(x: np.ndarray, where: str, what: str = "input") -> None:
    """Raise ``ValueError`` if ``x`` holds a NaN or an infinity.

    A single reduction is enough in the common case: the sum of finite values is
    finite unless it overflows, and only then do we pay for the element-wise test.
    """
    if getattr(_inside, "on", False):
        return
    with np.errstate(over="ignore", invalid="ignore"):
        total = np.add.reduce(x, axis=None)
    if not np.isfinite(total) and not np.isfinite(x).all():
        bad = int(x.size - np.count_nonzero(np.isfinite(x)))
        raise NonFiniteError(f"{where}: {what} contains {bad} NaN or infinite value(s)")


def check_dtype(x: np.ndarray, dtype: np.dtype, where: str, what: str = "input") -> None:
    """Refuse a float dtype other than the layer's own (no silent up- or down-cast)."""
    if x.dtype != dtype:
        raise TypeError(
            f"{where}: {what} has dtype {x.dtype} but the layer's parameters are {np.dtype(dtype)}; "
            f"cast the input (x.astype(np.{np.dtype(dtype).name})) or the layer (layer.astype(np.{x.dtype.name}))"
        )


def fmt_shape(shape: tuple) -> str:
    """Text for a shape such as ``(None, "C", 28, 28)``: None prints as N (the free batch size)."""
    inner = ", ".join("N" if s is None else str(s) for s in shape)
    return f"({inner})" if len(shape) != 1 else f"({inner},)"


def check_shape(x: np.ndarray, expected: tuple, where: str, what: str = "input") -> None:
    """Check rank and every int axis of ``x`` against ``expected`` (None or a name = any size)."""
    if x.ndim != len(expected) or any(isinstance(e, int) and e != s for e, s in zip(expected, x.shape)):
        raise ValueError(
            f"{where}: expected {what} of shape {fmt_shape(expected)}, got {tuple(x.shape)}"
        )
    if x.shape[0] == 0:
        raise ValueError(f"{where}: {what} has an empty batch (shape {tuple(x.shape)})")


def check_input(x: np.ndarray | list | tuple | float | int | np.generic, expected: tuple, where: str,
                dtype: np.dtype | None = None, what: str = "input") -> np.ndarray:
    """All input checks a layer's ``forward`` needs, in the order a user would fix them."""
    x = as_float_array(x, where, what)
    check_shape(x, expected, where, what)
    if dtype is not None:
        check_dtype(x, dtype, where, what)
    check_finite(x, where, what)
    return x


def check_grad(dy: np.ndarray | list | tuple | float | int | np.generic, y_shape: tuple | None, y_dtype: np.dtype,
               where: str) -> np.ndarray:
    """Check an upstream gradient against the shape and dtype of the cached output."""
    if y_shape is None:
        raise ValueError(
            f"{where}: backward() called before forward(x, training=True); "
            f"nothing is cached to differentiate"
        )
    dy = as_float_array(dy, where, "dy")
    if tuple(dy.shape) != tuple(y_shape):
        raise ValueError(
            f"{where}: expected dy of shape {tuple(y_shape)} (the shape of the last output), got {tuple(dy.shape)}"
        )
    if dy.dtype != y_dtype:
        raise TypeError(f"{where}: dy has dtype {dy.dtype} but the output was {np.dtype(y_dtype)}")
    check_finite(dy, where, "dy")
    return dy


def pair(v: int | np.integer | tuple[int, int] | list[int], name: str, where: str, minimum: int = 1) -> tuple[int, int]:
    """Turn ``3`` or ``(3, 3)`` into ``(3, 3)``, checking it is a pair of ints >= minimum."""
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        v = (int(v), int(v))
    if (
        not isinstance(v, (tuple, list))
        or len(v) != 2
        or not all(isinstance(i, (int, np.integer)) and not isinstance(i, bool) for i in v)
    ):
        raise TypeError(f"{where}: {name} must be an int or a pair of ints, got {v!r}")
    v = (int(v[0]), int(v[1]))
    if min(v) < minimum:
        raise ValueError(f"{where}: {name} must be >= {minimum}, got {v}")
    return v


def positive_int(v: int | np.integer, name: str, where: str) -> int:
    if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
        raise ValueError(f"{where}: {name} must be a positive int, got {v!r}")
    return int(v)


def float_dtype(dtype: type | np.dtype | str, where: str) -> np.dtype:
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"{where}: dtype must be float32 or float64, got {dtype!r}") from exc
    if dt not in (np.float32, np.float64):
        raise TypeError(f"{where}: dtype must be float32 or float64, got {dt}")
    return dt


def nonneg_float(v: float, name: str, where: str) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{where}: {name} must be a number, got {v!r}") from exc
    if not np.isfinite(f) or f < 0:
        raise ValueError(f"{where}: {name} must be finite and >= 0, got {v!r}")
    return f


def named_or_callable(value: str | Callable[..., object], table: dict, what: str) -> Callable[..., object]:
    """``table[value]`` for a name, ``value`` itself for a callable; a clear error otherwise."""
    if callable(value):
        return value
    try:
        return table[value]
    except (KeyError, TypeError):
        raise ValueError(f"unknown {what} {value!r}; expected one of {sorted(table)} or a callable") from None


def check_rng(rng: np.random.Generator, where: str) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"{where}: rng must be a numpy.random.Generator (e.g. np.random.default_rng(0)), "
            f"got {type(rng).__name__}"
        )
    return rng


def input_shape(input_shape: Sequence[int], where: str) -> tuple:
    """``(D,)`` or ``(C, H, W)`` of positive ints, or a clear error."""
    try:
        shape = tuple(int(s) for s in input_shape)
    except (TypeError, ValueError):
        raise TypeError(f"{where}: input_shape must be a tuple of ints, (D,) or (C, H, W), "
                        f"got {input_shape!r}") from None
    if len(shape) not in (1, 3) or min(shape) < 1:
        raise ValueError(f"{where}: input_shape must be (D,) or (C, H, W) of positive ints, got {input_shape!r}")
    return shape


def renamed_keywords(**renames: str) -> Callable:
    """A decorator for a function whose keywords were renamed (``latent="code"``): the old name
    still works for one release, with a DeprecationWarning naming the new one; both at once is a
    TypeError. ``inspect.signature`` (which the command line reads) shows the new names."""

    def wrap(f: Callable) -> Callable:
        @functools.wraps(f)
        def call(*args, **kwargs):
            for old, new in renames.items():
                if old in kwargs:
                    if new in kwargs:
                        raise TypeError(f"{f.__name__}: {old}= is the old name of {new}=; give {new}= alone")
                    warnings.warn(f"{f.__name__}({old}=...) is {f.__name__}({new}=...) since npae 0.3.0; the old "
                                  "keyword goes in 0.4.0", DeprecationWarning, stacklevel=2)
                    kwargs[new] = kwargs.pop(old)
            return f(*args, **kwargs)

        return call

    return wrap
