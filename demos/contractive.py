"""The contractive autoencoder: how much does the code move when the input moves a little?

    python demos/contractive.py [--quick] [--data PATH]

Claim checked (Rifai et al., 2011): penalizing the encoder's Jacobian, lam * ||J(x)||_F^2,
makes the code insensitive to small perturbations of the input, at some cost in
reconstruction. The ordinary model (the same 784-64-784 ReLU network, lam = 0) is the
baseline. Sensitivities are reported both raw and relative to the code's own spread
(a ReLU encoder could otherwise "contract" by merely shrinking its scale, which the
decoder undoes): the contraction ratio divides the code's movement by the mean distance
between the codes of two random test images, and the input's by that between the images.
"""

import _common as C
import numpy as np
from _common import npae

#: epochs in a quick look (--quick): what this model's cost allows in the minute the reproduction takes
QUICK_EPOCHS = 5


def sensitivity(model, xt, radii, seed=1):
    """Per radius r: the raw ratio mean ||h(x + d) - h(x)|| / r, and the scale-free contraction
    ratio (mean ||h(x + d) - h(x)|| / code spread) / (r / input spread), where a spread is the
    mean distance between two random test images (in code space, in input space); d random
    of norm r. Below 1: a small step moves the code less, relative to the distances between
    digits, than it moves the input."""
    rng = np.random.default_rng(seed)
    h = model.encode(xt)
    i, j = rng.integers(0, len(xt), (2, 4 * len(xt)))
    spread_h = float(np.mean(np.linalg.norm(h[i] - h[j], axis=1)))
    spread_x = float(np.mean(np.linalg.norm(xt[i] - xt[j], axis=1)))
    direction = rng.standard_normal(xt.shape).astype(xt.dtype)
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    raw, ratio = [], []
    for r in radii:
        moved = float(np.mean(np.linalg.norm(model.encode(xt + direction * xt.dtype.type(r)) - h, axis=1)))
        raw.append(moved / r)
        ratio.append((moved / spread_h) / (r / spread_x))
    return np.array(raw), np.array(ratio)


def jacobian_spectrum(model, xt, n=100):
    """Singular values of the encoder's Jacobian J(x) (64 x 784, by backprop), averaged over n test images."""
    return np.linalg.svd(model.jacobian(xt[:n]).astype(np.float64), compute_uv=False).mean(axis=0)


def run(args):
    (x, _), (xt, _), _ = C.setup(args)
    epochs = C.epochs(args, QUICK_EPOCHS)
    x, xt = x.reshape(len(x), 784), xt.reshape(len(xt), 784)
    lams = [0.0] + [npae.models.families.CONTRACTIVE_LAM * f for f in (0.1, 1.0, 10.0)]
    radii = [0.01, 0.1, 1.0, 3.0]
    rows, models, seconds = [], {}, 0.0
    for lam in lams:
        label = "ordinary (lam 0)" if lam == 0 else f"contractive, lam {lam:g}"
        model = npae.models.families.contractive(lam=lam, code_activation="relu", rng=np.random.default_rng(args.seed))
        history, s = C.train(model, x, xt, args, label, epochs)
        pen = npae.objectives.penalties.Contractive(1.0).bind(model.encoder)
        raw, ratio = sensitivity(model, xt, radii)
        rows.append({"lam": lam, "test_mse": C.test_mse(model, xt),
                     "jacobian": float(pen.jacobian_norms(model.encode(xt)).mean()),
                     "movement": float(raw[1]), "contraction": float(ratio[1]),
                     "raw_curve": raw, "contraction_curve": ratio})
        models[lam] = model
        if lam == npae.models.families.CONTRACTIVE_LAM:
            main_history, seconds = history, s
    for r in rows:
        print(f"lam {r['lam']:<8g} test MSE {r['test_mse']:.5f}  mean ||J||_F^2 {r['jacobian']:8.2f}  "
              f"code movement per unit input (|d| = 0.1) {r['movement']:.3f}, contraction ratio {r['contraction']:.3f}")
    default = next(r for r in rows if r["lam"] == npae.models.families.CONTRACTIVE_LAM)
    base = rows[0]
    spectra = [jacobian_spectrum(models[r["lam"]], xt) for r in rows]
    plot_sensitivity(rows, radii, spectra, args.out / "contractive_sensitivity.png")
    model = models[npae.models.families.CONTRACTIVE_LAM]
    C.save_reconstructions([xt[:10], models[0.0].reconstruct(xt[:10]), model.reconstruct(xt[:10])],
                           ["input", "ordinary", "contractive"], args.out / "contractive_reconstructions.png",
                           f"ordinary vs contractive (lam {npae.models.families.CONTRACTIVE_LAM:g})")
    C.save_loss_curves(main_history, args.out / "contractive_loss.png", "contractive autoencoder")
    return {"test_mse": default["test_mse"], "seconds": seconds, "epochs": epochs, "lam": default["lam"],
            "mse_ordinary": base["test_mse"], "jacobian": default["jacobian"], "jacobian_ordinary": base["jacobian"],
            "contraction": default["contraction"], "contraction_ordinary": base["contraction"],
            "sweep": [{k: v for k, v in r.items() if not k.endswith("curve")} for r in rows]}


def plot_sensitivity(rows, radii, spectra, path):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for r, spectrum in zip(rows, spectra):
        label = "ordinary" if r["lam"] == 0 else f"lam {r['lam']:g}"
        axes[0].plot(radii, r["contraction_curve"], marker="o", label=label)
        axes[1].plot(np.arange(1, len(spectrum) + 1), spectrum / max(r["jacobian"], 1e-12) ** 0.5, label=label)
    axes[0].set(xscale="log", xlabel="norm of the input perturbation",
                ylabel="contraction ratio (scale-free)", title="how far the code moves, relative to digit distances")
    axes[1].set(yscale="log", ylim=(1e-3, 1), xlabel="rank", ylabel="singular value / ||J||_F",
                title="spectrum of the encoder's Jacobian (100 test images)")
    axes[0].legend(fontsize=8)
    axes[1].legend(fontsize=8)
    C.save(fig, path)


def main(argv=None):
    return C.main(__doc__, run, "contractive", argv)


if __name__ == "__main__":
    main()
