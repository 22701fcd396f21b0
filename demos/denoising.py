"""The denoising autoencoder: Gaussian noise (std 0.5, clipped) in, clean digits out.

    python demos/denoising.py [--quick] [--data PATH]

Claim checked: trained on noisy inputs against clean targets, the autoencoder removes
the noise -- the MSE against the clean images of the noisy inputs and of the outputs.
"""

import _common as C
import numpy as np
from _common import npae

#: epochs in a quick look (--quick): what this model's cost allows in the minute the reproduction takes
QUICK_EPOCHS = 1


def run(args):
    (x, _), (xt, _), _ = C.setup(args)
    epochs = C.epochs(args, QUICK_EPOCHS)
    model = npae.models.conv_families.denoising(rng=np.random.default_rng(args.seed))
    history, seconds = C.train(model, x, xt, args, "denoising", epochs)
    noisy = model.noise(xt, np.random.default_rng(npae.train.VALIDATION_SEED))
    out = model.reconstruct(noisy)
    mse_noisy = float(npae.objectives.losses.mse(noisy, xt)[0])
    mse_out = float(npae.objectives.losses.mse(out, xt)[0])
    print(f"MSE against the clean test images: noisy inputs {mse_noisy:.4f}, denoised outputs {mse_out:.4f}")
    C.save_reconstructions([noisy[:10], out[:10], xt[:10]], ["noisy", "output", "clean"],
                           args.out / "denoising_rows.png",
                           f"denoising: MSE vs clean, noisy {mse_noisy:.3f} -> output {mse_out:.4f}")
    C.save_loss_curves(history, args.out / "denoising_loss.png", "denoising autoencoder")
    return {"test_mse": mse_out, "mse_noisy": mse_noisy, "seconds": seconds, "epochs": epochs}


def main(argv=None):
    return C.main(__doc__, run, "denoising", argv)


if __name__ == "__main__":
    main()
