"""npae: autoencoders from scratch in NumPy, with hand-written and gradient-checked backward passes.

The reading order of the package: core (Param, Layer, Sequential) -> layers, activations ->
windows, conv, pooling (and reference, the loop definitions) -> losses, penalties, noise ->
optim, init -> gradcheck -> autoencoders, vae -> families -> train, io -> datasets.
"""

from . import (
               activations,
               autoencoders,
               conv,
               core,
               datasets,
               download,
               families,
               gradcheck,
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
from .activations import LeakyReLU, ReLU, Sigmoid, Softplus, Tanh
from .autoencoders import Autoencoder, Model
from .conv import Conv2D
from .core import Layer, Param, Sequential
from .datasets import DataError, load_fashion_mnist, load_mnist
from .families import FAMILIES
from .init import glorot_uniform, he_normal
from .io import ModelFileError, load, save
from .layers import Dense, Flatten, Reshape, TiedDense
from .losses import bce, mse
from .optim import SGD, Adam
from .pooling import MaxPool2D, UpSampling2D
from .train import History, fit
from .vae import VAE

__all__ = [
    "FAMILIES", "SGD", "VAE", "Adam", "Autoencoder", "Conv2D", "DataError", "Dense", "Flatten", "History", "Layer",
    "LeakyReLU", "MaxPool2D", "Model", "ModelFileError", "Param", "ReLU", "Reshape", "Sequential", "Sigmoid", "Softplus", "Tanh",
    "TiedDense", "UpSampling2D", "__version__", "activations", "autoencoders", "bce", "conv", "core", "datasets",
    "download", "families", "fit", "glorot_uniform", "gradcheck", "he_normal", "init", "io", "layers", "load",
    "load_fashion_mnist", "load_mnist", "losses", "mse", "noise", "optim", "penalties", "pooling", "reference",
    "save", "train", "vae", "windows",
]
