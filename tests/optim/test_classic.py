"""Adagrad, Adadelta, RMSprop, Rprop and ASGD beyond the table's PyTorch parity.

The kernels against their algorithm boxes written out of place (hypothesis), the
rules that 200 steps of parity do not pin down one by one (Rprop's sign-change
rule, ASGD's average, per-group settings), state keys, argument errors, and the
strict fake CuPy device.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import neural_arch as na
from neural_arch.optim import (ASGD, Adadelta, Adagrad, RMSprop, Rprop, adadelta_update,
                               adagrad_update, asgd_update, rmsprop_update, rprop_update)
from neural_arch.optim.asgd import asgd_schedule
from tests.optim.cases import get_case

CLASSIC = [get_case(name) for name in ("adagrad", "adadelta", "rmsprop", "rprop", "asgd")]

_rate = st.floats(0.0, 1.0)
_decay = st.floats(0.0, 1.0)


def _arrays(seed, n, shape=(3, 2)):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=shape) for _ in range(n)]


# ---- kernels against the boxes, out of place ------------------------------------------

@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**16), step=st.integers(1, 50), lr=_rate, lr_decay=_rate,
       wd=_rate, eps=st.floats(1e-12, 1.0), maximize=st.booleans())
def test_adagrad_kernel_follows_the_box(seed, step, lr, lr_decay, wd, eps, maximize):
    theta, grad, G = _arrays(seed, 3)
    G = np.abs(G)
    g = (-grad if maximize else grad) + wd * theta
    G_t = G + g * g
    expected = theta - lr / (1 + (step - 1) * lr_decay) * g / (np.sqrt(G_t) + eps)
    args = [x.copy() for x in (theta, grad, G)]
    adagrad_update(*args, step=step, lr=lr, lr_decay=lr_decay, weight_decay=wd, eps=eps,
                   maximize=maximize)
    np.testing.assert_allclose(args[0], expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(args[2], G_t, rtol=1e-14)
    np.testing.assert_array_equal(args[1], grad)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**16), lr=_rate, rho=_decay, eps=st.floats(1e-10, 1.0),
       wd=_rate, maximize=st.booleans())
def test_adadelta_kernel_follows_the_box(seed, lr, rho, eps, wd, maximize):
    theta, grad, v, u = _arrays(seed, 4)
    v, u = np.abs(v), np.abs(u)
    g = (-grad if maximize else grad) + wd * theta
    v_t = rho * v + (1 - rho) * g * g
    dx = np.sqrt(u + eps) / np.sqrt(v_t + eps) * g
    u_t = rho * u + (1 - rho) * dx * dx
    args = [x.copy() for x in (theta, grad, v, u)]
    adadelta_update(*args, lr=lr, rho=rho, eps=eps, weight_decay=wd, maximize=maximize)
    np.testing.assert_allclose(args[0], theta - lr * dx, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(args[2], v_t, rtol=1e-12)
    np.testing.assert_allclose(args[3], u_t, rtol=1e-12)
    np.testing.assert_array_equal(args[1], grad)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**16), lr=_rate, alpha=_decay, eps=st.floats(1e-8, 1.0),
       wd=_rate, momentum=st.sampled_from([0.0, 0.5, 0.9]), centered=st.booleans(),
       maximize=st.booleans())
def test_rmsprop_kernel_follows_the_box(seed, lr, alpha, eps, wd, momentum, centered,
                                        maximize):
    theta, grad, v, gbar, b = _arrays(seed, 5)
    gbar = 0.5 * gbar
    v = gbar * gbar + np.abs(v)                          # a valid (v, ḡ): v >= ḡ²
    g = (-grad if maximize else grad) + wd * theta
    # (the averages rounded as the kernel rounds them: v - ḡ² may cancel almost fully)
    v_t = alpha * v + (g * g) * (1 - alpha)
    gbar_t = alpha * gbar + g * (1 - alpha)
    d = np.sqrt(v_t - gbar_t * gbar_t if centered else v_t) + eps
    b_t = momentum * b + g / d
    expected = theta - lr * (b_t if momentum > 0 else g / d)
    args = [x.copy() for x in (theta, grad, v, gbar, b)]
    rmsprop_update(args[0], args[1], args[2], lr=lr, alpha=alpha, eps=eps, weight_decay=wd,
                   momentum=momentum, momentum_buffer=args[4], centered=centered,
                   grad_avg=args[3], maximize=maximize)
    np.testing.assert_allclose(args[0], expected, rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(args[2], v_t, rtol=1e-12)
    if centered:
        np.testing.assert_allclose(args[3], gbar_t, rtol=1e-12, atol=1e-15)
    if momentum > 0:
        np.testing.assert_allclose(args[4], b_t, rtol=1e-11, atol=1e-11)
    np.testing.assert_array_equal(args[1], grad)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**16), etaminus=st.floats(0.05, 0.95),
       etaplus=st.floats(1.05, 3.0), low=st.floats(0.0, 0.1), span=st.floats(0.0, 2.0),
       maximize=st.booleans())
def test_rprop_kernel_follows_the_box(seed, etaminus, etaplus, low, span, maximize):
    theta, grad, prev, delta = _arrays(seed, 4)
    prev[0, 0] = 0.0                                     # a coordinate without history
    delta = np.abs(delta)
    high = low + span
    g = -grad if maximize else grad
    prod = g * prev
    factor = np.where(prod > 0, etaplus, np.where(prod < 0, etaminus, 1.0))
    delta_t = np.clip(delta * factor, low, high)
    g_t = np.where(prod < 0, 0.0, g)
    args = [x.copy() for x in (theta, grad, prev, delta)]
    rprop_update(*args, etaminus=etaminus, etaplus=etaplus, step_size_min=low,
                 step_size_max=high, maximize=maximize)
    np.testing.assert_allclose(args[0], theta - np.sign(g_t) * delta_t, rtol=1e-14)
    np.testing.assert_array_equal(args[2], g_t)
    np.testing.assert_allclose(args[3], delta_t, rtol=1e-15)
    np.testing.assert_array_equal(args[1], grad)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**16), eta=_rate, mu=st.sampled_from([1.0, 0.5, 0.01]),
       lambd=_rate, wd=_rate, maximize=st.booleans())
def test_asgd_kernel_follows_the_box(seed, eta, mu, lambd, wd, maximize):
    theta, grad, ax = _arrays(seed, 3)
    g = (-grad if maximize else grad) + wd * theta
    theta_t = theta * (1 - lambd * eta) - eta * g
    ax_t = theta_t if mu == 1 else ax + mu * (theta_t - ax)
    args = [x.copy() for x in (theta, grad, ax)]
    asgd_update(*args, eta=eta, mu=mu, lambd=lambd, weight_decay=wd, maximize=maximize)
    np.testing.assert_allclose(args[0], theta_t, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(args[2], ax_t, rtol=1e-13, atol=1e-14)
    np.testing.assert_array_equal(args[1], grad)


def test_asgd_schedule():
    eta, mu = asgd_schedule(10, lr=0.1, lambd=0.5, alpha=0.75, t0=4.0)
    assert eta == 0.1 / (1 + 0.5 * 0.1 * 10) ** 0.75 and mu == 1 / 6
    assert asgd_schedule(3, lr=0.1, lambd=0.5, alpha=0.75, t0=4.0)[1] == 1


def test_kernels_need_their_optional_arrays():
    theta, grad, v = _arrays(0, 3)
    with pytest.raises(ValueError, match="momentum > 0 needs the momentum_buffer"):
        rmsprop_update(theta, grad, v, lr=0.1, alpha=0.9, eps=1e-8, momentum=0.5)
    with pytest.raises(ValueError, match="centered=True needs the grad_avg"):
        rmsprop_update(theta, grad, v, lr=0.1, alpha=0.9, eps=1e-8, centered=True)
    with pytest.raises(ValueError, match=r"scratch buffer has shape \(4,\)"):
        adagrad_update(theta, grad, v, step=1, lr=0.1, scratch=np.empty(4))


# ---- rules, one at a time ---------------------------------------------------------------

def _grads(opt, params, grads):
    for p, g in zip(params, grads):
        p.grad = na.Tensor(np.asarray(g, dtype=float))
    opt.step()


def test_rprop_shrinks_and_skips_after_a_sign_change():
    p = na.Parameter(np.zeros(3))
    opt = Rprop([p], lr=0.1, etas=(0.5, 2.0), step_sizes=(0.01, 0.3))
    _grads(opt, [p], [[1.0, -1.0, 0.0]])           # no history: steps of lr, none for g = 0
    np.testing.assert_allclose(p.data, [-0.1, 0.1, 0.0])
    _grads(opt, [p], [[1.0, 1.0, 1.0]])            # same sign: grow; flip: shrink and skip
    np.testing.assert_allclose(opt.state[p]["step_size"], [0.2, 0.05, 0.1])
    np.testing.assert_allclose(p.data, [-0.3, 0.1, -0.1])
    np.testing.assert_array_equal(opt.state[p]["prev"], [1.0, 0.0, 1.0])
    _grads(opt, [p], [[1.0, 1.0, 1.0]])            # after a skip: no change of step size
    np.testing.assert_allclose(opt.state[p]["step_size"], [0.3, 0.05, 0.2])   # capped
    np.testing.assert_allclose(p.data, [-0.6, 0.05, -0.3])


def test_rprop_lr_only_sets_the_initial_step_size():
    p = na.Parameter(np.zeros(2))
    opt = Rprop([p], lr=0.1)
    _grads(opt, [p], [[1.0, -1.0]])
    opt.lr = 5.0
    _grads(opt, [p], [[1.0, -1.0]])
    np.testing.assert_allclose(p.data, [-0.1 - 0.12, 0.1 + 0.12])


def test_asgd_average_is_the_mean_of_the_iterates_after_t0():
    rng = np.random.default_rng(0)
    p = na.Parameter(rng.normal(size=4))
    opt = ASGD([p], lr=0.05, t0=3.0)
    history = []
    for g in rng.normal(size=(12, 4)):
        _grads(opt, [p], [g])
        history.append(p.data.copy())
    # μ_t = 1 / max(1, t - t0): the average restarts at step t0 + 2 and then takes the mean
    np.testing.assert_allclose(opt.state[p]["ax"], np.mean(history[4:], axis=0), rtol=1e-13)
    assert opt.state[p]["mu"] == 1 / 9 and opt.state[p]["step"] == 12
    assert opt.state[p]["eta"] == 0.05 / (1 + 1e-4 * 0.05 * 12) ** 0.75


def test_adagrad_takes_each_groups_initial_accumulator_value():
    a, b = na.Parameter(np.zeros(2)), na.Parameter(np.zeros(2))
    opt = Adagrad([dict(params=[a]), dict(params=[b], initial_accumulator_value=3.0)],
                  lr=1.0, eps=0.0)
    _grads(opt, [a, b], [[1.0, 1.0], [1.0, 1.0]])
    np.testing.assert_allclose(opt.state[a]["sum"], 1.0)
    np.testing.assert_allclose(opt.state[b]["sum"], 4.0)       # PyTorch would give 1
    np.testing.assert_allclose(b.data, -0.5)


def test_adagrad_lr_decay():
    p = na.Parameter(np.zeros(1))
    opt = Adagrad([p], lr=1.0, lr_decay=0.5, eps=0.0)
    _grads(opt, [p], [[1.0]])
    _grads(opt, [p], [[1.0]])                                 # γ / (1 + 1·0.5), G = 2
    np.testing.assert_allclose(p.data, [-1.0 - (1 / 1.5) / np.sqrt(2.0)])


def test_rmsprop_state_follows_the_flags_and_may_switch_on_later():
    p = na.Parameter(np.ones(3))
    opt = RMSprop([p], lr=0.01)
    _grads(opt, [p], [[1.0, 2.0, 3.0]])
    assert set(opt.state[p]) == {"step", "square_avg"}
    opt.param_groups[0].update(momentum=0.9, centered=True)
    _grads(opt, [p], [[1.0, 2.0, 3.0]])
    assert set(opt.state[p]) == {"step", "square_avg", "momentum_buffer", "grad_avg"}


@pytest.mark.parametrize("cls,kwargs,keys", [
    (Adagrad, {}, {"step", "sum"}),
    (Adadelta, {}, {"step", "square_avg", "acc_delta"}),
    (RMSprop, dict(momentum=0.9, centered=True),
     {"step", "square_avg", "momentum_buffer", "grad_avg"}),
    (Rprop, {}, {"step", "prev", "step_size"}),
    (ASGD, {}, {"step", "eta", "mu", "ax"}),
])
def test_state_uses_pytorch_key_names(cls, kwargs, keys):
    p = na.Parameter(np.ones(3))
    opt = cls([p], **kwargs)
    _grads(opt, [p], [[1.0, -2.0, 3.0]])
    assert set(opt.state[p]) == keys
    assert opt.state[p]["step"] == 1


# ---- arguments ------------------------------------------------------------------------

def _p():
    return [na.Parameter(np.ones(2))]


@pytest.mark.parametrize("cls,kwargs,err,match", [
    (Adagrad, dict(lr_decay=-0.1), ValueError, r"Invalid lr_decay value: -0.1 \(expected"),
    (Adagrad, dict(initial_accumulator_value=-1), ValueError,
     "Invalid initial_accumulator_value value: -1.0"),
    (Adadelta, dict(rho=1.5), ValueError, r"Invalid rho value: 1.5 \(expected 0 <= rho <= 1\)"),
    (RMSprop, dict(alpha=-0.1), ValueError, r"Invalid alpha value: -0.1"),
    (RMSprop, dict(momentum=-0.5), ValueError, r"Invalid momentum value: -0.5"),
    (RMSprop, dict(centered=1), TypeError, "centered must be True or False"),
    (Rprop, dict(etas=(1.5, 2.0)), ValueError,
     r"Invalid eta value at index 0: 1.5 \(expected 0 < etaminus < 1\)"),
    (Rprop, dict(etas=(0.5, 0.9)), ValueError,
     r"Invalid eta value at index 1: 0.9 \(expected etaplus > 1\)"),
    (Rprop, dict(etas=0.5), TypeError, r"etas must be a pair \(etaminus, etaplus\)"),
    (Rprop, dict(step_sizes=(1.0, 0.1)), ValueError,
     r"Invalid step sizes: 1.0, 0.1 \(expected 0 <= min <= max\)"),
    (Rprop, dict(weight_decay=0.1), TypeError, "unexpected keyword argument.*'weight_decay'"),
    (ASGD, dict(t0=-1.0), ValueError, r"Invalid t0 value: -1.0"),
    (ASGD, dict(lambd=float("nan")), ValueError, "expected a finite number"),
])
def test_invalid_arguments_are_named(cls, kwargs, err, match):
    with pytest.raises(err, match=match):
        cls(_p(), **kwargs)


def test_signatures_and_aliases():
    opt = RMSprop(_p(), learning_rate=0.1, epsilon=1e-6)
    assert opt.param_groups[0]["lr"] == 0.1 and opt.param_groups[0]["eps"] == 1e-6
    assert Adagrad(_p()).defaults == dict(lr=1e-2, lr_decay=0.0, weight_decay=0.0,
                                          initial_accumulator_value=0.0, eps=1e-10,
                                          maximize=False, fused=None)
    assert Rprop(_p()).defaults["step_sizes"] == (1e-6, 50.0)
    assert ASGD(_p()).defaults["t0"] == 1e6
    assert Adadelta(_p()).defaults["lr"] == 1.0


# ---- the strict fake CuPy device ----------------------------------------------------------

@pytest.mark.parametrize("contiguous", [False, True])
@pytest.mark.parametrize("case", CLASSIC, ids=str)
def test_updates_on_the_fake_cupy_device_equal_the_cpu(case, contiguous):
    from neural_arch import backend
    from tests import fake_cupy
    fake_cupy.register()
    rng = np.random.default_rng(42)
    kwargs = case.sample(rng)
    kwargs.update(maximize=True)
    if case.cls is RMSprop:
        kwargs.update(momentum=0.5, centered=True)
    shapes = [(3, 2), (2,), ()]
    init = [rng.normal(size=s) for s in shapes]
    grads = [[rng.normal(size=s) for s in shapes] for _ in range(4)]
    results = {}
    for device in ("cpu", "fake"):
        params = [na.Parameter(backend.to_device(a.copy(), device)) for a in init]
        opt = case.cls(params, contiguous=contiguous, **kwargs)
        for step_grads in grads:
            for p, g in zip(params, step_grads):
                p.grad = na.Tensor(backend.to_device(g, device))
            opt.step()
        again = case.cls(params, contiguous=contiguous, **kwargs)
        again.load_state_dict(opt.state_dict())
        assert all(backend.device_of(v) == params[0].device
                   for s in again.state.values() for v in s.values() if hasattr(v, "shape"))
        results[device] = ([backend.asnumpy(p.data) for p in params],
                           [{k: backend.asnumpy(v) if hasattr(v, "shape") else v
                             for k, v in opt.state[p].items()} for p in params])
    for a, b in zip(results["cpu"][0], results["fake"][0]):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-14)
    for s_cpu, s_fake in zip(results["cpu"][1], results["fake"][1]):
        assert s_cpu.keys() == s_fake.keys()
        for k in s_cpu:
            np.testing.assert_allclose(s_fake[k], s_cpu[k], rtol=1e-12, atol=1e-14)
