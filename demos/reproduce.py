"""Run every demo and write a markdown report beside the figures: "reproduce the article".

    python demos/reproduce.py --quick                                   # the embedded sample: about a minute
    python demos/reproduce.py --data PATH/TO/mnist --out demos/figures  # full MNIST, 5 epochs each (the article's)

A quick look gives each model the epochs its cost allows (dense models many, the denoiser
one) and writes under demos/figures/quick; without --out a full run writes under runs/demos.

The report puts npae's numbers beside the published ones (the article's notebook and the
Keras blog), with the definitions used, so a reader sees what matches and why something
differs.
"""

import platform
import time

import _common as C
import contractive
import convolutional
import denoising
import multilayer
import ordinary
import sparse
import tied
import vae
from _common import npae

PUBLISHED = {  # test MSE from the article's notebook (Keras, MSE, batch 128, full MNIST)
    "ordinary": "0.0055 (MSE)",
    "multilayer": "0.0082 (MSE)",
}


def run(args):
    C.output_folder(args)
    t0 = time.perf_counter()
    results = {}
    for name, module in (("ordinary", ordinary), ("multilayer", multilayer), ("convolutional", convolutional),
                         ("sparse", sparse), ("denoising", denoising),
                         ("contractive", contractive), ("tied", tied), ("vae", vae)):
        print(f"\n=== {name} ===")
        results[name] = module.run(args)
    total = time.perf_counter() - t0
    data = npae.load_mnist(path=None if args.quick else args.data)
    report = write_report(results, args, data, total)
    print(f"\nwrote {report} ({total:.0f} s in all)")
    return results


def write_report(results, args, data, total):
    (x, _), (xt, _) = data
    n_train = min(len(x), args.limit or len(x))
    r = results
    rows = [
        ("ordinary, 784-64-784", f"{r['ordinary']['test_mse']:.5f}", PUBLISHED["ordinary"], r["ordinary"]["seconds"]),
        ("multilayer, 784-128-64-128-784", f"{r['multilayer']['test_mse']:.5f}", PUBLISHED["multilayer"],
         r["multilayer"]["seconds"]),
        ("convolutional, code 8x4x4", f"{r['convolutional']['test_mse']:.5f}", "not reported as MSE",
         r["convolutional"]["seconds"]),
        ("sparse, L1 on the code", f"{r['sparse']['test_mse']:.5f} (ordinary {r['sparse']['mse_ordinary']:.5f})",
         "not reported as MSE", r["sparse"]["seconds"]),
        ("denoising, noisy in -> clean",
         f"{r['denoising']['test_mse']:.5f} (noisy input {r['denoising']['mse_noisy']:.4f})",
         "not reported as MSE", r["denoising"]["seconds"]),
        (f"contractive, lam {r['contractive']['lam']:g} (beyond the article)", f"{r['contractive']['test_mse']:.5f}",
         "not in the article", r["contractive"]["seconds"]),
        (f"tied, 784-64-784, {r['tied']['rows'][1]['params']:,} parameters (beyond)", f"{r['tied']['test_mse']:.5f}",
         "not in the article", r["tied"]["seconds"]),
        ("VAE, latent 2, Bernoulli decoder (beyond)",
         f"{r['vae']['test_mse']:.5f} (-ELBO {r['vae']['rows'][0]['total']:.1f} nats)", "not in the article",
         r["vae"]["rows"][0]["seconds"]),
    ]
    s = r["sparse"]
    lines = [
        "# Reproducing \"Deep inside: Autoencoders\" with npae", "",
        f"{data.describe(folder=False)}" + (f"; the first {n_train:,} training images" if args.limit else ""), "",
        (f"A quick look: the embedded sample, and for each model the epochs its cost allows (the table), written "
         f"into {args.out}. The full reproduction is "
         "`python demos/reproduce.py --data PATH/TO/mnist --out demos/figures`."
         if args.quick else f"{args.epochs or C.FULL_EPOCHS} epoch(s) per model."),
        "",
        f"Batch {args.batch_size}, Adam (lr 1e-3, PyTorch's algorithm), seed {args.seed}; "
        f"{total:.0f} s in all on {platform.machine()} with {npae.__name__} {npae.__version__}.", "",
        "| model | npae test MSE | published | epochs | training time |", "|---|---|---|---|---|",
    ]
    order = ["ordinary", "multilayer", "convolutional", "sparse", "denoising", "contractive", "tied", "vae"]
    lines += [f"| {a} | {b} | {c} | {r[key]['epochs']} | {d:.1f} s |" for (a, b, c, d), key in zip(rows, order)]
    lines += [
        "", "## Sparsity (the Keras blog: mean code activation 3.33 with the L1 penalty vs 7.30 without)", "",
        f"mean code activation on the test set: ordinary {s['mean_activation_ordinary']:.3f}, "
        f"sparse {s['mean_activation']:.3f} "
        f"({s['mean_activation'] / s['mean_activation_ordinary'] - 1:+.0%}); exact zeros {s['zeros_ordinary']:.1%} vs "
        f"{s['zeros']:.1%}; test MSE {s['test_mse'] / s['mse_ordinary'] - 1:+.0%}. "
        "The blog's numbers come from a 32-unit code trained 100 epochs with older Keras "
        "(its L1 summed over the batch); "
        "npae's is 64 units, L1 3e-5 averaged over the batch.",
        "", "## Autoencoder vs PCA (test MSE by code size)", "",
        "| code size | PCA | linear autoencoder | ordinary autoencoder (ReLU code) |", "|---|---|---|---|",
    ]
    lines += [f"| {k} | {p:.5f} | {lin:.5f} | {non:.5f} |" for k, p, lin, non in r["ordinary"]["pca_rows"]]
    wins = [k for k, p, _, non in r["ordinary"]["pca_rows"] if non < p]
    losses = [k for k, p, _, non in r["ordinary"]["pca_rows"] if non >= p]
    lines += [
        "", "PCA is the best any linear projection can do; a linear autoencoder can at most reach it (its gap to PCA",
        f"is what {r['ordinary']['sweep_epochs']} epochs leave unconverged). {pca_verdict(wins, losses)} "
        "(ordinary_vs_pca.png).", "",
        *next_layers(r["convolutional"]),
        *beyond(r),
        *claims_section(args.out),
        "## Definitions", "",
        "- Test MSE: the mean over all pixels and all test images of (output - clean input)^2, pixels in [0, 1].",
        "- The article trains every model with MSE; the Keras blog used binary cross-entropy for the convolutional",
        "  and denoising models, so its losses are not comparable to these MSEs.",
        "- Denoising: inputs corrupted by Gaussian noise of std 0.5 clipped to [0, 1] "
        "(drawn by np.random.default_rng(0)",
        "  for the test set); the MSE compares the output with the clean image.",
        "- Sparse: L1Activity(3e-5) = 3e-5 x (per-sample sum of |code|) averaged over the batch.",
        "- The convolutional families start their sigmoid output bias at logit(0.1307) (docs/choices.md).",
        "- Contractive: Contractive(lam) = lam x (per-sample ||J(x)||_F^2 of the encoder) averaged over the batch.",
        "- VAE: -ELBO = reconstruction (-log p(x|z), Bernoulli, summed over the 784 pixels) + KL(q(z|x) || N(0, I)),",
        "  in nats per image, averaged over the test set, one z per image drawn with np.random.default_rng(0);",
        "  its test MSE is that of the decoded posterior mean.",
        "", "Figures: " + ", ".join(sorted(p.name for p in args.out.glob("*.png"))),
    ]
    path = args.out / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def claims_section(out) -> list[str]:
    """A pointer to demos/claims.py's reports: linked where they sit beside this one, else how to make them."""
    found = sorted(out.glob("claims*/claims.md"))
    lines = ["## What autoencoders are for: the article's claims, measured", "",
             "Denoising against classical filters and PCA, 2-D maps against PCA-2, codes as features for a linear "
             "probe (with untrained encoders as controls), and compression against JPEG: demos/claims.py."]
    if found:
        lines[-1] += " Reports: " + ", ".join(f"[{p.parent.name}/claims.md]({p.parent.name}/claims.md)" for p in found)
        lines[-1] += "."
    else:
        lines[-1] += f" Run `python demos/claims.py --data PATH --out {out}/claims-mnist` for its report."
    return lines + [""]


def _sizes(ks) -> str:
    return ", ".join(map(str, ks[:-1])) + (" and " if len(ks) > 1 else "") + str(ks[-1])


def pca_verdict(wins, losses) -> str:
    """The sentence for any outcome: where the nonlinear autoencoder's test MSE is below PCA's."""
    if not losses:
        return "In this run the nonlinear autoencoder's test MSE is below PCA's at every code size."
    if not wins:
        return "In this run the nonlinear autoencoder's test MSE is below PCA's at none of the code sizes."
    return (f"In this run the nonlinear autoencoder's test MSE is below PCA's at code size{'s' * (len(wins) > 1)} "
            f"{_sizes(wins)}, and not at {_sizes(losses)}.")


def next_layers(c):
    """The section comparing the article's convolutional design with the next layers, same budget."""
    if "variant" not in c:
        return ["## The next layers: strided convolutions, transposed convolutions, BatchNorm", "",
                "A quick look leaves this comparison to the full reproduction (its minute is spent).", ""]
    v = c["variant"]
    better = "lower" if v["test_mse"] < c["test_mse"] else "higher"
    return [
        "## The next layers: strided convolutions, transposed convolutions, BatchNorm", "",
        "The article's convolutional autoencoder beside the same channels and code with stride-2 convolutions in",
        "place of max pooling, learned ConvTranspose2D (3x3, stride 2) in place of nearest-neighbour upsampling,",
        "and a BatchNorm2D after every hidden convolution (whose bias it would cancel, so none), trained with the",
        f"same budget ({c['epochs']} epoch(s), the same seed):", "",
        "| model | test MSE | parameters | training time |", "|---|---|---|---|",
        f"| the article's design | {c['test_mse']:.5f} | {c['params']:,} | {c['seconds']:.1f} s |",
        f"| stride / transpose / BatchNorm | {v['test_mse']:.5f} | {v['params']:,} | {v['seconds']:.1f} s |",
        "", f"With this budget the next layers' test MSE is {better} than the article's design's "
        f"({v['test_mse'] / c['test_mse'] - 1:+.0%}); their reconstructions are side by side in "
        "convolutional_variant.png.", "",
    ]


def beyond(r):
    """The report's sections for the families beyond the article: contractive, tied, VAE."""
    c, t, v = r["contractive"], r["tied"], r["vae"]
    lines = [
        "## Contractive (Rifai et al., 2011): the same 784-64-784 ReLU network, lam on ||J||_F^2", "",
        "Code movement for random input perturbations of norm 0.1: per unit of input movement, and as a",
        "scale-free contraction ratio (code movement / mean distance between the codes of two random test",
        "images, over input movement / mean distance between the images; a ReLU encoder could shrink its raw",
        "Jacobian by shrinking its scale, which the decoder undoes, but not this ratio):", "",
        "| lam | test MSE | mean ‖J‖²_F | code movement / input movement | contraction ratio |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {row['lam']:g} | {row['test_mse']:.5f} | {row['jacobian']:.2f} | {row['movement']:.3f} "
              f"| {row['contraction']:.3f} |" for row in c["sweep"]]
    lines += [
        "", f"At lam {c['lam']:g} (npae's default) the Jacobian's squared norm is "
        f"{c['jacobian'] / c['jacobian_ordinary'] - 1:+.0%} "
        f"and the contraction ratio {c['contraction'] / c['contraction_ordinary'] - 1:+.0%} "
        "against the ordinary model, "
        f"for a test MSE {c['test_mse'] / c['mse_ordinary'] - 1:+.0%} (contractive_sensitivity.png).", "",
        "## Tied weights: the decoder uses W^T", "",
        "| model | parameters | test MSE |", "|---|---|---|",
    ]
    lines += [f"| {row['model']} | {row['params']:,} | {row['test_mse']:.5f} |" for row in t["rows"]]
    lines += [
        "", "## Variational autoencoder (Kingma and Welling, 2014): 784-512-(mu, logvar), Bernoulli decoder", "",
        "| latent | -ELBO (nats/image) | reconstruction | KL | MSE of the decoded mean | training time |",
        "|---|---|---|---|---|---|",
    ]
    lines += [f"| {row['latent']} | {row['total']:.2f} | {row['reconstruction']:.2f} | {row['kl']:.2f} "
              f"| {row['test_mse']:.5f} | {row['seconds']:.1f} s |" for row in v["rows"]]
    lines += ["", "Figures: vae_manifold.png (the 2-D latent manifold), vae_latent_means.png, vae_samples.png.", ""]
    return lines


def main(argv=None):
    C.require_matplotlib()
    args = C.parser(__doc__.split("\n")[0]).parse_args(argv)
    return run(args)


if __name__ == "__main__":
    main()
