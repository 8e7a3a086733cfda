"""Lion and LAMB, which ``torch.optim`` lacks, and checks shared by this task's optimizers.

Lion and LAMB are held to their papers' equations, written below in plain NumPy
(out of place, one line per row of each algorithm box), over 200 steps of the
table's tanh MLP with the defaults, random and extreme hyper-parameters, two
parameter groups and a closure; and to pytorch-optimizer (skipped when it is not
installed) where its variant is the same:

* ``pytorch_optimizer.Lion`` with ``weight_decouple=True, fixed_decay=False`` (its
  defaults) is the paper's Lion; its ``maximize`` is one flag for all groups.
* ``pytorch_optimizer.Lamb`` follows arXiv v3 and differs from the paper's final
  box: no bias correction of the moments, the step divided by ``1 - β1^t``
  outside the trust ratio, ``ε`` added to ``‖u‖`` in the trust ratio,
  ``φ(z) = min(z, 10)`` and decoupled decay by default. With
  ``weight_decouple=False, adam_debias=True``, ``ε = 0`` and parameter norms
  below 10 it is our ``bias_correction=False`` exactly, and without weight decay
  also our default (the trust ratio normalises away the bias corrections).

LAMB's table row (``cases.py``) reaches both convergence problems with a
decaying learning rate, Rosenbrock shifted away from θ = 0; the tests below add
LAMB on two tensors of different scales and Lion's cycle at a constant lr.
"""
from __future__ import annotations

import numpy as np
import pytest

import neural_arch as na
from neural_arch import backend
from neural_arch.optim import LAMB, Lion
from tests.helpers import requires_torch, torch
from tests.optim.cases import get_case, mlp_arrays, na_mlp, quadratic, torch_mlp, train
from tests.optim.test_parity import _close

try:
    import pytorch_optimizer
except ImportError:          # the reference tests against it are skipped, not failed
    pytorch_optimizer = None

requires_ptopt = pytest.mark.skipif(pytorch_optimizer is None or torch is None,
                                    reason="pytorch-optimizer (and torch) not installed")

#: The rows of the optimizers this module was written with (Adamax, NAdam, RAdam have
#: PyTorch twins and their parity in test_parity.py).
CASES = [get_case(name) for name in ("adamax", "nadam", "radam", "lion", "lamb")]
LION_CASE, LAMB_CASE = get_case("lion"), get_case("lamb")
STEPS = 200
RTOL = 1e-10


# ==== the papers' equations ===========================================================

def lion_paper(x, g, state, *, lr, betas, weight_decay, maximize):
    """Chen et al. (2023), arXiv:2302.06675, Algorithm 2 (decoupled weight decay)."""
    b1, b2 = betas
    if maximize:
        g = -g
    m = state.get("exp_avg", np.zeros_like(x))
    c = b1 * m + (1 - b1) * g
    x = x - lr * (np.sign(c) + weight_decay * x)
    state["exp_avg"] = b2 * m + (1 - b2) * g
    return x


def lamb_paper(x, g, state, *, lr, betas, eps, weight_decay, bias_correction, maximize):
    """You et al. (2020), arXiv:1904.00962, Algorithm 2 with φ(z) = z (v3: no debiasing)."""
    b1, b2 = betas
    if maximize:
        g = -g
    t = state["step"] = state.get("step", 0) + 1
    m = state["exp_avg"] = b1 * state.get("exp_avg", 0.0) + (1 - b1) * g
    v = state["exp_avg_sq"] = b2 * state.get("exp_avg_sq", 0.0) + (1 - b2) * g * g
    if bias_correction:
        m, v = m / (1 - b1 ** t), v / (1 - b2 ** t)
    u = m / (np.sqrt(v) + eps) + weight_decay * x
    x_norm, u_norm = np.sqrt(np.sum(x * x)), np.sqrt(np.sum(u * u))
    ratio = x_norm / u_norm if x_norm > 0 and u_norm > 0 else 1.0
    return x - lr * ratio * u


PAPER = {"lion": lion_paper, "lamb": lamb_paper}
#: The papers' defaults (LAMB: the published version, with bias correction).
PAPER_DEFAULTS = {
    "lion": dict(lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0, maximize=False),
    "lamb": dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.0,
                 bias_correction=True, maximize=False),
}


def _closure(opt, loss):
    """zero_grad, loss, backward; returns the loss (a closure for ``opt.step``)."""
    def closure():
        opt.zero_grad()
        out = loss()
        out.backward()
        return out
    return closure


def run_against_paper(case, defaults, groups=None, closure=False, seed=0):
    """200 steps of ``case.cls`` and of the paper's equations on the MLP; both agree."""
    arrays = mlp_arrays(seed)
    params, loss = na_mlp(arrays)
    ref, ref_loss = na_mlp(arrays)          # updated by the paper's equations only
    base = dict(PAPER_DEFAULTS[case.name], **defaults)
    if groups is None:
        spec, settings = params, [base] * 4
    else:
        spec = [dict(params=params[:2], **groups[0]), dict(params=params[2:], **groups[1])]
        settings = [dict(base, **groups[0])] * 2 + [dict(base, **groups[1])] * 2
    opt = case.cls(spec, **defaults)
    states = [{} for _ in ref]
    step_of_paper = PAPER[case.name]
    with na.autograd.grad_clip(None):
        for _ in range(STEPS):
            for p in ref:
                p.grad = None
            ref_out = ref_loss()
            ref_out.backward()
            if closure:
                got = opt.step(_closure(opt, loss))
                _close(got.item(), ref_out.item(), RTOL, f"{case}: closure loss")
            else:
                _closure(opt, loss)()
                opt.step()
            for p, state, kw in zip(ref, states, settings):
                p.data = step_of_paper(p.data, p.grad.data, state, **kw)
    for i, (p, r, state) in enumerate(zip(params, ref, states)):
        _close(p.data, r.data, RTOL, f"{case}: parameter {i}")
        assert set(opt.state[p]) == set(state), f"{case}: state keys of parameter {i}"
        for key, value in state.items():
            _close(opt.state[p][key], value, RTOL, f"{case}: {key} of parameter {i}")


PAPER_CASES = [LION_CASE, LAMB_CASE]


@pytest.mark.parametrize("case", PAPER_CASES, ids=str)
def test_defaults_are_the_papers(case):
    opt = case.cls([na.Parameter(np.ones(2))])
    assert opt.defaults == dict(PAPER_DEFAULTS[case.name], fused=None)   # fused: GPU path


@pytest.mark.parametrize("case", PAPER_CASES, ids=str)
def test_defaults_follow_the_paper(case):
    run_against_paper(case, {"lr": 1e-2})


@pytest.mark.parametrize("draw", range(4))
@pytest.mark.parametrize("case", PAPER_CASES, ids=str)
def test_random_hyperparameters_follow_the_paper(case, draw):
    run_against_paper(case, case.sample(np.random.default_rng(1000 + draw)), seed=draw)


@pytest.mark.parametrize("case,extreme", [(c, e) for c in PAPER_CASES for e in c.extremes],
                         ids=lambda x: str(x) if not isinstance(x, dict) else
                         ",".join(f"{k}={v}" for k, v in x.items()))
def test_extreme_hyperparameters_follow_the_paper(case, extreme):
    run_against_paper(case, extreme)


@pytest.mark.parametrize("case", PAPER_CASES, ids=str)
def test_parameter_groups_with_different_settings_follow_the_paper(case):
    rng = np.random.default_rng(2000)
    defaults = case.sample(rng)
    run_against_paper(case, defaults, groups=[dict(lr=defaults["lr"] * 0.5), case.sample(rng)])


@pytest.mark.parametrize("case", PAPER_CASES, ids=str)
def test_closure_steps_follow_the_paper(case):
    run_against_paper(case, case.sample(np.random.default_rng(3000)), closure=True)


# ==== pytorch-optimizer ===============================================================

def run_against_twin(case, defaults, make_twin, groups=None, closure=False, seed=0,
                     keys=("exp_avg",)):
    """200 steps of ``case.cls`` and of a pytorch-optimizer twin; parameters and ``keys`` agree.

    ``make_twin(params_or_groups, **kwargs)`` builds the twin from our kwargs.
    """
    arrays = mlp_arrays(seed)
    params, loss = na_mlp(arrays)
    tparams, tloss = torch_mlp(arrays)
    if groups is None:
        spec, tspec = params, tparams
    else:
        spec = [dict(params=params[:2], **groups[0]), dict(params=params[2:], **groups[1])]
        tspec = [dict(params=tparams[:2], **groups[0]), dict(params=tparams[2:], **groups[1])]
    opt = case.cls(spec, **defaults)
    twin = make_twin(tspec, **defaults)

    def twin_closure():
        twin.zero_grad()
        out = tloss()
        out.backward()
        return out

    with na.autograd.grad_clip(None):
        for _ in range(STEPS):
            if closure:
                got, want = opt.step(_closure(opt, loss)), twin.step(twin_closure)
                _close(got.item(), want.item(), RTOL, f"{case}: closure loss")
            else:
                _closure(opt, loss)()
                opt.step()
                twin_closure()
                twin.step()
            if case is LAMB_CASE:     # below pytorch-optimizer's clamp φ(z) = min(z, 10)
                assert max(float(p.detach().norm()) for p in tparams) < 10
    for i, (p, tp) in enumerate(zip(params, tparams)):
        _close(p.data, tp.detach().numpy(), RTOL, f"{case}: parameter {i}")
        for key in keys:
            _close(opt.state[p][key], twin.state[tp][key].numpy(), RTOL,
                   f"{case}: {key} of parameter {i}")


def twin_lion(params, **kw):
    return pytorch_optimizer.Lion(params, weight_decouple=True, fixed_decay=False,
                                  foreach=False, **kw)


def twin_lamb(params, bias_correction=True, **kw):
    # v3 form: L2-in-update weight decay, no 1/(1-β1^t) outside the trust ratio
    return pytorch_optimizer.Lamb(params, weight_decouple=False, adam_debias=True,
                                  foreach=False, **kw)


def lamb_v3_draw(rng):
    """A LAMB draw in the form pytorch-optimizer's Lamb shares: v3, ε = 0, lr <= 1e-2."""
    kw = LAMB_CASE.sample(rng)
    kw.update(lr=min(kw["lr"], 1e-2), eps=0.0, bias_correction=False)
    return kw


@requires_ptopt
@pytest.mark.parametrize("draw", range(3))
def test_lion_matches_pytorch_optimizer(draw):
    kwargs = LION_CASE.sample(np.random.default_rng(1000 + draw))
    run_against_twin(LION_CASE, kwargs, twin_lion, seed=draw)


@requires_ptopt
def test_lion_defaults_groups_and_closure_match_pytorch_optimizer():
    run_against_twin(LION_CASE, {}, twin_lion)
    rng = np.random.default_rng(2000)
    defaults = LION_CASE.sample(rng)
    other = LION_CASE.sample(rng)
    other.pop("maximize")                  # pytorch-optimizer's maximize is not per group
    run_against_twin(LION_CASE, defaults, twin_lion, groups=[dict(lr=0.5 * defaults["lr"]),
                                                              other])
    run_against_twin(LION_CASE, LION_CASE.sample(rng), twin_lion, closure=True)


@requires_ptopt
@pytest.mark.parametrize("draw", range(3))
def test_lamb_v3_form_matches_pytorch_optimizer(draw):
    kwargs = lamb_v3_draw(np.random.default_rng(1000 + draw))
    run_against_twin(LAMB_CASE, kwargs, twin_lamb, seed=draw, keys=("exp_avg", "exp_avg_sq"))


@requires_ptopt
def test_lamb_with_bias_correction_and_no_decay_matches_pytorch_optimizer():
    # the default form: without weight decay and ε the trust ratio cancels the corrections
    rng = np.random.default_rng(4000)
    for _ in range(2):
        kwargs = lamb_v3_draw(rng)
        kwargs.update(bias_correction=True, weight_decay=0.0)
        run_against_twin(LAMB_CASE, kwargs, twin_lamb, keys=("exp_avg", "exp_avg_sq"))


@requires_ptopt
def test_lamb_groups_and_closure_match_pytorch_optimizer():
    rng = np.random.default_rng(2000)
    defaults, other = lamb_v3_draw(rng), lamb_v3_draw(rng)
    other.pop("maximize")
    keys = ("exp_avg", "exp_avg_sq")
    run_against_twin(LAMB_CASE, defaults, twin_lamb, keys=keys,
                     groups=[dict(lr=0.5 * defaults["lr"]), other])
    run_against_twin(LAMB_CASE, lamb_v3_draw(rng), twin_lamb, keys=keys, closure=True)


# ==== behaviour named in the docstrings ===============================================

def test_lion_moves_every_coordinate_by_exactly_lr():
    rng = np.random.default_rng(0)
    p = na.Parameter(rng.normal(size=(4, 3)))
    opt = Lion([p], lr=1e-3, betas=(0.5, 0.9))
    for _ in range(5):
        before = p.data.copy()
        p.grad = na.Tensor(rng.normal(size=(4, 3)))
        opt.step()
        np.testing.assert_allclose(np.abs(p.data - before), 1e-3, rtol=0, atol=1e-15)


def test_lion_weight_decay_is_decoupled_and_scaled_by_lr():
    p = na.Parameter(np.array([2.0, -4.0]))
    opt = Lion([p], lr=0.1, weight_decay=0.5)
    p.grad = na.Tensor(np.zeros(2))         # c = 0 and sign(0) = 0: only the decay acts
    opt.step()
    np.testing.assert_array_equal(p.data, [2.0 * 0.95, -4.0 * 0.95])
    np.testing.assert_array_equal(opt.m[p], [0.0, 0.0])


def test_lion_ends_in_a_cycle_of_size_lr_through_the_quadratic_minimum():
    params, loss, minimizer = quadratic()
    opt = Lion(params, lr=0.01)
    train(opt, params, loss, 650)
    errors = []
    for _ in range(50):
        train(opt, params, loss, 1)
        errors.append(np.abs(params[0].data - minimizer).max())
    assert max(errors) <= 0.01 * (1 + 1e-9)          # never more than one step away
    assert min(errors) < 1e-12                       # and on the minimum every other step


def test_lamb_trust_ratio_is_one_for_a_zero_parameter():
    p = na.Parameter(np.zeros(3))
    g = np.array([0.5, -2.0, 1e-3])
    opt = LAMB([p], lr=0.1, eps=1e-6)
    p.grad = na.Tensor(g)
    opt.step()                               # m̂ = g and v̂ = g² at step 1
    np.testing.assert_allclose(p.data, -0.1 * g / (np.abs(g) + 1e-6), rtol=1e-14)


def test_lamb_trust_ratio_is_one_for_a_zero_update():
    p = na.Parameter(np.array([3.0, 4.0]))
    opt = LAMB([p], lr=0.1)
    p.grad = na.Tensor(np.zeros(2))          # m = 0, so r = 0 and u = λθ = 0
    opt.step()
    np.testing.assert_array_equal(p.data, [3.0, 4.0])


@pytest.mark.parametrize("weight_decay", [0.0, 0.3])
def test_lamb_steps_each_tensor_by_lr_times_its_norm(weight_decay):
    rng = np.random.default_rng(1)
    params = [na.Parameter(rng.normal(size=s) * k) for s, k in [((4, 3), 1.0), ((3,), 5.0)]]
    opt = LAMB(params, lr=0.01, weight_decay=weight_decay)
    for _ in range(3):
        before = [p.data.copy() for p in params]
        for p in params:
            p.grad = na.Tensor(rng.normal(size=p.shape))
        opt.step()
        for p, b in zip(params, before):
            np.testing.assert_allclose(np.linalg.norm(p.data - b), 0.01 * np.linalg.norm(b),
                                       rtol=1e-12)


def test_lamb_contiguous_mode_updates_per_tensor_with_the_same_numbers():
    kwargs = LAMB_CASE.sample(np.random.default_rng(5))
    runs, calls = [], []
    for contiguous in (True, False):
        params, loss = na_mlp(mlp_arrays(0))
        opt = LAMB(params, contiguous=contiguous, **kwargs)
        update = opt._update
        opt._update = lambda param, *a: (calls.append(param.shape), update(param, *a))
        train(opt, params, loss, 5)
        runs.append([p.data.copy() for p in params]
                    + [opt.state[p][k].copy() for p in params for k in ("exp_avg", "exp_avg_sq")])
    assert calls[:4] == [(3, 5), (5,), (5, 2), (2,)]      # one trust ratio per tensor
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)


# ==== all five optimizers of this task ================================================

STATE_KEYS = {"adamax": {"step", "exp_avg", "exp_inf"},
              "nadam": {"step", "mu_product", "exp_avg", "exp_avg_sq"},
              "radam": {"step", "exp_avg", "exp_avg_sq"},
              "lion": {"exp_avg"},
              "lamb": {"step", "exp_avg", "exp_avg_sq"}}
VIEWS = {"adamax": {"m": "exp_avg", "u": "exp_inf"}, "lion": {"m": "exp_avg"}}


@pytest.mark.parametrize("case", CASES, ids=str)
def test_state_keys_and_moment_views(case):
    p = na.Parameter(np.ones(3))
    opt = case.cls([p])
    p.grad = na.Tensor(np.array([1.0, -2.0, 3.0]))
    opt.step()
    assert set(opt.state[p]) == STATE_KEYS[case.name]
    for view, key in VIEWS.get(case.name, {"m": "exp_avg", "v": "exp_avg_sq"}).items():
        assert getattr(opt, view)[p] is opt.state[p][key]
    if case.torch_name is not None and torch is not None:
        tp = torch.ones(3, requires_grad=True)
        topt = getattr(torch.optim, case.torch_name)([tp])
        tp.grad = torch.tensor([1.0, -2.0, 3.0])
        topt.step()
        assert set(topt.state[tp]) == STATE_KEYS[case.name]


@requires_torch
@pytest.mark.parametrize("case", [c for c in CASES if c.torch_name], ids=str)
def test_a_pytorch_state_dict_loads_and_continues_in_step(case):
    kwargs = case.sample(np.random.default_rng(11))
    arrays = mlp_arrays(1)
    params, loss = na_mlp(arrays)
    tparams, tloss = torch_mlp(arrays)
    topt = getattr(torch.optim, case.torch_name)(tparams, **kwargs)

    def torch_steps(n):
        for _ in range(n):
            topt.zero_grad()
            tloss().backward()
            topt.step()
    torch_steps(5)
    sd = topt.state_dict()
    sd["state"] = {i: {k: v.numpy().copy() for k, v in s.items()}
                   for i, s in sd["state"].items()}
    for p, tp in zip(params, tparams):
        p.data[...] = tp.detach().numpy()
    opt = case.cls(params)
    opt.load_state_dict(sd)
    if case.name == "nadam":
        assert isinstance(opt.state[params[0]]["mu_product"], float)
    with na.autograd.grad_clip(None):
        train(opt, params, loss, 10)
    torch_steps(10)
    for p, tp in zip(params, tparams):
        _close(p.data, tp.detach().numpy(), RTOL, f"{case}: parameter after resuming")


@pytest.mark.parametrize("contiguous", [False, True])
@pytest.mark.parametrize("case", CASES, ids=str)
def test_updates_on_the_fake_cupy_device_equal_the_cpu(case, contiguous):
    from tests import fake_cupy
    fake_cupy.register()
    rng = np.random.default_rng(42)
    kwargs = case.sample(rng)
    kwargs.update(weight_decay=0.1, maximize=True)
    if "decoupled_weight_decay" in case.cls.hyperparameters:
        kwargs["decoupled_weight_decay"] = contiguous
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
        results[device] = [backend.asnumpy(p.data) for p in params] + [
            backend.asnumpy(v) for p in params for v in opt.state[p].values()
            if hasattr(v, "shape")]
    for a, b in zip(results["cpu"], results["fake"]):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-14)
