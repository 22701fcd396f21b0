"""npae: autoencoders from scratch in NumPy, with hand-written and gradient-checked backward passes.

The package, floor by floor (a module imports only from its own folder and the floors below;
tests/test_structure.py checks it, docs/README.md gives the reading order):

- the root: ``core`` (Param, Layer, Sequential, the layer registry), ``init``, ``registry``,
  ``converters`` (what each layer becomes in PyTorch, declared beside the layer);
- ``nn``: the layers, their loop definitions (``nn.reference``) and fast kernels (``nn.kernels``);
- ``objectives``: losses, penalties, noise; ``optim``: SGD, Adam;
- ``models``: Model, Autoencoder, VAE and the families; ``checks``: the gradient checker and suite;
- ``files``: save and load, PyTorch export, safetensors; ``data``: datasets, IDX, your own images;
- ``train``: fit; ``cli``: ``python -m npae``, which nothing imports.
"""

from . import checks, core, data, files, init, models, nn, objectives, optim, train
from ._deprecated import __getattr__  # noqa: F401 (the module paths of 0.2 and the names of 0.1, for one release)
from ._version import __version__
from .checks import check_layer
from .core import Layer, Param, Sequential
from .data import DataError, Dataset, load_fashion_mnist, load_images, load_mnist
from .files import ModelFileError, from_torch_state_dict, load, save, save_safetensors, to_torch
from .init import glorot_uniform, he_normal
from .models import FAMILIES, VAE, Autoencoder, Model
from .nn import (
    ELU,
    GELU,
    AvgPool2D,
    BatchNorm1D,
    BatchNorm2D,
    Conv2D,
    ConvTranspose2D,
    Dense,
    Dropout,
    Flatten,
    Identity,
    LeakyReLU,
    MaxPool2D,
    ReLU,
    Reshape,
    Sigmoid,
    Softplus,
    Tanh,
    TiedDense,
    UpSampling2D,
)
from .objectives import bce, mse
from .optim import SGD, Adam
from .train import History, fit

__all__ = [
    "__version__", "Adam", "Autoencoder", "AvgPool2D", "BatchNorm1D", "BatchNorm2D", "bce", "check_layer", "checks",
    "Conv2D", "ConvTranspose2D", "core", "data", "DataError", "Dataset", "Dense", "Dropout", "ELU", "FAMILIES",
    "files", "fit", "Flatten", "from_torch_state_dict", "GELU", "glorot_uniform", "he_normal", "History", "Identity",
    "init", "Layer", "LeakyReLU", "load", "load_fashion_mnist", "load_images", "load_mnist", "MaxPool2D", "Model",
    "ModelFileError", "models", "mse", "nn", "objectives", "optim", "Param", "ReLU", "Reshape", "save",
    "save_safetensors", "Sequential", "SGD", "Sigmoid", "Softplus", "Tanh", "TiedDense", "to_torch", "train",
    "UpSampling2D", "VAE",
]
