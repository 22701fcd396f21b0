"""Everything a user can hand load_images (and so ``--data``), tried as an attacker or a careless
user would: each case is read correctly, with a note for whatever was changed, or refused with one
DataError naming the file, before anything the file asks for is allocated. The fuzz tests run a
bounded number of examples in the fast subset; the budget tests measure time and peak memory in a
subprocess (the peak is asserted, the time only guarded: tests never assert wall-clock)."""

import json
import os
import pathlib
import struct
import subprocess
import sys
import textwrap
import zipfile
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import npae
from npae.data import DataError

ROOT = pathlib.Path(__file__).resolve().parent.parent
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def pil():
    return pytest.importorskip("PIL.Image")


def save(folder, name, array, mode=None):
    path = pathlib.Path(folder) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    im = pil().fromarray(array)  # uint16 is I;16, int32 I, (H, W, 4) uint8 RGBA
    assert mode is None or im.mode == mode, (im.mode, mode)
    im.save(path)
    return path


def grey(n, side=8, seed=0):
    return (np.random.default_rng(seed).random((n, side, side)) * 255).astype(np.uint8)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def bomb_png(path, width, height, rows=None):
    """A grey 8-bit PNG whose header says width x height; with ``rows`` the IDAT holds that many rows
    of zeros (a real bomb: zeros deflate ~1000-fold), else a few bytes."""
    raw = zlib.compressobj(9)
    body = b""
    if rows:
        line = b"\0" * (width + 1)
        for _ in range(rows):
            body += raw.compress(line)
    body += raw.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunks = png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", body) + png_chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunks)
    return path


# -- image folders ------------------------------------------------------------------------------------
def test_a_decompression_bomb_is_refused_from_its_header(tmp_path):
    pil()
    (tmp_path / "bomb").mkdir()
    bomb_png(tmp_path / "bomb" / "a.png", 30000, 30000)  # beyond Pillow's own limit
    save(tmp_path / "bomb", "b.png", grey(1)[0])
    with pytest.raises(DataError, match=r"a\.png: more pixels than npae reads in one image, a decompression bomb"):
        npae.load_images(tmp_path / "bomb")
    bomb_png(tmp_path / "bomb" / "a.png", 10000, 10000)  # below Pillow's, above npae's
    with pytest.raises(DataError, match=r"a\.png: 10000x10000 pixels, more than the 67,108,864"):
        npae.load_images(tmp_path / "bomb")


def test_truncated_and_mislabelled_files(tmp_path):
    pil()
    for i in range(3):
        save(tmp_path / "cut", f"{i}.png", grey(1, seed=i)[0])
    whole = (tmp_path / "cut" / "1.png").read_bytes()
    (tmp_path / "cut" / "1.png").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DataError, match=r"1\.png: not a readable image"):
        npae.load_images(tmp_path / "cut")
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "a.png").write_text("not an image")
    with pytest.raises(DataError, match=r"a\.png: not a readable image"):
        npae.load_images(tmp_path / "text")
    # a JPEG named .png is read by its content, like any viewer does
    x = np.full((2, 8, 8), 200, np.uint8)
    save(tmp_path / "named", "a.png", x[0])
    pil().fromarray(x[1]).save(tmp_path / "named" / "b.png", format="JPEG", quality=95)
    (x_train, _), (x_test, _) = npae.load_images(tmp_path / "named")
    assert abs(float(np.concatenate([x_train, x_test]).mean()) - 200 / 255) < 0.02


def test_links_out_of_the_folder_are_read_with_a_note_and_loops_are_refused(tmp_path):
    pil()
    outside = save(tmp_path / "elsewhere", "x.png", grey(1)[0])
    folder = tmp_path / "data"
    for i in range(3):
        save(folder, f"{i}.png", grey(1, seed=i)[0])
    (folder / "link.png").symlink_to(outside)
    data = npae.load_images(folder)
    assert len(data[0][0]) + len(data[1][0]) == 4 and "links to outside the folder" in data.describe()
    (folder / "loop1.png").symlink_to(folder / "loop2.png")
    (folder / "loop2.png").symlink_to(folder / "loop1.png")
    with pytest.raises(DataError, match=r"loop1\.png: a symbolic link that leads to no file"):
        npae.load_images(folder)
    (folder / "loop1.png").unlink()
    (folder / "loop2.png").unlink()
    (folder / "sub").mkdir()
    (folder / "sub" / "up").symlink_to(folder, target_is_directory=True)  # a folder loop: never walked into
    assert len(npae.load_images(folder)[0][0]) > 0


def test_mixed_sizes_are_refused_before_decoding(tmp_path):
    pil()
    save(tmp_path, "a.png", grey(1, 8)[0])
    save(tmp_path, "b.png", grey(1, 9)[0])
    with pytest.raises(DataError, match=r"a\.png is 8x8, b\.png is 9x9\); npae does not resize"):
        npae.load_images(tmp_path)


def test_every_pixel_format_is_read_at_its_own_scale_or_noted(tmp_path):
    Image = pil()
    v16 = np.array([[0, 32768], [65535, 1000]], np.uint16)
    save(tmp_path / "g16", "a.png", v16, "I;16")
    save(tmp_path / "g16", "b.png", v16[::-1], "I;16")
    data = npae.load_images(tmp_path / "g16")
    values = np.sort(np.concatenate([data[0][0], data[1][0]]).ravel())
    np.testing.assert_allclose(values[-2:], [1.0, 1.0]) and np.testing.assert_allclose(values[0], 0.0)
    assert np.isclose(values, 32768 / 65535, atol=1e-6).any() and "16-bit pixels scaled by 65535" in data.describe()
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 255, 10
    for i in range(2):
        save(tmp_path / "rgba", f"{i}.png", rgba, "RGBA")
    data = npae.load_images(tmp_path / "rgba")
    assert data.shape == (3, 8, 8) and "alpha channel dropped (2 of 2 images)" in data.describe()
    assert float(data[0][0][0, 0].min()) == 1.0  # red kept at its value, not blended with the alpha
    grey_palette = Image.fromarray(np.array([[0, 128], [255, 64]], np.uint8)).convert("P")
    for i in range(2):
        grey_palette.save(tmp_path / "pal" / f"{i}.png") if (tmp_path / "pal").is_dir() else (
            (tmp_path / "pal").mkdir(), grey_palette.save(tmp_path / "pal" / f"{i}.png"))
    assert npae.load_images(tmp_path / "pal").shape == (1, 2, 2)
    save(tmp_path / "mix", "a.png", grey(1)[0])
    save(tmp_path / "mix", "b.png", np.zeros((8, 8, 3), np.uint8))
    data = npae.load_images(tmp_path / "mix")
    assert data.shape == (3, 8, 8) and "grey images given three equal channels (1 of 2)" in data.describe()
    (tmp_path / "f32").mkdir()
    Image.fromarray(np.zeros((4, 4), np.int32)).save(tmp_path / "f32" / "a.png", format="TIFF")  # misnamed
    with pytest.raises(DataError, match="a.png: a 32-bit integer image"):
        npae.load_images(tmp_path / "f32")
    tiny = np.zeros((3, 3, 3), np.uint8)  # an image folder's colour is channels-last, however small
    save(tmp_path / "tiny", "a.png", tiny)
    save(tmp_path / "tiny", "b.png", tiny)
    assert npae.load_images(tmp_path / "tiny").shape == (3, 3, 3)


def test_empty_folders_and_empty_classes(tmp_path):
    pil()
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no IDX files, and no PNG/JPG/JPEG images"):
        npae.load_images(tmp_path / "empty")
    for name in ("cats", "dogs"):
        for i in range(3):
            save(tmp_path / "classes" / name, f"{i}.png", grey(1, seed=i)[0])
    (tmp_path / "classes" / "birds").mkdir()
    data = npae.load_images(tmp_path / "classes")
    assert data.classes == ["cats", "dogs"] and "1 subfolder(s) without images left out, not classes: birds" in \
        data.describe()


def test_non_ascii_names(tmp_path):
    pil()
    for name in ("zéro", "数字"):
        for i in range(2):
            save(tmp_path / "ü" / name, f"ñ{i}.png", grey(1, seed=i)[0])
    data = npae.load_images(tmp_path / "ü")
    assert data.classes == sorted(["zéro", "数字"])
    (tmp_path / "ü" / "zéro" / "ñ0.png").write_bytes(b"junk")
    with pytest.raises(DataError, match="ñ0.png: not a readable image"):
        npae.load_images(tmp_path / "ü")


def test_the_pixel_budget_is_checked_from_the_headers(tmp_path):
    pil()
    for i in range(4):
        save(tmp_path, f"{i}.png", grey(1, 16, seed=i)[0])
    with pytest.raises(DataError, match=r"4 images of 16x16x1 are 1,024 numbers, more than the 1,000"):
        npae.load_images(tmp_path, max_values=1000)
    assert npae.load_images(tmp_path, max_values=1024).shape == (1, 16, 16)


@pytest.mark.slow
def test_twenty_thousand_tiny_files(tmp_path):
    for i in range(20_000):
        save(tmp_path / f"c{i % 10}", f"{i:05d}.png", np.full((4, 4), i % 256, np.uint8))
    data = npae.load_images(tmp_path)
    assert len(data[0][0]) + len(data[1][0]) == 20_000 and len(data.classes) == 10


# -- arrays ---------------------------------------------------------------------------------------------
def npy_header(shape, descr="|u1"):
    header = repr({"descr": descr, "fortran_order": False, "shape": tuple(shape)}).encode()
    header += b" " * (63 - (len(header) + 10) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header


def test_an_npy_whose_header_claims_more_than_the_file_holds(tmp_path):
    (tmp_path / "huge.npy").write_bytes(npy_header((1_000_000, 1000, 1000)) + b"\0" * 100)
    with pytest.raises(DataError, match="huge.npy: not a readable .npy array"):
        npae.load_images(tmp_path / "huge.npy")
    (tmp_path / "overflow.npy").write_bytes(npy_header((2 ** 62, 2 ** 62)) + b"\0" * 100)
    with pytest.raises(DataError, match="overflow.npy"):
        npae.load_images(tmp_path / "overflow.npy")


@pytest.mark.parametrize("array, fragment", [
    (np.zeros((4, 3, 3), object), "not a readable .npy array"),
    (np.zeros((4, 3, 3), complex), "complex128; npae reads uint8"),
    (np.zeros((4, 3, 3), np.int64), "int64; npae reads uint8"),
    (np.full((4, 3, 3), np.nan), "NaN or infinite"),
    (np.full((4, 3, 3), np.inf, np.float32), "NaN or infinite"),
    (np.zeros((0, 3, 3), np.uint8), "0 image"),
    (np.zeros((1, 3, 3), np.uint8), "1 image"),
    (np.zeros((4, 1, 2, 3, 3), np.uint8), "expected (N, D), (N, H, W)"),
    (np.zeros((4,), np.uint8), "expected (N, D), (N, H, W)"),
])
def test_arrays_npae_cannot_train_on(array, fragment, tmp_path):
    np.save(tmp_path / "a.npy", array, allow_pickle=True)
    with pytest.raises(DataError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        npae.load_images(tmp_path / "a.npy")


def test_arrays_read_as_they_are(tmp_path):
    for array in (np.ones((4, 3, 3), bool), np.full((4, 3, 3), 0.5, np.float16)):
        np.save(tmp_path / "a.npy", array)
        (x, _), (xt, _) = npae.load_images(tmp_path / "a.npy")
        np.testing.assert_array_equal(np.concatenate([x, xt]).ravel(), array.astype(np.float32).ravel())


def test_npz_splits_zip_bombs_and_pickles(tmp_path):
    np.savez(tmp_path / "half.npz", x_train=grey(4))
    with pytest.raises(DataError, match="holds x_train but no x_test"):
        npae.load_images(tmp_path / "half.npz")
    np.savez(tmp_path / "mismatch.npz", x_train=grey(4), x_test=grey(2, 9))
    with pytest.raises(DataError, match=r"x_train's samples are \(1, 8, 8\) but x_test's \(1, 9, 9\)"):
        npae.load_images(tmp_path / "mismatch.npz")
    np.savez(tmp_path / "pickled.npz", x_train=np.zeros((2, 2), object), x_test=grey(2))
    with pytest.raises(DataError, match="npae reads only numbers"):
        npae.load_images(tmp_path / "pickled.npz")
    with zipfile.ZipFile(tmp_path / "bomb.npz", "w", zipfile.ZIP_DEFLATED) as z:  # 16 MiB of zeros in 16 KiB
        z.writestr("x.npy", npy_header((1 << 24,)) + b"\0" * (1 << 24))
    assert (tmp_path / "bomb.npz").stat().st_size < 100_000
    with pytest.raises(DataError, match="more than 1,000,000 numbers"):  # the budget, from the header (the
        npae.load_images(tmp_path / "bomb.npz", max_values=1_000_000)  # 4 GiB one: the budget test below


# -- fuzzing: mutated bytes of a valid file raise nothing but DataError ----------------------------------
def mutate(raw: bytes, data) -> bytes:
    raw = bytearray(raw)
    for _ in range(data.draw(st.integers(1, 3))):
        if data.draw(st.booleans()) and len(raw) > 1:
            raw = raw[: data.draw(st.integers(0, len(raw) - 1))]
        elif raw:
            raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    return bytes(raw)


def read_or_refuse(path):
    try:
        data = npae.load_images(path)
    except DataError:
        return
    (x, _), (xt, _) = data
    assert np.isfinite(x).all() and 0 <= x.min() and x.max() <= 1 and len(xt) >= 1


@FUZZ
@given(data=st.data())
def test_fuzz_npy(tmp_path, data):
    np.save(tmp_path / "v.npy", grey(6))
    (tmp_path / "f.npy").write_bytes(mutate((tmp_path / "v.npy").read_bytes(), data))
    read_or_refuse(tmp_path / "f.npy")


@FUZZ
@given(data=st.data())
def test_fuzz_npz(tmp_path, data):
    np.savez_compressed(tmp_path / "v.npz", x_train=grey(6), x_test=grey(2))
    (tmp_path / "f.npz").write_bytes(mutate((tmp_path / "v.npz").read_bytes(), data))
    read_or_refuse(tmp_path / "f.npz")


@FUZZ
@given(data=st.data(), mode=st.sampled_from(["L", "RGB", "RGBA", "P", "I;16"]))
def test_fuzz_png(tmp_path, data, mode):
    Image = pil()
    folder = tmp_path / "fz"
    folder.mkdir(exist_ok=True)
    for f in folder.iterdir():
        f.unlink()
    base = Image.fromarray(grey(1)[0]).convert(mode) if mode != "I;16" else \
        Image.fromarray(grey(1)[0].astype(np.uint16) * 257)
    base.save(folder / "a.png")
    base.save(folder / "b.png")
    (folder / "b.png").write_bytes(mutate((folder / "b.png").read_bytes(), data))
    read_or_refuse(folder)


# -- budgets: time and peak memory, in a fresh process -----------------------------------------------------
BUDGET_CASES = {
    "decompression bomb 30000x30000 (a real one: 900 MB of zeros in 1 MB)": "bomb",
    "npy header of a terabyte in 100 bytes": "npy",
    "npz deflate bomb of 1 GiB": "npz",
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(BUDGET_CASES.values()), ids=list(BUDGET_CASES))
def test_hostile_files_cost_little_time_and_memory(case, tmp_path):
    """Peak memory (the child's own peak resident set, VmHWM) at most 400 MB; the time is printed and
    guarded by a timeout only, never asserted."""
    pytest.importorskip("resource")  # the child reads its peak with it (not on Windows)
    if case == "bomb":
        pil()
        (tmp_path / "d").mkdir()
        bomb_png(tmp_path / "d" / "a.png", 30000, 30000, rows=30000)
        bomb_png(tmp_path / "d" / "b.png", 8, 8, rows=8)
        target = tmp_path / "d"
    elif case == "npy":
        target = tmp_path / "huge.npy"
        target.write_bytes(npy_header((1 << 40,)) + b"\0" * 100)
    else:
        target = tmp_path / "bomb.npz"
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as z, z.open("x.npy", "w", force_zip64=True) as f:
            f.write(npy_header((1 << 30,)))  # twice the budget, written in full: 1 GiB of zeros in 1 MB
            for _ in range(64):
                f.write(b"\0" * (1 << 24))
    code = textwrap.dedent(f"""
        import json, resource, time
        t = time.perf_counter()
        import npae
        try:
            npae.load_images({str(target)!r})
            outcome = "read"
        except npae.DataError as exc:
            outcome = "DataError: " + str(exc)[:80]
        try:  # VmHWM: this process's own peak (ru_maxrss keeps a forking parent's across exec on Linux)
            peak = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")) / 1024
        except OSError:
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps({{"outcome": outcome, "seconds": time.perf_counter() - t, "peak_mb": peak}}))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    print(case, result)
    assert result["outcome"].startswith("DataError") and result["peak_mb"] < 400, result
