"""The IDX reader, the loaders' source order, the embedded sample, and the full sets in
../shared/data (those tests skip cleanly when it is absent)."""

import gzip
import pathlib
import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import npae
from npae.data import datasets
from npae.data.datasets import FILES, DataError, load_fashion_mnist, load_mnist
from npae.data.idx import read_idx, write_idx

SHARED = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data"
needs_shared = pytest.mark.skipif(not (SHARED / "mnist").is_dir(),
                                  reason="the full MNIST files are not at ../shared/data (tests/README.md)")


def fake_dataset(folder, n_train=4, n_test=3, seed=0, compress=True):
    """Four tiny but well-formed MNIST-style files; returns the training images as uint8."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    x_train = rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8)
    write_idx(folder / ("train-images-idx3-ubyte" + ".gz" * compress), x_train, compress=compress)
    y_train = rng.integers(0, 10, n_train, dtype=np.uint8)
    write_idx(folder / ("train-labels-idx1-ubyte" + ".gz" * compress), y_train, compress=compress)
    x_test = rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8)
    write_idx(folder / ("t10k-images-idx3-ubyte" + ".gz" * compress), x_test, compress=compress)
    y_test = rng.integers(0, 10, n_test, dtype=np.uint8)
    write_idx(folder / ("t10k-labels-idx1-ubyte" + ".gz" * compress), y_test, compress=compress)
    return x_train


# -- the embedded sample -----------------------------------------------------------------
def test_embedded_sample_loads_offline():
    data = load_mnist()
    (x, y), (xt, yt) = data
    assert data.source == "sample" and data.is_sample
    assert x.shape == (10000, 1, 28, 28) and xt.shape == (2000, 1, 28, 28)
    assert x.dtype == np.float32 and y.dtype == np.uint8 and yt.shape == (2000,)
    assert x.min() == 0 and x.max() == 1
    # the first labels of MNIST's training and test files, as everyone who has printed them knows
    np.testing.assert_array_equal(y[:10], [5, 0, 4, 1, 9, 2, 1, 3, 1, 4])
    np.testing.assert_array_equal(yt[:10], [7, 2, 1, 0, 4, 1, 4, 9, 5, 9])
    assert set(np.unique(y)) == set(range(10)) and set(np.unique(yt)) == set(range(10))
    assert "embedded sample" in data.describe() and "10,000 train" in data.describe()


def test_flatten_and_dtype():
    (x, _), (xt, _) = load_mnist(flatten=True, dtype=np.float64)
    assert x.shape == (10000, 784) and xt.shape == (2000, 784) and x.dtype == np.float64
    (x4, _), _ = load_mnist()
    np.testing.assert_array_equal(x4.reshape(10000, 784), x.astype(np.float32))
    with pytest.raises(TypeError, match="float32 or float64"):
        load_mnist(dtype=np.uint8)


def test_sample_checksums_are_checked(monkeypatch):
    monkeypatch.setitem(datasets.SAMPLE_SHA256, "t10k-labels-idx1-ubyte", "0" * 64)
    with pytest.raises(DataError, match="checksum"):
        load_mnist()


@needs_shared
def test_sample_is_the_first_images_of_the_real_mnist():
    (x, y), (xt, yt) = load_mnist()
    (fx, fy), (fxt, fyt) = load_mnist(path=SHARED / "mnist")
    np.testing.assert_array_equal(x, fx[:10000])
    np.testing.assert_array_equal(y, fy[:10000])
    np.testing.assert_array_equal(xt, fxt[:2000])
    np.testing.assert_array_equal(yt, fyt[:2000])


# -- the full sets -------------------------------------------------------------------------
@pytest.mark.slow
@needs_shared
@pytest.mark.parametrize("loader, mean, std", [(load_mnist, 0.1307, 0.3081), (load_fashion_mnist, 0.2860, 0.3530)])
def test_full_sets(loader, mean, std):
    data = loader(path=SHARED)
    (x, y), (xt, yt) = data
    assert data.source == "path" and not data.is_sample
    assert x.shape == (60000, 1, 28, 28) and xt.shape == (10000, 1, 28, 28)
    assert y.shape == (60000,) and yt.shape == (10000,)
    assert float(x.mean(dtype=np.float64)) == pytest.approx(mean, abs=5e-5)
    assert float(x.std(dtype=np.float64)) == pytest.approx(std, abs=5e-5)


@pytest.mark.slow
@needs_shared
@pytest.mark.parametrize("dataset", ["mnist", "fashion-mnist"])
def test_full_set_checksums(dataset):
    files = datasets._complete(SHARED / dataset)
    for name, path in files.items():
        assert datasets.sha256_of(path) == datasets.DATASETS[dataset].sha256[name], name


# -- where the data come from ----------------------------------------------------------------
def test_source_order(tmp_path, monkeypatch):
    explicit = fake_dataset(tmp_path / "explicit", seed=1)
    env = fake_dataset(tmp_path / "env" / "mnist", seed=2, compress=False)  # raw files work too
    cache = fake_dataset(datasets.cache_dir("mnist"), seed=3)
    expected = lambda x: x.astype(np.float32)[:, None] / 255  # noqa: E731

    data = load_mnist()
    assert data.source == "cache"
    np.testing.assert_array_equal(data[0][0], expected(cache))
    monkeypatch.setenv("NPAE_DATA", str(tmp_path / "env"))
    data = load_mnist()
    assert data.source == "NPAE_DATA"
    np.testing.assert_array_equal(data[0][0], expected(env))
    data = load_mnist(path=tmp_path / "explicit")
    assert data.source == "path"
    np.testing.assert_array_equal(data[0][0], expected(explicit))
    assert load_mnist(path=tmp_path / "env").source == "path"  # a folder with a mnist/ subfolder


def test_incomplete_folders_are_skipped_and_partials_ignored(tmp_path):
    cache = datasets.cache_dir("mnist")
    fake_dataset(cache)
    (cache / "t10k-labels-idx1-ubyte.gz").rename(cache / ".t10k-labels-idx1-ubyte.gz.partial-123")
    assert load_mnist().source == "sample"  # an interrupted download is not picked up


def test_explicit_path_without_data_is_an_error(tmp_path):
    with pytest.raises(DataError, match="no complete MNIST"):
        load_mnist(path=tmp_path)


def test_fashion_without_data_says_how_to_get_it():
    with pytest.raises(DataError, match="python -m npae data download --dataset fashion-mnist"):
        load_fashion_mnist()


def test_label_count_must_match(tmp_path):
    fake_dataset(tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(5, np.uint8))
    with pytest.raises(DataError, match="5 labels for 3 images"):
        load_mnist(path=tmp_path)


def test_labels_and_image_shape_checked(tmp_path):
    fake_dataset(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.full(4, 12, np.uint8))
    with pytest.raises(DataError, match="labels must be 0 to 9"):
        load_mnist(path=tmp_path)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", np.zeros((4, 27, 28), np.uint8))
    with pytest.raises(DataError, match=r"\(N, 28, 28\)"):
        load_mnist(path=tmp_path)


def test_unknown_dataset():
    with pytest.raises(ValueError, match="unknown dataset"):
        datasets.load("cifar")


# -- the strict reader ---------------------------------------------------------------------
def idx_bytes(array):
    return bytes([0, 0, 8, array.ndim]) + np.asarray(array.shape, ">u4").tobytes() + array.tobytes()


def test_reader_roundtrip_raw_and_gzip(tmp_path):
    a = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    for compress in (True, False):
        write_idx(tmp_path / "a", a, compress=compress)
        np.testing.assert_array_equal(read_idx(tmp_path / "a"), a)
    (tmp_path / "f").write_bytes(bytes([0, 0, 0x0D, 1, 0, 0, 0, 2]) + np.array([1.5, -2], ">f4").tobytes())
    np.testing.assert_array_equal(read_idx(tmp_path / "f"), [1.5, -2])


@pytest.mark.parametrize("content, match", [
    (b"", "empty"),
    (b"\x00\x00", "truncated header"),
    (b"\x00\x01\x08\x01\x00\x00\x00\x01\x00", "magic"),
    (b"\x00\x00\x07\x01\x00\x00\x00\x01\x00", "magic"),
    (b"\x00\x00\x08\x00", "magic"),
    (b"\x00\x00\x08\x05" + b"\x00" * 20, "magic"),
    (b"\x00\x00\x08\x02\x00\x00\x00\x02", "dimensions"),
    (b"\x00\x00\x08\x01\x00\x00\x00\x03\x01\x02", "truncated payload"),
    (b"\x00\x00\x08\x01\x00\x00\x00\x01\x01\x02", "more data"),
    (b"\x00\x00\x08\x03\xff\xff\xff\xff\xff\xff\xff\xff\x00\x00\x00\x10", "limit"),
    (gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x01\x07")[:-6], "gzip"),
    (b"\x1f\x8b" + b"garbage" * 10, "gzip"),
])
def test_reader_rejects(tmp_path, content, match):
    (tmp_path / "bad").write_bytes(content)
    with pytest.raises(DataError, match=match) as info:
        read_idx(tmp_path / "bad")
    assert str(tmp_path / "bad") in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="cannot open"):
        read_idx(tmp_path / "nope")


def test_lying_header_does_not_allocate(tmp_path):
    """A header claiming ~900 MB (under the limit) over a 10-byte payload: bounded memory."""
    (tmp_path / "liar").write_bytes(b"\x00\x00\x08\x03\x00\x00\x75\x30\x00\x00\x00\x78\x00\x00\x00\xfa" + b"\x00" * 10)
    tracemalloc.start()
    with pytest.raises(DataError, match="truncated payload"):
        read_idx(tmp_path / "liar")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 8 << 20


MUTATION_SETTINGS = settings(max_examples=60, deadline=None,
                             suppress_health_check=[HealthCheck.function_scoped_fixture])


@st.composite
def valid_idx(draw):
    dims = draw(st.lists(st.integers(1, 5), min_size=1, max_size=4))
    data = draw(st.binary(min_size=int(np.prod(dims)), max_size=int(np.prod(dims))))
    return np.frombuffer(data, np.uint8).reshape(dims)


@MUTATION_SETTINGS
@given(array=valid_idx(), data=st.data(), compress=st.booleans())
def test_truncation_always_detected(tmp_path, array, data, compress):
    blob = idx_bytes(array)
    blob = gzip.compress(blob) if compress else blob
    cut = data.draw(st.integers(0, len(blob) - 1))
    (tmp_path / "t").write_bytes(blob[:cut])
    with pytest.raises(DataError):
        read_idx(tmp_path / "t")


@MUTATION_SETTINGS
@given(array=valid_idx(), data=st.data())
def test_lying_dimensions_always_detected(tmp_path, array, data):
    axis = data.draw(st.integers(0, array.ndim - 1))
    lie = data.draw(st.integers(0, 2**32 - 1).filter(lambda d: d != array.shape[axis]))
    dims = list(array.shape)
    dims[axis] = lie
    blob = bytes([0, 0, 8, array.ndim]) + np.asarray(dims, ">u4").tobytes() + array.tobytes()
    (tmp_path / "l").write_bytes(blob)
    with pytest.raises(DataError):
        read_idx(tmp_path / "l")


@MUTATION_SETTINGS
@given(blob=st.binary(max_size=300), compress=st.booleans())
def test_garbage_is_data_error_or_a_consistent_array(tmp_path, blob, compress):
    """Random bytes: DataError, or (rarely) a genuinely valid IDX file; never anything else."""
    (tmp_path / "g").write_bytes(gzip.compress(blob) if compress else blob)
    try:
        a = read_idx(tmp_path / "g")
    except DataError:
        return
    assert a.size * a.itemsize == len(blob) - 4 - 4 * a.ndim


def test_write_idx_is_atomic_and_refuses_non_uint8(tmp_path):
    with pytest.raises(ValueError, match="uint8"):
        write_idx(tmp_path / "x", np.zeros(3))
    write_idx(tmp_path / "x", np.zeros(3, np.uint8))
    assert [p.name for p in tmp_path.iterdir()] == ["x"]


def test_public_names():
    assert npae.DataError is DataError and npae.load_mnist is load_mnist
    assert set(FILES) == set(datasets.DATASETS["mnist"].sha256) == set(datasets.SAMPLE_SHA256)
