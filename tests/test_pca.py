"""The math the demos rest on: a linear autoencoder trained with MSE on centred data finds
the principal subspace (Baldi & Hornik, 1989). Measured by the principal angles between
the decoder's column space and the top-k principal directions."""

import numpy as np
import pytest

import npae


def principal_angles(a, b):
    """Angles (radians) between the column spaces of a and b."""
    qa, _ = np.linalg.qr(a)
    qb, _ = np.linalg.qr(b)
    cosines = np.linalg.svd(qa.T @ qb, compute_uv=False)
    return np.arccos(np.clip(cosines, -1.0, 1.0))


@pytest.mark.slow
def test_linear_autoencoder_converges_to_the_pca_subspace():
    rng = np.random.default_rng(0)
    n, d, k = 500, 8, 3
    rotation, _ = np.linalg.qr(rng.standard_normal((d, d)))
    scales = np.array([5.0, 4.0, 3.0, 1.0, 0.6, 0.4, 0.2, 0.1])  # a clear gap after the third
    x = (rng.standard_normal((n, d)) * scales) @ rotation.T
    x -= x.mean(axis=0)
    model = npae.Autoencoder(npae.Sequential(npae.Dense(d, k, rng=rng, dtype=np.float64)),
                             npae.Sequential(npae.Dense(k, d, rng=rng, dtype=np.float64)), input_shape=(d,))
    opt = npae.optim.Adam(model.named_params(), lr=0.01)
    for step in range(4000):
        if step == 3000:
            opt.lr = 1e-3  # let Adam settle: its steps of size ~lr keep it lr away from the minimum
        model.loss_and_grads(x)
        opt.step()
    top = np.linalg.eigh(x.T @ x)[1][:, -k:]
    decoder_columns = model.decoder[0].W.T  # (d, k): x_hat = h @ W_dec + b lies in span(W_dec.T)
    angles = principal_angles(decoder_columns, top)
    assert angles.max() < 1e-3, angles
    # and it reconstructs as well as PCA: within the subspace the product of decoder and
    # encoder approaches the projector more slowly (2.8e-4 above PCA after these steps)
    pca_mse = np.mean((x @ top @ top.T - x) ** 2)
    assert np.mean((model.reconstruct(x) - x) ** 2) < pca_mse * (1 + 1e-3)


def test_the_bound_is_not_vacuous():
    """A random k-dimensional subspace is far from the principal one."""
    rng = np.random.default_rng(1)
    top = np.linalg.qr(rng.standard_normal((8, 8)))[0][:, :3]
    assert principal_angles(rng.standard_normal((8, 3)), top).max() > 0.1
