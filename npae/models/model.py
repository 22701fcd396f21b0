"""What every npae model has (:class:`Model`): parameters and buffers by name, their generators,
``astype``, ``as_batch`` (the input checks), ``encode`` / ``decode`` / ``reconstruct`` in batches, and
the registry ``MODELS`` that a saved model's description may name. The objectives are the
subclasses': :class:`npae.models.autoencoders.Autoencoder` and :class:`npae.models.vae.VAE`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence

import numpy as np

from .. import _checks
from ..core import Layer, Param
from ..registry import Registry

#: what ``noise=`` takes: a corruption ``(x, rng) -> noisy x`` (npae.objectives.noise's classes; only those
#: can be saved)
NoiseFn = Callable[[np.ndarray, np.random.Generator], np.ndarray]

#: every model class, by name (what a saved model's description may name)
MODELS = Registry("model")




class Model:
    """An encoder and a decoder, and what training, saving and gradient checks ask of a model.

    The contract (:func:`npae.train.fit`, :mod:`npae.files.io` and :func:`npae.checks.gradcheck.check_model`
    use nothing else): ``TERMS`` and ``active_terms()``, the names of the objective's terms;
    ``needs_rng``; ``loss_and_grads(x, rng)``, the terms and every ``p.grad``;
    ``objective(x, rng)``, the total by training-mode forward passes alone; ``evaluate(x, ...)``,
    the terms at inference; ``kink_state(x, rng)``; ``as_batch(x, where)``, the input checked and
    shaped; ``named_params()``, ``named_buffers()``, ``generators()``; ``config()`` and
    ``from_config(cfg, context)``.

    Inference (``encode``, ``decode``, ``reconstruct``) goes through the input in batches of
    ``batch_size`` samples (default 256) and concatenates the results: each sample's output
    is computed on its own (up to the order BLAS adds in for another batch size), so the
    batching changes only the peak memory.
    """

    TERMS: tuple[str, ...] = ()
    #: the corruption of the input during training (a denoising autoencoder's), or None
    noise: NoiseFn | None = None

    def __init__(self, encoder: Layer, decoder: Layer, *, input_shape: Sequence[int] | None = None,
                 name: str = "model"):
        for what, layer in (("encoder", encoder), ("decoder", decoder)):
            if not isinstance(layer, Layer):
                raise TypeError(f"{type(self).__name__}: {what} must be an npae Layer (e.g. a Sequential), "
                                f"got {type(layer).__name__}")
        self.encoder, self.decoder = encoder, decoder
        self.input_shape = None if input_shape is None else tuple(int(s) for s in input_shape)
        self.name = name
        #: what it was trained on, as recorded by the command line (Dataset.identity()), or None
        self.dataset: dict | None = None

    # -- parameters and state ---------------------------------------------------------------
    def named_params(self) -> Iterator[tuple[str, Param]]:
        yield from self.encoder.named_params("encoder.")
        yield from self.decoder.named_params("decoder.")

    @property
    def params(self) -> dict[str, Param]:
        return dict(self.named_params())

    def named_buffers(self) -> Iterator[tuple[str, np.ndarray]]:
        yield from self.encoder.named_buffers("encoder.")
        yield from self.decoder.named_buffers("decoder.")

    def generators(self) -> list[np.random.Generator]:
        return self.encoder.generators() + self.decoder.generators()

    def zero_grad(self) -> None:
        self.encoder.zero_grad()
        self.decoder.zero_grad()

    def astype(self, dtype: type | np.dtype | str) -> Model:
        self.encoder.astype(dtype)
        self.decoder.astype(dtype)
        return self

    @property
    def dtype(self) -> np.dtype:
        return next(p.dtype for _, p in self.named_params())

    def n_params(self) -> int:
        return sum(p.size for _, p in self.named_params())

    def active_terms(self) -> list[str]:
        """The terms worth printing, in the order fit prints them."""
        return [t for t in self.TERMS if t != "total"] + ["total"]

    @property
    def needs_rng(self) -> bool:
        """Whether the objective draws random numbers, so that evaluate needs ``rng=``."""
        return False

    # -- inference ---------------------------------------------------------------------------
    def as_batch(self, x: np.ndarray, where: str, *, convert: bool = False) -> np.ndarray:
        """``x`` as a batch of ``input_shape`` samples, or a clear ValueError; shapes are never reinterpreted.

        ``x`` reaches the model only if each sample has ``input_shape``, or if it is the flat
        vector of an image model's values ((N, C*H*W) for input_shape (C, H, W)). Anything else
        (an image given to a flat model, a channels-last array, another size) is refused with
        both shapes named and the likely fix. ``convert=True`` (inference) converts another float
        dtype to the model's once; training stays strict (fit refuses it).
        """
        cls = type(self).__name__
        x = _checks.as_float_array(x, f"{cls}.{where}", "x")
        if x.ndim == 0:
            raise ValueError(f"{cls}.{where}: expected a batch of samples, shape (N, ...), got a scalar")
        if convert and x.dtype != self.dtype:
            x = x.astype(self.dtype)
        shape = self.input_shape
        if shape is None or x.shape[1:] == shape:
            return x
        if len(shape) > 1 and x.ndim == 2 and x.shape[1] == math.prod(shape):
            return x.reshape((len(x),) + shape)  # the flat vector of an image model's values
        hint = ""
        if len(shape) == 3 and x.ndim == 4 and x.shape[1:] == shape[1:] + shape[:1]:
            hint = "; it looks channels-last (N, H, W, C): pass x.transpose(0, 3, 1, 2)"
        elif len(shape) == 1 and x.ndim > 2 and math.prod(x.shape[1:]) == shape[0]:
            hint = "; this model takes flat vectors: pass x.reshape(len(x), -1)"
        raise ValueError(f"{cls}.{where}: expected x of shape {_checks.fmt_shape((None,) + shape)}"
                         + (f" (or its flat form (N, {math.prod(shape)}))" if len(shape) > 1 else "")
                         + f", got {x.shape}{hint}")

    @staticmethod
    def _batched(fn: Callable, x: np.ndarray, batch_size: int, where: str) -> np.ndarray:
        batch_size = _checks.positive_int(batch_size, "batch_size", where)
        if len(x) <= batch_size:
            return fn(x)
        return np.concatenate([fn(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])

    def encode(self, x: np.ndarray, batch_size: int = 256, *, flat: bool = False) -> np.ndarray:
        """The code ``h = encoder(x)`` (inference: no noise, nothing cached); with ``flat=True``
        as (N, code size) whatever its layer shape (a conv code is (N, C, H, W))."""
        h = self._batched(lambda b: self.encoder.forward(b, training=False), self.as_batch(x, "encode", convert=True),
                          batch_size, f"{type(self).__name__}.encode")
        return h.reshape(len(h), -1) if flat else h

    def decode(self, h: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """The decoder's output for codes ``h`` (inference); a flat (N, code size) code is taken too."""
        h = _checks.as_float_array(h, f"{type(self).__name__}.decode", "h")
        if h.dtype != self.dtype:
            h = h.astype(self.dtype)
        code_shape = getattr(self, "code_shape", None)
        if code_shape is not None and len(code_shape) > 1 and h.ndim == 2 and h.shape[1] == math.prod(code_shape):
            h = h.reshape((len(h),) + code_shape)
        return self._batched(lambda b: self.decoder.forward(b, training=False), h, batch_size,
                             f"{type(self).__name__}.decode")

    def reconstruct(self, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """``decode(encode(x))``, batch by batch."""
        return self._batched(lambda b: self.decode(self.encode(b)), self.as_batch(x, "reconstruct", convert=True),
                             batch_size, f"{type(self).__name__}.reconstruct")

    # -- description ------------------------------------------------------------------------
    def _check_shapes(self, code_shape: tuple) -> None:
        """The decoder must map ``code_shape`` back to the input shape; sets ``code_shape``."""
        out = tuple(self.decoder.output_shape(code_shape))
        if out != self.input_shape:
            raise ValueError(f"{type(self).__name__}: the decoder maps the code {tuple(code_shape)} to {out}, "
                             f"not to the input shape {self.input_shape}")
        self.code_shape = tuple(code_shape)

    def _summary(self, head: str, encoder_title: str = "encoder") -> str:
        if self.input_shape is None:
            raise ValueError(f"{type(self).__name__}.summary: needs input_shape")
        return (f"{self.name}: {head}\n{encoder_title}\n{self.encoder.summary(self.input_shape)}\n"
                f"decoder\n{self.decoder.summary(self.code_shape)}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, input_shape={self.input_shape}, params={self.n_params():,})"


def _dataset_record(record: object) -> dict | None:
    """A description's record of the data a model was trained on, checked to be a flat JSON object."""
    if record is None:
        return None
    plain = (str, int, float, list, type(None))
    if not isinstance(record, dict) or not all(isinstance(v, plain) for v in record.values()):
        raise ValueError(f"dataset must be a JSON object of plain values, got {type(record).__name__}")
    return record
