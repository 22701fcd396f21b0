"""The npae command line: ``python -m npae COMMAND``.

``train FAMILY``   train one of the families (npae.families: the article's and beyond) on MNIST; writes the model, the
                   history (JSON) and a reconstruction figure (PNG) into --out.
``evaluate MODEL`` print the test loss of a saved model (a VAE's: -ELBO and its terms, in nats).
``gradcheck``      check every layer, loss and penalty against central differences (float64);
                   prints a report per check and exits 1 if any fails.
``data download``  download MNIST or Fashion-MNIST into the user cache, verified by SHA-256.
``data info``      what is cached and where, and what the loaders would use.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys


def _positive(kind):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {kind.__name__}, got {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value

    parse.__name__ = kind.__name__
    return parse


def _load_data(path):
    from .datasets import load_mnist

    data = load_mnist(path=path)
    print(data.describe())
    return data


def _gradcheck(args) -> int:
    from .suite import run_all

    return 0 if run_all(seed=args.seed) else 1


def _data(args) -> int:
    from . import datasets

    if args.data_command == "info":
        print(datasets.info())
        return 0
    from .download import download

    folder = download(args.dataset, timeout=args.timeout)
    print(f"{args.dataset}: complete in {folder}")
    return 0


def reconstruction_figure(model, x, path, rng_seed=0) -> None:
    """10 test digits (top) over their reconstructions; a denoiser shows noisy / output / clean."""
    import numpy as np

    from ._png import image_grid, write_png

    x = x[:10]
    shape = (len(x), 28, 28)
    if model.noise is not None:
        noisy = model.noise(x, np.random.default_rng(rng_seed))
        rows = [noisy, model.reconstruct(noisy), x]
    else:
        rows = [x, model.reconstruct(x)]
    write_png(path, image_grid([r.reshape(shape) for r in rows]))


def _train(args) -> int:
    import numpy as np

    from . import io
    from .families import FAMILIES
    from .optim import Adam
    from .train import fit

    (x_train, _), (x_test, _) = _load_data(args.data)
    if args.limit is not None:
        x_train, x_test = x_train[: args.limit], x_test[: args.limit]
        print(f"training on the first {len(x_train):,} images, validating on the first {len(x_test):,} (--limit)")
    rng = np.random.default_rng(args.seed)
    model = FAMILIES[args.family](rng=rng, **({"loss": args.loss} if args.loss else {}))
    out = pathlib.Path(args.out or f"runs/{args.family}")
    out.mkdir(parents=True, exist_ok=True)
    print(f"{model!r}; Adam lr={args.lr}, batch {args.batch_size}, {args.epochs} epochs, seed {args.seed}, "
          f"loss {model.loss}; writing into {out}")
    history = fit(model, x_train, epochs=args.epochs, batch_size=args.batch_size,
                  optimizer=Adam(model.named_params(), lr=args.lr), validation_data=x_test, rng=rng,
                  checkpoint=out / "checkpoint.npz", resume=args.resume)
    io.save(model, out / "model.npz")
    (out / "history.json").write_text(json.dumps(history.to_dict(), indent=1))
    reconstruction_figure(model, x_test, out / "reconstructions.png")
    print(f"wrote {out / 'model.npz'}, {out / 'history.json'}, {out / 'reconstructions.png'}")
    if history.stop_reason:
        print(f"stopped early: {history.stop_reason}", file=sys.stderr)
        return 1
    return 0


def _evaluate(args) -> int:
    import numpy as np

    from . import io
    from .train import VALIDATION_SEED

    model = io.load(args.model)
    (_, _), (x_test, _) = _load_data(args.data)
    rng = np.random.default_rng(VALIDATION_SEED) if model.needs_rng else None
    terms = model.evaluate(x_test.astype(model.dtype, copy=False), batch_size=args.batch_size, rng=rng)
    if "kl" in terms:  # a VAE
        print(f"{model.name}: test -ELBO {terms['total']:.3f} nats per image = reconstruction "
              f"{terms['reconstruction']:.3f} (-log p(x|z), {model.likelihood}) + KL {terms['kl']:.3f} "
              f"(one eps per image from default_rng({VALIDATION_SEED}))")
        mse = float(np.mean((model.reconstruct(x_test.astype(model.dtype, copy=False)).reshape(len(x_test), -1)
                             - x_test.reshape(len(x_test), -1)) ** 2))
        print(f"  MSE of the reconstruction from the posterior mean: {mse:.6f}")
        return 0
    what = f"{model.loss} of the output for noisy inputs ({model.noise!r}) against the clean images" if model.noise else model.loss
    print(f"{model.name}: test {what}: {terms['reconstruction']:.6f}")
    for term in ("code_penalty", "weight_decay"):
        if getattr(model, term) is not None:
            print(f"  {term}: {terms[term]:.6f}   total: {terms['total']:.6f}")
    return 0


def main(argv=None) -> int:
    from .families import FAMILIES

    parser = argparse.ArgumentParser(prog="python -m npae", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    t = sub.add_parser("train", help="train an autoencoder of the article on MNIST")
    t.add_argument("family", choices=list(FAMILIES))
    t.add_argument("--epochs", type=_positive(int), default=5, help="default 5")
    t.add_argument("--batch-size", type=_positive(int), default=128, help="default 128 (the article's)")
    t.add_argument("--lr", type=_positive(float), default=1e-3, help="Adam's learning rate, default 1e-3")
    t.add_argument("--loss", choices=["mse", "bce"],
                   help="default: the family's (mse, the article's; the vae's Bernoulli decoder is bce, mse makes it Gaussian)")
    t.add_argument("--data", type=pathlib.Path, help="folder with the MNIST IDX files (default: cache, else the embedded sample)")
    t.add_argument("--limit", type=_positive(int), help="train and validate on the first N images only (a quick look)")
    t.add_argument("--seed", type=int, default=0, help="seed of the initialization, shuffling and noise (default 0)")
    t.add_argument("--out", type=pathlib.Path, help="output folder (default runs/FAMILY)")
    t.add_argument("--resume", type=pathlib.Path, help="a checkpoint to continue from (e.g. OUT/checkpoint.npz)")
    t.set_defaults(func=_train)

    e = sub.add_parser("evaluate", help="print the test loss of a saved model")
    e.add_argument("model", type=pathlib.Path)
    e.add_argument("--data", type=pathlib.Path, help="folder with the MNIST IDX files")
    e.add_argument("--batch-size", type=_positive(int), default=256)
    e.set_defaults(func=_evaluate)

    g = sub.add_parser("gradcheck", help="gradient-check every layer, loss and penalty (float64)")
    g.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default 0)")
    g.set_defaults(func=_gradcheck)

    d = sub.add_parser("data", help="download datasets, or show what is cached")
    dsub = d.add_subparsers(dest="data_command", metavar="{download,info}", required=True)
    dl = dsub.add_parser("download", help="download into the user cache, verified by SHA-256")
    dl.add_argument("--dataset", choices=["mnist", "fashion-mnist"], default="mnist")
    dl.add_argument("--timeout", type=_positive(float), default=10.0, help="seconds without an answer before a mirror is given up")
    dsub.add_parser("info", help="what is cached and where")
    d.set_defaults(func=_data)

    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    from .datasets import DataError
    from .io import ModelFileError

    try:
        return args.func(args)
    except (DataError, ModelFileError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
