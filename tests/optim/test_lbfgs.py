"""LBFGS against ``torch.optim.LBFGS``: iterates, evaluation counts and state, step by step.

Parity is held in float64 on Rosenbrock (2-D and a 10-D chain) and a small
logistic regression, with and without the strong-Wolfe line search. The two
implementations round differently in the last bit (PyTorch fuses ``p + t d``
into one multiply-add, and its autograd orders some sums differently), and
Rosenbrock amplifies such differences once the iterates wander through its
curved valley at large fixed steps; the settings below (number of steps,
``max_iter``, fixed-step ``lr``) stay where the trajectories agree to ~1e-12,
so a tolerance of 1e-9 is tight next to any algorithmic difference (a different
trial step, a skipped or extra evaluation changes the iterates at 1e-3 or more,
and the evaluation counts must be equal exactly).
"""
from __future__ import annotations

import numpy as np
import pytest

import neural_arch as na
from neural_arch import backend
from neural_arch.optim import LBFGS
from neural_arch.optim.lbfgs import cubic_minimizer
from tests.helpers import requires_torch, torch

TORCH_KEYS = {"func_evals", "n_iter", "d", "t", "old_dirs", "old_stps", "ro", "H_diag",
              "prev_flat_grad", "prev_loss", "al"}


# ---- problems, each written once for both libraries ----------------------------------

def rosenbrock(params):
    (x,) = params
    return ((1 - x[:-1]) ** 2).sum() + (100 * (x[1:] - x[:-1] ** 2) ** 2).sum()


def rosenbrock_start(n):
    x = np.full(n, -1.2)
    x[1::2] = 1.0
    return [x]


_rng = np.random.default_rng(7)
_X = _rng.normal(size=(24, 3))
_Y = np.where(_X @ np.array([1.5, -2.0, 0.5]) + 0.3 + 0.8 * _rng.normal(size=24) > 0,
              1.0, -1.0)


def logistic(params, lib):
    """Mean logistic loss log(1 + exp(-y (X w + b))); a third parameter stays unused."""
    w, b, _unused = params
    X = lib.tensor(_X) if lib is torch else na.Tensor(_X)
    Y = lib.tensor(_Y) if lib is torch else na.Tensor(_Y)
    z = (X @ w).reshape(-1) + b
    return lib.log(1 + lib.exp(-Y * z)).mean()


def logistic_start():
    return [np.array([[0.1], [-0.2], [0.05]]), np.array([0.0]), np.array([3.0, 4.0])]


def run_pair(loss_fn, start, steps, **kwargs):
    """Run our LBFGS and torch's side by side; yield both after each step."""
    ours = [na.Parameter(a.copy()) for a in start]
    theirs = [torch.tensor(a.copy(), requires_grad=True) for a in start]
    opt = LBFGS(ours, **kwargs)
    topt = torch.optim.LBFGS(theirs, **kwargs)

    def closure():
        opt.zero_grad()
        loss = loss_fn(ours, na)
        loss.backward()
        return loss

    def tclosure():
        topt.zero_grad()
        loss = loss_fn(theirs, torch)
        loss.backward()
        return loss

    for _ in range(steps):
        first = opt.step(closure)
        tfirst = topt.step(tclosure)
        yield (opt, ours, first), (topt, theirs, tfirst)


def assert_same_step(mine, twin):
    (opt, ours, first), (topt, theirs, tfirst) = mine, twin
    state, tstate = opt.state[ours[0]], topt.state[theirs[0]]
    assert state["func_evals"] == tstate["func_evals"]
    assert state["n_iter"] == tstate["n_iter"]
    np.testing.assert_allclose(float(first), float(tfirst.detach()), rtol=1e-9, atol=1e-12)
    for p, q in zip(ours, theirs):
        np.testing.assert_allclose(p.data, q.detach().numpy(), rtol=1e-9, atol=1e-10)
    assert set(state) == set(tstate)
    if "d" in tstate:
        np.testing.assert_allclose(state["d"], tstate["d"].numpy(), rtol=1e-7, atol=1e-9)
        assert len(state["old_dirs"]) == len(tstate["old_dirs"])
        np.testing.assert_allclose(float(state["t"]), float(tstate["t"]), rtol=1e-7)
        np.testing.assert_allclose(float(state["H_diag"]), float(tstate["H_diag"]),
                                   rtol=1e-7)
        assert state["prev_loss"] == pytest.approx(tstate["prev_loss"], rel=1e-9, abs=1e-14)


ROSENBROCK_RUNS = [
    # (dimension, steps, kwargs)
    (2, 6, dict(lr=0.5, max_iter=5)),
    (2, 3, dict(line_search_fn="strong_wolfe")),                # converges: tolerance stops
    (10, 5, dict(lr=0.1, max_iter=5)),
    (10, 6, dict(max_iter=5, line_search_fn="strong_wolfe")),
    (10, 4, dict(max_iter=6, history_size=3, line_search_fn="strong_wolfe")),  # history drops
    (10, 3, dict(max_iter=8, max_eval=6, line_search_fn="strong_wolfe")),     # eval budget
]


@requires_torch
@pytest.mark.parametrize("n, steps, kwargs", ROSENBROCK_RUNS,
                         ids=[f"{n}d-{s}x-{sorted(k.items())}" for n, s, k in ROSENBROCK_RUNS])
def test_rosenbrock_trajectory_equals_torch(n, steps, kwargs):
    for mine, twin in run_pair(lambda ps, lib: rosenbrock(ps), rosenbrock_start(n), steps,
                               **kwargs):
        assert_same_step(mine, twin)


LOGISTIC_RUNS = [
    (4, dict(max_iter=4)),
    (4, dict(lr=0.5, history_size=2)),
    (4, dict(max_iter=4, line_search_fn="strong_wolfe")),
    (4, dict(line_search_fn="strong_wolfe")),
    # a huge first trial: the zoom's safeguard moves trial points off the bracket's ends
    (2, dict(lr=100, line_search_fn="strong_wolfe")),
]


@requires_torch
@pytest.mark.parametrize("steps, kwargs", LOGISTIC_RUNS,
                         ids=[f"{s}x-{sorted(k.items())}" for s, k in LOGISTIC_RUNS])
def test_logistic_regression_trajectory_equals_torch(steps, kwargs):
    for mine, twin in run_pair(logistic, logistic_start(), steps, **kwargs):
        assert_same_step(mine, twin)
    opt, ours = mine[0], mine[1]
    np.testing.assert_array_equal(ours[2].data, [3.0, 4.0])   # no gradient: never moved


def test_strong_wolfe_reaches_the_rosenbrock_minimum():
    x = na.Parameter(np.array([-1.2, 1.0]))
    opt = LBFGS([x], line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = rosenbrock([x])
        loss.backward()
        return loss
    for _ in range(5):
        opt.step(closure)
    assert float(closure()) < 1e-9           # then the loss changes by < tolerance_change
    np.testing.assert_allclose(x.data, [1.0, 1.0], atol=1e-4)


def test_step_returns_the_first_loss_and_stops_at_a_stationary_point():
    x = na.Parameter(np.array([1.0, 1.0]))          # Rosenbrock's minimum: gradient 0
    opt = LBFGS([x])
    calls = []

    def closure():
        calls.append(1)
        opt.zero_grad()
        loss = rosenbrock([x])
        loss.backward()
        return loss
    out = opt.step(closure)
    assert isinstance(out, na.Tensor) and float(out) == 0.0
    assert len(calls) == 1 and opt.state[x] == {"func_evals": 1, "n_iter": 0}
    np.testing.assert_array_equal(x.data, [1.0, 1.0])


def test_cubic_minimizer_finds_the_minimum_of_a_cubic():
    # c(x) = x^3 - 3x: local minimum at 1; values and slopes at 0 and 2.
    c = lambda x: x ** 3 - 3 * x                       # noqa: E731
    dc = lambda x: 3 * x ** 2 - 3                      # noqa: E731
    assert cubic_minimizer(0.0, c(0), dc(0), 2.0, c(2), dc(2)) == pytest.approx(1.0)
    assert cubic_minimizer(2.0, c(2), dc(2), 0.0, c(0), dc(0)) == pytest.approx(1.0)
    # clamped to the bounds
    assert cubic_minimizer(0.0, c(0), dc(0), 2.0, c(2), dc(2), bounds=(1.5, 3)) == 1.5
    # x^3 + x has no local minimum: the midpoint of the bounds
    assert cubic_minimizer(-1.0, -2.0, 4.0, 1.0, 2.0, 4.0) == 0.0
    # coincident points give IEEE results as torch's tensors do, not ZeroDivisionError
    assert np.isnan(cubic_minimizer(1.0, 0.0, -1.0, 1.0, 1.0, 1.0))      # 0 * inf
    assert cubic_minimizer(1.0, 0.0, -1.0, 1.0, 0.0, 1.0) == 1.0         # 0/0 -> midpoint


# ---- state_dict -------------------------------------------------------------------------

@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
def test_state_dict_resume_is_bit_for_bit(line_search_fn):
    def make(start):
        params = [na.Parameter(a.copy()) for a in start]
        opt = LBFGS(params, max_iter=4, history_size=3, line_search_fn=line_search_fn)

        def closure():
            opt.zero_grad()
            loss = logistic(params, na)
            loss.backward()
            return loss
        return params, opt, closure

    params, opt, closure = make(logistic_start())
    for _ in range(3):
        opt.step(closure)
    sd = opt.state_dict()
    assert set(sd["state"][0]) == TORCH_KEYS and list(sd["state"]) == [0]
    copy_params, copy_opt, copy_closure = make([p.data for p in params])
    copy_opt.load_state_dict(sd)
    for _ in range(3):
        opt.step(closure)
        copy_opt.step(copy_closure)
    for p, q in zip(params, copy_params):
        np.testing.assert_array_equal(p.data, q.data)
    assert opt.state[params[0]]["func_evals"] == copy_opt.state[copy_params[0]]["func_evals"]
    # the saved dict did not change while training went on
    assert sd["state"][0]["n_iter"] == 12


def test_state_dict_loads_across_devices():
    from tests import fake_cupy
    fake_cupy.register()
    start = logistic_start()
    results = {}
    for device in ("cpu", "fake"):
        params = [na.Parameter(backend.to_device(a.copy(), device)) for a in start]
        opt = LBFGS(params, max_iter=3, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            w, b, _ = params
            X = na.Tensor(backend.to_device(_X, device))
            Y = na.Tensor(backend.to_device(_Y, device))
            z = (X @ w).reshape(-1) + b
            loss = na.log(1 + na.exp(-Y * z)).mean()
            loss.backward()
            return loss
        for _ in range(2):
            opt.step(closure)
        again = LBFGS(params, max_iter=3, line_search_fn="strong_wolfe")
        again.load_state_dict(opt.state_dict())
        for v in again.state[params[0]].values():
            for item in (v if isinstance(v, list) else [v]):
                if hasattr(item, "shape") and item.ndim > 0:
                    assert backend.device_of(item) == params[0].device
        again.step(closure)
        results[device] = [backend.asnumpy(p.data) for p in params]
    for a, b in zip(results["cpu"], results["fake"]):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-14)


# ---- arguments and errors -------------------------------------------------------------

def test_defaults_are_torchs():
    opt = LBFGS([na.Parameter(np.zeros(2))])
    group = opt.param_groups[0]
    assert {k: group[k] for k in ("lr", "max_iter", "max_eval", "tolerance_grad",
                                  "tolerance_change", "history_size", "line_search_fn")} == \
        dict(lr=1, max_iter=20, max_eval=25, tolerance_grad=1e-7, tolerance_change=1e-9,
             history_size=100, line_search_fn=None)
    assert LBFGS([na.Parameter(np.zeros(2))], max_iter=7).param_groups[0]["max_eval"] == 8
    assert LBFGS([na.Parameter(np.zeros(2))], learning_rate=0.3).lr == 0.3


def test_seed_example_runs():
    model = na.nn.Linear(3, 1) if hasattr(na, "nn") else None
    if model is None:
        pytest.skip("no nn layers")
    x = na.Tensor(_X)
    y = na.Tensor(_Y.reshape(-1, 1))
    optimizer = LBFGS(model.parameters(), lr=1.0, max_iter=20, max_eval=None,
                      tolerance_grad=1e-7, tolerance_change=1e-9, history_size=100,
                      line_search_fn="strong_wolfe")

    def criterion(out, target):
        return ((out - target) ** 2).mean()

    def closure():
        optimizer.zero_grad()
        output = model(x)
        loss = criterion(output, y)
        loss.backward()
        return loss
    first = float(closure())
    for epoch in range(3):
        optimizer.step(closure)
    assert float(closure()) < first


def test_bad_arguments_raise_clear_errors():
    p = na.Parameter(np.zeros(2))
    with pytest.raises(ValueError, match="parameter groups"):
        LBFGS([{"params": [p]}, {"params": [na.Parameter(np.zeros(1))]}])
    opt = LBFGS([p])
    with pytest.raises(ValueError, match="parameter groups"):
        opt.add_param_group({"params": [na.Parameter(np.zeros(1))]})
    with pytest.raises(ValueError, match="line_search_fn.*'wolfe'.*strong_wolfe"):
        LBFGS([p], line_search_fn="wolfe")
    with pytest.raises(ValueError, match="max_iter.*0"):
        LBFGS([p], max_iter=0)
    with pytest.raises(TypeError, match="max_eval.*integer"):
        LBFGS([p], max_eval=2.5)
    with pytest.raises(TypeError, match="history_size.*integer"):
        LBFGS([p], history_size=True)
    with pytest.raises(ValueError, match="learning rate"):
        LBFGS([p], lr=-1)
    with pytest.raises(ValueError, match="tolerance_grad"):
        LBFGS([p], tolerance_grad=-1e-3)
    with pytest.raises(TypeError, match="unexpected keyword"):
        LBFGS([p], momentum=0.9)
    with pytest.raises(TypeError, match="closure"):
        opt.step()
    with pytest.raises(TypeError, match="closure"):
        opt.step(None)
    p.grad = na.Tensor(np.ones(2))
    with pytest.raises(TypeError, match="returned None"):
        opt.step(lambda: None)
