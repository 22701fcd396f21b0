"""What every demo shares: arguments, data, epochs, a non-interactive matplotlib, and two figures.

The demos use the npae that is installed; only when none is do they use the checkout they sit
in (and say so). Their figures go where ``--out`` says; without it, a quick look goes to
``demos/figures/quick/`` and any other run to ``runs/demos/`` (both ignored by git), so the
committed figures of the full reproduction change only when asked: ``--out demos/figures``.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
try:
    import npae
except ImportError:  # not installed: the checkout these demos belong to
    sys.path.insert(0, str(ROOT))
    import npae  # noqa: E402

FIGURES = pathlib.Path(__file__).resolve().parent / "figures"
DEFAULT_OUT = ROOT / "runs" / "demos"
FULL_EPOCHS = 5  # the article's setting


def require_matplotlib() -> None:
    """One line, not a traceback, when matplotlib is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print('error: the demos draw their figures with matplotlib: pip install "npae[plot]"', file=sys.stderr)
        raise SystemExit(1) from None


def positive_int(text: str) -> int:
    """An argparse type: an int of at least 1 (``--epochs 0`` is a mistake, not "the default")."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an int, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--data", type=pathlib.Path,
                   help="folder with the MNIST IDX files (default: cache, else the embedded sample)")
    p.add_argument("--quick", action="store_true",
                   help="the embedded sample, with epochs fitted to each model's cost: a first look in about a minute")
    p.add_argument("--epochs", type=positive_int,
                   help=f"every model's epochs (default {FULL_EPOCHS}; with --quick, each model's own)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, help="use only the first N training images (smoke tests)")
    p.add_argument("--out", type=pathlib.Path,
                   help="where figures go (default demos/figures/quick with --quick, else runs/demos; the committed "
                        "figures are demos/figures, written only when named here)")
    return p


def output_folder(args) -> pathlib.Path:
    """``--out``, or the default for the kind of run; made if missing."""
    args.out = args.out or (FIGURES / "quick" if args.quick else DEFAULT_OUT)
    args.out.mkdir(parents=True, exist_ok=True)
    return args.out


def setup(args):
    """Data (flat and image views) and the output folder."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    print(f"npae {npae.__version__} from {pathlib.Path(npae.__file__).parent}")
    data = npae.load_mnist(path=None if args.quick else args.data)
    print(data.describe())
    (x, y), (xt, yt) = data
    if args.limit:
        x, y = x[: args.limit], y[: args.limit]
        xt, yt = xt[: max(args.limit // 5, 20)], yt[: max(args.limit // 5, 20)]
    print(f"figures go into {output_folder(args)}")
    return (x, y), (xt, yt), data


def epochs(args, quick: int) -> int:
    """``--epochs`` if given, else ``quick`` (this model's budget in a quick look) or FULL_EPOCHS."""
    return args.epochs or (quick if args.quick else FULL_EPOCHS)


def train(model, x, xt, args, label, epochs):
    """fit with the demo's settings; returns (history, seconds)."""
    t = time.perf_counter()
    history = npae.fit(model, x, epochs=epochs, batch_size=args.batch_size, validation_data=xt,
                       rng=np.random.default_rng(args.seed), verbose=True)
    seconds = time.perf_counter() - t
    print(f"{label}: {seconds:.1f} s")
    return history, seconds


def test_mse(model, xt) -> float:
    return float(npae.objectives.losses.mse(model.reconstruct(xt), xt.reshape((len(xt),) + model.input_shape))[0])


def save(fig, path):
    import matplotlib.pyplot as plt

    fig.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(fig)


def main(doc, run, name, argv=None, extend=None):
    """Parse the common arguments (and those ``extend(parser)`` adds), run the demo, print its
    headline, return its numbers."""
    require_matplotlib()
    p = parser(doc.split("\n")[0])
    if extend is not None:
        extend(p)
    args = p.parse_args(argv)
    result = run(args)
    if result is None:  # nothing was trained (a listing)
        return None
    name = getattr(args, "family", None) or name
    epochs = result["epochs"]
    print(f"{name}: test MSE {result['test_mse']:.5f} ({epochs} epoch{'s' * (epochs != 1)}, {result['seconds']:.1f} s)")
    return result


def tile(images, columns: int, gap: int = 2, fill: float = 0.0) -> np.ndarray:
    """Images (H, W) side by side in rows of ``columns``, ``gap`` pixels apart, as one canvas."""
    images = [np.asarray(img, dtype=np.float64) for img in images]
    h, w = images[0].shape
    n_rows = -(-len(images) // columns)
    canvas = np.full((n_rows * (h + gap) - gap, columns * (w + gap) - gap), fill)
    for k, img in enumerate(images):
        r, c = divmod(k, columns)
        canvas[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = img
    return canvas


def save_reconstructions(rows, labels, path, title):
    """Rows of 10 images each (a row per label), as one figure: one canvas, drawn once."""
    import matplotlib.pyplot as plt

    canvas = tile([np.asarray(img).reshape(28, 28) for row in rows for img in list(row)[:10]], 10)
    fig, ax = plt.subplots(figsize=(10, 1.05 * len(rows) + 0.5))
    ax.imshow(canvas, cmap="gray_r", vmin=0, vmax=1)
    ax.set_xticks([])
    ax.set_yticks([30 * r + 14 for r in range(len(rows))], labels)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_title(title)
    save(fig, path)


def save_loss_curves(history, path, title):
    """Every term of the objective per epoch, train (solid) and validation (dashed)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2))
    epochs = history["epoch"]
    for term in ("reconstruction", "code_penalty", "kl"):
        if f"train_{term}" in history.rows[-1] and any(history[f"train_{term}"]):
            line, = ax.plot(epochs, history[f"train_{term}"], marker="o", label=f"train {term}")
            ax.plot(epochs, history[f"val_{term}"], ls="--", marker="o", color=line.get_color(), label=f"test {term}")
    ax.set_xlabel("epoch")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    ax.set_title(title)
    save(fig, path)
