"""Which Conv2D kernel is fastest where: every kernel that computes a 3x3 stride-1 "same" layer,
forward + backward, on a grid of widths, grid sizes and batches, one thread.

    python benchmarks/bench_kernels.py [--repeat 5] [--quick] [--transpose]

``--transpose``: the same for ConvTranspose2D 3x3, stride 1, padding 1 (the same sizes in and out),
its own ``col2im`` kernel beside the Conv2D kernels run on the convolution it is
(:mod:`npae.nn.kernels.transpose`); :func:`npae.nn.kernels.choose_transpose_kernel` picks.

For each shape the kernels run interleaved in one process (median of ``--repeat`` rounds after a
warm-up); the table gives each kernel's time relative to the fastest, and the kernel
:func:`npae.nn.kernels.choose_kernel` picks with its ratio: the measurement the rule is read from
(benchmarks/README.md). Shapes whose forward exceeds 12 GFLOP are left out (time). torch is not used.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import pathlib  # noqa: E402
import sys  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from bench_scaling import interleaved  # noqa: E402 (the same interleaved timing)

import npae  # noqa: E402
from npae.nn.kernels import COL2IM, KERNELS  # noqa: E402

CHANNELS = [(8, 8), (16, 16), (16, 32), (32, 32), (32, 64), (64, 64), (128, 128)]
GRIDS = [2, 4, 8, 16, 32]
BATCHES = [16, 64, 256]
NAMES = [k for k in KERNELS if k != "im2col"] + ["im2col"]


def make(transpose: bool, c_in: int, c_out: int, kernel: str | None, rng) -> npae.Conv2D | npae.ConvTranspose2D:
    """The layer whose kernels are timed, asking for ``kernel``."""
    if transpose:
        layer = npae.ConvTranspose2D(c_in, c_out, 3, padding=1, rng=rng)
    else:
        layer = npae.Conv2D(c_in, c_out, 3, rng=rng)
    layer.kernel = kernel
    return layer


def runs(layer, x_shape) -> str:
    """The kernel the layer runs for an input of ``x_shape``."""
    if isinstance(layer, npae.ConvTranspose2D):
        return layer.kernel_for(x_shape)
    return layer.kernel_for(x_shape[2:], x_shape[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="batch 64 only, widths from 16")
    parser.add_argument("--transpose", action="store_true", help="ConvTranspose2D 3x3 stride 1 padding 1 instead")
    args = parser.parse_args()
    names = [COL2IM] + NAMES if args.transpose else NAMES
    rng = np.random.default_rng(0)
    batches = [64] if args.quick else BATCHES
    channels = [c for c in CHANNELS if c[0] >= 16] if args.quick else CHANNELS
    print(f"npae {npae.__version__}, numpy {np.__version__}, float32, one thread; "
          f"{'ConvTranspose2D' if args.transpose else 'Conv2D'} time / fastest, median of {args.repeat}")
    print(f"{'shape':>17} {'batch':>5}  " + " ".join(f"{k:>10}" for k in names) + f"  {'chosen':>10} {'ratio':>6}")
    worst = []
    for c_in, c_out in channels:
        for hw in GRIDS:
            for batch in batches:
                if 2 * 9 * c_in * c_out * hw * hw * batch > 12e9:
                    continue
                x = rng.standard_normal((batch, c_in, hw, hw)).astype(np.float32)
                dy = rng.standard_normal((batch, c_out, hw, hw)).astype(np.float32)
                fns = {}
                for name in names:
                    layer = make(args.transpose, c_in, c_out, name, np.random.default_rng(1))
                    if runs(layer, x.shape) != name:
                        continue

                    def run(layer=layer, x=x, dy=dy):
                        layer.forward(x)
                        layer.backward(dy)
                    fns[name] = run
                chosen = runs(make(args.transpose, c_in, c_out, None, rng), x.shape)
                t = {k: median for k, (_, median) in interleaved(fns, args.repeat).items()}
                best = min(t.values())
                cells = " ".join(f"{t[k] / best:>10.2f}" if k in t else f"{'-':>10}" for k in names)
                ratio = t[chosen] / best
                worst.append((ratio, f"{c_in}->{c_out}@{hw} b{batch}"))
                print(f"{c_in:>5} -> {c_out:<4}@ {hw:<3} {batch:>5}  {cells}  {chosen:>10} {ratio:>6.2f}", flush=True)
    worst.sort(reverse=True)
    print("the rule's worst picks (time / fastest):", ", ".join(f"{s} {r:.2f}" for r, s in worst[:5]))


if __name__ == "__main__":
    main()
