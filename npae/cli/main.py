"""The npae command line: ``python -m npae COMMAND`` (``npae/cli/main.py`` calls :func:`run`).

``train FAMILY``   train one of the families (``npae.models.families``: the article's and beyond) on MNIST or on your
                   own images (``--data``: an array file, an image folder, an IDX folder); writes the model,
                   the history (JSON), a checkpoint and a reconstruction figure (PNG) into --out.
``evaluate MODEL`` print the test loss of a saved model (a VAE's: -ELBO and its terms, in nats).
``gradcheck``      check every layer, loss and penalty against central differences (float64);
                   prints a report per check and exits 1 if any fails.
``data download``  download MNIST or Fashion-MNIST into the user cache, verified by SHA-256.
``data info``      what is cached and where, and what the loaders would use.
``export MODEL OUT.safetensors``  a saved model's weights for PyTorch (``npae.files.export``; NumPy alone).

Every mistake is one ``error:`` line on stderr: exit status 2 for a wrong command line, 1 for
anything found while running (a missing file, bad data, a refused checkpoint), 130 for Ctrl-C.
Training that stops early or stalls exits 1 after saving what it has.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pathlib
import sys
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from . import args as cli_args

if TYPE_CHECKING:  # the command line imports the package's modules inside the commands that need them
    from ..data.datasets import Dataset
    from ..models.autoencoders import Model


class _Refused(Exception):
    """A run the command line will not start; the message says why and what to do instead."""


def _load_data(args: argparse.Namespace) -> Dataset:
    """The data the command names: --dataset (a built-in set, at --data if given), else --data (your
    own images, an array file or an IDX folder), else MNIST; printed as one line."""
    from ..data.images import load_dataset, load_images

    if getattr(args, "dataset", None):
        data = load_dataset(args.dataset, path=args.data)
    elif args.data is not None:
        data = load_images(args.data, layout=getattr(args, "layout", None))
    else:
        data = load_dataset("mnist")
    print(data.describe())
    (x_train, _), (x_test, _) = data
    if len(x_train) == 0 or len(x_test) == 0:
        raise _Refused(f"{data.folder}: {len(x_train)} training and {len(x_test)} test images; "
                       "training needs some of both")
    return data


def _picture(x: np.ndarray) -> np.ndarray | None:
    """Images for a figure: (N, H, W) grey or (N, H, W, 3) colour; None for vectors that are not square images."""
    if x.ndim == 4:
        return x[:, 0] if x.shape[1] in (1, 2) else x[:, :3].transpose(0, 2, 3, 1)
    side = math.isqrt(x.shape[1]) if x.ndim == 2 else 0
    return x.reshape(len(x), side, side) if side * side == x.shape[1] else None


def reconstruction_figure(model: Model, x: np.ndarray, path: str | os.PathLike, rng_seed: int = 0) -> bool:
    """10 test images (top) over their reconstructions; a denoiser shows noisy / output / clean.
    Returns False (and writes nothing) for data that are not images."""
    from ..files.png import image_grid, write_png

    x = x[:10]
    if model.noise is not None:
        noisy = model.noise(x, np.random.default_rng(rng_seed))
        rows = [noisy, model.reconstruct(noisy).reshape(x.shape), x]
    else:
        rows = [x, model.reconstruct(x).reshape(x.shape)]
    pictures = [_picture(r) for r in rows]
    if pictures[0] is None:
        return False
    write_png(path, image_grid(pictures))
    return True


# -- train -----------------------------------------------------------------------------------------
def _out_folder(args: argparse.Namespace) -> pathlib.Path:
    """The output folder, checked: never an existing file, never a previous run's checkpoint
    replaced unless ``--resume`` or ``--overwrite`` says so."""
    out = args.out or pathlib.Path("runs") / args.family
    if out.exists() and not out.is_dir():
        raise _Refused(f"--out {out}: is a file, not a folder")
    checkpoint = out / "checkpoint.npz"
    if checkpoint.exists() and args.resume is None and not args.overwrite:
        raise _Refused(f"{out} holds the checkpoint of an earlier run; continue it with --resume {checkpoint}, "
                       f"or start over with --overwrite (which replaces its files)")
    out.mkdir(parents=True, exist_ok=True)
    return out


def _family_options(args: argparse.Namespace, data: Dataset, x_train: np.ndarray) -> dict:
    """The family's keyword arguments from the command line and the data; an option the family
    does not take is refused by name."""
    import inspect

    from ..models.conv_families import OUTPUT_BIAS
    from ..models.families import FAMILIES
    from ..objectives.noise import GaussianNoise

    takes = set(inspect.signature(FAMILIES[args.family]).parameters)
    kwargs = {"input_shape": data.shape}
    if args.loss:
        kwargs["loss"] = args.loss
    code_name = "code" if "code" in takes else None  # every family names its options alike
    activation_name = "code_activation" if "code_activation" in takes else None
    for flag in ("upsample", "downsample"):
        if getattr(args, flag) is not None:
            if flag not in takes:
                raise _Refused(f"--{flag} does not apply to the family {args.family}")
            kwargs[flag] = getattr(args, flag)
    if args.batchnorm:
        if "batchnorm" not in takes:
            raise _Refused(f"--batchnorm does not apply to the family {args.family}")
        kwargs["batchnorm"] = True
    for option, name, value in (("--code", code_name, args.code),
                                ("--code-activation", activation_name, args.code_activation),
                                ("--noise", "noise" if "noise" in takes else None,
                                 None if args.noise is None else GaussianNoise(args.noise))):
        if value is not None:
            if name is None:
                raise _Refused(f"{option} does not apply to the family {args.family}")
            kwargs[name] = value
    if "output_bias" in takes and data.name not in ("mnist",):  # start the sigmoid at this data's mean pixel
        mean = float(np.clip(x_train.mean(dtype=np.float64), 1e-3, 1 - 1e-3))
        kwargs["output_bias"] = math.log(mean / (1 - mean))
    elif "output_bias" in takes:
        kwargs["output_bias"] = OUTPUT_BIAS
    return kwargs


def _check_resume(path: str | os.PathLike, run: dict, model: Model, epochs: int) -> None:
    """Refuse to continue a checkpoint with other settings than it was trained with (listing them all)."""
    from ..files import io

    state = io.load_checkpoint(path)
    saved = state["extra"].get("run") or {}
    changed = [f"{key}: {saved.get(key)!r} (checkpoint) vs {run[key]!r} (now)"
               for key in run if key in saved and saved[key] != run[key]]
    changed += io.differences(state["model"].config(), model.config(), ("checkpoint", "now"))
    if changed:
        raise _Refused(f"{path}: the checkpoint was trained with other settings; resuming would mix two runs: "
                       + "; ".join(changed))
    if state["epoch"] >= epochs:
        raise _Refused(f"{path}: the checkpoint has already trained {state['epoch']} epoch(s); --epochs counts from "
                       f"the start, so ask for more than {state['epoch']} to continue")


def _train(args: argparse.Namespace) -> int:
    from ..files import io
    from ..models.families import FAMILIES
    from ..optim import Adam
    from ..train import fit

    out = _out_folder(args)
    data = _load_data(args)
    (x_train, _), (x_test, _) = data
    if args.limit is not None:
        x_train, x_test = x_train[: args.limit], x_test[: args.limit]
        print(f"training on the first {len(x_train):,} images, validating on the first {len(x_test):,} (--limit)")
    rng = np.random.default_rng(args.seed)
    model = FAMILIES[args.family](rng=rng, **_family_options(args, data, x_train))
    model.dataset = data.identity()
    run = {"family": args.family, "lr": args.lr, "batch_size": args.batch_size, "limit": args.limit,
           "data": f"{data.title} [{data.folder}] sha256 {data.sha}, {len(x_train)} train / {len(x_test)} test",
           **{k: getattr(args, k) for k in ("code", "code_activation", "noise", "upsample", "downsample", "batchnorm")}}
    if args.resume is not None:
        _check_resume(args.resume, run, model, args.epochs)
    epochs = f"{args.epochs} epoch{'s' * (args.epochs != 1)}"
    print(f"{model!r}; Adam lr={args.lr}, batch {args.batch_size}, {epochs}, seed {args.seed}, "
          f"loss {model.loss}; writing into {out}")
    with warnings.catch_warnings():  # fit says it in its own lines; the result is reported below
        warnings.simplefilter("ignore", RuntimeWarning)
        history = fit(model, x_train, epochs=args.epochs, batch_size=args.batch_size,
                      optimizer=Adam(model.named_params(), lr=args.lr), validation_data=x_test, rng=rng,
                      checkpoint=out / "checkpoint.npz", resume=args.resume, run=run)
    if not history.rows:  # stopped before the first epoch ended: nothing trained, nothing to save
        print(f"error: {history.stop_reason} before the first epoch completed; nothing was saved", file=sys.stderr)
        return 130 if history.stop_reason.startswith("interrupted") else 1
    io.save(model, out / "model.npz")
    (out / "history.json").write_text(json.dumps(history.to_dict(), indent=1))
    figure = reconstruction_figure(model, x_test, out / "reconstructions.png")
    print(f"wrote {out / 'model.npz'} (after epoch {history.rows[-1]['epoch']}), {out / 'history.json'}"
          + (f", {out / 'reconstructions.png'}" if figure else " (no figure: the data are not images)"))
    if history.stop_reason:
        print(f"error: stopped early: {history.stop_reason}", file=sys.stderr)
        return 130 if history.stop_reason.startswith("interrupted") else 1
    if history.warnings:
        print(f"error: {history.warnings[0]}", file=sys.stderr)
        return 1
    return 0


# -- evaluate, gradcheck, data -----------------------------------------------------------------------
def _evaluation_data(args: argparse.Namespace, model: Model) -> Dataset:
    """The test data for a saved model: --data / --dataset if given (with a note when the model was
    trained on something else), else what the model file records it was trained on."""
    from ..data.images import load_dataset, load_images

    record = model.dataset
    if args.data is not None or args.dataset:
        data = _load_data(args)
        if record and record.get("sha") != data.sha:
            print(f"note: the model was trained on {record.get('title')} [{record.get('path')}] sha256 "
                  f"{record.get('sha')}, not on these data")
        return data
    if record is None:
        print("note: the model file does not say what it was trained on; evaluating on MNIST")
        data = load_dataset("mnist")
    elif record.get("name") in ("mnist", "fashion-mnist"):
        data = load_dataset(record["name"])
    elif record.get("path") and pathlib.Path(record["path"]).exists():
        data = load_images(record["path"])
    else:
        raise _Refused(f"{args.model}: the model was trained on {record.get('title')} [{record.get('path')}], "
                       f"which is not on this machine; pass --data")
    print(data.describe() + (" (what the model file records)" if record else ""))
    if record and record.get("sha") != data.sha:
        print(f"note: the model was trained on sha256 {record.get('sha')} of {record.get('title')}; these are "
              f"sha256 {data.sha}" + (" (the embedded sample)" if data.is_sample else ""))
    return data


def _evaluate(args: argparse.Namespace) -> int:
    from ..files import io
    from ..train import VALIDATION_SEED

    model = io.load(args.model)
    (_, _), (x_test, _) = _evaluation_data(args, model)
    x_test = model.as_batch(x_test.astype(model.dtype, copy=False), "evaluate")
    rng = np.random.default_rng(VALIDATION_SEED) if model.needs_rng else None
    terms = model.evaluate(x_test, batch_size=args.batch_size, rng=rng)
    if "kl" in terms:  # a VAE
        print(f"{model.name}: test -ELBO {terms['total']:.3f} nats per image = reconstruction "
              f"{terms['reconstruction']:.3f} (-log p(x|z), {model.likelihood}) + KL {terms['kl']:.3f} "
              f"(one eps per image from default_rng({VALIDATION_SEED}))")
        flat = x_test.reshape(len(x_test), -1)
        mse = float(np.mean((model.reconstruct(x_test).reshape(len(x_test), -1) - flat) ** 2))
        print(f"  MSE of the reconstruction from the posterior mean: {mse:.6f}")
        return 0
    what = (f"{model.loss} of the output for noisy inputs ({model.noise!r}) against the clean images"
            if model.noise else model.loss)
    print(f"{model.name}: test {what}: {terms['reconstruction']:.6f}")
    for term in ("code_penalty", "weight_decay"):
        if getattr(model, term) is not None:
            print(f"  {term}: {terms[term]:.6f}   total: {terms['total']:.6f}")
    return 0


def _gradcheck(args: argparse.Namespace) -> int:
    from ..checks.suite import run_all

    return 0 if run_all(seed=args.seed) else 1


def _data(args: argparse.Namespace) -> int:
    from ..data import datasets

    if args.data_command == "info":
        print(datasets.info())
        return 0
    from ..data.download import download

    folder = download(args.dataset, timeout=args.timeout)
    print(f"{args.dataset}: complete in {folder}")
    return 0


# -- export ------------------------------------------------------------------------------------------
def _export(args: argparse.Namespace) -> int:
    from ..files import io
    from ..files.export import save_safetensors, state_dict_arrays

    model = io.load(args.model)
    if args.out.exists() and args.out.resolve() == args.model.resolve():
        raise _Refused(f"{args.out}: is the model file itself; choose another output")
    if args.out.exists() and not args.overwrite:
        raise _Refused(f"{args.out}: exists; choose another output, or replace it with --overwrite")
    save_safetensors(model, args.out)
    arrays = state_dict_arrays(model)
    dtypes = ", ".join(sorted({str(a.dtype) for a in arrays.values()}))
    print(f"wrote {args.out}: {len(arrays)} tensors, {sum(a.size for a in arrays.values()):,} values ({dtypes}), "
          f"with the architecture in its metadata")
    print(f"it is the state dict of npae.files.export.to_torch(model); in PyTorch: "
          f"model.load_state_dict(safetensors.torch.load_file({str(args.out)!r}))")
    return 0


# -- the parser --------------------------------------------------------------------------------------
def parser() -> argparse.ArgumentParser:
    """The command line's parser (:func:`npae.cli.args.parser`) with this module's commands."""
    return cli_args.parser({"train": _train, "evaluate": _evaluate, "gradcheck": _gradcheck, "data": _data,
                            "export": _export})


def _quiet_stdout() -> None:
    """After a broken pipe (``python -m npae data info | head``): send what is left to nowhere."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def main(argv: Sequence[str] | None = None) -> int:
    from ..data.datasets import DataError
    from ..files.io import ModelFileError
    from ..files.npz import ArchiveError

    p = parser()
    args = p.parse_args(argv)
    if args.command is None:
        p.print_help()
        return 2
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        _quiet_stdout()
        return 1
    except (_Refused, DataError, ModelFileError, ArchiveError) as exc:
        message = str(exc)
    except OSError as exc:  # the user's files and folders: named by the exception
        message = f"{exc.filename}: {exc.strerror}" if exc.filename and exc.strerror else str(exc)
    except (ValueError, TypeError) as exc:  # npae's own checks, whose messages name what was wrong
        message = str(exc)
    except MemoryError:
        message = "out of memory (try a smaller --batch-size or --limit)"
    first, *rest = message.splitlines() or [""]
    print("\n".join([f"error: {first}"] + [f"  {line.strip()}" for line in rest]), file=sys.stderr)
    return 1




def run() -> int:
    """``python -m npae``: :func:`main`, with a broken pipe (``| head``) ending quietly."""
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:
        _quiet_stdout()
        code = 1
    return code
