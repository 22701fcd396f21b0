"""The training loop: shuffled mini-batches, one optimizer step per batch, a history of
every term of the objective per epoch, progress, checkpoints and exact resume.

``fit(model, x, ...)`` trains any model with the protocol of :class:`npae.models.autoencoders.Model`
(``loss_and_grads``, ``evaluate``, ``TERMS``, ``as_batch``, ``named_params``).

Reproducibility: everything random in a run (the shuffling and the noise of a
denoising model) is drawn from the one ``rng`` given to ``fit``. A checkpoint stores the
weights, the optimizer state, the generator's state and the history after each epoch;
resuming restores all four, so an interrupted and resumed run ends with **bit for bit**
the same weights as an uninterrupted one.

Validation of a denoising model uses noisy inputs drawn from ``np.random.default_rng(0)``
afresh each epoch (a generator of its own: the training stream is untouched), so every
epoch is scored on the same noisy validation set.
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from typing import TYPE_CHECKING, TextIO

import numpy as np

from . import _checks
from .files import io
from .optim import Adam, Optimizer

if TYPE_CHECKING:
    from .models.autoencoders import Model

VALIDATION_SEED = 0


class History:
    """One row per completed epoch: ``epoch``, ``train_<term>``, ``val_<term>``, ``seconds``,
    ``samples_per_s``. ``history["train_reconstruction"]`` is a column; ``stop_reason`` says
    why training ended early (None when it ran all epochs)."""

    def __init__(self, rows: list | None = None, stop_reason: str | None = None, warnings: list | None = None):
        self.rows: list[dict] = list(rows or [])
        self.stop_reason = stop_reason
        self.warnings: list[str] = list(warnings or [])  # training that stalled, said once

    def append(self, row: dict) -> None:
        self.rows.append(dict(row))

    def __getitem__(self, key: str) -> list:
        if not self.rows or key not in self.rows[-1]:
            raise KeyError(f"no column {key!r}; columns: {sorted(self.rows[-1]) if self.rows else []}")
        return [r.get(key) for r in self.rows]

    def __len__(self) -> int:
        return len(self.rows)

    # The saved form, in history.json and in checkpoints:
    # {"rows": [{column: value}], "stop_reason": str | None, "warnings": [str]}
    def to_dict(self) -> dict:
        return {"rows": self.rows, "stop_reason": self.stop_reason, "warnings": self.warnings}

    @classmethod
    def from_dict(cls, d: dict) -> History:
        rows, warned = (d.get("rows"), d.get("warnings", [])) if isinstance(d, dict) else (None, None)
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows) or not isinstance(warned, list):
            raise ValueError("expected {'rows': [objects], 'stop_reason': ..., 'warnings': [...]}")
        return cls(rows, d.get("stop_reason"), warned)

    def __repr__(self) -> str:
        return f"History({len(self.rows)} epochs, stop_reason={self.stop_reason!r})"


SHORT = {"reconstruction": "rec", "code_penalty": "pen", "weight_decay": "wd", "kl": "kl", "total": "total"}


def _epoch_line(row: dict, epochs: int, terms: list[str], has_val: bool) -> str:
    train = " ".join(f"{SHORT[t]} {row['train_' + t]:.5f}" for t in terms)
    line = f"epoch {row['epoch']}/{epochs}  train {train}"
    if has_val:
        line += "  | val " + " ".join(f"{SHORT[t]} {row['val_' + t]:.5f}" for t in terms)
    return line + f"  | {row['seconds']:.1f} s, {row['samples_per_s']:,.0f} samples/s"


class _Progress:
    """An in-epoch progress bar, drawn only on a terminal and at most ten times a second."""

    def __init__(self, out: TextIO, enabled: bool, epoch: int, epochs: int, n_batches: int):
        self.out, self.on = out, enabled and hasattr(out, "isatty") and out.isatty()
        self.epoch, self.epochs, self.n, self.last = epoch, epochs, n_batches, 0.0

    def update(self, b: int, loss: float) -> None:
        if not self.on or (time.monotonic() - self.last < 0.1 and b < self.n):
            return
        self.last = time.monotonic()
        filled = int(30 * b / self.n)
        bar = "#" * filled + "." * (30 - filled)
        self.out.write(f"\repoch {self.epoch}/{self.epochs} [{bar}] {b}/{self.n} loss {loss:.5f}")
        self.out.flush()

    def clear(self) -> None:
        if self.on:
            self.out.write("\r" + " " * 79 + "\r")
            self.out.flush()


def _snapshot(model: Model, optimizer: Optimizer, rng: np.random.Generator) -> dict:
    """Everything an epoch changes: weights, buffers, the optimizer, and every generator."""
    return {"params": {k: p.value.copy() for k, p in model.named_params()},
            "buffers": {k: b.copy() for k, b in model.named_buffers()},
            "optimizer": optimizer.state_dict(), "rng": rng.bit_generator.state,
            "generators": [g.bit_generator.state for g in model.generators()]}


def _restore(model: Model, optimizer: Optimizer, rng: np.random.Generator, snap: dict) -> None:
    for n, p in model.named_params():
        p.value[...] = snap["params"][n]
    for n, b in model.named_buffers():
        b[...] = snap["buffers"][n]
    optimizer.load_state_dict(snap["optimizer"])
    rng.bit_generator.state = snap["rng"]
    for g, state in zip(model.generators(), snap["generators"]):
        g.bit_generator.state = state


def fit(model: Model, x: np.ndarray, *, epochs: int, batch_size: int = 128, optimizer: Optimizer | None = None,
        validation_data: np.ndarray | None = None, rng: np.random.Generator | None = None, verbose: bool = True,
        checkpoint: str | os.PathLike | None = None, resume: str | os.PathLike | None = None,
        out: TextIO | None = None, run: dict | None = None) -> History:
    """Train ``model`` on ``x`` for ``epochs`` epochs (counting from the start, also when resuming).

    Parameters
    ----------
    x : array of shape (N, *model.input_shape), in the model's dtype
    epochs : int; batch_size : int (the last batch of an epoch may be smaller)
    optimizer : an npae optimizer bound to ``model.named_params()``; default Adam(lr=1e-3)
    validation_data : array like ``x``, evaluated after every epoch
    rng : np.random.Generator drawing the shuffling and the noise; default a fresh unseeded one
    verbose : one line per epoch (and a progress bar on a terminal) to ``out`` (default stdout)
    checkpoint : path; model, optimizer, generators and history are saved there after each epoch
    resume : path of a checkpoint to continue from (restores all of the above)
    run : a JSON object stored in each checkpoint (what the command line compares on ``--resume``)

    A NaN or infinite loss stops training, restores the weights (and optimizer and generators)
    of the last completed epoch, and sets ``history.stop_reason``; so does Ctrl-C. Training
    that has stalled (the outputs no longer depend on the input) is warned about once and
    recorded in ``history.warnings``; each row records the output spread it is judged by.
    """
    where = "fit"
    out = sys.stdout if out is None else out
    epochs = _checks.positive_int(epochs, "epochs", where)
    batch_size = _checks.positive_int(batch_size, "batch_size", where)
    x = _training_array(model, x, "x")
    x_val = None if validation_data is None else _training_array(model, validation_data, "validation_data")
    rng = np.random.default_rng() if rng is None else _checks.check_rng(rng, where)
    history, start = History(), 0
    if resume is not None:
        optimizer, history, start = _resume(model, optimizer, rng, resume)
        if start >= epochs:
            raise ValueError(f"{where}: the checkpoint {resume} has already trained {start} epoch(s), "
                             f"so epochs={epochs} trains nothing (epochs counts from the start); "
                             f"ask for more than {start}")
        if verbose:
            print(f"resumed from {resume} after epoch {start}", file=out)
    optimizer = Adam(model.named_params()) if optimizer is None else optimizer
    probe = (x if x_val is None else x_val)[:PROBE]
    history.stop_reason = None
    for epoch in range(start + 1, epochs + 1):
        snap, rows_before = _snapshot(model, optimizer, rng), len(history)
        progress = _Progress(out, verbose, epoch, epochs, -(-len(x) // batch_size))
        try:
            row = _epoch(model, x, x_val, optimizer, rng, batch_size, epoch, progress)
            row["output_spread"] = output_spread(model, probe)
            history.append(row)
            if checkpoint is not None:
                extra = {"generators": [g.bit_generator.state for g in model.generators()], "run": run}
                io.save_checkpoint(checkpoint, model, optimizer, rng, history.to_dict(), epoch, extra=extra)
        except (_checks.NonFiniteError, KeyboardInterrupt) as exc:
            progress.clear()
            _restore(model, optimizer, rng, snap)
            del history.rows[rows_before:]
            if isinstance(exc, KeyboardInterrupt):
                history.stop_reason = f"interrupted in epoch {epoch}"
                if verbose:
                    print(f"interrupted: keeping the weights after epoch {epoch - 1}"
                          + (f" (also in {checkpoint})" if checkpoint is not None and epoch > 1 else ""), file=out)
                break
            history.stop_reason = f"diverged in epoch {epoch}: {exc}"
            message = (f"training stopped: {history.stop_reason}; the weights are those after epoch {epoch - 1} "
                       f"(try a smaller learning rate)")
            warnings.warn(message, RuntimeWarning, stacklevel=2)
            if verbose:
                print(message, file=out)
            break
        if verbose:
            print(_epoch_line(row, epochs, model.active_terms(), x_val is not None), file=out, flush=True)
        previous = history.rows[-2]["output_spread"] if len(history) > 1 else None
        if not history.warnings and _stalled(model, probe, row["output_spread"], previous):
            message = _stalled_message(model, optimizer, probe, epoch, row["output_spread"])
            history.warnings.append(message)
            warnings.warn(message, RuntimeWarning, stacklevel=2)
            if verbose:
                print(f"warning: {message}", file=out)
    return history


def _epoch(model: Model, x: np.ndarray, x_val: np.ndarray | None, optimizer: Optimizer, rng: np.random.Generator,
           batch_size: int, epoch: int, progress: _Progress) -> dict:
    """One pass over ``x`` in shuffled mini-batches; the epoch's row of the history."""
    t0 = time.perf_counter()
    n, n_batches = len(x), progress.n
    sums = dict.fromkeys(model.TERMS, 0.0)
    order = rng.permutation(n)
    for b in range(n_batches):
        xb = x[order[b * batch_size:(b + 1) * batch_size]]
        result = model.loss_and_grads(xb, rng)
        if not np.isfinite(result["total"]):
            raise _checks.NonFiniteError(f"the loss is {result['total']} at batch {b + 1}")
        optimizer.step()
        for t in model.TERMS:
            sums[t] += result[t] * len(xb)
        progress.update(b + 1, result["total"])
    progress.clear()
    for name, p in model.named_params():  # a NaN gradient in the last step shows only here
        _checks.check_finite(p.value, "fit", f"parameter {name} after the last step of the epoch")
    seconds = time.perf_counter() - t0
    row = {"epoch": epoch, **{f"train_{t}": sums[t] / n for t in model.TERMS},
           "seconds": seconds, "samples_per_s": n / seconds}
    if x_val is not None:
        val = model.evaluate(x_val, batch_size=max(256, batch_size), rng=np.random.default_rng(VALIDATION_SEED))
        row.update({f"val_{t}": val[t] for t in model.TERMS})
    return row


def _resume(model: Model, optimizer: Optimizer | None, rng: np.random.Generator,
            path: str | os.PathLike) -> tuple[Optimizer, History, int]:
    """Restore weights, optimizer, generators and history from a checkpoint: ``(optimizer, history, epoch)``."""
    state = io.load_checkpoint(path)
    _take_weights(model, state["model"], path)
    if optimizer is None:
        optimizer = state["optimizer"](model.named_params())
    elif type(optimizer) is not state["optimizer"]:
        raise ValueError(f"fit: the checkpoint was trained with {state['optimizer'].__name__}, "
                         f"not {type(optimizer).__name__}")
    try:
        optimizer.load_state_dict(state["optimizer_state"])
        rng.bit_generator.state = state["rng_state"]
        layer_rngs = state["extra"].get("generators", [])
        if len(layer_rngs) != len(model.generators()):
            raise ValueError(f"{len(layer_rngs)} layer generator states for {len(model.generators())} generators")
        for g, g_state in zip(model.generators(), layer_rngs):
            g.bit_generator.state = g_state
        history = History.from_dict(state["history"])
    except (ValueError, TypeError, KeyError) as exc:
        raise io.ModelFileError(f"{path}: cannot restore the training state: {exc}") from None
    return optimizer, history, state["epoch"]


# -- stalled training -------------------------------------------------------------------------------
PROBE = 256  # validation (or training) samples the output spread is measured on after each epoch
#: below this spread the outputs hardly depend on the input: a trained autoencoder is at 0.3 to 0.9, one
#: collapsed to a constant output below 0.01, a healthy one a few dozen steps into training near 0.015
STALLED_SPREAD = 0.02


def _stalled(model: Model, probe: np.ndarray, spread: float, previous: float | None) -> bool:
    """The outputs no longer depend on the input, and training is not bringing the dependence back:
    the spread is below STALLED_SPREAD and either the outputs are saturated (every one within 1e-3
    of 0 or 1 on average, where a sigmoid's gradient vanishes) or the spread did not grow since the
    last epoch (early in training it grows epoch by epoch)."""
    if spread >= STALLED_SPREAD:
        return False
    if previous is not None and spread <= 1.05 * previous:
        return True
    x_hat = model.reconstruct(probe)
    return bool(x_hat.min() >= 0 and x_hat.max() <= 1 and np.minimum(x_hat, 1 - x_hat).mean() < 1e-3)


def output_spread(model: Model, x: np.ndarray) -> float:
    """How much the reconstructions vary across the samples ``x``, relative to how much ``x`` does:
    ``mean_i std_n x_hat[n, i] / mean_i std_n x[n, i]`` (1 when the output follows the input's
    variation, 0 when every output is the same)."""
    x_hat = model.reconstruct(x).reshape(len(x), -1)
    spread_in = float(x.reshape(len(x), -1).std(axis=0, dtype=np.float64).mean())
    return float(x_hat.std(axis=0, dtype=np.float64).mean()) / spread_in if spread_in > 0 else 1.0


def _stalled_message(model: Model, optimizer: Optimizer, probe: np.ndarray, epoch: int, spread: float) -> str:
    x_hat = model.reconstruct(probe)
    causes = []
    if x_hat.min() >= 0 and x_hat.max() <= 1 and float(np.minimum(x_hat, 1 - x_hat).mean()) < 1e-3:
        causes.append("the sigmoid output has saturated (nearly every output is 0 or 1, where its gradient vanishes)")
    lr = getattr(optimizer, "lr", None)
    if lr is not None and lr > 1e-2:
        causes.append(f"the learning rate {lr:g} is large (Adam's usual is 1e-3)")
    if not causes:
        causes.append("the loss has reached the value of a constant output (under MSE a sigmoid output can collapse "
                      "to the mean image; see docs/choices.md)")
    return (f"training has stalled in epoch {epoch}: the outputs no longer depend on the input (their spread across "
            f"samples is {spread:.4f} of the data's); likely cause: {'; '.join(causes)}")


def _take_weights(model: Model, saved: Model, path: str | os.PathLike) -> None:
    """The weights and buffers of ``saved`` (a checkpoint's model) into ``model``, which must be the same
    architecture."""
    changed = io.differences(saved.config(), model.config(), ("checkpoint", "given to fit"))
    if changed:
        raise io.ModelFileError(f"{path}: the checkpoint holds another model than the one given to fit: "
                                f"{'; '.join(changed[:5])}{'; ...' if len(changed) > 5 else ''}")
    for (_, p), (_, q) in zip(model.named_params(), saved.named_params()):
        p.value[...] = q.value
    for (_, b), (_, c) in zip(model.named_buffers(), saved.named_buffers()):
        b[...] = c


def _training_array(model: Model, x: np.ndarray, what: str) -> np.ndarray:
    x = model.as_batch(x, "fit")
    if x.dtype != model.dtype:
        raise TypeError(f"fit: {what} is {x.dtype} but the model is {model.dtype}; "
                        f"convert with {what}.astype(np.{model.dtype.name})")
    if len(x) == 0:
        raise ValueError(f"fit: {what} is empty")
    _checks.check_finite(x, "fit", what)
    return x
