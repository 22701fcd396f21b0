"""What moved in 0.3.0 keeps working for one release, with a DeprecationWarning naming the new path
(npae/_deprecated.py, CHANGELOG.md). The suite turns npae's own DeprecationWarnings into errors
(setup.cfg) so nothing else in it uses an old path; these tests ask for them on purpose."""

import importlib
import importlib.util
import sys

import numpy as np
import pytest

import npae
from npae._deprecated import MOVED


@pytest.fixture
def fresh(monkeypatch):
    """Forget every old path, so each test sees its first use (and its one warning)."""
    for old in MOVED:
        monkeypatch.delitem(sys.modules, f"npae.{old}", raising=False)
        if old in vars(npae):
            monkeypatch.delattr(npae, old)


@pytest.mark.parametrize("old", sorted(MOVED))
def test_every_old_module_path_imports_as_its_new_module_with_a_warning(old, fresh):
    new = importlib.import_module(f"npae.{MOVED[old][0]}")
    with pytest.warns(DeprecationWarning, match=rf"npae\.{old} moved to npae\.{MOVED[old][0]} in npae 0\.3\.0") as w:
        alias = importlib.import_module(f"npae.{old}")
    assert len(w) == 1
    public = [n for n in vars(new) if not n.startswith("_") and not isinstance(getattr(new, n), type(npae))]
    assert public and all(getattr(alias, n) is getattr(new, n) for n in public)  # (a submodule may yield to a
    # function the old module held under its name: npae.conv_kernels.im2col, below)
    with pytest.raises(AttributeError, match=f"npae.{old} .now npae.{MOVED[old][0]}. has no name 'no_such_name'"):
        alias.no_such_name  # noqa: B018


def test_the_warning_points_at_the_users_line(fresh):
    with pytest.warns(DeprecationWarning) as w:
        from npae.conv import Conv2D  # noqa: F401
    assert w[0].filename == __file__
    with pytest.warns(DeprecationWarning) as w:
        npae.losses.mse  # noqa: B018
    assert w[0].filename == __file__


def test_the_names_of_0_1_and_the_re_exports_of_0_2(fresh):
    with pytest.warns(DeprecationWarning):
        import npae.autoencoders as old
        import npae.conv as old_conv
        import npae.datasets as old_datasets
        import npae.export as old_export
        import npae.families as old_families
    assert old.ordinary is npae.FAMILIES["ordinary"] and old.vae is npae.FAMILIES["vae"]
    assert old.convolutional is npae.FAMILIES["convolutional"] and old.VAE is npae.VAE and old.Model is npae.Model
    assert old_conv.MaxPool2D is npae.MaxPool2D and old_conv.UpSampling2D is npae.UpSampling2D
    assert old_datasets.read_idx is npae.data.idx.read_idx
    assert old_export.load_safetensors is npae.files.safetensors.load_safetensors
    assert old_export.state_dict_arrays is npae.files.state_dict.state_dict_arrays
    assert old_families.denoising is npae.FAMILIES["denoising"]


def test_module_attributes_of_the_package(fresh):
    with pytest.warns(DeprecationWarning, match="npae.io moved to npae.files.io"):
        assert npae.io.save is npae.save
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        npae.nothing_here  # noqa: B018


def test_model_fit_is_npae_fit():
    x = npae.load_mnist(flatten=True)[0][0][:256]
    a = npae.FAMILIES["ordinary"](code=4, rng=np.random.default_rng(1))
    b = npae.FAMILIES["ordinary"](code=4, rng=np.random.default_rng(1))
    with pytest.warns(DeprecationWarning, match=r"Model.fit\(x, ...\) is npae.fit\(model, x, ...\)"):
        ha = a.fit(x, epochs=2, batch_size=32, rng=np.random.default_rng(2), verbose=False)
    hb = npae.fit(b, x, epochs=2, batch_size=32, rng=np.random.default_rng(2), verbose=False)
    assert ha.rows[-1]["train_total"] == hb.rows[-1]["train_total"]
    for (_, p), (_, q) in zip(a.named_params(), b.named_params()):
        np.testing.assert_array_equal(p.value, q.value)


@pytest.mark.parametrize("family, old, new, value", [
    ("vae", "latent", "code", 3), ("convolutional", "code_channels", "code", 4),
    ("denoising", "code_channels", "code", 4), ("contractive", "activation", "code_activation", "sigmoid"),
])
def test_renamed_family_keywords(family, old, new, value):
    make = npae.FAMILIES[family]
    with pytest.warns(DeprecationWarning, match=rf"{family}\({old}=...\) is {family}\({new}=...\)"):
        before = make(rng=np.random.default_rng(0), **{old: value})
    after = make(rng=np.random.default_rng(0), **{new: value})
    assert before.config() == after.config()
    for (_, p), (_, q) in zip(before.named_params(), after.named_params()):
        np.testing.assert_array_equal(p.value, q.value)
    with pytest.raises(TypeError, match=f"{old}= is the old name of {new}="):
        make(**{old: value, new: value})


def test_what_is_set_on_an_old_path_reaches_the_code(fresh, monkeypatch):
    """0.2's own tests patched npae.conv_kernels.FLAT_BUDGET: the flat kernel must see it."""
    with pytest.warns(DeprecationWarning):
        import npae.conv_kernels as old
    monkeypatch.setattr(old, "FLAT_BUDGET", 1 << 10)
    assert npae.nn.kernels.flat.FLAT_BUDGET == 1 << 10
    layer = npae.Conv2D(4, 6, 3, rng=np.random.default_rng(0))
    layer.forward(np.zeros((8, 4, 10, 10), np.float32))
    assert layer._cache.block == 1  # a block per sample, as the budget now asks
    monkeypatch.undo()
    assert npae.nn.kernels.flat.FLAT_BUDGET == 16 << 20


def test_star_imports_names_that_moved_and_names_that_are_gone(fresh):
    with pytest.warns(DeprecationWarning):
        namespace = {}
        exec("from npae.conv import *", namespace)
    assert namespace["Conv2D"] is npae.Conv2D and namespace["MaxPool2D"] is npae.MaxPool2D
    with pytest.warns(DeprecationWarning):
        from npae.conv_kernels import im2col  # 0.2 re-exported windows.im2col, not the new module
    assert im2col is npae.nn.windows.im2col
    with pytest.raises(ImportError, match=r"strided_forward is gone in npae 0\.3\.0: use npae\.nn\.kernels\.KERNELS"):
        from npae.conv_kernels import strided_forward  # noqa: F401
    with pytest.warns(DeprecationWarning):
        import npae.export as old_export
    assert old_export.AS_IS is npae.converters.AS_IS and old_export.CONVERTERS is npae.converters.CONVERTERS


def test_import_module_and_reload_warn_once_at_the_callers_line(fresh):
    with pytest.warns(DeprecationWarning) as w:
        alias = importlib.import_module("npae.losses")
    assert len(w) == 1 and w[0].filename == __file__
    import warnings

    with warnings.catch_warnings(record=True) as again:
        warnings.simplefilter("always")
        importlib.reload(alias)
    assert not [x for x in again if issubclass(x.category, DeprecationWarning)]
    with pytest.warns(DeprecationWarning):
        npae.io  # noqa: B018
    assert importlib.util.find_spec("npae.io") is not None
