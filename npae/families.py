"""The families: the autoencoders of "Deep inside: Autoencoders" and those beyond it.

The article's: :func:`ordinary` (784-64-784), :func:`multilayer` (784-128-64-128-784),
:func:`convolutional` (code 8x4x4), :func:`sparse` (an L1 activity penalty on the code) and
:func:`denoising` (noisy in, clean target). Beyond it: :func:`sparse_kl`, :func:`contractive`,
:func:`tied` and :func:`vae`. Each is a constructor registered in ``FAMILIES``, which the
command line (``python -m npae train FAMILY``), the demos and the tests read; every one takes
```rng=``, ``dtype=``, ``loss=`` and ``input_shape=``.

Every family takes ``input_shape``: the per-sample shape of its data, flat ``(D,)`` or an image
``(C, H, W)`` with any number of channels. The dense families flatten an image at their input
(``Flatten``) and give it back its shape at their output (``Reshape``); the convolutional ones
need sizes their pooling divides and say so. The dense ones take ``code`` (the code's size) and
``code_activation`` (one of ``CODE_ACTIVATIONS``), and the autoencoders take ``noise=``,
``code_penalty=`` and ``weight_decay=`` (the sparse and contractive families set their own
penalty). The defaults are the article's models on MNIST, unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from . import _checks
from . import init as _init
from .activations import Identity, LeakyReLU, ReLU, Sigmoid, Softplus, Tanh
from .autoencoders import Autoencoder, NoiseFn
from .batchnorm import BatchNorm2D
from .conv import Conv2D, ConvTranspose2D
from .core import Layer, Sequential
from .layers import Dense, Flatten, Reshape, TiedDense
from .noise import GaussianNoise
from .penalties import Contractive, KLSparsity, L1Activity, Penalty, WeightDecay
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
#: the activations a code may have (``code_activation=``); "linear" is no activation at all
CODE_ACTIVATIONS = {"relu": ReLU, "linear": Identity, "sigmoid": Sigmoid, "tanh": Tanh, "leaky_relu": LeakyReLU,
                    "softplus": Softplus}


def _input_shape(input_shape: Sequence[int], where: str) -> tuple:
    """``(D,)`` or ``(C, H, W)`` of positive ints, or a clear error."""
    try:
        shape = tuple(int(s) for s in input_shape)
    except (TypeError, ValueError):
        raise TypeError(f"{where}: input_shape must be a tuple of ints, (D,) or (C, H, W), "
                        f"got {input_shape!r}") from None
    if len(shape) not in (1, 3) or min(shape) < 1:
        raise ValueError(f"{where}: input_shape must be (D,) or (C, H, W) of positive ints, got {input_shape!r}")
    return shape


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
    """:func:`ordinary` with tied weights (``ordinary(code, tied=True)``)."""
    return ordinary(code, tied=True, **kwargs)


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
def contractive(code: int = 64, lam: float | None = None, *, activation: str = "relu",
                input_shape: Sequence[int] = MNIST_FLAT, rng: np.random.Generator | None = None,
                dtype: type | np.dtype | str = np.float32, loss: str = "mse", noise: NoiseFn | None = None,
                weight_decay: WeightDecay | None = None, name: str = "contractive") -> Autoencoder:
    """input -> code (``activation``) -> input (sigmoid) with the contractive penalty ``Contractive(lam)``:
    ``lam * mean_n ||J(x_n)||_F**2``, the squared Frobenius norm of the encoder's Jacobian in
    closed form (Rifai et al., 2011).

    The default ReLU code makes it the article's ordinary autoencoder plus the penalty (same
    initial weights for the same rng), so the penalty's effect is seen alone; Rifai's sigmoid
    code is ``activation="sigmoid"`` ("tanh" also works: the closed form knows these three).
    Default ``lam``: CONTRACTIVE_LAM.
    """
    acts = {"sigmoid": Sigmoid, "relu": ReLU, "tanh": Tanh}
    if activation not in acts:
        raise ValueError(f"{name}: activation must be one of {sorted(acts)}, got {activation!r}")
    return ordinary(code, input_shape=input_shape, code_activation=activation, rng=rng, dtype=dtype, loss=loss,
                    code_penalty=Contractive(CONTRACTIVE_LAM if lam is None else lam), noise=noise,
                    weight_decay=weight_decay, name=name)


@FAMILIES.register
def vae(latent: int = 2, hidden: int = 512, *, input_shape: Sequence[int] = MNIST_FLAT, likelihood: str = "bernoulli",
        sigma_x: float | None = None, rng: np.random.Generator | None = None,
        dtype: type | np.dtype | str = np.float32, loss: str | None = None, name: str = "vae") -> VAE:
    """input -> hidden (ReLU) -> (mu, logvar) of a ``latent``-dimensional Gaussian;
    z -> hidden (ReLU) -> input (sigmoid).

    The Keras example's MNIST VAE (512 hidden units); a Bernoulli decoder by default
    (``likelihood="gaussian"`` with a fixed ``sigma_x`` otherwise). ``loss`` is accepted for the
    command line's sake: "bce" means Bernoulli, "mse" Gaussian.
    """
    if loss is not None:
        likelihood = {"bce": "bernoulli", "mse": "gaussian"}.get(loss, loss)
    rng = _init.default_rng(rng, name)
    latent = _checks.positive_int(latent, "latent", name)
    hidden = _checks.positive_int(hidden, "hidden", name)
    shape = _input_shape(input_shape, name)
    d = math.prod(shape)
    encoder = Sequential(Dense(d, hidden, rng=rng, dtype=dtype), ReLU(),
                         Dense(hidden, 2 * latent, rng=rng, dtype=dtype))
    decoder = _dense_stack((latent, hidden, d), rng, dtype, Sigmoid)
    if len(shape) == 3:
        encoder, decoder = Sequential(Flatten(), *encoder), Sequential(*decoder, Reshape(shape))
    return VAE(encoder, decoder, latent=latent, likelihood=likelihood, sigma_x=sigma_x, input_shape=shape, name=name)


# -- the convolutional families ----------------------------------------------------------------
def _conv(c_in: int, c_out: int, rng: np.random.Generator, dtype: type | np.dtype | str,
          init: str | Callable[..., np.ndarray], padding: str = "same",
          activation: Callable[[], Layer] = ReLU) -> list[Layer]:
    return [Conv2D(c_in, c_out, 3, padding=padding, rng=rng, dtype=dtype, init=init), activation()]


def _pool_then_relu(conv_relu: list[Layer]) -> list[Layer]:
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


def _start_at_mean_intensity(decoder: Sequential, output_bias: float) -> Sequential:
    """Set the bias of the decoder's last (sigmoid) layer: the fix for the MSE collapse, see OUTPUT_BIAS."""
    decoder[-2].params["b"].value[...] = output_bias
    return decoder


def _image_shape(input_shape: Sequence[int], divisor: int, where: str,
                 also: tuple[tuple[int, int], ...] = ()) -> tuple:
    shape = _input_shape(input_shape, where)
    if len(shape) != 3:
        raise ValueError(f"{where}: a convolutional model takes images (C, H, W), got input_shape {shape}")
    _, h, w = shape
    if (h, w) not in also and (h % divisor or w % divisor):
        sizes = " or ".join([f"{a}x{b}" for a, b in also] + [f"sizes divisible by {divisor}"])
        raise ValueError(f"{where}: images of {h}x{w} do not fit: the encoder halves height and width "
                         f"{divisor.bit_length() - 1} times, so it needs {sizes}")
    return shape


@FAMILIES.register
def convolutional(*, input_shape: Sequence[int] = MNIST_IMAGE, code_channels: int = 8, upsample: str = "nearest",
                  downsample: str = "pool", batchnorm: bool = False, rng: np.random.Generator | None = None,
                  dtype: type | np.dtype | str = np.float32, loss: str = "mse",
                  init: str | Callable[..., np.ndarray] = "glorot_uniform", output_bias: float | None = None,
                  noise: NoiseFn | None = None, code_penalty: Penalty | None = None,
                  weight_decay: WeightDecay | None = None, name: str = "convolutional") -> Autoencoder:
    """The article's convolutional autoencoder; on 1x28x28 images the code is 8x4x4.

    Encoder: Conv 16 (3x3 same, ReLU), MaxPool 2 same -> 14; Conv 8, MaxPool -> 7; Conv 8, MaxPool same -> 4.
    Decoder: Conv 8, Up 2 -> 8; Conv 8, Up 2 -> 16; Conv 16 3x3 valid (16 -> 14), Up 2 -> 28; Conv 1 sigmoid.
    Other sizes (H and W divisible by 8) take the same layers with every convolution "same", so
    the code is ``code_channels x H/8 x W/8``; ``C`` channels in, ``C`` out (colour: 3).
    Weights Glorot-uniform (the Keras default); the output bias starts at ``output_bias``
    (default OUTPUT_BIAS, the logit of MNIST's mean pixel; docs/choices.md), the other biases at 0.

    In the encoder each ReLU comes *after* its max pooling: Conv, MaxPool, ReLU. The two
    commute, values and gradients alike (see :func:`_pool_then_relu`), and pooling first
    leaves the ReLU a quarter of the values.

    The layers a tutorial reaches for next: ``downsample="stride"`` halves with stride-2
    convolutions instead of max pooling; ``upsample="transpose"`` doubles with learned
    ``ConvTranspose2D`` (3x3, stride 2, padding 1, output_padding as each size needs) instead
    of nearest-neighbour upsampling followed by a convolution; ``batchnorm=True`` puts a
    ``BatchNorm2D`` after every hidden convolution, before its pooling and ReLU (and leaves out
    those convolutions' biases, which it would cancel). The defaults are the article's design.
    """
    rng = _init.default_rng(rng, name)
    c, h, w = _image_shape(input_shape, 8, name, also=((28, 28),))
    k = _checks.positive_int(code_channels, "code_channels", name)
    if upsample not in ("nearest", "transpose"):
        raise ValueError(f"{name}: upsample must be 'nearest' or 'transpose', got {upsample!r}")
    if downsample not in ("pool", "stride"):
        raise ValueError(f"{name}: downsample must be 'pool' or 'stride', got {downsample!r}")
    if (upsample, downsample, batchnorm) == ("nearest", "pool", False):
        encoder = Sequential(
            *_pool_then_relu(_conv(c, 16, rng, dtype, init)),
            *_pool_then_relu(_conv(16, 8, rng, dtype, init)),
            *_pool_then_relu(_conv(8, k, rng, dtype, init)),
        )
        third = "valid" if (h, w) == (28, 28) else "same"  # 16 -> 14 on 28x28, the article's way back to 28
        decoder = Sequential(
            *_conv(k, 8, rng, dtype, init), UpSampling2D(2),
            *_conv(8, 8, rng, dtype, init), UpSampling2D(2),
            *_conv(8, 16, rng, dtype, init, padding=third), UpSampling2D(2),
            *_conv(16, c, rng, dtype, init, activation=Sigmoid),
        )
    else:
        encoder, decoder = _variant(c, h, w, k, upsample, downsample, batchnorm, rng, dtype, init)
    _start_at_mean_intensity(decoder, OUTPUT_BIAS if output_bias is None else output_bias)
    return Autoencoder(encoder, decoder, loss=loss, code_penalty=code_penalty, noise=noise,
                       weight_decay=weight_decay, input_shape=(c, h, w), name=name)


def _variant(c: int, h: int, w: int, k: int, upsample: str, downsample: str, batchnorm: bool,
             rng: np.random.Generator, dtype: type | np.dtype | str,
             init: str | Callable[..., np.ndarray]) -> tuple[Sequential, Sequential]:
    """The convolutional autoencoder with strided convolutions, transposed convolutions and/or
    batch normalization: the same channels (16, 8, k down; 8, 8, 16 up) and sizes as the article's."""
    sizes = [(h, w)]
    for _ in range(3):
        sizes.append((-(-sizes[-1][0] // 2), -(-sizes[-1][1] // 2)))  # "same": 28 -> 14 -> 7 -> 4

    def block(c_in: int, c_out: int, activation: Callable[[], Layer] = ReLU) -> list[Layer]:
        """A hidden convolution of the encoder that halves the size."""
        stride = 2 if downsample == "stride" else 1
        layers = [Conv2D(c_in, c_out, 3, stride=stride, padding="same", rng=rng, dtype=dtype, init=init,
                         bias=not batchnorm)]
        layers += [BatchNorm2D(c_out, dtype=dtype)] if batchnorm else []
        layers += [MaxPool2D(2, padding="same")] if downsample == "pool" else []
        return layers + [activation()]

    encoder = Sequential(*block(c, 16), *block(16, 8), *block(8, k))
    layers = []
    for i, (c_in, c_out) in enumerate(((k, 8), (8, 8), (8, 16))):
        (h_in, w_in), (h_out, w_out) = sizes[3 - i], sizes[2 - i]
        if upsample == "transpose":
            op = (h_out - (2 * h_in - 1), w_out - (2 * w_in - 1))
            if op[0] != op[1]:
                raise ValueError(f"convolutional: upsample='transpose' needs square images, got {h}x{w}")
            layers.append(ConvTranspose2D(c_in, c_out, 3, stride=2, padding=1, output_padding=op[0], rng=rng,
                                          dtype=dtype, init=init, bias=not batchnorm))
            layers += [BatchNorm2D(c_out, dtype=dtype)] if batchnorm else []
            layers.append(ReLU())
        else:  # the article's: convolve, then double (on 28x28 the last convolution is "valid": 16 -> 14)
            padding = "valid" if (i == 2 and (h, w) == (28, 28)) else "same"
            layers.append(Conv2D(c_in, c_out, 3, padding=padding, rng=rng, dtype=dtype, init=init, bias=not batchnorm))
            layers += [BatchNorm2D(c_out, dtype=dtype)] if batchnorm else []
            layers += [ReLU(), UpSampling2D(2)]
    decoder = Sequential(*layers, *_conv(16, c, rng, dtype, init, activation=Sigmoid))
    return encoder, decoder


@FAMILIES.register
def denoising(noise: NoiseFn | None = None, *, input_shape: Sequence[int] = MNIST_IMAGE, code_channels: int = 32,
              rng: np.random.Generator | None = None, dtype: type | np.dtype | str = np.float32, loss: str = "mse",
              init: str | Callable[..., np.ndarray] = "glorot_uniform", output_bias: float | None = None,
              code_penalty: Penalty | None = None, weight_decay: WeightDecay | None = None,
              name: str = "denoising") -> Autoencoder:
    """The article's convolutional denoiser; trained on ``noise(x)`` against the clean ``x``.

    Encoder: Conv 32 (3x3 same, ReLU), MaxPool 2 -> 14; Conv ``code_channels`` (32), MaxPool 2 ->
    code 32x7x7 (``code_channels x H/4 x W/4``; H and W divisible by 4).
    Decoder: Conv 32, Up 2 -> 14; Conv 32, Up 2 -> 28; Conv C (3x3 same, sigmoid).
    ``noise`` defaults to GaussianNoise(0.5) clipped to [0, 1], as in the article. Initialized
    like :func:`convolutional` (Glorot weights, output bias at OUTPUT_BIAS).
    """
    rng = _init.default_rng(rng, name)
    noise = GaussianNoise(0.5) if noise is None else noise
    c, h, w = _image_shape(input_shape, 4, name)
    k = _checks.positive_int(code_channels, "code_channels", name)
    encoder = Sequential(*_conv(c, 32, rng, dtype, init), MaxPool2D(2), *_conv(32, k, rng, dtype, init), MaxPool2D(2))
    decoder = Sequential(
        *_conv(k, 32, rng, dtype, init), UpSampling2D(2), *_conv(32, 32, rng, dtype, init), UpSampling2D(2),
        *_conv(32, c, rng, dtype, init, activation=Sigmoid),
    )
    _start_at_mean_intensity(decoder, OUTPUT_BIAS if output_bias is None else output_bias)
    return Autoencoder(encoder, decoder, loss=loss, noise=noise, code_penalty=code_penalty, weight_decay=weight_decay,
                       input_shape=(c, h, w), name=name)
