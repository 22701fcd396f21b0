"""Every demo runs at a tiny size: figures written, numbers finite (smoke tests)."""

import importlib
import math
import pathlib
import sys

import pytest

pytest.importorskip("matplotlib")
pytestmark = pytest.mark.slow  # each demo trains models
DEMOS = pathlib.Path(__file__).resolve().parent.parent / "demos"
sys.path.insert(0, str(DEMOS))

TINY = ["--quick", "--limit", "300", "--batch-size", "100"]


def finite_numbers(result):
    for key, value in result.items():
        if isinstance(value, float):
            assert math.isfinite(value), key


@pytest.mark.parametrize("name, figures", [
    ("ordinary", ["ordinary_reconstructions.png", "ordinary_loss.png", "ordinary_vs_pca.png"]),
    ("multilayer", ["multilayer_reconstructions.png", "multilayer_loss.png", "multilayer_2d_code_vs_pca.png"]),
    ("convolutional", ["convolutional_reconstructions.png", "convolutional_loss.png"]),
    ("sparse", ["sparse_code_histogram.png", "sparse_reconstructions.png", "sparse_loss.png"]),
    ("denoising", ["denoising_rows.png", "denoising_loss.png"]),
    ("contractive", ["contractive_sensitivity.png", "contractive_reconstructions.png", "contractive_loss.png"]),
    ("tied", ["tied_reconstructions.png", "tied_loss.png", "tied_filters.png"]),
    ("vae", ["vae_manifold.png", "vae_latent_means.png", "vae_samples.png", "vae_reconstructions.png", "vae_loss.png"]),
])
def test_demo_runs(name, figures, tmp_path, capsys):
    module = importlib.import_module(name)
    result = module.main(TINY + ["--out", str(tmp_path)])
    finite_numbers(result)
    for fig in figures:
        data = (tmp_path / fig).read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 2000, fig
    assert "embedded sample" in capsys.readouterr().out


def test_reproduce_writes_the_report(tmp_path):
    reproduce = importlib.import_module("reproduce")
    reproduce.main(TINY + ["--out", str(tmp_path)])
    report = (tmp_path / "report.md").read_text()
    assert "| ordinary, 784-64-784 |" in report and "0.0055" in report
    assert "## Autoencoder vs PCA" in report and "| 64 |" in report
    assert "embedded sample" in report
    assert "## Contractive" in report and "| 51,024 |" in report and "-ELBO" in report
