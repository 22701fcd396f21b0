"""Any registered family, trained and measured: one script for every family, yours included.

    python demos/family.py FAMILY [--quick] [--data PATH] [--epochs N] [--code N]
    python demos/family.py --list

Trains ``npae.FAMILIES[FAMILY]`` on MNIST (the embedded sample with --quick) and writes its
loss curves and reconstructions (a denoiser: noisy / output / clean) into --out. Its test MSE
is printed beside two baselines that ask nothing of training: the mean training image, and
PCA with as many components as the model's code has numbers (the best linear code of that
size; for a denoiser, PCA projects the same noisy images the model is given). An autoencoder
that does not beat PCA has learned nothing a linear projection could not.
"""

import sys

import _common as C
import metrics as M
import numpy as np
from _common import npae

#: epochs in a quick look: a few for every family (the dedicated demos give each its own budget)
QUICK_EPOCHS = 3


def arguments(p):
    p.add_argument("family", nargs="?", help="a registered family (--list shows them)")
    p.add_argument("--list", action="store_true", help="list the registered families and stop")
    p.add_argument("--code", type=int, help="the code's size (its channels, for a convolutional family)")


def baselines(x, given, target, k):
    """(mean-image MSE, PCA-k MSE) against the clean test images ``target``: the mean training image,
    and the training images' top-k principal directions applied to what the model is given (the
    noisy images, for a denoiser: the same task as the model's)."""
    flat, flat_g, flat_t = (a.reshape(len(a), -1) for a in (x, given, target))
    mean_mse = float(((flat_t - flat.mean(0)) ** 2).mean())
    if k >= flat.shape[1]:
        return mean_mse, None
    pca = M.PCA(k).fit(flat)
    return mean_mse, float(((pca.decode(pca.encode(flat_g)) - flat_t) ** 2).mean())


def run(args):
    if args.list:
        print("families: " + ", ".join(npae.FAMILIES))
        return None
    if not args.family:
        print(f"error: name a family, one of {', '.join(npae.FAMILIES)} (python demos/family.py ordinary)",
              file=sys.stderr)
        raise SystemExit(2)
    if args.family not in npae.FAMILIES:
        print(f"error: unknown family {args.family!r}; registered: {', '.join(npae.FAMILIES)}", file=sys.stderr)
        raise SystemExit(2)
    (x, _), (xt, _), _ = C.setup(args)
    epochs = C.epochs(args, QUICK_EPOCHS)
    options = {} if args.code is None else {"code": args.code}
    model = npae.FAMILIES[args.family](rng=np.random.default_rng(args.seed), **options)
    x, xt = x.reshape((len(x),) + model.input_shape), xt.reshape((len(xt),) + model.input_shape)
    history, seconds = C.train(model, x, xt, args, args.family, epochs)
    k = int(np.prod(model.encode(xt[:1]).shape[1:]))
    if model.noise is not None:  # a denoiser: measured against the clean images, from noisy ones
        given = model.noise(xt, np.random.default_rng(npae.train.VALIDATION_SEED))
        out = model.reconstruct(given)
        rows, labels = [given[:10], out[:10], xt[:10]], ["noisy", "output", "clean"]
    else:
        given = xt
        out = model.reconstruct(xt)
        rows, labels = [xt[:10], out[:10]], ["input", args.family]
    mean_mse, pca_mse = baselines(x, given, xt, k)
    mse = float(npae.mse(out, xt)[0])
    pca_text = f"PCA-{k} {pca_mse:.5f}" if pca_mse is not None else f"no PCA baseline (code {k} >= the input's size)"
    if mse >= mean_mse:
        verdict = "; no better than the mean image: it has not learned yet (more --epochs?)"
    elif pca_mse is None:
        verdict = f"; {1 - mse / mean_mse:.0%} below the mean image"
    else:
        verdict = (f"; {'better' if mse < pca_mse else 'no better'} than PCA with the same code size "
                   f"({mse / pca_mse - 1:+.0%})")
    print(f"{args.family}: code of {k} numbers; test MSE {mse:.5f}, against the mean image {mean_mse:.5f} and "
          f"{pca_text}{verdict}")
    C.save_reconstructions(rows, labels, args.out / f"{args.family}_reconstructions.png",
                           f"{args.family}, {epochs} epoch(s): test MSE {mse:.4f}")
    C.save_loss_curves(history, args.out / f"{args.family}_loss.png", args.family)
    return {"test_mse": mse, "seconds": seconds, "epochs": epochs, "code_size": k, "mse_mean_image": mean_mse,
            "mse_pca": pca_mse}


def main(argv=None):
    return C.main(__doc__, run, "family", argv, extend=arguments)


if __name__ == "__main__":
    main()
