"""Adam and SGD against values computed by hand, step by step.

Step 2 and later matter: an Adam whose bias correction forgets the step count (uses
1 - beta**1 at every step) agrees with the real one at step 1 and only then drifts.
"""

import math

import numpy as np
import pytest

import npae
from npae.core import Param
from npae.optim import SGD, Adam, adam_update, sgd_update


def scalar_adam(w, grads, lr, b1, b2, eps):
    """Adam written out on Python floats, one line per equation of Kingma & Ba's Algorithm 1."""
    m = v = 0.0
    out = []
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat = m / (1 - b1**t)
        v_hat = v / (1 - b2**t)
        w = w - lr * m_hat / (math.sqrt(v_hat) + eps)
        out.append(w)
    return out


def test_adam_by_hand_two_steps():
    # w0 = 1, g = 0.5 then -0.2, lr 0.1, default betas, eps 1e-8:
    # t=1: m = 0.05, v = 0.00025, m_hat = 0.5, v_hat = 0.25  -> w1 = 1 - 0.1 * 0.5 / (0.5 + eps) ~ 0.9
    # t=2: m = 0.025, v = 0.00028975, m_hat = 0.025 / 0.19, v_hat = 0.00028975 / 0.001999
    #      -> w2 = 0.9 - 0.1 * 0.131578947... / 0.380719... = 0.865439...
    p = Param(np.array([1.0]))
    opt = Adam([("w", p)], lr=0.1)
    p.grad[:] = 0.5
    opt.step()
    w1 = 1 - 0.1 * 0.5 / (0.5 + 1e-8)  # 0.900000002
    assert p.value[0] == pytest.approx(w1, rel=1e-15)
    p.grad[:] = -0.2
    opt.step()
    m_hat, v_hat = 0.025 / 0.19, 0.00028975 / 0.001999
    assert p.value[0] == pytest.approx(w1 - 0.1 * m_hat / (math.sqrt(v_hat) + 1e-8), rel=1e-15)
    assert p.value[0] == pytest.approx(0.8654394, abs=1e-6)
    # an Adam missing the step count in its bias correction lands elsewhere:
    wrong = w1 - 0.1 * (0.025 / 0.1) / (math.sqrt(0.00028975 / 0.001) + 1e-8)
    assert abs(p.value[0] - wrong) > 1e-2
    assert opt.t == 2


def test_adam_matches_scalar_version_over_many_steps():
    rng = np.random.default_rng(0)
    grads = rng.standard_normal((8, 5))
    w0 = rng.standard_normal(5)
    p = Param(w0.copy())
    opt = Adam([("w", p)], lr=0.05, beta1=0.8, beta2=0.99, eps=1e-6)
    for step, g in enumerate(grads):
        p.grad[:] = g
        opt.step()
        expected = [scalar_adam(w0[i], grads[: step + 1, i], 0.05, 0.8, 0.99, 1e-6)[-1] for i in range(5)]
        np.testing.assert_allclose(p.value, expected, rtol=1e-12, atol=1e-14)


def test_adam_constant_gradient_moves_lr_times_sign():
    g = np.array([3.0, -0.01, 250.0, -7.0])
    p = Param(np.zeros(4))
    opt = Adam([("w", p)], lr=1e-3)
    for _ in range(10):
        before = p.value.copy()
        p.grad[:] = g
        opt.step()
        np.testing.assert_allclose(p.value - before, -1e-3 * np.sign(g), rtol=1e-5)


def test_sgd_by_hand():
    p = Param(np.array([1.0, -2.0]))
    opt = SGD([("w", p)], lr=0.1, momentum=0.9)
    p.grad[:] = [0.5, 1.0]
    opt.step()  # v1 = g1, w1 = w0 - lr * g1
    np.testing.assert_allclose(p.value, [0.95, -2.1], rtol=1e-15)
    p.grad[:] = [-1.0, 0.0]
    opt.step()  # v2 = 0.9 * v1 + g2 = [-0.55, 0.9], w2 = w1 - 0.1 * v2
    np.testing.assert_allclose(p.value, [1.005, -2.19], rtol=1e-14)
    plain = Param(np.array([1.0]))
    sgd = SGD({"w": plain}, lr=0.5)
    plain.grad[:] = 2.0
    sgd.step()
    sgd.step()
    assert plain.value[0] == -1.0


def test_update_rules_are_pure():
    w, g, m, v = np.ones(3), np.full(3, 0.5), np.zeros(3), np.zeros(3)
    copies = [a.copy() for a in (w, g, m, v)]
    adam_update(w, g, m, v, 1, 0.1, 0.9, 0.999, 1e-8)
    sgd_update(w, g, v, 0.1, 0.9)
    for a, b in zip((w, g, m, v), copies):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="counts from 1"):
        adam_update(w, g, m, v, 0, 0.1, 0.9, 0.999, 1e-8)


def test_optimizer_keeps_float32_and_array_identity():
    layer = npae.Dense(4, 3, rng=np.random.default_rng(0))
    w = layer.W
    opt = Adam(layer.named_params())
    layer.params["W"].grad[...] = 1.0
    opt.step()
    assert layer.W is w and w.dtype == np.float32
    assert all(a.dtype == np.float32 for a in opt.state_dict().values() if a.ndim > 0)


@pytest.mark.parametrize("make", [lambda ps: Adam(ps, lr=0.01), lambda ps: SGD(ps, lr=0.05, momentum=0.9)])
def test_state_roundtrip_resumes_bit_for_bit(make):
    rng = np.random.default_rng(1)
    grads = rng.standard_normal((6, 4, 3)).astype(np.float32)

    def run(layer, opt, steps):
        for g in steps:
            opt.zero_grad()
            layer.params["W"].grad += g
            layer.params["b"].grad += g.sum(0)
            opt.step()

    a = npae.Dense(4, 3, rng=np.random.default_rng(2))
    opt_a = make(a.named_params())
    run(a, opt_a, grads)  # six uninterrupted steps

    b = npae.Dense(4, 3, rng=np.random.default_rng(2))
    opt_b = make(b.named_params())
    run(b, opt_b, grads[:3])
    saved_w = {n: p.value.copy() for n, p in b.named_params()}
    state = opt_b.state_dict()
    c = npae.Dense(4, 3, rng=np.random.default_rng(99))  # a fresh process would rebuild the model
    for n, p in c.named_params():
        p.value[...] = saved_w[n]
    opt_c = make(c.named_params())
    opt_c.load_state_dict(state)
    run(c, opt_c, grads[3:])
    for (n, pa), (_, pc) in zip(a.named_params(), c.named_params()):
        np.testing.assert_array_equal(pa.value, pc.value, err_msg=n)
    assert opt_c.t == 6


def test_load_state_rejects_mismatch():
    layer = npae.Dense(4, 3)
    opt = Adam(layer.named_params())
    other = Adam(npae.Dense(5, 3).named_params())
    with pytest.raises(ValueError, match="m/W"):
        opt.load_state_dict(other.state_dict())
    state = opt.state_dict()
    del state["step"]
    with pytest.raises(ValueError, match="missing"):
        opt.load_state_dict(state)


@pytest.mark.parametrize("kwargs, match", [
    ({"lr": -1}, "lr"), ({"beta1": 1.0}, "beta1"), ({"beta2": -0.1}, "beta2"), ({"eps": float("nan")}, "eps"),
])
def test_adam_bad_hyperparameters(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        Adam(npae.Dense(2, 2).named_params(), **kwargs)


def test_optimizer_bad_params():
    with pytest.raises(ValueError, match="no parameters"):
        Adam([])
    with pytest.raises(TypeError, match="named_params"):
        Adam([np.zeros(3)])
    with pytest.raises(ValueError, match="momentum"):
        SGD(npae.Dense(2, 2).named_params(), lr=0.1, momentum=1.5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_in_place_adam_equals_the_pure_rule_bit_for_bit(dtype):
    rng = np.random.default_rng(0)
    w0 = rng.standard_normal((7, 5)).astype(dtype)
    p = Param(w0.copy())
    opt = Adam([("w", p)], lr=0.01)
    w, m, v = w0.copy(), np.zeros_like(w0), np.zeros_like(w0)
    for t in range(1, 6):
        g = rng.standard_normal(w0.shape).astype(dtype)
        p.grad[...] = g
        opt.step()
        w, m, v = adam_update(w, g, m, v, t, 0.01, 0.9, 0.999, 1e-8)
        np.testing.assert_array_equal(p.value, w)
        np.testing.assert_array_equal(opt.state["m"]["w"], m)
        np.testing.assert_array_equal(opt.state["v"]["w"], v)
