"""The command line, run in-process on the embedded sample (tiny epochs)."""

import json

import numpy as np
import pytest

import npae
from npae.__main__ import main

PRINTED_6 = 0.5e-6 * (1 + 1e-9)  # half the last of 6 printed decimals (and the rounding of that bound)


def test_train_writes_model_history_and_figure(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "ordinary", "--epochs", "1", "--batch-size", "256", "--out", str(out), "--seed", "3"]) == 0
    text = capsys.readouterr().out
    assert "embedded sample" in text and "epoch 1/1" in text
    model = npae.load(out / "model.npz")
    assert model.name == "ordinary"
    history = json.loads((out / "history.json").read_text())
    assert len(history["rows"]) == 1 and history["rows"][0]["val_reconstruction"] > 0
    png = (out / "reconstructions.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 1000
    assert main(["evaluate", str(out / "model.npz")]) == 0  # batches of 256, as fit's validation here
    line = capsys.readouterr().out.splitlines()[-1]
    assert line.startswith("ordinary: test mse: ")
    # the same computation on the same weights, printed with 6 decimals
    assert float(line.split()[-1]) == pytest.approx(history["rows"][0]["val_reconstruction"], abs=PRINTED_6)


def test_train_resume_continues(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "ordinary", "--epochs", "1", "--batch-size", "512", "--out", str(out)]) == 0
    assert main(["train", "ordinary", "--epochs", "2", "--batch-size", "512", "--out", str(out),
                 "--resume", str(out / "checkpoint.npz")]) == 0
    text = capsys.readouterr().out
    assert "resumed from" in text and "epoch 2/2" in text
    assert len(json.loads((out / "history.json").read_text())["rows"]) == 2


def test_denoising_figure_and_evaluate(tmp_path, capsys, monkeypatch):
    # a small denoiser stands in for the article's (the CLI path is the same)
    from npae import families

    monkeypatch.setitem(families.FAMILIES, "denoising",
                        lambda rng, loss="mse": families.ordinary(code=8, rng=rng, loss=loss,
                                                                 noise=npae.noise.GaussianNoise(0.5)))
    out = tmp_path / "den"
    assert main(["train", "denoising", "--epochs", "1", "--batch-size", "1000", "--out", str(out)]) == 0
    assert main(["evaluate", str(out / "model.npz")]) == 0
    assert "for noisy inputs" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [
    ["train", "pca"], ["train", "ordinary", "--epochs", "0"], ["train", "ordinary", "--lr", "-1"],
    ["train", "ordinary", "--loss", "l1"], ["train", "ordinary", "--epochs", "two"], [],
])
def test_bad_arguments(argv, capsys):
    with pytest.raises(SystemExit) as info:
        if main(argv) == 2:
            raise SystemExit(2)
    assert info.value.code == 2


def test_errors_are_one_line_not_tracebacks(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "missing.npz")]) == 1
    assert "error:" in capsys.readouterr().err
    (tmp_path / "junk.npz").write_bytes(b"junk")
    assert main(["evaluate", str(tmp_path / "junk.npz")]) == 1
    assert main(["train", "ordinary", "--data", str(tmp_path)]) == 1
    assert "no complete MNIST" in capsys.readouterr().err


@pytest.mark.parametrize("family", sorted(npae.FAMILIES))
def test_every_registered_family_trains_from_the_command_line(family, tmp_path, capsys):
    out = tmp_path / family
    assert main(["train", family, "--epochs", "1", "--limit", "64", "--batch-size", "32", "--out", str(out)]) == 0
    assert "first 64 images" in capsys.readouterr().out
    assert npae.load(out / "model.npz").name == family


def test_png_writer(tmp_path):
    from npae._png import image_grid, write_png

    grid = image_grid([np.zeros((3, 4, 5)), np.ones((3, 4, 5))], scale=1)
    assert grid.shape == (2 * 6 + 2, 3 * 7 + 2) and grid.dtype == np.uint8
    write_png(tmp_path / "g.png", grid)
    data = (tmp_path / "g.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    with pytest.raises(ValueError):
        write_png(tmp_path / "bad.png", np.zeros((2, 2)))


@pytest.mark.parametrize("family", ["vae", "contractive", "tied"])
def test_train_and_evaluate_the_families_beyond_the_article(family, tmp_path, capsys):
    out = tmp_path / family
    assert main(["train", family, "--epochs", "1", "--batch-size", "1000", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    model = npae.load(out / "model.npz")
    assert model.name == family
    # evaluated in batches of 1000, as fit's validation was: the same computation (and for the VAE
    # the same eps), so the two figures differ only by the printing
    assert main(["evaluate", str(out / "model.npz"), "--batch-size", "1000"]) == 0
    lines = capsys.readouterr().out.splitlines()
    lines = lines[next(i for i, line in enumerate(lines) if line.startswith(f"{family}: test")):]
    history = json.loads((out / "history.json").read_text())["rows"][-1]
    if family == "vae":
        assert "kl" in text and "loss bce" in text  # a Bernoulli decoder by default
        assert lines[0].startswith("vae: test -ELBO ") and "nats per image" in lines[0]
        assert float(lines[0].split()[3]) == pytest.approx(history["val_total"], abs=0.5e-3)  # 3 decimals
        assert "MSE of the reconstruction" in lines[1]
    else:
        assert lines[0].startswith(f"{family}: test mse: ")
        assert float(lines[0].split()[-1]) == pytest.approx(history["val_reconstruction"], abs=PRINTED_6)
