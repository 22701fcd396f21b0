"""demos/metrics.py against hand-computed examples, and demos/claims.py at a tiny size."""

import io
import math
import pathlib
import re
import sys

import numpy as np
import pytest

DEMOS = pathlib.Path(__file__).resolve().parent.parent / "demos"
sys.path.insert(0, str(DEMOS))
import metrics as M  # noqa: E402


def test_psnr_by_hand():
    ref = np.zeros((2, 2, 2))
    x = ref.copy()
    x[0, 0, 0] = 0.5  # one pixel of eight off by 0.5: MSE 0.25 / 8
    assert M.psnr(x, ref) == pytest.approx(10 * math.log10(32), rel=1e-14)
    assert M.psnr(ref, ref) == math.inf
    with pytest.raises(ValueError, match="shapes"):
        M.psnr(x, ref[:1])


def test_knn_vote_and_accuracy_by_hand():
    # nearest first: labels 1, 2, 2 -> 2; 1, 2 (k 2, a tie) -> 1, the nearer of the tied classes
    assert M._vote(np.array([[1, 2, 2], [0, 1, 0]]), 3).tolist() == [2, 0]
    assert M._vote(np.array([[1, 2]]), 3).tolist() == [1]
    # two far-apart clusters of three: every point's 2 nearest others share its label (leave-one-fold-out)
    pts = np.array([[0.0], [0.1], [0.2], [10.0], [10.1], [10.2]])
    labels = np.array([0, 0, 0, 1, 1, 1])
    assert M.knn_accuracy(pts, labels, k=1, folds=6) == 1.0
    # labels alternating along a line: the nearest other point always has the other label
    assert M.knn_accuracy(np.arange(6.0)[:, None], np.array([0, 1, 0, 1, 0, 1]), k=1, folds=6) == 0.0


def test_trustworthiness_by_hand():
    x = np.array([[0.0], [1.0], [3.0], [7.0], [15.0], [31.0], [63.0]])  # gaps 1, 2, 4, ...: no ties anywhere
    assert M.trustworthiness(x, x, k=1) == 1.0
    assert M.trustworthiness(x, 3 * x + 1, k=2) == 1.0  # a similarity keeps every neighbourhood
    # swap points 0 and 6 in the map: n = 7, k = 1, normalization 2 / (7 * 1 * (14 - 3 - 1)) = 1/35.
    # Map neighbours: 0 -> 5 (true rank 5), 1 -> 6 (true rank 6), 6 -> 1 (true rank 5), the rest
    # their true nearest (rank 1): penalties (5-1) + (6-1) + (5-1) = 13, so T = 1 - 13/35
    y = x.copy()
    y[0], y[6] = x[6], x[0]
    assert M.trustworthiness(x, y, k=1) == pytest.approx(1 - 13 / 35, rel=1e-14)
    with pytest.raises(ValueError, match="k < n/2"):
        M.trustworthiness(x, x, k=4)


def test_uniform_quantizer_by_hand():
    # 2 bits: levels 0, 1, 2, 3 in column 0; column 1 is constant: every value of it is that constant
    q = M.UniformQuantizer(2).fit(np.array([[0.0, 5.0], [3.0, 5.0]]))
    np.testing.assert_array_equal(q.indices(np.array([[1.4, 5.0], [-7.0, 9.0], [2.6, 5.0]])), [[1, 0], [0, 0], [3, 0]])
    np.testing.assert_array_equal(q.quantize(np.array([[1.6, 5.0], [9.0, 9.0]])), [[2.0, 5.0], [3.0, 5.0]])
    assert q.bytes_per_code(64) == 16 and M.UniformQuantizer(8).bytes_per_code(64) == 64
    with pytest.raises(ValueError, match="bits"):
        M.UniformQuantizer(0)


def test_blur_and_median_by_hand():
    img = np.zeros((1, 5, 5))
    img[0, 2, 2] = 1.0
    blurred = M.gaussian_blur(img, 1.0)
    t = np.exp(-np.arange(-3, 4) ** 2 / 2)
    t /= t.sum()
    np.testing.assert_allclose(blurred[0, 2], t[1:6] * t[3], rtol=1e-12)  # the middle row of the outer product
    assert blurred.sum() == pytest.approx(np.sum(t[1:6]) ** 2, rel=1e-12)  # zero padding loses the tails
    assert M.median_filter(img, 3).max() == 0.0  # one bright pixel of nine: the median is 0
    img[0, 2, 1] = img[0, 2, 3] = img[0, 1, 2] = img[0, 3, 2] = 1.0  # a plus: 5 of the middle 9
    out = M.median_filter(img, 3)
    assert out[0, 2, 2] == 1.0 and out.sum() == 1.0  # only the centre sees 5 ones of 9 (next to it: 4 or 3)


def test_pca_recovers_a_plane():
    # the corners of a 2 x 4 rectangle: covariance diag(1, 4, 0) exactly
    x = np.array([[a, b, 0.0] for a in (-1.0, 1.0) for b in (-2.0, 2.0)]) + 5.0
    pca = M.PCA(2).fit(x)
    np.testing.assert_allclose(pca.decode(pca.encode(x)), x, atol=1e-10)
    assert abs(pca.components[1, 0]) == pytest.approx(1.0)  # the larger variance (axis 1) first


def test_jpeg_scan_bytes_are_the_file_minus_its_headers():
    pytest.importorskip("PIL")
    from PIL import Image

    img = np.random.default_rng(0).uniform(0, 1, (28, 28))
    decoded, whole, scan = M.jpeg_bytes(img, 50)
    buf = io.BytesIO()
    Image.fromarray(np.rint(img * 255).astype(np.uint8)).save(buf, format="JPEG", quality=50)
    data = buf.getvalue()
    assert whole == len(data) and decoded.shape == (28, 28)
    sos = data.index(b"\xff\xda")
    header = int.from_bytes(data[sos + 2:sos + 4], "big")
    assert scan == len(data) - 2 - (sos + 2 + header)  # up to EOI (its 2 bytes excluded)
    assert 0 < scan < whole - 300  # the tables of a baseline JPEG are about 300 bytes
    with pytest.raises(ValueError, match="not a JPEG"):
        M.scan_bytes(b"\x89PNG")
    assert M.png_bytes(np.zeros((28, 28))) < 100


@pytest.mark.slow
def test_claims_quick_runs(tmp_path):
    pytest.importorskip("matplotlib")
    import claims

    path = claims.main(["--quick", "--limit", "400", "--epochs", "1", "--probe-steps", "30", "--draws", "2",
                        "--out", str(tmp_path)])
    text = path.read_text()
    for section in ("## 1. Denoising", "## 2. Visualization", "## 3. Features", "## 4. Compression"):
        assert section in text
    assert len(re.findall(r"\*\*Verdict\.\*\*", text)) == 5
    assert "nan" not in text
    for fig in ("claims_denoising.png", "claims_visualization.png", "claims_features.png", "claims_compression.png"):
        assert (tmp_path / fig).read_bytes().startswith(b"\x89PNG")
