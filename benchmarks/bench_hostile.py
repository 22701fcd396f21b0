"""Every hostile or careless input of issue 26, each in a fresh process: the outcome, the time and
the peak memory (the process's own peak resident set, VmHWM, which includes Python and NumPy:
about 55 MB before npae reads anything).

    python benchmarks/bench_hostile.py [--skip-slow]

The promise measured: each case is read correctly or ends in npae's own error type (DataError,
SafetensorsError, ModelFileError, or the command line's one error: line) in at most 5 s and 400 MB.
The table's verdict column is computed from the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import textwrap
import zipfile

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
from test_hostile_inputs import bomb_png, npy_header  # noqa: E402  (the tests' own builders of these files)

BUDGET_S, BUDGET_MB = 5.0, 400.0

CHILD = textwrap.dedent("""
    import json, resource, sys, time
    kind, target = sys.argv[1], sys.argv[2]
    t = time.perf_counter()
    import npae
    from npae.files.safetensors import SafetensorsError
    errors = (npae.DataError, SafetensorsError, npae.ModelFileError)
    try:
        if kind == "images":
            data = npae.load_images(target)
            outcome = "read " + "x".join(map(str, data.shape)) + (f" ({'; '.join(data.notes)})" if data.notes else "")
        elif kind == "safetensors":
            npae.files.load_safetensors(target)
            outcome = "read"
        elif kind == "model":
            npae.load(target)
            outcome = "read"
        else:
            from npae.cli import main
            import contextlib, io
            err = io.StringIO()
            with contextlib.redirect_stderr(err):
                try:
                    code = main(json.loads(target))
                except SystemExit as e:
                    code = e.code
            outcome = f"exit {code}: " + err.getvalue().strip().splitlines()[-1] if err.getvalue() else f"exit {code}"
    except errors as exc:
        outcome = f"{type(exc).__name__}: {exc}"
    except Exception as exc:
        outcome = f"NOT OURS {type(exc).__name__}: {exc}"
    try:  # VmHWM: this process's own peak (ru_maxrss keeps a forking parent's across exec on Linux)
        peak = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")) / 1024
    except OSError:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"outcome": outcome, "seconds": time.perf_counter() - t, "peak_mb": peak}))
""")


def measure(kind: str, target: str, cwd: pathlib.Path) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, kind, target], capture_output=True, text=True, timeout=300,
                         cwd=cwd, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if out.returncode != 0:
        return {"outcome": f"CRASH: {out.stderr.strip().splitlines()[-1] if out.stderr else out.returncode}",
                "seconds": float("nan"), "peak_mb": float("nan")}
    return json.loads(out.stdout.strip().splitlines()[-1])


def png(folder: pathlib.Path, name: str, array: np.ndarray, **save) -> pathlib.Path:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(folder / name, **save)
    return folder / name


def cases(tmp: pathlib.Path, slow: bool):
    """(title, kind, target) for every case, each file built under ``tmp``."""
    rng = np.random.default_rng(0)
    grey = (rng.random((8, 8)) * 255).astype(np.uint8)
    d = tmp / "bomb"
    d.mkdir()
    bomb_png(d / "a.png", 30000, 30000, rows=30000 if slow else None)
    png(d, "b.png", grey)
    yield "PNG decompression bomb, 30000x30000" + (" (900 MB of zeros in ~1 MB)" if slow else ""), "images", d
    d = tmp / "cut"
    for i in range(3):
        png(d, f"{i}.png", grey)
    (d / "1.png").write_bytes((d / "1.png").read_bytes()[:60])
    yield "a truncated PNG", "images", d
    d = tmp / "text"
    d.mkdir()
    (d / "a.png").write_text("not an image")
    yield "a text file named .png", "images", d
    d = tmp / "jpeg-named-png"
    png(d, "a.png", grey)
    png(d, "b.png", grey, format="JPEG")
    yield "a JPEG named .png", "images", d
    d = tmp / "links"
    for i in range(3):
        png(d, f"{i}.png", grey)
    png(tmp / "elsewhere", "x.png", grey)
    (d / "out.png").symlink_to(tmp / "elsewhere" / "x.png")
    yield "a link to a file outside the folder", "images", d
    d = tmp / "loop"
    png(d, "0.png", grey)
    (d / "l1.png").symlink_to(d / "l2.png")
    (d / "l2.png").symlink_to(d / "l1.png")
    yield "links in a loop", "images", d
    d = tmp / "sizes"
    png(d, "a.png", grey)
    png(d, "b.png", np.zeros((9, 9), np.uint8))
    yield "mixed sizes", "images", d
    for title, array in (("16-bit grey PNGs", (rng.random((8, 8)) * 65535).astype(np.uint16)),
                         ("RGBA PNGs", np.full((8, 8, 4), 200, np.uint8)),
                         ("RGB PNGs", np.full((8, 8, 3), 200, np.uint8))):
        d = tmp / title.split()[0]
        for i in range(3):
            png(d, f"{i}.png", array)
        yield title, "images", d
    d = tmp / "palette"
    from PIL import Image
    d.mkdir()
    for i in range(3):
        Image.fromarray(grey).convert("P").save(d / f"{i}.png")
    yield "palette PNGs", "images", d
    d = tmp / "empty"
    d.mkdir()
    yield "an empty folder", "images", d
    d = tmp / "classes"
    for c in ("a", "b"):
        for i in range(3):
            png(d / c, f"{i}.png", grey)
    (d / "empty-class").mkdir()
    yield "an empty class folder", "images", d
    d = tmp / "ü"
    for c in ("zéro", "数字"):
        for i in range(2):
            png(d / c, f"ñ{i}.png", grey)
    yield "non-ASCII names", "images", d
    if slow:
        d = tmp / "many"
        for i in range(20_000):
            png(d / f"c{i % 10}", f"{i:05d}.png", np.full((4, 4), i % 256, np.uint8))
        yield "20,000 tiny PNGs in 10 classes", "images", d
    (tmp / "huge.npy").write_bytes(npy_header((1 << 40,)) + b"\0" * 100)
    yield ".npy header of a terabyte in 100 bytes", "images", tmp / "huge.npy"
    for title, array in (("object", np.zeros((4, 8, 8), object)), ("complex", np.zeros((4, 8, 8), complex)),
                         ("bool", np.ones((4, 8, 8), bool)), ("float16", np.full((4, 8, 8), 0.5, np.float16)),
                         ("int64", np.zeros((4, 8, 8), np.int64)), ("NaN", np.full((4, 8, 8), np.nan)),
                         ("inf", np.full((4, 8, 8), np.inf)), ("N = 0", np.zeros((0, 8, 8), np.uint8)),
                         ("N = 1", np.zeros((1, 8, 8), np.uint8)), ("extra dimensions", np.zeros((4, 2, 2, 8, 8)))):
        path = tmp / f"{title.replace(' ', '')}.npy"
        np.save(path, array, allow_pickle=True)
        yield f".npy of {title}", "images", path
    big = tmp / "big.npy"  # 2 GiB declared, sparse on disk: the header is checked, the data never read
    with open(big, "wb") as f:
        f.write(npy_header((2 ** 31,)))
        f.truncate(len(npy_header((2 ** 31,))) + 2 ** 31)
    yield ".npy of 2 GiB (sparse file)", "images", big
    np.savez(tmp / "half.npz", x_train=np.zeros((4, 8, 8), np.uint8))
    yield ".npz with x_train but no x_test", "images", tmp / "half.npz"
    np.savez(tmp / "mismatch.npz", x_train=np.zeros((4, 8, 8), np.uint8), x_test=np.zeros((2, 9, 9), np.uint8))
    yield ".npz with mismatched splits", "images", tmp / "mismatch.npz"
    np.savez(tmp / "pickled.npz", x_train=np.zeros((2, 2), object), x_test=np.zeros((2, 2), np.uint8))
    yield ".npz with a pickled member", "images", tmp / "pickled.npz"
    with zipfile.ZipFile(tmp / "bomb.npz", "w", zipfile.ZIP_DEFLATED) as z, z.open("x.npy", "w", force_zip64=True) as f:
        f.write(npy_header((1 << 32,)))
        for _ in range(256 if slow else 1):
            f.write(b"\0" * (1 << 24))
    yield ".npz deflate bomb, 4 GiB declared" + (" (and written)" if slow else ""), "images", tmp / "bomb.npz"
    for title, raw in (("header length 2**63", (2 ** 63).to_bytes(8, "little")),
                       ("header length beyond the file", (1000).to_bytes(8, "little") + b"{}"),
                       ("100 MB header declared", (100_000_001).to_bytes(8, "little")),
                       ("deep JSON", (len(b'{"a": ' + b"[" * 10000)).to_bytes(8, "little") + b'{"a": ' + b"[" * 10000),
                       ("overlapping offsets", None), ("unknown dtype", None), ("astronomical shape", None)):
        if raw is None:
            header = {"overlapping offsets": {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                                              "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}},
                      "unknown dtype": {"a": {"dtype": "Q99", "shape": [2], "data_offsets": [0, 8]}},
                      "astronomical shape": {"a": {"dtype": "F32", "shape": [2 ** 62, 2 ** 62],
                                                   "data_offsets": [0, 8]}}}[title]
            text = json.dumps(header).encode()
            raw = len(text).to_bytes(8, "little") + text + b"\0" * 12
        path = tmp / f"{title.replace(' ', '-')}.safetensors"
        path.write_bytes(raw)
        yield f"safetensors: {title}", "safetensors", path
    for flags in (["--epochs", "0"], ["--epochs", "-1"], ["--epochs", "1e9"], ["--batch-size", "0"], ["--lr", "nan"],
                  ["--lr", "inf"], ["--lr", "-1"]):
        yield f"train {' '.join(flags)}", "cli", json.dumps(["train", "ordinary", *flags, "--out", str(tmp / "r")])
    (tmp / "a-file").write_text("x")
    yield "train --out under a file", "cli", json.dumps(["train", "ordinary", "--limit", "64", "--out",
                                                          str(tmp / "a-file" / "r")])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--skip-slow", action="store_true", help="no real bombs, no 20,000 files")
    args = p.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        for title, kind, target in cases(tmp, not args.skip_slow):
            r = measure(kind, str(target), tmp)
            ours = not r["outcome"].startswith(("NOT OURS", "CRASH"))
            ok = ours and r["seconds"] <= BUDGET_S and r["peak_mb"] <= BUDGET_MB
            rows.append((title, r, ok))
            print(f"| {title} | {r['outcome'].replace(str(tmp) + '/', '')[:110]} | {r['seconds']:.2f} | "
                  f"{r['peak_mb']:.0f} | {'yes' if ok else 'NO'} |", flush=True)
    bad = [t for t, _, ok in rows if not ok]
    worst_s = max(r["seconds"] for _, r, _ in rows)
    worst_mb = max(r["peak_mb"] for _, r, _ in rows)
    print(f"\n{len(rows) - len(bad)} of {len(rows)} cases within {BUDGET_S:g} s and {BUDGET_MB:g} MB, each read or "
          f"refused by npae's own error (slowest {worst_s:.2f} s, largest {worst_mb:.0f} MB)"
          + (f"; not: {', '.join(bad)}" if bad else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
