"""LARS against its references, step for step.

LARS has no PyTorch twin, so its parity runs here: against pytorch-optimizer's
``LARS`` (skipped when that package is missing) where the two variants agree
(``eps=0``, 1-D tensors excluded, ``‖g‖ > 0``), and against the paper's
Algorithm 1 written out below in plain NumPy with its own analytic gradients,
which also covers ``eps``, ``exclude_1d=False`` and the zero-norm conventions.
The table row (``cases.py``) brings state_dict resume, contiguous mode,
state keys, the fake CuPy and convergence.
"""
from __future__ import annotations

import numpy as np
import pytest

import neural_arch as na
from neural_arch.optim.lars import LARS, lars_trust_ratio, lars_update
from tests.helpers import requires_torch
from tests.optim.cases import get_case, mlp_arrays, na_mlp, sample_lars, torch_mlp, train
from tests.optim.test_parity import assert_same
from tests.optim.test_state_dict import assert_identical, snapshot

LARS_CASE = get_case("lars")

try:
    from pytorch_optimizer import LARS as ReferenceLARS
except ImportError:                                    # pragma: no cover - optional
    ReferenceLARS = None

needs_reference = pytest.mark.skipif(ReferenceLARS is None,
                                     reason="pytorch-optimizer is not installed")


# ---- pytorch-optimizer, 200 steps on the MLP ----------------------------------------------

def _reference_kwargs(kw):
    """Our kwargs in the variant both implement (no eps, 1-D tensors excluded)."""
    return {k: v for k, v in kw.items() if k not in ("eps", "exclude_1d", "maximize")}


def _run_against_reference(defaults, groups=None, closure=False, steps=200, seed=0):
    arrays = mlp_arrays(seed)
    params, loss = na_mlp(arrays)
    tparams, tloss = torch_mlp(arrays)
    maximize = defaults.get("maximize", False)
    ours = dict(defaults, eps=0.0, exclude_1d=True)
    if groups is None:
        spec, tspec = params, tparams
    else:
        groups = [dict(g, eps=0.0, exclude_1d=True, maximize=maximize) for g in groups]
        spec = [dict(params=params[:2], **groups[0]), dict(params=params[2:], **groups[1])]
        tspec = [dict(params=tparams[:2], **_reference_kwargs(groups[0])),
                 dict(params=tparams[2:], **_reference_kwargs(groups[1]))]
    opt = LARS(spec, **ours)
    ref = ReferenceLARS(tspec, foreach=False, maximize=maximize, **_reference_kwargs(ours))

    def na_closure():
        opt.zero_grad()
        out = loss()
        out.backward()
        return out

    def ref_closure():
        ref.zero_grad()
        out = tloss()
        out.backward()
        return out

    with na.autograd.grad_clip(None):
        for _ in range(steps):
            if closure:
                got, want = opt.step(na_closure), ref.step(ref_closure)
                assert abs(got.item() - want.item()) <= 1e-10 * max(1.0, abs(want.item()))
            else:
                na_closure()
                opt.step()
                ref_closure()
                ref.step()
    assert_same(LARS_CASE, opt, ref, params, tparams)


def _draw(rng, maximize):
    """A draw of ``sample_lars`` in the reference's variant, with the given maximize."""
    while True:
        kw = sample_lars(rng)
        if kw["maximize"] == maximize and kw["exclude_1d"]:
            return kw


@needs_reference
@requires_torch
def test_defaults_match_pytorch_optimizer():
    _run_against_reference({})


@needs_reference
@requires_torch
@pytest.mark.parametrize("draw", range(4))
def test_random_hyperparameters_match_pytorch_optimizer(draw):
    rng = np.random.default_rng(4000 + draw)
    _run_against_reference(_draw(rng, bool(draw % 2)), seed=draw)


@needs_reference
@requires_torch
@pytest.mark.parametrize("extreme", [e for e in LARS_CASE.extremes
                                     if not e.get("eps") and e.get("exclude_1d", True)],
                         ids=lambda e: ",".join(f"{k}={v}" for k, v in e.items()))
def test_extreme_hyperparameters_match_pytorch_optimizer(extreme):
    _run_against_reference(extreme)


@needs_reference
@requires_torch
def test_parameter_groups_and_closures_match_pytorch_optimizer():
    rng = np.random.default_rng(4100)
    defaults = _draw(rng, False)
    other = _draw(rng, False)
    _run_against_reference(defaults, groups=[dict(lr=defaults["lr"] * 0.5), other])
    _run_against_reference(_draw(rng, True), closure=True)


# ---- the paper's Algorithm 1, in NumPy --------------------------------------------------

def _problem(seed):
    """Least squares ½‖X W + b - Y‖² with its analytic gradients; W is 2-D, b is 1-D."""
    rng = np.random.default_rng(seed)
    X, Y = rng.normal(size=(6, 4)), rng.normal(size=(6, 3))
    W, b = rng.normal(0.0, 0.5, size=(4, 3)), rng.normal(0.0, 0.5, size=3)

    def grads(W, b):
        r = X @ W + b - Y
        return X.T @ r, r.sum(axis=0)

    def na_loss(Wp, bp):
        d = na.Tensor(X) @ Wp + bp - na.Tensor(Y)
        return (d * d).sum() * 0.5
    return [W, b], grads, na_loss


def _paper(weights, grads, steps, *, lr, momentum, weight_decay, trust_coefficient, eps,
           exclude_1d, maximize):
    """Algorithm 1 of You et al. (2017): v ← m v + γ λ (∇L + β w), w ← w - v (γ fixed)."""
    ws = [w.copy() for w in weights]
    vs = [np.zeros_like(w) for w in ws]
    sign = -1.0 if maximize else 1.0
    for _ in range(steps):
        gs = [sign * g for g in grads(*ws)]
        for i, (w, g) in enumerate(zip(ws, gs)):
            if exclude_1d and w.ndim <= 1:
                update = g                                   # plain momentum SGD
            else:
                wn, gn = np.linalg.norm(w), np.linalg.norm(g)
                local = 1.0 if wn == 0 or gn == 0 else \
                    trust_coefficient * wn / (gn + weight_decay * wn + eps)
                update = local * (g + weight_decay * w)
            vs[i] = momentum * vs[i] + lr * update
            ws[i] = w - vs[i]
    return ws


_LARS_DEFAULTS = dict(lr=1e-3, momentum=0.9, weight_decay=0.0, trust_coefficient=1e-3,
                     eps=1e-8, exclude_1d=True, maximize=False)
_PAPER_SETTINGS = [
    dict(lr=0.5, momentum=0.9, weight_decay=1e-3, trust_coefficient=0.02, eps=1e-8,
         exclude_1d=False),
    dict(lr=0.1, momentum=0.0, trust_coefficient=1e-3, eps=0.0),
    dict(lr=0.3, momentum=0.5, weight_decay=0.5, trust_coefficient=0.1, eps=1e-3,
         exclude_1d=False, maximize=True),
    dict(lr=1.0, momentum=0.99, weight_decay=0.1, trust_coefficient=1.0, eps=0.0),
    {},
] + [e for e in LARS_CASE.extremes if not e.get("dampening") and not e.get("nesterov")]


@pytest.mark.parametrize("settings", _PAPER_SETTINGS,
                         ids=lambda e: ",".join(f"{k}={v}" for k, v in e.items()) or "defaults")
def test_steps_follow_the_papers_algorithm(settings):
    weights, grads, na_loss = _problem(1)
    expected = _paper(weights, grads, 60, **dict(_LARS_DEFAULTS, **settings))
    params = [na.Parameter(w.copy()) for w in weights]
    opt = LARS(params, **settings)
    with na.autograd.grad_clip(None):
        train(opt, params, lambda: na_loss(*params), 60)
    for p, e in zip(params, expected):
        np.testing.assert_allclose(p.data, e, rtol=1e-11, atol=1e-12)


def test_one_step_by_hand():
    w = np.array([[3.0, 0.0], [0.0, 4.0]])                 # ‖w‖ = 5
    g = np.array([[0.0, 6.0], [8.0, 0.0]])                 # ‖g‖ = 10
    p = na.Parameter(w.copy())
    opt = LARS([p], lr=0.5, weight_decay=0.2, trust_coefficient=0.01, eps=0.0)
    p.grad = na.Tensor(g.copy())
    opt.step()
    ratio = 0.01 * 5 / (10 + 0.2 * 5)                       # η‖w‖ / (‖g‖ + β‖w‖)
    u = ratio * (g + 0.2 * w)
    np.testing.assert_allclose(opt.state[p]["momentum_buffer"], u, rtol=1e-15)  # b_1 = u_1
    np.testing.assert_allclose(p.data, w - 0.5 * u, rtol=1e-15)
    np.testing.assert_array_equal(p.grad.data, g)           # the gradient is not modified


def test_trust_ratio_is_one_when_a_norm_is_zero():
    kw = dict(trust_coefficient=1e-3, weight_decay=0.1, eps=1e-8)
    assert lars_trust_ratio(0.0, 3.0, **kw) == 1.0          # a fresh zero-initialised layer
    assert lars_trust_ratio(2.0, 0.0, **kw) == 1.0          # (pytorch-optimizer: η / β)
    assert lars_trust_ratio(2.0, 3.0, **kw) == pytest.approx(1e-3 * 2 / (3 + 0.2 + 1e-8))
    # a zero layer takes a plain SGD step
    p = na.Parameter(np.zeros((2, 2)))
    opt = LARS([p], lr=0.1, momentum=0.0, exclude_1d=False)
    p.grad = na.Tensor(np.ones((2, 2)))
    opt.step()
    np.testing.assert_allclose(p.data, -0.1)
    # a zero gradient with weight decay: ratio 1, so the step is lr β w
    q = na.Parameter(np.full((2, 2), 2.0))
    opt = LARS([q], lr=0.1, momentum=0.0, weight_decay=0.5)
    q.grad = na.Tensor(np.zeros((2, 2)))
    opt.step()
    np.testing.assert_allclose(q.data, 2.0 - 0.1 * 0.5 * 2.0)


def test_exclude_1d_gives_vectors_plain_sgd_and_is_per_group():
    rng = np.random.default_rng(0)
    w, b = rng.normal(size=(3, 2)), rng.normal(size=2)
    gw, gb = rng.normal(size=(3, 2)), rng.normal(size=2)
    kw = dict(lr=0.1, momentum=0.0, weight_decay=0.3, trust_coefficient=0.05, eps=0.0)

    def step(groups):
        pw, pb = na.Parameter(w.copy()), na.Parameter(b.copy())
        opt = LARS([dict(params=[pw], **groups[0]), dict(params=[pb], **groups[1])], **kw)
        pw.grad, pb.grad = na.Tensor(gw.copy()), na.Tensor(gb.copy())
        opt.step()
        return pw.data, pb.data

    def adapted(x, g):
        r = lars_trust_ratio(np.linalg.norm(x), np.linalg.norm(g), trust_coefficient=0.05,
                             weight_decay=0.3, eps=0.0)
        return x - 0.1 * r * (g + 0.3 * x)

    new_w, new_b = step([{}, {}])                           # the default: exclude_1d=True
    np.testing.assert_allclose(new_w, adapted(w, gw), rtol=1e-14)
    np.testing.assert_allclose(new_b, b - 0.1 * gb, rtol=1e-14)   # no ratio, no decay
    _, new_b = step([{}, dict(exclude_1d=False)])
    np.testing.assert_allclose(new_b, adapted(b, gb), rtol=1e-14)


def test_kernel_leaves_the_gradient_alone_and_matches_the_class():
    rng = np.random.default_rng(3)
    w, g = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    buf = rng.normal(size=(4, 3))
    kw = dict(lr=0.2, momentum=0.8, dampening=0.1, weight_decay=0.05, trust_coefficient=0.1,
              eps=1e-6, maximize=True)
    theta, grad, b = w.copy(), g.copy(), buf.copy()
    lars_update(theta, grad, b, **kw)
    np.testing.assert_array_equal(grad, g)
    ratio = lars_trust_ratio(np.linalg.norm(w), np.linalg.norm(g), trust_coefficient=0.1,
                             weight_decay=0.05, eps=1e-6)
    u = ratio * (-g + 0.05 * w)
    b_t = 0.8 * buf + 0.9 * u
    np.testing.assert_allclose(b, b_t, rtol=1e-13)
    np.testing.assert_allclose(theta, w - 0.2 * b_t, rtol=1e-13)


# ---- training with the paper's schedule ----------------------------------------------------

def test_reaches_a_least_squares_minimum_with_polynomial_decay():
    weights, grads, na_loss = _problem(2)
    params = [na.Parameter(w.copy()) for w in weights]
    opt = LARS(params, lr=5.0, momentum=0.9, trust_coefficient=0.01, exclude_1d=False)
    steps = 1500
    for t in range(steps):
        opt.lr = 5.0 * (1 - t / steps) ** 2                 # γ_t = γ_0 (1 - t/T)², the paper's
        opt.zero_grad()
        na_loss(*params).backward()
        opt.step()
    assert max(np.abs(g).max() for g in grads(*[p.data for p in params])) < 1e-4


# ---- contiguous mode, devices, arguments ----------------------------------------------------

@pytest.mark.parametrize("draw", range(3))
def test_contiguous_mode_updates_each_tensor_on_views_with_the_same_numbers(draw):
    kwargs = sample_lars(np.random.default_rng(500 + draw))
    runs, calls = [], []
    for contiguous in (True, False):
        params, loss = na_mlp(mlp_arrays(draw))
        spec = [dict(params=params[:2]), dict(params=params[2:], lr=kwargs["lr"] * 0.3)]
        opt = LARS(spec, contiguous=contiguous, **kwargs)
        update = opt._update
        opt._update = lambda p, g, s, grp: (calls.append(p.shape), update(p, g, s, grp))
        train(opt, params, loss, 20)
        runs.append(snapshot(opt, params))
        if contiguous:
            bucket = opt._flat[0].buckets[0]
            assert all(np.shares_memory(p.data, bucket.param) for p in params[:2])
    assert calls[:4] == [(3, 5), (5,), (5, 2), (2,)]       # per tensor, never the flat group
    assert_identical(*runs)


@pytest.mark.parametrize("contiguous", [False, True])
def test_updates_on_the_fake_cupy_device_equal_the_cpu(contiguous):
    from neural_arch import backend
    from tests import fake_cupy
    fake_cupy.register()
    rng = np.random.default_rng(42)
    kwargs = dict(lr=0.3, momentum=0.9, nesterov=True, weight_decay=0.1, eps=1e-6,
                  trust_coefficient=0.02, exclude_1d=False, maximize=True)
    shapes = [(3, 2), (2,), ()]
    init = [rng.normal(size=s) for s in shapes]
    grads = [[rng.normal(size=s) for s in shapes] for _ in range(4)]
    results = {}
    for device in ("cpu", "fake"):
        params = [na.Parameter(backend.to_device(a.copy(), device)) for a in init]
        opt = LARS(params, contiguous=contiguous, **kwargs)
        for step_grads in grads:
            for p, g in zip(params, step_grads):
                p.grad = na.Tensor(backend.to_device(g, device))
            opt.step()
        results[device] = [backend.asnumpy(p.data) for p in params] + \
            [backend.asnumpy(opt.state[p]["momentum_buffer"]) for p in params]
    for a, b in zip(results["cpu"], results["fake"]):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-14)


def _p():
    return [na.Parameter(np.ones((2, 2)))]


@pytest.mark.parametrize("kwargs,err,match", [
    (dict(trust_coefficient=-1.0), ValueError,
     r"Invalid trust_coefficient value: -1.0 \(expected trust_coefficient >= 0\)"),
    (dict(eps=-1e-8), ValueError, r"Invalid epsilon value: -1e-08"),
    (dict(momentum=0.0, nesterov=True), ValueError, "Nesterov momentum requires a momentum"),
    (dict(dampening=1.5), ValueError, r"Invalid dampening value: 1.5"),
    (dict(exclude_1d="yes"), TypeError, "exclude_1d must be True or False"),
    (dict(trust_ratio=0.1), TypeError, "unexpected keyword argument.*'trust_ratio'"),
])
def test_invalid_arguments_are_named(kwargs, err, match):
    with pytest.raises(err, match=match):
        LARS(_p(), **kwargs)


def test_aliases_state_keys_and_defaults():
    opt = LARS(_p(), learning_rate=0.2, epsilon=1e-6)
    group = opt.param_groups[0]
    assert group["lr"] == 0.2 and group["eps"] == 1e-6
    assert (group["momentum"], group["trust_coefficient"], group["exclude_1d"]) == \
        (0.9, 1e-3, True)
    assert LARS.elementwise is False
    p = opt.param_groups[0]["params"][0]
    p.grad = na.Tensor(np.ones((2, 2)))
    opt.step()
    assert set(opt.state[p]) == {"momentum_buffer"}
    q = na.Parameter(np.ones(3))
    plain = LARS([q], momentum=0.0)
    q.grad = na.Tensor(np.ones(3))
    plain.step()
    assert not plain.state[q]
