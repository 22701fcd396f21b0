"""The command line, run in-process on the embedded sample (tiny epochs)."""

import json

import numpy as np
import pytest

import npae
from npae.cli import main

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


def test_denoising_figure_and_evaluate(tmp_path, capsys):
    out = tmp_path / "den"  # the dense denoiser: the command line's path is the conv one's
    assert main(["train", "dense_denoising", "--epochs", "1", "--batch-size", "1000", "--out", str(out)]) == 0
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
    assert "no IDX files, and no PNG/JPG/JPEG images" in capsys.readouterr().err


@pytest.mark.parametrize("family", sorted(npae.FAMILIES))
def test_every_registered_family_trains_from_the_command_line(family, tmp_path, capsys):
    out = tmp_path / family
    assert main(["train", family, "--epochs", "1", "--limit", "64", "--batch-size", "32", "--out", str(out)]) == 0
    assert "first 64 images" in capsys.readouterr().out
    assert npae.load(out / "model.npz").name == family


def test_png_writer(tmp_path):
    from npae.files.png import image_grid, write_png

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


# -- mistakes and lost work: one error line each, nothing lost -----------------------------------------
def error_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[0].startswith("error: ") and "Traceback" not in "\n".join(err), err
    return err[0]


@pytest.mark.parametrize("argv, fragment", [
    (["train", "ordinary", "--lr", "inf"], "finite"), (["train", "ordinary", "--lr", "nan"], "finite"),
    (["train", "ordinary", "--seed", "-1"], ">= 0"), (["train", "ordinary", "--epochs", "1.5"], "expected an int"),
    (["train", "ordinary", "--resume", "a", "--overwrite"], "not allowed with"),
])
def test_usage_mistakes_are_one_line_with_status_2(argv, fragment, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    line = error_line(capsys)
    assert fragment in line and "--help" in line


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0 and capsys.readouterr().out.strip() == f"npae {npae.__version__}"


def quick(out, *more):
    return ["train", "ordinary", "--epochs", "1", "--limit", "300", "--batch-size", "100", "--out", str(out), *more]


def test_a_run_never_replaces_a_checkpoint_unasked(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(quick(out)) == 0
    before = (out / "checkpoint.npz").read_bytes()
    assert main(quick(out)) == 1
    assert "--resume" in error_line(capsys) and (out / "checkpoint.npz").read_bytes() == before
    assert main(quick(out, "--overwrite")) == 0


def test_resume_refuses_other_settings_and_says_which(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(quick(out)) == 0
    capsys.readouterr()
    ck = str(out / "checkpoint.npz")
    cases = [(["train", "sparse", "--epochs", "2", "--limit", "300", "--batch-size", "100"],
              "family: 'ordinary' (checkpoint) vs 'sparse'"),
             (["train", "ordinary", "--epochs", "2", "--limit", "300", "--batch-size", "50"], "batch_size: 100"),
             (["train", "ordinary", "--epochs", "2", "--limit", "300", "--batch-size", "100", "--lr", "0.01"],
              "lr: 0.001"),
             (["train", "ordinary", "--epochs", "2", "--limit", "400", "--batch-size", "100"], "limit: 300"),
             (["train", "ordinary", "--epochs", "1", "--limit", "300", "--batch-size", "100"],
              "already trained 1 epoch")]
    for argv, fragment in cases:
        assert main(argv + ["--out", str(out), "--resume", ck]) == 1
        assert fragment in error_line(capsys), argv


def test_runtime_mistakes_are_one_line_with_status_1(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert main(quick(tmp_path / "file")) == 1
    assert "is a file, not a folder" in error_line(capsys)
    from npae.data.idx import write_idx

    empty = tmp_path / "empty"
    empty.mkdir()
    for prefix in ("train", "t10k"):
        write_idx(empty / f"{prefix}-images-idx3-ubyte.gz", np.zeros((0, 28, 28), np.uint8))
        write_idx(empty / f"{prefix}-labels-idx1-ubyte.gz", np.zeros(0, np.uint8))
    assert main(quick(tmp_path / "run", "--data", str(empty))) == 1
    assert "0 training and 0 test images" in error_line(capsys)
    assert main(["evaluate", str(tmp_path / "missing.npz")]) == 1
    assert "no such file" in error_line(capsys)


def test_an_interrupt_in_the_first_epoch_saves_nothing(tmp_path, capsys, monkeypatch):
    def interrupted(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(npae.optim.Adam, "step", interrupted)
    out = tmp_path / "run"
    assert main(quick(out)) == 130
    assert "nothing was saved" in error_line(capsys)
    assert not (out / "model.npz").exists() and not (out / "checkpoint.npz").exists()


def test_a_dead_network_exits_1_and_says_why(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "ordinary", "--epochs", "2", "--limit", "2000", "--lr", "1", "--out", str(out)]) == 1
    line = error_line(capsys)
    assert "stalled" in line and "learning rate 1 is large" in line
    assert (out / "model.npz").exists()  # what there is, is kept


def test_a_broken_pipe_is_not_a_traceback(tmp_path):
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-m", "npae", "data", "info"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    child.stdout.close()  # the reader is gone before anything is written, as with `| head -n 0`
    err = child.stderr.read().decode()
    assert child.wait() == 1 and "Traceback" not in err and "BrokenPipe" not in err


@pytest.mark.parametrize("flags", [["--epochs", "0"], ["--epochs", "-1"], ["--epochs", "1e9"], ["--batch-size", "0"],
                                   ["--lr", "nan"], ["--lr", "inf"], ["--lr", "-0.1"], ["--limit", "0"]])
def test_numbers_a_careless_user_types(flags, tmp_path, capsys):
    """A command-line mistake: one error: line, exit status 2, and nothing written."""
    with pytest.raises(SystemExit) as exit_:
        main(["train", "ordinary", *flags, "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1 and err.startswith(f"error: argument {flags[0]}:")
    assert not (tmp_path / "run").exists()


def test_paths_that_cannot_be_written_or_read(tmp_path, capsys):
    """Found while running: one error: line, exit status 1, nothing half-written."""
    (tmp_path / "a-file").write_text("x")
    assert main(["train", "ordinary", "--limit", "64", "--out", str(tmp_path / "a-file" / "run")]) == 1
    assert error_line(capsys).endswith("Not a directory")
    run = tmp_path / "run"
    assert main(["train", "ordinary", "--epochs", "1", "--limit", "64", "--out", str(run)]) == 0
    capsys.readouterr()
    (tmp_path / "folder.safetensors").mkdir()
    assert main(["export", str(run / "model.npz"), str(tmp_path / "folder.safetensors"), "--overwrite"]) == 1
    assert "is a folder, not a file" in error_line(capsys)
    assert main(["export", str(run / "model.npz"), str(tmp_path / "missing" / "m.safetensors")]) == 1
    assert "does not exist" in error_line(capsys) and not (tmp_path / "missing").exists()
    images = tmp_path / "mine.npy"
    np.save(images, (np.random.default_rng(0).random((40, 8, 8)) * 255).astype(np.uint8))
    assert main(["train", "ordinary", "--epochs", "1", "--data", str(images), "--out", str(tmp_path / "r2")]) == 0
    capsys.readouterr()
    images.unlink()
    assert main(["evaluate", str(tmp_path / "r2" / "model.npz")]) == 1
    assert "which is not on this machine; pass --data" in error_line(capsys)
