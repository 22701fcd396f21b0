"""The layers: each with its forward and backward written as formulas beside the code.

Read in this order: :mod:`~npae.nn.layers` (Dense, TiedDense, Flatten, Reshape),
:mod:`~npae.nn.activations`, :mod:`~npae.nn.windows` (the padding rule and the windows that
convolution and pooling share), :mod:`~npae.nn.reference` (the loop definitions the fast code
is held to), :mod:`~npae.nn.conv` (Conv2D, ConvTranspose2D) and :mod:`~npae.nn.kernels` (the
ways of computing them), :mod:`~npae.nn.pooling`, :mod:`~npae.nn.batchnorm`,
:mod:`~npae.nn.dropout`. Every layer registers itself in ``npae.core.LAYERS`` and its PyTorch
converter in ``npae.converters.CONVERTERS``, beside its class.

This floor imports only the root (core, init, converters): never models, files, data or cli.
"""

# activations and layers first: the layers register in reading order (the activations, Dense..., then
# BatchNorm, Conv, Dropout, pooling), which is the order the gradcheck suite draws their examples in
from . import activations, kernels, layers, reference, windows
from .activations import ELU, GELU, Identity, LeakyReLU, ReLU, Sigmoid, Softplus, Tanh
from .batchnorm import BatchNorm1D, BatchNorm2D
from .conv import Conv2D, ConvTranspose2D
from .dropout import Dropout
from .layers import Dense, Flatten, Reshape, TiedDense
from .pooling import AvgPool2D, MaxPool2D, UpSampling2D

__all__ = [
    "activations", "AvgPool2D", "BatchNorm1D", "BatchNorm2D", "Conv2D", "ConvTranspose2D", "Dense", "Dropout", "ELU",
    "Flatten", "GELU", "Identity", "kernels", "layers", "LeakyReLU", "MaxPool2D", "reference", "ReLU", "Reshape",
    "Sigmoid", "Softplus", "Tanh", "TiedDense", "UpSampling2D", "windows",
]
