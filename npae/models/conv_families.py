"""The convolutional families: the article's :func:`convolutional` autoencoder (with the next layers'
variant: strided convolutions, transposed convolutions, BatchNorm) and its :func:`denoising` one.
Registered in ``npae.models.families.FAMILIES`` with the dense families; see :mod:`npae.models.families` for what
every family takes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from .. import _checks
from .. import init as _init
from .._checks import input_shape as _input_shape
from ..core import Layer, Sequential
from ..nn.activations import ReLU, Sigmoid
from ..nn.batchnorm import BatchNorm2D
from ..nn.conv import Conv2D, ConvTranspose2D
from ..nn.pooling import MaxPool2D, UpSampling2D
from ..objectives.noise import GaussianNoise
from ..objectives.penalties import Penalty, WeightDecay
from .autoencoders import Autoencoder, NoiseFn
from .families import FAMILIES

# Defaults settled by experiment; the measurements behind each are in docs/choices.md.
#: the convolutional families start their sigmoid output at MNIST's mean pixel intensity
#: (bias = logit(0.1307)); with the Keras initialization alone they collapse to black under MSE
OUTPUT_BIAS = float(np.log(0.1307 / (1 - 0.1307)))
MNIST_IMAGE = (1, 28, 28)


# -- the convolutional families ----------------------------------------------------------------
def _conv(c_in: int, c_out: int, rng: np.random.Generator, dtype: type | np.dtype | str,
          init: str | Callable[..., np.ndarray], padding: str = "same",
          activation: Callable[[], Layer] = ReLU) -> list[Layer]:
    return [Conv2D(c_in, c_out, 3, padding=padding, rng=rng, dtype=dtype, init=init), activation()]


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
@_checks.renamed_keywords(code_channels="code")
def convolutional(*, input_shape: Sequence[int] = MNIST_IMAGE, code: int = 8, upsample: str = "nearest",
                  downsample: str = "pool", batchnorm: bool = False, rng: np.random.Generator | None = None,
                  dtype: type | np.dtype | str = np.float32, loss: str = "mse",
                  init: str | Callable[..., np.ndarray] = "glorot_uniform", output_bias: float | None = None,
                  noise: NoiseFn | None = None, code_penalty: Penalty | None = None,
                  weight_decay: WeightDecay | None = None, name: str = "convolutional") -> Autoencoder:
    """The article's convolutional autoencoder; on 1x28x28 images the code is 8x4x4.

    Encoder: Conv 16 (3x3 same, ReLU), MaxPool 2 same -> 14; Conv 8, MaxPool -> 7; Conv 8, MaxPool same -> 4.
    Decoder: Conv 8, Up 2 -> 8; Conv 8, Up 2 -> 16; Conv 16 3x3 valid (16 -> 14), Up 2 -> 28; Conv 1 sigmoid.
    Other sizes (H and W divisible by 8) take the same layers with every convolution "same", so
    the code is ``code x H/8 x W/8`` (``code``: its channels); ``C`` channels in, ``C`` out (colour: 3).
    Weights Glorot-uniform (the Keras default); the output bias starts at ``output_bias``
    (default OUTPUT_BIAS, the logit of MNIST's mean pixel; docs/choices.md), the other biases at 0.

    In the encoder each ReLU comes *after* its max pooling: Conv, MaxPool, ReLU. The two
    commute, values and gradients alike (see :func:`_encoder_decoder`), and pooling first
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
    k = _checks.positive_int(code, "code", name)
    if upsample not in ("nearest", "transpose"):
        raise ValueError(f"{name}: upsample must be 'nearest' or 'transpose', got {upsample!r}")
    if downsample not in ("pool", "stride"):
        raise ValueError(f"{name}: downsample must be 'pool' or 'stride', got {downsample!r}")
    encoder, decoder = _encoder_decoder(c, h, w, k, upsample, downsample, batchnorm, rng, dtype, init)
    _start_at_mean_intensity(decoder, OUTPUT_BIAS if output_bias is None else output_bias)
    return Autoencoder(encoder, decoder, loss=loss, code_penalty=code_penalty, noise=noise,
                       weight_decay=weight_decay, input_shape=(c, h, w), name=name)


def _encoder_decoder(c: int, h: int, w: int, k: int, upsample: str, downsample: str, batchnorm: bool,
                     rng: np.random.Generator, dtype: type | np.dtype | str,
                     init: str | Callable[..., np.ndarray]) -> tuple[Sequential, Sequential]:
    """The layers of :func:`convolutional`: channels 16, 8, k down and 8, 8, 16 up, the article's
    ("nearest", "pool", no batchnorm) or with strided convolutions, transposed convolutions
    and/or batch normalization in their places, at the same sizes.

    A hidden encoder block is ``[Conv2D, MaxPool2D(2, padding="same"), ReLU]``: the same
    function and the same gradients as Conv, ReLU, MaxPool (the article's order), for less work.
    Values: ReLU is non-decreasing, so ``max_w relu(a_w) = relu(max_w a_w)`` over every window.
    Gradients: if the window's maximum m is > 0, the values equal to m are the same before and
    after the ReLU, so both orders route dy to the same (first) one and multiply it by
    ``[m > 0] = 1``; if m <= 0, both give 0 (ReLU' = 0 at the routed element, or at the pooled
    value). tests/test_autoencoders.py checks both orders bit for bit.
    """
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
@_checks.renamed_keywords(code_channels="code")
def denoising(noise: NoiseFn | None = None, *, input_shape: Sequence[int] = MNIST_IMAGE, code: int = 32,
              rng: np.random.Generator | None = None, dtype: type | np.dtype | str = np.float32, loss: str = "mse",
              init: str | Callable[..., np.ndarray] = "glorot_uniform", output_bias: float | None = None,
              code_penalty: Penalty | None = None, weight_decay: WeightDecay | None = None,
              name: str = "denoising") -> Autoencoder:
    """The article's convolutional denoiser; trained on ``noise(x)`` against the clean ``x``.

    Encoder: Conv 32 (3x3 same, ReLU), MaxPool 2 -> 14; Conv ``code`` (32), MaxPool 2 ->
    code 32x7x7 (``code x H/4 x W/4``; H and W divisible by 4).
    Decoder: Conv 32, Up 2 -> 14; Conv 32, Up 2 -> 28; Conv C (3x3 same, sigmoid).
    ``noise`` defaults to GaussianNoise(0.5) clipped to [0, 1], as in the article. Initialized
    like :func:`convolutional` (Glorot weights, output bias at OUTPUT_BIAS).
    """
    rng = _init.default_rng(rng, name)
    noise = GaussianNoise(0.5) if noise is None else noise
    c, h, w = _image_shape(input_shape, 4, name)
    k = _checks.positive_int(code, "code", name)
    encoder = Sequential(*_conv(c, 32, rng, dtype, init), MaxPool2D(2), *_conv(32, k, rng, dtype, init), MaxPool2D(2))
    decoder = Sequential(
        *_conv(k, 32, rng, dtype, init), UpSampling2D(2), *_conv(32, 32, rng, dtype, init), UpSampling2D(2),
        *_conv(32, c, rng, dtype, init, activation=Sigmoid),
    )
    _start_at_mean_intensity(decoder, OUTPUT_BIAS if output_bias is None else output_bias)
    return Autoencoder(encoder, decoder, loss=loss, noise=noise, code_penalty=code_penalty, weight_decay=weight_decay,
                       input_shape=(c, h, w), name=name)
