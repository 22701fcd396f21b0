"""The ordinary (undercomplete) autoencoder, 784 -> 64 -> 784, and how it compares with PCA.

    python demos/ordinary.py [--quick] [--data PATH]

Claims checked: an undercomplete autoencoder reconstructs digits from 64 numbers; and
"autoencoders learn more interesting projections than PCA" -- here measured as test
reconstruction MSE against the code size for PCA, a linear autoencoder (which can at best
find PCA's subspace) and the nonlinear ordinary autoencoder.
"""

import _common as C
import metrics as M
import numpy as np
from _common import npae

#: epochs in a quick look (--quick): what this model's cost allows in the minute the reproduction takes
QUICK_EPOCHS = 15
QUICK_SWEEP_EPOCHS = 3  # each of the ten models of the comparison with PCA

CODE_SIZES = (2, 8, 16, 32, 64)


def pca_mse(pca, xt, k):
    """Test MSE of projecting onto the top-k principal directions of the training set (``pca`` fit on it)."""
    return float(np.mean((pca.decode(pca.encode(xt, k)) - xt) ** 2))


def linear_autoencoder(k, rng):
    return npae.Autoencoder(npae.Sequential(npae.Dense(784, k, rng=rng)), npae.Sequential(npae.Dense(k, 784, rng=rng)),
                            input_shape=(784,), name=f"linear-{k}")


def run(args):
    (x, _), (xt, _), _ = C.setup(args)
    epochs = C.epochs(args, QUICK_EPOCHS)
    x, xt = x.reshape(len(x), 784), xt.reshape(len(xt), 784)
    model = npae.models.families.ordinary(code=64, rng=np.random.default_rng(args.seed))
    history, seconds = C.train(model, x, xt, args, "ordinary", epochs)
    mse = C.test_mse(model, xt)
    C.save_reconstructions([xt[:10], model.reconstruct(xt[:10])], ["input", "output"],
                           args.out / "ordinary_reconstructions.png",
                           f"ordinary autoencoder, 64-number code: test MSE {mse:.4f}")
    C.save_loss_curves(history, args.out / "ordinary_loss.png", "ordinary autoencoder")

    rows, sweep = [], C.epochs(args, QUICK_SWEEP_EPOCHS)
    pca = M.PCA(max(CODE_SIZES)).fit(x)  # one eigendecomposition; each k takes its top k directions
    for k in CODE_SIZES:
        lin = linear_autoencoder(k, np.random.default_rng(args.seed))
        npae.fit(lin, x, epochs=sweep, batch_size=args.batch_size, rng=np.random.default_rng(args.seed), verbose=False)
        nonlin = npae.models.families.ordinary(code=k, rng=np.random.default_rng(args.seed))
        npae.fit(nonlin, x, epochs=sweep, batch_size=args.batch_size, rng=np.random.default_rng(args.seed),
                 verbose=False)
        rows.append((k, pca_mse(pca, xt, k), C.test_mse(lin, xt), C.test_mse(nonlin, xt)))
        print(f"code {k:3d}: PCA {rows[-1][1]:.5f}  linear AE {rows[-1][2]:.5f}  ordinary AE {rows[-1][3]:.5f}")
    plot_pca_comparison(rows, args.out / "ordinary_vs_pca.png", sweep)
    return {"test_mse": mse, "seconds": seconds, "epochs": epochs, "sweep_epochs": sweep, "pca_rows": rows}


def plot_pca_comparison(rows, path, epochs):
    import matplotlib.pyplot as plt

    k, pca, lin, nonlin = (np.array(col) for col in zip(*rows))
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(k, pca, "o-", label="PCA (exact)")
    ax.plot(k, lin, "s--", label=f"linear autoencoder ({epochs} epochs)")
    ax.plot(k, nonlin, "^-", label=f"ordinary autoencoder, ReLU code ({epochs} epochs)")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("code size")
    ax.set_ylabel("test reconstruction MSE")
    ax.legend(fontsize=8)
    C.save(fig, path)


def main(argv=None):
    return C.main(__doc__, run, "ordinary", argv)


if __name__ == "__main__":
    main()
