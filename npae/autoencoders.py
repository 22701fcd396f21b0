"""The autoencoder model and the families of "Deep inside: Autoencoders".

The objective, per mini-batch ``x`` of N samples::

    x_in  = noise(x, rng)            (denoising only; otherwise x_in = x)
    h     = encoder(x_in)            the code
    x_hat = decoder(h)
    L     = loss(x_hat, x)           reconstruction, against the CLEAN x (mean over all elements)
          + P(h)                     code penalty (its batch normalization: npae.penalties)
          + WD(weights)              weight decay, (lam / 2) * sum ||W||^2

and the backward pass follows it in reverse: ``dx_hat = dL/dx_hat``; ``dh = decoder.backward(dx_hat)``;
the penalty's gradient is added **at the code**, ``dh += dP/dh``; ``encoder.backward(dh)``; a
penalty that also depends on the encoder's weights directly (Contractive) adds that part,
``W.grad += dP/dW|direct``; then ``W.grad += lam * W`` for the decayed weights.

Beyond the article: ``contractive`` (the Contractive penalty on the encoder's Jacobian),
tied weights (``ordinary(tied=True)``: the decoder's TiedDense layers use the encoder's
matrices transposed, so each matrix receives the sum of its two uses' gradients), and
:class:`VAE`, whose objective (the negative ELBO) is written out in its docstring.
"""

from __future__ import annotations

import math

import numpy as np

from . import _checks, losses
from . import init as _init
from .activations import ReLU, Sigmoid
from .conv import Conv2D, MaxPool2D, UpSampling2D
from .core import Layer, Sequential
from .layers import Dense, TiedDense
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
        if hasattr(code_penalty, "bind"):  # a penalty of the encoder itself (Contractive): bind a copy to it
            code_penalty = code_penalty.bind(encoder)
        self.code_penalty, self.weight_decay, self.noise = code_penalty, weight_decay, noise
        _resolve_ties(encoder, decoder)
        self.input_shape = None if input_shape is None else tuple(int(s) for s in input_shape)
        self.name = name
        if self.input_shape is not None:
            code = encoder.output_shape(self.input_shape)
            out = decoder.output_shape(code)
            if tuple(out) != self.input_shape:
                raise ValueError(f"Autoencoder: the decoder maps the code {code} to {tuple(out)}, not to the input shape {self.input_shape}")
            self.code_shape = tuple(code)

    #: the terms :meth:`loss_and_grads` and :meth:`evaluate` return (and fit records per epoch)
    TERMS = TERMS

    def active_terms(self) -> list[str]:
        """The terms worth printing: the reconstruction, the penalties in use, and their total."""
        terms = ["reconstruction"]
        terms += ["code_penalty"] if self.code_penalty is not None else []
        terms += ["weight_decay"] if self.weight_decay is not None else []
        return terms + (["total"] if len(terms) > 1 else [])

    @property
    def needs_rng(self) -> bool:
        """Whether the objective draws random numbers (noise), so evaluate needs ``rng=``."""
        return self.noise is not None

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

    # Inference goes through the input in batches of ``batch_size`` samples (default 256) and
    # concatenates the results: each sample's output is computed on its own, so the batching
    # changes only the peak memory (the convolutional autoencoder's reconstruction of the
    # 10,000 test images in one pass peaked at 1.4 GiB).
    @staticmethod
    def _batched(fn, x, batch_size, where):
        batch_size = _checks.positive_int(batch_size, "batch_size", where)
        if len(x) <= batch_size:
            return fn(x)
        return np.concatenate([fn(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])

    def encode(self, x, batch_size=256):
        """The code ``h = encoder(x)`` (inference: no noise, nothing cached)."""
        return self._batched(lambda b: self.encoder.forward(b, training=False), self._as_input(x, "encode"),
                             batch_size, "Autoencoder.encode")

    def decode(self, h, batch_size=256):
        """The decoder's output for codes ``h`` (inference)."""
        return self._batched(lambda b: self.decoder.forward(b, training=False), h, batch_size, "Autoencoder.decode")

    def reconstruct(self, x, batch_size=256):
        """``decode(encode(x))``, batch by batch."""
        return self._batched(lambda b: self.decode(self.encode(b)), self._as_input(x, "reconstruct"),
                             batch_size, "Autoencoder.reconstruct")

    def jacobian(self, x):
        """The encoder's Jacobian per sample, ``J[n, k, i] = dh[n, k] / dx[n, i]``, shape (N, K, D).

        Computed by K backward passes through the hand-written backward of the encoder (one
        per code unit, ``dy`` = that unit's indicator), not by finite differences; for the
        contractive penalty it is what ``Contractive.jacobian_norms`` gives in closed form.
        Parameter gradients are left at zero afterwards. Works for any encoder (K = code size).
        """
        x = self._as_input(x, "jacobian")
        h = self.encoder.forward(x, training=True)
        flat = h.reshape(len(h), -1)
        jac = np.empty((len(x), flat.shape[1], x[0].size), dtype=x.dtype)
        for k in range(flat.shape[1]):
            dy = np.zeros_like(flat)
            dy[:, k] = 1
            jac[:, k] = self.encoder.backward(dy.reshape(h.shape)).reshape(len(x), -1)
        self.zero_grad()
        return jac

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
        if hasattr(self.code_penalty, "weight_grads"):  # a penalty that also depends on W directly
            for p, g in self.code_penalty.weight_grads(h):
                p.grad += g
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
        return {"type": "Autoencoder", "name": self.name, "input_shape": None if self.input_shape is None else list(self.input_shape),
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
        return f"{type(self).__name__}(name={self.name!r}, input_shape={self.input_shape}, params={self.n_params():,})"


def _walk(layer, prefix=""):
    """``(path, layer)`` for a layer and, inside Sequentials, every layer it holds ("0", "2.1", ...)."""
    yield prefix.rstrip("."), layer
    if isinstance(layer, Sequential):
        for i, inner in enumerate(layer):
            yield from _walk(inner, f"{prefix}{i}.")


def _resolve_ties(encoder, decoder):
    """Record in each TiedDense of the decoder where its source Dense sits in the encoder."""
    in_encoder = {id(layer): path for path, layer in _walk(encoder)}
    for _, layer in _walk(decoder):
        if isinstance(layer, TiedDense):
            if id(layer.source) not in in_encoder:
                raise ValueError("Autoencoder: a TiedDense in the decoder is tied to a Dense layer that is not in the encoder")
            layer.tied_to = in_encoder[id(layer.source)]


def find_layer(encoder, path: str):
    """The layer at ``path`` ("0", "2.1") inside ``encoder``, as recorded by TiedDense.tied_to."""
    for p, layer in _walk(encoder):
        if p == path:
            return layer
    raise ValueError(f"no layer at {path!r} in the encoder")


def _backward_no_dx(layer, dy):
    if isinstance(layer, Sequential) or getattr(layer, "can_skip_dx", False):
        layer.backward(dy, need_dx=False)
    else:
        layer.backward(dy)


class VAE(Autoencoder):
    r"""Variational autoencoder (Kingma and Welling, 2014): a Gaussian encoder, a Bernoulli or
    Gaussian decoder, trained on the negative evidence lower bound (ELBO).

    The encoder's output (N, 2L) holds the two heads side by side: ``mu = e[:, :L]`` and
    ``logvar = e[:, L:]`` (the two halves of one Dense layer are exactly two Dense heads, each
    with its own weights). Per batch of N samples with D values each:

        sigma = exp(logvar / 2)                                   (N, L)
        z     = mu + sigma * eps,   eps ~ N(0, I) from ``rng``     (N, L)  the reparameterization
        p     = decoder(z)                                        (N, D)
        reconstruction = (1/N) sum_n -log p(x_n | z_n), in nats:
            "bernoulli": -sum_i [x log p + (1 - x) log(1 - p)]      = D * bce(p, x)
            "gaussian":  sum_i (x - p)**2 / (2 s**2) + (D/2) log(2 pi s**2)   (s = ``sigma_x``, fixed)
        kl    = (1/N) sum_n KL(N(mu_n, diag sigma_n**2) || N(0, I))
              = (1/N) sum_n (1/2) sum_j (mu**2 + sigma**2 - 1 - logvar)       (closed form)
        total = reconstruction + kl = -ELBO, the mean over the batch of per-sample sums

    Backward, by hand through the sampling (eps held fixed):

        dz       = decoder.backward(d reconstruction / dp)                (N, L)
        dmu      = dz + mu / N                                            dz/dmu = 1
        dlogvar  = dz * eps * sigma / 2 + (sigma**2 - 1) / (2 N)          dz/dlogvar = eps sigma / 2
        encoder.backward([dmu, dlogvar])

    ``encode(x)`` returns ``mu`` (the posterior mean), ``reconstruct(x)`` decodes it (no
    sampling), :meth:`sample` decodes draws from the prior. Training and :meth:`evaluate` need
    ``rng`` (it draws eps); fit scores validation with eps from ``np.random.default_rng(0)``.
    """

    TERMS = ("total", "reconstruction", "kl")
    LIKELIHOODS = ("bernoulli", "gaussian")

    def __init__(self, encoder, decoder, *, latent: int, likelihood="bernoulli", sigma_x=None, input_shape=None,
                 name="vae"):
        where = "VAE"
        self.latent = _checks.positive_int(latent, "latent", where)
        if likelihood not in self.LIKELIHOODS:
            raise ValueError(f"VAE: likelihood must be one of {self.LIKELIHOODS}, got {likelihood!r}")
        if likelihood == "gaussian":
            sigma_x = _checks.nonneg_float(1.0 if sigma_x is None else sigma_x, "sigma_x", where)
            if sigma_x == 0:
                raise ValueError("VAE: sigma_x must be > 0")
        elif sigma_x is not None:
            raise ValueError("VAE: sigma_x is the std of the Gaussian likelihood; a Bernoulli decoder has none")
        self.likelihood, self.sigma_x = likelihood, sigma_x
        super().__init__(encoder, decoder, loss="bce" if likelihood == "bernoulli" else "mse", name=name)
        self.input_shape = None if input_shape is None else tuple(int(s) for s in input_shape)
        if self.input_shape is not None:
            heads = tuple(encoder.output_shape(self.input_shape))
            if heads != (2 * self.latent,):
                raise ValueError(f"VAE: the encoder must output (N, 2 * latent) = (N, {2 * self.latent}) "
                                 f"(mu and logvar side by side), got (N, {', '.join(map(str, heads))})")
            out = tuple(decoder.output_shape((self.latent,)))
            if out != self.input_shape:
                raise ValueError(f"VAE: the decoder maps a latent ({self.latent},) to {out}, not to the input shape {self.input_shape}")
            self.code_shape = (self.latent,)

    def active_terms(self):
        return ["reconstruction", "kl", "total"]

    @property
    def needs_rng(self):
        return True

    # -- the pieces of the objective -----------------------------------------------------
    def _heads(self, e):
        if e.ndim != 2 or e.shape[1] != 2 * self.latent:
            raise ValueError(f"VAE: the encoder returned {e.shape}, expected (N, {2 * self.latent}) (mu and logvar)")
        return e[:, :self.latent], e[:, self.latent:]

    def _reconstruction(self, p, x):
        """``(1/N) sum_n -log p(x_n | z_n)`` and its gradient with respect to p."""
        d = x[0].size
        value, dp = self._loss(p, x)  # a mean over all N * D elements
        if self.likelihood == "bernoulli":
            return value * d, dp * p.dtype.type(d)
        scale = d / (2 * self.sigma_x ** 2)
        return value * scale + 0.5 * d * math.log(2 * math.pi * self.sigma_x ** 2), dp * p.dtype.type(scale)

    @staticmethod
    def kl(mu, logvar):
        """``(1/N) sum_n (1/2) sum_j (mu**2 + exp(logvar) - 1 - logvar)`` and its gradients (dmu, dlogvar)."""
        n = mu.shape[0]
        var = np.exp(logvar)
        value = 0.5 * float((mu * mu + var - 1 - logvar).sum(dtype=np.float64)) / n
        return value, mu / mu.dtype.type(n), (var - 1) / mu.dtype.type(2 * n)

    @staticmethod
    def _sample(mu, logvar, rng):
        """The reparameterization ``z = mu + sigma * eps``, ``sigma = exp(logvar / 2)``, eps ~ N(0, I)
        drawn from ``rng``; returns ``(z, eps, sigma)``, all (N, L) (``_through_sampling`` is its backward)."""
        if rng is None:
            raise ValueError("VAE: needs rng= (a np.random.Generator) to draw eps for z = mu + sigma * eps")
        eps = rng.standard_normal(mu.shape, dtype=mu.dtype)
        sigma = np.exp(logvar * logvar.dtype.type(0.5))
        return mu + sigma * eps, eps, sigma

    # -- the objective ----------------------------------------------------------------------
    def loss_and_grads(self, x, rng=None) -> dict:
        """-ELBO's terms on the batch ``x`` (``total``, ``reconstruction``, ``kl``) and dL/dp in each ``p.grad``."""
        x = self._as_input(x, "loss_and_grads")
        self.zero_grad()
        mu, logvar = self._heads(self.encoder.forward(x, training=True))
        z, eps, sigma = self._sample(mu, logvar, rng)
        p = self.decoder.forward(z, training=True)
        rec, dp = self._reconstruction(p, x)
        kl, dmu_kl, dlogvar_kl = self.kl(mu, logvar)
        dmu, dlogvar = self._through_sampling(self.decoder.backward(dp), eps, sigma)
        _backward_no_dx(self.encoder, np.concatenate([dmu + dmu_kl, dlogvar + dlogvar_kl], axis=1))
        return {"total": rec + kl, "reconstruction": rec, "kl": kl}

    @staticmethod
    def _through_sampling(dz, eps, sigma):
        """The backward of ``z = mu + exp(logvar / 2) * eps`` (eps fixed), all arrays (N, L):
        ``dmu = dz`` and ``dlogvar = dz * eps * sigma / 2`` (as d sigma / d logvar = sigma / 2)."""
        return dz, dz * eps * sigma * dz.dtype.type(0.5)

    def evaluate(self, x, *, batch_size: int = 256, rng=None) -> dict:
        """-ELBO's terms on ``x`` (one eps draw per sample from ``rng``), batch-size-weighted means."""
        x = self._as_input(x, "evaluate")
        if rng is None:
            raise ValueError("VAE.evaluate: needs rng= (a np.random.Generator) to draw eps")
        sums = dict.fromkeys(self.TERMS, 0.0)
        for start in range(0, len(x), batch_size):
            xb = x[start:start + batch_size]
            mu, logvar = self._heads(self.encoder.forward(xb, training=False))
            z = self._sample(mu, logvar, rng)[0]
            sums["reconstruction"] += self._reconstruction(self.decoder.forward(z, training=False), xb)[0] * len(xb)
            sums["kl"] += self.kl(mu, logvar)[0] * len(xb)
        out = {k: v / len(x) for k, v in sums.items()}
        out["total"] = out["reconstruction"] + out["kl"]
        return out

    def kink_state(self, x, rng=None):
        x = self._as_input(x, "kink_state")
        e = self.encoder.forward(x, training=False)
        mu, logvar = self._heads(e)
        z = self._sample(mu, logvar, rng)[0]
        parts = [self.encoder.kink_state(x), self.decoder.kink_state(z)]
        return np.concatenate([np.ravel(p) for p in parts if p is not None] or [np.zeros(0)])

    # -- inference ----------------------------------------------------------------------------
    def encode_distribution(self, x, batch_size=256):
        """``(mu, logvar)`` of q(z | x), each (N, L)."""
        mu, logvar = self._heads(Autoencoder.encode(self, x, batch_size))  # the encoder's output, batch by batch
        return mu.copy(), logvar.copy()

    def encode(self, x, batch_size=256):
        """The posterior mean ``mu`` (N, L)."""
        return self.encode_distribution(x, batch_size)[0]

    def sample(self, n: int, rng):
        """``n`` new samples: the decoder's output (the Bernoulli means) at z ~ N(0, I) drawn from ``rng``."""
        n = _checks.positive_int(n, "n", "VAE.sample")
        rng = _checks.check_rng(rng, "VAE.sample")
        return self.decode(rng.standard_normal((n, self.latent), dtype=self.dtype))

    def jacobian(self, x):
        raise NotImplementedError("VAE.jacobian: the encoder's output is (mu, logvar), not a code")

    def config(self) -> dict:
        return {"type": "VAE", "name": self.name, "input_shape": None if self.input_shape is None else list(self.input_shape),
                "latent": self.latent, "likelihood": self.likelihood, "sigma_x": self.sigma_x,
                "encoder": self.encoder.config(), "decoder": self.decoder.config()}

    def summary(self) -> str:
        if self.input_shape is None:
            raise ValueError("VAE.summary: needs input_shape")
        extra = f", sigma_x={self.sigma_x}" if self.sigma_x is not None else ""
        return (f"{self.name}: VAE, latent={self.latent}, likelihood={self.likelihood}{extra}\n"
                f"encoder (mu | logvar)\n{self.encoder.summary(self.input_shape)}\n"
                f"decoder\n{self.decoder.summary(self.code_shape)}")


# -- the families --------------------------------------------------------------------------------
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


def tied(code: int = 64, **kwargs) -> Autoencoder:
    """:func:`ordinary` with tied weights (``ordinary(code, tied=True)``)."""
    return ordinary(code, tied=True, **kwargs)


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


def contractive(code: int = 64, lam: float = None, *, activation="relu", rng=None, dtype=np.float32, loss="mse",
                name="contractive") -> Autoencoder:
    """784 -> code (``activation``) -> 784 (sigmoid) with the contractive penalty ``Contractive(lam)``:
    ``lam * mean_n ||J(x_n)||_F**2``, the squared Frobenius norm of the encoder's Jacobian in
    closed form (Rifai et al., 2011).

    The default ReLU code makes it the article's ordinary autoencoder plus the penalty (same
    initial weights for the same rng), so the penalty's effect is seen alone; Rifai's sigmoid
    code is ``activation="sigmoid"`` ("tanh" also works). Default ``lam``: CONTRACTIVE_LAM.
    """
    from .activations import Tanh
    from .penalties import Contractive

    acts = {"sigmoid": Sigmoid, "relu": ReLU, "tanh": Tanh}
    if activation not in acts:
        raise ValueError(f"{name}: activation must be one of {sorted(acts)}, got {activation!r}")
    rng = _init.default_rng(rng, name)
    code = _checks.positive_int(code, "code", name)
    return Autoencoder(_dense_stack((784, code), rng, dtype, acts[activation]), _dense_stack((code, 784), rng, dtype, Sigmoid),
                       loss=loss, code_penalty=Contractive(CONTRACTIVE_LAM if lam is None else lam),
                       input_shape=MNIST_FLAT, name=name)


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
# CONTRACTIVE_LAM: on full MNIST, 3 epochs, ReLU code 64 (lam: test MSE, mean ||J||_F^2 on the
# test set): 0: 0.0091, 659; 1e-5: 0.0098, 233; 3e-5: 0.0112, 116; 1e-3: 0.0239, 5.4. 3e-5 costs
# about what the sparse default does in MSE and cuts the Jacobian's norm about six-fold.

CONTRACTIVE_LAM = 3e-5

FAMILIES = {"ordinary": ordinary, "multilayer": multilayer, "convolutional": convolutional,
            "sparse": sparse, "sparse_kl": sparse_kl, "denoising": denoising,
            "contractive": contractive, "tied": tied, "vae": vae}
