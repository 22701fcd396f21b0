"""The Autoencoder objective and the families: end-to-end gradient checks in float64,
denoising against the clean input, the code penalty entering at the code."""

import numpy as np
import pytest
from tolerances import assert_close

import npae
from npae.checks.gradcheck import check_model
from npae.models import conv_families as CF
from npae.models import families as A
from npae.objectives.noise import GaussianNoise, MaskingNoise
from npae.objectives.penalties import L1Activity, WeightDecay


def away_from_kinks(model, rng):
    """Random non-zero parameters (biases too), so no ReLU input sits exactly at 0; weights
    ~ N(0, 1/fan_in) keep pre-activations of order 1, short of sigmoid saturation, where the
    derivative would drown in the rounding of the objective."""
    for _, p in model.named_params():
        fan_in = p.shape[0] if p.value.ndim == 2 else int(np.prod(p.shape[1:])) if p.value.ndim == 4 else 10
        p.value[...] = rng.normal(0, 1 / np.sqrt(fan_in), p.shape)
    return model


FAMILY_CASES = [
    ("ordinary", {}, (3, 784)),
    ("multilayer", {}, (3, 784)),
    ("multilayer", {"hidden": (32, 8, 16, 8, 32)}, (2, 784)),
    ("convolutional", {}, (2, 1, 28, 28)),
    ("convolutional", {"upsample": "transpose", "downsample": "stride", "batchnorm": True}, (3, 1, 28, 28)),
    ("convolutional", {"input_shape": (3, 16, 16), "upsample": "transpose"}, (2, 3, 16, 16)),
    ("sparse", {"l1": 0.05}, (3, 784)),
    ("sparse_kl", {"beta": 0.5}, (3, 784)),
    ("denoising", {}, (2, 1, 28, 28)),
    ("dense_denoising", {}, (3, 784)),
    ("ordinary", {"noise": MaskingNoise(0.3), "weight_decay": WeightDecay(0.01)}, (3, 784)),
]


@pytest.mark.parametrize("family, kwargs, shape", FAMILY_CASES)
def test_family_objective_gradcheck(family, kwargs, shape):
    rng = np.random.default_rng(0)
    model = away_from_kinks(A.FAMILIES[family](rng=rng, dtype=np.float64, **kwargs), rng)
    x = rng.uniform(0.05, 0.95, shape)
    report = check_model(model, x, seed=3, samples=6)
    assert report.passed, str(report)
    assert sum(e.kinks for e in report.entries) == 0, str(report)
    assert {e.name for e in report.entries} == set(model.params)


def test_check_model_fails_when_the_penalty_gradient_is_dropped():
    rng = np.random.default_rng(0)
    model = away_from_kinks(A.sparse(l1=0.5, rng=rng, dtype=np.float64), rng)

    class Silent(L1Activity):
        def __call__(self, h):
            value, dh = super().__call__(h)
            return value, np.zeros_like(dh)

    model.code_penalty = Silent(0.5)
    report = check_model(model, rng.uniform(0.05, 0.95, (3, 784)), samples=6)
    assert not report["encoder.0.W"].passed
    assert report["decoder.0.W"].passed  # the penalty does not reach the decoder


def test_terms_are_reported_and_add_up():
    rng = np.random.default_rng(0)
    model = A.ordinary(rng=rng, code_penalty=L1Activity(1e-3), weight_decay=WeightDecay(1e-4))
    x = rng.uniform(0, 1, (8, 784)).astype(np.float32)
    terms = model.loss_and_grads(x)
    assert set(terms) == {"total", "reconstruction", "code_penalty", "weight_decay"}
    assert terms["total"] == pytest.approx(terms["reconstruction"] + terms["code_penalty"] + terms["weight_decay"])
    assert terms["code_penalty"] > 0 and terms["weight_decay"] > 0
    assert model.objective(x) == pytest.approx(terms["total"], rel=1e-6)


def test_penalty_gradient_enters_at_the_code():
    """The code penalty changes the encoder's gradients and leaves the decoder's alone."""
    rng = np.random.default_rng(0)
    plain = A.ordinary(rng=np.random.default_rng(1), dtype=np.float64)
    penalized = A.ordinary(rng=np.random.default_rng(1), dtype=np.float64, code_penalty=L1Activity(0.1))
    x = rng.uniform(0, 1, (8, 784))
    plain.loss_and_grads(x)
    penalized.loss_and_grads(x)
    np.testing.assert_array_equal(plain.params["decoder.0.W"].grad, penalized.params["decoder.0.W"].grad)
    assert not np.allclose(plain.params["encoder.0.W"].grad, penalized.params["encoder.0.W"].grad)


def test_denoising_compares_with_the_clean_input():
    rng = np.random.default_rng(0)
    model = A.ordinary(rng=rng, dtype=np.float64, noise=GaussianNoise(0.5))
    x = rng.uniform(0, 1, (6, 784))
    terms = model.loss_and_grads(x, np.random.default_rng(7))
    noisy = GaussianNoise(0.5)(x, np.random.default_rng(7))
    x_hat = model.decode(model.encoder.forward(noisy, training=False))
    assert terms["reconstruction"] == pytest.approx(npae.objectives.losses.mse(x_hat, x)[0], rel=1e-12)
    assert terms["reconstruction"] != pytest.approx(npae.objectives.losses.mse(x_hat, noisy)[0], rel=1e-3)
    # inference never adds noise
    np.testing.assert_array_equal(model.reconstruct(x), model.reconstruct(x))
    with pytest.raises(ValueError, match="rng"):
        model.loss_and_grads(x)


def test_family_shapes_and_defaults():
    conv = CF.convolutional(rng=np.random.default_rng(0))
    assert conv.code_shape == (8, 4, 4) and conv.input_shape == (1, 28, 28)
    den = CF.denoising(rng=np.random.default_rng(0))
    assert den.code_shape == (32, 7, 7) and isinstance(den.noise, GaussianNoise) and den.noise.std == 0.5
    ml = A.multilayer(rng=np.random.default_rng(0))
    assert ml.code_shape == (64,)
    assert [p.shape for _, p in ml.named_params()][::2] == [(784, 128), (128, 64), (64, 128), (128, 784)]
    assert A.ordinary(code=32, rng=np.random.default_rng(0)).code_shape == (32,)
    assert "MaxPool2D" in conv.summary() and "(N, 1, 28, 28)" in conv.summary()
    with pytest.raises(ValueError, match="odd number"):
        A.multilayer(hidden=(128, 64))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ties", [False, True])
def test_pool_then_relu_is_relu_then_pool_bit_for_bit(dtype, ties):
    """The convolutional encoder pools before its ReLUs; the article's order gives the same
    outputs and the same input and weight gradients, exactly, ties and negative windows included."""
    rng = np.random.default_rng(1)
    shape = (3, 4, 7, 8)  # 7 rows: the "same" pooling pads a row of -inf
    x = rng.integers(-2, 2, shape).astype(dtype) if ties else rng.standard_normal(shape).astype(dtype)
    swapped = npae.Sequential(npae.MaxPool2D(2, padding="same"), npae.ReLU())
    article = npae.Sequential(npae.ReLU(), npae.MaxPool2D(2, padding="same"))
    y = swapped.forward(x)
    np.testing.assert_array_equal(y, article.forward(x))
    dy = rng.standard_normal(y.shape).astype(dtype)
    np.testing.assert_array_equal(swapped.backward(dy), article.backward(dy))

    model = CF.convolutional(rng=np.random.default_rng(0), dtype=dtype)
    layers = list(model.encoder.layers)
    assert [type(layer).__name__ for layer in layers] == ["Conv2D", "MaxPool2D", "ReLU"] * 3
    for i in (1, 4, 7):  # the article's order, same layer objects
        layers[i], layers[i + 1] = layers[i + 1], layers[i]
    article_model = npae.Autoencoder(npae.Sequential(*layers), model.decoder, input_shape=(1, 28, 28))
    images = rng.random((4, 1, 28, 28)).astype(dtype)
    grads = []
    for m in (model, article_model):
        m.zero_grad()
        loss = m.loss_and_grads(images)["total"]
        grads.append((loss, [p.grad.copy() for _, p in m.named_params()]))
    assert grads[0][0] == grads[1][0]
    for a, b in zip(grads[0][1], grads[1][1]):
        np.testing.assert_array_equal(a, b)


def test_inference_in_batches_is_one_pass():
    """encode, decode and reconstruct go through the input in batches (memory), with the
    results of one pass over all of it."""
    rng = np.random.default_rng(0)
    x = rng.random((7, 1, 28, 28))
    for model in (CF.convolutional(rng=np.random.default_rng(0), dtype=np.float64),
                  A.vae(code=3, hidden=16, input_shape=(1, 28, 28), rng=np.random.default_rng(0), dtype=np.float64)):
        for method, arg in (("encode", x), ("decode", model.encode(x, batch_size=7)), ("reconstruct", x)):
            whole = getattr(model, method)(arg, batch_size=7)
            # the same sums, but BLAS may order them differently for another batch size (a batch
            # of one is a matrix-vector product): the longest chain through either model is
            # under 1,600 additions (the VAE's 784 + 16 + 16 + 784; the conv layers' 9 c_in each)
            assert_close(getattr(model, method)(arg, batch_size=3), whole, terms=1600, what=method)
            assert getattr(model, method)(arg).shape == whole.shape
    mu, logvar = model.encode_distribution(x, batch_size=2)
    assert_close(np.concatenate([mu, logvar], 1), np.concatenate(model.encode_distribution(x, batch_size=7), 1),
                 terms=1600, what="encode_distribution")
    for bad in (0, 2.5):
        with pytest.raises(ValueError, match="batch_size must be a positive int"):
            model.reconstruct(x, batch_size=bad)


def test_shapes_are_never_reinterpreted():
    """An input reaches a model when its samples have input_shape, or as the flat vector of an
    image model's values; anything else is refused with both shapes named and the likely fix."""
    (x, _), _ = npae.load_mnist()
    flat_model = A.ordinary(rng=np.random.default_rng(0))
    image_model = A.ordinary(rng=np.random.default_rng(0), input_shape=(1, 28, 28))
    a = image_model.reconstruct(x[:4])
    np.testing.assert_array_equal(a, image_model.reconstruct(x[:4].reshape(4, 784)))  # the flat form of images
    np.testing.assert_array_equal(a.reshape(4, 784), flat_model.reconstruct(x[:4].reshape(4, 784)))  # same weights
    assert a.shape == (4, 1, 28, 28)
    with pytest.raises(ValueError, match=r"expected x of shape \(N, 784\), got \(4, 1, 28, 28\).*reshape"):
        flat_model.reconstruct(x[:4])
    with pytest.raises(ValueError, match=r"\(N, 784\)"):
        flat_model.reconstruct(np.zeros((4, 100), np.float32))
    colour = CF.convolutional(input_shape=(3, 32, 32), rng=np.random.default_rng(0))
    channels_last = np.zeros((2, 32, 32, 3), np.float32)
    with pytest.raises(ValueError, match=r"\(N, 3, 32, 32\).*got \(2, 32, 32, 3\).*transpose\(0, 3, 1, 2\)"):
        colour.reconstruct(channels_last)
    with pytest.raises(ValueError, match=r"got \(2, 7, 112\)"):
        CF.convolutional(rng=np.random.default_rng(0)).reconstruct(np.zeros((2, 7, 112), np.float32))
    assert colour.reconstruct(channels_last.transpose(0, 3, 1, 2)).shape == (2, 3, 32, 32)


def test_inference_converts_another_float_dtype_once_training_stays_strict():
    model = A.ordinary(rng=np.random.default_rng(0))
    x = npae.load_mnist(flatten=True)[1][0][:4]
    np.testing.assert_array_equal(model.reconstruct(x.astype(np.float64)), model.reconstruct(x))
    assert model.encode(x.astype(np.float64)).dtype == np.float32
    with pytest.raises(TypeError, match="float64 but the model is float32"):
        npae.fit(model, x.astype(np.float64), epochs=1, verbose=False)
    with pytest.raises(TypeError, match="uint8"):
        model.reconstruct((x * 255).astype(np.uint8))


def test_flat_codes():
    model = CF.convolutional(rng=np.random.default_rng(0))
    x = npae.load_mnist()[1][0][:3]
    h = model.encode(x)
    assert h.shape == (3, 8, 4, 4) and model.encode(x, flat=True).shape == (3, 128)
    np.testing.assert_array_equal(model.decode(h.reshape(3, -1)), model.decode(h))  # a flat code decodes too


def test_autoencoder_rejects_mismatched_parts():
    with pytest.raises(ValueError, match="not to the input shape"):
        npae.Autoencoder(npae.Sequential(npae.Dense(784, 10)), npae.Sequential(npae.Dense(10, 700)), input_shape=(784,))
    with pytest.raises(ValueError, match="loss"):
        npae.Autoencoder(npae.Dense(4, 2), npae.Dense(2, 4), loss="mae")
    with pytest.raises(TypeError, match="encoder"):
        npae.Autoencoder("dense", npae.Dense(2, 4))


def test_evaluate_is_the_mean_over_all_elements_whatever_the_batch_size():
    rng = np.random.default_rng(0)
    model = A.ordinary(rng=rng, dtype=np.float64, code_penalty=L1Activity(0.01))
    x = rng.uniform(0, 1, (37, 784))
    a = model.evaluate(x, batch_size=5)
    b = model.evaluate(x, batch_size=100)
    # means of non-negative terms (squares, |h|) whose inputs differ only by the rounding of
    # products of another batch size (~1e-16 relative): 1e-12 is far above that
    assert a["reconstruction"] == pytest.approx(b["reconstruction"], rel=1e-12)
    assert a["code_penalty"] == pytest.approx(b["code_penalty"], rel=1e-12)
    assert b["reconstruction"] == pytest.approx(npae.objectives.losses.mse(model.reconstruct(x), x)[0], rel=1e-12)


def short_training(model, steps, seed):
    (x, _), (xt, _) = npae.load_mnist()
    rng = np.random.default_rng(seed)
    opt = npae.optim.Adam(model.named_params())
    for _ in range(steps):
        model.loss_and_grads(x[rng.integers(0, len(x), 64)], rng)
        opt.step()
    out = model.reconstruct(xt[:200])
    return npae.objectives.losses.mse(out, xt[:200])[0], float(out.std(axis=0).mean())


def plateaus():
    """The test MSE of an all-black output and of the mean image, on the images short_training scores."""
    xt = npae.load_mnist()[1][0][:200]
    return float(np.mean(xt ** 2)), float(np.mean((xt - xt.mean(axis=0)) ** 2))


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_convolutional_trains_with_mse(seed):
    """The design fix (output bias at the mean intensity): MSE + Adam leaves the all-black plateau."""
    mse, spread = short_training(CF.convolutional(rng=np.random.default_rng(seed)), 100, seed)
    black, mean_image = plateaus()
    assert mse < mean_image  # better than the mean image (0.062) and far from black (0.101); 0.042 is typical
    assert spread > 0.05  # the output depends on the input (0.10 is typical; collapsed: < 0.001)


@pytest.mark.slow
def test_article_initialization_collapses_with_mse():
    """The finding behind the fix: Glorot weights and a zero output bias saturate to black."""
    mse, spread = short_training(CF.convolutional(rng=np.random.default_rng(0), output_bias=0.0), 100, 0)
    black, mean_image = plateaus()
    assert mse > 0.97 * black > 1.4 * mean_image  # at the all-black loss, far above the mean image's
    assert spread < 0.01  # the output no longer depends on the input
