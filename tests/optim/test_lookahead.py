"""Lookahead: the paper's algorithm by hand, slow weights in the state dict (resume bit for
bit), delegation to the base optimizer, nesting with SAM, errors."""
from __future__ import annotations

import numpy as np
import pytest

import neural_arch as na
from neural_arch.optim import SAM, SGD, Adam, Lookahead

H = np.array([[3.0, 0.5], [0.5, 1.0]])
B = np.array([1.0, -2.0])


def quad(w):
    """0.5 w'Hw + b'w, gradient Hw + b."""
    return 0.5 * (w @ na.Tensor(H) @ w) + (w * na.Tensor(B)).sum()


def test_steps_equal_the_papers_algorithm_by_hand():
    w0 = np.array([2.0, -1.0])
    w = na.Parameter(w0.copy())
    opt = Lookahead(SGD([w], lr=0.1, momentum=0.5), k=3, alpha=0.4)
    theta, phi, buf = w0.copy(), w0.copy(), None
    for t in range(1, 11):
        opt.zero_grad()
        quad(w).backward()
        opt.step()
        g = H @ theta + B                                  # one fast SGD-momentum step
        buf = g if buf is None else 0.5 * buf + g
        theta = theta - 0.1 * buf
        if t % 3 == 0:
            phi = phi + 0.4 * (theta - phi)                # slow step, fast weights reset
            theta = phi.copy()
        np.testing.assert_allclose(w.data, theta, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(opt.state[w]["slow_param"], phi, rtol=1e-13, atol=1e-15)
    assert opt.step_count == 10 and opt.lookahead_step == 1


def test_alpha_one_is_the_base_optimizer_and_k_one_alpha_half_halves_each_step():
    w1, w2 = na.Parameter(np.array([1.0, 1.0])), na.Parameter(np.array([1.0, 1.0]))
    la, plain = Lookahead(SGD([w1], lr=0.1), k=2, alpha=1.0), SGD([w2], lr=0.1)
    for _ in range(5):
        for opt, w in ((la, w1), (plain, w2)):
            opt.zero_grad()
            quad(w).backward()
            opt.step()
    np.testing.assert_array_equal(w1.data, w2.data)
    w = na.Parameter(np.array([1.0, 1.0]))
    opt = Lookahead(SGD([w], lr=0.1), k=1, alpha=0.5)
    w.grad = na.Tensor(np.array([2.0, -4.0]))
    opt.step()
    np.testing.assert_allclose(w.data, [1.0 - 0.1, 1.0 + 0.2])     # half of the fast step


def test_slow_weights_start_at_the_first_step_not_at_construction():
    w = na.Parameter(np.zeros(2))
    opt = Lookahead(SGD([w], lr=0.1), k=2, alpha=0.5)
    w.data[...] = [4.0, 4.0]                       # e.g. a checkpoint loaded after building
    w.grad = na.Tensor(np.ones(2))
    opt.step()
    np.testing.assert_array_equal(opt.state[w]["slow_param"], [4.0, 4.0])
    opt.step()
    np.testing.assert_allclose(w.data, [4.0 - 0.1, 4.0 - 0.1])     # 4 + 0.5 (3.8 - 4)


def test_delegates_groups_lr_zero_grad_closure_and_step_count():
    w = na.Parameter(np.ones(2))
    base = Adam([w], lr=0.01)
    opt = Lookahead(base)
    assert opt.param_groups is base.param_groups and (opt.k, opt.alpha) == (5, 0.5)
    opt.lr = 0.5
    assert base.param_groups[0]["lr"] == 0.5
    w.grad = na.Tensor(np.ones(2))
    opt.zero_grad()
    assert w.grad is None

    def closure():
        loss = quad(w)
        loss.backward()
        return loss
    expected = float(quad(w).item())
    assert float(opt.step(closure).item()) == expected
    assert opt.step_count == base.step_count == 1
    extra = na.Parameter(np.ones(3))
    opt.add_param_group({"params": [extra]})
    assert base.param_groups[1]["params"] == [extra]
    extra.grad = na.Tensor(np.ones(3))
    opt.step()
    assert "slow_param" in opt.state[extra]
    assert "Lookahead (base_optimizer: Adam" in repr(opt) and "k=5" in repr(opt)


# ---- state_dict ----------------------------------------------------------------------

DATA = np.random.default_rng(5).normal(size=(6, 3))
TARGET = np.cos(DATA[:, :1])


def mlp(seed):
    rng = np.random.default_rng(seed)
    return [na.Parameter(rng.normal(size=s) * 0.5) for s in [(3, 4), (4,), (4, 1), (1,)]]


def loss(ps):
    h = na.tanh(na.Tensor(DATA) @ ps[0] + ps[1])
    return ((h @ ps[2] + ps[3] - na.Tensor(TARGET)) ** 2).mean()


def train(opt, ps, n):
    for _ in range(n):
        opt.zero_grad()
        loss(ps).backward()
        opt.step()


@pytest.mark.parametrize("steps_before", [3, 5, 7])
def test_resume_mid_cycle_continues_bit_for_bit(steps_before):
    with na.autograd.grad_clip(None):
        ps = mlp(0)
        opt = Lookahead(Adam([dict(params=ps[:2]), dict(params=ps[2:], lr=0.02)], lr=0.01),
                        k=5, alpha=0.6)
        train(opt, ps, steps_before)
        sd = opt.state_dict()
        mid = [p.data.copy() for p in ps]
        train(opt, ps, 9)
        reference = [p.data.copy() for p in ps]
        ref_slow = [opt.state[p]["slow_param"].copy() for p in ps]

        fps = [na.Parameter(m.copy()) for m in mid]
        fresh = Lookahead(Adam([dict(params=fps[:2]), dict(params=fps[2:])], lr=0.3), k=2)
        fresh.load_state_dict(sd)
        assert (fresh.k, fresh.alpha, fresh.lookahead_step) == (5, 0.6, steps_before % 5)
        assert fresh.step_count == steps_before and fresh.param_groups[1]["lr"] == 0.02
        train(fresh, fps, 9)
    for p, r, s in zip(fps, reference, ref_slow):
        np.testing.assert_array_equal(p.data, r)
        np.testing.assert_array_equal(fresh.state[p]["slow_param"], s)


def test_state_dict_holds_slow_weights_and_base_state():
    ps = mlp(1)
    opt = Lookahead(SGD(ps, lr=0.1, momentum=0.9), k=4, alpha=0.5)
    train(opt, ps, 2)
    sd = opt.state_dict()
    assert set(sd["lookahead"]) == {"state", "k", "alpha", "lookahead_step"}
    assert sd["lookahead"]["lookahead_step"] == 2 and sd["step_count"] == 2
    for i, p in enumerate(ps):
        np.testing.assert_array_equal(sd["lookahead"]["state"][i]["slow_param"],
                                      opt.state[p]["slow_param"])
        assert "momentum_buffer" in sd["state"][i]
    snapshot = sd["lookahead"]["state"][0]["slow_param"].copy()
    train(opt, ps, 3)                                   # a sync happens: sd must not change
    np.testing.assert_array_equal(sd["lookahead"]["state"][0]["slow_param"], snapshot)


def test_bad_state_dicts_raise_and_change_nothing():
    ps = mlp(2)
    opt = Lookahead(SGD(ps, lr=0.1), k=3)
    train(opt, ps, 2)
    with pytest.raises(ValueError, match="no 'lookahead' entry"):
        opt.load_state_dict(SGD(mlp(2), lr=0.1).state_dict())
    for key, value, err in [("k", 0, ValueError), ("alpha", 2.0, ValueError),
                            ("lookahead_step", 3, ValueError), ("k", 2.5, TypeError)]:
        bad = opt.state_dict()
        bad["lookahead"][key] = value
        bad["param_groups"][0]["lr"] = 0.77
        with pytest.raises(err):
            opt.load_state_dict(bad)
    assert (opt.k, opt.lookahead_step, opt.param_groups[0]["lr"]) == (3, 2, 0.1)


def test_lookahead_over_sam_nests_state_and_steps_with_a_closure():
    with na.autograd.grad_clip(None):
        ps = mlp(3)
        opt = Lookahead(SAM(ps, lr=0.05, momentum=0.9, rho=0.05), k=2)

        def closure():
            out = loss(ps)
            out.backward()
            return out
        for _ in range(3):
            opt.step(closure)
        sd = opt.state_dict()
        assert "sam" in sd and "lookahead" in sd and opt.step_count == 3
        later = [p.data.copy() for p in ps]
        fps = [na.Parameter(p.data.copy()) for p in ps]
        fresh = Lookahead(SAM(fps, lr=0.05, momentum=0.9, rho=0.05), k=2)
        fresh.load_state_dict(sd)
        for _ in range(3):
            opt.step(closure)

        def fclosure():
            out = loss(fps)
            out.backward()
            return out
        for _ in range(3):
            fresh.step(fclosure)
    for p, q, old in zip(ps, fps, later):
        np.testing.assert_array_equal(p.data, q.data)
        assert not np.array_equal(p.data, old)


def test_bad_arguments_give_clear_errors():
    w = na.Parameter(np.ones(2))
    with pytest.raises(TypeError, match="build it first"):
        Lookahead(SGD)
    with pytest.raises(TypeError, match="optimizer instance"):
        Lookahead([w])
    with pytest.raises(ValueError, match="k >= 1"):
        Lookahead(SGD([w]), k=0)
    with pytest.raises(TypeError, match="integer"):
        Lookahead(SGD([w]), k=2.0)
    with pytest.raises(ValueError, match="alpha"):
        Lookahead(SGD([w]), alpha=1.5)
    with pytest.raises(TypeError, match="alpha"):
        Lookahead(SGD([w]), alpha="0.5")


def test_contiguous_base_gives_the_same_numbers_and_the_fake_device_equals_the_cpu():
    from neural_arch import backend
    from tests import fake_cupy
    fake_cupy.register()
    results = []
    for device, contiguous in (("cpu", False), ("cpu", True), ("fake", False), ("fake", True)):
        ps = [na.Parameter(backend.to_device(p.data, device)) for p in mlp(6)]
        data, target = (na.Tensor(backend.to_device(a, device)) for a in (DATA, TARGET))
        opt = Lookahead(Adam(ps, lr=0.05, contiguous=contiguous), k=2, alpha=0.3)
        for _ in range(5):
            opt.zero_grad()
            h = na.tanh(data @ ps[0] + ps[1])
            ((h @ ps[2] + ps[3] - target) ** 2).mean().backward()
            opt.step()
        opt.load_state_dict(opt.state_dict())
        results.append([backend.asnumpy(p.data) for p in ps])
    for other in results[1:]:
        for x, y in zip(results[0], other):
            np.testing.assert_allclose(y, x, rtol=1e-12, atol=1e-14)
