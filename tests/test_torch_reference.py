"""Optional: npae against PyTorch, when torch happens to be installed (skipped otherwise).

torch is never a dependency of npae or of its tests; this is a second, independent
reference beside the loop versions and the finite differences."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from test_winograd import assert_matches_the_loops, assert_transposed_matches_the_loops  # noqa: E402

import npae  # noqa: E402


def t(a, grad=False):
    return torch.tensor(a, dtype=torch.float64, requires_grad=grad)


@pytest.mark.parametrize("k, stride, padding", [(3, 1, 1), (3, 2, 1), (2, 2, 0), (5, 1, 2), (3, 1, "same"), (1, 3, 0)])
def test_conv2d(k, stride, padding):
    rng = np.random.default_rng(0)
    layer = npae.Conv2D(3, 4, k, stride=stride, padding=padding, rng=rng, dtype=np.float64)
    layer.params["b"].value[...] = rng.standard_normal(4)
    x = rng.standard_normal((2, 3, 9, 8))
    y = layer.forward(x)
    dy = rng.standard_normal(y.shape)
    dx = layer.backward(dy)
    xt, wt, bt = t(x, True), t(layer.W, True), t(layer.b, True)
    yt = F.conv2d(xt, wt, bt, stride=stride, padding=padding)
    yt.backward(t(dy))
    np.testing.assert_allclose(y, yt.detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(dx, xt.grad.numpy(), atol=1e-12)
    np.testing.assert_allclose(layer.params["W"].grad, wt.grad.numpy(), atol=1e-11)
    np.testing.assert_allclose(layer.params["b"].grad, bt.grad.numpy(), atol=1e-12)


@pytest.mark.parametrize("k, stride, padding", [(2, 2, 0), (3, 2, 1), (3, 1, 0), (2, 1, 1)])
def test_maxpool2d(k, stride, padding):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 9, 8))  # continuous values: no ties
    layer = npae.MaxPool2D(k, stride=stride, padding=padding)
    y = layer.forward(x)
    dy = rng.standard_normal(y.shape)
    xt = t(x, True)
    yt = F.max_pool2d(xt, k, stride=stride, padding=padding)
    yt.backward(t(dy))
    np.testing.assert_array_equal(y, yt.detach().numpy())
    np.testing.assert_allclose(layer.backward(dy), xt.grad.numpy(), atol=1e-12)


def test_upsampling_nearest():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 4, 5))
    layer = npae.UpSampling2D(2)
    y = layer.forward(x)
    dy = rng.standard_normal(y.shape)
    xt = t(x, True)
    yt = F.interpolate(xt, scale_factor=2, mode="nearest")
    yt.backward(t(dy))
    np.testing.assert_array_equal(y, yt.detach().numpy())
    np.testing.assert_allclose(layer.backward(dy), xt.grad.numpy(), atol=1e-12)


def test_losses():
    rng = np.random.default_rng(3)
    p = rng.uniform(0, 1, (4, 6))
    p[0, :3] = [0.0, 1.0, 0.5]
    y = rng.uniform(0, 1, (4, 6))
    y[0, :2] = [1.0, 0.0]  # certain and wrong: the clamps matter here
    for ours, theirs in ((npae.mse, F.mse_loss), (npae.bce, F.binary_cross_entropy)):
        value, grad = ours(p, y)
        pt = t(p, True)
        lt = theirs(pt, t(y))
        lt.backward()
        assert value == pytest.approx(lt.item(), rel=1e-12)
        # torch clamps p(1 - p) at float32(1e-12) = 9.99999996e-13, we at the double 1e-12:
        # the clamped entries (p = 0 or 1) differ by exactly that ratio, 4e-9; the rest agree
        interior = (p > 0) & (p < 1)
        np.testing.assert_allclose(grad[interior], pt.grad.numpy()[interior], rtol=1e-12)
        np.testing.assert_allclose(grad[~interior], pt.grad.numpy()[~interior], rtol=5e-9)


def test_adam_matches_torch_over_steps():
    rng = np.random.default_rng(4)
    w0 = rng.standard_normal(6)
    grads = rng.standard_normal((12, 6))
    p = npae.Param(w0.copy())
    ours = npae.optim.Adam([("w", p)], lr=0.01, beta1=0.85, beta2=0.99, eps=1e-6)
    wt = t(w0, True)
    theirs = torch.optim.Adam([wt], lr=0.01, betas=(0.85, 0.99), eps=1e-6)
    for g in grads:
        p.grad[:] = g
        ours.step()
        wt.grad = t(g)
        theirs.step()
        np.testing.assert_allclose(p.value, wt.detach().numpy(), rtol=1e-12, atol=1e-15)


def test_sgd_momentum_matches_torch():
    rng = np.random.default_rng(5)
    w0, grads = rng.standard_normal(4), rng.standard_normal((5, 4))
    p = npae.Param(w0.copy())
    ours = npae.optim.SGD([("w", p)], lr=0.1, momentum=0.9)
    wt = t(w0, True)
    theirs = torch.optim.SGD([wt], lr=0.1, momentum=0.9)
    for g in grads:
        p.grad[:] = g
        ours.step()
        wt.grad = t(g)
        theirs.step()
    np.testing.assert_allclose(p.value, wt.detach().numpy(), rtol=1e-13)


@pytest.mark.parametrize("k, stride, padding, output_padding", [(3, 2, 1, 1), (2, 2, 0, 0), (4, 3, 1, 2), (3, 1, 1, 0)])
def test_conv_transpose2d(k, stride, padding, output_padding):
    rng = np.random.default_rng(2)
    layer = npae.ConvTranspose2D(3, 2, k, stride=stride, padding=padding, output_padding=output_padding, rng=rng,
                                 dtype=np.float64)
    layer.params["b"].value[...] = rng.standard_normal(2)
    x = rng.standard_normal((2, 3, 5, 4))
    y = layer.forward(x)
    dy = rng.standard_normal(y.shape)
    dx = layer.backward(dy)
    xt, wt, bt = t(x, True), t(layer.W, True), t(layer.b, True)
    yt = F.conv_transpose2d(xt, wt, bt, stride=stride, padding=padding, output_padding=output_padding)
    yt.backward(t(dy))
    np.testing.assert_allclose(y, yt.detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(dx, xt.grad.numpy(), atol=1e-12)
    np.testing.assert_allclose(layer.params["W"].grad, wt.grad.numpy(), atol=1e-11)
    np.testing.assert_allclose(layer.params["b"].grad, bt.grad.numpy(), atol=1e-12)


def by_torch(transposed):
    """torch's (y, dx, dW, db) for a stride-1 convolution (or transposed convolution) in float64."""
    def reference(x, W, b, dy, padding):
        xt, wt, bt = t(x, True), t(W, True), t(b, True)
        yt = (F.conv_transpose2d if transposed else F.conv2d)(xt, wt, bt, padding=padding)
        yt.backward(t(dy))
        return yt.detach().numpy(), xt.grad.numpy(), wt.grad.numpy(), bt.grad.numpy()
    return reference


@pytest.mark.parametrize("name", ["winograd", "winograd4"])
@pytest.mark.parametrize("padding", ["same", "valid", 1])
def test_conv2d_by_winograd(name, padding):
    """To the rounding bound of tests/test_winograd.py: torch's float64 sum is a direct one, like the loops'."""
    rng = np.random.default_rng(7)
    x, W, b = rng.standard_normal((2, 3, 9, 8)), rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    out = {"same": (9, 8), "valid": (7, 6), 1: (9, 8)}[padding]
    assert_matches_the_loops(name, x, W, b, rng.standard_normal((2, 4) + out), padding, npae.nn.kernels.Scratch(),
                             reference=by_torch(False))


@pytest.mark.parametrize("name", ["winograd", "winograd4"])
@pytest.mark.parametrize("padding", [0, 1, 2])
def test_conv_transpose2d_by_winograd(name, padding):
    rng = np.random.default_rng(8)
    layer = npae.ConvTranspose2D(3, 4, 3, padding=padding, rng=rng, dtype=np.float64)
    layer.params["b"].value[...] = rng.standard_normal(4)
    layer.kernel = name
    assert_transposed_matches_the_loops(layer, rng.standard_normal((2, 3, 6, 5)), rng, reference=by_torch(True))


@pytest.mark.parametrize("k, stride, padding", [(2, 2, 0), (3, 2, 1), (3, 1, 1)])
def test_avgpool2d(k, stride, padding):
    rng = np.random.default_rng(3)
    layer = npae.AvgPool2D(k, stride=stride, padding=padding)
    x = rng.standard_normal((2, 3, 7, 6))
    y = layer.forward(x)
    dy = rng.standard_normal(y.shape)
    xt = t(x, True)
    yt = F.avg_pool2d(xt, k, stride, padding=padding, count_include_pad=True)
    yt.backward(t(dy))
    np.testing.assert_allclose(y, yt.detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(layer.backward(dy), xt.grad.numpy(), atol=1e-12)


@pytest.mark.parametrize("cls, tcls, shape", [(npae.BatchNorm1D, torch.nn.BatchNorm1d, (8, 4)),
                                               (npae.BatchNorm2D, torch.nn.BatchNorm2d, (3, 4, 5, 2))])
def test_batchnorm_training_running_statistics_and_inference(cls, tcls, shape):
    rng = np.random.default_rng(4)
    layer = cls(4, momentum=0.3, dtype=np.float64)
    layer.params["gamma"].value[...] = rng.uniform(0.5, 2, 4)
    layer.params["beta"].value[...] = rng.standard_normal(4)
    ref = tcls(4, momentum=0.3, eps=1e-5).double()
    with torch.no_grad():
        ref.weight[...] = t(layer.params["gamma"].value)
        ref.bias[...] = t(layer.params["beta"].value)
    for step in range(3):
        x = rng.standard_normal(shape) * 2 + step
        y = layer.forward(x)
        dy = rng.standard_normal(shape)
        layer.zero_grad()
        dx = layer.backward(dy)
        xt = t(x, True)
        ref.zero_grad()
        yt = ref(xt)
        yt.backward(t(dy))
        np.testing.assert_allclose(y, yt.detach().numpy(), atol=1e-12)
        np.testing.assert_allclose(dx, xt.grad.numpy(), atol=1e-11)
        np.testing.assert_allclose(layer.params["gamma"].grad, ref.weight.grad.numpy(), atol=1e-11)
        np.testing.assert_allclose(layer.params["beta"].grad, ref.bias.grad.numpy(), atol=1e-11)
    np.testing.assert_allclose(layer.buffers["running_mean"], ref.running_mean.numpy(), rtol=1e-12)
    np.testing.assert_allclose(layer.buffers["running_var"], ref.running_var.numpy(), rtol=1e-12)
    ref.eval()
    x = rng.standard_normal(shape)
    np.testing.assert_allclose(layer.forward(x, training=False), ref(t(x)).detach().numpy(), atol=1e-12)


def test_the_new_activations():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 7)) * 3
    for layer, fn in ((npae.ELU(0.8), lambda v: F.elu(v, alpha=0.8)),
                      (npae.GELU(), lambda v: F.gelu(v, approximate="tanh")),
                      (npae.Softplus(), F.softplus)):
        y = layer.forward(x)
        dy = rng.standard_normal(y.shape)
        xt = t(x, True)
        yt = fn(xt)
        yt.backward(t(dy))
        np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(layer.backward(dy), xt.grad.numpy(), rtol=1e-10, atol=1e-12)
