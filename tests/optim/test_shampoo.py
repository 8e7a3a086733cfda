"""Shampoo against the paper's algorithm computed directly in NumPy.

The reference below unfolds the gradient explicitly (``G_(i)``: dimension ``i``
first, the rest flattened), forms ``H^i += G_(i) G_(i)^T``, takes the inverse
``2k``-th root from ``numpy.linalg.eigh`` with the eigenvalues floored at ``ε``,
and applies the roots by ``n``-mode products written with ``einsum``; the
optimizer computes the same quantities with ``tensordot`` on the folded tensor.
"""
from __future__ import annotations

import string

import numpy as np
import pytest

import neural_arch as na
from neural_arch import backend
from neural_arch.optim import SGD, Shampoo, shampoo_update

# ---- the reference ----------------------------------------------------------------------


def unfold(g, i):
    """``G_(i)``: an ``n_i x (prod of the other sizes)`` matrix."""
    return np.moveaxis(g, i, 0).reshape(g.shape[i], -1)


def mode_product(g, p, i):
    """``G ×_i P``: ``P`` applied to every dimension-``i`` fibre of ``G`` (einsum)."""
    letters = string.ascii_lowercase[:g.ndim]
    out = letters[:i] + "z" + letters[i + 1:]
    return np.einsum(f"z{letters[i]},{letters}->{out}", p, g)


def root(h, order, eps):
    if h.ndim == 1:
        return np.maximum(h, eps) ** (-1.0 / order)
    w, q = np.linalg.eigh(h)
    return q @ np.diag(np.maximum(w, eps) ** (-1.0 / order)) @ q.T


class Reference:
    """Algorithm 2 of Gupta, Koren & Singer (2018) with this module's momentum and decay."""

    def __init__(self, w, lr, eps=1e-4, momentum=0.0, weight_decay=0.0, update_freq=1,
                 max_precond_dim=1024):
        self.w = np.array(w, dtype=np.float64).reshape(np.shape(w) or (1,))   # 0-d: (1,)
        self.lr, self.eps, self.momentum, self.wd = lr, eps, momentum, weight_decay
        self.freq = update_freq
        self.H = [eps * np.eye(n) if n <= max_precond_dim else np.full(n, eps)
                  for n in self.w.shape]
        self.P = [None] * self.w.ndim
        self.buf = None
        self.t = 0

    def step(self, grad):
        self.t += 1
        g = grad.reshape(self.w.shape) + self.wd * self.w
        k = g.ndim
        for i in range(k):
            gi = unfold(g, i)
            self.H[i] = self.H[i] + ((gi * gi).sum(1) if self.H[i].ndim == 1 else gi @ gi.T)
            if (self.t - 1) % self.freq == 0:
                self.P[i] = root(self.H[i], 2 * k, self.eps)
        u = g
        for i in range(k):
            if self.P[i].ndim == 1:
                shape = [1] * k
                shape[i] = -1
                u = u * self.P[i].reshape(shape)
            else:
                u = mode_product(u, self.P[i], i)
        if self.momentum:
            self.buf = u if self.buf is None else self.momentum * self.buf + u
            u = self.buf
        self.w = self.w - self.lr * u
        return u


def run_both(shape, steps, seed=0, **kwargs):
    """Feed the same random gradients to Shampoo and the reference; yield after each step."""
    rng = np.random.default_rng(seed)
    w0 = rng.normal(size=shape)
    p = na.Parameter(w0.copy())
    opt = Shampoo([p], **kwargs)
    ref = Reference(w0, **kwargs)
    for _ in range(steps):
        # gradients of very different scales along the dimensions: a real test of the roots
        g = np.asarray(rng.normal(size=shape) * np.exp(rng.normal(size=shape)))
        p.grad = na.Tensor(g.copy())
        opt.step()
        ref.step(g)
        yield p, opt, ref


CASES = [
    ((3, 4), dict(lr=0.1)),
    ((3, 4), dict(lr=0.05, momentum=0.9, weight_decay=0.1, eps=1e-3)),
    ((2, 3, 2, 2), dict(lr=0.1)),                                # a conv kernel
    ((2, 3, 2, 2), dict(lr=0.1, momentum=0.5, weight_decay=0.01)),
    ((5, 3), dict(lr=0.1, max_precond_dim=4)),                   # diagonal for the 5
    ((2, 6, 3, 2), dict(lr=0.1, max_precond_dim=3, momentum=0.9)),
    ((6,), dict(lr=0.1)),                                        # a bias: k = 1
    ((), dict(lr=0.1, momentum=0.9)),                            # a scalar: AdaGrad
]


@pytest.mark.parametrize("shape, kwargs", CASES, ids=[f"{s}-{sorted(k)}" for s, k in CASES])
def test_preconditioners_and_updates_equal_the_direct_computation(shape, kwargs):
    for p, opt, ref in run_both(shape, 5, **kwargs):
        state = opt.state[p]
        for i, h in enumerate(ref.H):
            np.testing.assert_allclose(state[f"precond_{i}"], h, rtol=1e-12, atol=1e-12)
            np.testing.assert_allclose(state[f"inv_precond_{i}"], ref.P[i], rtol=1e-9,
                                       atol=1e-12)
        np.testing.assert_allclose(p.data, ref.w, rtol=1e-10, atol=1e-12)
    assert state["step"] == 5
    assert ("momentum_buffer" in state) == bool(kwargs.get("momentum"))


def test_a_matrix_step_is_left_and_right_fourth_roots():
    """For a matrix: W -= lr L^{-1/4} G R^{-1/4}, L = εI + G Gᵀ, R = εI + Gᵀ G (step 1)."""
    rng = np.random.default_rng(3)
    g = rng.normal(size=(3, 5))
    p = na.Parameter(np.zeros((3, 5)))
    p.grad = na.Tensor(g)
    eps = 1e-4
    Shampoo([p], lr=1.0, eps=eps).step()
    L = eps * np.eye(3) + g @ g.T
    R = eps * np.eye(5) + g.T @ g

    def power(m, a):
        w, q = np.linalg.eigh(m)
        return q @ np.diag(w ** a) @ q.T
    np.testing.assert_allclose(p.data, -power(L, -0.25) @ g @ power(R, -0.25), rtol=1e-10)


def test_the_diagonal_fallback_is_the_diagonal_of_the_full_statistic():
    rng = np.random.default_rng(4)
    g = rng.normal(size=(4, 3, 2))
    full, diag = na.Parameter(np.zeros(g.shape)), na.Parameter(np.zeros(g.shape))
    opt_full, opt_diag = Shampoo([full]), Shampoo([diag], max_precond_dim=3)
    for p, opt in ((full, opt_full), (diag, opt_diag)):
        p.grad = na.Tensor(g)
        opt.step()
    assert opt_diag.state[diag]["precond_0"].shape == (4,)
    assert opt_diag.state[diag]["precond_1"].shape == (3, 3)
    np.testing.assert_allclose(opt_diag.state[diag]["precond_0"],
                               np.diag(opt_full.state[full]["precond_0"]), rtol=1e-14)


def test_cached_roots_are_reused_between_updates():
    rng = np.random.default_rng(5)
    shape = (3, 4)
    p = na.Parameter(rng.normal(size=shape))
    opt = Shampoo([p], lr=0.1, update_freq=3)
    roots, stats = [], []
    for t in range(1, 8):
        g = rng.normal(size=shape)
        before = p.data.copy()
        p.grad = na.Tensor(g)
        opt.step()
        s = opt.state[p]
        roots.append([s["inv_precond_0"].copy(), s["inv_precond_1"].copy()])
        stats.append([s["precond_0"].copy(), s["precond_1"].copy()])
        # the step is the cached roots applied to this step's gradient, never g itself
        L, R = roots[-1]
        np.testing.assert_allclose(before - p.data, 0.1 * L @ g @ R, rtol=1e-10)
        assert not np.allclose(before - p.data, 0.1 * g)
    for t in range(7):
        updated = t % 3 == 0                                   # steps 1, 4, 7
        if updated:
            for i in range(2):                                 # roots of the current statistics
                np.testing.assert_allclose(roots[t][i], root(stats[t][i], 4, 1e-4), rtol=1e-9)
        else:
            for i in range(2):                                 # unchanged since the last update
                np.testing.assert_array_equal(roots[t][i], roots[t - 1][i])
                assert not np.allclose(stats[t][i], stats[t - 1][i])   # statistics still grow
    # the reference with update_freq=3 gives the same iterates
    for p2, _, ref in run_both(shape, 7, seed=9, lr=0.1, update_freq=3):
        pass
    np.testing.assert_allclose(p2.data, ref.w, rtol=1e-10)


def test_eigenvalue_floor_only_removes_round_off():
    """Roots of εI + (rank-1): the floor at ε leaves every eigenvalue as it is."""
    h = 1e-4 * np.eye(4) + np.outer([1.0, 2, 3, 4], [1.0, 2, 3, 4])
    from neural_arch.optim.shampoo import inverse_root
    r = inverse_root(h, 4, 1e-4)
    np.testing.assert_allclose(np.linalg.matrix_power(r, 4) @ h, np.eye(4), atol=1e-6)
    # a statistic whose round-off made an eigenvalue negative still gives a finite root
    bad = np.diag([1.0, -1e-12])
    np.testing.assert_allclose(inverse_root(bad, 2, 1e-4), np.diag([1.0, 100.0]))
    np.testing.assert_allclose(inverse_root(np.array([4.0, 0.0]), 2, 1e-4), [0.5, 100.0])


def test_float32_parameters_stay_float32():
    rng = np.random.default_rng(6)
    p = na.Parameter(rng.normal(size=(3, 2)).astype(np.float32))
    opt = Shampoo([p], momentum=0.9)
    for _ in range(3):
        p.grad = na.Tensor(rng.normal(size=(3, 2)).astype(np.float32))
        opt.step()
    assert p.data.dtype == np.float32
    assert all(v.dtype == np.float32 for v in opt.state[p].values() if hasattr(v, "dtype"))


def test_kernel_on_raw_arrays_matches_the_class():
    rng = np.random.default_rng(8)
    w = rng.normal(size=(2, 3))
    g = rng.normal(size=(2, 3))
    p = na.Parameter(w.copy())
    p.grad = na.Tensor(g)
    Shampoo([p], lr=0.2).step()
    H = [1e-4 * np.eye(2), 1e-4 * np.eye(3)]
    P = [np.zeros((2, 2)), np.zeros((3, 3))]
    shampoo_update(w, g, H, P, step=1, lr=0.2)
    np.testing.assert_array_equal(w, p.data)


# ---- convergence ------------------------------------------------------------------------

def test_beats_sgd_on_an_ill_conditioned_quadratic():
    """f(W) = ½ tr((W - W*)ᵀ A (W - W*) B), condition number 10⁴ (Kronecker-structured)."""
    rng = np.random.default_rng(0)
    q1, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    q2, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    A = q1 @ np.diag(np.logspace(0, 2, 4)) @ q1.T
    B = q2 @ np.diag(np.logspace(0, 2, 3)) @ q2.T
    w_star = rng.normal(size=(4, 3))
    top = 1e4                                          # largest eigenvalue of the Hessian

    def loss(W):
        D = W - na.Tensor(w_star)
        return 0.5 * (na.Tensor(A) @ D @ na.Tensor(B) * D).sum()

    def final_loss(cls, steps, **kwargs):
        W = na.Parameter(np.zeros((4, 3)))
        opt = cls([W], **kwargs)
        for _ in range(steps):
            opt.zero_grad()
            loss(W).backward()
            opt.step()
        return float(loss(W))

    steps = 60
    sgd = min(final_loss(SGD, steps, lr=c / top) for c in (0.5, 1.0, 1.9))
    shampoo = final_loss(Shampoo, steps, lr=1.0)
    start = float(loss(na.Parameter(np.zeros((4, 3)))))
    assert sgd > 1e-3 * start                          # SGD is still far from the minimum
    assert shampoo < 1e-4 * sgd


def test_seed_example_runs():
    rng = np.random.default_rng(1)
    model = na.nn.Sequential(na.nn.Linear(4, 8), na.nn.Tanh(), na.nn.Linear(8, 1))
    x = na.Tensor(rng.normal(size=(32, 4)).astype(np.float32))
    y = na.Tensor(rng.normal(size=(32, 1)).astype(np.float32))
    optimizer = Shampoo(
        model.parameters(),
        lr=1e-3,
        momentum=0.9,
        weight_decay=1e-4,
        epsilon=1e-4,
        update_freq=1
    )
    losses = []
    for _ in range(20):
        optimizer.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        optimizer.step()
        losses.append(float(loss))
    assert losses[-1] < losses[0]
    assert optimizer.param_groups[0]["eps"] == 1e-4


def test_conv_kernel_gets_one_preconditioner_per_dimension():
    conv = na.nn.Conv2d(2, 3, kernel_size=3)
    opt = Shampoo(conv.parameters(), lr=0.01)
    x = na.Tensor(np.random.default_rng(2).normal(size=(2, 2, 5, 5)).astype(np.float32))
    conv(x).sum().backward()
    opt.step()
    state = opt.state[conv.weight]
    assert [state[f"precond_{i}"].shape for i in range(4)] == [(3, 3), (2, 2), (3, 3), (3, 3)]


# ---- state_dict and devices -------------------------------------------------------------

def _train(params, opt, grads):
    for step_grads in grads:
        for p, g in zip(params, step_grads):
            p.grad = na.Tensor(backend.to_device(np.asarray(g), p.device))
        opt.step()


def test_state_dict_resume_is_bit_for_bit():
    rng = np.random.default_rng(10)
    shapes = [(3, 5), (2, 2, 3), ()]
    kwargs = dict(lr=0.05, momentum=0.9, weight_decay=0.01, update_freq=2, max_precond_dim=4)
    grads = [[rng.normal(size=s) for s in shapes] for _ in range(6)]
    params = [na.Parameter(rng.normal(size=s)) for s in shapes]
    opt = Shampoo(params, **kwargs)
    _train(params, opt, grads[:3])
    sd = opt.state_dict()
    copies = [na.Parameter(p.data.copy()) for p in params]
    again = Shampoo(copies, **kwargs)
    again.load_state_dict(sd)
    _train(params, opt, grads[3:])
    _train(copies, again, grads[3:])
    for p, q in zip(params, copies):
        np.testing.assert_array_equal(p.data, q.data)
    assert set(sd["state"][0]) == {"step", "momentum_buffer", "precond_0", "precond_1",
                                   "inv_precond_0", "inv_precond_1"}
    assert sd["state"][0]["precond_0"].shape == (3, 3)
    assert sd["state"][0]["precond_1"].shape == (5,)          # 5 > max_precond_dim: diagonal
    assert sd["state"][0]["step"] == 3


def test_load_state_dict_rejects_a_wrong_preconditioner_and_changes_nothing():
    p = na.Parameter(np.zeros((3, 4)))
    opt = Shampoo([p])
    p.grad = na.Tensor(np.ones((3, 4)))
    opt.step()
    sd = opt.state_dict()
    sd["state"][0]["precond_1"] = np.eye(3)
    fresh = Shampoo([p])
    with pytest.raises(ValueError, match="precond_1.*shape \\(3, 3\\)"):
        fresh.load_state_dict(sd)
    assert not fresh.state


def test_updates_on_the_fake_cupy_device_equal_the_cpu():
    from tests import fake_cupy
    fake_cupy.register()
    rng = np.random.default_rng(11)
    shapes = [(3, 2), (2, 3, 2), (5,), ()]
    init = [rng.normal(size=s) for s in shapes]
    grads = [[rng.normal(size=s) for s in shapes] for _ in range(4)]
    kwargs = dict(momentum=0.5, weight_decay=0.1, update_freq=2, max_precond_dim=2)
    results = {}
    for device in ("cpu", "fake"):
        params = [na.Parameter(backend.to_device(a.copy(), device)) for a in init]
        opt = Shampoo(params, **kwargs)
        _train(params, opt, grads[:2])
        again = Shampoo(params, **kwargs)
        again.load_state_dict(opt.state_dict())
        assert all(backend.device_of(v) == params[0].device
                   for s in again.state.values() for v in s.values() if hasattr(v, "shape"))
        _train(params, again, grads[2:])
        results[device] = [backend.asnumpy(p.data) for p in params]
    for a, b in zip(results["cpu"], results["fake"]):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-14)


# ---- arguments and errors -------------------------------------------------------------

def test_defaults_and_aliases():
    opt = Shampoo([na.Parameter(np.zeros(2))])
    group = opt.param_groups[0]
    assert {k: group[k] for k in ("lr", "momentum", "weight_decay", "eps", "update_freq",
                                  "max_precond_dim")} == \
        dict(lr=0.1, momentum=0.0, weight_decay=0.0, eps=1e-4, update_freq=1,
             max_precond_dim=1024)
    opt = Shampoo([na.Parameter(np.zeros(2))], learning_rate=0.5, epsilon=1e-3)
    assert opt.lr == 0.5 and opt.param_groups[0]["eps"] == 1e-3


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(lr=-0.1), ValueError, "learning rate"),
    (dict(momentum=1.0), ValueError, "momentum.*1"),
    (dict(momentum=-0.5), ValueError, "momentum"),
    (dict(weight_decay=-1), ValueError, "weight_decay"),
    (dict(eps=0.0), ValueError, "epsilon.*> 0"),
    (dict(epsilon=-1e-4), ValueError, "epsilon"),
    (dict(update_freq=0), ValueError, "update_freq.*>= 1"),
    (dict(update_freq=2.5), TypeError, "update_freq.*integer"),
    (dict(max_precond_dim=0), ValueError, "max_precond_dim"),
    (dict(max_precond_dim=True), TypeError, "max_precond_dim"),
    (dict(eps=1e-4, epsilon=1e-4), TypeError, "alias"),
    (dict(nesterov=True), TypeError, "unexpected keyword"),
])
def test_bad_arguments_raise_clear_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        Shampoo([na.Parameter(np.zeros(2))], **kwargs)


def test_bad_group_settings_raise():
    with pytest.raises(ValueError, match="update_freq"):
        Shampoo([{"params": [na.Parameter(np.zeros(2))], "update_freq": -1}])
