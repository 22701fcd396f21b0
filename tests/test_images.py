"""Your own images in: arrays, archives, image folders and IDX folders, every one named by its
content; layouts converted only where the shape says so; pixels checked; the command line
trains on them and the model file remembers what it was trained on."""

import pathlib

import numpy as np
import pytest

import npae
from npae.cli import main
from npae.data.datasets import DataError

SHARED = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data"
needs_shared = pytest.mark.skipif(not (SHARED / "mnist").is_dir(),
                                  reason="the full MNIST files are not at ../shared/data (tests/README.md)")


def grey(n=50, h=12, w=10, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, h, w), dtype=np.uint8)


def colour_nhwc(n=40, side=32, seed=1):
    """Smooth colour images (a gradient per channel), channels last: what most tools write."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:side, 0:side] / side
    phase = rng.random((n, 1, 1, 3))
    return np.clip(255 * (0.5 + 0.4 * np.sin(6 * (yy[None, ..., None] + xx[None, ..., None]) + 6 * phase)), 0, 255
                   ).astype(np.uint8)


def test_a_npy_of_grey_images(tmp_path):
    x = grey()
    np.save(tmp_path / "x.npy", x)
    data = npae.load_images(tmp_path / "x.npy")
    (xt, yt), (xs, ys) = data
    assert xt.shape == (45, 1, 12, 10) and xs.shape == (5, 1, 12, 10) and xt.dtype == np.float32
    assert yt is None and 0 <= xt.min() and xt.max() <= 1
    every = np.concatenate([xt, xs])
    np.testing.assert_array_equal(np.sort(every.ravel()), np.sort(x.ravel() / np.float32(255)))
    text = data.describe()
    assert "x.npy" in text and "sha256 " in text and "5 of 50 images (10%) drawn with seed 0" in text
    assert data.identity()["sha"] == data.sha and len(data.sha) == 12
    again = npae.load_images(tmp_path / "x.npy")
    np.testing.assert_array_equal(again[1][0], xs)  # the split is the same every time


def test_channels_last_colour_is_transposed_never_reshaped(tmp_path):
    x = colour_nhwc()
    np.save(tmp_path / "c.npy", x)
    data = npae.load_images(tmp_path / "c.npy")
    (xt, _), (xs, _) = data
    assert xt.shape[1:] == (3, 32, 32) and "converted to (N, C, H, W)" in data.describe()
    first = np.concatenate([xt, xs])
    assert any(np.array_equal(img, x[i].transpose(2, 0, 1) / np.float32(255)) for img in first for i in range(2))
    np.save(tmp_path / "f.npy", x.transpose(0, 3, 1, 2))  # channels first already: kept as it is
    assert npae.load_images(tmp_path / "f.npy").shape == (3, 32, 32)


def test_an_ambiguous_layout_must_be_named(tmp_path):
    x = np.zeros((6, 4, 4, 4), np.uint8)
    np.save(tmp_path / "a.npy", x)
    with pytest.raises(DataError, match="--layout nhwc or --layout nchw"):
        npae.load_images(tmp_path / "a.npy")
    assert npae.load_images(tmp_path / "a.npy", layout="nhwc").shape == (4, 4, 4)


def test_keras_npz_and_a_single_array(tmp_path):
    x, xt = grey(30), grey(10, seed=2)
    np.savez(tmp_path / "k.npz", x_train=x, y_train=np.arange(30) % 3, x_test=xt, y_test=np.arange(10) % 3)
    (a, ya), (b, yb) = data = npae.load_images(tmp_path / "k.npz")
    assert a.shape == (30, 1, 12, 10) and b.shape == (10, 1, 12, 10) and data.split is None
    np.testing.assert_array_equal(ya, np.arange(30) % 3)
    np.savez(tmp_path / "one.npz", images=x)
    assert len(npae.load_images(tmp_path / "one.npz")[0][0]) == 27
    np.savez(tmp_path / "two.npz", a=x, b=x)
    with pytest.raises(DataError, match="x_train and x_test"):
        npae.load_images(tmp_path / "two.npz")


def test_a_folder_of_png_with_one_subfolder_per_class(tmp_path):
    pytest.importorskip("PIL")
    from PIL import Image

    for k, name in enumerate(["circle", "square"]):
        (tmp_path / "pngs" / name).mkdir(parents=True)
        for i in range(6):
            Image.fromarray(grey(1, 16, 16, seed=10 * k + i)[0]).save(tmp_path / "pngs" / name / f"{i}.png")
    (a, ya), (b, yb) = data = npae.load_images(tmp_path / "pngs")
    assert a.shape[1:] == (1, 16, 16) and len(a) + len(b) == 12 and data.classes == ["circle", "square"]
    assert sorted(np.concatenate([ya, yb]).tolist()) == [0] * 6 + [1] * 6
    Image.fromarray(colour_nhwc(1, 16)[0]).save(tmp_path / "pngs" / "square" / "c.png")
    assert npae.load_images(tmp_path / "pngs").shape == (3, 16, 16)  # one colour image: all read as RGB
    Image.fromarray(grey(1, 8, 8)[0]).save(tmp_path / "pngs" / "circle" / "small.png")
    with pytest.raises(DataError, match="different sizes"):
        npae.load_images(tmp_path / "pngs")


@pytest.mark.parametrize("array, fragment", [
    (np.full((5, 4, 4), 255.0, np.float32), "divide 8-bit values by 255"),
    (np.zeros((5, 4, 4), np.int16), "int16"),
    (np.full((5, 4, 4), np.nan, np.float32), "NaN"),
    (np.zeros((5, 2, 3, 4, 5), np.uint8), "expected (N, D)"),
    (np.zeros((1, 4, 4), np.uint8), "at least 2"),
])
def test_bad_pixels_and_shapes_say_how_to_fix_them(tmp_path, array, fragment):
    np.save(tmp_path / "bad.npy", array)
    with pytest.raises(DataError) as info:
        npae.load_images(tmp_path / "bad.npy")
    assert fragment in str(info.value)


def test_other_files_are_refused_with_what_is_read(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DataError, match="not something npae reads as images"):
        npae.load_images(tmp_path / "notes.txt")
    with pytest.raises(DataError, match="no such file"):
        npae.load_images(tmp_path / "missing.npy")
    with pytest.raises(DataError, match="no IDX files"):
        npae.load_images(tmp_path)


# -- named by their content -----------------------------------------------------------------------
def test_the_sample_is_mnist_and_not_fashion():
    sample = npae.data.datasets.SAMPLE_DIR
    assert npae.load_images(sample).is_sample
    with pytest.raises(DataError, match="npae's MNIST sample"):
        npae.load_fashion_mnist(path=sample)


def test_someone_elses_idx_files_are_not_called_mnist(tmp_path):
    from npae.data.idx import write_idx

    for prefix, n in (("train", 6), ("t10k", 2)):
        write_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", grey(n, 28, 28))
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", np.zeros(n, np.uint8))
    data = npae.load_mnist(path=tmp_path)
    assert data.title.startswith("IDX images (not the official MNIST") and data.name == tmp_path.name
    assert npae.load_images(tmp_path).title == "IDX images"


@needs_shared
def test_fashion_mnist_is_called_fashion_mnist_wherever_it_sits():
    data = npae.load_images(SHARED / "fashion-mnist")
    assert data.title == "Fashion-MNIST" and data.name == "fashion-mnist" and "Fashion-MNIST" in data.describe()
    with pytest.raises(DataError, match="these are the files of MNIST .*not Fashion-MNIST's"):
        npae.load_fashion_mnist(path=SHARED / "mnist")
    with pytest.raises(DataError, match="these are the files of Fashion-MNIST"):
        npae.load_mnist(path=SHARED / "fashion-mnist")


# -- the command line on your own data ---------------------------------------------------------------
def test_train_on_a_npy_an_image_folder_and_colour(tmp_path, capsys):
    np.save(tmp_path / "x.npy", grey(200, 28, 28))
    argv = ["train", "ordinary", "--data", str(tmp_path / "x.npy"), "--epochs", "1", "--out", str(tmp_path / "a")]
    assert main(argv) == 0
    model = npae.load(tmp_path / "a" / "model.npz")
    assert model.input_shape == (1, 28, 28) and model.dataset["name"] == "x.npy"
    np.save(tmp_path / "c.npy", colour_nhwc(64))
    assert main(["train", "convolutional", "--data", str(tmp_path / "c.npy"), "--epochs", "1", "--batch-size", "32",
                 "--out", str(tmp_path / "b")]) == 0
    out = capsys.readouterr().out
    assert "converted to (N, C, H, W)" in out and "3x32x32" in out
    colour = npae.load(tmp_path / "b" / "model.npz")
    assert colour.input_shape == (3, 32, 32) and colour.code_shape == (8, 4, 4)
    assert (tmp_path / "b" / "reconstructions.png").read_bytes()[25] == 2  # an RGB PNG
    # evaluate without --data: the data the model file records
    assert main(["evaluate", str(tmp_path / "b" / "model.npz")]) == 0
    assert "(what the model file records)" in capsys.readouterr().out
    pytest.importorskip("PIL")
    from PIL import Image

    (tmp_path / "pngs").mkdir()
    for i, img in enumerate(grey(30, 20, 20)):
        Image.fromarray(img).save(tmp_path / "pngs" / f"{i:02d}.png")
    assert main(["train", "ordinary", "--data", str(tmp_path / "pngs"), "--epochs", "1", "--code", "8",
                 "--code-activation", "linear", "--out", str(tmp_path / "c")]) == 0
    assert npae.load(tmp_path / "c" / "model.npz").code_shape == (8,)


def test_the_command_line_refuses_what_does_not_fit(tmp_path, capsys):
    np.save(tmp_path / "odd.npy", grey(20, 30, 30))
    assert main(["train", "convolutional", "--data", str(tmp_path / "odd.npy"), "--out", str(tmp_path / "a")]) == 1
    assert "30x30 do not fit" in capsys.readouterr().err
    assert main(["train", "convolutional", "--code-activation", "linear", "--out", str(tmp_path / "b")]) == 1
    assert "--code-activation does not apply to the family convolutional" in capsys.readouterr().err
    x = np.full((20, 8, 8), 255.0, np.float32)
    np.save(tmp_path / "raw.npy", x)
    assert main(["train", "ordinary", "--data", str(tmp_path / "raw.npy"), "--out", str(tmp_path / "c")]) == 1
    assert "divide 8-bit values by 255" in capsys.readouterr().err
