"""Beyond the article: tied weights, the contractive penalty and the variational autoencoder.

Each objective is gradient-checked end to end in float64, its normalization pinned by a
hand computation, and its closed forms compared with an independent route (the Jacobian by
backprop and by finite differences; the KL divergence by Monte Carlo)."""

import numpy as np
import pytest
from tolerances import assert_adjoint, assert_close, assert_sums_close, unit_roundoff

import npae
from npae.checks.gradcheck import check_model
from npae.models import families as A
from npae.nn.layers import Dense, TiedDense
from npae.objectives.penalties import Contractive
from npae.train import fit

X = npae.load_mnist(flatten=True)[0][0][:512]
U = unit_roundoff()


def randomized(model, rng):
    """Weights ~ N(0, 1/fan_in) and non-zero biases: no ReLU input at 0, no saturated sigmoid."""
    for _, p in model.named_params():
        fan_in = p.shape[0] if p.value.ndim == 2 else 10
        p.value[...] = rng.normal(0, 1 / np.sqrt(fan_in), p.shape)
    return model


def inputs(rng, n=4):
    return rng.uniform(0.05, 0.95, (n, 784))


# -- tied weights ------------------------------------------------------------------------------
def test_tied_dense_forward_and_adjoint():
    rng = np.random.default_rng(0)
    src = Dense(5, 3, rng=rng, dtype=np.float64)
    tied = TiedDense(src)
    tied.params["b"].value[...] = rng.standard_normal(5)
    x = rng.standard_normal((4, 3))
    np.testing.assert_array_equal(tied.forward(x), x @ src.W.T + tied.b)  # the same operations
    tied.params["b"].value[...] = 0
    assert_adjoint(tied, x, rng.standard_normal((4, 5)))  # also among test_reference's linear layers
    assert list(dict(tied.named_params())) == ["b"]  # W belongs to the source alone


def test_tied_gradient_is_the_sum_of_both_uses():
    """dL/dW of the tied model == (encoder use) + (decoder use, transposed) of an untied twin."""
    rng = np.random.default_rng(1)
    tied = randomized(A.ordinary(8, tied=True, rng=rng, dtype=np.float64), rng)
    twin = A.ordinary(8, rng=rng, dtype=np.float64)
    twin.encoder[0].params["W"].value[...] = tied.encoder[0].W
    twin.encoder[0].params["b"].value[...] = tied.encoder[0].b
    twin.decoder[0].params["W"].value[...] = tied.encoder[0].W.T
    twin.decoder[0].params["b"].value[...] = tied.decoder[0].b
    x = inputs(rng)
    a, b = tied.loss_and_grads(x), twin.loss_and_grads(x)
    assert a["total"] == pytest.approx(b["total"], rel=1e-14)
    g, t = tied.params, twin.params
    # The two models do the same sums with the matrix stored transposed, so BLAS may add in
    # other orders: the longest chain is the forward (784 terms, then 8), the gradient at the
    # code (784) and dW (a sum over the batch of 4), then one addition. Compared at the scale
    # of the gradient (entries near a cancellation are only as accurate as the largest one).
    chain = 784 + 8 + 784 + 4 + 1
    assert_close(g["encoder.0.W"].grad, t["encoder.0.W"].grad + t["decoder.0.W"].grad.T, terms=chain, what="dL/dW")
    assert np.abs(t["decoder.0.W"].grad).max() > 0.1 * np.abs(t["encoder.0.W"].grad).max()  # both uses matter
    assert_close(g["decoder.0.b"].grad, t["decoder.0.b"].grad, terms=chain, what="dL/db")


@pytest.mark.parametrize("make", [lambda rng: A.ordinary(8, tied=True, rng=rng, dtype=np.float64),
                                  lambda rng: A.multilayer((16, 8, 16), tied=True, rng=rng, dtype=np.float64)])
def test_tied_objective_gradcheck(make):
    rng = np.random.default_rng(2)
    model = randomized(make(rng), rng)
    report = check_model(model, inputs(rng), seed=3, samples=8)
    assert report.passed, str(report)
    assert not any(n.startswith("decoder") and n.endswith("W") for n in model.params)  # W listed once
    ids = [id(p) for _, p in model.named_params()]
    assert len(ids) == len(set(ids))  # so the optimizer updates it once per step


def test_checker_fails_when_the_decoder_use_of_w_is_forgotten():
    """The classic tied-weights slip: the decoder's dW goes into a gradient of its own (here:
    nowhere), so W learns only from its encoder use."""
    class Forgets(TiedDense):
        def backward(self, dy, need_dx=True):
            self.params["b"].grad += dy.sum(axis=0)
            return dy @ self.W

    rng = np.random.default_rng(3)
    model = randomized(A.ordinary(8, tied=True, rng=rng, dtype=np.float64), rng)
    model.decoder.layers[0] = Forgets(model.encoder[0])
    model.decoder[0].params["b"].value[...] = rng.normal(0, 0.3, 784)
    report = check_model(model, inputs(rng), samples=8)
    assert not report["encoder.0.W"].passed and report["decoder.0.b"].passed


def test_tied_parameters_halved():
    assert A.ordinary().n_params() == 784 * 64 + 64 + 64 * 784 + 784 == 101_200
    assert A.ordinary(tied=True).n_params() == 784 * 64 + 64 + 784 == 51_024
    assert A.tied().name == "tied" and A.FAMILIES["tied"] is A.tied


def test_tied_save_load_keeps_the_tie(tmp_path):
    model = A.multilayer((32, 16, 32), tied=True, rng=np.random.default_rng(0))
    npae.save(model, tmp_path / "t.npz")
    loaded = npae.load(tmp_path / "t.npz")
    assert [layer.source for layer in loaded.decoder if isinstance(layer, TiedDense)] == \
        [loaded.encoder[2], loaded.encoder[0]]
    np.testing.assert_array_equal(loaded.reconstruct(X[:3]), model.reconstruct(X[:3]))
    loaded.encoder[0].params["W"].value[...] *= 2  # one matrix, two uses
    assert not np.allclose(loaded.reconstruct(X[:3]), model.reconstruct(X[:3]))
    loaded.astype(np.float64)
    assert loaded.reconstruct(X[:3].astype(np.float64)).dtype == np.float64


def test_tied_errors(tmp_path):
    with pytest.raises(TypeError, match="TiedDense: source must be a Dense"):
        TiedDense(npae.ReLU())
    with pytest.raises(ValueError, match="symmetric"):
        A.multilayer((32, 16, 8), tied=True)
    stranger = Dense(784, 8)
    with pytest.raises(ValueError, match="not in the encoder"):
        npae.Autoencoder(npae.Sequential(Dense(784, 8), npae.ReLU()),
                         npae.Sequential(TiedDense(stranger), npae.Sigmoid()), input_shape=(784,))
    with pytest.raises(ValueError, match="inside an Autoencoder"):
        TiedDense(stranger).config()
    with pytest.raises(ValueError, match=r"TiedDense: expected input of shape \(N, 8\)"):
        TiedDense(stranger).forward(np.zeros((2, 7), np.float32))
    # a file whose tie points nowhere is refused, not half-loaded
    import json

    from npae.files.io import META, ModelFileError, _model_arrays
    model = A.ordinary(8, tied=True)
    arrays = _model_arrays(model, "model")
    meta = json.loads(arrays[META].tobytes())
    meta["model"]["decoder"]["layers"][0]["tied_to"] = "5"
    arrays[META] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    with open(tmp_path / "bad.npz", "wb") as f:
        np.savez(f, **arrays)
    with pytest.raises(ModelFileError, match="no layer at '5'"):
        npae.load(tmp_path / "bad.npz")


# -- the contractive penalty ---------------------------------------------------------------------
ACTIVATIONS = ["sigmoid", "tanh", "relu"]


def contractive(activation, lam=0.3, seed=0, code=8):
    rng = np.random.default_rng(seed)
    return randomized(A.contractive(code, lam=lam, code_activation=activation, rng=rng, dtype=np.float64), rng), rng


def finite_difference_jacobian(model, x, h=1e-6):
    jac = np.empty((len(x), model.code_shape[0], x.shape[1]))
    for i in range(x.shape[1]):
        e = np.zeros_like(x)
        e[:, i] = h
        jac[:, :, i] = (model.encode(x + e) - model.encode(x - e)) / (2 * h)
    return jac


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_closed_form_jacobian_norm_matches_backprop_and_finite_differences(activation):
    model, rng = contractive(activation)
    x = inputs(rng, 3)
    jac = model.jacobian(x)
    assert jac.shape == (3, 8, 784)
    closed = model.code_penalty.jacobian_norms(model.encode(x))
    # both are sums of 8 * 784 non-negative terms (no cancellation), each side within gamma(n) of exact
    assert_sums_close(closed, np.square(jac).sum(axis=(1, 2)), closed, 8 * 784 + 784 + 8, what="||J||_F^2")
    np.testing.assert_allclose(jac, finite_difference_jacobian(model, x), atol=1e-7)
    assert all(np.all(p.grad == 0) for _, p in model.named_params())  # jacobian() leaves no gradient behind


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_contractive_objective_gradcheck(activation):
    model, rng = contractive(activation)
    report = check_model(model, inputs(rng), seed=1, samples=12)
    assert report.passed, str(report)
    assert sum(e.kinks for e in report.entries) == 0


def test_contractive_normalization_is_the_batch_mean_of_per_sample_norms():
    model, rng = contractive("sigmoid", lam=0.7)
    x = inputs(rng, 5)
    h = model.encode(x)
    W = model.encoder[0].W
    by_hand = 0.7 * np.mean([np.sum((h[n] * (1 - h[n]))[:, None] ** 2 * W.T ** 2) for n in range(5)])
    n = 5 * 8 * 784 + 784  # non-negative terms: the value itself bounds the sum of their sizes
    assert_sums_close(model.code_penalty(h)[0], by_hand, by_hand, n)
    assert_sums_close(model.code_penalty(np.concatenate([h, h]))[0], by_hand, by_hand, 2 * n)
    # the same computation, then multiplied and divided by the batch size (two roundings)
    assert model.evaluate(x)["code_penalty"] == pytest.approx(model.loss_and_grads(x)["code_penalty"], rel=4 * U)


@pytest.mark.parametrize("drop", ["direct", "through_h"])
def test_checker_fails_when_a_contractive_term_is_dropped(drop, monkeypatch):
    model, rng = contractive("sigmoid", lam=3.0)
    pen = model.code_penalty
    if drop == "direct":
        monkeypatch.setattr(pen, "weight_grads", lambda h: [])
    else:
        call = pen.__call__
        monkeypatch.setattr(type(pen), "__call__", lambda self, h: (call(h)[0], np.zeros_like(h)))
    report = check_model(model, inputs(rng), samples=12)
    assert not report["encoder.0.W"].passed
    assert report["decoder.0.W"].passed


def test_contractive_binds_a_copy_and_refuses_other_encoders():
    pen = Contractive(0.1)
    a = npae.Autoencoder(npae.Sequential(Dense(784, 8), npae.Sigmoid()), npae.Sequential(Dense(8, 784), npae.Sigmoid()),
                      code_penalty=pen, input_shape=(784,))
    assert pen.dense is None and a.code_penalty.dense is a.encoder[0]
    with pytest.raises(ValueError, match=r"Sequential\(Dense, ReLU, Dense, ReLU\)"):
        A.multilayer((16, 8, 16), code_penalty=Contractive(0.1))
    with pytest.raises(ValueError, match="not bound"):
        pen(np.ones((2, 8)))
    with pytest.raises(ValueError, match="activation must be one of"):
        A.contractive(code_activation="softplus")
    with pytest.raises(ValueError, match="lam"):
        Contractive(-1.0)


def test_contractive_training_shrinks_the_jacobian():
    """The same network and start, with and without the penalty: the code is far less sensitive,
    also relative to its own spread (not only by shrinking its scale)."""
    x = X[:256]
    stats = {}
    for lam in (0.0, 1e-3):
        model = A.contractive(16, lam=lam, rng=np.random.default_rng(0))
        fit(model, x, epochs=15, batch_size=32, rng=np.random.default_rng(0), verbose=False)
        h = model.encode(x)
        jac = float(Contractive(1.0).bind(model.encoder).jacobian_norms(h).mean())
        spread = float(np.mean(np.linalg.norm(h[:128] - h[128:], axis=1)))
        stats[lam] = (jac, jac ** 0.5 / spread)
    assert stats[1e-3][0] < 0.25 * stats[0.0][0], stats
    assert stats[1e-3][1] < stats[0.0][1], stats


# -- the variational autoencoder -------------------------------------------------------------
def vae(likelihood="bernoulli", seed=0, **kw):
    rng = np.random.default_rng(seed)
    sigma = {"sigma_x": 0.3} if likelihood == "gaussian" else {}
    return randomized(A.vae(3, 16, likelihood=likelihood, rng=rng, dtype=np.float64, **sigma, **kw), rng), rng


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_vae_objective_gradcheck_with_eps_fixed(likelihood):
    model, rng = vae(likelihood)
    report = check_model(model, inputs(rng), seed=5, samples=12)
    assert report.passed, str(report)
    assert sum(e.kinks for e in report.entries) == 0


def tiny_vae(cls=npae.VAE, seed=0):
    """10 inputs, 5 hidden, latent 2: small enough to check every coordinate."""
    rng = np.random.default_rng(seed)
    enc = npae.Sequential(Dense(10, 5, rng=rng, dtype=np.float64), npae.Tanh(), Dense(5, 4, rng=rng, dtype=np.float64))
    dec = npae.Sequential(Dense(2, 5, rng=rng, dtype=np.float64), npae.Tanh(), Dense(5, 10, rng=rng, dtype=np.float64),
                          npae.Sigmoid())
    return randomized(cls(enc, dec, latent=2, input_shape=(10,)), rng), rng


def test_vae_every_coordinate_and_a_wrong_sampling_backward_fails():
    model, rng = tiny_vae()
    x = rng.uniform(0.05, 0.95, (6, 10))
    report = check_model(model, x, samples=None, threshold=1e-7)  # tanh: smooth, so the tight threshold
    assert report.passed, str(report)

    class ForgetsTheHalf(npae.VAE):  # d sigma / d logvar taken as sigma instead of sigma / 2
        @staticmethod
        def _through_sampling(dz, eps, sigma):
            return dz, dz * eps * sigma

    wrong, _ = tiny_vae(ForgetsTheHalf)
    report = check_model(wrong, x, samples=None)
    assert not report["encoder.2.W"].passed and report["decoder.2.W"].passed


def test_vae_terms_by_hand():
    """reconstruction = mean over the batch of per-sample sums (nats); the Gaussian keeps its constant."""
    x = inputs(np.random.default_rng(9), 5)
    for likelihood in ("bernoulli", "gaussian"):
        model, _ = vae(likelihood)
        e = model.encoder.forward(x, training=False)
        mu, logvar = e[:, :3], e[:, 3:]
        z = mu + np.exp(logvar / 2) * np.random.default_rng(4).standard_normal((5, 3))
        p = model.decode(z)
        if likelihood == "bernoulli":
            parts = -(x * np.log(p) + (1 - x) * np.log(1 - p))
        else:
            parts = (x - p) ** 2 / (2 * 0.09) + 0.5 * np.log(2 * np.pi * 0.09)
        rec, rec_abs = parts.sum() / 5, (np.abs((x - p) ** 2 / 0.18) + abs(0.5 * np.log(2 * np.pi * 0.09))).sum() / 5
        if likelihood == "bernoulli":
            rec_abs = rec  # non-negative terms
        kl_parts = 0.5 * (mu ** 2 + np.exp(logvar) - 1 - logvar)
        kl, kl_abs = kl_parts.sum() / 5, (0.5 * (mu ** 2 + np.exp(logvar) + 1 + np.abs(logvar))).sum() / 5
        terms = model.loss_and_grads(x, np.random.default_rng(4))
        # the same sums in another order, through the same p and the same mu, logvar; each log
        # and exp in the two routes within a few ulps of the other (NumPy's SIMD logs: <= 4 ulp),
        # counted as 8 more terms per element
        n = 5 * 784 * 9
        assert_sums_close(terms["reconstruction"], rec, rec_abs, n, what="reconstruction")
        assert_sums_close(terms["kl"], kl, kl_abs, 5 * 3 * 9, what="kl")
        assert_sums_close(terms["total"], rec + kl, rec_abs + kl_abs, n, what="total")
        # the same computation, then multiplied and divided by the batch size (a few roundings)
        assert model.evaluate(x, rng=np.random.default_rng(4)) == pytest.approx(terms, rel=8 * U)


def test_kl_closed_form_against_monte_carlo():
    rng = np.random.default_rng(0)
    mu, logvar = rng.normal(0, 1, (1, 4)), rng.normal(0, 0.7, (1, 4))
    closed = npae.VAE.kl(mu, logvar)[0]
    sigma = np.exp(logvar / 2)
    z = mu + sigma * rng.standard_normal((400_000, 4))
    log_q = -0.5 * (((z - mu) / sigma) ** 2 + logvar + np.log(2 * np.pi)).sum(1)
    log_p = -0.5 * (z ** 2 + np.log(2 * np.pi)).sum(1)
    samples = log_q - log_p
    assert abs(samples.mean() - closed) < 4 * samples.std() / np.sqrt(len(samples))
    assert npae.VAE.kl(np.zeros((3, 2)), np.zeros((3, 2)))[0] == 0.0  # q = p


def test_vae_trains_and_samples():
    model = A.vae(2, 64, rng=np.random.default_rng(0))
    x = X[:512]
    before = model.evaluate(x, rng=np.random.default_rng(0))
    history = fit(model, x, epochs=8, batch_size=64, rng=np.random.default_rng(0), verbose=False)
    after = model.evaluate(x, rng=np.random.default_rng(0))
    assert after["total"] < 0.5 * before["total"], (before, after)
    assert after["kl"] > 0.5  # the code carries information about x (no posterior collapse)
    assert set(history.rows[-1]) >= {"train_reconstruction", "train_kl", "train_total"}
    s1, s2 = model.sample(6, np.random.default_rng(1)), model.sample(6, np.random.default_rng(1))
    np.testing.assert_array_equal(s1, s2)
    assert s1.shape == (6, 784) and s1.dtype == np.float32 and 0 <= s1.min() and s1.max() <= 1
    mu, logvar = model.encode_distribution(x[:5])
    np.testing.assert_array_equal(model.encode(x[:5]), mu)
    np.testing.assert_array_equal(model.reconstruct(x[:5]), model.decode(mu))  # no sampling at inference


def test_vae_errors():
    model = A.vae(2, 8)
    with pytest.raises(ValueError, match="needs rng"):
        model.loss_and_grads(X[:4])
    with pytest.raises(ValueError, match="needs rng"):
        model.evaluate(X[:4])
    with pytest.raises(ValueError, match="likelihood must be one of"):
        A.vae(likelihood="poisson")
    with pytest.raises(ValueError, match="a Bernoulli decoder has none"):
        A.vae(sigma_x=0.1)
    with pytest.raises(ValueError, match="sigma_x must be > 0"):
        A.vae(likelihood="gaussian", sigma_x=0.0)
    with pytest.raises(ValueError, match=r"2 \* latent"):
        npae.VAE(npae.Sequential(Dense(784, 3)), npae.Sequential(Dense(2, 784)), latent=2, input_shape=(784,))
    with pytest.raises(ValueError, match="positive"):
        model.sample(0, np.random.default_rng(0))
    with pytest.raises(TypeError, match="Generator"):
        model.sample(3, 7)


def test_vae_resume_is_bit_for_bit(tmp_path):
    """eps is drawn from fit's generator, whose state the checkpoint keeps."""
    straight = A.vae(2, 32, rng=np.random.default_rng(0))
    fit(straight, X, epochs=2, batch_size=128, rng=np.random.default_rng(1), verbose=False)
    first = A.vae(2, 32, rng=np.random.default_rng(0))
    fit(first, X, epochs=1, batch_size=128, rng=np.random.default_rng(1), verbose=False, checkpoint=tmp_path / "c.npz")
    resumed = A.vae(2, 32, rng=np.random.default_rng(7))
    fit(resumed, X, epochs=2, batch_size=128, rng=np.random.default_rng(8), verbose=False, resume=tmp_path / "c.npz")
    for (n, a), (_, b) in zip(straight.named_params(), resumed.named_params()):
        np.testing.assert_array_equal(a.value, b.value, err_msg=n)
