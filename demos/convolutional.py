"""The convolutional autoencoder (code 8x4x4) trained with Adam and MSE, as in the article.

    python demos/convolutional.py [--quick] [--data PATH]
"""

import _common as C
import numpy as np
from _common import npae

#: epochs in a quick look (--quick): what this model's cost allows in the minute the reproduction takes
QUICK_EPOCHS = 2


def run(args):
    (x, _), (xt, _), _ = C.setup(args)
    epochs = C.epochs(args, QUICK_EPOCHS)
    model = npae.families.convolutional(rng=np.random.default_rng(args.seed))
    history, seconds = C.train(model, x, xt, args, "convolutional", epochs)
    mse = C.test_mse(model, xt)
    C.save_reconstructions([xt[:10], model.reconstruct(xt[:10])], ["input", "output"],
                           args.out / "convolutional_reconstructions.png",
                           f"convolutional autoencoder, 8x4x4 code: test MSE {mse:.4f}")
    C.save_loss_curves(history, args.out / "convolutional_loss.png", "convolutional autoencoder")
    return {"test_mse": mse, "seconds": seconds, "epochs": epochs}


def main(argv=None):
    return C.main(__doc__, run, "convolutional", argv)


if __name__ == "__main__":
    main()
