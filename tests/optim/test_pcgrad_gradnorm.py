"""PCGrad and GradNorm: hand-computed projections and weight updates, the direct (vector)
form of the algorithms in NumPy, balancing on a toy problem, state dicts, errors."""
from __future__ import annotations

import numpy as np
import pytest

import neural_arch as na
from neural_arch.optim import SGD, Adam, GradNorm, PCGrad
from neural_arch.optim.pcgrad import project_conflicting


def linear_task(w, g, head=None, c=None):
    """A loss whose gradient is g for w (and c for head): g·w (+ c·head)."""
    out = (w * na.Tensor(np.asarray(g, dtype=float))).sum()
    if head is not None:
        out = out + (head * na.Tensor(np.asarray(c, dtype=float))).sum()
    return out


# ---- PCGrad ----------------------------------------------------------------------------

@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_two_conflicting_tasks_get_the_hand_computed_projections(reduction):
    w = na.Parameter(np.array([0.5, -0.5]))
    h1, h2 = na.Parameter(np.zeros(3)), na.Parameter(np.zeros(1))
    opt = PCGrad([w, h1, h2], base_optimizer=SGD, lr=1.0, reduction=reduction, seed=0)
    g1, g2 = [1.0, 1.0], [-1.0, 0.5]                   # g1·g2 = -0.5 < 0: a conflict
    c1, c2 = [1.0, 2.0, 3.0], [-4.0]
    opt.zero_grad()
    opt.step([linear_task(w, g1, h1, c1), linear_task(w, g2, h2, c2)])
    # g1 - (-0.5 / 1.25) g2 = [0.6, 1.2];  g2 - (-0.5 / 2) g1 = [-0.75, 0.75]
    merged = np.array([0.6 - 0.75, 1.2 + 0.75]) / (2 if reduction == "mean" else 1)
    np.testing.assert_allclose(w.grad.data, merged, rtol=1e-14)
    np.testing.assert_allclose(w.data, np.array([0.5, -0.5]) - merged, rtol=1e-14)
    np.testing.assert_array_equal(h1.grad.data, c1)    # task-specific: own gradient
    np.testing.assert_array_equal(h2.grad.data, c2)
    assert opt.last_conflicts == 2


def test_tasks_that_do_not_conflict_are_left_unchanged():
    w = na.Parameter(np.zeros(3))
    opt = PCGrad([w], base_optimizer=SGD, lr=0.0)
    g1, g2 = np.array([1.0, 2.0, 0.0]), np.array([0.5, -0.1, 3.0])   # g1·g2 = 0.3 > 0
    opt.step([linear_task(w, g1), linear_task(w, g2)])
    np.testing.assert_allclose(w.grad.data, g1 + g2, rtol=1e-15)
    assert opt.last_conflicts == 0
    opt.step([linear_task(w, g1)])                        # one task: its own gradient
    np.testing.assert_array_equal(w.grad.data, g1)


def reference_pcgrad(gs, seed, rounds):
    """Algorithm 1 on explicit vectors, drawing each task's order as PCGrad does."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(rounds):
        total = np.zeros_like(gs[0])
        for i, gi in enumerate(gs):
            pc = gi.copy()
            for j in rng.permutation([j for j in range(len(gs)) if j != i]):
                dot = pc @ gs[j]
                if dot < 0:
                    pc = pc - dot / (gs[j] @ gs[j]) * gs[j]
            total += pc
        out.append(total)
    return out


def test_three_tasks_in_random_order_equal_the_vector_form_of_algorithm_1():
    rng = np.random.default_rng(3)
    gs = [rng.normal(size=5) for _ in range(3)]
    gs[2] = -0.8 * gs[0] + 0.3 * rng.normal(size=5)   # make sure something conflicts
    a = na.Parameter(np.zeros(2))
    b = na.Parameter(np.zeros(3))                    # the shared vector is (a, b)
    opt = PCGrad([a, b], base_optimizer=SGD, lr=0.0, seed=11)
    expected = reference_pcgrad(gs, 11, 4)
    for step in range(4):
        opt.step([linear_task(a, g[:2]) + linear_task(b, g[2:]) for g in gs])
        got = np.concatenate([a.grad.data, b.grad.data])
        np.testing.assert_allclose(got, expected[step], rtol=1e-12, atol=1e-14)
    assert opt.last_conflicts > 0
    # the order matters here: some seeds give another result
    results = {tuple(np.round(reference_pcgrad(gs, s, 1)[0], 10)) for s in range(12)}
    assert len(results) > 1


def test_a_parameter_only_some_tasks_reach_gets_their_plain_sum():
    shared = na.Parameter(np.zeros(2))
    pair = na.Parameter(np.zeros(2))                 # reached by tasks 0 and 1 only
    opt = PCGrad([shared, pair], base_optimizer=SGD, lr=0.0, seed=1)
    g = [np.array([1.0, 0.0]), np.array([-1.0, 1.0]), np.array([0.0, 2.0])]
    p = [np.array([1.0, 1.0]), np.array([-3.0, 0.5])]
    losses = [linear_task(shared, g[0], pair, p[0]), linear_task(shared, g[1], pair, p[1]),
              linear_task(shared, g[2])]
    opt.step(losses)
    np.testing.assert_array_equal(pair.grad.data, p[0] + p[1])
    np.testing.assert_allclose(shared.grad.data, reference_pcgrad(g, 1, 1)[0], rtol=1e-13)


def test_project_conflicting_on_a_gram_matrix():
    gram = np.array([[2.0, -0.5], [-0.5, 1.25]])
    coef, n = project_conflicting(gram, np.random.default_rng(0))
    np.testing.assert_allclose(coef, [[1.0, 0.4], [0.25, 1.0]])
    assert n == 2


def test_pcgrad_defaults_and_state_dict_resume():
    opt = PCGrad([na.Parameter(np.ones(2))], lr=1e-3)
    assert isinstance(opt.base_optimizer, Adam) and opt.reduction == "sum"
    rng = np.random.default_rng(8)
    gs = [rng.normal(size=4) for _ in range(4)]

    def run(o, w, n):
        for _ in range(n):
            o.zero_grad()
            o.step([linear_task(w, g) * (1.0 + (w * w).sum()) for g in gs])

    w = na.Parameter(rng.normal(size=4))
    opt = PCGrad([w], lr=0.01, seed=5, reduction="mean")
    run(opt, w, 3)
    sd = opt.state_dict()
    assert sd["pcgrad"]["reduction"] == "mean" and "exp_avg" in sd["state"][0]
    mid = w.data.copy()
    run(opt, w, 4)
    w2 = na.Parameter(mid)
    fresh = PCGrad([w2], lr=0.5, seed=99)
    fresh.load_state_dict(sd)
    assert fresh.reduction == "mean" and fresh.step_count == 3
    run(fresh, w2, 4)
    np.testing.assert_array_equal(w2.data, w.data)
    bad = opt.state_dict()
    bad["pcgrad"]["rng"] = {"bit_generator": "MT19937", "state": {}}
    with pytest.raises(ValueError, match="generator"):
        fresh.load_state_dict(bad)
    bad = opt.state_dict()
    bad["pcgrad"]["reduction"] = "max"
    with pytest.raises(ValueError, match="reduction"):
        fresh.load_state_dict(bad)
    assert fresh.step_count == 7


def test_pcgrad_bad_arguments_give_clear_errors():
    w = na.Parameter(np.ones(2))
    with pytest.raises(ValueError, match="reduction"):
        PCGrad([w], reduction="max")
    with pytest.raises(ValueError, match="seed"):
        PCGrad([w], seed=-1)
    with pytest.raises(TypeError, match="base_optimizer"):
        PCGrad([w], base_optimizer="adam")
    opt = PCGrad([w], lr=0.1)
    with pytest.raises(TypeError, match="list of scalar task losses"):
        opt.step(lambda: None)
    with pytest.raises(TypeError, match="list of scalar task losses"):
        opt.step()
    with pytest.raises(ValueError, match="empty"):
        opt.step([])
    with pytest.raises(ValueError, match="scalar"):
        opt.step([w * 2.0])
    with pytest.raises(ValueError, match="does not require grad"):
        opt.step([na.Tensor(1.0)])
    with pytest.raises(TypeError, match="must be a Tensor"):
        opt.step([(w * w).sum(), 1.0])
    other = na.Parameter(np.ones(2))
    with pytest.raises(ValueError, match="task loss 1 does not depend on any parameter"):
        opt.step([(w * w).sum(), (other * other).sum()])
    assert opt.step_count == 0 and w.grad is None


# ---- GradNorm ----------------------------------------------------------------------------

T1, T2 = np.array([1.0, -1.0, 0.5]), np.array([-2.0, 0.0, 1.0])
S = np.array([1.0, 3.0])


def gn_losses(W):
    """L_i = s_i/2 ||W - t_i||²: gradient s_i (W - t_i)."""
    return [0.5 * S[0] * ((W - na.Tensor(T1)) ** 2).sum(),
            0.5 * S[1] * ((W - na.Tensor(T2)) ** 2).sum()]


def test_weight_updates_equal_the_papers_formula_by_hand():
    W0 = np.array([0.3, 0.2, -0.4])
    W = na.Parameter(W0.copy())
    alpha, wlr, lr = 1.5, 0.05, 0.1
    opt = GradNorm([W], base_optimizer=SGD, lr=lr, alpha=alpha, weight_optimizer=SGD,
                   weight_lr=wlr, shared_parameters=[W])
    assert opt.task_weights is None
    Wr, w, L0 = W0.copy(), np.ones(2), None
    for _ in range(4):
        opt.zero_grad()
        opt.step(gn_losses(W))
        # by hand, with the numbers of this step
        grads = [S[0] * (Wr - T1), S[1] * (Wr - T2)]
        L = np.array([0.5 * S[0] * np.sum((Wr - T1) ** 2), 0.5 * S[1] * np.sum((Wr - T2) ** 2)])
        L0 = L if L0 is None else L0
        n = np.array([np.linalg.norm(g) for g in grads])
        G = w * n
        r = (L / L0) / np.mean(L / L0)
        target = G.mean() * r ** alpha
        dw = np.sign(G - target) * n
        model_grad = w[0] * grads[0] + w[1] * grads[1]     # with w(t)
        w = w - wlr * dw
        w = w * 2 / w.sum()
        Wr = Wr - lr * model_grad
        np.testing.assert_allclose(opt.task_weights, w, rtol=1e-13)
        np.testing.assert_allclose(opt.grad_norms, G, rtol=1e-13)
        np.testing.assert_allclose(W.data, Wr, rtol=1e-13)
        np.testing.assert_allclose(W.grad.data, model_grad, rtol=1e-13)
    np.testing.assert_allclose(opt.initial_losses, L0)
    assert opt.num_tasks == 2 and abs(opt.task_weights.sum() - 2) < 1e-12


def test_returns_the_weighted_loss_and_defaults_to_all_shared_parameters():
    W = na.Parameter(np.array([0.3, 0.2, -0.4]))
    head = na.Parameter(np.array([2.0]))
    opt = GradNorm([W, head], lr=1e-3, num_tasks=2)   # the seed's defaults: Adam, alpha 1.5
    np.testing.assert_array_equal(opt.task_weights, [1.0, 1.0])
    assert isinstance(opt.base_optimizer, Adam) and opt.weight_lr == 1e-3
    losses = gn_losses(W)
    losses[1] = losses[1] * head.sum()                 # the head belongs to task 2 only
    expected = float(losses[0].item() + losses[1].item())
    total = opt.step(losses)
    assert float(total.item()) == pytest.approx(expected) and total.creator is None
    # W was the only shared parameter: the norms are measured there
    n = [np.linalg.norm(S[0] * (np.array([0.3, 0.2, -0.4]) - T1)),
         2.0 * np.linalg.norm(S[1] * (np.array([0.3, 0.2, -0.4]) - T2))]
    np.testing.assert_allclose(opt.grad_norms, n, rtol=1e-12)
    # Adam's first step on the weights moves each by about weight_lr, then renormalized
    np.testing.assert_allclose(opt.task_weights, [1.001, 0.999], rtol=1e-6)


def toy_problem(seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(32, 4))
    y1 = np.tanh(X @ rng.normal(size=(4, 1)))
    y2 = np.tanh(X @ rng.normal(size=(4, 1)))
    shared = na.nn.Linear(4, 8)
    head1, head2 = na.nn.Linear(8, 1), na.nn.Linear(8, 1)
    for m in (shared, head1, head2):
        for p in m.parameters():
            p.data = p.data.astype(np.float64)
    Xt, y1t, y2t = na.Tensor(X), na.Tensor(y1), na.Tensor(y2)

    def losses():
        h = na.tanh(shared(Xt))
        return [((head1(h) - y1t) ** 2).mean(), 10.0 * ((head2(h) - y2t) ** 2).mean()]
    params = list(shared.parameters()) + list(head1.parameters()) + list(head2.parameters())
    return params, shared, losses


def test_on_a_ten_times_imbalanced_toy_problem_the_weights_balance_the_gradient_norms():
    params, shared, losses = toy_problem()
    opt = GradNorm(params, lr=0.01, alpha=0.5, weight_lr=0.02,
                   shared_parameters=[shared.weight])
    ratios = []
    for _ in range(120):
        opt.zero_grad()
        opt.step(losses())
        ratios.append(opt.grad_norms[1] / opt.grad_norms[0])
    w = opt.task_weights
    assert ratios[0] > 5                                # task 2 dominates at the start
    assert 0.5 < ratios[-1] < 2.0                       # balanced at the end
    assert w[0] > 3 * w[1] and abs(w.sum() - 2) < 1e-12


def test_gradnorm_state_dict_resumes_bit_for_bit():
    params, shared, losses = toy_problem(1)
    opt = GradNorm(params, lr=0.01, weight_lr=0.01, shared_parameters=[shared.weight])
    for _ in range(3):
        opt.zero_grad()
        opt.step(losses())
    sd = opt.state_dict()
    assert set(sd["gradnorm"]) >= {"weights", "initial_losses", "weight_optimizer", "alpha"}
    mid = [p.data.copy() for p in params]
    for _ in range(4):
        opt.zero_grad()
        opt.step(losses())
    reference = [p.data.copy() for p in params] + [opt.task_weights]

    params2, shared2, losses2 = toy_problem(1)
    for p, m in zip(params2, mid):
        p.data = m.copy()
    fresh = GradNorm(params2, lr=0.5, alpha=3.0, shared_parameters=[shared2.weight])
    fresh.load_state_dict(sd)
    assert fresh.alpha == 1.5 and fresh.num_tasks == 2
    np.testing.assert_array_equal(fresh.task_weights, sd["gradnorm"]["weights"])
    for _ in range(4):
        fresh.zero_grad()
        fresh.step(losses2())
    for a, b in zip([p.data for p in params2] + [fresh.task_weights], reference):
        np.testing.assert_array_equal(a, b)
    bad = opt.state_dict()
    bad["gradnorm"]["weights"] = np.ones(3)
    with pytest.raises(ValueError, match="shape"):
        fresh.load_state_dict(bad)
    with pytest.raises(ValueError, match="no 'gradnorm' entry"):
        fresh.load_state_dict(Adam(params2).state_dict())
    three = GradNorm(params2, lr=0.1, num_tasks=3)
    with pytest.raises(ValueError, match="2 tasks"):
        three.load_state_dict(sd)
    np.testing.assert_array_equal(three.task_weights, np.ones(3))


def test_a_weight_update_that_breaks_the_normalization_raises_and_changes_nothing():
    W = na.Parameter(np.array([0.3, 0.2, -0.4]))
    opt = GradNorm([W], base_optimizer=SGD, lr=0.1, weight_optimizer=SGD, weight_lr=1e3,
                   num_tasks=2)
    # step 1: w_i -= 1e3 sign(G_i - Ḡ) n_i makes the sum 2 - 1e3 (n_max - n_min) < 0
    with pytest.raises(FloatingPointError, match="weight_lr"):
        opt.step(gn_losses(W))
    np.testing.assert_array_equal(opt.task_weights, [1.0, 1.0])
    np.testing.assert_array_equal(W.data, [0.3, 0.2, -0.4])
    assert W.grad is None and opt.step_count == 0 and opt.initial_losses is None
    opt.weight_lr = 0.01                               # reaches the weight optimizer
    opt.step(gn_losses(W))
    assert opt.step_count == 1 and opt.task_weights[0] != 1.0
    assert opt.state_dict()["gradnorm"]["weight_optimizer"]["param_groups"][0]["lr"] == 0.01


def test_gradnorm_bad_arguments_give_clear_errors():
    W = na.Parameter(np.ones(3))
    other = na.Parameter(np.ones(2))
    with pytest.raises(ValueError, match="alpha"):
        GradNorm([W], alpha=-1.0)
    with pytest.raises(ValueError, match="num_tasks"):
        GradNorm([W], num_tasks=0)
    with pytest.raises(TypeError, match="num_tasks"):
        GradNorm([W], num_tasks=2.0)
    with pytest.raises(ValueError, match="weight_lr"):
        GradNorm([W], weight_lr=-0.1)
    with pytest.raises(TypeError, match="weight_optimizer"):
        GradNorm([W], weight_optimizer="adam")
    with pytest.raises(ValueError, match="not among the parameters"):
        GradNorm([W], shared_parameters=[other])
    with pytest.raises(TypeError, match="shared_parameters"):
        GradNorm([W], shared_parameters=[1.0])
    opt = GradNorm([W, other], lr=0.1, num_tasks=2, shared_parameters=W)
    with pytest.raises(ValueError, match="expected num_tasks=2"):
        opt.step([(W * W).sum()])
    with pytest.raises(ValueError, match="positive"):
        opt.step([(W * W).sum(), (W * 0.0).sum()])
    with pytest.raises(ValueError, match="does not depend on the shared_parameters"):
        opt.step([(W * W).sum(), (other * other).sum()])
    opt = GradNorm([W, other], lr=0.1)
    with pytest.raises(ValueError, match="share no parameter"):
        opt.step([(W * W).sum(), (other * other).sum()])
    assert opt.task_weights is None and opt.initial_losses is None


# ---- the fake CuPy device ----------------------------------------------------------------

def test_pcgrad_and_gradnorm_on_the_fake_device_equal_the_cpu():
    from neural_arch import backend
    from tests import fake_cupy
    fake_cupy.register()
    rng = np.random.default_rng(4)
    init = [rng.normal(size=(3, 4)), rng.normal(size=4), rng.normal(size=(4, 1)),
            rng.normal(size=(4, 1))]
    X, y1, y2 = rng.normal(size=(6, 3)), rng.normal(size=(6, 1)), rng.normal(size=(6, 1))
    results = {}
    for device in ("cpu", "fake"):
        out = []
        for cls, kw in ((PCGrad, dict(seed=0)), (GradNorm, dict(alpha=1.0))):
            ps = [na.Parameter(backend.to_device(a.copy(), device)) for a in init]
            Xd, y1d, y2d = (na.Tensor(backend.to_device(a, device)) for a in (X, y1, y2))
            opt = cls(ps, lr=0.01, **kw)
            for _ in range(3):
                opt.zero_grad()
                h = na.tanh(Xd @ ps[0] + ps[1])
                opt.step([((h @ ps[2] - y1d) ** 2).mean(), ((h @ ps[3] - y2d) ** 2).mean()])
            opt.load_state_dict(opt.state_dict())
            assert all(backend.device_of(p.data).startswith(device) for p in ps)
            out.append([backend.asnumpy(p.data) for p in ps])
        results[device] = out
    for a, b in zip(results["cpu"], results["fake"]):
        for x, y in zip(a, b):
            np.testing.assert_allclose(y, x, rtol=1e-12, atol=1e-14)
