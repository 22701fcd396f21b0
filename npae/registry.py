"""Registries: the one table per kind (layers, penalties, noises, optimizers, models,
families) that loading, the command line, the gradient-check suite and the tests read.

A class (or a function) joins its registry where it is defined, with a decorator::

    @LAYERS.register
    class Dense(Layer): ...

so a new layer is one class in one file. Loading a file builds only what a registry
holds, by name: a file can never name a class of its own choosing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class Registry(dict):
    """``name -> class or function``; ``what`` names the kind in error messages."""

    def __init__(self, what: str):
        super().__init__()
        self.what = what

    def register(self, obj: T = None, *, name: str | None = None) -> T | Callable[[T], T]:
        """Add ``obj`` under ``name`` (default ``obj.__name__``); usable as a decorator, with or without arguments."""

        def add(obj: T) -> T:
            key = name or obj.__name__
            if key in self and self[key] is not obj:
                raise ValueError(f"{self.what} registry: {key!r} is already registered ({self[key]!r})")
            self[key] = obj
            return obj

        return add if obj is None else add(obj)

    def lookup(self, name: str) -> object:
        """``self[name]``, or a ``KeyError`` that lists what is known."""
        try:
            return self[name]
        except (KeyError, TypeError):
            raise KeyError(f"unknown {self.what} {name!r}; known: {', '.join(sorted(self))}") from None

    def __repr__(self) -> str:
        return f"Registry({self.what}: {', '.join(self)})"
