"""What autoencoders are for: the article's claims, measured.

    python demos/claims.py --quick                       # the embedded MNIST sample, a few minutes
    python demos/claims.py --data PATH/TO/mnist --other-data PATH/TO/fashion-mnist --out demos/figures/claims-mnist
    python demos/claims.py --dataset fashion-mnist --data PATH/TO/fashion-mnist --other-data PATH/TO/mnist \\
        --out demos/figures/claims-fashion-mnist

The article ("Deep inside: Autoencoders") says, in this order:

1. denoising and dimensionality reduction for visualization are the two major applications;
2. with the right dimension and sparsity constraints autoencoders learn more interesting
   projections than PCA;
3. sparse autoencoders learn features for other tasks such as classification; denoising ones a
   more robust representation;
4. autoencoders are bad at image compression (JPEG does better) and compress well only data
   like their training set.

One section each (denoising; visualization; features; compression), every table and verdict
computed here from the run's numbers; the measurements are in demos/metrics.py. Splits: the last
tenth of the training set is a validation split (the classical filters' parameters and PCA's k
are chosen on it); the models and PCA are fit on the rest; everything is scored on the test set.
"""

from __future__ import annotations

import argparse
import pathlib
import platform
import time

import _common as C
import metrics as M
import numpy as np
from _common import npae

NOISES = (("gaussian", 0.1), ("gaussian", 0.3), ("gaussian", 0.5), ("gaussian", 0.7),
          ("salt and pepper", 0.1), ("salt and pepper", 0.25))
SIGMAS = (0.5, 0.7, 1.0, 1.4, 2.0)  # Gaussian blur std, chosen per noise on the validation split
MEDIANS = (3, 5)
PCA_KS = (8, 16, 32, 64, 128, 256)  # PCA denoising: k chosen the same way
CODE_SIZES = (8, 16, 32, 64)  # compression: ordinary autoencoders and PCA of these sizes
BITS = (8, 4)
QUALITIES = (1, 5, 10, 20, 30, 50, 70, 90, 95)
PROBE_LR, PROBE_BATCH, FEW_LABELS = 3e-3, 256, 1000
LEARNED = ("ordinary", "dense denoiser", "conv denoiser")  # the denoising section's learned methods
PROBED = ("ordinary", "sparse", "contractive", "dense denoiser", "convolutional")  # the codes the probe reads
ROBUST_NOISE = (0.3, 0.5)  # Gaussian noise on the test inputs of the robustness probe
QUICK = {"dense": 10, "conv": 1, "probe_steps": 600, "draws": 3}
FULL = {"dense": 5, "conv": 5, "probe_steps": 3000, "draws": 5}


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="the embedded MNIST sample, short budgets")
    p.add_argument("--data", type=pathlib.Path, help="folder with the IDX files of --dataset")
    p.add_argument("--dataset", default="mnist", choices=("mnist", "fashion-mnist"))
    p.add_argument("--other-data", type=pathlib.Path,
                   help="a second dataset's IDX folder: compression of data unlike the training set")
    p.add_argument("--epochs", type=int, help=f"every model's epochs (default {FULL['dense']}; quick: dense "
                                              f"{QUICK['dense']}, conv {QUICK['conv']})")
    p.add_argument("--probe-steps", type=int, help="Adam steps of each linear probe")
    p.add_argument("--draws", type=int, help="draws of the 1,000 labels")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, help="only the first N training images (smoke tests)")
    p.add_argument("--out", type=pathlib.Path, help="report and figures (default demos/figures/quick/claims with "
                                                    "--quick, else runs/claims)")
    args = p.parse_args(argv)
    if args.quick and (args.data or args.dataset != "mnist"):
        p.error("--quick uses the embedded MNIST sample; leave out --data and --dataset")
    if not args.quick and args.data is None:
        p.error("give --data PATH (the IDX files of --dataset), or --quick for the embedded sample")
    budget = QUICK if args.quick else FULL
    args.dense_epochs = args.epochs or budget["dense"]
    args.conv_epochs = args.epochs or budget["conv"]
    args.probe_steps = args.probe_steps or budget["probe_steps"]
    args.draws = args.draws or budget["draws"]
    args.out = args.out or (C.FIGURES / "quick" / "claims" if args.quick else C.ROOT / "runs" / "claims")
    args.out.mkdir(parents=True, exist_ok=True)
    return args


# -- data and models ----------------------------------------------------------------------------
def load(args):
    path = npae.data.datasets.SAMPLE_DIR if args.quick else args.data
    data = npae.data.datasets.load(args.dataset, path=path)
    (x, y), (xt, yt) = data
    if args.limit:
        x, y, xt, yt = x[:args.limit], y[:args.limit], xt[:max(args.limit // 5, 100)], yt[:max(args.limit // 5, 100)]
    n_val = len(x) // 10
    other = None
    if args.other_data:
        o = npae.data.datasets.load(None, path=args.other_data)
        (ox, _), (oxt, _) = o
        if args.limit:
            ox, oxt = ox[:args.limit], oxt[:max(args.limit // 5, 100)]
        other = {"title": o.title, "fit": ox[:len(ox) - len(ox) // 10], "test": oxt}
    return {"title": data.title, "describe": data.describe(folder=False), "fit": x[:-n_val],
            "y_fit": y[:-n_val].astype(np.int64),
            "val": x[-n_val:], "test": xt, "y_test": yt.astype(np.int64), "other": other}


def flat(x):
    return x.reshape(len(x), -1)


def view(model, x):
    return x.reshape((len(x),) + model.input_shape)


def build(name, seed, code=64):
    """A fresh model (the same initial weights for the same seed: a trained model's untrained twin)."""
    rng = np.random.default_rng(seed)
    F = npae.FAMILIES
    return {"ordinary": lambda: F["ordinary"](code, rng=rng, name=f"ordinary-{code}"),
            "sparse": lambda: F["sparse"](code, rng=rng), "contractive": lambda: F["contractive"](code, rng=rng),
            "dense denoiser": lambda: F["dense_denoising"](code, rng=rng),
            "convolutional": lambda: F["convolutional"](rng=rng), "conv denoiser": lambda: F["denoising"](rng=rng),
            "2-D map": lambda: F["multilayer"](code=2, code_activation="linear", rng=rng, name="map-2d")}[name]()


def train(name, x, args, timings, code=64, key=None):
    model = build(name, args.seed, code)
    epochs = args.conv_epochs if len(model.input_shape) == 3 else args.dense_epochs  # images in: a conv model
    t = time.perf_counter()
    npae.fit(model, view(model, x), epochs=epochs, batch_size=args.batch_size, rng=np.random.default_rng(args.seed),
             verbose=False)
    timings[key or name] = (epochs, time.perf_counter() - t)
    print(f"  trained {key or name}: {epochs} epochs, {timings[key or name][1]:.1f} s")
    return model


def reconstruct(model, x):
    return model.reconstruct(view(model, x)).reshape(x.shape)


def codes(model, x):
    return model.encode(view(model, x), flat=True).astype(np.float64)


def noisy(kind, level, x, seed):
    noise = npae.objectives.GaussianNoise(level) if kind == "gaussian" else npae.objectives.SaltAndPepper(level)
    return noise(x, np.random.default_rng(seed)).astype(np.float32)


# -- 1. denoising --------------------------------------------------------------------------------
def denoising(d, models, pca, args):
    rows, examples = [], None
    for i, (kind, level) in enumerate(NOISES):
        nv, nt = noisy(kind, level, d["val"], args.seed + 1 + i), noisy(kind, level, d["test"], args.seed + 101 + i)
        sigma = max(SIGMAS, key=lambda s: M.psnr(M.gaussian_blur(nv, s), d["val"]))
        size = max(MEDIANS, key=lambda s: M.psnr(M.median_filter(nv, s), d["val"]))
        k = max(PCA_KS, key=lambda k: M.psnr(pca.decode(pca.encode(nv, k)).reshape(nv.shape), d["val"]))
        # method -> (its chosen parameter, for the table; its outputs)
        outs = {"noisy input": ("", nt), "Gaussian blur": (f"sigma {sigma}", M.gaussian_blur(nt, sigma)),
                "median": (f"{size}x{size}", M.median_filter(nt, size)),
                "PCA": (f"k {k}", pca.decode(pca.encode(nt, k)).reshape(nt.shape).astype(np.float32))}
        for name in LEARNED:
            outs[name] = ("", reconstruct(models[name], nt))
        rows.append((kind, level, {m: (param, M.psnr(o, d["test"])) for m, (param, o) in outs.items()}))
        if (kind, level) == ("gaussian", 0.5):
            examples = [d["test"][:10]] + [o[:10] for _, o in outs.values()]
            labels = ["clean", "noisy input", f"blur (sigma {sigma})", f"median {size}x{size}", f"PCA (k {k})",
                      *LEARNED]
    C.save_reconstructions(examples, labels, args.out / "claims_denoising.png",
                           "Gaussian noise std 0.5 (clipped): the inputs and each method's output")
    return rows


def denoising_report(rows):
    methods = list(rows[0][2])
    lines = ["| noise | " + " | ".join(methods) + " | best |", "|---" * (len(methods) + 2) + "|"]
    wins = {}
    for kind, level, s in rows:
        cells = []
        for m in methods:
            param, value = s[m]
            cells.append(f"{value:.2f}" + (f" ({param})" if param else ""))
        best = max(methods, key=lambda m: s[m][1])
        wins.setdefault(best, []).append(f"{kind} {level}")
        lines.append(f"| {kind} {level} | " + " | ".join(cells) + f" | {best} |")
    n_learned = sum(len(v) for m, v in wins.items() if m in LEARNED)
    margins = []
    for kind, level, s in rows:
        best_classical = max((s[m][1], m) for m in methods if m not in LEARNED and m != "noisy input")
        best_learned = max((s[m][1], m) for m in LEARNED)
        margins.append((best_learned[0] - best_classical[0], f"{kind} {level}"))
    lo, hi = min(margins), max(margins)
    verdict = (f"A learned model has the highest PSNR at {n_learned} of {len(rows)} settings; "
               + "; ".join(f"{m} wins {', '.join(v)}" for m, v in wins.items())
               + f". The best learned model's margin over the best classical method or PCA ranges from "
               f"{lo[0]:+.2f} dB ({lo[1]}) to {hi[0]:+.2f} dB ({hi[1]}).")
    return lines, verdict


# -- 2. visualization ----------------------------------------------------------------------------
def visualization(d, models, pca, args):
    xt, yt = d["test"], d["y_test"]
    maps = {"2-D autoencoder code": codes(models["2-D map"], xt), "PCA-2": pca.encode(xt, 2)}
    n = min(2000, len(xt))
    rng = np.random.default_rng(args.seed)
    result = {m: (M.knn_accuracy(p, yt, 5, 5, np.random.default_rng(args.seed)),
                  M.trustworthiness(flat(xt[:n]), p[:n], 5)) for m, p in maps.items()}
    result["all 784 pixels (reference)"] = (M.knn_accuracy(flat(xt), yt, 5, 5, np.random.default_rng(args.seed)),
                                            1.0)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4.6))
    show = rng.permutation(len(xt))[:5000]
    for ax, (m, p) in zip(axes, maps.items()):
        sc = ax.scatter(p[show, 0], p[show, 1], c=yt[show], cmap="tab10", s=3, vmin=-0.5, vmax=9.5)
        ax.set_title(f"{m}: 5-NN accuracy {result[m][0]:.3f}, trust. {result[m][1]:.3f}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(sc, ax=axes, ticks=range(10), label="label")
    C.save(fig, args.out / "claims_visualization.png")
    return result, n


def visualization_report(result, n):
    lines = ["| map | 5-NN accuracy (5-fold CV, test set) | trustworthiness (k 5) |", "|---|---|---|"]
    for m, (acc, trust) in result.items():
        lines.append(f"| {m} | {acc:.3f} | " + ("(the original space)" if "reference" in m else f"{trust:.3f}") + " |")
    (a_acc, a_tr), (p_acc, p_tr) = result["2-D autoencoder code"], result["PCA-2"]
    word = lambda a, b: "higher" if a > b else "lower" if a < b else "the same"  # noqa: E731
    verdict = (f"The 2-D autoencoder code's 5-NN accuracy is {a_acc:.3f} against PCA-2's {p_acc:.3f} "
               f"({word(a_acc, p_acc)}, {a_acc - p_acc:+.3f}), its trustworthiness {a_tr:.3f} against {p_tr:.3f} "
               f"({word(a_tr, p_tr)}); 5-NN in all 784 pixels reaches "
               f"{result['all 784 pixels (reference)'][0]:.3f}. Trustworthiness on the first {n:,} test images.")
    return lines, verdict


# -- 3. features for classification ---------------------------------------------------------------
def probe(f_train, y_train, f_test, y_test, steps, seed):
    """Multinomial logistic regression on standardized features: Dense(D, 10) + softmax_cross_entropy,
    Adam, minibatches drawn with replacement. Returns (test accuracy, predict function)."""
    mu, sd = f_train.mean(0), f_train.std(0)
    sd[sd < 1e-8] = 1.0  # a dead unit stays 0
    a = ((f_train - mu) / sd).astype(np.float32)
    rng = np.random.default_rng(seed)
    layer = npae.Dense(a.shape[1], 10, rng=rng)
    opt = npae.optim.Adam(layer.named_params(), lr=PROBE_LR)
    targets = npae.objectives.losses.one_hot(y_train, 10)
    for _ in range(steps):
        idx = rng.integers(0, len(a), min(PROBE_BATCH, len(a)))
        opt.zero_grad()
        _, dz = npae.objectives.losses.softmax_cross_entropy(layer.forward(a[idx]), targets[idx])
        layer.backward(dz, need_dx=False)
        opt.step()

    def predict(f):
        return layer.forward(((f - mu) / sd).astype(np.float32), training=False).argmax(1)
    return float(np.mean(predict(f_test) == y_test)), predict


def features(d, models, pca, args):
    x, y, xt, yt = d["fit"], d["y_fit"], d["test"], d["y_test"]
    sets = {"raw pixels (784)": (flat(x).astype(np.float64), flat(xt).astype(np.float64)),
            "PCA-64": (pca.encode(x, 64), pca.encode(xt, 64)), "PCA-128": (pca.encode(x, 128), pca.encode(xt, 128))}
    label = {}  # architecture -> the label of its trained code's row, e.g. "ordinary (64)"
    for name in PROBED:
        f = codes(models[name], x)
        label[name] = f"{name} ({f.shape[1]})"
        sets[label[name]] = (f, codes(models[name], xt))
        u = build(name, args.seed)
        sets[f"{name}, untrained"] = (codes(u, x), codes(u, xt))
    draws = [np.random.default_rng(args.seed + 500 + i).choice(len(x), min(FEW_LABELS, len(x)), replace=False)
             for i in range(args.draws)]
    table, predictors = {}, {}
    for name, (f, ft) in sets.items():
        full, predictors[name] = probe(f, y, ft, yt, args.probe_steps, args.seed)
        few = [probe(f[i], y[i], ft, yt, args.probe_steps, args.seed + j)[0] for j, i in enumerate(draws)]
        table[name] = (full, float(np.mean(few)), float(np.std(few)))
        print(f"  probe {name}: {full:.4f} all labels, {table[name][1]:.4f} +- {table[name][2]:.4f} with 1,000")
    robust = {}
    for level in ROBUST_NOISE:
        nt = noisy("gaussian", level, xt, args.seed + 900)
        enc = {"raw pixels (784)": flat(nt).astype(np.float64), "PCA-64": pca.encode(nt, 64)}
        for name in ("ordinary", "dense denoiser"):
            enc[label[name]] = codes(models[name], nt)
        for name, f in enc.items():
            robust.setdefault(name, {})[level] = float(np.mean(predictors[name](f) == yt))
    plot_features(table, robust, label, d["title"], args.out / "claims_features.png")
    return table, robust, len(draws), label


def plot_features(table, robust, label, title, path):
    """Left: the probe's accuracy on every representation, all labels and 1,000 (each trained code beside
    its untrained twin, the baselines in grey). Right: the all-labels probe on noisy test codes."""
    import matplotlib.pyplot as plt

    names = list(table)
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(12, 0.32 * len(names) + 1.6), gridspec_kw={"width_ratios": [3, 2]})
    rows = np.arange(len(names))[::-1]
    trained = set(label.values())
    colour = ["tab:blue" if n in trained else "tab:orange" if n.endswith("untrained") else "grey" for n in names]
    full = np.array([table[n][0] for n in names])
    few, std = np.array([table[n][1] for n in names]), np.array([table[n][2] for n in names])
    ax.barh(rows + 0.2, full, 0.4, color=colour, label="all labels")
    ax.barh(rows - 0.2, few, 0.4, xerr=std, color=colour, alpha=0.45, label="1,000 labels (mean, std)")
    ax.set_yticks(rows, names, fontsize=8)
    lo = float(min(few.min(), full.min()))
    ax.set_xlim(max(0.0, lo - 0.05), 1.0)
    ax.set_xlabel(f"linear-probe test accuracy ({title})")
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title("trained code (blue), the same encoder untrained (orange), baselines (grey)", fontsize=9)
    for name, accs in robust.items():
        levels = [0.0] + sorted(accs)
        bx.plot(levels, [table[name][0]] + [accs[lv] for lv in sorted(accs)], marker="o", label=name)
    bx.set_xlabel("Gaussian noise on the test images (std)")
    bx.set_ylabel("accuracy, probe trained on clean codes")
    bx.legend(fontsize=8)
    bx.set_title("robustness", fontsize=9)
    C.save(fig, path)


def features_report(table, robust, n_draws, label):
    lines = ["| features | accuracy, all labels | accuracy, 1,000 labels (mean +- std over "
             f"{n_draws} draws) |", "|---|---|---|"]
    for name, (full, mean, std) in table.items():
        lines.append(f"| {name} | {full:.4f} | {mean:.4f} +- {std:.4f} |")
    trained = {label[name]: table[label[name]] for name in PROBED}
    best_full = max(table, key=lambda k: table[k][0])
    best_few = max(table, key=lambda k: table[k][1])
    gains = [f"{name} {100 * (table[label[name]][0] - table[name + ', untrained'][0]):+.1f}" for name in PROBED]
    best_ae = max(trained, key=lambda k: trained[k][0])
    verdict = (f"With all labels the best features are {best_full} ({table[best_full][0]:.4f}); with 1,000 labels "
               f"{best_few} ({table[best_few][1]:.4f}). Raw pixels give {table['raw pixels (784)'][0]:.4f} and "
               f"{table['raw pixels (784)'][1]:.4f}. The best trained code, {best_ae}, is "
               f"{100 * (trained[best_ae][0] - table['PCA-64'][0]):+.1f} points from PCA-64 with all labels. What "
               f"training adds over the same untrained encoder (points, all labels): {', '.join(gains)}.")
    levels = sorted(next(iter(robust.values())))
    rlines = ["| features | clean | " + " | ".join(f"Gaussian {lv}" for lv in levels) + " |",
              "|---" * (len(levels) + 2) + "|"]
    for name, accs in robust.items():
        rlines.append(f"| {name} | {table[name][0]:.4f} | " + " | ".join(f"{accs[lv]:.4f}" for lv in levels) + " |")
    top = levels[-1]
    drops = {name: table[name][0] - accs[top] for name, accs in robust.items()}
    steady = min(drops, key=drops.get)
    rverdict = (f"At Gaussian noise {top} the probe (trained on clean codes) loses "
                + ", ".join(f"{100 * v:.1f} points on {k}" for k, v in drops.items())
                + f": the steadiest is {steady}.")
    return lines, verdict, rlines, rverdict


# -- 4. compression ------------------------------------------------------------------------------
def jpeg_curve(x):
    imgs = x.reshape(len(x), 28, 28)
    out = []
    for q in QUALITIES:
        dec, whole, scan = zip(*(M.jpeg_bytes(img, q) for img in imgs))
        out.append((q, float(np.mean(whole)), float(np.mean(scan)), M.psnr(np.stack(dec), imgs)))
    png = float(np.mean([M.png_bytes(img) for img in imgs]))
    return out, png


def coder(encode, decode, train_codes):
    """A code (encode, decode) with its quantizers, one per BITS, fit once on the training codes."""
    return encode, decode, [M.UniformQuantizer(bits).fit(train_codes) for bits in BITS]


def ae_coder(model, x_fit):
    return coder(lambda v: codes(model, v), lambda c: model.decode(c.astype(np.float32)), codes(model, x_fit))


def code_points(code, x):
    """(bits, bytes per image, PSNR) of ``x`` through the code at each quantization."""
    encode, decode, quantizers = code
    c = encode(x)
    return [(q.bits, q.bytes_per_code(c.shape[1]), M.psnr(decode(q.quantize(c)).reshape(x.shape), x))
            for q in quantizers]


def compression(d, models, pca, args, timings):
    sets = {d["title"]: d["test"]}
    if d["other"]:
        sets[d["other"]["title"]] = d["other"]["test"]
    aes = {k: models["ordinary"] if k == 64 else train("ordinary", d["fit"], args, timings, k, f"ordinary-{k}")
           for k in CODE_SIZES}
    in_domain = {}
    if d["other"]:
        for k in CODE_SIZES:
            key = f"ordinary-{k} on {d['other']['title']}"
            in_domain[k] = train("ordinary", d["other"]["fit"], args, timings, k, key)
    coders = {"ae": {k: ae_coder(m, d["fit"]) for k, m in aes.items()},
              "pca": {k: coder(lambda v, k=k: pca.encode(v, k), pca.decode, pca.encode(d["fit"], k))
                      for k in CODE_SIZES},
              "own": {k: ae_coder(o, d["other"]["fit"]) for k, o in in_domain.items()}}
    res = {}
    for title, x in sets.items():
        res[title] = {"jpeg": jpeg_curve(x)}
        for key, cs in coders.items():  # "own" (trained on the other set) is scored on the other set only
            res[title][key] = {} if key == "own" and title == d["title"] else {k: code_points(c, x)
                                                                                for k, c in cs.items()}
    plot_rate_distortion(res, d["title"], args.out / "claims_compression.png")
    return res


def plot_rate_distortion(res, trained_on, path):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(res), figsize=(6 * len(res), 4.4), squeeze=False)
    for ax, (title, r) in zip(axes[0], res.items()):
        jpeg, png = r["jpeg"]
        ax.plot([j[1] for j in jpeg], [j[3] for j in jpeg], "k-o", ms=3, label="JPEG, whole file")
        ax.plot([j[2] for j in jpeg], [j[3] for j in jpeg], "k--o", ms=3, label="JPEG, coded scan only")
        for key, style, label in (("ae", "-s", f"autoencoder (trained on {trained_on})"), ("pca", ":^", "PCA"),
                                  ("own", "-.D", f"autoencoder (trained on {title})")):
            for bi, bits in enumerate(BITS):
                pts = [r[key][k][bi] for k in sorted(r[key])]
                if pts:
                    ax.plot([p[1] for p in pts], [p[2] for p in pts], style, ms=4, alpha=1 if bits == 8 else 0.5,
                            label=f"{label}, {bits} bits")
        ax.axvline(png, color="gray", lw=1)
        ax.text(png, ax.get_ylim()[0], " PNG (lossless)", rotation=90, va="bottom", fontsize=7, color="gray")
        ax.set_xscale("log")
        ax.set_xlabel("bytes per image")
        ax.set_ylabel("PSNR (dB)")
        ax.set_title(f"{title} test images", fontsize=10)
        ax.legend(fontsize=6)
    C.save(fig, path)


def interp_jpeg(jpeg, nbytes, column):
    """JPEG's PSNR at ``nbytes`` (whole file: column 1, scan: 2) on its curve; None below quality 1."""
    b = np.array([j[column] for j in jpeg])
    p = np.array([j[3] for j in jpeg])
    order = np.argsort(b)
    if nbytes < b[order][0]:
        return None
    return float(np.interp(nbytes, b[order], p[order]))


def judge(points, jpeg, column):
    """Each (bits, bytes, PSNR) code point against JPEG at the same bytes (column 1: whole file, 2: scan):
    better (higher PSNR at the same size), worse, or smaller than any JPEG and worse than the smallest."""
    smallest = min(jpeg, key=lambda j: j[column])
    better = worse = smaller_worse = 0
    for _, nbytes, value in points:
        at = interp_jpeg(jpeg, nbytes, column)
        if at is None:  # below JPEG's smallest size: better only if it also beats that file's PSNR
            better += value >= smallest[3]
            smaller_worse += value < smallest[3]
        else:
            better += value > at
            worse += value <= at
    text = (f"the autoencoder's code is better than JPEG (higher PSNR for no more bytes) at {better} of {len(points)} "
            f"code points and worse at {worse}")
    if smaller_worse:
        text += (f"; {smaller_worse} are smaller than JPEG's smallest ({smallest[column]:.0f} bytes at quality "
                 f"{smallest[0]}, {smallest[3]:.2f} dB) but below its PSNR, so neither wins")
    return text


def compression_report(res, trained_on):
    lines, verdicts = [], []
    for title, r in res.items():
        jpeg, png = r["jpeg"]
        lines += [f"**{title} test images** (models trained on {trained_on}"
                  + (f"; 'own' = trained on {title}" if r["own"] else "") + ")", "",
                  "| method | bytes per image | PSNR (dB) |", "|---|---|---|"]
        for key, name in (("ae", "autoencoder"), ("own", "autoencoder, own"), ("pca", "PCA")):
            for k in sorted(r[key]):
                for bits, nbytes, value in r[key][k]:
                    lines.append(f"| {name} code {k}, {bits} bits | {nbytes:g} | {value:.2f} |")
        for q, whole, scan, value in jpeg:
            lines.append(f"| JPEG quality {q} | {whole:.1f} (scan {scan:.1f}) | {value:.2f} |")
        lines += [f"| PNG (lossless) | {png:.1f} | exact |", "| raw 8-bit pixels | 784 | exact |", ""]
        ae = [p for k in sorted(r["ae"]) for p in r["ae"][k]]
        v = f"{title}: " + "; ".join(f"counting {what}, {judge(ae, jpeg, column)}"
                                     for what, column in (("whole JPEG files", 1), ("only JPEG's coded scan", 2))) + "."
        if r["own"]:
            k = 32 if 32 in r["ae"] else sorted(r["ae"])[-1]
            home = res[trained_on]["ae"][k][0][2]
            away, own = r["ae"][k][0][2], r["own"][k][0][2]
            jq = {j[0]: j[3] for j in jpeg}
            jhome = {j[0]: j[3] for j in res[trained_on]["jpeg"][0]}
            v += (f" Away from its training data, the {trained_on}-trained code {k} at 8 bits gives {away:.2f} dB "
                  f"on {title} against {home:.2f} dB on {trained_on} ({away - home:+.2f} dB) and {own:.2f} dB for "
                  f"the same model trained on {title}; JPEG at quality 50 changes by {jq[50] - jhome[50]:+.2f} dB "
                  f"between the two sets.")
        verdicts.append(v)
    return lines, " ".join(verdicts)


# -- the report ----------------------------------------------------------------------------------
def main(argv=None):
    C.require_matplotlib()
    M.pillow()
    args = parse(argv)
    import matplotlib

    matplotlib.use("Agg")
    t0 = time.perf_counter()
    print(f"npae {npae.__version__} from {pathlib.Path(npae.__file__).parent}")
    try:
        d = load(args)
    except (npae.data.datasets.DataError, ValueError) as exc:  # a missing or wrong folder: one line, not a traceback
        raise SystemExit(f"error: {exc}") from None
    print(d["describe"] + (f"; other: {d['other']['title']}" if d["other"] else ""))
    timings = {}
    models = {name: train(name, d["fit"], args, timings) for name in
              ("ordinary", "sparse", "contractive", "dense denoiser", "convolutional", "conv denoiser", "2-D map")}
    pca = M.PCA(max(PCA_KS)).fit(d["fit"])
    print("1. denoising")
    den = denoising(d, models, pca, args)
    print("2. visualization")
    vis = visualization(d, models, pca, args)
    print("3. features")
    feat = features(d, models, pca, args)
    print("4. compression")
    comp = compression(d, models, pca, args, timings)
    total = time.perf_counter() - t0
    path = write_report(args, d, timings, den, vis, feat, comp, total)
    print(f"wrote {path} ({total:.0f} s in all)")
    return path


def write_report(args, d, timings, den, vis, feat, comp, total):
    den_lines, den_verdict = denoising_report(den)
    vis_lines, vis_verdict = visualization_report(*vis)
    f_lines, f_verdict, r_lines, r_verdict = features_report(*feat)
    c_lines, c_verdict = compression_report(comp, d["title"])
    trained = ", ".join(f"{k} {e} epochs ({s:.0f} s)" for k, (e, s) in timings.items())
    text = [
        "# What autoencoders are for: the article's claims, measured", "",
        f"{d['describe']}" + (f"; second dataset: {d['other']['title']}" if d["other"] else "") + ".", "",
        f"Settings: seed {args.seed}; the last tenth of the training set ({len(d['val']):,} images) is the "
        f"validation split (filter parameters, PCA's k), models and PCA are fit on the other {len(d['fit']):,}; "
        f"scores on the {len(d['test']):,} test images. Adam (lr 1e-3), batch {args.batch_size}: {trained}. "
        f"{total:.0f} s in all on {platform.machine()} with npae {npae.__version__}. "
        f"Reproduce: `python demos/claims.py " + ("--quick" if args.quick else
                                                  f"--dataset {args.dataset} --data PATH"
                                                  + (" --other-data PATH" if d["other"] else "")) + "`.", "",
        "PSNR is over the whole set, 10 log10(1 / MSE) with the MSE taken over every pixel of every test image "
        "(pixels in [0, 1]); the measurements are defined in demos/metrics.py.", "",
        "## 1. Denoising (\"data denoising ... considered one of two major practical applications\")", "",
        "PSNR (dB) against the clean test images. Noise is clipped to [0, 1]; salt and pepper replaces that fraction "
        "of pixels by 0 or 1. Blur sigma, median size and PCA's k are chosen per noise on the validation split "
        "(in brackets). The ordinary autoencoder is trained on clean images; both denoisers on Gaussian noise 0.5 "
        "only. Example rows: claims_denoising.png.", "",
        *den_lines, "", f"**Verdict.** {den_verdict}", "",
        "## 2. Visualization (\"dimensionality reduction for data visualization\")", "",
        "A 784-128-2-128-784 autoencoder with a linear 2-D code against the first two principal components. "
        "k-NN accuracy (k 5) is 5-fold cross-validated within the test set's 2-D points; trustworthiness (Venna and "
        "Kaski) asks whether the 5 nearest neighbours in the map are near in the 784 pixels. Scatter plots: "
        "claims_visualization.png.", "",
        *vis_lines, "", f"**Verdict.** {vis_verdict}", "",
        "## 3. Features for classification (\"used to learn features for other tasks such as classification\")", "",
        f"A linear probe (multinomial logistic regression: npae's Dense to 10 logits and softmax cross-entropy, "
        f"Adam lr {PROBE_LR}, {args.probe_steps} steps of {PROBE_BATCH} examples drawn with replacement, features "
        f"standardized on the probe's training set) on each representation, trained with all "
        f"{len(d['fit']):,} training labels and with {FEW_LABELS:,}. Each trained encoder is beside its own "
        f"starting point (the same architecture and initial weights, untrained): what training adds over what "
        f"the architecture gives. Bars (and the robustness curves below): claims_features.png.", "",
        *f_lines, "", f"**Verdict.** {f_verdict}", "",
        "**Robustness** (\"a more robust representation\"): the all-labels probe, trained on clean codes, scored on "
        "the codes of noisy test images (Gaussian, clipped).", "",
        *r_lines, "", f"**Verdict.** {r_verdict}", "",
        "## 4. Compression (\"autoencoders are not good at image compression ... JPEG performs much better\")", "",
        "Codes quantized uniformly per number (8 or 4 bits; the grid spans each number's range on the training "
        "codes); bytes = numbers x bits / 8, the decoder being shared like JPEG's. JPEG: Pillow, grayscale, its "
        "standard tables, the whole file and the coded scan alone (the bytes between the start-of-scan header and "
        "the end-of-image marker: no headers, no tables; at 28x28 the headers are most of the file). "
        "PNG: Pillow, optimized, lossless. Rate-distortion curves: claims_compression.png.", "",
        *c_lines, f"**Verdict.** {c_verdict}", "",
    ]
    path = args.out / "claims.md"
    path.write_text("\n".join(text))
    return path


if __name__ == "__main__":
    main()
