"""What moved in 0.3.0, kept working for one release (it goes in 0.4.0; CHANGELOG.md lists it).

0.3.0 put the flat modules into subpackages (``npae.conv`` is ``npae.nn.conv``, ``npae.io`` is
``npae.files.io``: :data:`MOVED`). The old paths still import, as aliases of the new modules
that warn once with a DeprecationWarning naming the new path: ``import npae.conv``,
``from npae.conv import Conv2D``, ``npae.conv.Conv2D``. An alias also finds the names the old
module held that now live elsewhere: 0.1's ``npae.autoencoders.ordinary`` (the families),
``npae.conv.MaxPool2D`` (pooling), the re-exports of 0.2 (``npae.export.load_safetensors``).

``Model.fit(x, ...)`` (0.1's method) is ``npae.fit(model, x, ...)``; the family keywords renamed
in 0.3 (``latent``, ``code_channels`` -> ``code``; ``activation`` -> ``code_activation``) are
handled where the families are defined (:func:`npae._checks.renamed_keywords`).

This module is the top floor beside ``npae/__init__.py``: it imports the new modules only when
an old path is used. Deleting it (and its import in ``npae/__init__.py``) removes every alias.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import os
import sys
import types
import warnings

#: old module (under npae) -> (its new module, other modules whose names it used to hold)
MOVED: dict[str, tuple[str, tuple[str, ...]]] = {
    "activations": ("nn.activations", ()),
    "batchnorm": ("nn.batchnorm", ()),
    "conv": ("nn.conv", ("nn.pooling",)),
    "conv_kernels": ("nn.kernels", ("nn.kernels.base", "nn.kernels.flat", "nn.kernels.per_sample",
                                    "nn.kernels.nhwc", "nn.windows")),
    "dropout": ("nn.dropout", ()),
    "layers": ("nn.layers", ()),
    "pooling": ("nn.pooling", ()),
    "reference": ("nn.reference", ()),
    "transpose_kernels": ("nn.kernels.transpose", ()),
    "windows": ("nn.windows", ()),
    "losses": ("objectives.losses", ()),
    "noise": ("objectives.noise", ()),
    "penalties": ("objectives.penalties", ()),
    "autoencoders": ("models.autoencoders", ("models.model", "models.vae", "models.families",
                                             "models.conv_families")),
    "conv_families": ("models.conv_families", ()),
    "families": ("models.families", ("models.conv_families",)),
    "model": ("models.model", ()),
    "vae": ("models.vae", ()),
    "gradcheck": ("checks.gradcheck", ()),
    "suite": ("checks.suite", ()),
    "export": ("files.export", ("files.state_dict", "files.safetensors", "converters")),
    "export_table": ("files.state_dict", ("converters",)),
    "io": ("files.io", ()),
    "safetensors_file": ("files.safetensors", ()),
    "_npz": ("files.npz", ()),
    "_png": ("files.png", ()),
    "datasets": ("data.datasets", ("data.idx",)),
    "download": ("data.download", ()),
    "idx": ("data.idx", ()),
    "images": ("data.images", ()),
    "cli_args": ("cli.args", ()),
}
REMOVED_IN = "0.4.0"
#: names an old module held that are gone (not moved): old module -> {name: what to use instead}
GONE = {"conv_kernels": {f"{kind}_{half}": f"npae.nn.kernels.KERNELS[{new!r}].{half}, whose signature is new "
                         "(CHANGELOG.md)" for kind, new in (("strided", "im2col"), ("flat", "flat"),
                                                           ("per_sample", "per_sample"), ("nhwc", "nhwc"))
                         for half in ("forward", "backward")}}


def _user_level() -> int:
    """The ``stacklevel`` of the first frame outside the import machinery and this module: the
    user's ``import`` line (so the warning shows there, and Python shows it by default in __main__).
    ``warnings.warn`` counts no frame of importlib's bootstrap, so neither does this; the frames of
    importlib's and pkgutil's functions (``import_module``, ``resolve_name``) count but are passed over."""
    frame, level = sys._getframe(2), 1  # the frame of _warn's caller; level 1 is _warn itself
    while frame is not None:
        name = frame.f_code.co_filename
        if not ("importlib" in name and "_bootstrap" in name):
            level += 1
            if name != __file__ and not name.endswith((f"importlib{os.sep}__init__.py", f"{os.sep}pkgutil.py")):
                return level
        frame = frame.f_back
    return level


def _warn(old: str, new: str) -> None:
    warnings.warn(f"npae.{old} moved to npae.{new} in npae 0.3.0; the old path goes in {REMOVED_IN}",
                  DeprecationWarning, stacklevel=_user_level())


class _Alias(types.ModuleType):
    """An old module path: every name is looked up in the new module, then in the others the old
    module used to hold (a function before a submodule of the same name); what is set or deleted on
    it is set or deleted where the name lives (:meth:`make`), so ``monkeypatch.setattr(npae.conv, ...)``
    and ``mock.patch("npae.losses.mse")`` reach the code that reads it."""

    def __init__(self, old: str):
        super().__init__(f"npae.{old}")
        new, others = MOVED[old]
        vars(self).update(__doc__=f"Moved to npae.{new} (this alias goes in npae {REMOVED_IN}).",
                          _npae_old=old, _npae_modules=(new,) + others, _npae_warned=False)

    def _home(self, name: str):
        """The module that holds ``name``: the first that has it as something other than a submodule,
        else the first that has it at all; None when none does."""
        holders = [m for m in (importlib.import_module(f"npae.{n}") for n in self._npae_modules) if hasattr(m, name)]
        plain = [m for m in holders if not isinstance(getattr(m, name), types.ModuleType)]
        return (plain or holders or [None])[0]

    def __getattr__(self, name: str):
        if name == "__all__":  # from npae.conv import *: the public names of every module it stands for
            return sorted({n for m in self._npae_modules for n in getattr(importlib.import_module(f"npae.{m}"),
                           "__all__", [n for n in dir(importlib.import_module(f"npae.{m}")) if not n.startswith("_")])})
        if name.startswith("__"):
            raise AttributeError(name)
        home = self._home(name)
        if home is not None:
            return getattr(home, name)
        gone = GONE.get(self._npae_old, {}).get(name)
        if gone:  # an ImportError of its own: `from npae.conv_kernels import strided_forward` says what to use
            raise ImportError(f"npae.{self._npae_old}.{name} is gone in npae 0.3.0: use {gone}")
        raise AttributeError(f"npae.{self._npae_old} (now npae.{self._npae_modules[0]}) has no name {name!r}")

    def __dir__(self):
        return sorted({n for m in self._npae_modules for n in dir(importlib.import_module(f"npae.{m}"))})

    @staticmethod
    def make(old: str) -> _Alias:
        """The alias of ``old``, of a class of its own whose every public name is a property reading and
        writing that name where it lives: setattr, delattr, pytest's monkeypatch and mock.patch (which
        look for data descriptors before they save and restore a value) all reach the real module."""
        names = {n for m in MOVED[old][:1] + MOVED[old][1] for n in dir(importlib.import_module(f"npae.{m}"))
                 if not n.startswith("_")}
        cls = type(f"_Alias_{old}", (_Alias,), {n: _forwarding(n) for n in sorted(names)})
        return cls(old)


def _forwarding(name: str) -> property:
    def get(self):
        home = self._home(name)
        if home is None:
            raise AttributeError(f"npae.{self._npae_old} (now npae.{self._npae_modules[0]}) has no name {name!r}")
        return getattr(home, name)

    def put(self, value):
        setattr(self._home(name) or importlib.import_module(f"npae.{self._npae_modules[0]}"), name, value)

    def remove(self):
        home = self._home(name)
        if home is None:
            raise AttributeError(name)
        delattr(home, name)

    return property(get, put, remove, f"npae.{name}, wherever it lives now")




class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports ``npae.<old>`` as an :class:`_Alias`, warning once (a reload does not warn again)."""

    def find_spec(self, fullname, path=None, target=None):
        prefix, _, old = fullname.partition(".")
        if prefix == "npae" and old in MOVED:
            return importlib.machinery.ModuleSpec(fullname, self)
        return None

    def create_module(self, spec):
        return _Alias.make(spec.name.partition(".")[2])

    def exec_module(self, module):
        if not vars(module).get("_npae_warned"):
            vars(module)["_npae_warned"] = True
            old = module.__name__.partition(".")[2]
            _warn(old, MOVED[old][0])


_FINDER = _Finder()

if not any(isinstance(f, _Finder) for f in sys.meta_path):
    sys.meta_path.append(_FINDER)


def __getattr__(name: str):
    """``npae.<old>`` as an attribute (``import npae; npae.losses.mse``): the alias, warning once."""
    if name not in MOVED:
        raise AttributeError(f"module 'npae' has no attribute {name!r}")
    module = sys.modules.get(f"npae.{name}")
    if module is None:
        _warn(name, MOVED[name][0])
        module = _Alias.make(name)
        vars(module).update(__spec__=importlib.machinery.ModuleSpec(module.__name__, _FINDER), __loader__=_FINDER,
                            _npae_warned=True)
        sys.modules[module.__name__] = module
    return module


def _fit(self, x, **kwargs):
    """0.1's ``model.fit(x, ...)``: ``npae.fit(model, x, ...)``, with a DeprecationWarning."""
    warnings.warn(f"Model.fit(x, ...) is npae.fit(model, x, ...) since npae 0.2.0; the method goes in {REMOVED_IN}",
                  DeprecationWarning, stacklevel=2)
    from .train import fit

    return fit(self, x, **kwargs)


def _install_fit() -> None:
    from .models.model import Model

    if not hasattr(Model, "fit"):
        Model.fit = _fit


_install_fit()
