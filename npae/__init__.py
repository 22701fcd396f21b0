"""npae: autoencoders from scratch in NumPy, with hand-written and gradient-checked backward passes."""

from . import autoencoders, datasets, gradcheck, init, losses, noise, optim, penalties
from .activations import LeakyReLU, ReLU, Sigmoid, Tanh
from .autoencoders import VAE, Autoencoder
from .conv import Conv2D, MaxPool2D, UpSampling2D
from .core import Layer, Param, Sequential
from .datasets import DataError, load_fashion_mnist, load_mnist
from .init import glorot_uniform, he_normal
from .io import ModelFileError, load, save
from .layers import Dense, Flatten, Reshape, TiedDense
from .train import History, fit

__version__ = "0.1.0"

__all__ = [
    "Autoencoder", "History", "ModelFileError", "autoencoders", "fit", "load", "save",
    "Conv2D", "DataError", "Dense", "Flatten", "Layer", "LeakyReLU", "MaxPool2D", "Param", "ReLU", "Reshape",
    "Sequential", "Sigmoid", "Tanh", "TiedDense", "UpSampling2D", "VAE", "glorot_uniform", "gradcheck", "he_normal",
    "datasets", "init", "load_fashion_mnist", "load_mnist", "losses", "noise", "optim", "penalties",
]
