import numpy as np
import pytest

from npae.objectives.noise import GaussianNoise, MaskingNoise, SaltAndPepper

X = np.random.default_rng(0).uniform(0, 1, (200, 50)).astype(np.float32)


@pytest.mark.parametrize("noise", [GaussianNoise(0.5), MaskingNoise(0.3), SaltAndPepper(0.2)])
def test_reproducible_shape_dtype_and_input_untouched(noise):
    before = X.copy()
    a = noise(X, np.random.default_rng(5))
    b = noise(X, np.random.default_rng(5))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, noise(X, np.random.default_rng(6)))
    assert a.shape == X.shape and a.dtype == np.float32
    np.testing.assert_array_equal(X, before)


def test_gaussian_statistics_and_clip():
    zeros = np.full((400, 500), 0.5)
    y = GaussianNoise(0.1, clip=None)(zeros, np.random.default_rng(0))
    assert (y - 0.5).std() == pytest.approx(0.1, rel=0.01)
    assert abs((y - 0.5).mean()) < 1e-3
    clipped = GaussianNoise(0.5)(X, np.random.default_rng(0))
    assert clipped.min() >= 0 and clipped.max() <= 1
    assert clipped.min() == 0 and clipped.max() == 1  # std 0.5 reaches both ends


def test_masking_fraction():
    ones = np.ones((500, 400))
    y = MaskingNoise(0.3)(ones, np.random.default_rng(0))
    assert set(np.unique(y)) <= {0.0, 1.0}
    assert (y == 0).mean() == pytest.approx(0.3, abs=0.005)


def test_salt_and_pepper_fraction():
    half = np.full((500, 400), 0.5)
    y = SaltAndPepper(0.2)(half, np.random.default_rng(0))
    assert (y != 0.5).mean() == pytest.approx(0.2, abs=0.005)
    assert (y == 1).mean() == pytest.approx(0.1, abs=0.005)
    assert set(np.unique(y)) == {0.0, 0.5, 1.0}
