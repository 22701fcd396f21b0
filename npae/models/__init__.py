"""The models and the families that build them.

:mod:`~npae.models.model` (the Model base: encode, decode, the objective's protocol),
:mod:`~npae.models.autoencoders` (Autoencoder: the objective term by term),
:mod:`~npae.models.vae` (VAE), :mod:`~npae.models.families` (the dense families and the
``FAMILIES`` registry), :mod:`~npae.models.conv_families` (the convolutional ones).

A family is a function registered with ``@FAMILIES.register``. Every module in this folder is
imported below, so a new family is one new file here (and its test): the command line, the
generic demo (``demos/family.py``) and the tests find it in ``FAMILIES``.
"""

import importlib as _importlib
import pkgutil as _pkgutil

from . import conv_families  # noqa: F401 (registers its families; named, so no search is needed for them)
from .autoencoders import Autoencoder
from .families import FAMILIES
from .model import MODELS, Model
from .vae import VAE

# any further module of this folder (a new family): found by name, so it needs no line here. The
# order of FAMILIES is the order of registration: the dense families (conv_families imports
# families first), the convolutional ones, then these, by file name.
for _module in _pkgutil.iter_modules(__path__):
    _importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["Autoencoder", "FAMILIES", "Model", "MODELS", "VAE"]
