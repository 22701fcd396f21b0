"""Seconds per training epoch, npae beside PyTorch (when importable) in the same process.

    python benchmarks/bench_train.py --data PATH/TO/mnist [--batch-size 256] [--epochs 1]

For each family (ordinary, multilayer, convolutional) one epoch of Adam + MSE over the
training set, npae and torch interleaved family by family so that both see the same
machine state, and the ratio npae/torch. Also: NumPy's own float32 matmul peak measured
in this run and the fraction of it the dense autoencoder reaches, and the peak memory
(RSS) of training the convolutional autoencoder, measured in a fresh child process that
imports npae only. torch is never needed: without it npae is measured alone.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import subprocess
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import npae  # noqa: E402
from npae.models import families as A  # noqa: E402

FAMILIES = ("ordinary", "multilayer", "convolutional")


def matmul_peak(n=2048, repeat=10) -> float:
    """Best GFLOP/s of an n x n float32 matmul (NumPy's BLAS on this machine, this run)."""
    a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    a @ a
    best = min(_timed(lambda: a @ a) for _ in range(repeat))
    return 2 * n**3 / best / 1e9


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def npae_epoch(family, x, batch, seed=0) -> float:
    model = A.FAMILIES[family](rng=np.random.default_rng(seed))
    opt = npae.optim.Adam(model.named_params())
    rng = np.random.default_rng(seed)
    t = time.perf_counter()
    order = rng.permutation(len(x))
    for start in range(0, len(x), batch):
        model.loss_and_grads(x[order[start:start + batch]], rng)
        opt.step()
    return time.perf_counter() - t


def torch_model(family):
    import torch.nn as nn

    if family == "ordinary":
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 784), nn.Sigmoid())
    if family == "multilayer":
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(),
                             nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 784), nn.Sigmoid())

    def conv(a, b, pad=1):
        return [nn.Conv2d(a, b, 3, padding=pad), nn.ReLU()]

    pool = lambda: nn.MaxPool2d(2, ceil_mode=True)  # noqa: E731  ("same" for pool 2: 7 -> 4)
    up = lambda: nn.Upsample(scale_factor=2, mode="nearest")  # noqa: E731
    return nn.Sequential(*conv(1, 16), pool(), *conv(16, 8), pool(), *conv(8, 8), pool(),
                         *conv(8, 8), up(), *conv(8, 8), up(), *conv(8, 16, pad=0), up(),
                         nn.Conv2d(16, 1, 3, padding=1), nn.Sigmoid())


def torch_epoch(family, x, batch, seed=0) -> float:
    import torch

    torch.manual_seed(seed)
    model = torch_model(family)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    xt = torch.from_numpy(x)
    g = torch.Generator().manual_seed(seed)
    t = time.perf_counter()
    order = torch.randperm(len(xt), generator=g)
    for start in range(0, len(xt), batch):
        xb = xt[order[start:start + batch]]
        opt.zero_grad()
        out = model(xb)
        loss = torch.nn.functional.mse_loss(out, xb.reshape(out.shape))
        loss.backward()
        opt.step()
    return time.perf_counter() - t


# VmHWM (the peak RSS of this address space) rather than ru_maxrss, which a child started
# by fork + exec inherits from its parent (here a process holding MNIST and torch).
MEMORY_CHILD = """
import numpy as np, npae
def hwm():
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM"))
x = np.random.default_rng(0).uniform(0, 1, ({batch}, 1, 28, 28)).astype(np.float32)
before = hwm()
model = npae.models.conv_families.convolutional(rng=np.random.default_rng(0))
opt = npae.optim.Adam(model.named_params())
for _ in range(5):
    model.loss_and_grads(x)
    opt.step()
print(before, hwm())
"""


def conv_training_peak_rss(batch) -> tuple[float, float]:
    """(MiB after imports, MiB peak) of a child process training the conv AE for 5 steps."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", MEMORY_CHILD.format(batch=batch)], capture_output=True,
                         text=True, check=True, env=env).stdout.split()
    return int(out[0]) / 1024, int(out[1]) / 1024


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=pathlib.Path, help="MNIST folder (default: cache, else the embedded sample)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=3,
                        help="epochs timed per family and library, interleaved (best is kept)")
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--no-torch", action="store_true")
    args = parser.parse_args(argv)

    data = npae.load_mnist(path=args.data)
    print(data.describe())
    (x, _), _ = data
    try:
        if args.no_torch:
            raise ImportError
        import torch

        torch.set_num_threads(os.cpu_count() or 1)
        ref = f"torch {torch.__version__} ({torch.get_num_threads()} threads)"
    except ImportError:
        torch = None
        ref = "no torch: npae alone"
    print(f"npae {npae.__version__}, numpy {np.__version__}; reference: {ref}; float32, batch {args.batch_size}, "
          f"{len(x):,} samples, {os.cpu_count()} cores")
    peak = matmul_peak()
    print(f"numpy float32 matmul peak (2048^3): {peak:.1f} GFLOP/s")

    print(f"\n{'family':<14} {'npae s/epoch':>13} {'torch s/epoch':>14} {'npae/torch':>11} {'npae samples/s':>15}")
    results = {}
    for fam in args.families.split(","):
        t_np = t_th = float("inf")
        for _ in range(args.epochs):  # interleaved, so both see the same machine; the best of each is kept
            t_np = min(t_np, npae_epoch(fam, x, args.batch_size))
            t_th = min(t_th, torch_epoch(fam, x, args.batch_size)) if torch else float("nan")
        results[fam] = (t_np, t_th)
        ratio = f"{t_np / t_th:11.2f}" if torch else f"{'-':>11}"
        th = f"{t_th:14.2f}" if torch else f"{'-':>14}"
        print(f"{fam:<14} {t_np:13.2f} {th} {ratio} {len(x) / t_np:15,.0f}", flush=True)

    if "ordinary" in results:
        params = 784 * 64 + 64 * 784
        flops = 6 * len(x) * params  # forward 2, backward 4 (dW and dx) multiply-adds per weight per sample
        achieved = flops / results["ordinary"][0] / 1e9
        print(f"\nordinary AE: {achieved:.1f} GFLOP/s in its matrix products = {achieved / peak:.0%} "
              f"of the matmul peak (whole epoch time, element-wise work included)")
    base, top = conv_training_peak_rss(args.batch_size)
    print(f"convolutional AE training, batch {args.batch_size}: peak RSS {top:.0f} MiB ({base:.0f} MiB after imports)")


if __name__ == "__main__":
    main()
