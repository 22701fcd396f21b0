"""Training, saving, checkpoints and resume: nothing lost, nothing executed, bit for bit."""

import io as _io
import json
import os
import pathlib
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest

import npae
from npae.files.io import META, ModelFileError
from npae.models import conv_families as CF
from npae.models import families as A
from npae.objectives.noise import GaussianNoise
from npae.objectives.penalties import L1Activity
from npae.train import fit

X = npae.load_mnist(flatten=True)[0][0][:600]
X_VAL = npae.load_mnist(flatten=True)[1][0][:200]


def small(seed=0, **kw):
    return A.ordinary(code=16, rng=np.random.default_rng(seed), **kw)


def weights(model):
    return {n: p.value.copy() for n, p in model.named_params()}


def assert_same_weights(a, b):
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for n in wa:
        np.testing.assert_array_equal(wa[n], wb[n], err_msg=n)


# -- fit ------------------------------------------------------------------------------------
def test_fit_history_and_output():
    model = small(code_penalty=L1Activity(1e-3))
    out = _io.StringIO()
    history = fit(model, X, epochs=2, batch_size=64, validation_data=X_VAL, rng=np.random.default_rng(0), out=out)
    assert len(history) == 2 and history.stop_reason is None
    for key in ("train_reconstruction", "train_code_penalty", "train_total", "val_reconstruction", "seconds",
                "samples_per_s"):
        assert len(history[key]) == 2 and all(np.isfinite(history[key]))
    assert history["val_reconstruction"][1] < history["val_reconstruction"][0]
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and lines[0].startswith("epoch 1/2  train rec ") and "pen" in lines[0]
    assert "samples/s" in lines[0] and "| val rec" in lines[0]
    json.dumps(history.to_dict())  # the history is plain JSON


def test_fit_quiet():
    out = _io.StringIO()
    fit(small(), X, epochs=1, rng=np.random.default_rng(0), verbose=False, out=out)
    assert out.getvalue() == ""


def test_fit_is_reproducible_with_the_same_seed():
    a, b = small(1), small(1)
    fit(a, X, epochs=2, batch_size=50, rng=np.random.default_rng(5), verbose=False)
    fit(b, X, epochs=2, batch_size=50, rng=np.random.default_rng(5), verbose=False)
    assert_same_weights(a, b)


def poison_at(opt, step):
    """At the given step, write an infinity into a weight, as a diverging run eventually does."""
    real = opt.step

    def stepper():
        real()
        if opt.t == step:
            next(iter(opt.params.values())).value[0, 0] = np.inf

    opt.step = stepper
    return opt


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning",
                            "ignore:invalid value encountered:RuntimeWarning")
def test_nan_stops_training_and_keeps_last_good_weights(tmp_path):
    model = small()
    opt = npae.optim.Adam(model.named_params())
    out = _io.StringIO()
    with pytest.warns(RuntimeWarning, match="diverged in epoch 2"):
        history = fit(model, X, epochs=3, batch_size=100, optimizer=poison_at(opt, 9), rng=np.random.default_rng(0),
                            checkpoint=tmp_path / "ck.npz", out=out)
    assert history.stop_reason.startswith("diverged in epoch 2") and len(history) == 1
    assert all(np.all(np.isfinite(p.value)) for _, p in model.named_params())
    assert_same_weights(model, npae.load(tmp_path / "ck.npz"))  # the weights after epoch 1
    assert "training stopped" in out.getvalue() and "after epoch 1" in out.getvalue()


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning",
                            "ignore:invalid value encountered:RuntimeWarning")
def test_nan_in_the_last_step_of_an_epoch_is_caught(tmp_path):
    model = small()
    opt = npae.optim.Adam(model.named_params())
    with pytest.warns(RuntimeWarning, match="after the last step"):
        history = fit(model, X, epochs=2, batch_size=100, optimizer=poison_at(opt, 12), rng=np.random.default_rng(0),
                            checkpoint=tmp_path / "ck.npz", verbose=False)  # step 12 ends epoch 2
    assert len(history) == 1
    assert_same_weights(model, npae.load(tmp_path / "ck.npz"))


def raise_lr_at(opt, step, lr):
    """From the given step on, the optimizer takes steps of learning rate ``lr``."""
    real = opt.step

    def stepper():
        if opt.t + 1 == step:
            opt.lr = lr
        real()

    opt.step = stepper
    return opt


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning",
                            "ignore:invalid value encountered:RuntimeWarning")
def test_a_diverging_learning_rate_stops_cleanly(tmp_path):
    """A linear autoencoder under SGD at lr 1e30 overflows on any machine: with no activation
    to saturate or die, the gradient cannot vanish, the first such step makes the weights
    ~1e30 times their gradients (1e25 and more), and the next forward pass is a product of
    two such matrices, beyond float32's 3.4e38 whatever order BLAS adds in. Epoch 1 trains
    normally; the divergence in epoch 2 must leave the weights of epoch 1 (also on disk)."""
    rng = np.random.default_rng(0)
    model = npae.Autoencoder(npae.Sequential(npae.Dense(784, 16, rng=rng)),
                             npae.Sequential(npae.Dense(16, 784, rng=rng)), input_shape=(784,))
    opt = raise_lr_at(npae.optim.SGD(model.named_params(), lr=1e-2), 7, 1e30)  # 6 steps an epoch
    with pytest.warns(RuntimeWarning, match="diverged in epoch 2"):
        history = fit(model, X, epochs=4, batch_size=100, optimizer=opt, rng=np.random.default_rng(0),
                            checkpoint=tmp_path / "ck.npz", verbose=False)
    assert history.stop_reason.startswith("diverged in epoch 2") and len(history) == 1
    assert all(np.all(np.isfinite(p.value)) for _, p in model.named_params())
    assert_same_weights(model, npae.load(tmp_path / "ck.npz"))  # the weights after epoch 1


def interrupt_at(opt, step):
    """Raise KeyboardInterrupt (as Ctrl-C does) when the optimizer is about to take ``step``."""
    real = opt.step

    def stepper():
        if opt.t + 1 == step:
            raise KeyboardInterrupt
        real()

    opt.step = stepper
    return opt


def test_ctrl_c_keeps_the_last_completed_epoch(tmp_path):
    model = small()
    opt = npae.optim.Adam(model.named_params())
    ckpt = tmp_path / "ck.npz"
    history = fit(model, X, epochs=3, batch_size=100, optimizer=interrupt_at(opt, 9), rng=np.random.default_rng(0),
                        checkpoint=ckpt, out=_io.StringIO())  # 6 steps an epoch: stops in epoch 2
    assert history.stop_reason == "interrupted in epoch 2" and len(history) == 1
    assert_same_weights(model, npae.load(ckpt))  # the weights after epoch 1, also on disk


def test_resume_is_bit_for_bit(tmp_path):
    """An interrupted and resumed run ends with exactly the weights of an uninterrupted one."""
    kw = dict(noise=GaussianNoise(0.3), code_penalty=L1Activity(1e-4))  # the rng also draws noise
    straight = small(3, **kw)
    h1 = fit(straight, X, epochs=3, batch_size=64, rng=np.random.default_rng(11), verbose=False,
                      validation_data=X_VAL)

    ckpt = tmp_path / "run.npz"
    first = small(3, **kw)
    opt = npae.optim.Adam(first.named_params())
    fit(first, X, epochs=3, batch_size=64, optimizer=interrupt_at(opt, 15), rng=np.random.default_rng(11),
              checkpoint=ckpt, verbose=False, validation_data=X_VAL)  # 10 steps an epoch: dies in epoch 2

    resumed = small(99, **kw)  # a new process: other initial weights, another generator
    h2 = fit(resumed, X, epochs=3, batch_size=64, rng=np.random.default_rng(12345), resume=ckpt,
                     checkpoint=ckpt, out=_io.StringIO(), validation_data=X_VAL)
    assert_same_weights(straight, resumed)
    assert h2["train_total"] == h1["train_total"] and h2["val_reconstruction"] == h1["val_reconstruction"]
    assert [r["epoch"] for r in h2.rows] == [1, 2, 3]


def test_resume_errors(tmp_path):
    model = small()
    npae.save(model, tmp_path / "model.npz")
    with pytest.raises(ModelFileError, match="not a checkpoint"):
        fit(model, X, epochs=2, resume=tmp_path / "model.npz", verbose=False)
    fit(model, X, epochs=1, checkpoint=tmp_path / "ck.npz", rng=np.random.default_rng(0), verbose=False)
    with pytest.raises(ModelFileError, match=r"another model .*n_out: 16 \(checkpoint\) vs 8 \(given to fit\)"):
        fit(A.ordinary(code=8), X, epochs=2, resume=tmp_path / "ck.npz", verbose=False)
    with pytest.raises(ValueError, match="trained with Adam"):
        fit(small(), X, epochs=2, resume=tmp_path / "ck.npz", optimizer=npae.optim.SGD(small().named_params(), lr=0.1))


@pytest.mark.parametrize("kwargs, exc, match", [
    ({"epochs": 0}, ValueError, "epochs"),
    ({"epochs": 1, "batch_size": 0}, ValueError, "batch_size"),
    ({"epochs": 1, "rng": 3}, TypeError, "Generator"),
])
def test_fit_bad_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        fit(small(), X, verbose=False, **kwargs)


def test_fit_bad_data():
    with pytest.raises(ValueError, match="got a scalar"):
        fit(small(), np.float32(3.0), epochs=1)
    with pytest.raises(TypeError, match="float64 but the model is float32"):
        fit(small(), X.astype(np.float64), epochs=1)
    with pytest.raises(ValueError, match=r"\(N, 784\)"):
        fit(small(), X[:, :100], epochs=1)
    bad = X.copy()
    bad[3, 5] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fit(small(), bad, epochs=1)


# -- save / load ----------------------------------------------------------------------------
@pytest.mark.parametrize("family", sorted(A.FAMILIES))
def test_save_load_roundtrip(family, tmp_path):
    model = A.FAMILIES[family](rng=np.random.default_rng(0))
    for _, p in model.named_params():
        p.value[...] += np.random.default_rng(1).normal(0, 0.01, p.shape).astype(p.dtype)
    npae.save(model, tmp_path / "m.npz")
    loaded = npae.load(tmp_path / "m.npz")
    assert_same_weights(model, loaded)
    assert loaded.config() == model.config()
    x = npae.load_mnist()[1][0][:3]
    x = x if len(model.input_shape) == 3 else x.reshape(3, -1)
    np.testing.assert_array_equal(loaded.reconstruct(x), model.reconstruct(x))


def write_npz(path, **arrays):
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def meta_of(model):
    meta = {"format": "npae", "version": 1, "kind": "model", "model": model.config()}
    return meta


def encode(meta):
    return np.frombuffer(json.dumps(meta).encode(), np.uint8)


def params_of(model):
    return {f"param/{n}": p.value for n, p in model.named_params()}


def test_tampered_and_foreign_files(tmp_path):
    model = small()
    good = params_of(model)
    cases = {}
    cases["not_zip.npz"] = b"this is not an npz file"
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
    write_npz(tmp_path / "no_meta.npz", x=np.zeros(3))
    write_npz(tmp_path / "bad_json.npz", **{META: np.frombuffer(b"{not json", np.uint8)}, **good)
    newer = meta_of(model) | {"version": 99}
    write_npz(tmp_path / "newer.npz", **{META: encode(newer)}, **good)
    evil = meta_of(model)
    evil["model"]["encoder"]["layers"][0]["type"] = "os.system"
    write_npz(tmp_path / "unknown_layer.npz", **{META: encode(evil)}, **good)
    wrong = dict(good)
    wrong["param/encoder.0.W"] = np.zeros((784, 15), np.float32)
    write_npz(tmp_path / "wrong_shape.npz", **{META: encode(meta_of(model))}, **wrong)
    missing = {k: v for k, v in good.items() if k != "param/decoder.0.b"}
    write_npz(tmp_path / "missing.npz", **{META: encode(meta_of(model))}, **missing)
    nan = dict(good)
    nan["param/decoder.0.b"] = np.full(784, np.nan, np.float32)
    write_npz(tmp_path / "nan.npz", **{META: encode(meta_of(model))}, **nan)
    bad_kwargs = meta_of(model)
    bad_kwargs["model"]["encoder"]["layers"][0]["n_in"] = -5
    write_npz(tmp_path / "bad_kwargs.npz", **{META: encode(bad_kwargs)}, **good)
    expected = {
        "not_zip.npz": "not a zip archive", "no_meta.npz": "no __npae__", "bad_json.npz": "corrupt description",
        "newer.npz": "newer npae", "unknown_layer.npz": "unknown layer 'os.system'", "wrong_shape.npz": "(784, 15)",
        "missing.npz": "missing ['decoder.0.b']", "nan.npz": "NaN", "bad_kwargs.npz": "invalid layer configuration",
    }
    for name, fragment in expected.items():
        with pytest.raises(ModelFileError, match=None) as info:
            npae.load(tmp_path / name)
        assert fragment in str(info.value), (name, str(info.value))
    with pytest.raises(ModelFileError, match="no such file"):
        npae.load(tmp_path / "absent.npz")


class Exploit:
    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(os.environ["NPAE_PWNED"]),))


def test_pickled_payload_is_never_executed(tmp_path, monkeypatch):
    flag = tmp_path / "pwned"
    monkeypatch.setenv("NPAE_PWNED", str(flag))
    payload = np.empty(1, dtype=object)
    payload[0] = Exploit()
    model = small()
    arrays = {META: encode(meta_of(model)), **params_of(model)}
    arrays["param/encoder.0.W"] = payload
    with open(tmp_path / "evil.npz", "wb") as f:
        np.savez(f, **arrays)
    with pytest.raises(ModelFileError):
        npae.load(tmp_path / "evil.npz")
    with open(tmp_path / "evil_meta.npz", "wb") as f:
        np.savez(f, **{META: payload})
    with pytest.raises(ModelFileError):
        npae.load(tmp_path / "evil_meta.npz")
    assert not flag.exists()


def test_a_failed_save_leaves_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "m.npz"
    first = small(1)
    npae.save(first, path)

    def crash(f, **arrays):
        f.write(b"PK\x03\x04 half a zip")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(OSError, match="disk full"):
        npae.save(small(2), path)
    monkeypatch.undo()
    assert_same_weights(npae.load(path), first)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"]


@pytest.mark.slow
def test_killing_the_process_mid_save_leaves_a_loadable_file(tmp_path):
    """A child saves in a loop; we SIGKILL it at several moments; the file always loads."""
    path = tmp_path / "m.npz"
    npae.save(A.multilayer(rng=np.random.default_rng(0)), path)
    script = textwrap.dedent(f"""
        import numpy as np, npae, sys
        model = npae.models.families.multilayer(rng=np.random.default_rng(1))
        print("ready", flush=True)
        while True:
            npae.save(model, {str(path)!r})
    """)
    for delay in (0.05, 0.13, 0.31):
        child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
        child.stdout.readline()
        try:
            child.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        loaded = npae.load(path)
        assert loaded.n_params() == 784 * 128 + 128 + 128 * 64 + 64 + 64 * 128 + 128 + 128 * 784 + 784
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "m.npz"]
    assert all(name.startswith(".m.npz.tmp-") for name in leftovers)  # never mistaken for the model


def test_checkpoint_holds_everything(tmp_path):
    model = small()
    fit(model, X, epochs=1, checkpoint=tmp_path / "ck.npz", rng=np.random.default_rng(0), verbose=False)
    state = npae.files.io.load_checkpoint(tmp_path / "ck.npz")
    assert state["epoch"] == 1 and len(state["history"]["rows"]) == 1
    assert state["optimizer"] is npae.optim.Adam and int(state["optimizer_state"]["step"]) == 5  # 600 / 128
    assert state["rng_state"]["bit_generator"] == "PCG64"
    with zipfile.ZipFile(tmp_path / "ck.npz") as z:
        assert all(n.endswith(".npy") for n in z.namelist())


class Terminal(_io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_only_on_a_terminal():
    out = Terminal()
    fit(small(), X, epochs=1, batch_size=100, rng=np.random.default_rng(0), out=out)
    text = out.getvalue()
    assert "\repoch 1/1 [" in text and "6/6" in text  # the bar reached the last batch
    assert text.rstrip().splitlines()[-1].lstrip("\r ").startswith("epoch 1/1  train rec")
    plain = _io.StringIO()
    fit(small(), X, epochs=1, batch_size=100, rng=np.random.default_rng(0), out=plain)
    assert "[" not in plain.getvalue() and "\r" not in plain.getvalue()


# -- stalled training ---------------------------------------------------------------------------------
def test_output_spread_is_one_for_a_copy_and_zero_for_a_constant():
    from npae.train import output_spread

    class Copy:
        def reconstruct(self, x):
            return x

    class Constant:
        def reconstruct(self, x):
            return np.broadcast_to(x.mean(axis=0), x.shape)

    assert output_spread(Copy(), X[:100]) == pytest.approx(1.0)
    assert output_spread(Constant(), X[:100]) == pytest.approx(0.0, abs=1e-6)


def test_a_dead_network_is_reported():
    """lr 1 saturates the sigmoid: every reconstruction is the same image of 0s and 1s."""
    model = small()
    with pytest.warns(RuntimeWarning, match="training has stalled in epoch 1.*sigmoid output has saturated"):
        history = fit(model, X, epochs=2, batch_size=64, optimizer=npae.optim.Adam(model.named_params(), lr=1.0),
                      rng=np.random.default_rng(0), verbose=False)
    assert len(history.warnings) == 1 and "learning rate 1 is large" in history.warnings[0]
    assert all(row["output_spread"] < 0.02 for row in history.rows)
    assert npae.train.History.from_dict(history.to_dict()).warnings == history.warnings


def test_healthy_training_is_not_reported(recwarn):
    """A small model a few dozen steps in has a small but growing spread: no warning."""
    history = fit(small(), X, epochs=3, batch_size=64, rng=np.random.default_rng(0), verbose=False)
    assert not history.warnings and not [w for w in recwarn if "stalled" in str(w.message)]
    spreads = [row["output_spread"] for row in history.rows]
    assert spreads == sorted(spreads)


@pytest.mark.slow
def test_the_conv_collapse_to_black_is_reported():
    (x, _), (xt, _) = npae.load_mnist()
    model = CF.convolutional(rng=np.random.default_rng(0), output_bias=0.0)
    with pytest.warns(RuntimeWarning, match="stalled"):
        history = fit(model, x[:3000], epochs=3, validation_data=xt[:500], rng=np.random.default_rng(0), verbose=False)
    assert history.warnings and "no longer depend on the input" in history.warnings[0]
