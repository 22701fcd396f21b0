"""The training loop: shuffled mini-batches, one optimizer step per batch, a history of
every term of the objective per epoch, progress, checkpoints and exact resume.

``fit(model, x, ...)`` trains any model with the protocol of :class:`npae.autoencoders.Model`
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

import sys
import time
import warnings

import numpy as np

from . import _checks, io
from .optim import Adam

VALIDATION_SEED = 0


class History:
    """One row per completed epoch: ``epoch``, ``train_<term>``, ``val_<term>``, ``seconds``,
    ``samples_per_s``. ``history["train_reconstruction"]`` is a column; ``stop_reason`` says
    why training ended early (None when it ran all epochs)."""

    def __init__(self, rows=None, stop_reason=None):
        self.rows: list[dict] = list(rows or [])
        self.stop_reason = stop_reason

    def append(self, row: dict) -> None:
        self.rows.append(dict(row))

    def __getitem__(self, key: str) -> list:
        if not self.rows or key not in self.rows[-1]:
            raise KeyError(f"no column {key!r}; columns: {sorted(self.rows[-1]) if self.rows else []}")
        return [r.get(key) for r in self.rows]

    def __len__(self) -> int:
        return len(self.rows)

    # The saved form, in history.json and in checkpoints: {"rows": [{column: value}], "stop_reason": str | None}
    def to_dict(self) -> dict:
        return {"rows": self.rows, "stop_reason": self.stop_reason}

    @classmethod
    def from_dict(cls, d: dict) -> History:
        if not isinstance(d, dict) or not isinstance(d.get("rows"), list) or not all(isinstance(r, dict) for r in d["rows"]):
            raise ValueError("expected {'rows': [objects], 'stop_reason': ...}")
        return cls(d["rows"], d.get("stop_reason"))

    def __repr__(self) -> str:
        return f"History({len(self.rows)} epochs, stop_reason={self.stop_reason!r})"


SHORT = {"reconstruction": "rec", "code_penalty": "pen", "weight_decay": "wd", "kl": "kl", "total": "total"}


def _epoch_line(row, epochs, terms, has_val) -> str:
    train = " ".join(f"{SHORT[t]} {row['train_' + t]:.5f}" for t in terms)
    line = f"epoch {row['epoch']}/{epochs}  train {train}"
    if has_val:
        line += "  | val " + " ".join(f"{SHORT[t]} {row['val_' + t]:.5f}" for t in terms)
    return line + f"  | {row['seconds']:.1f} s, {row['samples_per_s']:,.0f} samples/s"


class _Progress:
    """An in-epoch progress bar, drawn only on a terminal and at most ten times a second."""

    def __init__(self, out, enabled, epoch, epochs, n_batches):
        self.out, self.on = out, enabled and hasattr(out, "isatty") and out.isatty()
        self.epoch, self.epochs, self.n, self.last = epoch, epochs, n_batches, 0.0

    def update(self, b, loss):
        if not self.on or (time.monotonic() - self.last < 0.1 and b < self.n):
            return
        self.last = time.monotonic()
        filled = int(30 * b / self.n)
        self.out.write(f"\repoch {self.epoch}/{self.epochs} [{'#' * filled}{'.' * (30 - filled)}] {b}/{self.n} loss {loss:.5f}")
        self.out.flush()

    def clear(self):
        if self.on:
            self.out.write("\r" + " " * 79 + "\r")
            self.out.flush()


def _snapshot(model, optimizer, rng: np.random.Generator) -> dict:
    """Everything an epoch changes: weights, buffers, the optimizer, and every generator."""
    return {"params": {k: p.value.copy() for k, p in model.named_params()},
            "buffers": {k: b.copy() for k, b in model.named_buffers()},
            "optimizer": optimizer.state_dict(), "rng": rng.bit_generator.state,
            "generators": [g.bit_generator.state for g in model.generators()]}


def _restore(model, optimizer, rng: np.random.Generator, snap: dict) -> None:
    for n, p in model.named_params():
        p.value[...] = snap["params"][n]
    for n, b in model.named_buffers():
        b[...] = snap["buffers"][n]
    optimizer.load_state_dict(snap["optimizer"])
    rng.bit_generator.state = snap["rng"]
    for g, state in zip(model.generators(), snap["generators"]):
        g.bit_generator.state = state


def fit(model, x, *, epochs: int, batch_size: int = 128, optimizer=None, validation_data=None,
        rng: np.random.Generator | None = None, verbose: bool = True, checkpoint=None, resume=None, out=None) -> History:
    """Train ``model`` on ``x`` for ``epochs`` epochs (counting from the start, also when resuming).

    Parameters
    ----------
    x : array of shape (N, *model.input_shape), in the model's dtype
    epochs : int; batch_size : int (the last batch of an epoch may be smaller)
    optimizer : an npae optimizer bound to ``model.named_params()``; default Adam(lr=1e-3)
    validation_data : array like ``x``, evaluated after every epoch
    rng : np.random.Generator drawing the shuffling and the noise; default a fresh unseeded one
    verbose : one line per epoch (and a progress bar on a terminal) to ``out`` (default stdout)
    checkpoint : path; model, optimizer, generator and history are saved there after each epoch
    resume : path of a checkpoint to continue from (restores all of the above)

    A NaN or infinite loss stops training, restores the weights (and optimizer and generator)
    of the last completed epoch, and sets ``history.stop_reason``; so does Ctrl-C.
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
        state = io.load_checkpoint(resume)
        _take_weights(model, state["model"], resume)
        if optimizer is None:
            optimizer = state["optimizer"](model.named_params())
        elif type(optimizer) is not state["optimizer"]:
            raise ValueError(f"{where}: the checkpoint was trained with {state['optimizer'].__name__}, not {type(optimizer).__name__}")
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
            raise io.ModelFileError(f"{resume}: cannot restore the training state: {exc}") from None
        start = state["epoch"]
        if verbose:
            print(f"resumed from {resume} after epoch {start}", file=out)
    optimizer = Adam(model.named_params()) if optimizer is None else optimizer
    terms = model.active_terms()
    n = len(x)
    n_batches = -(-n // batch_size)
    history.stop_reason = None
    for epoch in range(start + 1, epochs + 1):
        snap = _snapshot(model, optimizer, rng)
        rows_before = len(history)
        progress = _Progress(out, verbose, epoch, epochs, n_batches)
        t0 = time.perf_counter()
        try:
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
                val = model.evaluate(x_val, batch_size=max(256, batch_size),
                                     rng=np.random.default_rng(VALIDATION_SEED))
                row.update({f"val_{t}": val[t] for t in model.TERMS})
            history.append(row)
            if checkpoint is not None:
                io.save_checkpoint(checkpoint, model, optimizer, rng, history.to_dict(), epoch,
                                   extra={"generators": [g.bit_generator.state for g in model.generators()]})
        except _checks.NonFiniteError as exc:
            progress.clear()
            _restore(model, optimizer, rng, snap)
            del history.rows[rows_before:]
            history.stop_reason = f"diverged in epoch {epoch}: {exc}"
            message = (f"training stopped: {history.stop_reason}; the weights are those after epoch {epoch - 1} "
                       f"(try a smaller learning rate)")
            warnings.warn(message, RuntimeWarning, stacklevel=2)
            if verbose:
                print(message, file=out)
            break
        except KeyboardInterrupt:
            progress.clear()
            _restore(model, optimizer, rng, snap)
            del history.rows[rows_before:]
            history.stop_reason = f"interrupted in epoch {epoch}"
            if verbose:
                print(f"interrupted: keeping the weights after epoch {epoch - 1}"
                      + (f" (also in {checkpoint})" if checkpoint is not None and epoch > 1 else ""), file=out)
            break
        if verbose:
            print(_epoch_line(row, epochs, terms, x_val is not None), file=out, flush=True)
    return history


def _take_weights(model, saved, path) -> None:
    """The weights and buffers of ``saved`` (a checkpoint's model) into ``model``, which must be the same architecture."""
    changed = io.differences(saved.config(), model.config(), ("checkpoint", "given to fit"))
    if changed:
        raise io.ModelFileError(f"{path}: the checkpoint holds another model than the one given to fit: "
                                f"{'; '.join(changed[:5])}{'; ...' if len(changed) > 5 else ''}")
    for (_, p), (_, q) in zip(model.named_params(), saved.named_params()):
        p.value[...] = q.value
    for (_, b), (_, c) in zip(model.named_buffers(), saved.named_buffers()):
        b[...] = c


def _training_array(model, x, what: str) -> np.ndarray:
    x = model.as_batch(x, "fit")
    if x.dtype != model.dtype:
        raise TypeError(f"fit: {what} is {x.dtype} but the model is {model.dtype}; "
                        f"convert with {what}.astype(np.{model.dtype.name})")
    if len(x) == 0:
        raise ValueError(f"fit: {what} is empty")
    _checks.check_finite(x, "fit", what)
    return x
