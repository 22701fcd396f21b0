"""npae.files.export: models to PyTorch and back, and safetensors files written and read with NumPy alone.

The torch tests skip without torch (``pytest.importorskip``, through the ``torch`` fixture); the
safetensors writer and reader are NumPy's and their tests run everywhere (those that also read
with the ``safetensors`` package skip without it).

The bound on npae against torch (tests/README.md, rule 1): every output entry is a chain of
dot products, one per layer, each a sum of ``n_in + 1`` terms for a Dense (``c_in kh kw + 1`` for a
convolution), and of a few roundings for each transcendental function; max pooling, ReLU,
upsampling and reshapes do not round at all. :func:`chain_terms` counts that chain through the
model, and the two computations agree within ``assert_close(torch, npae, terms=chain_terms(...),
dtype=...)``: ``max|t - n| <= 2 gamma(terms) max|n|`` with ``gamma`` in the model's dtype. Layers
that do not round at all (terms 0) must agree bit for bit (rule 2).
"""

from __future__ import annotations

import ast
import io
import json
import math
import pathlib
import pickle
import struct
import sys
import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tolerances import assert_close

import npae
from npae import converters
from npae.cli import main
from npae.core import LAYERS
from npae.files import export
from npae.files.export import save_safetensors
from npae.files.safetensors import SafetensorsError, load_safetensors, write_safetensors
from npae.files.state_dict import state_dict_arrays

ROOT = pathlib.Path(__file__).resolve().parent.parent

#: roundings counted for one transcendental function and the operations around it, on each side
#: (exp, log1p, tanh: NumPy's SIMD versions are within 4 ulp, torch's are its own; tests/README.md)
TRANSCENDENTAL = 8
#: layers whose outputs are inputs moved, copied or compared (max, ReLU's mask): no rounding at all
EXACT = {"ReLU", "Identity", "MaxPool2D", "UpSampling2D", "Flatten", "Reshape", "Dropout"}


def chain_terms(layer) -> int:
    """The longest chain of additions and roundings from the input to any output entry of ``layer``."""
    name = type(layer).__name__
    if name == "Sequential":
        return sum(chain_terms(child) for child in layer.layers)
    if name in ("Dense", "TiedDense"):
        return layer.n_in + 1
    if name in ("Conv2D", "ConvTranspose2D"):  # a transposed one sums at most c_in kh kw products too
        return layer.c_in * math.prod(layer.kernel_size) + 1
    if name == "AvgPool2D":
        return math.prod(layer.pool_size) + 1  # the window's sum, times 1 / (kh kw)
    if name in ("Sigmoid", "Tanh", "Softplus", "ELU", "GELU"):
        return TRANSCENDENTAL
    if name in ("BatchNorm1D", "BatchNorm2D"):
        # (x - mean) / sqrt(var + eps) * gamma + beta, in either order: 6 roundings; relative to
        # max|y| as long as the running mean is not far outside the data (so for the cases here)
        return TRANSCENDENTAL
    if name == "LeakyReLU":
        return 1  # x * alpha
    if name in EXACT:
        return 0
    raise KeyError(f"chain_terms: count the additions of {name} (a new layer: add it here, see CONTRIBUTING.md)")


def _has_torch() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def with_random_biases(model, rng):
    """Every bias drawn, and BatchNorm's scales and running statistics (the families start them at 0
    or 1, where an array mapped wrongly would go unseen)."""
    for name, p in model.named_params():
        if name.endswith((".b", ".beta")):
            p.value[...] = rng.normal(0, 0.2, p.shape)
        elif name.endswith(".gamma"):
            p.value[...] = rng.uniform(0.5, 2, p.shape)
    for name, buffer in model.named_buffers():
        if name.endswith(".running_mean"):
            buffer[...] = rng.normal(0, 0.2, buffer.shape)
        elif name.endswith(".running_var"):
            buffer[...] = rng.uniform(0.5, 2, buffer.shape)
    return model


# -- every family, and image-shaped ones ----------------------------------------------------------
FAMILY_CASES = {name: (lambda name=name: {}) for name in npae.FAMILIES}
FAMILY_CASES.update({
    "convolutional 3x32x32": lambda: {"family": "convolutional", "input_shape": (3, 32, 32)},
    "ordinary 1x28x28": lambda: {"family": "ordinary", "input_shape": (1, 28, 28)},
    "vae 1x28x28": lambda: {"family": "vae", "input_shape": (1, 28, 28)},
    "multilayer tied": lambda: {"family": "multilayer", "hidden": (64, 16, 64), "tied": True},
    "ordinary softplus code": lambda: {"family": "ordinary", "code_activation": "softplus"},
    "ordinary leaky_relu code": lambda: {"family": "ordinary", "code_activation": "leaky_relu"},
    "contractive tanh": lambda: {"family": "contractive", "code_activation": "tanh"},
    "convolutional variant": lambda: {"family": "convolutional", "upsample": "transpose", "downsample": "stride",
                                      "batchnorm": True},
})


def family_model(case: str, seed: int = 0, dtype=np.float32):
    kwargs = FAMILY_CASES[case]()
    family = kwargs.pop("family", case)
    rng = np.random.default_rng(seed)
    model = npae.FAMILIES[family](rng=rng, dtype=dtype, **kwargs)
    return with_random_biases(model, rng)


def inputs_for(model, n=4, seed=1):
    return np.random.default_rng(seed).random((n,) + model.input_shape).astype(model.dtype)


def outputs(model, module, x, torch):
    """(npae, torch) pairs for the code and the reconstruction, and for a VAE the log-variance."""
    xt = torch.from_numpy(x)
    with torch.no_grad():
        pairs = {"encode": (model.encode(x), module.encode(xt).numpy()),
                 "reconstruct": (model.reconstruct(x), module(xt).numpy())}
        if isinstance(model, npae.VAE):
            pairs["logvar"] = (model.encode_distribution(x)[1], module.encode_distribution(xt)[1].numpy())
    return pairs


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("case", sorted(FAMILY_CASES))
def test_every_family_computes_the_same_function_in_torch(case, dtype, torch):
    model = family_model(case, dtype=dtype)
    module = export.to_torch(model)
    assert not module.training  # inference, as npae's encode / reconstruct
    assert all(p.dtype == getattr(torch, np.dtype(dtype).name) for p in module.parameters())
    encoder_terms = chain_terms(model.encoder)
    terms = {"encode": encoder_terms, "logvar": encoder_terms,
             "reconstruct": encoder_terms + chain_terms(model.decoder)}
    for what, (ours, theirs) in outputs(model, module, inputs_for(model), torch).items():
        assert theirs.shape == ours.shape and theirs.dtype == ours.dtype
        assert_close(theirs, ours, terms=terms[what], dtype=dtype, what=f"{case} {what} ({np.dtype(dtype).name})")


def test_image_models_take_flat_inputs_and_codes_as_npae_does(torch):
    model = family_model("convolutional")
    module = export.to_torch(model)
    x = inputs_for(model)
    with torch.no_grad():
        y = module(torch.from_numpy(x)).numpy()
        np.testing.assert_array_equal(module(torch.from_numpy(x.reshape(len(x), -1))).numpy(), y)
        h = module.encode(torch.from_numpy(x))
        np.testing.assert_array_equal(module.decode(h.reshape(len(h), -1)).numpy(), y)
    assert h.shape[1:] == model.code_shape


def test_state_dict_names_follow_npae_names(torch):
    model = family_model("multilayer")
    module = export.to_torch(model)
    assert list(module.state_dict()) == list(state_dict_arrays(model))
    names = {n.replace(".W", ".weight").replace(".b", ".bias") for n, _ in model.named_params()}
    assert set(module.state_dict()) == names
    np.testing.assert_array_equal(module.state_dict()["encoder.0.weight"].numpy(), model.encoder[0].W.T)
    np.testing.assert_array_equal(module.state_dict()["decoder.2.bias"].numpy(), model.decoder[2].b)


def test_to_torch_copies_and_leaves_torchs_generator_alone(torch):
    model = family_model("ordinary")
    before = torch.random.get_rng_state()
    module = export.to_torch(model)
    assert torch.equal(torch.random.get_rng_state(), before)  # torch's initializers ran on a fork of it
    w = model.encoder[0].W.copy()
    with torch.no_grad():
        module.encoder[0].weight.add_(1.0)
    np.testing.assert_array_equal(model.encoder[0].W, w)  # training in torch leaves the npae model alone


# -- layers one by one: every registered layer's examples, and the padding rules at odd sizes ------------
def _layer_examples():
    rng = np.random.default_rng(0)
    for name in sorted(LAYERS):
        for title, layer, x in LAYERS[name].examples(rng):
            yield pytest.param(layer, x, id=title)


_R = np.random.default_rng(5)
LAYER_CASES = [
    # Conv2D: every padding rule, the odd extra row and column of "same" at the bottom and right
    ("conv 3x3 same", npae.Conv2D(2, 3, 3, rng=_R), (2, 2, 7, 6)),
    ("conv 2x2 same, stride 1 (pads 0 top, 1 bottom)", npae.Conv2D(2, 3, 2, rng=_R), (2, 2, 7, 6)),
    ("conv 3x3 same, stride 2 on 7x6", npae.Conv2D(2, 3, 3, stride=2, rng=_R), (2, 2, 7, 6)),
    ("conv 4x3 same, stride (3, 2) on 8x7", npae.Conv2D(2, 2, (4, 3), stride=(3, 2), rng=_R), (2, 2, 8, 7)),
    ("conv 3x3 valid", npae.Conv2D(2, 3, 3, padding="valid", rng=_R), (2, 2, 7, 6)),
    ("conv 2x3 pad 1 stride (2, 1)", npae.Conv2D(1, 2, (2, 3), stride=(2, 1), padding=1, rng=_R), (2, 1, 5, 6)),
    # MaxPool2D at odd sizes: "same" as ceil mode, as symmetric padding, and as -inf padding of its own
    ("pool 2 same on 7x7", npae.MaxPool2D(2, padding="same"), (2, 3, 7, 7)),
    ("pool 2 same on 1x5", npae.MaxPool2D(2, padding="same"), (2, 3, 1, 5)),
    ("pool (2, 1) same on 5x4", npae.MaxPool2D((2, 1), padding="same"), (2, 3, 5, 4)),
    ("pool 3 same stride 1", npae.MaxPool2D(3, stride=1, padding="same"), (2, 3, 7, 6)),
    ("pool 3 same on 7x8 (pads 1 on each side)", npae.MaxPool2D(3, padding="same"), (2, 3, 7, 8)),
    ("pool 3 same stride 2 on 7x6", npae.MaxPool2D(3, stride=2, padding="same"), (2, 3, 7, 6)),
    ("pool 2 same stride 1 on 7x7", npae.MaxPool2D(2, stride=1, padding="same"), (2, 3, 7, 7)),
    ("pool 2 valid on 7x7 (drops the last row)", npae.MaxPool2D(2), (2, 3, 7, 7)),
    ("pool 3 stride 2 valid (overlap)", npae.MaxPool2D(3, stride=2), (2, 3, 7, 7)),
    ("pool 3 stride 2 pad 1", npae.MaxPool2D(3, stride=2, padding=1), (2, 3, 7, 6)),
    ("upsampling (2, 3)", npae.UpSampling2D((2, 3)), (2, 3, 3, 4)),
    ("upsampling 5", npae.UpSampling2D(5), (1, 2, 3, 2)),
    ("reshape a non-flat input", npae.Reshape((6, 10)), (2, 3, 4, 5)),
    ("leaky relu 0.2", npae.LeakyReLU(0.2), (4, 6)),
    # softplus up to 45: past torch's default threshold 20, where only threshold=40 agrees in float64
    ("softplus on [-45, 45]", npae.Softplus(), (3, 30)),
    # the next layers: transposed convolutions with padding and output padding, average pooling's
    # padding rules (zeros that count), BatchNorm at inference with its running statistics
    ("conv transpose 3x3 stride 2 pad 1 out pad 1", npae.ConvTranspose2D(3, 2, 3, stride=2, padding=1,
                                                                         output_padding=1, rng=_R), (2, 3, 4, 5)),
    ("conv transpose (2, 3) stride (2, 1), no bias", npae.ConvTranspose2D(2, 3, (2, 3), stride=(2, 1), bias=False,
                                                                          rng=_R), (2, 2, 3, 4)),
    ("conv 3x3 same stride 2, no bias", npae.Conv2D(2, 3, 3, stride=2, bias=False, rng=_R), (2, 2, 7, 6)),
    ("avg pool 2 same on 7x7", npae.AvgPool2D(2, padding="same"), (2, 3, 7, 7)),
    ("avg pool 3 same stride 1", npae.AvgPool2D(3, stride=1, padding="same"), (2, 3, 7, 6)),
    ("avg pool 3 same stride 2 on 7x6", npae.AvgPool2D(3, stride=2, padding="same"), (2, 3, 7, 6)),
    ("avg pool 3 stride 2 pad 1", npae.AvgPool2D(3, stride=2, padding=1), (2, 3, 7, 6)),
    ("avg pool 2 valid on 7x7", npae.AvgPool2D(2), (2, 3, 7, 7)),
    ("batchnorm 1d, running statistics", with_random_biases(npae.BatchNorm1D(6, eps=1e-3), _R), (4, 6)),
    ("batchnorm 2d, running statistics", with_random_biases(npae.BatchNorm2D(3, momentum=0.3), _R), (2, 3, 4, 5)),
    ("dropout 0.3 (inference)", npae.Dropout(0.3, rng=_R), (4, 6)),
    ("elu 0.7", npae.ELU(0.7), (4, 6)),
    ("gelu", npae.GELU(), (4, 6)),
    ("the 7x7 image through Conv same, MaxPool same, ReLU, Up, Conv valid",
     npae.Sequential(npae.Conv2D(1, 4, 3, rng=_R), npae.MaxPool2D(2, padding="same"), npae.ReLU(),
                     npae.UpSampling2D(2), npae.Conv2D(4, 2, 2, padding="valid", rng=_R), npae.Flatten(),
                     npae.Dense(98, 5, rng=_R), npae.Tanh()), (3, 1, 7, 7)),
]


def _case_input(shape, seed=7):
    rng = np.random.default_rng(seed)
    if shape == (3, 30):
        return np.linspace(-45, 45, 90).reshape(shape) + rng.uniform(0, 0.01, shape)
    return rng.standard_normal(shape)


def _check_layer(layer, x, dtype, torch):
    layer = layer.astype(dtype) if layer.dtype is not None or type(layer).__name__ == "Sequential" else layer
    x = np.asarray(x, dtype=dtype)
    module = export.to_torch(layer)
    with torch.no_grad():
        theirs = module(torch.from_numpy(x)).numpy()
    ours = layer.forward(x, training=False)
    assert theirs.shape == ours.shape and theirs.dtype == ours.dtype
    assert_close(theirs, ours, terms=chain_terms(layer), dtype=dtype, what=f"{layer!r} ({np.dtype(dtype).name})")


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("layer, x", list(_layer_examples()))
def test_every_registered_layer_converts(layer, x, dtype, torch):
    _check_layer(layer, x, dtype, torch)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("title, layer, shape", LAYER_CASES, ids=[c[0] for c in LAYER_CASES])
def test_padding_rules_and_odd_sizes(title, layer, shape, dtype, torch):
    _check_layer(layer, _case_input(shape), dtype, torch)


def test_which_torch_modules_the_padding_rules_become(torch):
    nn = torch.nn
    kinds = {
        npae.Conv2D(1, 1, 3): nn.Conv2d, npae.Conv2D(1, 1, 3, stride=2): export.Conv2dSame,
        npae.Conv2D(1, 1, 2): export.Conv2dSame, npae.MaxPool2D(2, padding="same"): nn.MaxPool2d,
        npae.MaxPool2D(3, padding="same"): export.MaxPool2dSame,
        npae.MaxPool2D(3, stride=1, padding="same"): nn.MaxPool2d,
    }
    for layer, kind in kinds.items():
        assert type(export.to_torch(layer)) is kind, layer
    assert export.to_torch(npae.MaxPool2D(2, padding="same")).ceil_mode
    # every family is standard torch layers, but for the tied ones' TiedLinear
    for case in sorted(FAMILY_CASES):
        modules = list(export.to_torch(family_model(case)).modules())
        assert {type(m).__module__.split(".")[0] for m in modules} == {"torch", "npae"}, case
        own = {type(m).__name__ for m in modules if type(m).__module__ == "npae.files.export"}
        # strided "same" convolutions pad one side more (npae's, TensorFlow's rule): Conv2dSame
        allowed = {"TorchAutoencoder", "TorchVAE", "TiedLinear"} | ({"Conv2dSame"} if "variant" in case else set())
        assert own <= allowed, case


@pytest.mark.parametrize("pool, stride, padding", [(2, 2, "valid"), (2, 2, "same"), (3, 3, "same"), (3, 2, "valid"),
                                                   (3, 1, 1), (3, 2, "same")])
def test_max_pooling_ties_go_to_the_first_maximum_in_both(pool, stride, padding, torch):
    """Integer inputs in {0, 1, 2}: ties everywhere. Integer dy: every sum of gradients is exact, so
    npae's routing and torch's must agree bit for bit (rule 2); torch also takes the first maximum."""
    rng = np.random.default_rng(3)
    x = rng.integers(0, 3, (2, 2, 7, 6)).astype(np.float64)
    layer = npae.MaxPool2D(pool, stride=stride, padding=padding)
    y = layer.forward(x)
    dy = rng.integers(-4, 5, y.shape).astype(np.float64)
    xt = torch.from_numpy(x).requires_grad_(True)
    yt = export.to_torch(layer)(xt)
    yt.backward(torch.from_numpy(dy))
    np.testing.assert_array_equal(yt.detach().numpy(), y)
    np.testing.assert_array_equal(xt.grad.numpy(), layer.backward(dy))


# -- tied weights -----------------------------------------------------------------------------------------
def test_tied_weights_stay_tied_in_torch(torch):
    model = family_model("tied", dtype=np.float64)
    module = export.to_torch(model)
    linear, tied = module.encoder[0], module.decoder[0]
    assert type(tied).__name__ == "TiedLinear" and tied.source is linear
    assert [n for n, _ in module.named_parameters()] == ["encoder.0.weight", "encoder.0.bias", "decoder.0.bias"]
    assert sum(p is linear.weight for p in module.parameters()) == 1
    h = torch.from_numpy(model.encode(inputs_for(model)))
    with torch.no_grad():
        before = module.decode(h).numpy()
        linear.weight.mul_(2)  # changing the encoder's weight changes the decoder's output: one matrix
        after = module.decode(h).numpy()
    assert np.abs(after - before).max() > 0.01
    model.encoder[0].params["W"].value *= 2  # the same change (exact) in npae
    assert_close(after, model.decode(h.numpy()), terms=chain_terms(model.decoder), dtype=np.float64)
    # and gradients through torch reach the shared weight from both uses
    module.zero_grad()
    module(torch.from_numpy(inputs_for(model))).square().sum().backward()
    assert linear.weight.grad is not None and tied.bias.grad is not None


def test_tied_weights_survive_copies_pickles_and_conversions(torch):
    import copy

    module = export.to_torch(family_model("tied"))
    buffer = io.BytesIO()
    torch.save(module, buffer)
    buffer.seek(0)
    for other in (copy.deepcopy(module), pickle.loads(pickle.dumps(module)),
                  torch.load(buffer, weights_only=False), module.double()):
        assert other.decoder[0].source is other.encoder[0]
        assert len(list(other.parameters())) == 3


# -- and back: npae -> torch -> npae, bit for bit ---------------------------------------------------
@pytest.mark.parametrize("case", sorted(FAMILY_CASES))
def test_round_trip_through_torch_is_bit_identical(case, torch):
    model = family_model(case, seed=0)
    other = family_model(case, seed=1)  # the same architecture, other weights
    export.from_torch_state_dict(other, export.to_torch(model).state_dict())
    for (name, p), (_, q) in zip(model.named_params(), other.named_params()):
        np.testing.assert_array_equal(q.value, p.value, err_msg=name)
    x = inputs_for(model)
    np.testing.assert_array_equal(other.reconstruct(x), model.reconstruct(x))


def test_from_torch_state_dict_keeps_the_param_objects_and_the_ties(torch):
    model = family_model("tied", seed=1)
    params = dict(model.named_params())
    module = export.to_torch(family_model("tied", seed=0))
    with torch.no_grad():
        module.encoder[0].weight.mul_(3)
    export.from_torch_state_dict(model, module.state_dict())
    assert all(q is params[n] for n, q in model.named_params())
    assert model.decoder[0].source is model.encoder[0]
    np.testing.assert_array_equal(model.decoder[0].W, module.encoder[0].weight.detach().numpy().T)


def test_from_torch_state_dict_takes_numpy_arrays():
    model, other = family_model("convolutional", seed=0), family_model("convolutional", seed=1)
    export.from_torch_state_dict(other, state_dict_arrays(model))
    x = inputs_for(model)
    np.testing.assert_array_equal(other.reconstruct(x), model.reconstruct(x))


def _refused(model, state, error, match):
    before = {n: p.value.copy() for n, p in model.named_params()}
    with pytest.raises(error, match=match):
        export.from_torch_state_dict(model, state)
    for name, p in model.named_params():  # nothing written: the model is unchanged
        np.testing.assert_array_equal(p.value, before[name])


def test_from_torch_state_dict_checks_names_shapes_dtypes_and_values():
    model = family_model("ordinary", seed=1)
    good = state_dict_arrays(family_model("ordinary", seed=0))
    _refused(model, {k: v for k, v in good.items() if k != "decoder.0.bias"}, ValueError,
             r"missing \['decoder.0.bias'\]")
    _refused(model, {**good, "decoder.9.weight": good["decoder.0.bias"]}, ValueError,
             r"unexpected \['decoder.9.weight'\]")
    _refused(model, {**good, "encoder.0.weight": good["encoder.0.weight"].T}, ValueError,
             r"encoder.0.weight has shape \(784, 64\); encoder.0.W \(784, 64\) needs \(64, 784\) in torch's layout")
    _refused(model, {**good, "encoder.0.bias": good["encoder.0.bias"].astype(np.float64)}, TypeError,
             r"encoder.0.bias is float64, encoder.0.b is float32")
    nan = good["decoder.0.weight"].copy()
    nan[3, 4] = np.nan
    _refused(model, {**good, "decoder.0.weight": nan}, ValueError, "decoder.0.weight contains NaN")
    _refused(model, [1, 2], TypeError, "expected a state dict")


# -- errors ------------------------------------------------------------------------------------------------
class Mystery(npae.Layer):
    """A layer of the user's own, which npae cannot know how to convert."""

    def forward(self, x, training=True):
        return x


def test_a_layer_without_a_converter_is_a_type_error_naming_it(monkeypatch, tmp_path):
    rng = np.random.default_rng(0)
    model = npae.Sequential(npae.Dense(4, 3, rng=rng), Mystery())
    for fn in (state_dict_arrays, save_safetensors) + ((export.to_torch,) if _has_torch() else ()):
        with pytest.raises(TypeError, match=r"no converter for the layer class Mystery \(at 1\); npae.converters.CONV"):
            fn(model, *([tmp_path / "m.safetensors"] if fn is save_safetensors else []))
    assert not (tmp_path / "m.safetensors").exists()
    ae = npae.Autoencoder(npae.Sequential(npae.Dense(4, 3, rng=rng), npae.Sequential(npae.ReLU(), Mystery())),
                          npae.Sequential(npae.Dense(3, 4, rng=rng)))
    with pytest.raises(TypeError, match=r"Mystery \(at encoder.1.1\)"):
        state_dict_arrays(ae)

    class Dense(npae.Dense):  # a subclass of npae's with the same name is not npae's Dense
        pass

    with pytest.raises(TypeError, match="no converter for the layer class Dense"):
        state_dict_arrays(Dense(3, 2, rng=rng))
    monkeypatch.delitem(converters.CONVERTERS, "Tanh")
    with pytest.raises(TypeError, match="no converter for the npae layer class Tanh"):
        state_dict_arrays(npae.Sequential(npae.Tanh()))


def test_a_converter_table_that_misses_a_parameter_is_caught(monkeypatch):
    dense = converters.CONVERTERS["Dense"]
    monkeypatch.setitem(converters.CONVERTERS, "Dense", dense._replace(state={"W": ("weight", converters.TRANSPOSED)}))
    with pytest.raises(TypeError, match=r"the converter of Dense lists \['W'\] but the layer has \['W', 'b'\]"):
        state_dict_arrays(npae.Dense(3, 2))


def test_other_models_and_untied_sources_are_refused(torch):
    class MyModel(npae.Autoencoder):
        pass

    rng = np.random.default_rng(0)
    model = MyModel(npae.Sequential(npae.Dense(4, 2, rng=rng)), npae.Sequential(npae.Dense(2, 4, rng=rng)))
    with pytest.raises(TypeError, match="no converter for the model class MyModel"):
        export.to_torch(model)
    with pytest.raises(TypeError, match="expected an npae model or layer, got ndarray"):
        export.to_torch(np.zeros(3))
    with pytest.raises(ValueError, match="tied to a Dense layer that is not converted before it"):
        export.to_torch(npae.Sequential(npae.TiedDense(npae.Dense(4, 2, rng=rng))))


def test_without_torch_a_clear_error_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "torch", None)  # what `import torch` meets where torch is not installed
    model = family_model("tied")
    with pytest.raises(ImportError, match=r"needs torch, which is not installed: pip install torch"):
        export.to_torch(model)
    with pytest.raises(ImportError, match="pip install torch"):
        export.TiedLinear  # noqa: B018
    save_safetensors(model, tmp_path / "m.safetensors")  # NumPy alone
    arrays, _ = load_safetensors(tmp_path / "m.safetensors")
    export.from_torch_state_dict(family_model("tied", seed=3), arrays)


def test_npae_export_imports_torch_only_inside_functions():
    """``import npae`` never needs torch: no import of torch at the top level of npae/files/export.py
    (but under TYPE_CHECKING, which never runs), nor anywhere else in the package."""
    for path in sorted((ROOT / "npae").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            for sub in ast.walk(node) if not isinstance(node, (ast.FunctionDef, ast.ClassDef)) else []:
                names = [a.name for a in sub.names] if isinstance(sub, ast.Import) else \
                    [sub.module or ""] if isinstance(sub, ast.ImportFrom) else []
                assert not any(n.split(".")[0] in ("torch", "safetensors") for n in names), f"{path.name}: {names}"


@pytest.mark.slow
def test_import_npae_and_export_a_file_without_torch(tmp_path):
    import subprocess

    code = ("import sys; sys.modules['torch'] = None; sys.modules['safetensors'] = None\n"
            "import numpy as np, npae, npae.files as e\n"
            "m = npae.models.families.ordinary(rng=np.random.default_rng(0))\n"
            "npae.save(m, 'm.npz')\n"
            "from npae.cli import main\n"
            "assert main(['export', 'm.npz', 'm.safetensors']) == 0\n"
            "print(sorted(e.load_safetensors('m.safetensors')[0]))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                         env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    assert "['decoder.0.bias', 'decoder.0.weight', 'encoder.0.bias', 'encoder.0.weight']" in out.stdout


# -- safetensors, NumPy alone ---------------------------------------------------------------------------------
def _header_of(path):
    raw = pathlib.Path(path).read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    return n, json.loads(raw[8:8 + n]), raw


def test_save_safetensors_writes_the_documented_layout(tmp_path):
    model = family_model("vae 1x28x28")
    path = tmp_path / "vae.safetensors"
    save_safetensors(model, path)
    n, header, raw = _header_of(path)
    assert n % 8 == 0 and raw[8:8 + n].decode("utf-8").rstrip(" ").endswith("}")  # padded with spaces to 8 bytes
    meta = header.pop("__metadata__")
    assert meta["format"] == "pt" and meta["npae"] == npae.__version__
    assert json.loads(meta["npae_model"]) == model.config()
    expected = state_dict_arrays(model)
    assert list(header) == list(expected)
    end = 0
    for name, a in expected.items():
        info = header[name]
        assert info["dtype"] == "F32" and info["shape"] == list(a.shape)
        begin, stop = info["data_offsets"]
        assert begin == end and stop - begin == a.nbytes
        np.testing.assert_array_equal(np.frombuffer(raw[8 + n + begin: 8 + n + stop], "<f4").reshape(a.shape), a)
        end = stop
    assert 8 + n + end == len(raw)
    assert expected["encoder.1.weight"].shape == (512, 784)  # Dense(784, 512): torch's (out, in)


@pytest.mark.parametrize("case", ["ordinary", "tied", "convolutional", "vae", "denoising"])
def test_safetensors_round_trip_is_bit_identical_and_rebuilds_the_architecture(case, tmp_path):
    model = family_model(case, dtype=np.float64 if case == "tied" else np.float32)
    save_safetensors(model, tmp_path / "m.safetensors")
    arrays, meta = load_safetensors(tmp_path / "m.safetensors")
    expected = state_dict_arrays(model)
    assert list(arrays) == list(expected)
    for name in expected:
        assert arrays[name].dtype == expected[name].dtype
        np.testing.assert_array_equal(arrays[name], expected[name])
    rebuilt = npae.files.io.build(json.loads(meta["npae_model"]))
    export.from_torch_state_dict(rebuilt, arrays)
    x = inputs_for(model)
    np.testing.assert_array_equal(rebuilt.reconstruct(x), model.reconstruct(x))


def test_write_and_read_every_dtype_and_odd_shapes(tmp_path):
    arrays = {"f64": np.arange(6.0).reshape(2, 3), "f16": np.array([1.5, -2], np.float16),
              "i64": np.array([-(2 ** 40), 7]), "u8": np.array([[255]], np.uint8), "bool": np.array([True, False]),
              "i8": np.array([-128], np.int8), "scalar": np.array(3.25, np.float32),
              "empty": np.zeros((0, 4), np.float32),
              "big-endian": np.array([1.0, 2.0], ">f4"), "fortran": np.asfortranarray(np.arange(6.0).reshape(2, 3))}
    write_safetensors(tmp_path / "a.safetensors", arrays, {"note": "é"})
    back, meta = load_safetensors(tmp_path / "a.safetensors")
    assert meta == {"note": "é"}
    for name, a in arrays.items():
        assert back[name].shape == a.shape and back[name].dtype == a.dtype.newbyteorder("=")
        np.testing.assert_array_equal(back[name], a)
    assert back["f64"].flags.writeable
    with pytest.raises(TypeError, match="safetensors holds"):
        write_safetensors(tmp_path / "b.safetensors", {"c": np.array([1j])})
    with pytest.raises(TypeError, match="strings to strings"):
        write_safetensors(tmp_path / "b.safetensors", {}, {"a": 1})
    assert not (tmp_path / "b.safetensors").exists()


def test_the_safetensors_package_reads_ours_and_we_read_its(tmp_path):
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    from safetensors import safe_open

    model = family_model("convolutional 3x32x32")
    save_safetensors(model, tmp_path / "ours.safetensors")
    theirs = safetensors_numpy.load_file(tmp_path / "ours.safetensors")
    expected = state_dict_arrays(model)
    assert set(theirs) == set(expected)
    for name in expected:
        np.testing.assert_array_equal(theirs[name], expected[name])
    with safe_open(str(tmp_path / "ours.safetensors"), "np") as f:
        assert json.loads(f.metadata()["npae_model"]) == model.config()
    written = {"a": np.arange(12, dtype=np.float32).reshape(3, 4), "b": np.array([1, 2], np.int64),
               "c": np.zeros((0,), np.float64), "d": np.array([True]), "e": np.array([0.5], np.float16)}
    safetensors_numpy.save_file(written, tmp_path / "theirs.safetensors", metadata={"k": "v"})
    back, meta = load_safetensors(tmp_path / "theirs.safetensors")
    assert meta == {"k": "v"} and set(back) == set(written)
    for name, a in written.items():
        np.testing.assert_array_equal(back[name], a)
        assert back[name].dtype == a.dtype


def test_torch_loads_the_file_into_to_torch(tmp_path, torch):
    safetensors_torch = pytest.importorskip("safetensors.torch")
    model = family_model("tied")
    save_safetensors(model, tmp_path / "m.safetensors")
    module = export.to_torch(family_model("tied", seed=9))  # other weights, restored from the file
    result = module.load_state_dict(safetensors_torch.load_file(tmp_path / "m.safetensors"))
    assert not result.missing_keys and not result.unexpected_keys
    x = torch.from_numpy(inputs_for(model))
    with torch.no_grad():
        np.testing.assert_array_equal(module(x).numpy(), export.to_torch(model)(x).numpy())
    assert module.decoder[0].source is module.encoder[0]  # loading kept the tie
    other = family_model("tied", seed=5)  # and back into npae, from what torch holds
    export.from_torch_state_dict(other, module.state_dict())
    for (name, p), (_, q) in zip(model.named_params(), other.named_params()):
        np.testing.assert_array_equal(q.value, p.value, err_msg=name)


def test_batchnorm_running_statistics_travel_and_torchs_batch_count_is_ignored(tmp_path, torch):
    safetensors_torch = pytest.importorskip("safetensors.torch")
    model = family_model("convolutional variant")  # BatchNorm2D with drawn running statistics
    save_safetensors(model, tmp_path / "m.safetensors")
    assert not any(n.endswith("num_batches_tracked") for n in load_safetensors(tmp_path / "m.safetensors")[0])
    module = export.to_torch(family_model("convolutional variant", seed=9))
    result = module.load_state_dict(safetensors_torch.load_file(tmp_path / "m.safetensors"))
    assert not result.missing_keys and not result.unexpected_keys
    state = module.state_dict()
    assert int(state["encoder.1.num_batches_tracked"]) == 0  # torch's loader added its count
    np.testing.assert_array_equal(state["encoder.1.running_var"].numpy(), model.encoder[1].buffers["running_var"])
    other = family_model("convolutional variant", seed=5)
    export.from_torch_state_dict(other, state)
    for (name, b), (_, c) in zip(model.named_buffers(), other.named_buffers()):
        np.testing.assert_array_equal(c, b, err_msg=name)


# -- hostile and corrupt files --------------------------------------------------------------------------------
def _file(tmp_path, header, data=b"", *, raw_header=None, length=None):
    text = raw_header if raw_header is not None else json.dumps(header).encode("utf-8")
    path = tmp_path / "bad.safetensors"
    path.write_bytes(struct.pack("<Q", len(text) if length is None else length) + text + data)
    return path


def _t(dtype="F32", shape=(2,), offsets=(0, 8)):
    return {"dtype": dtype, "shape": list(shape), "data_offsets": list(offsets)}


HOSTILE = [
    ("empty", None, b"", "fewer than the 8"),
    ("a header longer than the limit", {"length": 2 ** 62}, b"", "more than the 100,000,000 this reader takes"),
    ("a header of 2**63 bytes", {"length": 2 ** 63}, b"", "more than the 100,000,000 this reader takes"),
    ("a header of 100 MB and one byte", {"length": 100_000_001}, b"", "more than the 100,000,000"),
    ("offsets outside the data", {"header": {"w": _t(shape=(2,), offsets=(8, 16))}}, b"\0" * 8, "leaves a gap"),
    ("a shape whose product is astronomical", {"header": {"w": _t(shape=(2 ** 62, 2 ** 62), offsets=(0, 8))}},
     b"\0" * 8, "but its data_offsets span 8"),
    ("a header longer than the file", {"length": 1000, "raw_header": b"{}"}, b"", "1,000 bytes in a file of 10"),
    ("not JSON", {"raw_header": b"{nope"}, b"", "not a safetensors file"),
    ("not UTF-8", {"raw_header": b'{"\xff": 1}'}, b"", "not a safetensors file"),
    ("a JSON array", {"raw_header": b"[1, 2]"}, b"", "not a JSON object"),
    ("nested deep", {"raw_header": b'{"a": ' + b"[" * 50 + b"]" * 50 + b"}"}, b"", "nested more than"),
    ("a name twice", {"raw_header": b'{"a": 1, "a": 2}'}, b"", "the name 'a' appears twice"),
    ("an unknown dtype", {"header": {"w": _t("BF16", (2,), (0, 4))}}, b"\0" * 4, "has dtype 'BF16'"),
    ("a negative size", {"header": {"w": _t(shape=(-2,))}}, b"\0" * 8, "invalid shape"),
    ("a boolean size", {"header": {"w": _t(shape=(True, 2))}}, b"\0" * 8, "invalid shape"),
    ("an extra key", {"header": {"w": {**_t(), "order": "C"}}}, b"\0" * 8, "must be {'dtype', 'shape', 'data_off"),
    ("offsets reversed", {"header": {"w": _t(offsets=(8, 0))}}, b"\0" * 8, "invalid data_offsets"),
    ("offsets that do not span the shape", {"header": {"w": _t(offsets=(0, 12))}}, b"\0" * 12, "span 12"),
    ("overlapping tensors", {"header": {"w": _t(), "v": _t(offsets=(4, 12))}}, b"\0" * 12, "'v' .* overlaps"),
    ("a gap", {"header": {"w": _t(), "v": _t(offsets=(12, 20))}}, b"\0" * 20, "leaves a gap of 4 bytes"),
    ("trailing bytes", {"header": {"w": _t()}}, b"\0" * 9, "trailing bytes"),
    ("truncated data", {"header": {"w": _t()}}, b"\0" * 7, "truncated"),
    ("a terabyte claimed", {"header": {"w": _t(shape=(2 ** 38,), offsets=(0, 2 ** 40))}}, b"\0" * 8, "truncated"),
    ("metadata not strings", {"header": {"__metadata__": {"a": 1}}}, b"", "must map strings to strings"),
]


@pytest.mark.parametrize("title, spec, data, match", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_corrupt_and_hostile_files_are_one_clear_error(title, spec, data, match, tmp_path):
    if spec is None:
        path = tmp_path / "bad.safetensors"
        path.write_bytes(data)
    else:
        spec = dict(spec)
        path = _file(tmp_path, spec.pop("header", None), data, **spec)
    tracemalloc.start()
    try:
        with pytest.raises(SafetensorsError, match=match):
            load_safetensors(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20  # nothing the file claims was allocated


def test_a_folder_and_a_missing_file(tmp_path):
    with pytest.raises(SafetensorsError, match="no such file"):
        load_safetensors(tmp_path / "missing.safetensors")
    with pytest.raises(SafetensorsError, match="is a folder"):
        load_safetensors(tmp_path)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzz_bytes_of_a_file(tmp_path, data):
    """Any byte of a valid file changed, or the file cut short: the arrays, or a SafetensorsError."""
    path = tmp_path / "fuzz.safetensors"
    write_safetensors(path, {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.ones(3)}, {"k": "v"})
    raw = bytearray(path.read_bytes())
    if data.draw(st.booleans()):
        raw = raw[: data.draw(st.integers(0, len(raw) - 1))]
    else:
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    path.write_bytes(bytes(raw))
    try:
        arrays, meta = load_safetensors(path)
    except SafetensorsError:
        return
    assert isinstance(arrays, dict) and isinstance(meta, dict)


# -- the command line -------------------------------------------------------------------------------------
def test_export_command_writes_the_state_dict(tmp_path, capsys):
    model = family_model("convolutional")
    npae.save(model, tmp_path / "model.npz")
    assert main(["export", str(tmp_path / "model.npz"), str(tmp_path / "out.safetensors")]) == 0
    out = capsys.readouterr().out
    assert "wrote" in out and "14 tensors" in out and "safetensors.torch.load_file" in out
    arrays, meta = load_safetensors(tmp_path / "out.safetensors")
    expected = state_dict_arrays(npae.load(tmp_path / "model.npz"))
    assert list(arrays) == list(expected)
    for name in expected:
        np.testing.assert_array_equal(arrays[name], expected[name])
    assert json.loads(meta["npae_model"]) == model.config()


def test_export_command_mistakes_are_one_error_line(tmp_path, capsys):
    npae.save(family_model("ordinary"), tmp_path / "m.npz")
    with pytest.raises(SystemExit) as info:
        main(["export", str(tmp_path / "m.npz"), str(tmp_path / "out.pt")])
    assert info.value.code == 2
    assert "error: argument out: the output must end in .safetensors" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "missing.npz"), str(tmp_path / "o.safetensors")]) == 1
    assert main(["export", str(tmp_path / "m.npz"), str(tmp_path / "no" / "o.safetensors")]) == 1
    (tmp_path / "m.npz").rename(tmp_path / "m.safetensors")  # an npae model file, oddly named
    assert main(["export", str(tmp_path / "m.safetensors"), str(tmp_path / "m.safetensors")]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 3 and all(line.startswith("error: ") for line in err)
    assert "no such file" in err[0] and "does not exist" in err[1] and "is the model file itself" in err[2]
    npae.load(tmp_path / "m.safetensors")  # untouched


def test_export_command_never_replaces_a_file_without_overwrite(tmp_path, capsys):
    npae.save(family_model("ordinary"), tmp_path / "m.npz")
    out = tmp_path / "o.safetensors"
    out.write_bytes(b"the user's own file")
    assert main(["export", str(tmp_path / "m.npz"), str(out)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "--overwrite" in err[0]
    assert out.read_bytes() == b"the user's own file"
    assert main(["export", str(tmp_path / "m.npz"), str(out), "--overwrite"]) == 0
    assert list(load_safetensors(out)[0]) == list(state_dict_arrays(family_model("ordinary")))
