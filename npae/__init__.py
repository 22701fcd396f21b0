"""npae: autoencoders from scratch in NumPy, with hand-written and gradient-checked backward passes.

The reading order of the package: core (Param, Layer, Sequential) -> layers, activations ->
windows, conv, pooling (and reference, the loop definitions) -> losses, penalties, noise ->
optim, init -> gradcheck -> autoencoders, vae -> families -> train, io -> datasets.
"""

from . import (
    activations,
    autoencoders,
    batchnorm,
    conv,
    core,
    datasets,
    download,
    dropout,
    export,
    families,
    gradcheck,
    images,
    init,
    io,
    layers,
    losses,
    noise,
    optim,
    penalties,
    pooling,
    reference,
    train,
    vae,
    windows,
)
from ._version import __version__
from .activations import ELU, GELU, Identity, LeakyReLU, ReLU, Sigmoid, Softplus, Tanh
from .autoencoders import Autoencoder, Model
from .batchnorm import BatchNorm1D, BatchNorm2D
from .conv import Conv2D, ConvTranspose2D
from .core import Layer, Param, Sequential
from .datasets import DataError, Dataset, load_fashion_mnist, load_mnist
from .dropout import Dropout
from .families import FAMILIES
from .images import load_images
from .init import glorot_uniform, he_normal
from .io import ModelFileError, load, save
from .layers import Dense, Flatten, Reshape, TiedDense
from .losses import bce, mse
from .optim import SGD, Adam
from .pooling import AvgPool2D, MaxPool2D, UpSampling2D
from .train import History, fit
from .vae import VAE

__all__ = [
    "__version__", "activations", "Adam", "Autoencoder", "autoencoders", "AvgPool2D", "batchnorm", "BatchNorm1D",
    "BatchNorm2D", "bce", "conv", "Conv2D", "ConvTranspose2D", "core", "DataError", "Dataset", "datasets", "Dense",
    "download", "Dropout", "dropout", "ELU", "export", "FAMILIES", "families", "fit", "Flatten", "GELU",
    "glorot_uniform", "gradcheck", "he_normal", "History", "Identity", "images", "init", "io", "Layer", "layers",
    "LeakyReLU", "load", "load_fashion_mnist", "load_images", "load_mnist", "losses", "MaxPool2D", "Model",
    "ModelFileError", "mse", "noise", "optim", "Param", "penalties", "pooling", "reference", "ReLU", "Reshape", "save",
    "Sequential", "SGD", "Sigmoid", "Softplus", "Tanh", "TiedDense", "train", "UpSampling2D", "VAE", "vae", "windows",
]
