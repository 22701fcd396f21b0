"""The variational autoencoder (Kingma and Welling, 2014): its objective, the negative ELBO,
and the backward pass through the sampling, written by hand."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .. import _checks
from ..core import Layer
from ..objectives import losses
from .autoencoders import MODELS, Model, _backward_no_dx, _dataset_record


@MODELS.register
class VAE(Model):
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

    def __init__(self, encoder: Layer, decoder: Layer, *, latent: int, likelihood: str = "bernoulli",
                 sigma_x: float | None = None, input_shape: Sequence[int] | None = None, name: str = "vae"):
        super().__init__(encoder, decoder, input_shape=input_shape, name=name)
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
        self.loss = "bce" if likelihood == "bernoulli" else "mse"  # the per-element part of -log p(x|z)
        self._loss = losses.get(self.loss)
        if self.input_shape is not None:
            heads = tuple(encoder.output_shape(self.input_shape))
            if heads != (2 * self.latent,):
                raise ValueError(f"VAE: the encoder must output (N, 2 * latent) = (N, {2 * self.latent}) "
                                 f"(mu and logvar side by side), got (N, {', '.join(map(str, heads))})")
            self._check_shapes((self.latent,))

    @property
    def needs_rng(self) -> bool:
        return True

    # -- the pieces of the objective -----------------------------------------------------
    def _heads(self, e: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if e.ndim != 2 or e.shape[1] != 2 * self.latent:
            raise ValueError(f"VAE: the encoder returned {e.shape}, expected (N, {2 * self.latent}) (mu and logvar)")
        return e[:, :self.latent], e[:, self.latent:]

    def _reconstruction(self, p: np.ndarray, x: np.ndarray) -> tuple[float, np.ndarray]:
        """``(1/N) sum_n -log p(x_n | z_n)`` and its gradient with respect to p."""
        d = x[0].size
        value, dp = self._loss(p, x)  # a mean over all N * D elements
        if self.likelihood == "bernoulli":
            return value * d, dp * p.dtype.type(d)
        scale = d / (2 * self.sigma_x ** 2)
        return value * scale + 0.5 * d * math.log(2 * math.pi * self.sigma_x ** 2), dp * p.dtype.type(scale)

    @staticmethod
    def kl(mu: np.ndarray, logvar: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """``(1/N) sum_n (1/2) sum_j (mu**2 + exp(logvar) - 1 - logvar)`` and its gradients (dmu, dlogvar)."""
        n = mu.shape[0]
        var = np.exp(logvar)
        value = 0.5 * float((mu * mu + var - 1 - logvar).sum(dtype=np.float64)) / n
        return value, mu / mu.dtype.type(n), (var - 1) / mu.dtype.type(2 * n)

    @staticmethod
    def _sample(mu: np.ndarray, logvar: np.ndarray,
                rng: np.random.Generator | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The reparameterization ``z = mu + sigma * eps``, ``sigma = exp(logvar / 2)``, eps ~ N(0, I)
        drawn from ``rng``; returns ``(z, eps, sigma)``, all (N, L) (``_through_sampling`` is its backward)."""
        if rng is None:
            raise ValueError("VAE: needs rng= (a np.random.Generator) to draw eps for z = mu + sigma * eps")
        eps = rng.standard_normal(mu.shape, dtype=mu.dtype)
        sigma = np.exp(logvar * logvar.dtype.type(0.5))
        return mu + sigma * eps, eps, sigma

    # -- the objective ----------------------------------------------------------------------
    def _forward(self, x: np.ndarray, rng: np.random.Generator | None, training: bool) -> tuple:
        """The objective's forward pass: ``(rec, dp, kl, dmu_kl, dlogvar_kl, eps, sigma)``."""
        mu, logvar = self._heads(self.encoder.forward(x, training))
        z, eps, sigma = self._sample(mu, logvar, rng)
        p = self.decoder.forward(z, training)
        rec, dp = self._reconstruction(p, x)
        kl, dmu_kl, dlogvar_kl = self.kl(mu, logvar)
        return rec, dp, kl, dmu_kl, dlogvar_kl, eps, sigma

    def loss_and_grads(self, x: np.ndarray, rng: np.random.Generator | None = None) -> dict:
        """-ELBO's terms on the batch ``x`` (``total``, ``reconstruction``, ``kl``) and dL/dp in each ``p.grad``."""
        x = self.as_batch(x, "loss_and_grads")
        self.zero_grad()
        rec, dp, kl, dmu_kl, dlogvar_kl, eps, sigma = self._forward(x, rng, training=True)
        dmu, dlogvar = self._through_sampling(self.decoder.backward(dp), eps, sigma)
        _backward_no_dx(self.encoder, np.concatenate([dmu + dmu_kl, dlogvar + dlogvar_kl], axis=1))
        return {"total": rec + kl, "reconstruction": rec, "kl": kl}

    def objective(self, x: np.ndarray, rng: np.random.Generator | None = None) -> float:
        """-ELBO by training-mode forward passes alone, eps drawn from ``rng`` (for gradient checks)."""
        rec, _, kl, *_ = self._forward(self.as_batch(x, "objective"), rng, training=True)
        return rec + kl

    @staticmethod
    def _through_sampling(dz: np.ndarray, eps: np.ndarray, sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The backward of ``z = mu + exp(logvar / 2) * eps`` (eps fixed), all arrays (N, L):
        ``dmu = dz`` and ``dlogvar = dz * eps * sigma / 2`` (as d sigma / d logvar = sigma / 2)."""
        return dz, dz * eps * sigma * dz.dtype.type(0.5)

    def evaluate(self, x: np.ndarray, *, batch_size: int = 256, rng: np.random.Generator | None = None) -> dict:
        """-ELBO's terms on ``x`` (one eps draw per sample from ``rng``), batch-size-weighted means."""
        x = self.as_batch(x, "evaluate")
        if rng is None:
            raise ValueError("VAE.evaluate: needs rng= (a np.random.Generator) to draw eps")
        sums = dict.fromkeys(self.TERMS, 0.0)
        for start in range(0, len(x), batch_size):
            xb = x[start:start + batch_size]
            rec, _, kl, *_ = self._forward(xb, rng, training=False)
            sums["reconstruction"] += rec * len(xb)
            sums["kl"] += kl * len(xb)
        out = {k: v / len(x) for k, v in sums.items()}
        out["total"] = out["reconstruction"] + out["kl"]
        return out

    def kink_state(self, x: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        x = self.as_batch(x, "kink_state")
        e = self.encoder.forward(x, training=True)
        mu, logvar = self._heads(e)
        z = self._sample(mu, logvar, rng)[0]
        parts = [self.encoder.kink_state(x), self.decoder.kink_state(z)]
        return np.concatenate([np.ravel(p) for p in parts if p is not None] or [np.zeros(0)])

    # -- inference ----------------------------------------------------------------------------
    def encode_distribution(self, x: np.ndarray, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
        """``(mu, logvar)`` of q(z | x), each (N, L)."""
        mu, logvar = self._heads(Model.encode(self, x, batch_size))  # the encoder's output, batch by batch
        return mu.copy(), logvar.copy()

    def encode(self, x: np.ndarray, batch_size: int = 256, *, flat: bool = False) -> np.ndarray:
        """The posterior mean ``mu`` (N, L) (already flat)."""
        return self.encode_distribution(x, batch_size)[0]

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` new samples: the decoder's output (the Bernoulli means) at z ~ N(0, I) drawn from ``rng``."""
        n = _checks.positive_int(n, "n", "VAE.sample")
        rng = _checks.check_rng(rng, "VAE.sample")
        return self.decode(rng.standard_normal((n, self.latent), dtype=self.dtype))

    def config(self) -> dict:
        return {"type": "VAE", "name": self.name, "dataset": self.dataset,
                "input_shape": None if self.input_shape is None else list(self.input_shape),
                "latent": self.latent, "likelihood": self.likelihood, "sigma_x": self.sigma_x,
                "encoder": self.encoder.config(), "decoder": self.decoder.config()}

    @classmethod
    def from_config(cls, cfg: dict, context: object) -> VAE:
        model = cls(context.build(cfg.get("encoder")), context.build(cfg.get("decoder")), latent=cfg.get("latent"),
                    likelihood=cfg.get("likelihood"), sigma_x=cfg.get("sigma_x"), input_shape=cfg.get("input_shape"),
                    name=str(cfg.get("name", "vae")))
        model.dataset = _dataset_record(cfg.get("dataset"))
        return model

    def summary(self) -> str:
        extra = f", sigma_x={self.sigma_x}" if self.sigma_x is not None else ""
        return self._summary(f"VAE, latent={self.latent}, likelihood={self.likelihood}{extra}", "encoder (mu | logvar)")
