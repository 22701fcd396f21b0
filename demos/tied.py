"""Tied weights: the decoder uses the transpose of the encoder's matrix.

    python demos/tied.py [--quick] [--data PATH]

Claim checked: tying halves the parameters of the ordinary autoencoder (and of the
multilayer one); what does it cost in reconstruction? The shared matrix learns from both
of its uses: its gradient is the sum of the encoder's and the decoder's contributions.
"""

import _common as C
import numpy as np
from _common import npae

#: epochs in a quick look (--quick): what this model's cost allows in the minute the reproduction takes
QUICK_EPOCHS = 5


def run(args):
    (x, _), (xt, _), _ = C.setup(args)
    epochs = C.epochs(args, QUICK_EPOCHS)
    x, xt = x.reshape(len(x), 784), xt.reshape(len(xt), 784)
    A = npae.models.families
    rows, models = [], {}
    for label, make in (("ordinary, 784-64-784", lambda rng: A.ordinary(rng=rng)),
                        ("ordinary, tied", lambda rng: A.ordinary(tied=True, rng=rng)),
                        ("multilayer, 784-128-64-128-784", lambda rng: A.multilayer(rng=rng)),
                        ("multilayer, tied", lambda rng: A.multilayer(tied=True, rng=rng))):
        model = make(np.random.default_rng(args.seed))
        history, seconds = C.train(model, x, xt, args, label, epochs)
        rows.append({"model": label, "params": model.n_params(), "test_mse": C.test_mse(model, xt), "seconds": seconds})
        models[label] = (model, history)
    for r in rows:
        print(f"{r['model']:<32} {r['params']:>8,} parameters  test MSE {r['test_mse']:.5f}")
    tied, history = models["ordinary, tied"]
    untied = models["ordinary, 784-64-784"][0]
    C.save_reconstructions([xt[:10], untied.reconstruct(xt[:10]), tied.reconstruct(xt[:10])],
                           ["input", "untied", "tied"], args.out / "tied_reconstructions.png",
                           f"ordinary autoencoder, untied ({rows[0]['params']:,} parameters) "
                           f"vs tied ({rows[1]['params']:,})")
    C.save_loss_curves(history, args.out / "tied_loss.png", "tied ordinary autoencoder")
    plot_filters(tied, args.out / "tied_filters.png")
    return {"test_mse": rows[1]["test_mse"], "seconds": rows[1]["seconds"], "epochs": epochs, "rows": rows}


def plot_filters(model, path):
    """The 64 columns of the shared W (784 x 64) as 28x28 images: encoder filters and decoder atoms at once."""
    import matplotlib.pyplot as plt

    W = model.encoder[0].W
    filters = [W[:, k].reshape(28, 28) / (np.abs(W[:, k]).max() or 1.0) for k in range(W.shape[1])]
    fig, ax = plt.subplots(figsize=(12, 3.2))
    ax.imshow(C.tile(filters, 16), cmap="RdBu_r", vmin=-1, vmax=1)
    ax.set_xticks([])
    ax.set_yticks([])
    fig.suptitle("tied autoencoder: the columns of W (what each code unit reads, and writes back)")
    C.save(fig, path)


def main(argv=None):
    return C.main(__doc__, run, "tied", argv)


if __name__ == "__main__":
    main()
