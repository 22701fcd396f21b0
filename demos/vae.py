"""The variational autoencoder: a 2-D latent space you can walk, and new digits from noise.

    python demos/vae.py [--quick] [--data PATH]

Claims checked (Kingma and Welling, 2014): trained on the ELBO, the encoder's posterior
means organize the digits in a 2-D latent space; decoding a grid over that space (at the
quantiles of N(0, 1), as in the paper's figure) shows a continuous manifold of digits; and
decoding z ~ N(0, I) gives new digits. A 16-D latent model shows what more latent
dimensions buy in the ELBO and in the samples. The ELBO's terms are reported separately,
in nats per image.
"""

import statistics

import _common as C
import numpy as np
from _common import npae

#: epochs in a quick look (--quick): what this model's cost allows in the minute the reproduction takes
QUICK_EPOCHS = 4


def run(args):
    (x, _), (xt, yt), _ = C.setup(args)
    epochs = C.epochs(args, QUICK_EPOCHS)
    x, xt = x.reshape(len(x), 784), xt.reshape(len(xt), 784)
    results = {}
    for latent in (2, 16):
        model = npae.models.families.vae(latent, rng=np.random.default_rng(args.seed))
        history, seconds = C.train(model, x, xt, args, f"VAE, latent {latent}", epochs)
        terms = model.evaluate(xt, rng=np.random.default_rng(npae.train.VALIDATION_SEED))
        results[latent] = {"model": model, "history": history, "seconds": seconds, **terms,
                           "test_mse": C.test_mse(model, xt)}
        print(f"latent {latent}: test -ELBO {terms['total']:.2f} nats = reconstruction {terms['reconstruction']:.2f} "
              f"+ KL {terms['kl']:.2f}; "
              f"MSE of the reconstruction from the posterior mean {results[latent]['test_mse']:.5f}")
    two, sixteen = results[2]["model"], results[16]["model"]
    plot_manifold(two, args.out / "vae_manifold.png")
    plot_latent_means(two.encode(xt), yt, args.out / "vae_latent_means.png")
    rng = np.random.default_rng(args.seed)
    C.save_reconstructions([two.sample(10, rng), two.sample(10, rng), sixteen.sample(10, rng), sixteen.sample(10, rng)],
                           ["latent 2", "", "latent 16", ""], args.out / "vae_samples.png",
                           "new digits: the decoder at z ~ N(0, I)")
    C.save_reconstructions([xt[:10], two.reconstruct(xt[:10]), sixteen.reconstruct(xt[:10])],
                           ["input", "latent 2", "latent 16"], args.out / "vae_reconstructions.png",
                           "VAE reconstructions (decoded posterior means)")
    plot_elbo(results[2]["history"], results[16]["history"], args.out / "vae_loss.png")
    r2 = results[2]
    return {"test_mse": r2["test_mse"], "seconds": r2["seconds"] + results[16]["seconds"], "epochs": epochs,
            "rows": [{"latent": k, **{t: v[t] for t in ("total", "reconstruction", "kl", "test_mse", "seconds")}}
                     for k, v in results.items()]}


def plot_manifold(model, path, n=15):
    """Decode z on an n x n grid at the quantiles of N(0, 1) (Kingma and Welling's figure 4)."""
    import matplotlib.pyplot as plt

    q = [statistics.NormalDist().inv_cdf(p) for p in np.linspace(0.5 / n, 1 - 0.5 / n, n)]
    z = np.array([[a, b] for b in q[::-1] for a in q], dtype=model.dtype)
    images = model.decode(z).reshape(n, n, 28, 28)
    canvas = images.transpose(0, 2, 1, 3).reshape(n * 28, n * 28)
    fig, ax = plt.subplots(figsize=(7, 7))
    ax.imshow(canvas, cmap="gray_r", vmin=0, vmax=1, extent=(0, n, 0, n))
    ticks = np.arange(n) + 0.5
    ax.set_xticks(ticks[::2], [f"{v:.1f}" for v in q[::2]])
    ax.set_yticks(ticks[::2], [f"{v:.1f}" for v in q[::2]])
    ax.set(xlabel="z1", ylabel="z2", title="the 2-D latent manifold: decoder output on a grid of z")
    C.save(fig, path)


def plot_latent_means(mu, labels, path):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 5))
    sc = ax.scatter(mu[:, 0], mu[:, 1], c=labels, cmap="tab10", s=3, vmin=-0.5, vmax=9.5)
    fig.colorbar(sc, ax=ax, ticks=range(10), label="digit")
    ax.set(xlabel="mu1", ylabel="mu2", title="test set: posterior means (latent 2)")
    C.save(fig, path)


def plot_elbo(h2, h16, path):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    for history, label in ((h2, "latent 2"), (h16, "latent 16")):
        for term, ls in (("total", "-"), ("reconstruction", "--"), ("kl", ":")):
            ax.plot(history["epoch"], history[f"val_{term}"], ls=ls, marker="o", label=f"{label}: {term}")
    ax.set(xlabel="epoch", ylabel="nats per test image", yscale="log", title="-ELBO = reconstruction + KL (test set)")
    ax.legend(fontsize=7)
    C.save(fig, path)


def main(argv=None):
    return C.main(__doc__, run, "vae", argv)


if __name__ == "__main__":
    main()
