"""The multilayer autoencoder, 784 -> 128 -> 64 -> 128 -> 784, and a 2-number code for pictures.

    python demos/multilayer.py [--quick] [--data PATH]

Claims checked: a deeper symmetric autoencoder reconstructs digits; and autoencoders
reduce dimension for visualization -- the test set in a 2-unit code, coloured by digit,
beside its first two principal components.
"""

import _common as C
import metrics as M
import numpy as np
from _common import npae

#: epochs in a quick look (--quick): what this model's cost allows in the minute the reproduction takes
QUICK_EPOCHS = 8


def two_unit_model(rng):
    """784 -> 128 ReLU -> 2 (linear: a ReLU could switch a unit of a 2-D map off) -> 128 ReLU -> 784 sigmoid."""
    return npae.models.families.multilayer((128, 2, 128), code_activation="linear", rng=rng, name="multilayer-2d")


def run(args):
    (x, _), (xt, yt), _ = C.setup(args)
    epochs = C.epochs(args, QUICK_EPOCHS)
    x, xt = x.reshape(len(x), 784), xt.reshape(len(xt), 784)
    model = npae.models.families.multilayer(rng=np.random.default_rng(args.seed))
    history, seconds = C.train(model, x, xt, args, "multilayer", epochs)
    mse = C.test_mse(model, xt)
    C.save_reconstructions([xt[:10], model.reconstruct(xt[:10])], ["input", "output"],
                           args.out / "multilayer_reconstructions.png", f"multilayer autoencoder: test MSE {mse:.4f}")
    C.save_loss_curves(history, args.out / "multilayer_loss.png", "multilayer autoencoder")

    flat = two_unit_model(np.random.default_rng(args.seed))
    C.train(flat, x, xt, args, "2-unit code", epochs)
    codes = flat.encode(xt)
    pcs = M.PCA(2).fit(x).encode(xt)
    plot_maps(codes, pcs, yt, args.out / "multilayer_2d_code_vs_pca.png")
    mse_2d = C.test_mse(flat, xt)
    print(f"2-unit code: test MSE {mse_2d:.5f}")
    return {"test_mse": mse, "seconds": seconds, "epochs": epochs, "mse_2d": mse_2d}


def plot_maps(codes, pcs, labels, path):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4.5))
    panels = ((axes[0], codes, "autoencoder, 2-unit code"), (axes[1], pcs, "first two principal components"))
    for ax, points, title in panels:
        sc = ax.scatter(points[:, 0], points[:, 1], c=labels, cmap="tab10", s=3, vmin=-0.5, vmax=9.5)
        ax.set_title(title)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(sc, ax=axes, ticks=range(10), label="digit")
    C.save(fig, path)


def main(argv=None):
    return C.main(__doc__, run, "multilayer", argv)


if __name__ == "__main__":
    main()
