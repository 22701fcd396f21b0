"""The families: the autoencoders of "Deep inside: Autoencoders" and those beyond it.

The article's: :func:`ordinary` (784-64-784), :func:`multilayer` (784-128-64-128-784),
:func:`convolutional` (code 8x4x4), :func:`sparse` (an L1 activity penalty on the code) and
:func:`denoising` (noisy in, clean target). Beyond it: :func:`sparse_kl`, :func:`contractive`,
:func:`tied` and :func:`vae`. Each is a constructor registered in ``FAMILIES``, which the
command line (``python -m npae train FAMILY``), the demos and the tests read; every one takes
``rng=`` and ``loss=``.
"""

from __future__ import annotations

import numpy as np

from . import _checks
from . import init as _init
from .activations import ReLU, Sigmoid, Tanh
from .autoencoders import Autoencoder
from .conv import Conv2D
from .core import Sequential
from .layers import Dense, TiedDense
from .noise import GaussianNoise
from .penalties import Contractive, KLSparsity, L1Activity
from .pooling import MaxPool2D, UpSampling2D
from .registry import Registry
from .vae import VAE

#: every family constructor, by name
FAMILIES = Registry("family")

# Defaults settled by experiment; the measurements behind each are in docs/choices.md.
#: the convolutional families start their sigmoid output at MNIST's mean pixel intensity
#: (bias = logit(0.1307)); with the Keras initialization alone they collapse to black under MSE
OUTPUT_BIAS = float(np.log(0.1307 / (1 - 0.1307)))
SPARSE_L1 = 3e-5
SPARSE_KL_BETA = 0.1
#: about what the sparse default costs in MSE, for a Jacobian norm cut about six-fold
CONTRACTIVE_LAM = 3e-5

MNIST_FLAT, MNIST_IMAGE = (784,), (1, 28, 28)


def _dense_stack(sizes, rng, dtype, last_activation, tied_to=None):
    """Dense layers with ReLU between them and ``last_activation`` after the last. With
    ``tied_to`` (an encoder built by this function, mirrored by ``sizes``), the Dense layers
    are TiedDense layers using the transposes of the encoder's matrices, last to first."""
    layers = []
    sources = [layer for layer in tied_to if isinstance(layer, Dense)][::-1] if tied_to is not None else None
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        dense = Dense(a, b, rng=rng, dtype=dtype) if sources is None else TiedDense(sources[i])
        layers += [dense, ReLU() if i < len(sizes) - 2 else last_activation()]
    return Sequential(*layers)


@FAMILIES.register
def ordinary(code: int = 64, *, tied: bool = False, rng=None, dtype=np.float32, loss="mse", code_penalty=None,
             noise=None, weight_decay=None, name=None) -> Autoencoder:
    """784 -> code (ReLU) -> 784 (sigmoid): the article's undercomplete autoencoder.

    ``tied=True``: the decoder computes ``h @ W.T + c`` with the encoder's own W (TiedDense),
    so the model has about half the parameters (51,024 instead of 101,200 at code 64).
    """
    name = name or ("tied" if tied else "ordinary")
    rng = _init.default_rng(rng, name)
    code = _checks.positive_int(code, "code", name)
    encoder = _dense_stack((784, code), rng, dtype, ReLU)
    decoder = _dense_stack((code, 784), rng, dtype, Sigmoid, tied_to=encoder if tied else None)
    return Autoencoder(encoder, decoder, loss=loss, code_penalty=code_penalty, noise=noise, weight_decay=weight_decay,
                       input_shape=MNIST_FLAT, name=name)


@FAMILIES.register
def tied(code: int = 64, **kwargs) -> Autoencoder:
    """:func:`ordinary` with tied weights (``ordinary(code, tied=True)``)."""
    return ordinary(code, tied=True, **kwargs)


@FAMILIES.register
def multilayer(hidden=(128, 64, 128), *, tied: bool = False, rng=None, dtype=np.float32, loss="mse",
               code_penalty=None, noise=None, weight_decay=None, name="multilayer") -> Autoencoder:
    """784 -> hidden... -> 784, ReLU inside and sigmoid out; the middle of ``hidden`` is the code.

    ``hidden`` must have odd length (encoder and decoder meet at the code), e.g. (128, 64, 128).
    ``tied=True`` needs a symmetric ``hidden``; the decoder's layers use the transposes of the
    encoder's matrices, last to first.
    """
    rng = _init.default_rng(rng, name)
    hidden = tuple(_checks.positive_int(h, "hidden sizes", name) for h in hidden)
    if len(hidden) % 2 != 1:
        raise ValueError(f"{name}: hidden must have an odd number of sizes (the middle one is the code), got {hidden}")
    if tied and hidden != hidden[::-1]:
        raise ValueError(f"{name}: tied weights need symmetric hidden sizes (the decoder mirrors the encoder), got {hidden}")
    mid = len(hidden) // 2
    encoder = _dense_stack((784,) + hidden[: mid + 1], rng, dtype, ReLU)
    decoder = _dense_stack(hidden[mid:] + (784,), rng, dtype, Sigmoid, tied_to=encoder if tied else None)
    return Autoencoder(encoder, decoder, loss=loss, code_penalty=code_penalty, noise=noise,
                       weight_decay=weight_decay, input_shape=MNIST_FLAT, name=name)


def _conv(c_in, c_out, rng, dtype, init, padding="same", activation=ReLU):
    return [Conv2D(c_in, c_out, 3, padding=padding, rng=rng, dtype=dtype, init=init), activation()]


def _pool_then_relu(conv_relu):
    """``[Conv2D, ReLU]`` -> ``[Conv2D, MaxPool2D(2, padding="same"), ReLU]``: the same function
    and the same gradients as Conv, ReLU, MaxPool (the article's order), for less work.

    Values: ReLU is non-decreasing, so ``max_w relu(a_w) = relu(max_w a_w)`` over every window.
    Gradients: if the window's maximum m is > 0, the values equal to m are the same before and
    after the ReLU, so both orders route dy to the same (first) one and multiply it by
    ``[m > 0] = 1``; if m <= 0, both give 0 (ReLU' = 0 at the routed element, or at the pooled
    value). tests/test_autoencoders.py checks both orders bit for bit.
    """
    conv, relu = conv_relu
    return [conv, MaxPool2D(2, padding="same"), relu]


def _start_at_mean_intensity(decoder, output_bias):
    """Set the bias of the decoder's last (sigmoid) layer: the fix for the MSE collapse, see OUTPUT_BIAS."""
    decoder[-2].params["b"].value[...] = output_bias
    return decoder


@FAMILIES.register
def convolutional(*, rng=None, dtype=np.float32, loss="mse", init="glorot_uniform", output_bias=None, noise=None,
                  code_penalty=None, weight_decay=None, name="convolutional") -> Autoencoder:
    """The article's convolutional autoencoder on 1x28x28 images; the code is 8x4x4.

    Encoder: Conv 16 (3x3 same, ReLU), MaxPool 2 same -> 14; Conv 8, MaxPool -> 7; Conv 8, MaxPool same -> 4.
    Decoder: Conv 8, Up 2 -> 8; Conv 8, Up 2 -> 16; Conv 16 3x3 valid (16 -> 14), Up 2 -> 28; Conv 1 sigmoid.
    Weights Glorot-uniform (the Keras default); the output bias starts at ``output_bias``
    (default OUTPUT_BIAS, the logit of MNIST's mean pixel; see its note), the other biases at 0.

    In the encoder each ReLU comes *after* its max pooling: Conv, MaxPool, ReLU. The two
    commute, values and gradients alike (see :func:`_pool_then_relu`), and pooling first
    leaves the ReLU a quarter of the values.
    """
    rng = _init.default_rng(rng, name)
    encoder = Sequential(
        *_pool_then_relu(_conv(1, 16, rng, dtype, init)),
        *_pool_then_relu(_conv(16, 8, rng, dtype, init)),
        *_pool_then_relu(_conv(8, 8, rng, dtype, init)),
    )
    decoder = Sequential(
        *_conv(8, 8, rng, dtype, init), UpSampling2D(2),
        *_conv(8, 8, rng, dtype, init), UpSampling2D(2),
        *_conv(8, 16, rng, dtype, init, padding="valid"), UpSampling2D(2),
        *_conv(16, 1, rng, dtype, init, activation=Sigmoid),
    )
    _start_at_mean_intensity(decoder, OUTPUT_BIAS if output_bias is None else output_bias)
    return Autoencoder(encoder, decoder, loss=loss, code_penalty=code_penalty, noise=noise,
                       weight_decay=weight_decay, input_shape=MNIST_IMAGE, name=name)


@FAMILIES.register
def sparse(code: int = 64, l1: float = None, *, rng=None, dtype=np.float32, loss="mse", name="sparse") -> Autoencoder:
    """The ordinary autoencoder with an L1 activity penalty on its code (``L1Activity(l1)``)."""
    return ordinary(code, rng=rng, dtype=dtype, loss=loss, code_penalty=L1Activity(SPARSE_L1 if l1 is None else l1), name=name)


@FAMILIES.register
def sparse_kl(code: int = 64, rho: float = 0.05, beta: float = None, *, rng=None, dtype=np.float32, loss="mse",
              name="sparse_kl") -> Autoencoder:
    """784 -> code (sigmoid) -> 784 (sigmoid) with Ng's KL sparsity penalty ``KLSparsity(rho, beta)``."""
    rng = _init.default_rng(rng, name)
    code = _checks.positive_int(code, "code", name)
    return Autoencoder(_dense_stack((784, code), rng, dtype, Sigmoid), _dense_stack((code, 784), rng, dtype, Sigmoid),
                       loss=loss, code_penalty=KLSparsity(rho, SPARSE_KL_BETA if beta is None else beta),
                       input_shape=MNIST_FLAT, name=name)


@FAMILIES.register
def denoising(noise=None, *, rng=None, dtype=np.float32, loss="mse", init="glorot_uniform", output_bias=None,
              name="denoising") -> Autoencoder:
    """The article's convolutional denoiser; trained on ``noise(x)`` against the clean ``x``.

    Encoder: Conv 32 (3x3 same, ReLU), MaxPool 2 -> 14; Conv 32, MaxPool 2 -> code 32x7x7.
    Decoder: Conv 32, Up 2 -> 14; Conv 32, Up 2 -> 28; Conv 1 (3x3 same, sigmoid).
    ``noise`` defaults to GaussianNoise(0.5) clipped to [0, 1], as in the article. Initialized
    like :func:`convolutional` (Glorot weights, output bias at OUTPUT_BIAS).
    """
    rng = _init.default_rng(rng, name)
    noise = GaussianNoise(0.5) if noise is None else noise
    encoder = Sequential(*_conv(1, 32, rng, dtype, init), MaxPool2D(2), *_conv(32, 32, rng, dtype, init), MaxPool2D(2))
    decoder = Sequential(
        *_conv(32, 32, rng, dtype, init), UpSampling2D(2), *_conv(32, 32, rng, dtype, init), UpSampling2D(2),
        *_conv(32, 1, rng, dtype, init, activation=Sigmoid),
    )
    _start_at_mean_intensity(decoder, OUTPUT_BIAS if output_bias is None else output_bias)
    return Autoencoder(encoder, decoder, loss=loss, noise=noise, input_shape=MNIST_IMAGE, name=name)


@FAMILIES.register
def contractive(code: int = 64, lam: float = None, *, activation="relu", rng=None, dtype=np.float32, loss="mse",
                name="contractive") -> Autoencoder:
    """784 -> code (``activation``) -> 784 (sigmoid) with the contractive penalty ``Contractive(lam)``:
    ``lam * mean_n ||J(x_n)||_F**2``, the squared Frobenius norm of the encoder's Jacobian in
    closed form (Rifai et al., 2011).

    The default ReLU code makes it the article's ordinary autoencoder plus the penalty (same
    initial weights for the same rng), so the penalty's effect is seen alone; Rifai's sigmoid
    code is ``activation="sigmoid"`` ("tanh" also works). Default ``lam``: CONTRACTIVE_LAM.
    """
    acts = {"sigmoid": Sigmoid, "relu": ReLU, "tanh": Tanh}
    if activation not in acts:
        raise ValueError(f"{name}: activation must be one of {sorted(acts)}, got {activation!r}")
    rng = _init.default_rng(rng, name)
    code = _checks.positive_int(code, "code", name)
    return Autoencoder(_dense_stack((784, code), rng, dtype, acts[activation]), _dense_stack((code, 784), rng, dtype, Sigmoid),
                       loss=loss, code_penalty=Contractive(CONTRACTIVE_LAM if lam is None else lam),
                       input_shape=MNIST_FLAT, name=name)


@FAMILIES.register
def vae(latent: int = 2, hidden: int = 512, *, likelihood="bernoulli", sigma_x=None, rng=None, dtype=np.float32,
        loss=None, name="vae") -> VAE:
    """784 -> hidden (ReLU) -> (mu, logvar) of a ``latent``-dimensional Gaussian; z -> hidden (ReLU) -> 784 (sigmoid).

    The Keras example's MNIST VAE (512 hidden units); a Bernoulli decoder by default
    (``likelihood="gaussian"`` with a fixed ``sigma_x`` otherwise). ``loss`` is accepted for the
    CLI's sake: "bce" means Bernoulli, "mse" Gaussian.
    """
    if loss is not None:
        likelihood = {"bce": "bernoulli", "mse": "gaussian"}.get(loss, loss)
    rng = _init.default_rng(rng, name)
    latent = _checks.positive_int(latent, "latent", name)
    hidden = _checks.positive_int(hidden, "hidden", name)
    encoder = Sequential(Dense(784, hidden, rng=rng, dtype=dtype), ReLU(), Dense(hidden, 2 * latent, rng=rng, dtype=dtype))
    decoder = _dense_stack((latent, hidden, 784), rng, dtype, Sigmoid)
    return VAE(encoder, decoder, latent=latent, likelihood=likelihood, sigma_x=sigma_x, input_shape=MNIST_FLAT, name=name)
