"""The built-in checks that ``python -m npae gradcheck`` runs (float64, small shapes).

1. Every registered layer, through the examples its class gives (``Layer.examples``),
   against central differences: ``check_layer`` on the input and every parameter.
2. A composite conv-relu-pool-up-sigmoid stack, every loss and every penalty.
3. Whole objectives: the contractive autoencoder with a sigmoid and a ReLU code (the
   penalty's two gradient parts), the VAE's -ELBO with eps fixed.
4. Every layer that names a loop definition (``Layer.reference``: convolution, transposed
   convolution, pooling, upsampling, batch normalization) against those loops in
   :mod:`npae.nn.reference`, and every Conv2D kernel of ``npae.nn.kernels.KERNELS``
   (relative to the scale of the result, see ``rel_error``).

A new layer joins (1) by being registered with examples; one with a loop definition adds its
check to (4); tests/test_structure.py says when one is missing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from ..core import LAYERS, Sequential, away_from_zero, distinct_values
from ..models.families import contractive, vae
from ..nn import reference
from ..nn.activations import ReLU, Sigmoid
from ..nn.batchnorm import BatchNorm1D, BatchNorm2D
from ..nn.conv import Conv2D, ConvTranspose2D
from ..nn.layers import Dense
from ..nn.pooling import AvgPool2D, MaxPool2D, UpSampling2D
from ..objectives import losses, penalties
from .gradcheck import KINKED, Entry, GradcheckReport, check_function, check_layer, check_model, rel_error

#: the loop references hold the fast kernels to the rounding of sums of a few hundred terms
REFERENCE_TOLERANCE = 1e-12


def _conv(rng, *a, **k) -> Conv2D:
    c = Conv2D(*a, rng=rng, dtype=np.float64, **k)
    c.params["b"].value[...] = rng.standard_normal(c.b.shape)
    return c


def _layer_checks(rng) -> Iterator[tuple[str, Callable]]:
    for cls in LAYERS.values():
        for title, layer, x in cls.examples(rng):
            yield title, lambda layer=layer, x=x, title=title: check_layer(layer, x, rng=rng, title=title)
    stack = Sequential(_conv(rng, 1, 2, 3), ReLU(), MaxPool2D(2, padding="same"), UpSampling2D(2),
                       _conv(rng, 2, 1, 3, padding="valid"), Sigmoid())
    x = rng.standard_normal((2, 1, 5, 5))
    title = "Sequential conv-relu-pool-up-sigmoid"
    yield title, lambda: check_layer(stack, x, rng=rng, title=title)


def _function_checks(rng) -> Iterator[tuple[str, Callable]]:
    target = rng.uniform(0, 1, (3, 5))
    yield "mse", lambda: check_function(lambda p: losses.mse(p, target), rng.uniform(0, 1, (3, 5)), title="mse")
    yield "bce", lambda: check_function(lambda p: losses.bce(p, target), rng.uniform(0.05, 0.95, (3, 5)), title="bce")
    labels = rng.dirichlet(np.ones(5), 3)  # rows that are probability vectors, not only one-hot
    logits = 3 * rng.standard_normal((3, 5))
    yield "softmax_cross_entropy", lambda: check_function(lambda z: losses.softmax_cross_entropy(z, labels), logits,
                                                          title="softmax_cross_entropy")
    l1 = penalties.L1Activity(0.3)
    yield "L1Activity", lambda: check_function(l1, away_from_zero((4, 6), rng), threshold=KINKED,
                                               kink=l1.kink_state, title="L1Activity(0.3)")
    kl = penalties.KLSparsity(0.1, 2.0)
    yield "KLSparsity", lambda: check_function(kl, rng.uniform(0.05, 0.95, (4, 6)), title="KLSparsity(0.1, 2.0)")
    dense = Dense(4, 3, rng=rng, dtype=np.float64)
    wd = penalties.WeightDecay(0.7)

    def wd_check(w):
        dense.params["W"].value = w
        value, grads = wd(dense.named_params())
        return value, grads["W"]

    yield "WeightDecay", lambda: check_function(wd_check, rng.standard_normal((4, 3)), name="W",
                                                title="WeightDecay(0.7)")


def _model_checks(rng) -> Iterator[tuple[str, Callable]]:
    def small_model(make, title):
        model = make(np.random.default_rng(int(rng.integers(1 << 30))))
        for _, p in model.named_params():  # N(0, 1/fan_in): no unit at a kink or saturated
            p.value[...] = rng.normal(0, 1 / np.sqrt(p.shape[0] if p.value.ndim == 2 else 10), p.shape)
        return check_model(model, rng.uniform(0.05, 0.95, (4, 784)), seed=int(rng.integers(1 << 30)), title=title)

    for act in ("sigmoid", "relu"):
        title = f"Contractive(0.3), {act} code (whole objective)"
        yield title, lambda act=act, title=title: small_model(
            lambda r: contractive(6, lam=0.3, code_activation=act, rng=r, dtype=np.float64), title)
    title = "VAE, Bernoulli, latent 3 (whole -ELBO, eps fixed)"
    yield title, lambda: small_model(lambda r: vae(3, 12, rng=r, dtype=np.float64), title)


def _against_reference(title: str, pairs: list[tuple[str, np.ndarray, np.ndarray]]) -> GradcheckReport:
    return GradcheckReport(title, [Entry(name, rel_error(ours, ref), REFERENCE_TOLERANCE, ours.size)
                                   for name, ours, ref in pairs])


def _reference_checks(rng) -> Iterator[tuple[str, Callable]]:
    def conv(c_in, c_out, stride, padding, fast=True, kernel=None):
        layer = _conv(rng, c_in, c_out, 3, stride=stride, padding=padding)
        layer.fast, layer.kernel = fast, kernel
        x = rng.standard_normal((2, c_in, 7, 6))
        y = layer.forward(x)
        dy = rng.standard_normal(y.shape)
        dx = layer.backward(dy)
        dx_r, dW_r, db_r = reference.conv2d_backward(x, layer.W, dy, layer.stride, layer.padding)
        kernel = layer.kernel_for(y.shape[2:], len(x))
        title = f"Conv2D {c_in}->{c_out} stride {stride} {padding!r}: {kernel} kernel = reference"
        return _against_reference(title, [
            ("y", y, reference.conv2d_forward(x, layer.W, layer.b, layer.stride, layer.padding)),
            ("dx", dx, dx_r), ("dW", layer.params["W"].grad, dW_r), ("db", layer.params["b"].grad, db_r)])

    for c_in, c_out, stride, padding, fast in ((1, 6, 1, "same", True), (3, 4, 1, "same", True),
                                               (4, 1, 1, "valid", True), (2, 3, 2, "same", True),
                                               (3, 4, 1, 1, False), (32, 64, 2, "same", True)):
        title = f"reference: Conv2D {c_in}->{c_out}, stride {stride}, padding {padding!r}"
        yield title, lambda a=(c_in, c_out, stride, padding, fast): conv(*a)

    def pool(size, stride, padding, fast=True):
        layer = MaxPool2D(size, stride=stride, padding=padding)
        layer.fast = fast
        x = distinct_values((2, 3, 7, 6), rng)
        y = layer.forward(x)
        dy = rng.standard_normal(y.shape)
        y_r, dx_r = reference.maxpool_forward_backward(x, layer.pool_size, layer.stride, layer.padding, dy)
        title = f"MaxPool2D {size} stride {layer.stride} {padding!r} = reference"
        return _against_reference(title, [("y", y, y_r), ("dx", layer.backward(dy), dx_r)])

    yield "reference: MaxPool2D 2, 'same'", lambda: pool(2, None, "same")
    yield "reference: MaxPool2D 3, stride 2 (overlap)", lambda: pool(3, 2, "valid")

    def upsample():
        layer = UpSampling2D((2, 3))
        x = rng.standard_normal((2, 3, 4, 3))
        y = layer.forward(x)
        dy = rng.standard_normal(y.shape)
        return _against_reference("UpSampling2D (2, 3) = reference", [
            ("y", y, reference.upsample_forward(x, (2, 3))),
            ("dx", layer.backward(dy), reference.upsample_backward(dy, (2, 3)))])

    yield "reference: UpSampling2D (2, 3)", upsample

    def transpose(stride, padding, output_padding, kernel=None):
        layer = ConvTranspose2D(2, 3, 3, stride=stride, padding=padding, output_padding=output_padding, rng=rng,
                                dtype=np.float64)
        layer.params["b"].value[...] = rng.standard_normal(3)
        layer.kernel = kernel
        x = rng.standard_normal((2, 2, 4, 3))
        y = layer.forward(x)
        dy = rng.standard_normal(y.shape)
        args = (layer.stride, layer.padding, layer.output_padding)
        dx_r, dW_r, db_r = reference.conv_transpose2d_backward(x, layer.W, dy, *args)
        title = f"ConvTranspose2D stride {stride} padding {padding}: {layer.kernel_for(x.shape)} kernel = reference"
        return _against_reference(title, [
            ("y", y, reference.conv_transpose2d_forward(x, layer.W, layer.b, *args)),
            ("dx", layer.backward(dy), dx_r), ("dW", layer.params["W"].grad, dW_r),
            ("db", layer.params["b"].grad, db_r)])

    yield "reference: ConvTranspose2D 3x3, stride 2 (x2 up)", lambda: transpose(2, 1, 1)

    def avgpool():
        layer = AvgPool2D(3, stride=2, padding="same")
        x = rng.standard_normal((2, 3, 7, 6))
        y = layer.forward(x)
        dy = rng.standard_normal(y.shape)
        y_r, dx_r = reference.avgpool_forward_backward(x, layer.pool_size, layer.stride, layer.padding, dy)
        return _against_reference("AvgPool2D 3, stride 2, 'same' = reference",
                                  [("y", y, y_r), ("dx", layer.backward(dy), dx_r)])

    yield "reference: AvgPool2D 3, stride 2, 'same'", avgpool

    def batchnorm(cls, shape):
        layer = cls(shape[1], dtype=np.float64)
        layer.params["gamma"].value[...] = rng.uniform(0.5, 1.5, shape[1])
        layer.params["beta"].value[...] = rng.standard_normal(shape[1])
        x = rng.standard_normal(shape)
        y = layer.forward(x)
        dy = rng.standard_normal(y.shape)
        y_r, dx_r, dg_r, db_r = reference.batchnorm_forward_backward(x, layer.params["gamma"].value,
                                                                     layer.params["beta"].value, layer.eps, dy)
        return _against_reference(f"{cls.__name__} (training) = reference", [
            ("y", y, y_r), ("dx", layer.backward(dy), dx_r), ("dgamma", layer.params["gamma"].grad, dg_r),
            ("dbeta", layer.params["beta"].grad, db_r)])

    yield "reference: BatchNorm1D, training", lambda: batchnorm(BatchNorm1D, (6, 4))
    yield "reference: BatchNorm2D, training", lambda: batchnorm(BatchNorm2D, (3, 2, 4, 5))
    yield "reference: Conv2D 3->4, stride 1, 'same', winograd", lambda: conv(3, 4, 1, "same", kernel="winograd")
    yield "reference: Conv2D 3->4, stride 1, 'same', winograd4", lambda: conv(3, 4, 1, "same", kernel="winograd4")
    yield "reference: ConvTranspose2D 3x3, stride 1, winograd4", lambda: transpose(1, 1, 0, kernel="winograd4")

    def transpose_by_its_rule():  # last: the checks above draw what they drew before it was added
        layer = ConvTranspose2D(2, 3, 3, padding=1, rng=rng, dtype=np.float64)
        layer.params["b"].value[...] = rng.standard_normal(3)
        x = rng.standard_normal((2, 2, 5, 4))
        title = f"ConvTranspose2D 3x3 stride 1 padding 1 ({layer.kernel_for(x.shape)} kernel, by its rule)"
        return check_layer(layer, x, rng=rng, title=title)

    yield "ConvTranspose2D 3x3, stride 1, by its rule", transpose_by_its_rule


def builtin_checks(rng: np.random.Generator) -> Iterator[tuple[str, Callable[[], GradcheckReport]]]:
    """Yield ``(title, thunk)`` for every check of the suite; each thunk returns a GradcheckReport."""
    for group in (_layer_checks, _function_checks, _model_checks, _reference_checks):
        yield from group(rng)


def run_all(seed: int = 0, out: Callable[[str], object] = print) -> bool:
    """Run :func:`builtin_checks`, print every report, return True when all pass."""
    rng = np.random.default_rng(seed)
    ok, worst = True, []
    for title, thunk in builtin_checks(rng):
        report = thunk()
        out(str(report))
        ok &= report.passed
        worst.append((title, report.worst))
    out("\nworst relative error per check:")
    for title, w in worst:
        out(f"  {title:<50} {w:.2e}")
    out(f"\n{'all gradient checks passed' if ok else 'SOME GRADIENT CHECKS FAILED'}")
    return ok


