"""The autoencoder model and the families of "Deep inside: Autoencoders".

The objective, per mini-batch ``x`` of N samples::

    x_in  = noise(x, rng)            (denoising only; otherwise x_in = x)
    h     = encoder(x_in)            the code
    x_hat = decoder(h)
    L     = loss(x_hat, x)           reconstruction, against the CLEAN x (mean over all elements)
          + P(h)                     code penalty (its batch normalization: npae.penalties)
          + WD(weights)              weight decay, (lam / 2) * sum ||W||^2

and the backward pass follows it in reverse: ``dx_hat = dL/dx_hat``; ``dh = decoder.backward(dx_hat)``;
the penalty's gradient is added **at the code**, ``dh += dP/dh``; ``encoder.backward(dh)``; then
``W.grad += lam * W`` for the decayed weights.
"""

from __future__ import annotations

import math

import numpy as np

from . import _checks, losses
from . import init as _init
from .activations import ReLU, Sigmoid
from .conv import Conv2D, MaxPool2D, UpSampling2D
from .core import Layer, Sequential
from .layers import Dense
from .noise import GaussianNoise

TERMS = ("total", "reconstruction", "code_penalty", "weight_decay")


class Autoencoder:
    """``encoder`` and ``decoder`` (Layers, usually Sequential) trained to reproduce their input.

    Parameters
    ----------
    encoder, decoder : Layer
    loss : "mse" (default) or "bce"
    code_penalty : L1Activity, KLSparsity or None
    weight_decay : WeightDecay or None
    noise : GaussianNoise, MaskingNoise, SaltAndPepper or None (denoising)
    input_shape : per-sample shape the encoder takes, e.g. (784,) or (1, 28, 28). Inputs with
        the same number of values per sample are reshaped to it, so flat (N, 784) MNIST and
        (N, 1, 28, 28) images both work; outputs have ``input_shape``.
    """

    def __init__(self, encoder, decoder, *, loss="mse", code_penalty=None, weight_decay=None, noise=None,
                 input_shape=None, name="autoencoder"):
        for what, layer in (("encoder", encoder), ("decoder", decoder)):
            if not isinstance(layer, Layer):
                raise TypeError(f"Autoencoder: {what} must be an npae Layer (e.g. a Sequential), got {type(layer).__name__}")
        if isinstance(loss, str) and loss not in losses.LOSSES:
            raise ValueError(f"Autoencoder: loss must be one of {sorted(losses.LOSSES)}, got {loss!r}")
        self.encoder, self.decoder = encoder, decoder
        self.loss = loss
        self._loss = losses.get(loss)
        self.code_penalty, self.weight_decay, self.noise = code_penalty, weight_decay, noise
        self.input_shape = None if input_shape is None else tuple(int(s) for s in input_shape)
        self.name = name
        if self.input_shape is not None:
            code = encoder.output_shape(self.input_shape)
            out = decoder.output_shape(code)
            if tuple(out) != self.input_shape:
                raise ValueError(f"Autoencoder: the decoder maps the code {code} to {tuple(out)}, not to the input shape {self.input_shape}")
            self.code_shape = tuple(code)

    # -- parameters --------------------------------------------------------------------------
    def named_params(self):
        yield from self.encoder.named_params("encoder.")
        yield from self.decoder.named_params("decoder.")

    @property
    def params(self):
        return dict(self.named_params())

    def zero_grad(self):
        self.encoder.zero_grad()
        self.decoder.zero_grad()

    def astype(self, dtype):
        self.encoder.astype(dtype)
        self.decoder.astype(dtype)
        return self

    @property
    def dtype(self):
        return next(p.dtype for _, p in self.named_params())

    def n_params(self) -> int:
        return sum(p.size for _, p in self.named_params())

    # -- inference -----------------------------------------------------------------------------
    def _as_input(self, x, where):
        x = _checks.as_float_array(x, f"Autoencoder.{where}", "x")
        if self.input_shape is not None and x.ndim >= 1 and x.shape[1:] != self.input_shape:
            if x.ndim >= 2 and math.prod(x.shape[1:]) == math.prod(self.input_shape):
                return x.reshape((x.shape[0],) + self.input_shape)
            raise ValueError(
                f"Autoencoder.{where}: expected x of shape {_checks.fmt_shape((None,) + self.input_shape)} "
                f"(or {math.prod(self.input_shape)} values per sample), got {x.shape}"
            )
        return x

    def encode(self, x):
        """The code ``h = encoder(x)`` (inference: no noise, nothing cached)."""
        return self.encoder.forward(self._as_input(x, "encode"), training=False)

    def decode(self, h):
        return self.decoder.forward(h, training=False)

    def reconstruct(self, x):
        return self.decode(self.encode(x))

    # -- the objective -------------------------------------------------------------------------
    def loss_and_grads(self, x, rng=None) -> dict:
        """Every term of the objective on the batch ``x``, and its gradient in each ``p.grad``.

        Zeroes the gradients first, so afterwards each ``p.grad`` is exactly dL/dp for this
        batch. ``rng`` draws the noise of a denoising model (required then). Returns a dict
        with ``total``, ``reconstruction``, ``code_penalty`` and ``weight_decay`` (floats).
        """
        x = self._as_input(x, "loss_and_grads")
        self.zero_grad()
        x_in = x
        if self.noise is not None:
            if rng is None:
                raise ValueError("Autoencoder.loss_and_grads: a denoising model needs rng= to draw its noise")
            x_in = self.noise(x, rng)
        h = self.encoder.forward(x_in, training=True)
        x_hat = self.decoder.forward(h, training=True)
        rec, dx_hat = self._loss(x_hat, x)
        dh = self.decoder.backward(dx_hat)
        pen = 0.0
        if self.code_penalty is not None:
            pen, dpen = self.code_penalty(h)
            dh = dh + dpen
        _backward_no_dx(self.encoder, dh)  # the gradient with respect to the input is not needed
        wd = 0.0
        if self.weight_decay is not None:
            wd, grads = self.weight_decay(self.named_params())
            params = self.params
            for name, g in grads.items():
                params[name].grad += g
        return {"total": rec + pen + wd, "reconstruction": rec, "code_penalty": pen, "weight_decay": wd}

    def objective(self, x, rng=None) -> float:
        """The total objective of :meth:`loss_and_grads` by forward passes alone (for gradient
        checks): :meth:`evaluate` with the whole of ``x`` as one batch."""
        return self.evaluate(x, batch_size=len(x), rng=rng)["total"]

    def kink_state(self, x, rng=None):
        """Where the objective's kinks (ReLU signs, max-pool argmaxes, |h| signs) lie, for gradcheck."""
        x = self._as_input(x, "kink_state")
        x_in = self.noise(x, rng) if self.noise is not None else x
        parts = [self.encoder.kink_state(x_in)]
        h = self.encoder.forward(x_in, training=False)
        parts.append(self.decoder.kink_state(h))
        if hasattr(self.code_penalty, "kink_state"):
            parts.append(self.code_penalty.kink_state(h))
        return np.concatenate([np.ravel(p) for p in parts if p is not None] or [np.zeros(0)])

    def evaluate(self, x, *, batch_size: int = 256, rng=None) -> dict:
        """The terms of the objective on ``x`` without training (no caching, no gradients).

        Batch terms are averaged with weights equal to the batch sizes, so ``reconstruction`` is
        the mean over all elements of ``x`` whatever ``batch_size`` is. A denoising model is
        evaluated on noisy inputs drawn from ``rng`` (required then) against the clean ``x``.
        """
        x = self._as_input(x, "evaluate")
        if self.noise is not None and rng is None:
            raise ValueError("Autoencoder.evaluate: a denoising model needs rng= to draw the noisy inputs")
        sums = dict.fromkeys(TERMS, 0.0)
        for start in range(0, len(x), batch_size):
            xb = x[start:start + batch_size]
            x_in = self.noise(xb, rng) if self.noise is not None else xb
            h = self.encoder.forward(x_in, training=False)
            rec = self._loss(self.decoder.forward(h, training=False), xb)[0]
            pen = self.code_penalty(h)[0] if self.code_penalty is not None else 0.0
            sums["reconstruction"] += rec * len(xb)
            sums["code_penalty"] += pen * len(xb)
        out = {k: v / len(x) for k, v in sums.items()}
        out["weight_decay"] = self.weight_decay(self.named_params())[0] if self.weight_decay is not None else 0.0
        out["total"] = out["reconstruction"] + out["code_penalty"] + out["weight_decay"]
        return out

    def fit(self, x, *, epochs, batch_size=128, optimizer=None, validation_data=None, rng=None,
            verbose=True, checkpoint=None, resume=None, out=None):
        """Train; see :func:`npae.train.fit` (this is the same function)."""
        from .train import fit

        return fit(self, x, epochs=epochs, batch_size=batch_size, optimizer=optimizer,
                   validation_data=validation_data, rng=rng, verbose=verbose, checkpoint=checkpoint,
                   resume=resume, out=out)

    # -- description ------------------------------------------------------------------------
    def config(self) -> dict:
        def cfg(obj):
            return None if obj is None else obj.config()

        if not isinstance(self.loss, str):
            raise ValueError("Autoencoder.config: a custom loss function cannot be saved; use 'mse' or 'bce'")
        return {"name": self.name, "input_shape": None if self.input_shape is None else list(self.input_shape),
                "encoder": self.encoder.config(), "decoder": self.decoder.config(), "loss": self.loss,
                "code_penalty": cfg(self.code_penalty), "weight_decay": cfg(self.weight_decay), "noise": cfg(self.noise)}

    def summary(self) -> str:
        if self.input_shape is None:
            raise ValueError("Autoencoder.summary: needs input_shape")
        extras = [f"loss={self.loss}"] + [f"{k}={v!r}" for k, v in (
            ("code_penalty", self.code_penalty), ("weight_decay", self.weight_decay), ("noise", self.noise)) if v is not None]
        return (f"{self.name}: {', '.join(extras)}\nencoder\n{self.encoder.summary(self.input_shape)}\n"
                f"decoder\n{self.decoder.summary(self.code_shape)}")

    def __repr__(self):
        return f"Autoencoder(name={self.name!r}, input_shape={self.input_shape}, params={self.n_params():,})"


def _backward_no_dx(layer, dy):
    if isinstance(layer, Sequential) or getattr(layer, "can_skip_dx", False):
        layer.backward(dy, need_dx=False)
    else:
        layer.backward(dy)


# -- the families --------------------------------------------------------------------------------
MNIST_FLAT, MNIST_IMAGE = (784,), (1, 28, 28)


def _dense_stack(sizes, rng, dtype, last_activation):
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers += [Dense(a, b, rng=rng, dtype=dtype), ReLU() if i < len(sizes) - 2 else last_activation()]
    return Sequential(*layers)


def ordinary(code: int = 64, *, rng=None, dtype=np.float32, loss="mse", code_penalty=None, noise=None,
             weight_decay=None, name="ordinary") -> Autoencoder:
    """784 -> code (ReLU) -> 784 (sigmoid): the article's undercomplete autoencoder."""
    rng = _init.default_rng(rng, name)
    code = _checks.positive_int(code, "code", name)
    return Autoencoder(_dense_stack((784, code), rng, dtype, ReLU), _dense_stack((code, 784), rng, dtype, Sigmoid),
                       loss=loss, code_penalty=code_penalty, noise=noise, weight_decay=weight_decay,
                       input_shape=MNIST_FLAT, name=name)


def multilayer(hidden=(128, 64, 128), *, rng=None, dtype=np.float32, loss="mse", code_penalty=None, noise=None,
               weight_decay=None, name="multilayer") -> Autoencoder:
    """784 -> hidden... -> 784, ReLU inside and sigmoid out; the middle of ``hidden`` is the code.

    ``hidden`` must have odd length (encoder and decoder meet at the code), e.g. (128, 64, 128).
    """
    rng = _init.default_rng(rng, name)
    hidden = tuple(_checks.positive_int(h, "hidden sizes", name) for h in hidden)
    if len(hidden) % 2 != 1:
        raise ValueError(f"{name}: hidden must have an odd number of sizes (the middle one is the code), got {hidden}")
    mid = len(hidden) // 2
    encoder = _dense_stack((784,) + hidden[: mid + 1], rng, dtype, ReLU)
    decoder = _dense_stack(hidden[mid:] + (784,), rng, dtype, Sigmoid)
    return Autoencoder(encoder, decoder, loss=loss, code_penalty=code_penalty, noise=noise,
                       weight_decay=weight_decay, input_shape=MNIST_FLAT, name=name)


def _conv(c_in, c_out, rng, dtype, init, padding="same", activation=ReLU):
    return [Conv2D(c_in, c_out, 3, padding=padding, rng=rng, dtype=dtype, init=init), activation()]


def _start_at_mean_intensity(decoder, output_bias):
    """Set the bias of the decoder's last (sigmoid) layer: the fix for the MSE collapse, see OUTPUT_BIAS."""
    decoder[-2].params["b"].value[...] = output_bias
    return decoder


def convolutional(*, rng=None, dtype=np.float32, loss="mse", init="glorot_uniform", output_bias=None, noise=None,
                  code_penalty=None, weight_decay=None, name="convolutional") -> Autoencoder:
    """The article's convolutional autoencoder on 1x28x28 images; the code is 8x4x4.

    Encoder: Conv 16 (3x3 same, ReLU), MaxPool 2 same -> 14; Conv 8, MaxPool -> 7; Conv 8, MaxPool same -> 4.
    Decoder: Conv 8, Up 2 -> 8; Conv 8, Up 2 -> 16; Conv 16 3x3 valid (16 -> 14), Up 2 -> 28; Conv 1 sigmoid.
    Weights Glorot-uniform (the Keras default); the output bias starts at ``output_bias``
    (default OUTPUT_BIAS, the logit of MNIST's mean pixel; see its note), the other biases at 0.
    """
    rng = _init.default_rng(rng, name)
    encoder = Sequential(
        *_conv(1, 16, rng, dtype, init), MaxPool2D(2, padding="same"),
        *_conv(16, 8, rng, dtype, init), MaxPool2D(2, padding="same"),
        *_conv(8, 8, rng, dtype, init), MaxPool2D(2, padding="same"),
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


def sparse(code: int = 64, l1: float = None, *, rng=None, dtype=np.float32, loss="mse", name="sparse") -> Autoencoder:
    """The ordinary autoencoder with an L1 activity penalty on its code (``L1Activity(l1)``)."""
    from .penalties import L1Activity

    return ordinary(code, rng=rng, dtype=dtype, loss=loss, code_penalty=L1Activity(SPARSE_L1 if l1 is None else l1), name=name)


def sparse_kl(code: int = 64, rho: float = 0.05, beta: float = None, *, rng=None, dtype=np.float32, loss="mse",
              name="sparse_kl") -> Autoencoder:
    """784 -> code (sigmoid) -> 784 (sigmoid) with Ng's KL sparsity penalty ``KLSparsity(rho, beta)``."""
    from .penalties import KLSparsity

    rng = _init.default_rng(rng, name)
    code = _checks.positive_int(code, "code", name)
    return Autoencoder(_dense_stack((784, code), rng, dtype, Sigmoid), _dense_stack((code, 784), rng, dtype, Sigmoid),
                       loss=loss, code_penalty=KLSparsity(rho, SPARSE_KL_BETA if beta is None else beta),
                       input_shape=MNIST_FLAT, name=name)


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


# Defaults settled by experiment; see the README's "Choices" section.
#
# OUTPUT_BIAS: the convolutional families start their sigmoid output at MNIST's mean pixel
# intensity, 0.1307 (bias = logit(0.1307) = log(0.1307 / 0.8693)). With the article's
# initialization (Glorot weights, zero biases) the conv decoder's output barely depends
# on its input at first (each Glorot ReLU layer shrinks the signal), so the largest MSE
# gradient says "darker everywhere": Adam drives the output bias down until the sigmoid
# saturates at 0, where the MSE gradient through it, 2 (p - y) p (1 - p) / M, vanishes;
# training stalls at the loss of an all-black image, mean(x**2) (0.1025 on the sample's
# test set, 3 of 3 seeds here; 0.112 on full MNIST's training set, the plateau of the
# PyTorch run the issue reports). Binary cross-entropy escapes because its
# gradient at the logit is (p - y) / M, with no p (1 - p) factor. Starting at the mean
# intensity removes the push towards black; 3 of 3 seeds then train (He-normal weights
# alone also escape, more slowly). Keras' "same" defaults are otherwise kept.
OUTPUT_BIAS = float(np.log(0.1307 / (1 - 0.1307)))
SPARSE_L1 = 3e-5
SPARSE_KL_BETA = 0.1

FAMILIES = {"ordinary": ordinary, "multilayer": multilayer, "convolutional": convolutional,
            "sparse": sparse, "sparse_kl": sparse_kl, "denoising": denoising}
