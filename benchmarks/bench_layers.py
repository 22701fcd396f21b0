"""Forward and backward time of every layer at the shapes of the article's families.

    python benchmarks/bench_layers.py [--batch-size 256] [--repeat 5] [--families ...] [--no-next]

The second table ("the next layers") times ConvTranspose2D, AvgPool2D and BatchNorm2D at the
shapes of the convolutional autoencoder's variant, and ConvTranspose2D at stride 1 by the kernel
its rule picks beside col2im (the one it ran before it ran the convolution kernels), forward +
backward, beside the same layer in PyTorch when it is installed (same process, interleaved, median
of the repeats).

float32, one training forward then one backward per repeat; the median is reported,
with GFLOP/s for the layers that do arithmetic worth counting (Dense, Conv2D):
forward 2*N*(multiply-adds of one sample), backward twice that (dW and dx). Each layer
runs as it does inside the model: the model's first layer checks its input and skips
its input gradient (backward computes dW only, counted once: "no dx"); the inner layers
skip the finiteness scan, as inside a Sequential.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import math
import pathlib
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
import npae  # noqa: E402
from npae import _checks  # noqa: E402
from npae.models import families as A  # noqa: E402


def flops_forward(layer, x_shape, y_shape) -> float:
    if isinstance(layer, npae.Dense):
        return 2.0 * x_shape[0] * layer.n_in * layer.n_out
    if isinstance(layer, npae.Conv2D):
        kh, kw = layer.kernel_size
        return 2.0 * math.prod(y_shape) * layer.c_in * kh * kw
    return 0.0


def median_time(fn, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def bench_family(name, batch, repeat, rng):
    model = A.FAMILIES[name](rng=np.random.default_rng(0))
    x = rng.uniform(0, 1, (batch,) + model.input_shape).astype(np.float32)
    rows = []
    layers = list(model.encoder) + list(model.decoder)
    for i, layer in enumerate(layers):
        first = i == 0  # the model's input: checked, and no input gradient needed
        with contextlib.nullcontext() if first else _checks.inside_sequential():
            backward = functools.partial(layer.backward, need_dx=False) if first else layer.backward
            y = layer.forward(x)
            dy = np.ones_like(y)
            backward(dy)  # warm-up
            t_f = median_time(functools.partial(layer.forward, x), repeat)
            t_b = median_time(functools.partial(backward, dy), repeat)
            f = flops_forward(layer, x.shape, y.shape)
            rows.append((name, repr(layer) + (" no dx" if first else ""), x.shape, t_f, t_b, f, 1 if first else 2))
            x = layer.forward(x, training=False)
    return rows


def stride_one(c_in: int, c_out: int, kernel: str | None = None) -> npae.ConvTranspose2D:
    """ConvTranspose2D 3x3 stride 1 padding 1 (the size kept), asking for ``kernel`` (None: the rule's)."""
    layer = npae.ConvTranspose2D(c_in, c_out, 3, padding=1)
    layer.kernel = kernel
    return layer


NEXT = [  # (what, npae layer, input shape per sample); ConvTranspose2D's kernel in brackets
    ("ConvTranspose2D 8->8 3x3 s2 (4 -> 7)", lambda: npae.ConvTranspose2D(8, 8, 3, stride=2, padding=1), (8, 4, 4)),
    ("ConvTranspose2D 8->16 3x3 s2 (14 -> 28)",
     lambda: npae.ConvTranspose2D(8, 16, 3, stride=2, padding=1, output_padding=1), (8, 14, 14)),
    ("ConvTranspose2D 16->16 3x3 s1 @14", lambda: stride_one(16, 16), (16, 14, 14)),
    ("  the same by col2im (before)", lambda: stride_one(16, 16, "col2im"), (16, 14, 14)),
    ("ConvTranspose2D 32->64 3x3 s1 @16", lambda: stride_one(32, 64), (32, 16, 16)),
    ("  the same by col2im (before)", lambda: stride_one(32, 64, "col2im"), (32, 16, 16)),
    ("ConvTranspose2D 64->32 3x3 s1 @8", lambda: stride_one(64, 32), (64, 8, 8)),
    ("  the same by col2im (before)", lambda: stride_one(64, 32, "col2im"), (64, 8, 8)),
    ("Conv2D 16->8 3x3 s2 (28 -> 14)", lambda: npae.Conv2D(16, 8, 3, stride=2), (16, 28, 28)),
    ("AvgPool2D 2 (28 -> 14)", lambda: npae.AvgPool2D(2), (16, 28, 28)),
    ("BatchNorm2D 16 @ 28x28", lambda: npae.BatchNorm2D(16), (16, 28, 28)),
]


def torch_twin(layer):
    """The same layer in PyTorch, with npae's weights, or None."""
    import torch

    if isinstance(layer, npae.ConvTranspose2D):
        t = torch.nn.ConvTranspose2d(layer.c_in, layer.c_out, layer.kernel_size, layer.stride, layer.padding,
                                     layer.output_padding)
    elif isinstance(layer, npae.Conv2D):
        t = torch.nn.Conv2d(layer.c_in, layer.c_out, layer.kernel_size, layer.stride, padding=1)
    elif isinstance(layer, npae.AvgPool2D):
        return torch.nn.AvgPool2d(layer.pool_size, layer.stride)
    elif isinstance(layer, npae.BatchNorm2D):
        return torch.nn.BatchNorm2d(layer.features)
    else:
        return None
    with torch.no_grad():
        t.weight[...] = torch.from_numpy(layer.W)
    return t


def bench_next(batch, repeat, rng):
    try:
        import torch
    except ImportError:
        torch = None
    print(f"\nthe next layers: forward + backward ms, batch {batch}"
          + ("" if torch else " (PyTorch is not installed: npae alone)"))
    print(f"{'layer':<50} {'npae':>9} {'torch':>9} {'npae/torch':>11}")
    for what, make, shape in NEXT:
        layer = make()
        x = rng.standard_normal((batch,) + shape).astype(np.float32)
        dy = np.ones_like(layer.forward(x))

        def ours(layer=layer, x=x, dy=dy):
            layer.forward(x)
            layer.backward(dy)

        ours()
        times, theirs = {"npae": []}, None
        if torch is not None:
            twin, xt, dyt = torch_twin(layer), torch.from_numpy(x).requires_grad_(True), torch.from_numpy(dy)

            def theirs(twin=twin, xt=xt, dyt=dyt):
                twin(xt).backward(dyt)

            theirs()
            times["torch"] = []
        for _ in range(repeat):  # interleaved, so both see the same machine
            times["npae"].append(median_time(ours, 1))
            if theirs is not None:
                times["torch"].append(median_time(theirs, 1))
        a = float(np.median(times["npae"]))
        b = float(np.median(times["torch"])) if theirs is not None else float("nan")
        if isinstance(layer, npae.ConvTranspose2D):
            what = f"{what} [{layer.kernel_for(x.shape)}]"
        print(f"{what:<50} {a * 1e3:9.2f} {b * 1e3:9.2f} {a / b:11.2f}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--families", default="ordinary,multilayer,convolutional,denoising")
    parser.add_argument("--no-next", action="store_true", help="leave out the table of the next layers")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    print(f"npae {npae.__version__}, numpy {np.__version__}, float32, batch {args.batch_size}, median of {args.repeat}")
    print(f"{'family':<14} {'layer':<52} {'input':<20} {'fwd ms':>8} {'bwd ms':>8} {'fwd GF/s':>9} {'bwd GF/s':>9}")
    for fam in args.families.split(","):
        total_f = total_b = 0.0
        for name, layer, shape, t_f, t_b, f, f_b in bench_family(fam, args.batch_size, args.repeat, rng):
            total_f, total_b = total_f + t_f, total_b + t_b
            gf = f"{f / t_f / 1e9:9.1f}" if f else " " * 9
            gb = f"{f_b * f / t_b / 1e9:9.1f}" if f else " " * 9
            print(f"{name:<14} {layer[:52]:<52} {str(shape):<20} {t_f * 1e3:8.2f} {t_b * 1e3:8.2f} {gf} {gb}")
        print(f"{fam:<14} {'all layers':<52} {'':<20} {total_f * 1e3:8.2f} {total_b * 1e3:8.2f}")
    if not args.no_next:
        bench_next(args.batch_size, args.repeat, rng)


if __name__ == "__main__":
    main()
