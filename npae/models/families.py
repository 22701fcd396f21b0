"""The families: the autoencoders of "Deep inside: Autoencoders" and those beyond it.

The article's: :func:`ordinary` (784-64-784), :func:`multilayer` (784-128-64-128-784),
:func:`~npae.models.conv_families.convolutional` (code 8x4x4), :func:`sparse` (an L1 activity
penalty on the code) and :func:`~npae.models.conv_families.denoising` (noisy in, clean target).
Beyond it: :func:`sparse_kl`, :func:`dense_denoising`, :func:`contractive`, :func:`tied` and
:func:`vae`. Each is a constructor registered in ``FAMILIES``, which the command line
(``python -m npae train FAMILY``), the demos and the tests read.

Every family names its options alike: ``code`` (the code's size; a convolutional family's
channels, the VAE's latent dimension), ``code_activation`` where the code has one (one of
``CODE_ACTIVATIONS``), ``input_shape`` (the per-sample shape of its data, flat ``(D,)`` or an
image ``(C, H, W)`` with any number of channels), ``rng``, ``dtype``, ``loss``; the
autoencoders take ``noise=``, ``code_penalty=`` and ``weight_decay=`` (the sparse and
contractive families set their own penalty). The dense families flatten an image at their
input (``Flatten``) and give it back its shape at their output (``Reshape``); the
convolutional ones need sizes their pooling divides and say so. The defaults are the
article's models on MNIST, unchanged.

A new family is a function in a new module of this folder, decorated ``@FAMILIES.register``
(``npae/models/__init__.py`` imports every module here); tests/test_families.py then trains it
by the command line and checks its gradients, like every other.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .. import _checks
from .. import init as _init
from .._checks import input_shape as _input_shape
from ..core import Layer, Sequential
from ..nn.activations import Identity, LeakyReLU, ReLU, Sigmoid, Softplus, Tanh
from ..nn.layers import Dense, Flatten, Reshape, TiedDense
from ..objectives.noise import GaussianNoise
from ..objectives.penalties import Contractive, KLSparsity, L1Activity, Penalty, WeightDecay
from ..registry import Registry
from .autoencoders import Autoencoder, NoiseFn
from .vae import VAE

#: every family constructor, by name
FAMILIES = Registry("family")

# Defaults settled by experiment; the measurements behind each are in docs/choices.md.
SPARSE_L1 = 3e-5
SPARSE_KL_BETA = 0.1
#: about what the sparse default costs in MSE, for a Jacobian norm cut about six-fold
CONTRACTIVE_LAM = 3e-5

MNIST_FLAT = (784,)
#: the activations a code may have (``code_activation=``); "linear" is no activation at all
CODE_ACTIVATIONS = {"relu": ReLU, "linear": Identity, "sigmoid": Sigmoid, "tanh": Tanh, "leaky_relu": LeakyReLU,
                    "softplus": Softplus}


def _code_activation(name: str, where: str, allowed: dict[str, type[Layer]] = CODE_ACTIVATIONS) -> type[Layer]:
    if name not in allowed:
        raise ValueError(f"{where}: code_activation must be one of {sorted(allowed)}, got {name!r}")
    return allowed[name]


def _dense_stack(sizes: Sequence[int], rng: np.random.Generator, dtype: type | np.dtype | str,
                 last_activation: Callable[[], Layer], tied_to: Sequential | None = None) -> Sequential:
    """Dense layers with ReLU between them and ``last_activation`` after the last. With
    ``tied_to`` (an encoder built by this function, mirrored by ``sizes``), the Dense layers
    are TiedDense layers using the transposes of the encoder's matrices, last to first."""
    layers = []
    sources = [layer for layer in tied_to if isinstance(layer, Dense)][::-1] if tied_to is not None else None
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        dense = Dense(a, b, rng=rng, dtype=dtype) if sources is None else TiedDense(sources[i])
        layers += [dense, ReLU() if i < len(sizes) - 2 else last_activation()]
    return Sequential(*layers)


def _dense_autoencoder(sizes: Sequence[int], input_shape: tuple, code_activation: Callable[[], Layer], *, tied: bool,
                       rng: np.random.Generator, dtype: type | np.dtype | str, loss: str,
                       code_penalty: Penalty | None, noise: NoiseFn | None, weight_decay: WeightDecay | None,
                       name: str) -> Autoencoder:
    """input -> sizes (ReLU inside, ``code_activation`` at the code) -> input (sigmoid); an image
    input is flattened first and reshaped back last."""
    d = sizes[0]
    mid = len(sizes) // 2
    encoder = _dense_stack(sizes[: mid + 1], rng, dtype, code_activation)
    decoder = _dense_stack(sizes[mid:], rng, dtype, Sigmoid, tied_to=encoder if tied else None)
    if len(input_shape) == 3:
        encoder, decoder = Sequential(Flatten(), *encoder), Sequential(*decoder, Reshape(input_shape))
    assert d == math.prod(input_shape)
    return Autoencoder(encoder, decoder, loss=loss, code_penalty=code_penalty, noise=noise, weight_decay=weight_decay,
                       input_shape=input_shape, name=name)


@FAMILIES.register
def ordinary(code: int = 64, *, input_shape: Sequence[int] = MNIST_FLAT, code_activation: str = "relu",
             tied: bool = False, rng: np.random.Generator | None = None, dtype: type | np.dtype | str = np.float32,
             loss: str = "mse", code_penalty: Penalty | None = None, noise: NoiseFn | None = None,
             weight_decay: WeightDecay | None = None, name: str | None = None) -> Autoencoder:
    """input -> code (ReLU) -> input (sigmoid): the article's undercomplete autoencoder (784-64-784).

    ``tied=True``: the decoder computes ``h @ W.T + c`` with the encoder's own W (TiedDense),
    so the model has about half the parameters (51,024 instead of 101,200 at code 64).
    """
    name = name or ("tied" if tied else "ordinary")
    rng = _init.default_rng(rng, name)
    code = _checks.positive_int(code, "code", name)
    shape = _input_shape(input_shape, name)
    sizes = (math.prod(shape), code, math.prod(shape))
    return _dense_autoencoder(sizes, shape, _code_activation(code_activation, name), tied=tied, rng=rng, dtype=dtype,
                              loss=loss, code_penalty=code_penalty, noise=noise, weight_decay=weight_decay, name=name)


@FAMILIES.register
def tied(code: int = 64, **kwargs: Any) -> Autoencoder:
    """:func:`ordinary` with tied weights (``ordinary(code, tied=True)``); it takes what ordinary takes."""
    return ordinary(code, tied=True, **kwargs)


# ordinary's options but ``tied`` are tied's own (the command line and the tests read the signature)
tied.__signature__ = inspect.signature(ordinary).replace(
    parameters=[p for name, p in inspect.signature(ordinary).parameters.items() if name != "tied"])


@FAMILIES.register
def multilayer(hidden: Sequence[int] = (128, 64, 128), *, code: int | None = None,
               input_shape: Sequence[int] = MNIST_FLAT, code_activation: str = "relu", tied: bool = False,
               rng: np.random.Generator | None = None, dtype: type | np.dtype | str = np.float32, loss: str = "mse",
               code_penalty: Penalty | None = None, noise: NoiseFn | None = None,
               weight_decay: WeightDecay | None = None, name: str = "multilayer") -> Autoencoder:
    """input -> hidden... -> input, ReLU inside and sigmoid out; the middle of ``hidden`` is the code
    (``code=`` replaces its size: ``multilayer(code=2)`` is 784-128-2-128-784).

    ``hidden`` must have odd length (encoder and decoder meet at the code), e.g. (128, 64, 128).
    ``tied=True`` needs a symmetric ``hidden``; the decoder's layers use the transposes of the
    encoder's matrices, last to first.
    """
    rng = _init.default_rng(rng, name)
    hidden = tuple(_checks.positive_int(h, "hidden sizes", name) for h in hidden)
    if len(hidden) % 2 != 1:
        raise ValueError(f"{name}: hidden must have an odd number of sizes (the middle one is the code), got {hidden}")
    mid = len(hidden) // 2
    if code is not None:
        hidden = hidden[:mid] + (_checks.positive_int(code, "code", name),) + hidden[mid + 1:]
    if tied and hidden != hidden[::-1]:
        raise ValueError(f"{name}: tied weights need symmetric hidden sizes (the decoder mirrors the encoder), "
                         f"got {hidden}")
    shape = _input_shape(input_shape, name)
    d = math.prod(shape)
    return _dense_autoencoder((d,) + hidden + (d,), shape, _code_activation(code_activation, name), tied=tied,
                              rng=rng, dtype=dtype, loss=loss, code_penalty=code_penalty, noise=noise,
                              weight_decay=weight_decay, name=name)


@FAMILIES.register
def sparse(code: int = 64, l1: float | None = None, *, input_shape: Sequence[int] = MNIST_FLAT,
           code_activation: str = "relu", rng: np.random.Generator | None = None,
           dtype: type | np.dtype | str = np.float32, loss: str = "mse", noise: NoiseFn | None = None,
           weight_decay: WeightDecay | None = None, name: str = "sparse") -> Autoencoder:
    """The ordinary autoencoder with an L1 activity penalty on its code (``L1Activity(l1)``)."""
    return ordinary(code, input_shape=input_shape, code_activation=code_activation, rng=rng, dtype=dtype, loss=loss,
                    code_penalty=L1Activity(SPARSE_L1 if l1 is None else l1), noise=noise, weight_decay=weight_decay,
                    name=name)


@FAMILIES.register
def sparse_kl(code: int = 64, rho: float = 0.05, beta: float | None = None, *,
              input_shape: Sequence[int] = MNIST_FLAT, rng: np.random.Generator | None = None,
              dtype: type | np.dtype | str = np.float32, loss: str = "mse", noise: NoiseFn | None = None,
              weight_decay: WeightDecay | None = None, name: str = "sparse_kl") -> Autoencoder:
    """input -> code (sigmoid: the KL penalty needs activations in [0, 1]) -> input (sigmoid), with Ng's
    KL sparsity penalty ``KLSparsity(rho, beta)``."""
    return ordinary(code, input_shape=input_shape, code_activation="sigmoid", rng=rng, dtype=dtype, loss=loss,
                    code_penalty=KLSparsity(rho, SPARSE_KL_BETA if beta is None else beta), noise=noise,
                    weight_decay=weight_decay, name=name)


@FAMILIES.register
def dense_denoising(code: int = 64, noise: NoiseFn | None = None, *, input_shape: Sequence[int] = MNIST_FLAT,
                    code_activation: str = "relu", rng: np.random.Generator | None = None,
                    dtype: type | np.dtype | str = np.float32, loss: str = "mse",
                    weight_decay: WeightDecay | None = None, name: str = "dense_denoising") -> Autoencoder:
    """The ordinary autoencoder trained as a denoiser: ``noise(x)`` in (default GaussianNoise(0.5),
    the article's), the clean ``x`` as the target; a dense counterpart of :func:`denoising`."""
    return ordinary(code, input_shape=input_shape, code_activation=code_activation, rng=rng, dtype=dtype, loss=loss,
                    noise=GaussianNoise(0.5) if noise is None else noise, weight_decay=weight_decay, name=name)


@FAMILIES.register
@_checks.renamed_keywords(activation="code_activation")
def contractive(code: int = 64, lam: float | None = None, *, code_activation: str = "relu",
                input_shape: Sequence[int] = MNIST_FLAT, rng: np.random.Generator | None = None,
                dtype: type | np.dtype | str = np.float32, loss: str = "mse", noise: NoiseFn | None = None,
                weight_decay: WeightDecay | None = None, name: str = "contractive") -> Autoencoder:
    """input -> code (``code_activation``) -> input (sigmoid) with the contractive penalty ``Contractive(lam)``:
    ``lam * mean_n ||J(x_n)||_F**2``, the squared Frobenius norm of the encoder's Jacobian in
    closed form (Rifai et al., 2011).

    The default ReLU code makes it the article's ordinary autoencoder plus the penalty (same
    initial weights for the same rng), so the penalty's effect is seen alone; Rifai's sigmoid
    code is ``code_activation="sigmoid"`` ("tanh" also works: the closed form knows these three).
    Default ``lam``: CONTRACTIVE_LAM.
    """
    acts = {"sigmoid": Sigmoid, "relu": ReLU, "tanh": Tanh}
    _code_activation(code_activation, name, acts)
    return ordinary(code, input_shape=input_shape, code_activation=code_activation, rng=rng, dtype=dtype, loss=loss,
                    code_penalty=Contractive(CONTRACTIVE_LAM if lam is None else lam), noise=noise,
                    weight_decay=weight_decay, name=name)


@FAMILIES.register
@_checks.renamed_keywords(latent="code")
def vae(code: int = 2, hidden: int = 512, *, input_shape: Sequence[int] = MNIST_FLAT, likelihood: str = "bernoulli",
        sigma_x: float | None = None, rng: np.random.Generator | None = None,
        dtype: type | np.dtype | str = np.float32, loss: str | None = None, name: str = "vae") -> VAE:
    """input -> hidden (ReLU) -> (mu, logvar) of a ``code``-dimensional Gaussian (the latent code);
    z -> hidden (ReLU) -> input (sigmoid).

    The Keras example's MNIST VAE (512 hidden units); a Bernoulli decoder by default
    (``likelihood="gaussian"`` with a fixed ``sigma_x`` otherwise). ``loss`` is accepted for the
    command line's sake: "bce" means Bernoulli, "mse" Gaussian.
    """
    if loss is not None:
        likelihood = {"bce": "bernoulli", "mse": "gaussian"}.get(loss, loss)
    rng = _init.default_rng(rng, name)
    latent = _checks.positive_int(code, "code", name)
    hidden = _checks.positive_int(hidden, "hidden", name)
    shape = _input_shape(input_shape, name)
    d = math.prod(shape)
    encoder = Sequential(Dense(d, hidden, rng=rng, dtype=dtype), ReLU(),
                         Dense(hidden, 2 * latent, rng=rng, dtype=dtype))
    decoder = _dense_stack((latent, hidden, d), rng, dtype, Sigmoid)
    if len(shape) == 3:
        encoder, decoder = Sequential(Flatten(), *encoder), Sequential(*decoder, Reshape(shape))
    return VAE(encoder, decoder, latent=latent, likelihood=likelihood, sigma_x=sigma_x, input_shape=shape, name=name)

