"""What every demo shares: arguments, data, a non-interactive matplotlib, and two figures."""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the demos run from a checkout, installed or not

import npae  # noqa: E402

FIGURES = pathlib.Path(__file__).resolve().parent / "figures"


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--data", type=pathlib.Path, help="folder with the MNIST IDX files (default: cache, else the embedded sample)")
    p.add_argument("--quick", action="store_true", help="the embedded sample and 1 epoch: a quick look")
    p.add_argument("--epochs", type=int, help="default 5 (1 with --quick)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, help="use only the first N training images (smoke tests)")
    p.add_argument("--out", type=pathlib.Path,
                   help="where figures go (default demos/figures, or demos/figures/quick with --quick, so a quick "
                        "look never overwrites the committed figures of a full run)")
    return p


def setup(args):
    """Data (flat and image views), the epoch count, and the output folder."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    data = npae.load_mnist(path=None if args.quick else args.data)
    print(data.describe())
    (x, y), (xt, yt) = data
    if args.limit:
        x, y = x[: args.limit], y[: args.limit]
        xt, yt = xt[: max(args.limit // 5, 20)], yt[: max(args.limit // 5, 20)]
    args.epochs = args.epochs or (1 if args.quick else 5)
    args.out = args.out or (FIGURES / "quick" if args.quick else FIGURES)
    args.out.mkdir(parents=True, exist_ok=True)
    return (x, y), (xt, yt), data


def train(model, x, xt, args, label):
    """fit with the demo's settings; returns (history, seconds)."""
    t = time.perf_counter()
    history = npae.fit(model, x, epochs=args.epochs, batch_size=args.batch_size, validation_data=xt,
                        rng=np.random.default_rng(args.seed), verbose=True)
    seconds = time.perf_counter() - t
    print(f"{label}: {seconds:.1f} s")
    return history, seconds


def test_mse(model, xt) -> float:
    return float(npae.losses.mse(model.reconstruct(xt), xt.reshape((len(xt),) + model.input_shape))[0])


def save(fig, path):
    import matplotlib.pyplot as plt

    fig.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(fig)


def main(doc, run, name, argv=None):
    """Parse the common arguments, run the demo, print its headline, return its numbers."""
    args = parser(doc.split("\n")[0]).parse_args(argv)
    result = run(args)
    print(f"{name}: test MSE {result['test_mse']:.5f} ({result['epochs']} epochs, {result['seconds']:.1f} s)")
    return result


def save_reconstructions(rows, labels, path, title):
    """Rows of 10 images each (a row per label), as one figure."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(rows), 10, figsize=(10, 1.1 * len(rows) + 0.4))
    for r, (row, label) in enumerate(zip(rows, labels)):
        for c in range(10):
            ax = axes[r, c]
            ax.imshow(np.asarray(row[c]).reshape(28, 28), cmap="gray_r", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(label, rotation=0, ha="right", va="center")
    fig.suptitle(title)
    save(fig, path)


def save_loss_curves(history, path, title):
    """Every term of the objective per epoch, train (solid) and validation (dashed)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2))
    epochs = history["epoch"]
    for term in ("reconstruction", "code_penalty"):
        if any(history[f"train_{term}"]):
            line, = ax.plot(epochs, history[f"train_{term}"], marker="o", label=f"train {term}")
            ax.plot(epochs, history[f"val_{term}"], ls="--", marker="o", color=line.get_color(), label=f"test {term}")
    ax.set_xlabel("epoch")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    ax.set_title(title)
    save(fig, path)
