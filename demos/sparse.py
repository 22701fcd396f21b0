"""The sparse autoencoder: an L1 penalty on the code, beside the ordinary autoencoder.

    python demos/sparse.py [--quick] [--data PATH]

Claim checked: the L1 activity penalty makes the code sparser (the Keras blog reports a
mean activation of 3.33 against 7.30) at little cost in reconstruction.
"""

import _common as C
import numpy as np
from _common import npae

#: epochs in a quick look (--quick): what this model's cost allows in the minute the reproduction takes
QUICK_EPOCHS = 8


def code_stats(model, xt):
    h = model.encode(xt)
    return h, float(h.mean()), float((h == 0).mean())


def run(args):
    (x, _), (xt, _), _ = C.setup(args)
    epochs = C.epochs(args, QUICK_EPOCHS)
    x, xt = x.reshape(len(x), 784), xt.reshape(len(xt), 784)
    ordinary = npae.models.families.ordinary(rng=np.random.default_rng(args.seed))
    C.train(ordinary, x, xt, args, "ordinary", epochs)
    sparse = npae.models.families.sparse(rng=np.random.default_rng(args.seed))
    history, seconds = C.train(sparse, x, xt, args, "sparse", epochs)
    h_o, mean_o, zeros_o = code_stats(ordinary, xt)
    h_s, mean_s, zeros_s = code_stats(sparse, xt)
    mse_o, mse_s = C.test_mse(ordinary, xt), C.test_mse(sparse, xt)
    print(f"mean code activation: ordinary {mean_o:.3f}, sparse {mean_s:.3f} ({mean_s / mean_o - 1:+.0%}); "
          f"exact zeros {zeros_o:.1%} vs {zeros_s:.1%}; test MSE {mse_o:.5f} vs {mse_s:.5f} ({mse_s / mse_o - 1:+.0%})")
    plot_histograms(h_o, h_s, args.out / "sparse_code_histogram.png", sparse.code_penalty.lam)
    C.save_reconstructions([xt[:10], ordinary.reconstruct(xt[:10]), sparse.reconstruct(xt[:10])],
                           ["input", "ordinary", "sparse"], args.out / "sparse_reconstructions.png",
                           "ordinary vs sparse (L1 on the code)")
    C.save_loss_curves(history, args.out / "sparse_loss.png", "sparse autoencoder")
    return {"test_mse": mse_s, "seconds": seconds, "epochs": epochs, "mse_ordinary": mse_o,
            "mean_activation": mean_s, "mean_activation_ordinary": mean_o, "zeros": zeros_s, "zeros_ordinary": zeros_o}


def plot_histograms(h_o, h_s, path, lam):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    bins = np.linspace(0, max(h_o.max(), h_s.max()), 60)
    ax.hist(h_o.ravel(), bins=bins, alpha=0.6, label=f"ordinary (mean {h_o.mean():.2f})")
    ax.hist(h_s.ravel(), bins=bins, alpha=0.6, label=f"sparse, L1 {lam:g} (mean {h_s.mean():.2f})")
    ax.set_yscale("log")
    ax.set_xlabel("code activation (test set)")
    ax.set_ylabel("count")
    ax.legend(fontsize=8)
    C.save(fig, path)


def main(argv=None):
    return C.main(__doc__, run, "sparse", argv)


if __name__ == "__main__":
    main()
