"""The convolutional autoencoder (code 8x4x4) trained with Adam and MSE, as in the article; and
beside it, with the same budget, the layers a tutorial reaches for next: strided convolutions
down, transposed convolutions up, batch normalization after every hidden convolution.

    python demos/convolutional.py [--quick] [--data PATH]
"""

import _common as C
import numpy as np
from _common import npae

#: epochs in a quick look (--quick): what this model's cost allows in the minute the reproduction takes
QUICK_EPOCHS = 4  # 0.0274 test MSE on the sample (2 epochs: 0.0359), about 10 s


def run(args):
    (x, _), (xt, _), _ = C.setup(args)
    epochs = C.epochs(args, QUICK_EPOCHS)
    model = npae.models.conv_families.convolutional(rng=np.random.default_rng(args.seed))
    history, seconds = C.train(model, x, xt, args, "convolutional", epochs)
    mse = C.test_mse(model, xt)
    C.save_reconstructions([xt[:10], model.reconstruct(xt[:10])], ["input", "output"],
                           args.out / "convolutional_reconstructions.png",
                           f"convolutional autoencoder, 8x4x4 code: test MSE {mse:.4f}")
    C.save_loss_curves(history, args.out / "convolutional_loss.png", "convolutional autoencoder")
    result = {"test_mse": mse, "seconds": seconds, "epochs": epochs, "params": model.n_params()}
    if not args.quick or args.limit:  # a quick look leaves the comparison to the full run (its minute is spent)
        variant = npae.models.conv_families.convolutional(upsample="transpose", downsample="stride", batchnorm=True,
                                              rng=np.random.default_rng(args.seed), name="convolutional-next")
        _, v_seconds = C.train(variant, x, xt, args, "convolutional: stride down, transpose up, BatchNorm", epochs)
        v_mse = C.test_mse(variant, xt)
        C.save_reconstructions([xt[:10], model.reconstruct(xt[:10]), variant.reconstruct(xt[:10])],
                               ["input", "article", "next layers"], args.out / "convolutional_variant.png",
                               f"the article's design (test MSE {mse:.4f}) vs stride/transpose/BatchNorm ({v_mse:.4f})")
        result["variant"] = {"test_mse": v_mse, "seconds": v_seconds, "params": variant.n_params()}
        print(f"the article's design: test MSE {mse:.5f}, {seconds:.1f} s, {model.n_params():,} parameters; "
              f"stride/transpose/BatchNorm: {v_mse:.5f}, {v_seconds:.1f} s, {variant.n_params():,} parameters")
    return result


def main(argv=None):
    return C.main(__doc__, run, "convolutional", argv)


if __name__ == "__main__":
    main()
