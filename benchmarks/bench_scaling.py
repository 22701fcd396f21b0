"""Convolution at scale: npae beside PyTorch on wider layers and a CIFAR-sized model, one thread a side.

    python benchmarks/bench_scaling.py [--repeat 7] [--no-memory] [--no-threads] [--no-torch]

1. Conv2D 3x3 "same", forward + backward (dW, db and dx), at the shapes of the table in
   benchmarks/README.md, batch 64 and 256: npae and torch.nn.functional.conv2d interleaved
   in one process, best and median of ``--repeat`` rounds, and the ratio of the medians.
2. A training step (forward, MSE, backward, Adam) of a CIFAR-sized convolutional
   autoencoder: 3x32x32 -> Conv 32, pool -> Conv 64, pool -> Conv 128, pool (code 128x4x4)
   -> Conv 64, up -> Conv 32, up -> Conv 32, up -> Conv 3, sigmoid; the same in torch.
3. Peak memory (the child's peak RSS, VmHWM) of 3 training steps in a fresh subprocess
   that imports one library only, for the article's convolutional autoencoder and the
   CIFAR-sized one at batch 256 and 1024.
4. The CIFAR-sized step with 1 and with 2 threads (OPENBLAS_NUM_THREADS, set before NumPy
   starts, in a subprocess each).

Threads: this process runs with one thread a side (OPENBLAS/OMP/MKL_NUM_THREADS=1 before
NumPy is imported, torch.set_num_threads(1)). torch is never needed (``--no-torch``).
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import pathlib  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import npae  # noqa: E402

SHAPES = [(16, 8, 14), (8, 8, 7), (32, 64, 16), (64, 128, 8), (128, 128, 4), (128, 64, 8), (64, 32, 16)]
#: the kernels timed beside the one npae chooses: 3x3 stride 1, so every shape here
WINOGRAD = ("winograd", "winograd4")
BATCHES = (64, 256)


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def interleaved(fns: dict, repeat: int) -> dict:
    """``{name: (best, median)}`` seconds, the functions run in turn ``repeat`` times after a warm-up."""
    for fn in fns.values():
        fn()
    times = {k: [] for k in fns}
    for _ in range(repeat):
        for k, fn in fns.items():
            times[k].append(timed(fn))
    return {k: (min(v), float(np.median(v))) for k, v in times.items()}


# -- 1. single layers ----------------------------------------------------------------------------------
def layer_pair(c_in, c_out, hw, batch, use_torch, rng):
    layer = npae.Conv2D(c_in, c_out, 3, rng=rng)
    x = rng.standard_normal((batch, c_in, hw, hw)).astype(np.float32)
    dy = rng.standard_normal((batch, c_out, hw, hw)).astype(np.float32)

    def ours():
        layer.forward(x)
        layer.backward(dy)

    fns = {"npae": ours}
    for name in WINOGRAD:  # the same layer, by the Winograd kernels (issue 27): interleaved with the rest
        twin = npae.Conv2D(c_in, c_out, 3, rng=np.random.default_rng(0))
        twin.params["W"].value[...] = layer.W
        twin.kernel = name

        def run(twin=twin):
            twin.forward(x)
            twin.backward(dy)

        fns[name] = run
    if use_torch:
        import torch

        xt = torch.from_numpy(x).requires_grad_(True)
        wt = torch.from_numpy(layer.W.copy()).requires_grad_(True)
        bt = torch.zeros(c_out, requires_grad=True)
        dyt = torch.from_numpy(dy)

        def theirs():
            torch.nn.functional.conv2d(xt, wt, bt, padding=1).backward(dyt)

        fns["torch"] = theirs
    return fns, layer


def bench_layers(repeat, use_torch):
    rng = np.random.default_rng(0)
    print(f"\n1. Conv2D 3x3 same, forward + backward (ms), one thread a side, best / median of {repeat}")
    print(f"{'shape':<18} {'batch':>5} {'kernel':>10} {'npae':>16} {'torch':>16} {'npae/torch':>11}"
          + "".join(f" {name + '/torch':>15}" for name in WINOGRAD))
    rows = []
    for c_in, c_out, hw in SHAPES:
        for batch in BATCHES:
            fns, layer = layer_pair(c_in, c_out, hw, batch, use_torch, rng)
            r = interleaved(fns, repeat)
            a, b = r["npae"], r.get("torch", (float("nan"),) * 2)
            ratio = a[1] / b[1]
            kernel = layer.kernel_for((hw, hw), batch)
            wino = {name: r[name][1] / b[1] for name in WINOGRAD}
            rows.append({"shape": f"{c_in} -> {c_out} @ {hw}", "batch": batch, "kernel": kernel,
                         "npae": a, "torch": b, "ratio": ratio, **{name: r[name] for name in WINOGRAD}})
            print(f"{c_in:>3} -> {c_out:<3} @ {hw:<3}   {batch:>5} {kernel:>10} {a[0] * 1e3:7.1f} /{a[1] * 1e3:7.1f} "
                  f"{b[0] * 1e3:7.1f} /{b[1] * 1e3:7.1f} {ratio:11.2f}" + "".join(f" {v:15.2f}" for v in wino.values()))
    return rows


# -- 2. the CIFAR-sized model --------------------------------------------------------------------------
def cifar_npae(rng, dtype=np.float32):
    from npae import Conv2D, MaxPool2D, ReLU, Sequential, Sigmoid, UpSampling2D

    def conv(a, b, act=ReLU):
        return [Conv2D(a, b, 3, rng=rng, dtype=dtype), act()]

    enc = Sequential(*conv(3, 32)[:1], MaxPool2D(2), ReLU(), *conv(32, 64)[:1], MaxPool2D(2), ReLU(),
                     *conv(64, 128)[:1], MaxPool2D(2), ReLU())
    dec = Sequential(*conv(128, 64), UpSampling2D(2), *conv(64, 32), UpSampling2D(2), *conv(32, 32), UpSampling2D(2),
                     *conv(32, 3, Sigmoid))
    return npae.Autoencoder(enc, dec, input_shape=(3, 32, 32), name="cifar")


def cifar_torch(model):
    import torch
    import torch.nn as nn

    layers = []
    for layer in list(model.encoder) + list(model.decoder):
        if isinstance(layer, npae.Conv2D):
            conv = nn.Conv2d(layer.c_in, layer.c_out, 3, padding=1)
            with torch.no_grad():
                conv.weight[...] = torch.from_numpy(layer.W)
                conv.bias.zero_()
            layers.append(conv)
        elif isinstance(layer, npae.MaxPool2D):
            layers.append(nn.MaxPool2d(2))
        elif isinstance(layer, npae.UpSampling2D):
            layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
        elif isinstance(layer, npae.ReLU):
            layers.append(nn.ReLU())
        else:
            layers.append(nn.Sigmoid())
    return nn.Sequential(*layers)


def model_steps(kind: str, batch: int, use_torch: bool):
    """``{name: step function}`` for the article's ("article") or the CIFAR-sized ("cifar") model."""
    rng = np.random.default_rng(0)
    if kind == "cifar":
        model = cifar_npae(np.random.default_rng(1))
    else:
        model = npae.models.conv_families.convolutional(rng=np.random.default_rng(1))
    x = rng.random((batch,) + model.input_shape).astype(np.float32)
    opt = npae.optim.Adam(model.named_params())

    def ours():
        model.loss_and_grads(x)
        opt.step()

    twin = cifar_npae(np.random.default_rng(1)) if kind == "cifar" else \
        npae.models.conv_families.convolutional(rng=np.random.default_rng(1))
    twin_opt = npae.optim.Adam(twin.named_params())

    def before():  # the same step with the kernel rule of before Winograd (issue 27)
        with without_winograd():
            twin.loss_and_grads(x)
            twin_opt.step()

    fns = {"npae": ours, "before": before}
    if use_torch:
        import torch

        net = cifar_torch(model) if kind == "cifar" else _article_torch(model)
        topt = torch.optim.Adam(net.parameters(), lr=1e-3)
        xt = torch.from_numpy(x)

        def theirs():
            topt.zero_grad()
            torch.nn.functional.mse_loss(net(xt), xt).backward()
            topt.step()

        fns["torch"] = theirs
    return fns


def _article_torch(model):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_train import torch_model

    return torch_model("convolutional")


class without_winograd:
    """The kernel rule as it was before the Winograd kernels: ``winograd_pays`` says no, for a while."""

    def __enter__(self):
        self.saved = npae.nn.kernels.winograd_pays
        npae.nn.kernels.winograd_pays = lambda *args: None

    def __exit__(self, *exc):
        npae.nn.kernels.winograd_pays = self.saved


def bench_models(repeat, use_torch):
    print(f"\n2. a training step (forward, MSE, backward, Adam), ms, one thread a side, best / median of {repeat}")
    print(f"{'model':<34} {'batch':>5} {'npae':>16} {'before':>16} {'torch':>16} {'npae/torch':>11} "
          f"{'before/torch':>13}")
    rows = []
    for kind, label in (("cifar", "CIFAR-sized, 3x32x32, 32-64-128"), ("article", "the article's conv AE, 1x28x28")):
        for batch in BATCHES:
            r = interleaved(model_steps(kind, batch, use_torch), max(3, repeat // 2))
            a, p, b = r["npae"], r["before"], r.get("torch", (float("nan"),) * 2)
            rows.append({"model": kind, "batch": batch, "npae": a, "before": p, "torch": b, "ratio": a[1] / b[1]})
            print(f"{label:<34} {batch:>5} {a[0] * 1e3:7.1f} /{a[1] * 1e3:7.1f} {p[0] * 1e3:7.1f} /{p[1] * 1e3:7.1f} "
                  f"{b[0] * 1e3:7.1f} /{b[1] * 1e3:7.1f} {a[1] / b[1]:11.2f} {p[1] / b[1]:13.2f}")
    return rows


# -- 3. memory, 4. threads: in fresh subprocesses -----------------------------------------------------
CHILD = """
import os, sys, json, time
sys.path.insert(0, {root!r}); sys.path.insert(0, {bench!r})
lib, kind, batch, steps = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
import bench_scaling as B
fns = B.model_steps(kind, batch, use_torch=(lib == "torch"))
if lib == "torch":
    import torch; torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
fn = fns[lib]
def hwm():
    return int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1]) / 1024
before = hwm()  # the library, the model, the optimizer and the batch: before any step
fn()
t = min(B.timed(fn) for _ in range(steps))
print(json.dumps({{"peak_mib": hwm(), "before_mib": before, "step_s": t}}))
"""


def child(lib, kind, batch, steps, threads=1) -> dict:
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads))
    code = CHILD.format(root=str(ROOT), bench=str(ROOT / "benchmarks"))
    out = subprocess.run([sys.executable, "-c", code, lib, kind, str(batch), str(steps)], env=env,
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def bench_memory(use_torch):
    print("\n3. peak memory (MiB): VmHWM of a fresh process after 3 steps, and what the steps added to the peak")
    print("   before them (the library, the model, the optimizer and the batch)")
    print(f"{'model':<10} {'batch':>6} {'npae peak':>10} {'torch peak':>11} {'npae steps':>11} {'torch steps':>12}")
    rows = []
    nan = {"peak_mib": float("nan"), "before_mib": float("nan")}
    for kind in ("article", "cifar"):
        for batch in (256, 1024):
            a = child("npae", kind, batch, 2)
            b = child("torch", kind, batch, 2) if use_torch else nan
            da, db = a["peak_mib"] - a["before_mib"], b["peak_mib"] - b["before_mib"]
            rows.append({"model": kind, "batch": batch, "npae": a, "torch": b})
            print(f"{kind:<10} {batch:>6} {a['peak_mib']:10.0f} {b['peak_mib']:11.0f} {da:11.0f} {db:12.0f}")
    return rows


def bench_threads():
    print("\n4. the CIFAR-sized step, batch 256, npae with 1 and 2 threads (s, best of 3)")
    rows = {t: child("npae", "cifar", 256, 3, threads=t)["step_s"] for t in (1, 2)}
    print(f"1 thread {rows[1]:.3f} s, 2 threads {rows[2]:.3f} s: x{rows[1] / rows[2]:.2f}")
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--no-layers", action="store_true")
    parser.add_argument("--no-models", action="store_true")
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--no-threads", action="store_true")
    args = parser.parse_args(argv)
    use_torch = not args.no_torch
    if use_torch:
        try:
            import torch

            torch.set_num_threads(1)
        except ImportError:
            use_torch = False
    print(f"npae {npae.__version__}, numpy {np.__version__}"
          + (f", torch {torch.__version__}" if use_torch else ", without torch") + ", float32")
    if not args.no_layers:
        bench_layers(args.repeat, use_torch)
    if not args.no_models:
        bench_models(args.repeat, use_torch)
    if not args.no_memory:
        bench_memory(use_torch)
    if not args.no_threads:
        bench_threads()


if __name__ == "__main__":
    main()
