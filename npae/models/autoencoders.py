"""The models: what every autoencoder has (:class:`Model`) and the autoencoder's objective
(:class:`Autoencoder`). The variational autoencoder is :mod:`npae.models.vae`; the article's
models and the others are built in :mod:`npae.models.families`.

The objective, per mini-batch ``x`` of N samples::

    x_in  = noise(x, rng)            (denoising only; otherwise x_in = x)
    h     = encoder(x_in)            the code
    x_hat = decoder(h)
    L     = loss(x_hat, x)           reconstruction, against the CLEAN x (mean over all elements)
          + P(h)                     code penalty (its batch normalization: npae.objectives.penalties)
          + WD(weights)              weight decay, (lam / 2) * sum ||W||^2

and the backward pass follows it in reverse: ``dx_hat = dL/dx_hat``; ``dh = decoder.backward(dx_hat)``;
the penalty's gradient is added **at the code**, ``dh += dP/dh``; ``encoder.backward(dh)``; a
penalty that also depends on the encoder's weights directly (Contractive) adds that part,
``W.grad += dP/dW|direct``; then ``W.grad += lam * W`` for the decayed weights.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np

from ..core import Layer, Sequential
from ..nn.layers import TiedDense
from ..objectives import losses
from ..objectives.noise import NOISES
from ..objectives.penalties import PENALTIES, Penalty, WeightDecay
from .model import MODELS, Model, NoiseFn, _dataset_record


def find_layer(encoder: Layer, path: str) -> Layer:
    """The layer at ``path`` ("0", "2.1") inside ``encoder``, as recorded by TiedDense.tied_to."""
    if path == "":
        return encoder
    if isinstance(encoder, Sequential):
        for p, layer in encoder.walk():
            if p == path:
                return layer
    raise ValueError(f"no layer at {path!r} in the encoder")


def _resolve_ties(encoder: Layer, decoder: Layer) -> None:
    """Record in each TiedDense of the decoder where its source Dense sits in the encoder."""
    def everything(layer: Layer) -> Iterator[tuple[str, Layer]]:
        yield "", layer
        if isinstance(layer, Sequential):
            yield from layer.walk()

    in_encoder = {id(layer): path for path, layer in everything(encoder)}
    for _, layer in everything(decoder):
        if isinstance(layer, TiedDense):
            if id(layer.source) not in in_encoder:
                raise ValueError("Autoencoder: a TiedDense in the decoder is tied to a Dense layer "
                                 "that is not in the encoder")
            layer.tied_to = in_encoder[id(layer.source)]


def _backward_no_dx(layer: Layer, dy: np.ndarray) -> None:
    """The encoder's backward, without the input gradient nobody uses (where the layer can skip it)."""
    if layer.can_skip_dx:
        layer.backward(dy, need_dx=False)
    else:
        layer.backward(dy)


@MODELS.register
class Autoencoder(Model):
    """``encoder`` and ``decoder`` (Layers, usually Sequential) trained to reproduce their input.

    Parameters
    ----------
    encoder, decoder : Layer
    loss : "mse" (default) or "bce"
    code_penalty : a :class:`npae.objectives.penalties.Penalty` (L1Activity, KLSparsity, Contractive) or None
    weight_decay : WeightDecay or None
    noise : GaussianNoise, MaskingNoise, SaltAndPepper or None (denoising)
    input_shape : per-sample shape the encoder takes, e.g. (784,) or (1, 28, 28). Inputs with
        the same number of values per sample are reshaped to it, so flat (N, 784) MNIST and
        (N, 1, 28, 28) images both work; outputs have ``input_shape``.
    """

    #: the terms :meth:`loss_and_grads` and :meth:`evaluate` return (and fit records per epoch)
    TERMS = ("total", "reconstruction", "code_penalty", "weight_decay")

    def __init__(self, encoder: Layer, decoder: Layer, *, loss: str | Callable[..., tuple[float, np.ndarray]] = "mse",
                 code_penalty: Penalty | None = None, weight_decay: WeightDecay | None = None,
                 noise: NoiseFn | None = None, input_shape: Sequence[int] | None = None, name: str = "autoencoder"):
        super().__init__(encoder, decoder, input_shape=input_shape, name=name)
        if isinstance(loss, str) and loss not in losses.LOSSES:
            raise ValueError(f"Autoencoder: loss must be one of {sorted(losses.LOSSES)}, got {loss!r}")
        if code_penalty is not None and not isinstance(code_penalty, Penalty):
            raise TypeError("Autoencoder: code_penalty must be an npae.objectives.penalties.Penalty, "
                            f"got {type(code_penalty).__name__}")
        if weight_decay is not None and not isinstance(weight_decay, WeightDecay):
            raise TypeError("Autoencoder: weight_decay must be an npae.objectives.penalties.WeightDecay, "
                            f"got {type(weight_decay).__name__}")
        self.loss = loss
        self._loss = losses.get(loss)
        # a penalty of the encoder itself (Contractive) is bound to a copy of it; others stay as they are
        self.code_penalty = None if code_penalty is None else code_penalty.bind(encoder)
        self.weight_decay, self.noise = weight_decay, noise
        _resolve_ties(encoder, decoder)
        if self.input_shape is not None:
            self._check_shapes(encoder.output_shape(self.input_shape))

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

    def jacobian(self, x: np.ndarray) -> np.ndarray:
        """The encoder's Jacobian per sample, ``J[n, k, i] = dh[n, k] / dx[n, i]``, shape (N, K, D).

        Computed by K backward passes through the hand-written backward of the encoder (one
        per code unit, ``dy`` = that unit's indicator), not by finite differences; for the
        contractive penalty it is what ``Contractive.jacobian_norms`` gives in closed form.
        Parameter gradients are left at zero afterwards. Works for any encoder (K = code size).
        """
        x = self.as_batch(x, "jacobian")
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
    def _forward(self, x: np.ndarray, rng: np.random.Generator | None, training: bool) -> tuple:
        """The objective's forward pass: ``(h, x_hat, rec, dx_hat, pen, dpen)``."""
        if self.noise is not None and rng is None:
            raise ValueError("Autoencoder: a denoising model needs rng= to draw its noise")
        x_in = self.noise(x, rng) if self.noise is not None else x
        h = self.encoder.forward(x_in, training)
        x_hat = self.decoder.forward(h, training)
        rec, dx_hat = self._loss(x_hat, x)
        pen, dpen = self.code_penalty(h) if self.code_penalty is not None else (0.0, None)
        return h, x_hat, rec, dx_hat, pen, dpen

    def _weight_decay(self) -> tuple[float, dict]:
        return self.weight_decay(self.named_params()) if self.weight_decay is not None else (0.0, {})

    def loss_and_grads(self, x: np.ndarray, rng: np.random.Generator | None = None) -> dict:
        """Every term of the objective on the batch ``x``, and its gradient in each ``p.grad``.

        Zeroes the gradients first, so afterwards each ``p.grad`` is exactly dL/dp for this
        batch. ``rng`` draws the noise of a denoising model (required then). Returns a dict
        with ``total``, ``reconstruction``, ``code_penalty`` and ``weight_decay`` (floats).
        """
        x = self.as_batch(x, "loss_and_grads")
        self.zero_grad()
        h, _, rec, dx_hat, pen, dpen = self._forward(x, rng, training=True)
        dh = self.decoder.backward(dx_hat)
        if dpen is not None:
            dh = dh + dpen
        _backward_no_dx(self.encoder, dh)
        if self.code_penalty is not None:
            for p, g in self.code_penalty.weight_grads(h):  # a penalty that also depends on W directly
                p.grad += g
        wd, grads = self._weight_decay()
        params = self.params
        for name, g in grads.items():
            params[name].grad += g
        return {"total": rec + pen + wd, "reconstruction": rec, "code_penalty": pen, "weight_decay": wd}

    def objective(self, x: np.ndarray, rng: np.random.Generator | None = None) -> float:
        """The total of :meth:`loss_and_grads` by training-mode forward passes alone (for gradient checks)."""
        x = self.as_batch(x, "objective")
        _, _, rec, _, pen, _ = self._forward(x, rng, training=True)
        return rec + pen + self._weight_decay()[0]

    def kink_state(self, x: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        """Where the objective's kinks (ReLU signs, max-pool argmaxes, |h| signs) lie, for gradcheck."""
        x = self.as_batch(x, "kink_state")
        x_in = self.noise(x, rng) if self.noise is not None else x
        parts = [self.encoder.kink_state(x_in)]
        h = self.encoder.forward(x_in, training=True)
        parts.append(self.decoder.kink_state(h))
        if self.code_penalty is not None:
            parts.append(self.code_penalty.kink_state(h))
        return np.concatenate([np.ravel(p) for p in parts if p is not None] or [np.zeros(0)])

    def evaluate(self, x: np.ndarray, *, batch_size: int = 256, rng: np.random.Generator | None = None) -> dict:
        """The terms of the objective on ``x`` without training (no caching, no gradients).

        Batch terms are averaged with weights equal to the batch sizes, so ``reconstruction`` is
        the mean over all elements of ``x`` whatever ``batch_size`` is. A denoising model is
        evaluated on noisy inputs drawn from ``rng`` (required then) against the clean ``x``.
        """
        x = self.as_batch(x, "evaluate")
        if self.noise is not None and rng is None:
            raise ValueError("Autoencoder.evaluate: a denoising model needs rng= to draw the noisy inputs")
        sums = dict.fromkeys(self.TERMS, 0.0)
        for start in range(0, len(x), batch_size):
            xb = x[start:start + batch_size]
            _, _, rec, _, pen, _ = self._forward(xb, rng, training=False)
            sums["reconstruction"] += rec * len(xb)
            sums["code_penalty"] += pen * len(xb)
        out = {k: v / len(x) for k, v in sums.items()}
        out["weight_decay"] = self._weight_decay()[0]
        out["total"] = out["reconstruction"] + out["code_penalty"] + out["weight_decay"]
        return out

    # -- description ------------------------------------------------------------------------
    def config(self) -> dict:
        def cfg(obj):
            return None if obj is None else obj.config()

        if not isinstance(self.loss, str):
            raise ValueError("Autoencoder.config: a custom loss function cannot be saved; use 'mse' or 'bce'")
        return {"type": "Autoencoder", "name": self.name, "dataset": self.dataset,
                "input_shape": None if self.input_shape is None else list(self.input_shape),
                "encoder": self.encoder.config(), "decoder": self.decoder.config(), "loss": self.loss,
                "code_penalty": cfg(self.code_penalty), "weight_decay": cfg(self.weight_decay),
                "noise": cfg(self.noise)}

    @classmethod
    def from_config(cls, cfg: dict, context: object) -> Autoencoder:
        """The model ``config()`` describes; ``context`` builds its layers (and re-ties a TiedDense)."""
        def part(registry, key):
            c = cfg.get(key)
            return None if c is None else context.build_from(registry, c)

        encoder = context.build(cfg.get("encoder"))
        decoder = context.with_encoder(encoder).build(cfg.get("decoder"))
        model = cls(encoder, decoder, loss=cfg.get("loss", "mse"), code_penalty=part(PENALTIES, "code_penalty"),
                    weight_decay=part(PENALTIES, "weight_decay"), noise=part(NOISES, "noise"),
                    input_shape=cfg.get("input_shape"), name=str(cfg.get("name", "autoencoder")))
        model.dataset = _dataset_record(cfg.get("dataset"))
        return model

    def summary(self) -> str:
        parts = (("code_penalty", self.code_penalty), ("weight_decay", self.weight_decay), ("noise", self.noise))
        extras = [f"loss={self.loss}"] + [f"{k}={v!r}" for k, v in parts if v is not None]
        return self._summary(", ".join(extras))
