"""SAM and ASAM: the papers' update computed independently, the two-pass protocol,
delegation to the base optimizer, bit-for-bit resume, errors, the fake device."""
from __future__ import annotations

import numpy as np
import pytest

import neural_arch as na
from neural_arch.optim import ASAM, SAM, SGD, Adam
from neural_arch.optim.lr_scheduler import StepLR


# ---- a small objective whose gradient NumPy knows ---------------------------------------
# f(a, b) = sum(exp(0.3 a)) + sum(b^3) / 3 + sum(a) * b[0]

def f_na(a, b):
    return na.exp(a * 0.3).sum() + (b * b * b).sum() / 3.0 + a.sum() * b[0]


def grad_np(a, b):
    ga = 0.3 * np.exp(0.3 * a) + b[0]
    gb = b ** 2
    gb = gb.copy()
    gb[0] += a.sum()
    return ga, gb


def paper_step(ws, groups, kind, lr, wd, mom_bufs):
    """One SAM/ASAM + SGD(momentum, weight decay) step, written from the papers."""
    g = grad_np(*ws)
    ts = []
    for w, grp in zip(ws, groups):
        if not grp["adaptive"]:
            ts.append(np.ones_like(w))
        elif kind == "asam":
            ts.append(np.abs(w) + grp["eta"])
        else:
            ts.append(np.abs(w))
    norm = np.sqrt(sum(np.sum((t * gi) ** 2) for t, gi in zip(ts, g)))
    eps = [grp["rho"] * t ** 2 * gi / norm for t, gi, grp in zip(ts, g, groups)]
    g_sam = grad_np(*[w + e for w, e in zip(ws, eps)])
    out = []
    for i, (w, gs) in enumerate(zip(ws, g_sam)):
        d = gs + wd * w
        mom_bufs[i] = d.copy() if mom_bufs[i] is None else 0.9 * mom_bufs[i] + d
        out.append(w - lr * mom_bufs[i])
    return out


SETTINGS = [
    ("sam", SAM, [dict(rho=0.05, adaptive=False), dict(rho=0.2, adaptive=False)]),
    ("sam-adaptive", SAM, [dict(rho=0.3, adaptive=True), dict(rho=0.1, adaptive=True)]),
    ("asam", ASAM, [dict(rho=0.5, eta=0.01, adaptive=True),
                    dict(rho=0.5, eta=0.1, adaptive=False)]),
    ("asam-eta", ASAM, [dict(rho=0.7, eta=0.05, adaptive=True),
                        dict(rho=0.2, eta=0.0, adaptive=True)]),
]


@pytest.mark.parametrize("name,cls,groups", SETTINGS, ids=[s[0] for s in SETTINGS])
def test_steps_equal_the_papers_update_computed_in_numpy(name, cls, groups):
    rng = np.random.default_rng(0)
    a0, b0 = rng.normal(size=(2, 3)), rng.normal(size=4)
    a, b = na.Parameter(a0.copy()), na.Parameter(b0.copy())
    spec = [dict(params=[a], **groups[0]), dict(params=[b], **groups[1])]
    opt = cls(spec, lr=0.05, momentum=0.9, weight_decay=0.01)
    ref, bufs = [a0, b0], [None, None]
    kind = "asam" if cls is ASAM else "sam"
    with na.autograd.grad_clip(None):
        for _ in range(3):
            f_na(a, b).backward()
            opt.first_step(zero_grad=True)
            f_na(a, b).backward()
            opt.second_step(zero_grad=True)
            ref = paper_step(ref, groups, kind, 0.05, 0.01, bufs)
            np.testing.assert_allclose(a.data, ref[0], rtol=1e-12, atol=1e-14)
            np.testing.assert_allclose(b.data, ref[1], rtol=1e-12, atol=1e-14)
    assert opt.step_count == 3 and a.grad is None


def test_first_step_moves_to_w_plus_e_and_the_norm_spans_all_groups():
    a, b = na.Parameter(np.array([3.0, 0.0])), na.Parameter(np.array([4.0]))
    opt = SAM([dict(params=[a]), dict(params=[b], rho=1.0)], lr=0.1, rho=0.5)
    a.grad, b.grad = na.Tensor(np.array([3.0, 0.0])), na.Tensor(np.array([4.0]))
    opt.first_step()
    # ||g|| = 5 over both groups: e_a = 0.5 * g_a / 5, e_b = 1.0 * g_b / 5
    np.testing.assert_allclose(a.data, [3.3, 0.0])
    np.testing.assert_allclose(b.data, [4.8])
    assert opt.perturbed
    a.grad, b.grad = na.Tensor(np.array([1.0, 1.0])), na.Tensor(np.array([2.0]))
    opt.second_step()
    np.testing.assert_array_equal(a.data, [3.0 - 0.1, -0.1])    # restored exactly, SGD step
    np.testing.assert_array_equal(b.data, [4.0 - 0.2])
    assert not opt.perturbed


def test_adaptive_sam_leaves_zero_weights_alone_and_asam_does_not():
    for cls, moved in ((SAM, False), (ASAM, True)):
        w = na.Parameter(np.array([0.0, 2.0]))
        opt = cls([w], lr=0.1, rho=0.1, **({"adaptive": True} if cls is SAM else {}))
        w.grad = na.Tensor(np.array([1.0, 1.0]))
        opt.first_step()
        assert (w.data[0] != 0.0) == moved


def test_zero_gradient_gives_no_perturbation_and_no_nan():
    w = na.Parameter(np.array([1.0, 2.0]))
    opt = ASAM([w], lr=0.1)
    w.grad = na.Tensor(np.zeros(2))
    opt.first_step()
    np.testing.assert_array_equal(w.data, [1.0, 2.0])
    opt.second_step()
    np.testing.assert_array_equal(w.data, [1.0, 2.0])


def test_parameters_without_gradient_are_neither_moved_nor_stepped():
    a, b = na.Parameter(np.array([1.0])), na.Parameter(np.array([5.0]))
    opt = SAM([a, b], lr=0.1, rho=0.1)
    (a * a).sum().backward()
    opt.first_step(zero_grad=True)
    assert b.data[0] == 5.0 and a.data[0] == pytest.approx(1.1)
    (a * a).sum().backward()
    opt.second_step()
    assert b.data[0] == 5.0 and a.data[0] == pytest.approx(1.0 - 0.1 * 2.2)


def test_step_with_closure_equals_the_two_pass_loop_and_returns_the_loss_at_w():
    rng = np.random.default_rng(1)
    a0, b0 = rng.normal(size=(2, 3)), rng.normal(size=4)
    a1, b1 = na.Parameter(a0.copy()), na.Parameter(b0.copy())
    a2, b2 = na.Parameter(a0.copy()), na.Parameter(b0.copy())
    loop = SAM([a1, b1], base_optimizer=Adam, lr=0.01, rho=0.1)
    closed = SAM([a2, b2], base_optimizer=Adam, lr=0.01, rho=0.1)
    for _ in range(3):
        f_na(a1, b1).backward()
        loop.first_step(zero_grad=True)
        f_na(a1, b1).backward()
        loop.second_step(zero_grad=True)
        expected = float(f_na(a2, b2).item())
        a2.grad = na.Tensor(np.full((2, 3), 7.0))      # stale gradient: step resets it

        def closure():
            loss = f_na(a2, b2)
            loss.backward()
            return loss
        assert float(closed.step(closure).item()) == expected
    np.testing.assert_array_equal(a1.data, a2.data)
    np.testing.assert_array_equal(b1.data, b2.data)
    assert closed.step_count == loop.step_count == 3


def test_param_groups_lr_and_schedulers_act_on_the_base():
    w = na.Parameter(np.ones(2))
    opt = SAM([w], lr=0.1, momentum=0.5)
    base = opt.base_optimizer
    assert isinstance(base, SGD) and opt.param_groups is base.param_groups
    assert opt.param_groups[0]["rho"] == 0.05 and base.param_groups[0]["momentum"] == 0.5
    opt.lr = 0.4
    assert base.param_groups[0]["lr"] == 0.4
    sched = StepLR(opt, step_size=1, gamma=0.5)
    w.grad = na.Tensor(np.ones(2))
    opt.first_step()
    opt.second_step()
    sched.step()
    assert base.param_groups[0]["lr"] == pytest.approx(0.2)
    extra = na.Parameter(np.ones(3))
    opt.add_param_group({"params": [extra], "lr": 0.01})
    assert base.param_groups[1]["rho"] == 0.05 and base.param_groups[1]["lr"] == 0.01
    with pytest.raises(ValueError, match="rho"):
        opt.add_param_group({"params": [na.Parameter(np.ones(1))], "rho": -1.0})
    assert len(base.param_groups) == 2
    w.grad = na.Tensor(np.ones(2))
    opt.zero_grad()
    assert w.grad is None
    assert "SAM (base_optimizer: SGD" in repr(opt)


def test_an_already_built_base_optimizer_is_used_as_given():
    w = na.Parameter(np.ones(2))
    base = Adam([w], lr=0.01)
    opt = SAM([w], base_optimizer=base, rho=0.1)
    assert opt.base_optimizer is base and opt.param_groups is base.param_groups
    opt2 = SAM(None, base_optimizer=base, rho=0.1)
    assert opt2.base_optimizer is base


# ---- state_dict ----------------------------------------------------------------------

def mlp(seed):
    rng = np.random.default_rng(seed)
    return [na.Parameter(rng.normal(size=s) * 0.5) for s in [(4, 3), (3,), (3, 1), (1,)]]


DATA = np.random.default_rng(99).normal(size=(8, 4))
TARGET = np.sin(DATA.sum(axis=1, keepdims=True))


def mlp_loss(ps):
    w1, b1, w2, b2 = ps
    h = na.tanh(na.Tensor(DATA) @ w1 + b1)
    return ((h @ w2 + b2 - na.Tensor(TARGET)) ** 2).mean()


def train(opt, ps, n):
    for _ in range(n):
        mlp_loss(ps).backward()
        opt.first_step(zero_grad=True)
        mlp_loss(ps).backward()
        opt.second_step(zero_grad=True)


def build(cls, ps, **kw):
    return cls([dict(params=ps[:2], rho=0.08), dict(params=ps[2:])], **kw)


@pytest.mark.parametrize("cls,kw", [
    (SAM, dict(lr=0.05, momentum=0.9, nesterov=True, rho=0.05)),
    (SAM, dict(base_optimizer=Adam, lr=0.01, adaptive=True, rho=0.3)),
    (ASAM, dict(base_optimizer=Adam, lr=0.01, amsgrad=True, eta=0.02)),
])
def test_resumed_sam_continues_bit_for_bit(cls, kw):
    with na.autograd.grad_clip(None):
        ps = mlp(0)
        opt = build(cls, ps, **kw)
        train(opt, ps, 4)
        sd = opt.state_dict()
        mid = [p.data.copy() for p in ps]
        train(opt, ps, 4)
        reference = [p.data.copy() for p in ps]

        fresh_ps = [na.Parameter(m.copy()) for m in mid]
        other = {k: v for k, v in kw.items() if k in ("base_optimizer",)}
        fresh = build(cls, fresh_ps, lr=0.5, rho=0.9, **other)   # other settings: loaded back
        fresh.load_state_dict(sd)
        assert fresh.step_count == 4
        assert fresh.param_groups[0]["rho"] == 0.08
        assert fresh.param_groups[0]["lr"] == kw["lr"]
        train(fresh, fresh_ps, 4)
    for p, r in zip(fresh_ps, reference):
        np.testing.assert_array_equal(p.data, r)


def test_a_state_dict_taken_while_perturbed_resumes_bit_for_bit():
    with na.autograd.grad_clip(None):
        ps = mlp(1)
        opt = build(SAM, ps, lr=0.05, momentum=0.9)
        train(opt, ps, 2)
        mlp_loss(ps).backward()
        opt.first_step(zero_grad=True)
        sd = opt.state_dict()
        assert sd["sam"]["perturbed"] and set(sd["sam"]["state"]) == {0, 1, 2, 3}
        now = [p.data.copy() for p in ps]
        mlp_loss(ps).backward()
        opt.second_step(zero_grad=True)
        train(opt, ps, 2)
        reference = [p.data.copy() for p in ps]

        fps = [na.Parameter(x.copy()) for x in now]
        fresh = build(SAM, fps, lr=0.05, momentum=0.9)
        fresh.load_state_dict(sd)
        assert fresh.perturbed
        mlp_loss(fps).backward()
        fresh.second_step(zero_grad=True)
        train(fresh, fps, 2)
    for p, r in zip(fps, reference):
        np.testing.assert_array_equal(p.data, r)


def test_state_dict_round_trip_holds_the_base_state_and_is_a_copy():
    ps = mlp(2)
    opt = build(SAM, ps, lr=0.05, momentum=0.9)
    train(opt, ps, 2)
    sd = opt.state_dict()
    assert set(sd) == {"state", "param_groups", "step_count", "sam"}
    assert "momentum_buffer" in sd["state"][0] and sd["step_count"] == 2
    assert sd["sam"] == {"state": {}, "perturbed": False}
    again = build(SAM, [na.Parameter(p.data.copy()) for p in ps], lr=0.05, momentum=0.9)
    again.load_state_dict(sd)
    sd2 = again.state_dict()
    assert sd2["param_groups"] == sd["param_groups"] and sd2["sam"] == sd["sam"]
    for i in sd["state"]:
        np.testing.assert_array_equal(sd2["state"][i]["momentum_buffer"],
                                      sd["state"][i]["momentum_buffer"])
    buf = sd["state"][0]["momentum_buffer"].copy()
    train(opt, ps, 1)
    np.testing.assert_array_equal(sd["state"][0]["momentum_buffer"], buf)


def test_bad_state_dicts_raise_and_change_nothing():
    ps = mlp(3)
    opt = build(SAM, ps, lr=0.05, momentum=0.9)
    train(opt, ps, 1)
    before = opt.state_dict()
    plain = SGD(mlp(3), lr=0.1).state_dict()
    with pytest.raises(ValueError, match="no 'sam' entry"):
        opt.load_state_dict(plain)
    bad = opt.state_dict()
    bad["param_groups"][1]["rho"] = -0.5
    bad["param_groups"][0]["lr"] = 0.3
    with pytest.raises(ValueError, match="rho"):
        opt.load_state_dict(bad)
    bad = opt.state_dict()
    bad["state"][0]["momentum_buffer"] = np.zeros((2, 2))
    with pytest.raises(ValueError, match="shape"):
        opt.load_state_dict(bad)
    bad = opt.state_dict()
    bad["sam"]["state"] = {0: {"old_p": np.zeros(7)}}
    with pytest.raises(ValueError, match="shape"):
        opt.load_state_dict(bad)
    with pytest.raises(TypeError):
        opt.load_state_dict([1, 2])
    after = opt.state_dict()
    assert after["param_groups"] == before["param_groups"]
    np.testing.assert_array_equal(after["state"][0]["momentum_buffer"],
                                  before["state"][0]["momentum_buffer"])


# ---- errors --------------------------------------------------------------------------

class RhoSGD(SGD):
    """An SGD with a per-group 'rho' of its own (Adadelta has one too)."""

    def __init__(self, params, lr=1e-3, rho=0.9):
        super().__init__(params, lr=lr)
        for group in self.param_groups:
            group.setdefault("rho", rho)
        self.defaults["rho"] = rho


def test_bad_arguments_give_clear_errors():
    w = na.Parameter(np.ones(2))
    with pytest.raises(ValueError, match="rho"):
        SAM([w], lr=0.1, rho=-0.1)
    with pytest.raises(TypeError, match="adaptive"):
        SAM([w], lr=0.1, adaptive="yes")
    with pytest.raises(ValueError, match="eta"):
        ASAM([w], lr=0.1, eta=-1)
    with pytest.raises(TypeError, match="lr=0.1"):
        SAM([w], 0.1)
    with pytest.raises(TypeError, match="unexpected keyword"):
        SAM([w], lr=0.1, betas=(0.9, 0.99))
    with pytest.raises(ValueError, match="Invalid learning rate"):
        SAM([w], lr=-1.0)
    with pytest.raises(TypeError, match="already built"):
        SAM([w], base_optimizer=SGD([w], lr=0.1), lr=0.2)
    with pytest.raises(ValueError, match="not the parameters"):
        SAM([na.Parameter(np.ones(2))], base_optimizer=SGD([w], lr=0.1))
    with pytest.raises(ValueError, match="'rho'"):
        SAM([w], base_optimizer=RhoSGD, lr=1.0)   # as Adadelta: its own group entry 'rho'
    with pytest.raises(ValueError, match="empty"):
        SAM([], lr=0.1)


def test_calls_out_of_order_raise():
    w = na.Parameter(np.ones(2))
    opt = SAM([w], lr=0.1)
    with pytest.raises(RuntimeError, match="needs a first_step"):
        opt.second_step()
    w.grad = na.Tensor(np.ones(2))
    opt.first_step()
    with pytest.raises(RuntimeError, match="twice"):
        opt.first_step()
    with pytest.raises(RuntimeError, match="closure"):
        opt.step()


def test_a_contiguous_base_gives_exactly_the_per_tensor_numbers():
    runs = []
    for contiguous in (False, True):
        ps = mlp(5)
        opt = SAM(ps, base_optimizer=Adam, lr=0.01, adaptive=True, rho=0.2,
                  contiguous=contiguous)
        train(opt, ps, 3)
        runs.append([p.data.copy() for p in ps])
    for x, y in zip(*runs):
        np.testing.assert_array_equal(x, y)


# ---- the fake CuPy device --------------------------------------------------------------

def test_sam_and_asam_on_the_fake_device_equal_the_cpu():
    from neural_arch import backend
    from tests import fake_cupy
    fake_cupy.register()
    results = {}
    for device in ("cpu", "fake"):
        out = []
        for cls in (SAM, ASAM):
            ps = [na.Parameter(backend.to_device(p.data, device)) for p in mlp(4)]
            data = na.Tensor(backend.to_device(DATA, device))
            target = na.Tensor(backend.to_device(TARGET, device))

            def loss():
                h = na.tanh(data @ ps[0] + ps[1])
                return ((h @ ps[2] + ps[3] - target) ** 2).mean()
            opt = cls(ps, base_optimizer=Adam, lr=0.01, adaptive=True)
            for _ in range(2):
                loss().backward()
                opt.first_step(zero_grad=True)
                loss().backward()
                opt.second_step(zero_grad=True)
            opt.load_state_dict(opt.state_dict())
            out.append([backend.asnumpy(p.data) for p in ps])
            assert all(backend.device_of(p.data).startswith(device) for p in ps)
        results[device] = out
    for a, b in zip(results["cpu"], results["fake"]):
        for x, y in zip(a, b):
            np.testing.assert_allclose(y, x, rtol=1e-12, atol=1e-14)
