"""The command line's arguments: the parser of ``python -m npae`` (its commands are in
:mod:`npae.cli.main`, which hands them to :func:`parser`), argparse types that check numbers and
paths, and a parser whose every error is one ``error:`` line (exit status 2).
"""

from __future__ import annotations

import argparse
import math
import pathlib
import sys
from collections.abc import Callable, Mapping
from typing import NoReturn

from .._version import __version__


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors as one line: ``error: ... (see ... --help)``, exit status 2."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"error: {message} (see {self.prog} --help)\n")
        sys.exit(2)


def _number(kind: type, minimum: float | None = None, strictly: bool = True) -> Callable[[str], int | float]:
    """An argparse type: a finite ``kind`` (int or float) above ``minimum``."""
    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            article = "an" if kind is int else "a"
            raise argparse.ArgumentTypeError(f"expected {article} {kind.__name__}, got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
        if minimum is not None and (value <= minimum if strictly else value < minimum):
            raise argparse.ArgumentTypeError(f"must be {'>' if strictly else '>='} {minimum}, got {text}")
        return value

    parse.__name__ = kind.__name__
    return parse


def _safetensors_path(text: str) -> pathlib.Path:
    """An argparse type: a path ending in .safetensors."""
    path = pathlib.Path(text)
    if path.suffix != ".safetensors":
        raise argparse.ArgumentTypeError(f"the output must end in .safetensors, got {text!r}")
    return path


def _data_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", type=pathlib.Path,
                   help="your images: a .npy (N, H, W[, C]) or (N, C, H, W), an .npz (x_train, x_test), a folder of "
                        "PNG/JPEG images (one subfolder per class, optionally), or an IDX folder (default: MNIST)")
    p.add_argument("--dataset", choices=["mnist", "fashion-mnist"],
                   help="a built-in set (from --data, NPAE_DATA, the cache or, for MNIST, the embedded sample)")
    p.add_argument("--layout", choices=["nhwc", "nchw"],
                   help="how a 4-D array is laid out, where its shape does not say")


def parser(commands: Mapping[str, Callable[[argparse.Namespace], int]]) -> argparse.ArgumentParser:
    from ..models.families import CODE_ACTIVATIONS, FAMILIES

    p = _Parser(prog="python -m npae", description="npae: autoencoders from scratch in NumPy, with hand-written "
                "and gradient-checked backward passes. Every mistake is one error: line.")
    p.add_argument("--version", action="version", version=f"npae {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    t = sub.add_parser("train", help="train one of the families on MNIST or on your own images")
    t.add_argument("family", choices=list(FAMILIES))
    t.add_argument("--epochs", type=_number(int, 0), default=5, help="default 5")
    t.add_argument("--batch-size", type=_number(int, 0), default=128, help="default 128 (the article's)")
    t.add_argument("--lr", type=_number(float, 0), default=1e-3, help="Adam's learning rate, default 1e-3")
    t.add_argument("--loss", choices=["mse", "bce"],
                   help="default: the family's (mse, the article's; the vae's Bernoulli decoder is bce, "
                        "mse makes it Gaussian)")
    _data_options(t)
    t.add_argument("--code", type=_number(int, 0),
                   help="the code's size (dense families), latent size (vae) or code channels (convolutional ones)")
    t.add_argument("--code-activation", choices=sorted(CODE_ACTIVATIONS), help="the code's activation (default relu)")
    t.add_argument("--noise", type=_number(float, 0, strictly=False),
                   help="train as a denoiser: Gaussian noise of this std added to the input (clipped to [0, 1])")
    t.add_argument("--upsample", choices=["nearest", "transpose"],
                   help="convolutional: nearest-neighbour upsampling (the article's) or learned ConvTranspose2D")
    t.add_argument("--downsample", choices=["pool", "stride"],
                   help="convolutional: max pooling (the article's) or stride-2 convolutions")
    t.add_argument("--batchnorm", action="store_true", help="convolutional: BatchNorm2D after every hidden convolution")
    t.add_argument("--limit", type=_number(int, 0), help="train and validate on the first N images only (a quick look)")
    t.add_argument("--seed", type=_number(int, 0, strictly=False), default=0,
                   help="seed of the initialization, shuffling and noise (an int >= 0, default 0)")
    t.add_argument("--out", type=pathlib.Path, help="output folder (default runs/FAMILY)")
    group = t.add_mutually_exclusive_group()
    group.add_argument("--resume", type=pathlib.Path, help="a checkpoint to continue from (e.g. OUT/checkpoint.npz)")
    group.add_argument("--overwrite", action="store_true", help="replace the run (and checkpoint) already in --out")
    t.set_defaults(func=commands["train"])

    e = sub.add_parser("evaluate", help="print the test loss of a saved model")
    e.add_argument("model", type=pathlib.Path)
    _data_options(e)
    e.add_argument("--batch-size", type=_number(int, 0), default=256)
    e.set_defaults(func=commands["evaluate"])

    g = sub.add_parser("gradcheck", help="gradient-check every layer, loss and penalty (float64)")
    g.add_argument("--seed", type=_number(int, 0, strictly=False), default=0,
                   help="seed of the random inputs (default 0)")
    g.set_defaults(func=commands["gradcheck"])

    d = sub.add_parser("data", help="download datasets, or show what is cached")
    dsub = d.add_subparsers(dest="data_command", metavar="{download,info}", required=True)
    dl = dsub.add_parser("download", help="download into the user cache, verified by SHA-256")
    dl.add_argument("--dataset", choices=["mnist", "fashion-mnist"], default="mnist")
    dl.add_argument("--timeout", type=_number(float, 0), default=10.0,
                    help="seconds without an answer before a mirror is given up")
    dsub.add_parser("info", help="what is cached and where")
    d.set_defaults(func=commands["data"])

    x = sub.add_parser("export", help="write a saved model's weights as safetensors, for PyTorch")
    x.add_argument("model", type=pathlib.Path, help="a model file written by train or npae.save")
    x.add_argument("out", type=_safetensors_path,
                   help="the output, OUT.safetensors (never replaced without --overwrite)")
    x.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    x.set_defaults(func=commands["export"])
    return p
